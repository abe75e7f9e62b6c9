"""What NeuroView-RNN's explanation costs, against the standard forward and permutation importance.

Setting: batch 64, T = 150 steps, 1 input feature (GunPoint's shape), hidden 64, 2 threads,
eval mode under no_grad. The NeuroView network wraps the standard network's own RNN (same
weights). Measured in one run, interleaving the contenders repeat by repeat so that machine
noise hits all of them. Ratios use the fastest repeat of each contender (interference from
other jobs only ever adds time); ratios of medians are in the JSON too.

  - explain / standard forward: ``net.explain(x)`` (the decision plus the exact
    ``[B, C, L, D, T, H]`` contributions) against ``RNNClassifier(rnn)(x)``;
  - NeuroView forward / standard forward;
  - NeuroView train step / standard train step (forward, backward, SGD step; train mode);
  - permutation importance / explain: per-step permutation importance as tsai computes it,
    one forward per step with that step's values shuffled across the batch (plus the
    unshuffled baseline), T + 1 forwards of the same NeuroView network.

Writes benchmarks/results/rnn_cost.json and .md.

    nice -n 10 python benchmarks/rnn_cost.py            # ~2 min on 2 cores
    python benchmarks/rnn_cost.py --repeats 3 --configs gru
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import neuroview as nv

OUT = Path(__file__).parent / "results"
CONFIGS = {  # name: (module, num_layers, bidirectional)
    "gru": (nn.GRU, 1, False),
    "lstm": (nn.LSTM, 1, False),
    "rnn": (nn.RNN, 1, False),
    "gru-2x-bi": (nn.GRU, 2, True),
}


@torch.no_grad()
def permutation_importance(net: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``[T]`` drop of the true class's mean logit when one step is shuffled across the batch."""
    def score(inp):
        return net(inp).gather(1, y[:, None]).mean()

    base = score(x)
    out = torch.empty(x.shape[1])
    for t in range(x.shape[1]):
        xp = x.clone()
        xp[:, t] = x[torch.randperm(x.shape[0], generator=generator), t]
        out[t] = base - score(xp)
    return out


def train_step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    net.train()
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    net.eval()


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(name: str, batch: int, steps: int, hidden: int, repeats: int, permutation_every: int = 5) -> dict:
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
    runs = {
        "standard_forward": lambda: std(x),
        "neuroview_forward": lambda: net(x),
        "explain": lambda: net.explain(x),
        "permutation": lambda: permutation_importance(net, x, y, g),
    }
    grad_runs = {"standard_train_step": lambda: train_step(std_t, opt_s, x, y),
                 "neuroview_train_step": lambda: train_step(net_t, opt_n, x, y)}
    for k, fn in {**runs, **grad_runs}.items():  # warm-up: allocator, oneDNN primitives
        with torch.set_grad_enabled(k in grad_runs):
            fn()
    times = {k: [] for k in {**runs, **grad_runs}}
    for i in range(repeats):
        for k, fn in {**runs, **grad_runs}.items():
            # T + 1 forwards per call: its ratio to explain is ~T, so a few samples are enough
            if k == "permutation" and i % permutation_every:
                continue
            with torch.set_grad_enabled(k in grad_runs):
                times[k].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    return {
        "seconds_min": best,
        "config": name, "batch": batch, "steps": steps, "hidden": hidden, "repeats": repeats,
        "permutation_repeats": len(times["permutation"]),
        "seconds_median": med, "seconds_all": times,
        "explain_over_standard": best["explain"] / best["standard_forward"],
        "neuroview_forward_over_standard": best["neuroview_forward"] / best["standard_forward"],
        "permutation_over_explain": best["permutation"] / best["explain"],
        "train_step_neuroview_over_standard": best["neuroview_train_step"] / best["standard_train_step"],
        "median_ratios": {
            "explain_over_standard": med["explain"] / med["standard_forward"],
            "neuroview_forward_over_standard": med["neuroview_forward"] / med["standard_forward"],
            "permutation_over_explain": med["permutation"] / med["explain"],
            "train_step_neuroview_over_standard": med["neuroview_train_step"] / med["standard_train_step"],
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--permutation-every", type=int, default=5, help="time permutation importance on every k-th repeat only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(OUT / "rnn_cost"), help="path stem of the .json and .md files")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.configs:
        r = measure(name, args.batch, args.steps, args.hidden, args.repeats, args.permutation_every)
        rows.append(r)
        m = r["seconds_min"]
        print(f"{name:>10}: standard {m['standard_forward'] * 1e3:.1f} ms, explain {m['explain'] * 1e3:.1f} ms "
              f"({r['explain_over_standard']:.2f}x), permutation {m['permutation']:.2f} s "
              f"({r['permutation_over_explain']:.0f}x explain)", flush=True)
    lines = [
        f"| backbone | standard forward, best (ms) | NeuroView forward / standard | explain / standard forward | "
        f"permutation importance, T = {args.steps} (ms) | speed-up of explain | NeuroView train step / standard |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["seconds_min"]
        lines.append(f"| {r['config']} | {m['standard_forward'] * 1e3:.1f} | {r['neuroview_forward_over_standard']:.2f} | "
                     f"{r['explain_over_standard']:.2f} | {m['permutation'] * 1e3:.0f} | {r['permutation_over_explain']:.0f}x | "
                     f"{r['train_step_neuroview_over_standard']:.2f} |")
    lines.append("")
    lines.append(f"Batch {args.batch}, T = {args.steps}, 1 input feature, hidden {args.hidden}, {args.threads} threads, "
                 f"eval + no_grad (train steps: train mode, SGD), best of {args.repeats} interleaved repeats (permutation: every {args.permutation_every}th) (torch {torch.__version__}).")
    md = "\n".join(lines)
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps({"args": vars(args), "torch": torch.__version__, "rows": rows}, indent=1))
    stem.with_suffix(".md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
