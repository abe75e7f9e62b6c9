"""What NeuroView-RNN's explanation costs, against the standard forward and permutation importance.

Setting: batch 64, T = 150 steps, 1 input feature (GunPoint's shape), hidden 64, 2 threads,
eval mode under no_grad. The NeuroView network wraps the standard network's own RNN (same
weights). Measured in one run, interleaving the contenders round by round so that machine
noise hits all of them; every ratio is a ratio of medians over the rounds (as in the other cost
benchmarks). Each job sets the mode it measures when it runs (forward, explain, permutation:
eval; train steps: train), so the two networks of a pair always run in the same mode.

  - explain / standard forward: ``net.explain(x)`` (the decision and every class's per-step
    importance ``time_importance [B, C, T]``; the dense ``[B, C, L, D, T, H]`` contributions
    are only formed when read, and are not read here) against ``RNNClassifier(rnn)(x)``;
  - NeuroView forward / standard forward;
  - NeuroView train step / standard train step (forward, backward, SGD step; train mode);
  - permutation importance / explain: per-step permutation importance as tsai computes it
    (each step's values shuffled across the batch, plus the unshuffled baseline: T + 1 copies of
    the batch through the same NeuroView network), the copies batched ``--perm-batch`` sequences
    to a forward, so its cost is what the work costs, not T + 1 calls of a small batch.

Subnormal floats are flushed to zero (``torch.set_flush_denormal``, where the CPU supports it;
recorded in the results' meta): the standard tanh RNN's gradient fades over 150 steps into
subnormals, which x86 multiplies ~10x slower, and that made its train step look slower than
NeuroView's (0.57 with them, 2.2-2.5 without). ``--keep-denormals`` measures as before.

Writes benchmarks/results/rnn_cost.json and .md.

    nice -n 10 python benchmarks/rnn_cost.py            # ~3 min on 2 cores
    python benchmarks/rnn_cost.py --repeats 3 --configs gru
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

import neuroview as nv
from _cache import write_cache  # read back by run_all.py: written whole (next to this script)

OUT = Path(__file__).parent / "results"
CONFIGS = {  # name: (module, num_layers, bidirectional)
    "gru": (nn.GRU, 1, False),
    "lstm": (nn.LSTM, 1, False),
    "rnn": (nn.RNN, 1, False),
    "gru-2x-bi": (nn.GRU, 2, True),
}


@torch.no_grad()
def permutation_importance(net: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
                           batch: int = 256) -> torch.Tensor:
    """``[T]`` drop of the true class's mean logit when one step is shuffled across the batch.

    The T shuffled copies of ``x`` and ``x`` itself go through ``net`` ``batch`` sequences at a time."""
    b, steps = x.shape[:2]
    copies = x.unsqueeze(0).repeat(steps + 1, *([1] * x.dim()))  # [T + 1, B, T, F]; copy T is unshuffled
    for t in range(steps):
        copies[t, :, t] = x[torch.randperm(b, generator=generator), t]
    flat, labels = copies.flatten(0, 1), y.repeat(steps + 1)
    true = torch.cat([net(xb).gather(1, yb[:, None])[:, 0] for xb, yb in zip(flat.split(batch), labels.split(batch))])
    score = true.view(steps + 1, b).mean(1)
    return score[steps] - score[:steps]


def train_step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    net.train()
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()


def in_eval(net: nn.Module, fn):
    """``fn`` run with ``net`` in eval mode and no gradients (the mode is set on every call)."""
    def run():
        net.eval()
        with torch.no_grad():
            return fn()
    return run


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def build_jobs(name: str, batch: int, steps: int, hidden: int, perm_batch: int) -> tuple[dict, list[nn.Module]]:
    """The jobs of one configuration, in the order each round runs them, and the networks they run
    (tests/test_benchmark_setup.py checks that both networks of each pair run in the same mode)."""
    kind, layers, bi = CONFIGS[name]
    torch.manual_seed(0)
    rnn = kind(1, hidden, num_layers=layers, bidirectional=bi, batch_first=True)
    std = nv.RNNClassifier(rnn, 2).eval()
    net = nv.NeuroViewRNN(rnn, 2, max_len=steps).eval()
    x = torch.randn(batch, steps, 1)
    y = torch.randint(0, 2, (batch,))
    g = torch.Generator().manual_seed(0)
    # Separate copies for training, so the timed eval networks keep their weights.
    std_t = nv.RNNClassifier(kind(1, hidden, num_layers=layers, bidirectional=bi, batch_first=True), 2)
    net_t = nv.NeuroViewRNN(std_t.rnn, 2, max_len=steps)
    opt_s = torch.optim.SGD(std_t.parameters(), lr=1e-3)
    opt_n = torch.optim.SGD(net_t.parameters(), lr=1e-3)
    jobs = {
        "standard_forward": in_eval(std, lambda: std(x)),
        "neuroview_forward": in_eval(net, lambda: net(x)),
        "explain": lambda: net.explain(x),
        "permutation": in_eval(net, lambda: permutation_importance(net, x, y, g, perm_batch)),
        "standard_train_step": lambda: train_step(std_t, opt_s, x, y),
        "neuroview_train_step": lambda: train_step(net_t, opt_n, x, y),
    }
    return jobs, [std, net, std_t, net_t]


RATIOS = {"explain_over_standard": ("explain", "standard_forward"),
          "neuroview_forward_over_standard": ("neuroview_forward", "standard_forward"),
          "permutation_over_explain": ("permutation", "explain"),
          "train_step_neuroview_over_standard": ("neuroview_train_step", "standard_train_step")}


def measure(name: str, batch: int, steps: int, hidden: int, repeats: int, permutation_every: int = 5,
            perm_batch: int = 256) -> dict:
    jobs, _ = build_jobs(name, batch, steps, hidden, perm_batch)
    for fn in jobs.values():  # warm-up: allocator, oneDNN primitives
        fn()
    times = {k: [] for k in jobs}
    for i in range(repeats):
        for k, fn in jobs.items():
            # permutation costs tens of explains per call: timed every k-th round only
            if k == "permutation" and i % permutation_every:
                continue
            times[k].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"config": name, "batch": batch, "steps": steps, "hidden": hidden, "repeats": repeats,
            "permutation_repeats": len(times["permutation"]), "perm_batch": perm_batch,
            "seconds_median": med, "seconds_all": times,
            **{k: med[a] / med[b] for k, (a, b) in RATIOS.items()}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--permutation-every", type=int, default=5, help="time permutation importance on every k-th round only")
    p.add_argument("--perm-batch", type=int, default=256, help="sequences per forward of permutation importance")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(OUT / "rnn_cost"), help="path stem of the .json and .md files")
    p.add_argument("--keep-denormals", action="store_true",
                   help="do not flush subnormal floats to zero (they slow the fading tanh RNN's backward ~10x on x86)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    # False where the CPU has no flush-to-zero: then the figures may carry the subnormal slowdown
    # set both ways: an earlier main() in this process may have left flushing on; recorded as in force
    torch.set_flush_denormal(not args.keep_denormals)
    flush_denormal = (torch.tensor([1e-30]) * torch.tensor([1e-10])).item() == 0.0  # 1e-40: subnormal in float32
    rows = []
    for name in args.configs:
        r = measure(name, args.batch, args.steps, args.hidden, args.repeats, args.permutation_every, args.perm_batch)
        rows.append(r)
        m = r["seconds_median"]
        print(f"{name:>10}: standard {m['standard_forward'] * 1e3:.1f} ms, explain {m['explain'] * 1e3:.1f} ms "
              f"({r['explain_over_standard']:.2f}x), permutation {m['permutation']:.2f} s "
              f"({r['permutation_over_explain']:.0f}x explain)", flush=True)
    lines = [
        f"| backbone | standard forward (ms) | NeuroView forward / standard | explain / standard forward | "
        f"permutation importance, T = {args.steps} (ms) | speed-up of explain | NeuroView train step / standard |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["seconds_median"]
        lines.append(f"| {r['config']} | {m['standard_forward'] * 1e3:.1f} | {r['neuroview_forward_over_standard']:.2f} | "
                     f"{r['explain_over_standard']:.2f} | {m['permutation'] * 1e3:.0f} | {r['permutation_over_explain']:.0f}x | "
                     f"{r['train_step_neuroview_over_standard']:.2f} |")
    lines.append("")
    lines.append(f"Batch {args.batch}, T = {args.steps}, 1 input feature, hidden {args.hidden}, {args.threads} threads, "
                 f"eval + no_grad (train steps: train mode, SGD), medians of {args.repeats} interleaved rounds "
                 f"(permutation: every {args.permutation_every}th round, {args.perm_batch} sequences a forward), "
                 f"subnormals {'flushed to zero' if flush_denormal else 'kept'} (torch {torch.__version__}).")
    md = "\n".join(lines)
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    # the options this run was given, as typed (a figure is reproduced by the command that made it)
    command = "python benchmarks/rnn_cost.py " + " ".join(sys.argv[1:] if argv is None else argv)
    meta = {"command": command.rstrip(), "flush_denormal": flush_denormal,
            "load_average_end": [round(v, 1) for v in os.getloadavg()]}
    write_cache(stem.with_suffix(".json"), json.dumps({"meta": meta, "args": vars(args), "torch": torch.__version__, "rows": rows}, indent=1))
    write_cache(stem.with_suffix(".md"), md + "\n")
    print(md)


if __name__ == "__main__":
    main()
