"""Would an ensemble close the gap to MiniRocket? Members of a default recipe, their logits averaged.

InceptionTime and LITETime, as published, are ensembles of five networks. An ensemble of
NeuroView-CNNs whose logits are averaged is still one NeuroView-CNN: the mean of the members'
linear decisions is one linear classifier over all members' unit codes (each weight divided by the
number of members), so every explanation still sums exactly to its logit. This script measures
what averaging buys before any recipe pays five times its training for it.

Each member is ``neuroview fit --config <recipe> --data.init_args.name <set> --seed_everything <s>``
unchanged (as ``ucr_accuracy.py`` runs it, one thread, ``--jobs`` at a time); its test-split logits
are kept in ``benchmarks/results/ucr_ensemble.json`` by recipe SHA-256, set and seed, so a rerun
trains only what the recipe as it is now lacks (a run of an earlier version stays, under
``<key>@<its sha>``, as ``ucr_accuracy.keep`` keeps it). The table gives the members' accuracy and
that of ensembles of ``--size`` members (seeds 0-4, 5-9, ...: ``--members 15`` gives three ensembles
of five), each the mean ± std over them, the ensemble's decision being the mean of its members' logits.

    nice -n 10 python benchmarks/ucr_ensemble.py --sets ArrowHead PickupGestureWiimoteZ --members 15 --jobs 2
    python benchmarks/ucr_ensemble.py --table       # the recipe versions UCR.md shows (ucr_accuracy.README_SHAS)

Whether a recipe should train ``members: 5`` is asked of validation data only: ``--val 0.2`` trains
every member on the rest of each training split and keeps its logits on the fifth carved out (the
data module's own split, the same for every seed; the test split is not read), in
``ucr_ensemble_val.json``, and the verdict is :func:`verdict`'s, over the five UCR development sets:

    nice -n 10 python benchmarks/ucr_ensemble.py --val 0.2 --sets GunPoint ItalyPowerDemand BasicMotions JapaneseVowels ArrowHead --jobs 2
    python benchmarks/ucr_ensemble.py --val 0.2 --table     # members, ensembles and the verdict per recipe

``--table`` trains and writes nothing, and prints the versions the docs' tables show (``README_SHAS``; with
``--val``, ``SINGLE_SHAS``: the versions judged, one network each), as ``docs_tables.py`` renders them, on the sets
of those versions' runs (:func:`shown_runs`) unless ``--sets`` names others; a recipe with no run of that version on
a set named is named in one line, with the sets and the versions it has runs of there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from neuroview.zoo.pretrained import _locked  # noqa: E402  the zoo's file lock, as ucr_accuracy.py takes it
from reproduce_zoo import RESULTS, train  # noqa: E402
from ucr_accuracy import CNN_ONLY, DEV_SETS, MINIROCKET, README_SHAS, SINGLE_SHAS, _sha, keep, overrides  # noqa: E402
from ucr_accuracy import recipe_path  # noqa: E402  one spelling a recipe (ucr_choices.py reads it from there too)
from ucr_choices import MARGIN  # noqa: E402  the same margin as every other option
from _cache import read_cache, write_cache  # noqa: E402 - resumable caches, written whole

OUT = RESULTS / "ucr_ensemble.json"
OUT_VAL = RESULTS / "ucr_ensemble_val.json"
#: the sets the choice is judged on: the five UCR development sets, as for the architecture in
#: ucr_choices.py (five members on MNIST-1D's 4,000 series would take hours on the 2 cores)
VAL_SETS = tuple(s for s in DEV_SETS if s not in CNN_ONLY)
RECIPES = ("recipes/ucr_nv_cnn.yaml", "recipes/ucr_cnn.yaml")


def member(recipe: str, dataset: str, seed: int, val: float = 0.0) -> dict:
    """Train one member (one thread) and return its test logits and labels; with ``val``, trained on
    the rest of the training split, its logits and labels on that share carved out (no test read)."""
    import torch

    from neuroview.zoo import pretrained as zoo
    from neuroview.zoo.evaluate import predict

    torch.set_num_threads(1)
    split = "val" if val else "test"
    sha = _sha(recipe)  # the version trained, taken as the fit reads the recipe (not when the run ends)
    r = train(recipe, seed, extra=overrides(dataset, val), threads=1, split=split)
    dm = zoo.make_datamodule(r["data"])
    dm.setup("fit" if val else "test")
    logits, labels = [], []
    with torch.no_grad():
        for batch in (dm.val_dataloader() if val else dm.test_dataloader()):
            z, y = predict(r["model"], batch)
            logits.append(z)
            labels.append(y)
    z, y = torch.cat(logits), torch.cat(labels)
    return {"recipe": recipe, "set": dataset, "seed": seed, "sha": sha, "arch": r["arch"],
            f"{split}_acc": (z.argmax(1) == y).float().mean().item(), **r["fit"], "seconds": round(r["seconds"], 1),
            **({"val_fraction": val} if val else {}),
            "logits": [[round(v, 5) for v in row] for row in z.tolist()], "labels": y.tolist()}


def _key(recipe: str, dataset: str, seed: int) -> str:
    return f"{Path(recipe).stem}@{dataset}@{seed}"


def _run_of(runs: dict, recipe: str, dataset: str, seed: int, sha: str) -> dict | None:
    """The kept run of version ``sha`` of ``recipe``: under its key, or under ``<key>@<sha>`` where a run
    of another version took the key since (``ucr_accuracy.keep``)."""
    key = _key(recipe, dataset, seed)
    return next((r for r in (runs.get(key), runs.get(f"{key}@{sha}")) if r is not None and r["sha"] == sha), None)


def shown_shas(recipes: list[str], val: bool = False) -> dict[str, str]:
    """The version of each recipe the docs' tables show, as ``docs_tables.render_ucr_ensemble[_val]`` pick it:
    ``ucr_accuracy.README_SHAS`` (test split) or ``SINGLE_SHAS`` (``val``: the versions judged, one network
    each); a recipe neither names, as it is now."""
    return {r: (SINGLE_SHAS if val else README_SHAS).get(r) or _sha(r) for r in recipes}


def shown_runs(runs: dict, shas: dict[str, str]) -> dict:
    """The runs of ``runs`` of the versions ``shas`` names (:func:`shown_shas`), each run's recipe read through
    ``recipe_path`` (older runs say ``./recipes/...``): what ``--table`` and the docs' table take their sets from, so
    a set whose runs are all of other versions has no row of blanks (``--sets`` naming it still shows it)."""
    return {k: r for k, r in runs.items() if shas.get(recipe_path(r.get("recipe", ""))) == r.get("sha")}


def unshown(recipes: list[str], sets: list[str], runs: dict, shas: dict[str, str], where: str) -> list[str]:
    """One line per recipe of ``recipes`` whose cells read blank on sets of ``sets`` (no run of its version
    ``shas[r]`` there), naming those sets and the versions it has runs of there, if any; ``where``: the cache's name."""
    lines = []
    for r in recipes:
        found = {s: {v["sha"] for v in runs.values() if recipe_path(v.get("recipe", "")) == r and v.get("set") == s}
                 for s in sets}
        blank = [s for s in sets if shas[r] not in found[s]]
        if blank:
            others = sorted({v[:12] for s in blank for v in found[s]})
            lines.append(f"{Path(r).stem}: no run of version {shas[r][:12]} on {', '.join(blank)} in {where}, its cells "
                         "blank; " + (f"it has runs of {', '.join(others)} there" if others else "no run of any version there"))
    return lines


