"""Accuracy of NeuroView-RNN against the standard RNN it comes from, on aeon's shipped UCR/UEA sets.

For each of nn.RNN, nn.LSTM and nn.GRU (1 layer, hidden 64) and each dataset, two networks are
trained with the same recipe (optimizer, learning rate, schedule, epochs, batch size, gradient
clipping, weight decay), and scored on the test split after the last epoch (no early stopping,
no peeking at the test set):

  - standard:  ``RNNClassifier``, a linear layer on the last hidden state (packed, so each
               sequence's own last step);
  - NeuroView: ``NeuroViewRNN``, one linear layer on the hidden states of all steps.

Inputs are standardized per channel with statistics of the training split only. Seeds 0, 1, 2;
the table gives mean ± std (population std over the 3 seeds) of test accuracy in percent.
Writes benchmarks/results/rnn_accuracy.json and benchmarks/results/rnn_accuracy.md (``--out``).

The JSON is also the cache of finished runs, kept by (dataset, kind, model, seed): a run on a subset adds
its runs to those of the file and leaves the others (it replaced the whole file, the README's table with it),
and a job the file already holds is not run again, so a plain run re-measures nothing the file holds: after a
change of the code, ``--rerun`` runs every selected job again and replaces its runs. Each run records the code
it was made with (``commit``: the checkout's commit, ``+dirty`` where tracked files differ). A plain run writes
each run as it ends, so an interrupted run resumes; a ``--rerun`` writes its runs only when all of them are done,
so one cut short leaves the file as it was, not cells that mix two versions of the code. A cell whose runs were
made by different versions all the same (a run resumed after a change) reads ``(mixed code)``, and docs_tables
refuses it; a cell of fewer seeds than 0, 1, 2 shows their count, ``(2)``, one of other seeds shows them. The file
holds one recipe: a run with another recipe (``--hidden``, ``--epochs``, ...) is refused unless ``--out`` names
another file.

    nice -n 10 python benchmarks/rnn_accuracy.py --rerun         # everything again, ~22 min on 2 cores
    nice -n 10 python benchmarks/rnn_accuracy.py                 # only the jobs the file lacks
    python benchmarks/rnn_accuracy.py --datasets GunPoint --kinds gru --seeds 0 --rerun   # one cell, again
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from _cache import read_cache, write_cache  # read back by docs_tables.py: written whole (next to this script)
from reproduce_zoo import provenance  # the commit a run is made with (a sibling, as _cache)

OUT = Path(__file__).parent / "results"
DATASETS = ("GunPoint", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels", "ArrowHead")
KINDS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
MODELS = ("standard", "neuroview")
SEEDS = (0, 1, 2)  # the seeds of the table (README: "mean ± std over 3 seeds"); a cell of others is marked


@dataclass(frozen=True)
class Recipe:
    """One recipe for both networks; the knobs that matter, with why."""

    hidden: int = 64
    epochs: int = 100
    batch_size: int = 64  # full batch on the 36-67-series sets, 5 near-equal batches on JapaneseVowels (270)
    lr: float = 3e-3  # AdamW; cosine-annealed to 0 over the epochs
    weight_decay: float = 1e-4  # AdamW, applied to both networks alike
    clip: float = 1.0  # gradient-norm clipping: plain RNNs on 150-251 steps explode without it
    dropout: float = 0.0  # in front of the classifier (last state / all-step features), training only


def load(name: str) -> dict:
    """Train/test tensors ``[N, T, F]`` (zero-padded), lengths, integer labels; standardized on train."""
    from aeon.datasets import load_classification

    out = {}
    for split in ("train", "test"):
        X, y = load_classification(name, split=split)
        series = [np.asarray(a, dtype=np.float32).T for a in X]  # [T_i, F] each; lists when unequal length
        out[split] = (series, np.asarray(y))
    train_cat = np.concatenate(out["train"][0], 0)
    mean, std = train_cat.mean(0), train_cat.std(0) + 1e-8
    classes = sorted(set(out["train"][1].tolist()))
    data = {"classes": classes}
    for split, (series, y) in out.items():
        lengths = torch.tensor([len(s) for s in series])
        x = torch.zeros(len(series), int(lengths.max()), series[0].shape[1])
        for i, s in enumerate(series):
            x[i, : len(s)] = torch.from_numpy((s - mean) / std)
        data[split] = (x, lengths, torch.tensor([classes.index(v) for v in y.tolist()]))
    data["max_len"] = max(int(data["train"][1].max()), int(data["test"][1].max()))
    return data


def build(model: str, kind: str, num_features: int, num_classes: int, max_len: int, recipe: Recipe) -> nn.Module:
    import neuroview as nv

    rnn = KINDS[kind](num_features, recipe.hidden, batch_first=True)
    if model == "standard":
        return nv.RNNClassifier(rnn, num_classes, dropout=recipe.dropout)
    return nv.NeuroViewRNN(rnn, num_classes, max_len=max_len, dropout=recipe.dropout)


def fit(net: nn.Module, x: torch.Tensor, lengths: torch.Tensor, y: torch.Tensor, recipe: Recipe, seed: int) -> None:
    """The shared training loop: AdamW, cosine schedule, clipping, shuffled mini-batches."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = recipe.epochs * math.ceil(len(x) / recipe.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    net.train()
    # Near-equal batches (36 series at batch_size 32: 18 + 18, not 32 + 4): a 4-sample batch
    # gives a noisy BatchNorm estimate and a step as large as a full one.
    n_batches = math.ceil(len(x) / recipe.batch_size)
    for _ in range(recipe.epochs):
        for idx in torch.randperm(len(x), generator=g).chunk(n_batches):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x[idx], lengths[idx]), y[idx]).backward()
            nn.utils.clip_grad_norm_(net.parameters(), recipe.clip)
            opt.step()
            sched.step()


