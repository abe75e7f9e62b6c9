"""What importance costs: NeuroView's explain against the post-hoc methods users would run instead.

Measured in one run, interleaving the methods round by round so machine noise hits all of them,
and reported as ratios to the standard network's plain forward pass (eval, no_grad):

  - per-unit importance of a batch (a 4-layer CNN, batch 64, 1x28x28, 2 threads):
    NeuroView ``explain(x)`` (exact contributions of every unit to every class; ``hard`` codes,
    the default quantizer, named in every row, with soft / none for comparison) vs Captum LayerGradientXActivation (one call over the 4
    ReLU sites; for the predicted class, and for all 10 classes as explain gives them) and
    LayerConductance (n_steps=50, predicted class; one call per site, since Captum's
    LayerConductance takes one layer), run on the standard network with the same backbone weights;
  - per-step importance of a batch (a 1-layer GRU, hidden 64, T=150, batch 64, 2 threads):
    NeuroView-RNN ``explain(x)`` vs Captum IntegratedGradients (n_steps=50, summed per step)
    and permutation importance (one forward per step) on the standard GRU classifier.

Writes benchmarks/results/attribution_cost.json and .md. Without captum the Captum rows are
skipped, with a message.

    python benchmarks/attribution_cost.py              # ~3 min on 2 cores
    python benchmarks/attribution_cost.py --rounds 1   # smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.faithfulness import step_scores
from neuroview.zoo import create_model
from _cache import write_cache  # read back by run_all.py: written whole (next to this script)

OUT = Path(__file__).parent / "results"


def timed(fn, n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def measure(jobs: dict, rounds: int, reps: dict) -> dict[str, float]:
    for fn in jobs.values():  # warm-up: allocator, kernels, Captum's imports
        fn()
    times = {k: [] for k in jobs}
    for r in range(rounds):
        for k, fn in jobs.items():
            times[k].append(timed(fn, reps.get(k, 1)))
        print(f"  round {r + 1}/{rounds}: " + ", ".join(f"{k} {1000 * v[-1]:.0f} ms" for k, v in times.items()), flush=True)
    return {k: statistics.median(v) for k, v in times.items()}


def unit_cost(args, captum: bool) -> dict:
    widths = (16, 32, 64, 128)
    torch.manual_seed(0)
    std = create_model("small_cnn", num_classes=10, in_channels=1, widths=widths).eval()
    nets = {}
    for q in dict.fromkeys([args.quantizer, "hard", "soft", "none"]):  # the default first
        nets[q] = create_model("nv_small_cnn", num_classes=10, in_channels=1, widths=widths, quantizer=q)
        nets[q].backbone.load_state_dict(std.state_dict())
        nets[q].eval()
    x = torch.randn(args.batch, 1, 28, 28)
    for n in nets.values():
        n.discover(x)  # sites and classifier from a real batch
    net = nets[args.quantizer]
    relus = [m for m in std.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == len(net.sites) == len(widths)

    def forward():
        with torch.no_grad():
            std(x)

    jobs = {"standard forward": forward}
    for q, n in nets.items():  # the stated quantizer first: the ratios' reference
        jobs[explain_name(q)] = lambda n=n: n.explain(x)
    if captum:
        from captum.attr import LayerConductance, LayerGradientXActivation  # noqa: PLC0415

        with torch.no_grad():
            target = std(x).argmax(1)
        lgxa = LayerGradientXActivation(std, relus)
        lcs = [LayerConductance(std, m) for m in relus]
        jobs["Captum LayerGradientXActivation"] = lambda: lgxa.attribute(x, target=target)
        # explain gives every class's contributions at once; a gradient method needs one pass per class
        jobs["Captum LayerGradientXActivation, all 10 classes"] = lambda: [lgxa.attribute(x, target=c) for c in range(10)]
        jobs[f"Captum LayerConductance (n_steps={args.n_steps})"] = lambda: [
            lc.attribute(x, target=target, n_steps=args.n_steps, internal_batch_size=args.internal_batch) for lc in lcs]
    reps = {k: 10 for k in jobs if "forward" in k or "explain" in k} | {"Captum LayerGradientXActivation": 5}
    med = measure(jobs, args.rounds, reps)
    return {"setting": f"small_cnn widths {list(widths)}, input 1x28x28, batch {args.batch}, {len(widths)} sites "
                       f"({net.num_units} units), quantizer {args.quantizer!r}",
            "quantizer": net.quantizer, "reference": explain_name(net.quantizer), "median_seconds": med}


def explain_name(quantizer: str) -> str:
    return f"NeuroView explain ({quantizer} codes)"


def step_cost(args, captum: bool) -> dict:
    t = 150
    torch.manual_seed(0)
    gru = nn.GRU(1, 64, batch_first=True)
    std = nv.RNNClassifier(gru, 2).eval()
    net = nv.NeuroViewRNN(gru, 2, max_len=t).eval()
    x = torch.randn(args.batch, t, 1)
    with torch.no_grad():
        target = std(x).argmax(1)

    def forward():
        with torch.no_grad():
            std(x)

    jobs = {"standard forward": forward, "NeuroView-RNN explain": lambda: net.explain(x)}
    if captum:
        jobs[f"Captum IntegratedGradients (n_steps={args.n_steps})"] = lambda: step_scores(
            std, x, target, "integrated_gradients", n_steps=args.n_steps, batch_size=args.batch)
    jobs[f"permutation importance ({t} forwards)"] = lambda: step_scores(std, x, target, "permutation", batch_size=args.batch)
    med = measure(jobs, args.rounds, {"standard forward": 10, "NeuroView-RNN explain": 10})
    return {"setting": f"1-layer GRU, hidden 64, T={t}, 1 feature, batch {args.batch}",
            "reference": "NeuroView-RNN explain", "median_seconds": med}


def ratios(med: dict[str, float], reference: str) -> dict[str, dict[str, float]]:
    fwd, nvx = med["standard forward"], med[reference]
    return {k: {"over_forward": v / fwd, "over_neuroview": v / nvx} for k, v in med.items()}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    p.add_argument("--n-steps", type=int, default=50, help="LayerConductance / IntegratedGradients steps")
    p.add_argument("--internal-batch", type=int, default=640, help="Captum's internal_batch_size for LayerConductance")
    p.add_argument("--quantizer", default="hard", choices=("hard", "soft", "none"),
                   help="the NeuroView network the ratios are taken against (hard: the default of nv_small_cnn)")
    return p


def main(argv=None) -> dict:
    args = parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    captum = importlib.util.find_spec("captum") is not None
    if not captum:
        print("captum is not installed: skipping the Captum rows (pip install 'neuroview[bench]')")
    print("per-unit importance", flush=True)
    units = unit_cost(args, captum)
    print("per-step importance", flush=True)
    steps = step_cost(args, captum)
    result = {"meta": {"threads": args.threads, "rounds": args.rounds, "torch": torch.__version__,
                       "captum": importlib.import_module("captum").__version__ if captum else None,
                       # the options as typed (--batch, --n-steps, ...): the command reproduces the figures
                       "command": ("python benchmarks/attribution_cost.py "
                                   + " ".join(sys.argv[1:] if argv is None else argv)).rstrip()},
              "units": units | {"ratios": ratios(units["median_seconds"], units["reference"])},
              "steps": steps | {"ratios": ratios(steps["median_seconds"], steps["reference"])}}
    if not captum:
        result["skipped"] = "captum is not installed: no Captum rows"
    OUT.mkdir(exist_ok=True)
    write_cache(OUT / "attribution_cost.json", json.dumps(result, indent=2))
    md = table(result)
    write_cache(OUT / "attribution_cost.md", md + "\n")
    print(md)
    return result


def table(result: dict) -> str:
    lines = []
    for key, title in (("units", "Per-unit importance"), ("steps", "Per-step importance")):
        r = result[key]
        lines += [f"{title}: {r['setting']}, {result['meta']['threads']} threads.", "",
                  f"| method | time / standard forward | time / {r['reference']} |", "|---|---|---|"]
        for name, v in r["ratios"].items():
            ms = 1000 * r["median_seconds"][name]
            lines.append(f"| {name} ({ms:.1f} ms) | {v['over_forward']:.2f} | {v['over_neuroview']:.1f} |")
        lines.append("")
    return "\n".join(lines).rstrip()


if __name__ == "__main__":
    main()