def load(path: Path = OUT) -> dict:
    return read_cache(path)


def save(runs: dict, path: Path = OUT) -> None:
    from neuroview._io import atomic_write

    atomic_write(path, (json.dumps(dict(sorted(runs.items()))) + "\n").encode())


def _acc(run: dict) -> float:
    """A member's own accuracy on the split its logits are from (test, or validation with ``--val``)."""
    return run["test_acc"] if "test_acc" in run else run["val_acc"]


def ensemble_acc(members: list[dict]) -> float:
    """Accuracy of the mean of the members' logits (they must share one split, in one order)."""
    labels = members[0]["labels"]
    if any(m["labels"] != labels for m in members):
        raise ValueError("members: their labels differ; they were scored on different splits")
    n, c = len(labels), len(members[0]["logits"][0])
    mean = [[sum(m["logits"][i][j] for m in members) / len(members) for j in range(c)] for i in range(n)]
    return sum(max(range(c), key=row.__getitem__) == t for row, t in zip(mean, labels)) / n


def table(recipes: list[str], sets: list[str], seeds: list[int], runs: dict, size: int = 5, shas: dict | None = None) -> str:
    """Markdown: per recipe, its members' accuracy and that of ensembles of ``size`` members (the seeds
    in consecutive groups: 0-4, 5-9, ...), mean ± std (count), and MiniRocket. Members of each recipe
    as it is now, or of the version ``shas`` names (``ucr_accuracy.README_SHAS``: what the README shows)."""
    mr = json.loads(MINIROCKET.read_text()) if MINIROCKET.is_file() else {}
    names = [Path(r).stem for r in recipes]
    head = " | ".join(f"{n} members | {n} ensembles of {size}" for n in names)
    lines = [f"| set | {head} | MiniRocket |", "|---" * (2 * len(names) + 2) + "|"]
    for s in sets:
        cells = []
        for r in recipes:
            sha = (shas or {}).get(r) or _sha(r)
            have = {i: m for i in seeds if (m := _run_of(runs, r, s, i, sha)) is not None}
            groups = [[have[i] for i in g] for g in (seeds[j:j + size] for j in range(0, len(seeds), size))
                      if len(g) == size and all(i in have for i in g)]
            cells += [_stat([100 * _acc(m) for m in have.values()]),
                      _stat([100 * ensemble_acc(g) for g in groups])]
        ref = None if any("val_acc" in m for m in runs.values()) else mr.get(s.lower())  # MiniRocket: test split
        cells.append(f"{100 * ref['mean']:.1f} ± {100 * ref['std']:.1f}" if ref else "")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(recipe: str, sets: list[str], runs: dict, size: int = 5, sha: str | None = None) -> dict:
    """Whether ``recipe`` should train ``members: size``, by ``ucr_choices.py``'s rule carried over
    unchanged: the ensemble of seeds ``0 .. size-1`` must beat its members' mean accuracy, averaged
    over ``sets``, by more than :data:`ucr_choices.MARGIN` points. Before every set has all its
    members of the recipe as it is now, the verdict is "not run yet" (a member can score anywhere
    from 0 to 100%). ``sha``: the recipe version whose runs count (default: the recipe as it is
    now). Returns the verdict, both means (%) and the sets complete."""
    members, ensembles, sha = [], [], sha or _sha(recipe)
    for s in sets:
        have = [_run_of(runs, recipe, s, i, sha) for i in range(size)]
        if any(r is None for r in have):
            continue
        members.append(statistics.fmean(100 * _acc(r) for r in have))
        ensembles.append(100 * ensemble_acc(have))
    mem, ens = (statistics.fmean(v) if v else None for v in (members, ensembles))
    if len(members) < len(sets):
        word = "not run yet"
    else:
        word = f"members: {size}" if ens > mem + MARGIN else "one network"
    return {"recipe": Path(recipe).stem, "verdict": word, "members": mem, "ensemble": ens,
            "sets": f"{len(members)} / {len(sets)}"}