@torch.no_grad()
def accuracy(net: nn.Module, x, lengths, y) -> float:
    net.eval()
    pred = torch.cat([net(x[i : i + 256], lengths[i : i + 256]).argmax(1) for i in range(0, len(x), 256)])
    return (pred == y).float().mean().item() * 100


def run_one(job: tuple[str, str, str, int, dict]) -> dict:
    name, kind, model, seed, recipe = job
    torch.set_num_threads(1)  # 2 worker processes on 2 cores; tiny batches gain nothing from threads
    recipe = Recipe(**recipe)
    data = load(name)
    x, lengths, y = data["train"]
    torch.manual_seed(seed)
    net = build(model, kind, x.shape[-1], len(data["classes"]), data["max_len"], recipe)
    t = time.perf_counter()
    fit(net, x, lengths, y, recipe, seed)
    seconds = time.perf_counter() - t
    return {
        "dataset": name, "kind": kind, "model": model, "seed": seed,
        "train_acc": accuracy(net, *data["train"]), "test_acc": accuracy(net, *data["test"]),
        "train_seconds": round(seconds, 2),
    }


def cell(rows: list[dict], want=SEEDS) -> str:
    """Mean ± population std of ``rows``' test accuracy; with their count, ``(2)``, where they are fewer seeds than
    ``want``, their seeds, ``(seeds 0, 1, 3)``, where they are others, and ``(mixed code)`` where their runs were made
    by different versions of the code (:func:`mixed_cells`)."""
    accs, seeds = [r["test_acc"] for r in rows], sorted(r["seed"] for r in rows)
    if not accs:
        return "–"
    text = f"{statistics.mean(accs):.1f} ± {statistics.pstdev(accs):.1f}"
    if not set(seeds) <= set(want):
        text += f" (seeds {', '.join(map(str, seeds))})"
    elif len(seeds) != len(want):
        text += f" ({len(seeds)})"
    return text + (" (mixed code)" if len({r.get("commit") for r in rows}) > 1 else "")


def mixed_cells(runs: list[dict]) -> list[str]:
    """``"<dataset> <kind> <model>"`` of each cell whose runs record different commits (a run without one: the runs
    made before runs recorded it, one version among them)."""
    commits: dict[tuple, set] = {}
    for r in runs:
        commits.setdefault((r["dataset"], r["kind"], r["model"]), set()).add(r.get("commit"))
    return [" ".join(k) for k, c in sorted(commits.items()) if len(c) > 1]


def table(runs: list[dict], datasets, kinds) -> str:

    head = "| dataset | " + " | ".join(f"{k.upper()} standard | {k.upper()} NeuroView" for k in kinds) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(kinds))]
    wins = ties = total = 0
    for d in datasets:
        cells = []
        for k in kinds:
            means = {}
            for m in MODELS:
                rows = [r for r in runs if (r["dataset"], r["kind"], r["model"]) == (d, k, m)]
                cells.append(cell(rows))
                means[m] = statistics.mean(r["test_acc"] for r in rows) if rows else None
            if None not in means.values():
                total += 1
                wins += means["neuroview"] > means["standard"] + 0.05
                ties += abs(means["neuroview"] - means["standard"]) <= 0.05
            if means["neuroview"] is not None and means["standard"] is not None and means["neuroview"] > means["standard"] + 0.05:
                cells[-1] = f"**{cells[-1]}**"
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"NeuroView more accurate in {wins} of {total} (dataset, cell) pairs, equal in {ties} "
                 "(bold: NeuroView mean higher). Test accuracy %, mean ± std over seeds.")
    return "\n".join(lines)


JOB = ("dataset", "kind", "model", "seed")  # what a run is kept by in the file


def cached_runs(path: Path, recipe: dict) -> list[dict]:
    """The runs ``path`` holds (``[]`` where there is no file), made with ``recipe``; a ValueError where the file holds
    another recipe's runs (mixed in, the table would compare runs of two recipes under one recipe line)."""
    data = read_cache(path)
    if not data:
        return []
    made = data.get("meta", {}).get("recipe")
    if made != recipe:
        diff = ", ".join(f"{k} {made.get(k) if made else None} there, {v} here" for k, v in recipe.items()
                         if not made or made.get(k) != v)
        raise ValueError(f"--out {path.with_suffix('')}: {path} holds runs of another recipe ({diff}); give another "
                         f"--out for this recipe, or delete {path} to start it afresh")
    return data["runs"]


