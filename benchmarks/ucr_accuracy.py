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

    # choosing an option: a fifth of each training split held out, scored there (the test split unread)
    python benchmarks/ucr_accuracy.py --sets GunPointRescaled BasicMotions --seeds 0 --val 0.2 --extra "<option>"
    # every cached run with its end of training (accuracy on its own training split, loss, epochs)
    python benchmarks/ucr_accuracy.py --list --sets GunPoint ArrowHead

``<Set>Rescaled`` is the aeon set with every series rescaled and shifted at random, read from an
``.npz`` (:func:`rescaled`): raw recordings, as a user's come. Runs are cached in
``benchmarks/results/ucr_accuracy.json`` by recipe, set and seed with the recipe's SHA-256: a
changed recipe is run again, and the run of the older version is kept beside it (``<key>@<sha>``).
Each run keeps its end of training: the final weights' accuracy on the training split they were
fit on, the last epoch's mean training loss, the epochs (completed) and steps, and why it stopped: on a
plateau of the training loss (its EarlyStopping), at its maximum, on ``--trainer.max_time`` ("time") or
otherwise ("other"; runs recorded before this was read from the checkpoint say "plateau" for any early
stop). ``--export`` also saves each recipe's seed-0 model of every development set into the zoo
(``checkpoints/``, manifest entry ``<arch>.<set>``).
Times are wall-clock seconds of one run with one thread (runs go ``--jobs`` at a time on the
2-core machine); they include the start of Python and Lightning (about 5 s).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from reproduce_zoo import RESULTS, provenance, train, training_record  # noqa: E402
from _cache import read_cache  # noqa: E402 - names a cut-short cache and what to do, where json.loads named nothing