def verdict_line(v: dict, size: int = 5) -> str:
    """One line of :func:`verdict`'s result, as the script prints it and the README shows it."""
    pct = {k: "–" if v[k] is None else f"{v[k]:.1f}" for k in ("members", "ensemble")}
    return (f"{v['recipe']}: members {pct['members']}, ensemble of {size} {pct['ensemble']} "
            f"(mean over {v['sets']} sets): {v['verdict']}")


def keep_verdict(recipe: str, runs: dict, size: int = 5) -> dict | None:
    """Record :func:`verdict` for ``recipe`` among ``ucr_choices.py``'s kept verdicts (with the recipe
    version it judged), once every set is in: its report and the README's table of choices then
    list it, and it stays when the verdict changes the recipe (its members' runs then go stale)."""
    import ucr_choices as ch

    v = verdict(recipe, list(VAL_SETS), runs, size)
    if v["verdict"] == "not run yet":
        return None
    n = len(VAL_SETS) * size
    row = {"option": "members (CNN)", "recipe": v["recipe"], "sha": _sha(recipe)[:12],
           "current": "one network", "alternative": f"{size}, logits averaged (LITETime)",
           "current_acc": v["members"], "alternative_acc": v["ensemble"], "runs": f"{n} / {n}",
           "verdict": "change" if v["verdict"] == f"members: {size}" else "keep", "seeds": list(range(size))}
    with _locked(RESULTS):
        judged = read_cache(ch.VERDICTS)
        ch.keep_verdicts([row], judged)
        write_cache(ch.VERDICTS, json.dumps(judged, indent=1, sort_keys=True) + "\n")
    return row