def _save(stem: Path, runs: list[dict], meta: dict) -> None:
    """The runs (sorted by job) and their meta, written whole."""
    runs = sorted(runs, key=lambda r: tuple(str(r[k]) for k in JOB))
    write_cache(stem.with_suffix(".json"), json.dumps({"meta": meta, "runs": runs}, indent=1))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=str(OUT / "rnn_accuracy"), help="path stem of the .json and .md files (the runs "
                   "it holds are kept; jobs it holds are not run again)")
    p.add_argument("--rerun", action="store_true", help="run again the jobs the --out file already holds, and replace them")
    for f, v in asdict(Recipe()).items():
        p.add_argument(f"--{f.replace('_', '-')}", type=type(v), default=v)
    args = p.parse_args(argv)
    recipe = {f: getattr(args, f) for f in asdict(Recipe())}
    stem = Path(args.out)
    try:
        runs = cached_runs(stem.with_suffix(".json"), recipe)
    except ValueError as e:
        p.error(str(e))
    runs = _run(args, recipe, stem, runs)
    datasets = [d for d in DATASETS if any(r["dataset"] == d for r in runs)]
    datasets += sorted({r["dataset"] for r in runs} - set(datasets))
    md = table(runs, datasets, [k for k in KINDS if any(r["kind"] == k for r in runs)])
    recipe_line = ", ".join(f"{k}={v}" for k, v in recipe.items())
    write_cache(stem.with_suffix(".md"), f"{md}\n\nRecipe (both networks): 1 layer, {recipe_line}. "
                                       f"{len(runs)} runs; {args.ran} of them run now, in {args.minutes:.1f} min.\n")
    print(md)
    print(f"{args.minutes:.1f} min")


def _run(args, recipe: dict, stem: Path, runs: list[dict]) -> list[dict]:
    """Run the jobs ``args`` selects that ``runs`` lacks (all of them with ``--rerun``); the runs of the file after."""
    done = {tuple(r[k] for k in JOB) for r in runs}
    jobs = [(d, k, m, s, recipe) for d in args.datasets for k in args.kinds for m in args.models for s in args.seeds
            if args.rerun or (d, k, m, s) not in done]
    held = len(args.datasets) * len(args.kinds) * len(args.models) * len(args.seeds) - len(jobs)
    if held:  # said, not hidden: after a change of the code these are the old code's figures
        print(f"{held} of the selected jobs are in {stem.with_suffix('.json')} already and are not run again "
              "(--rerun: run them again)", flush=True)
    # Longest jobs first, so the two workers finish together.
    cost = {"ArrowHead": 251 * 36, "GunPoint": 150 * 50, "BasicMotions": 100 * 40, "JapaneseVowels": 29 * 270, "ItalyPowerDemand": 24 * 67}
    jobs.sort(key=lambda j: -cost.get(j[0], 0))
    t = time.perf_counter()
    stem.parent.mkdir(parents=True, exist_ok=True)
    before = read_cache(stem.with_suffix(".json")).get("meta", {})
    # minutes and workers: of the last run of every job of the file (a subset's are not the table's)
    meta = {"recipe": recipe, "seeds": args.seeds, "workers": before.get("workers", args.workers),
            "minutes": before.get("minutes", 0.0), "torch": torch.__version__, "cpus": os.cpu_count()}
    commit, done_now = provenance()["commit"], []
    # one worker: in this process (a pool would start a fresh interpreter for nothing)
    with ProcessPoolExecutor(args.workers) if args.workers > 1 else _InProcess() as pool:
        for r in pool.map(run_one, jobs):
            done_now.append({**r, "commit": commit})
            if not args.rerun:  # each run as it ends: an interrupted run resumes from here
                runs = _merged(runs, done_now[-1:], meta, stem)
            print(f"{r['dataset']:>16} {r['kind']:>4} {r['model']:>9} seed {r['seed']}: "
                  f"test {r['test_acc']:5.1f}%  train {r['train_acc']:5.1f}%  ({r['train_seconds']:.0f} s)", flush=True)
    args.ran, args.minutes = len(jobs), (time.perf_counter() - t) / 60
    if args.rerun:  # all of them or none: one cut short leaves the file whole, of one version of the code
        runs = _merged(runs, done_now, meta, stem)
    if jobs and len(jobs) == len(runs):  # every run of the file made now: the whole table's time
        meta.update(minutes=round(args.minutes, 1), workers=args.workers)
        _save(stem, runs, meta)
    return runs


def _merged(runs: list[dict], new: list[dict], meta: dict, stem: Path) -> list[dict]:
    """``runs`` with ``new`` in place of their jobs' runs, saved (with ``meta``) to ``stem``'s JSON."""
    jobs = {tuple(r[k] for k in JOB) for r in new}
    runs = [old for old in runs if tuple(old[k] for k in JOB) not in jobs] + new
    meta["seeds"] = sorted({x["seed"] for x in runs})
    _save(stem, runs, meta)
    return runs


class _InProcess:
    """``ProcessPoolExecutor``'s ``map`` in this process, for one worker."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    map = staticmethod(map)


if __name__ == "__main__":
    main()
