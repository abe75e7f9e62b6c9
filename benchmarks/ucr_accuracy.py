"""The default time-series recipes against MiniRocket: every recipe x set x seed, one JSON, one table.

Each run is ``neuroview fit --config recipes/<recipe>.yaml --data.init_args.name <set>
--seed_everything <seed>`` unchanged (in a temporary folder): the final weights, scored on the
full test split. MNIST-1D swaps the data module (``neuroview.data.MNIST1DDataModule`` with the
recipe's ``batch_size`` and ``val_fraction``); it is run by the CNN recipes only. MiniRocket
(aeon, 10,000 kernels) comes from ``benchmarks/results/minirocket.json`` (``minirocket_reference.py``),
scored on the same splits with the same seeds.

    # the development sets (the only ones the defaults were tuned on), 3 seeds, 2 runs at a time
    nice -n 10 python benchmarks/ucr_accuracy.py --jobs 2
    # the "no tuning" check: sets nobody tuned on
    nice -n 10 python benchmarks/ucr_accuracy.py --sets OSULeaf PickupGestureWiimoteZ --seeds 0
    # the README table from the cached runs (no training)
    python benchmarks/ucr_accuracy.py --table
    # on the GPU machine, into a file of its own (each run alone: the GPU time a run)
    python benchmarks/ucr_accuracy.py --sets GunPoint --seeds 0 --results benchmarks/results/ucr_accuracy_gpu.json

Runs are cached in ``benchmarks/results/ucr_accuracy.json`` by recipe, set and seed with the
recipe's SHA-256: a changed recipe is run again. ``--export`` also saves each recipe's seed-0
model of every development set into the zoo (``checkpoints/``, manifest entry ``<arch>.<set>``).
Times are wall-clock seconds of one run with one thread (runs go ``--jobs`` at a time on the
2-core machine); they include the start of Python and Lightning (about 5 s).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from reproduce_zoo import RESULTS, train  # noqa: E402

OUT = RESULTS / "ucr_accuracy.json"  # --results points elsewhere
MINIROCKET = RESULTS / "minirocket.json"
RECIPES = ("recipes/ucr_nv_cnn.yaml", "recipes/ucr_cnn.yaml", "recipes/ucr_nv_rnn.yaml", "recipes/ucr_rnn.yaml")
DEV_SETS = ("GunPoint", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels", "ArrowHead", "mnist1d")
CNN_ONLY = ("mnist1d",)


def _sha(recipe: str) -> str:
    return hashlib.sha256((ROOT / recipe).read_bytes()).hexdigest()[:16]


def _is_rnn(recipe: str) -> bool:
    return "rnn" in Path(recipe).stem


def overrides(dataset: str) -> list[str]:
    """Command-line arguments that point a recipe at ``dataset``."""
    if dataset == "mnist1d":
        return ["--data", "neuroview.data.MNIST1DDataModule", "--data.batch_size", "auto", "--data.val_fraction", "0"]
    return ["--data.init_args.name", dataset]


def run_one(recipe: str, dataset: str, seed: int, export: bool, extra: tuple[str, ...] = ()) -> dict:
    """One run in this (worker) process; returns its record (and exports seed 0 when asked)."""
    import torch

    torch.set_num_threads(1)
    r = train(recipe, seed, extra=overrides(dataset) + list(extra), threads=1)
    rec = {"recipe": recipe, "set": dataset, "seed": seed, "sha": _sha(recipe), "arch": r["arch"], "extra": list(extra),
           "test_acc": r["metrics"]["test_acc"], "test_size": r["metrics"]["test_size"],
           "steps": r["steps"], "seconds": round(r["seconds"], 1),
           # where Lightning's accelerator="auto" trained it (the fit runs in a subprocess that sees the same devices)
           "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    if export:
        from neuroview.zoo import pretrained as zoo

        tag = dataset.lower()
        zoo.save_pretrained(
            r["model"], f"{r['arch']}.{tag}", architecture=r["arch"], arch_kwargs=r["arch_kwargs"],
            dataset={"name": tag, "data_module": r["data"], "split": "test"}, recipe=recipe, seed=seed,
            metrics=r["metrics"],
            extra={"training": {"max_steps": r["steps"], "checkpoint": "last step", "seconds": rec["seconds"],
                                "command": f"neuroview fit --config {recipe} {' '.join(overrides(dataset))} --seed_everything {seed}"}},
        )
    return rec


def _key(recipe: str, dataset: str, seed: int, extra: tuple[str, ...] = ()) -> str:
    return f"{Path(recipe).stem}@{dataset}@{seed}" + (f"@{' '.join(extra)}" if extra else "")


def load(path: Path = OUT) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def save(runs: dict, path: Path = OUT) -> None:
    from neuroview._io import atomic_write

    atomic_write(path, (json.dumps(dict(sorted(runs.items())), indent=2) + "\n").encode())


def table(recipes: list[str], sets: list[str], runs: dict, mr: dict | None = None) -> str:
    """Markdown: one row per set, one column per recipe and MiniRocket, mean ± std over seeds (in %).

    Only runs of each recipe as it is now (its SHA-256) count; ``mr``: minirocket.json's results.
    """
    if mr is None:
        mr = json.loads(MINIROCKET.read_text()) if MINIROCKET.is_file() else {}
    names = [Path(r).stem for r in recipes]
    lines = ["| set | " + " | ".join(names) + " | MiniRocket |", "|---" * (len(names) + 2) + "|"]
    times = {n: [] for n in names}
    for s in sets:
        cells = []
        for r, n in zip(recipes, names):
            got = [v for v in runs.values() if v["recipe"] == r and v["set"] == s and v["sha"] == _sha(r) and not v.get("extra")]
            times[n] += [v["seconds"] for v in got]
            accs = [100 * v["test_acc"] for v in sorted(got, key=lambda v: v["seed"])]
            cells.append(_fmt(accs) if accs else ("n/a" if _is_rnn(r) and s in CNN_ONLY else "not run"))
        m = mr.get(s.lower())
        cells.append(_fmt([100 * a for a in m["accs"]]) if m else "not run")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines.append("| seconds a run (median) | " + " | ".join(
        f"{statistics.median(times[n]):.0f}" if times[n] else "" for n in names) + " | |")
    return "\n".join(lines)


def _fmt(accs: list[float]) -> str:
    if len(accs) == 1:
        return f"{accs[0]:.1f} (1)"
    return f"{statistics.fmean(accs):.1f} ± {statistics.pstdev(accs):.1f} ({len(accs)})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="+", default=list(RECIPES))
    p.add_argument("--sets", nargs="+", default=list(DEV_SETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each")
    p.add_argument("--export", action="store_true", help="save each recipe's seed-0 model of every set into the zoo")
    p.add_argument("--table", action="store_true", help="print the table from the cached runs; train nothing")
    p.add_argument("--rerun", action="store_true", help="run again even where a cached run of the same recipe exists")
    p.add_argument("--results", type=Path, default=OUT, help="the JSON of runs (the cache), default %(default)s")
    p.add_argument("--extra", default="", help="tuning: options added to every run, e.g. '--model.model_kwargs.hidden_size 64' "
                                               "(recorded apart: such runs never enter the table)")
    args = p.parse_args(argv)
    extra = tuple(args.extra.split())
    if extra and args.export:
        p.error("--export: the zoo holds the recipes as they are; drop --extra")
    runs = load(args.results)
    if not args.table:
        todo = [(r, s, seed) for r in args.recipes for s in args.sets for seed in args.seeds
                if not (_is_rnn(r) and s in CNN_ONLY)
                and (args.rerun or runs.get(_key(r, s, seed, extra), {}).get("sha") != _sha(r) or (args.export and seed == 0))]
        from neuroview.zoo.pretrained import _locked  # the zoo's file lock: parallel scripts share this JSON

        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(run_one, r, s, seed, args.export and seed == 0, extra): (r, s, seed) for r, s, seed in todo}
            for fut in as_completed(futures):
                key = _key(*futures[fut], extra)
                try:
                    rec = fut.result()
                except Exception as e:  # one failed run is reported, the others go on
                    print(f"FAILED {key}: {str(e)[-2000:]}", flush=True)
                    continue
                with _locked(RESULTS):  # other runs of this script may write the same file
                    save(load(args.results) | {key: rec}, args.results)
                print(f"{key}: {100 * rec['test_acc']:.2f}% in {rec['seconds']:.0f} s", flush=True)
    print(table(args.recipes, args.sets, load(args.results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