def sets_of(runs: dict) -> list[str]:
    """The sets of ``runs``: development sets first, in their order, then the others by name."""
    found = {r["set"] for r in runs.values()}
    return [s for s in DEV_SETS if s in found] + sorted(found - set(DEV_SETS))


def seeds_of(runs: dict) -> list[int]:
    """Seeds 0 .. the largest of ``runs`` (an ensemble counts only when all its seeds are there)."""
    return list(range(max((r["seed"] for r in runs.values()), default=-1) + 1))


def _stat(values: list[float]) -> str:
    if not values:
        return ""
    sd = f" ± {statistics.pstdev(values):.1f}" if len(values) > 1 else ""  # population std, as every table of the docs
    return f"{statistics.mean(values):.1f}{sd} ({len(values)})"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="+", default=list(RECIPES))
    p.add_argument("--sets", nargs="+", default=None, help="default: those of the kept runs (with --table: of the "
                   "versions shown)")
    p.add_argument("--members", type=int, default=5, help="train seeds 0 .. members-1")
    p.add_argument("--size", type=int, default=5, help="members an ensemble (consecutive seeds)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--table", action="store_true", help="print the table from the kept runs, of the recipe versions "
                   "the docs show (ucr_accuracy.README_SHAS; with --val, SINGLE_SHAS); train and write nothing")
    p.add_argument("--val", type=float, default=0.0, help="choosing: carve this share of each training split, "
                   f"score members and ensembles on it (the test split is not read; kept in {OUT_VAL.name})")
    args = p.parse_args(argv)
    args.recipes = [recipe_path(r) for r in args.recipes]  # ./recipes/x.yaml is recipes/x.yaml: as the runs record it
    if missing := [r for r in args.recipes if not (ROOT / r).is_file()]:
        p.error(f"--recipes: expected recipe files, paths from the checkout {ROOT} (as {RECIPES[0]}), got {' '.join(missing)}: "
                "no such file")
    if not 0.0 <= args.val < 1.0:
        p.error(f"--val: expected a share in [0, 1), got {args.val}")
    out = OUT_VAL if args.val else OUT
    for name in ("members", "size"):
        if getattr(args, name) < 1:
            p.error(f"--{name}: expected a number >= 1, got {getattr(args, name)}")
    seeds = list(range(args.members))
    runs = load(out)
    if args.val:
        stale = sorted(k for k, r in runs.items() if r.get("val_fraction") != args.val)
        if stale:
            p.error(f"--val: {out.name} holds runs with another share ({stale[:3]} ...); move it aside first")
    now = {r: _sha(r) for r in args.recipes}
    shas = shown_shas(args.recipes, bool(args.val)) if args.table else now
    if args.sets is None:  # --table: the sets of the shown versions' runs, as the docs' table (docs_tables.py) has them
        args.sets = sets_of(shown_runs(runs, shas) if args.table else runs) or ["ArrowHead"]
    if not args.table:
        todo = [(r, s, i) for s in args.sets for r in args.recipes for i in seeds
                if _run_of(runs, r, s, i, now[r]) is None]
        with ProcessPoolExecutor(max_workers=args.jobs, max_tasks_per_child=1) as pool:  # as ucr_accuracy._run
            futs = {pool.submit(member, *t, args.val): t for t in todo}
            for f in as_completed(futs):
                rec = f.result()
                with _locked(RESULTS):  # another run of this script (other --recipes or --sets) may write too
                    # a run of another version under the key moves to <key>@<its sha>: the docs' tables read it
                    runs = keep(load(out), _key(rec["recipe"], rec["set"], rec["seed"]), rec)
                    save(runs, out)
                print(f"{_key(rec['recipe'], rec['set'], rec['seed'])}: {100 * _acc(rec):.2f}% in {rec['seconds']:.0f} s",
                      flush=True)
    print(table(args.recipes, args.sets, sorted(set(seeds) | set(seeds_of(runs))), runs, args.size, shas))
    if args.val:  # the choice: an ensemble only where validation says so, each recipe by the same rule
        print()
        for r in args.recipes:
            print("- " + verdict_line(verdict(r, list(VAL_SETS), runs, args.size, shas[r]), args.size))
            if not args.table:  # --table writes nothing (the verdict kept is of the recipe as it is now)
                keep_verdict(r, runs, args.size)
    for line in unshown(args.recipes, args.sets, runs, shas, out.name):
        print(line)


if __name__ == "__main__":
    main()