OUT = RESULTS / "ucr_accuracy.json"  # --results points elsewhere
MINIROCKET = RESULTS / "minirocket.json"
RECIPES = ("recipes/ucr_nv_cnn.yaml", "recipes/ucr_cnn.yaml", "recipes/ucr_nv_rnn.yaml", "recipes/ucr_rnn.yaml")
DEV_SETS = ("GunPoint", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels", "ArrowHead", "mnist1d")
CNN_ONLY = ("mnist1d",)
#: The recipe versions (SHA-256 prefixes) whose runs the README's tables show: the recipes of commit
#: c88f87c (1,500 steps, each channel standardized over the training split), whose 3-seed runs are
#: complete. The recipes now train until their training loss stops falling and normalize each
#: series; once ``python benchmarks/ucr_accuracy.py --jobs 2`` (and the unseen sets) has filled their
#: runs in, empty this to show them (``--table`` always shows the recipes as they are now).
README_SHAS = {"recipes/ucr_nv_cnn.yaml": "72596eeda5311215", "recipes/ucr_cnn.yaml": "2aa8776d00120195",
               "recipes/ucr_nv_rnn.yaml": "a35ca0d2279173b0", "recipes/ucr_rnn.yaml": "37de028a915fbc37"}
#: NeuroView LITE's recipe as one network, the version before validation gave it five members
#: (``ucr_ensemble.py --val``): its runs fill the README's table of single networks (the other
#: three recipes as they are now) while the five-member runs fill in.
SINGLE_SHAS = {"recipes/ucr_nv_cnn.yaml": "9db57805c5b7bdfc"}


#: Recipes whose file changed in its comments only since runs were made: the runs of version
#: ``since`` stand for the file as long as its settings (the YAML it parses to, :func:`_settings`)
#: are still ``settings``; any change of a setting makes a new version, as it should. So a comment
#: can be corrected without making hours of runs stale.
SAME_SETTINGS = {"recipes/ucr_nv_cnn.yaml": {"since": "4b721e6c07e1a80f", "settings": "84f009fb8c0d0a46"},
                 "recipes/ucr_nv_rnn.yaml": {"since": "8a0799637a3906e5", "settings": "e1492511b38026f8"},
                 "recipes/ucr_rnn.yaml": {"since": "38d906775ac694df", "settings": "420d95cf507ebf1c"}}


#: Settings that change how a recipe is computed, not what it computes (the same numbers to float
#: rounding, as one thread or two would give): left out of :func:`_settings`, so a recipe that takes
#: one keeps its version (with :data:`SAME_SETTINGS`). ``batched``: the members in one grouped pass
#: (``neuroview.core.batched``; ``tests/core/test_batched.py`` holds it to the members' own numbers).
EXECUTION_ONLY = (("model", "model_kwargs", "batched"),)


def _settings(recipe: str, root: Path | None = None) -> str:
    """SHA-256 prefix of what ``recipe`` sets (its parsed YAML, keys sorted, :data:`EXECUTION_ONLY`
    settings left out): blind to comments and layout. ``root``: the checkout (default: this script's)."""
    import yaml  # noqa: PLC0415 - PyYAML comes with jsonargparse, which the recipes need

    data = yaml.safe_load(((root or ROOT) / recipe).read_text())
    for *path, key in EXECUTION_ONLY:
        nodes = [data]
        for k in path:
            nodes.append(nodes[-1].get(k) if isinstance(nodes[-1], dict) else None)
        if isinstance(nodes[-1], dict) and key in nodes[-1]:
            del nodes[-1][key]
            if not nodes[-1]:  # a dict that held only it sets nothing
                del nodes[-2][path[-1]]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _sha(recipe: str, root: Path | None = None) -> str:
    """The recipe's version: the SHA-256 prefix of its file, or the version whose runs stand for it
    (:data:`SAME_SETTINGS`). ``root``: the checkout whose file it is (default: this script's)."""
    same = SAME_SETTINGS.get(recipe)
    if same is not None and _settings(recipe, root) == same["settings"]:
        return same["since"]
    return hashlib.sha256(((root or ROOT) / recipe).read_bytes()).hexdigest()[:16]


def recipe_path(recipe: str) -> str:
    """``recipe`` as the caches and :data:`README_SHAS` name it: its path from the checkout (``./recipes/x.yaml``, or
    an absolute path into it, is ``recipes/x.yaml``); a path outside it, as given. The one rule: ``ucr_choices`` and
    ``ucr_ensemble`` import it from here; a run's recorded recipe is read through it too (older runs say ``./``)."""
    full = Path(os.path.normpath(ROOT / recipe))  # lexical: a recipe that is a link stays its own name
    return full.relative_to(ROOT).as_posix() if full.is_relative_to(ROOT) else recipe


def _is_rnn(recipe: str) -> bool:
    return "rnn" in Path(recipe).stem


def overrides(dataset: str, val: float = 0.0, fold: int | None = None) -> list[str]:
    """Command-line arguments that point a recipe at ``dataset`` (with ``val``: that share of the
    training split carved out for validation, stratified by the data module's seed).

    ``<Set>Rescaled`` (``GunPointRescaled``) is an aeon set with every series rescaled and shifted at
    random (:func:`rescaled`), read from an ``.npz`` as a user's own raw recordings would be. With
    ``fold``, fold ``fold`` of the ``1 / val`` stratified folds is held out instead (cross-validation)."""
    fold_args = ["--data.init_args.val_fold", str(fold)] if fold is not None else []
    if dataset == "mnist1d":
        return (["--data", "neuroview.data.MNIST1DDataModule", "--data.batch_size", "auto", "--data.val_fraction", str(val)]
                + [a.replace("init_args.", "") for a in fold_args])
    split = ["--data.init_args.val_fraction", str(val), *fold_args] if val else []
    if dataset.endswith(RESCALED):
        return ["--data", "neuroview.data.NpzDataModule", "--data.init_args.path", str(rescaled(dataset.removesuffix(RESCALED)))] + split
    return ["--data.init_args.name", dataset] + split


RESCALED = "Rescaled"


def rescaled(name: str, seed: int = 0) -> Path:
    """The aeon set ``name`` (equal length) as an ``.npz`` of raw recordings, cached: every series
    multiplied by its own factor, log-uniform in [0.05, 20], and shifted by its own offset, uniform in
    [-100, 100] (the archive's sets come z-normalized one by one; a user's recordings do not)."""
    import numpy as np
    from aeon.datasets import load_classification

    from neuroview.data import cache_dir
    from neuroview.data.cache import save_npz

    path = cache_dir() / f"{name.lower()}_rescaled_seed{seed}_v1.npz"
    if path.is_file():
        return path
    rng, arrays = np.random.default_rng(seed), {}
    for split, suffix in (("train", ""), ("test", "_test")):
        x, y = load_classification(name, split=split)
        a = np.exp(rng.uniform(np.log(0.05), np.log(20), (len(x), 1, 1)))
        arrays["X" + suffix] = (a * np.asarray(x) + rng.uniform(-100, 100, (len(x), 1, 1))).astype(np.float32)
        arrays["y" + suffix] = np.asarray(y).astype(str)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_npz(path, **arrays)
    return path


def run_one(recipe: str, dataset: str, seed: int, export: bool, extra: tuple[str, ...] = (), val: float = 0.0,
            cv: bool = False) -> dict:
    """One run in this (worker) process; returns its record (and exports seed 0 when asked).

    With ``val`` the model learns from the rest of the training split and is scored on the
    validation split carved from it (``val_acc``); the test split is not read. With ``cv`` that split
    is fold ``seed % k`` of a k-fold cross-validation (``k = 1 / val``): seeds 0 to k - 1 validate
    every training series once, each with its own network."""
    import torch

    torch.set_num_threads(1)
    fold = seed % round(1 / val) if cv else None
    sha = _sha(recipe)  # the version trained: taken as the fit reads the recipe, not when the run ends (an edit
    # during a run of half an hour gave its record the version of the file as it was then)
    code = provenance()  # the package's commit, taken at the start for the same reason
    r = train(recipe, seed, extra=overrides(dataset, val, fold) + list(extra), threads=1, split="val" if val else "test")
    scores = ({"val_acc": r["metrics"]["val_acc"], "val_size": r["metrics"]["val_size"], "val_fraction": val} if val
              else {"test_acc": r["metrics"]["test_acc"], "test_size": r["metrics"]["test_size"]})
    if fold is not None:
        scores["val_fold"] = fold
    rec = {"recipe": recipe, "set": dataset, "seed": seed, "sha": sha, "arch": r["arch"], "extra": list(extra),
           **scores, **r["fit"], "epochs": r["epochs"], "steps": r["steps"], "seconds": round(r["seconds"], 1),
           # where Lightning's accelerator="auto" trained it (the fit runs in a subprocess that sees the same devices)
           "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", **code, "torch": torch.__version__,
           # members in one pass (EXECUTION_ONLY): true, or "auto" (batched on a GPU, apart on the CPU: see "device")
           **({"batched": r["arch_kwargs"]["batched"]} if r["arch_kwargs"].get("batched") else {})}
    if export:
        from neuroview.zoo import pretrained as zoo

        tag = dataset.lower()
        zoo.save_pretrained(
            r["model"], f"{r['arch']}.{tag}", architecture=r["arch"], arch_kwargs=r["arch_kwargs"],
            dataset={"name": tag, "data_module": r["data"], "split": "test", "class_names": zoo.make_datamodule(r["data"]).class_names},
            recipe=recipe, seed=seed,
            metrics=r["metrics"], overwrite=True,  # --export re-exports the set's entry with this run
            # the recipe's budget, what ran and why it stopped: not the steps run as if they were its max_steps
            extra={"training": training_record(  # the command as run: the val/fold overrides and extra too
                r, f"neuroview fit --config {recipe} {shlex.join(overrides(dataset, val, fold) + list(extra))} "
                   f"--seed_everything {seed}")},
        )
    return rec


def _key(recipe: str, dataset: str, seed: int, extra: tuple[str, ...] = (), val: float = 0.0, cv: bool = False) -> str:
    return (f"{Path(recipe).stem}@{dataset}@{seed}" + (f"@{' '.join(extra)}" if extra else "") + (f"@val{val}" if val else "")
            + ("cv" if cv else ""))


def keep(runs: dict, key: str, rec: dict) -> dict:
    """``runs`` with ``rec`` under ``key``; a run of another version of the recipe found there moves to
    ``<key>@<its sha>``: the tables read runs by version (:data:`README_SHAS`), not by key."""
    old = runs.get(key)
    out = dict(runs)
    if old is not None and old.get("sha") != rec.get("sha"):
        out[f"{key}@{old['sha']}"] = old
    return out | {key: rec}


def merge(runs: dict, other: dict) -> tuple[dict, int]:
    """``runs`` with every run of ``other`` it lacks (``other``: the cache of runs made elsewhere,
    e.g. in a git worktree holding an earlier version of a recipe). A run goes in under its key,
    or under ``<key>@<sha>`` where a run of another version holds the key here (that one stays:
    a run is found by key and version, :func:`keep`). Returns the merged runs and how many were new."""
    new = 0
    for key, rec in other.items():
        moved = key.endswith("@" + str(rec.get("sha")))
        if rec in (runs.get(key), None if moved else runs.get(f"{key}@{rec.get('sha')}")):
            continue  # already here (perhaps moved aside since)
        plain = runs.get(key.removesuffix("@" + str(rec.get("sha")))) if moved else None
        if plain is not None and plain.get("sha") == rec.get("sha"):
            continue  # moved aside there (the worktree ran a newer version), the same version's run under the plain key here
        here = runs.get(key)
        if not moved and here is not None and here.get("sha") != rec.get("sha"):
            key = f"{key}@{rec.get('sha')}"  # the run under the plain key here stays: it is the recipe as it is here
        runs = {**runs, key: rec}
        new += 1
    return runs, new


def load(path: Path = OUT) -> dict:
    """The runs cached in ``path`` (``{}`` where there is none); a ValueError naming a file that is not readable JSON."""
    return read_cache(path)


def one_per_seed(items, what: str) -> list[dict]:
    """The runs of ``items`` (``(key, run)`` pairs of one recipe version on one set), one per seed, by seed: two runs of
    one seed are one run (a merge or a moved key may hold it twice), or a ValueError where they differ."""
    seen: dict[int, tuple[str, dict]] = {}
    for key, run in items:
        if run["seed"] in seen and seen[run["seed"]][1].get("test_acc") != run.get("test_acc"):
            raise ValueError(f"{what}: runs {seen[run['seed']][0]!r} and {key!r} are both seed {run['seed']} of version "
                             f"{run.get('sha')} with test accuracies {seen[run['seed']][1].get('test_acc')} and "
                             f"{run.get('test_acc')}; delete the one that should not count")
        seen.setdefault(run["seed"], (key, run))
    return [run for _, (_, run) in sorted(seen.items())]


def save(runs: dict, path: Path = OUT) -> None:
    from neuroview._io import atomic_write

    atomic_write(path, (json.dumps(dict(sorted(runs.items())), indent=2) + "\n").encode())


def table(recipes: list[str], sets: list[str], runs: dict, mr: dict | None = None, shas: dict | None = None) -> str:
    """Markdown: one row per set, one column per recipe and MiniRocket, mean ± std over seeds (in %).

    Only runs of each recipe as it is now (its SHA-256) count, or of the version ``shas`` names
    (:data:`README_SHAS`: what the README shows); ``mr``: minirocket.json's results.
    """
    if mr is None:
        mr = read_cache(MINIROCKET)
    names = [Path(r).stem for r in recipes]
    lines = ["| set | " + " | ".join(names) + " | MiniRocket |", "|---" * (len(names) + 2) + "|"]
    times = {n: [] for n in names}
    # a run recorded as ./recipes/x.yaml (before --recipes was normalized) is recipes/x.yaml's: read once a run
    named = {k: recipe_path(v["recipe"]) for k, v in runs.items()}
    for s in sets:
        cells = []
        for r, n in zip(recipes, names):
            sha = (shas or {}).get(r) or _sha(r)
            got = one_per_seed(((k, v) for k, v in runs.items() if named[k] == r and v["set"] == s and v["sha"] == sha
                                and not v.get("extra") and "test_acc" in v), f"{n} on {s}")
            times[n] += [v["seconds"] for v in got]
            accs = [100 * v["test_acc"] for v in got]
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


def listing(recipes: list[str], sets: list[str], runs: dict, extra: tuple[str, ...] = (), val: float = 0.0,
            cv: bool = False) -> str:
    """One line per cached run of the recipes as they are now (with these ``extra`` options and
    ``val`` fraction): the accuracy it was scored by (validation or test), then the end of
    training: accuracy on its own training split, last epoch's loss, epochs, and why it stopped."""
    lines, named = [], {k: recipe_path(v["recipe"]) for k, v in runs.items()}  # ./recipes/x.yaml is recipes/x.yaml's
    for r in recipes:
        for s in sets:
            got = [v for k, v in runs.items() if named[k] == r and v["set"] == s and v["sha"] == _sha(r)
                   and tuple(v.get("extra", ())) == extra and v.get("val_fraction", 0.0) == val
                   and ("val_fold" in v) == cv]
            for v in sorted(got, key=lambda v: v["seed"]):
                score = f"val {100 * v['val_acc']:5.1f}" if val else f"test {100 * v['test_acc']:5.1f}"
                fit = (f"train {100 * v['train_acc']:5.1f}, loss {v['train_loss']:.4f}, {v['epochs']} epochs "
                       f"({v['steps']} steps, {v['stopped']})" if "train_acc" in v else "end of training not recorded")
                lines.append(f"{_key(r, s, v['seed'], extra, val, cv):60s} {score} | {fit} | {v['seconds']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="+", default=list(RECIPES))
    p.add_argument("--sets", nargs="+", default=list(DEV_SETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=1, help="runs at a time, one thread each")
    p.add_argument("--export", action="store_true", help="save each recipe's seed-0 model of every set into the zoo")
    p.add_argument("--table", action="store_true", help="print the table from the cached runs; train nothing")
    p.add_argument("--list", action="store_true", help="print every cached run (with --extra and --val: those); train nothing")
    p.add_argument("--rerun", action="store_true", help="run again even where a cached run of the same recipe exists")
    p.add_argument("--results", type=Path, default=OUT, help="the JSON of runs (the cache), default %(default)s")
    p.add_argument("--extra", default="", help="tuning: options added to every run, e.g. '--model.model_kwargs.hidden_size 64' "
                                               "(recorded apart: such runs never enter the table)")
    p.add_argument("--val", type=float, default=0.0, help="choosing options: carve this share of each training split "
                   "for validation and score on it (the test split is not read; such runs never enter the table)")
    p.add_argument("--cv", action="store_true", help="with --val 1/k: seed s holds out fold s %% k of a k-fold "
                   "cross-validation of the training split (seeds 0 to k - 1 validate every series once)")
    p.add_argument("--merge", type=Path, default=None, help="add the runs of another cache (a worktree's) to --results; train nothing")
    args = p.parse_args(argv)
    args.recipes = [recipe_path(r) for r in args.recipes]  # ./recipes/x.yaml is recipes/x.yaml: as the runs record it
    if missing := [r for r in args.recipes if not (ROOT / r).is_file()]:
        p.error(f"--recipes: expected recipe files, paths from the checkout {ROOT} (as {RECIPES[0]}), got {' '.join(missing)}: "
                "no such file")
    if args.merge is not None:
        from neuroview.zoo.pretrained import _locked  # the zoo's file lock, as _run takes it

        with _locked(RESULTS):
            runs, new = merge(load(args.results), load(args.merge))
            save(runs, args.results)
        print(f"{new} runs from {args.merge} added to {args.results}")
        return 0
    extra = tuple(args.extra.split())
    if args.cv and not args.val:
        p.error("--cv: needs --val 1/k (0.2: 5 folds)")
    if (extra or args.val) and args.export:
        p.error("--export: the zoo holds the recipes as they are, trained on the whole training split; drop --extra and --val")
    runs = load(args.results)
    if not (args.table or args.list):
        todo = [(r, s, seed) for r in args.recipes for s in args.sets for seed in args.seeds
                if not (_is_rnn(r) and s in CNN_ONLY)
                and (args.rerun or runs.get(_key(r, s, seed, extra, args.val, args.cv), {}).get("sha") != _sha(r)
                     or (args.export and seed == 0))]
        _run(todo, args.jobs, args.export, extra, args.val, args.results, args.cv)
    if args.list or extra or args.val:
        print(listing(args.recipes, args.sets, load(args.results), extra, args.val, args.cv))
    else:
        print(table(args.recipes, args.sets, load(args.results)))
    return 0


def _run(todo: list[tuple[str, str, int]], jobs: int, export: bool, extra: tuple[str, ...], val: float, results: Path,
         cv: bool = False) -> None:
    """Run ``todo`` (recipe, set, seed), ``jobs`` at a time, caching each run in ``results`` as it ends."""
    from neuroview.zoo.pretrained import _locked  # the zoo's file lock: parallel scripts share this JSON

    # a fresh worker per run: the fit runs in a subprocess that imports the code as it is then, and a
    # worker kept from an earlier run would score it with the code as it was (a data module's new
    # argument in the run's config then failed every run after an edit)
    with ProcessPoolExecutor(max_workers=jobs, max_tasks_per_child=1) as pool:
        futures = {pool.submit(run_one, r, s, seed, export and seed == 0, extra, val, cv): (r, s, seed) for r, s, seed in todo}
        for fut in as_completed(futures):
            key = _key(*futures[fut], extra, val, cv)
            try:
                rec = fut.result()
            except Exception as e:  # one failed run is reported, the others go on
                print(f"FAILED {key}: {str(e)[-2000:]}", flush=True)
                continue
            with _locked(RESULTS):  # other runs of this script may write the same file
                save(keep(load(results), key, rec), results)
            score = rec["val_acc"] if val else rec["test_acc"]
            print(f"{key}: {100 * score:.2f}% ({'validation' if val else 'test'}), training split {100 * rec['train_acc']:.1f}% "
                  f"after {rec['epochs']} epochs ({rec['stopped']}) in {rec['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
