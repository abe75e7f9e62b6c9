"""Which quantizer should be the default? Standard CNN vs NeuroView hard / soft / none.

Trains each network with the same plain AdamW + one-cycle loop (neuroview.training.demo.train) on
scikit-learn digits (2-D SmallCNN) and mnist1d (1-D SmallCNN), several seeds, and writes
benchmarks/results/quantizers.json and a Markdown table (mean ± std of test accuracy).

    python benchmarks/quantizers.py                 # 3 seeds, ~10 min on 2 cores
    python benchmarks/quantizers.py --seeds 1 --epochs 3 --out /tmp/q   # smoke run, beside the README's source

``meta.command`` records the command as run (its arguments too); ``docs_tables.py`` refuses to put a file of other
epochs than :data:`DATASETS`'s into the README (whose prose states them), and marks a cell of fewer than
:data:`SEEDS` seeds with its count.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from neuroview.training.demo import accuracy, load_digits_tensors, train
from neuroview.zoo import create_model
from _cache import read_cache, write_cache  # the runs cache, and quantizers.json read by docs_tables.py: written whole

VARIANTS = ["standard", "hard", "soft", "none"]
OUT = Path(__file__).parent / "results"
SEEDS = 3  # the default --seeds: what the README's table is of


def load_mnist1d(seed: int = 0):
    """mnist1d generated locally (never fetched): [N, 1, 40] tensors, 4000 train / 1000 test."""
    from mnist1d.data import get_dataset_args, make_dataset  # noqa: PLC0415

    d = make_dataset(get_dataset_args())
    f = lambda a: torch.tensor(a, dtype=torch.float32).unsqueeze(1)  # noqa: E731
    return f(d["x"]), torch.tensor(d["y"]).long(), f(d["x_test"]), torch.tensor(d["y_test"]).long()


DATASETS = {
    # name: (loader, model kwargs, epochs)
    "digits": (load_digits_tensors, dict(in_channels=1, num_classes=10), 15),
    "mnist1d": (load_mnist1d, dict(in_channels=1, num_classes=10, dims=1, kernel_size=5), 15),
}


def run(dataset: str, variant: str, seed: int, epochs: int) -> float:
    loader, kw, _ = DATASETS[dataset]
    x_tr, y_tr, x_te, y_te = loader(seed) if dataset == "digits" else loader()
    torch.manual_seed(seed)
    net = create_model("small_cnn", **kw) if variant == "standard" else create_model("nv_small_cnn", quantizer=variant, **kw)
    train(net, x_tr, y_tr, epochs=epochs, seed=seed)
    return accuracy(net, x_te, y_te)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=SEEDS)
    p.add_argument("--epochs", type=int, default=None, help="override the per-dataset epochs")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fresh", action="store_true", help="ignore the cache of finished runs")
    p.add_argument("--out", type=Path, default=OUT, help="folder of quantizers.json, .md and the runs cache "
                   "(default %(default)s: the README's source; give another for a trial run)")
    args = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    out = args.out
    torch.set_num_threads(args.threads)
    out.mkdir(parents=True, exist_ok=True)
    # Each finished run is kept in a cache, so an interrupted benchmark resumes where it stopped.
    cache_file = out / "quantizers_runs.json"
    cache = read_cache(cache_file) if not args.fresh else {}
    results = {}
    for ds, (_, _, epochs) in DATASETS.items():
        for v in VARIANTS:
            accs = []
            for s in range(args.seeds):
                key = f"{ds}/{v}/seed{s}/epochs{args.epochs or epochs}"
                if key not in cache:
                    t = time.perf_counter()
                    cache[key] = run(ds, v, s, args.epochs or epochs)
                    print(f"{ds:8s} {v:9s} seed {s}: {cache[key]:.2%} ({time.perf_counter() - t:.0f} s)", flush=True)
                    write_cache(cache_file, json.dumps(cache, indent=1))
                accs.append(cache[key])
            results.setdefault(ds, {})[v] = accs
    meta = {"seeds": args.seeds, "epochs": args.epochs or {d: e for d, (_, _, e) in DATASETS.items()},
            "torch": torch.__version__, "command": shlex.join(["python", "benchmarks/quantizers.py", *argv])}
    write_cache(out / "quantizers.json", json.dumps({"meta": meta, "accuracy": results}, indent=2))
    lines = ["| dataset | " + " | ".join(VARIANTS) + " |", "|---" * (len(VARIANTS) + 1) + "|"]
    for ds, r in results.items():
        cells = [f"{100 * statistics.mean(a):.1f} ± {100 * statistics.pstdev(a):.1f}" for a in r.values()]  # population std
        lines.append(f"| {ds} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    write_cache(out / "quantizers.md", table + "\n")
    print(table)


if __name__ == "__main__":
    main()
