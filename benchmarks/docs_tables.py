"""Render every accuracy table of the docs from the data it comes from, and keep the docs in sync.

A table lives in a Markdown file between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``;
this script rewrites what is between the markers (``--check``: changes nothing, exits 1 and
names each table that differs). Where the numbers come from:

- ``checkpoints/manifest.json``: every zoo entry's test accuracy, size and parameters (tables
  ``zoo``, ``zoo_entries``; the zoo column of ``recipes``), with ``recipes/*.yaml`` for what
  each recipe trains (model, epochs, the checkpoint ``neuroview fit`` tests);
- ``benchmarks/results/zoo_runs.json`` (``reproduce_zoo.py --table``: every manifest recipe
  with seeds 0, 1, 2) and ``minirocket.json`` (``minirocket_reference.py``): the tables over
  seeds and the comparisons with MiniRocket (``seeds``, ``seeds_by_arch``, ``gaps``, ``aim``,
  the seeds column of ``recipes``);
- ``quantizers.json`` (``quantizers.py``), ``rnn_accuracy.json`` (``rnn_accuracy.py``);
- ``ucr_accuracy.json``, ``ucr_ensemble.json``, ``ucr_ensemble_val.json``, ``sparse_ensemble.json``,
  ``ucr_nv_minirocket.json``, ``ucr_choices.json`` (the scripts of those names), all read from ``--root``'s
  checkout, with its recipes for their versions;
- ``retrofit.json`` (``retrofit_zoo.py``): the retrofit of every standard zoo entry. Each
  result records the sha256 of the weights it was computed from; where the manifest names other
  weights (the zoo was retrained), writing re-runs those retrofits first (~10 s each on a CPU).

So after re-training the zoo (``reproduce_zoo.py --export ...``), this script is all it takes:

    python benchmarks/docs_tables.py            # rewrite every table (and stale retrofit results)
    python benchmarks/docs_tables.py --check    # exit 1 where a doc disagrees with the data

A seeds cell built from fewer runs than the header's seeds shows their count, ``99.4 (1)``, one of other seeds
shows them, ``(seeds 0, 1, 3)``; a run of ``zoo_runs.json`` counts only for its recipe as the file sets it now
(``reproduce_zoo.recipe_sha``: what the YAML sets, so a comment edit keeps its runs), and the check names a recipe
whose settings changed since its runs, a zoo entry trained from another version of its recipe than the file now
(``reproduce_zoo.entry_sha``), and a source file that is missing (its tables would read as dashes).
A results file that is not readable JSON is a ValueError naming it (``_cache.read_cache``).

``tests/test_docs.py`` runs the check. Imports the standard library, PyYAML, and (for the RNN
table, and a retrofit re-run) ``rnn_accuracy.py`` and ``retrofit_zoo.py``, with torch and neuroview.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib.util
import re
import statistics
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: which tables each document holds, in the order they appear
DOCS = {
    "README.md": ["quantizers", "zoo", "sparse", "sparse_default", "seeds", "gaps", "ucr_choices", "ucr_now", "nv_minirocket", "rnn_accuracy", "sparse_ensemble",
                  "depthwise_cost"],
    "benchmarks/UCR.md": ["ucr_single", "ucr", "ucr_unseen", "ucr_ensemble", "ucr_ensemble_val"],
    "recipes/README.md": ["recipes"],
    "checkpoints/README.md": ["zoo_entries", "seeds_by_arch", "aim", "retrofit"],
    "benchmarks/RNN.md": ["rnn_accuracy"],
}
#: dataset tag: (name, what its test split holds, what the recipes table says of it)
DATASETS = {
    "digits": ("digits", "test images", "scikit-learn digits (1,797 8x8)"),
    "mnist1d": ("mnist1d", "test sequences", "MNIST-1D (4,000 / 1,000, length 40)"),
    "gunpoint": ("GunPoint", "test series", "GunPoint (50 / 150, length 150)"),
    "italypowerdemand": ("ItalyPowerDemand", "test series", "ItalyPowerDemand (67 / 1,029, length 24)"),
    "basicmotions": ("BasicMotions", "test series", "BasicMotions (40 / 40, 6 x 100)"),
    "japanesevowels": ("JapaneseVowels", "test utterances", "JapaneseVowels (270 / 370, 12 x 7..29, variable length)"),
    "arrowhead": ("ArrowHead", "test series", "ArrowHead (36 / 175, length 251)"),
    "cifar10": ("CIFAR-10", "test images", "CIFAR-10 from `cifar-10-batches-py`"),
}
ARCH_LABEL = {"fcn1d": "FCN", "rnn": "RNN", "gru": "GRU", "lstm": "LSTM", "vit_tiny": "ViT", "lite": "LITE"}
AIM = 3.0  # points: the best NeuroView network within this much of MiniRocket on each set
DASH, MINUS = "–", "−"


@dataclass
class Sources:
    manifest: dict[str, dict]
    runs: dict[str, dict]
    minirocket: dict[str, dict]
    quantizers: dict
    rnn_runs: list[dict]
    retrofit: dict[str, dict]
    recipes: dict[str, dict]
    ucr_runs: dict[str, dict]
    sparse: dict[str, dict]  # the sparse zoo entries (sparsify_zoo.py), by the dense entry they come from
    sparse_runs: dict[str, dict]  # sparsify_zoo.json: "<entry>:<seed>" -> dense and sparse figures
    depthwise: list[dict]  # depthwise_cost.json's rows
    ucr_ensemble: dict = None  # ucr_ensemble.py's runs (test split), and with --val (validation)
    ucr_ensemble_val: dict = None
    sparse_ensemble: dict = None  # sparse_ensemble.py's runs
    nv_minirocket: dict = None  # ucr_nv_minirocket.py's runs
    rnn_meta: dict = None  # rnn_accuracy.json's meta (the recipe its runs were made with)
    root: Path = ROOT  # the checkout all of it was read from
    recipe_shas: dict = None  # recipe path -> its version, the SHA-256 prefix of what it sets (reproduce_zoo.recipe_sha)
    missing: list = None  # the source files that are not there (their tables read as dashes)

    @classmethod
    def load(cls, root: Path) -> Sources:
        results, missing = root / "benchmarks" / "results", []
        read_cache = _benchmark("_cache").read_cache  # a file that is not readable JSON: a ValueError naming it

        def read(path: Path, default):
            if not path.is_file():
                missing.append(str(path.relative_to(root)))
                return default
            return read_cache(path)

        files = sorted((root / "recipes").glob("*.yaml"))
        recipes = {f"recipes/{p.name}": yaml.safe_load(p.read_text()) for p in files}
        recipe_sha = _benchmark("reproduce_zoo").recipe_sha  # the one rule: what a recipe sets, not its bytes
        shas = {f"recipes/{p.name}": recipe_sha(f"recipes/{p.name}", root) for p in files}
        entries = read(root / "checkpoints" / "manifest.json", {"entries": {}})["entries"]
        dense = {n: e for n, e in entries.items() if "sparsified_from" not in e}
        sparse = {e["sparsified_from"]: {"name": n, **e} for n, e in entries.items() if "sparsified_from" in e}
        rnn = read(results / "rnn_accuracy.json", {"runs": []})
        return cls(dense, read(results / "zoo_runs.json", {}),
                   read(results / "minirocket.json", {}), read(results / "quantizers.json", {}),
                   rnn["runs"], read(results / "retrofit.json", {}), recipes,
                   read(results / "ucr_accuracy.json", {}), sparse, read(results / "sparsify_zoo.json", {}),
                   read(results / "depthwise_cost.json", {"rows": []})["rows"],
                   read(results / "ucr_ensemble.json", {}), read(results / "ucr_ensemble_val.json", {}),
                   read(results / "sparse_ensemble.json", {}), read(results / "ucr_nv_minirocket.json", {}),
                   rnn.get("meta", {}), root, shas,
                   missing + ([] if (results / "ucr_choices.json").is_file() else ["benchmarks/results/ucr_choices.json"]))


# ---------------------------------------------------------------------------- helpers
def tag_of(data: dict) -> str:
    """The dataset tag of a data-module spec, as ``reproduce_zoo.py`` names zoo entries."""
    cls = data["class_path"].rsplit(".", 1)[-1]
    if cls == "UCRDataModule":
        return data["init_args"]["name"].lower()
    return {"DigitsDataModule": "digits", "MNIST1DDataModule": "mnist1d"}.get(cls, cls.removesuffix("DataModule").lower())


def name_of(tag: str) -> str:
    return DATASETS.get(tag, (tag,))[0]


def order(tag: str) -> int:
    return list(DATASETS).index(tag) if tag in DATASETS else len(DATASETS)


def pct(acc: float) -> str:
    return f"{100 * acc:.1f}%"


def mean_std(accs: list[float], expected: int | None = None, seeds: list[int] | None = None,
             want: list[int] | None = None) -> str:
    """Mean ± population std over seeds, in %, as ``reproduce_zoo.py --table`` gives it; with the count, ``(n)``, where
    it is not the ``expected`` number of seeds (one run alone reads ``99.4 (1)``, not as seeds that agreed), and with
    the seeds themselves, ``(seeds 0, 1, 3)``, where ``seeds`` (those of ``accs``) are not among the header's ``want``."""
    if not accs:
        return DASH
    if seeds is not None and want is not None and not set(seeds) <= set(want):
        return f"{100 * statistics.fmean(accs):.1f} ± {100 * statistics.pstdev(accs):.1f} (seeds {', '.join(map(str, seeds))})"
    if expected is not None and len(accs) != expected:
        sd = f" ± {100 * statistics.pstdev(accs):.1f}" if len(accs) > 1 else ""
        return f"{100 * statistics.fmean(accs):.1f}{sd} ({len(accs)})"
    return f"{100 * statistics.fmean(accs):.1f} ± {100 * statistics.pstdev(accs):.1f}"


def header_seeds(src: Sources) -> list[int]:
    """The seeds the tables over seeds promise (the recipes table's header): the set of seeds most zoo entries have runs
    of, their recipes as they are now (:func:`seed_seeds`); so a stale run, a recipe no entry uses or one entry's odd
    seed does not relabel every other cell, and the cell that differs is marked."""
    sets = collections.Counter(tuple(seed_seeds(src, name)) for name in src.manifest)
    sets.pop((), None)
    return list(max(sets, key=lambda k: (sets[k], len(k)))) if sets else []


def seeds_cell(src: Sources, entry: str | None) -> str:
    """:func:`mean_std` of ``entry``'s seeds, with their count where they fall short of :func:`header_seeds`, and
    themselves where they are others."""
    want = header_seeds(src)
    return mean_std(seed_accs(src, entry), len(want), seed_seeds(src, entry), want)


def incomplete(src: Sources) -> list[str]:
    """One line per zoo entry whose seeds tables rest on other seeds than :func:`header_seeds`."""
    want = header_seeds(src)
    out = []
    for name in sorted(src.manifest):
        got = seed_seeds(src, name)
        if got != want:
            shown = "read –" if not got else "show the count" if set(got) <= set(want) else "show their seeds"
            out.append(f"{name}: {len(set(got) & set(want))} of the seeds {', '.join(map(str, want))} "
                       f"(has {', '.join(map(str, got)) or 'none'}); its cells {shown}")
    return out


def stale_runs(src: Sources) -> list[str]:
    """zoo_runs.json's recipes that have runs of another version of the file than the one in the checkout (what it
    sets: ``reproduce_zoo.recipe_sha``), and zoo entries trained from another version than their seeds' runs."""
    rz = _benchmark("reproduce_zoo")
    old = sorted({r["recipe"] for r in src.runs.values()
                  if r["recipe"] in src.recipe_shas and rz.run_sha(r) != src.recipe_shas[r["recipe"]]})
    out = [f"benchmarks/results/zoo_runs.json: runs of an older version of {r}; rerun "
           f"`python benchmarks/reproduce_zoo.py --table --recipes {r}` (and `--export {r}` if its zoo entry should "
           "follow)" for r in old]
    seeded = {r["recipe"] for r in src.runs.values()}  # the ucr_* entries' seeds are ucr_accuracy.py's of their own version
    for name, e in sorted(src.manifest.items()):
        trained = rz.entry_sha(name, e)
        if e["recipe"] in seeded and trained is not None and trained != src.recipe_shas.get(e["recipe"]):
            out.append(f"checkpoints/manifest.json: {name} was trained from another version of {e['recipe']} than the "
                       f"file now (the version its seeds cells count); re-export it: "
                       f"`python benchmarks/reproduce_zoo.py --export {e['recipe']}`")
    return out


def signed(points: float) -> str:
    return f"{'+' if round(points, 1) >= 0 else MINUS}{abs(points):.1f}"  # -0.04 reads +0.0, not -0.0


def pairs(src: Sources) -> list[tuple[str, str | None, str | None]]:
    """``(tag, standard entry, NeuroView entry)`` of the zoo, a NeuroView entry next to the
    standard one it is the NeuroView variant of, in dataset order."""
    found: dict[tuple[str, str], dict[bool, str]] = {}
    for name, e in src.manifest.items():
        arch = e["architecture"]
        found.setdefault((e["dataset"]["name"], arch.removeprefix("nv_")), {})[arch.startswith("nv_")] = name
    keys = sorted(found, key=lambda k: (order(k[0]), k[0], k[1]))
    return [(tag, found[(tag, base)].get(False), found[(tag, base)].get(True)) for tag, base in keys]


def _seed_runs(src: Sources, entry: str | None) -> list[dict]:
    """The runs over the seeds of ``entry``'s recipe, one per seed, by seed: zoo_runs.json's of the recipe as its file
    is now (an edited recipe's runs are of another recipe), or for a default time-series recipe ucr_accuracy.py's."""
    if entry is None:
        return []
    e = src.manifest[entry]
    recipe, tag = e["recipe"], e["dataset"]["name"]
    if any(r["recipe"] == recipe for r in src.runs.values()):
        now, run_sha = src.recipe_shas.get(recipe), _benchmark("reproduce_zoo").run_sha
        return sorted((r for r in src.runs.values() if r["recipe"] == recipe and run_sha(r) == now), key=lambda r: r["seed"])
    # a default time-series recipe runs on many sets: ucr_accuracy.py's runs of this one
    ucr = _benchmark("ucr_accuracy")
    sha = ucr.README_SHAS.get(recipe) or ucr._sha(recipe, src.root)  # the version the README shows (the entries' own)
    return ucr.one_per_seed(((k, r) for k, r in src.ucr_runs.items() if r["recipe"] == recipe and r["set"].lower() == tag
                             and r["sha"] == sha and not r.get("extra") and "test_acc" in r),  # tuning runs are not the recipe
                            f"ucr_accuracy.json, {recipe} on {tag}")


def seed_accs(src: Sources, entry: str | None) -> list[float]:
    """Test accuracies over the seeds of ``entry``'s recipe, by seed (:func:`_seed_runs`)."""
    return [r["test_acc"] for r in _seed_runs(src, entry)]


def seed_seeds(src: Sources, entry: str | None) -> list[int]:
    """The seeds :func:`seed_accs` has runs of."""
    return [r["seed"] for r in _seed_runs(src, entry)]


def minirocket(src: Sources, tag: str) -> str:
    ref = src.minirocket.get(tag)
    return f"{100 * ref['mean']:.1f} ± {100 * ref['std']:.1f}" if ref else DASH


def arch_label(src: Sources, entry: str) -> str:
    e = src.manifest[entry]
    return e["architecture"] + (" (1-D)" if e["arch_kwargs"].get("dims") == 1 else "")


# ----------------------------------------------------------------------------- tables
def table(head: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["---"] * len(head)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def render_zoo(src: Sources) -> str:
    acc = lambda n: pct(src.manifest[n]["metrics"]["test_acc"]) if n else DASH  # noqa: E731
    code = lambda n: f"`{n}`" if n else DASH  # noqa: E731
    rows = [[name_of(tag), code(s), acc(s), code(n), acc(n)] for tag, s, n in pairs(src)]
    return table(["dataset", "standard entry", "test acc.", "NeuroView entry", "test acc."], rows, ["---", "---", "---:", "---", "---:"])


def render_seeds(src: Sources) -> str:
    rows, seen = [], set()
    for tag, s, n in pairs(src):
        base = src.manifest[s or n]["architecture"].removeprefix("nv_")
        label = name_of(tag) + (f" ({ARCH_LABEL[base]})" if base in ARCH_LABEL else "")
        rows.append([label, seeds_cell(src, s), seeds_cell(src, n), "" if tag in seen else minirocket(src, tag)])
        seen.add(tag)
    return table(["dataset", "standard", "NeuroView", "MiniRocket"], rows)


def render_seeds_by_arch(src: Sources) -> str:
    rows, seen = [], set()
    for tag, s, n in pairs(src):
        first = tag not in seen
        seen.add(tag)
        rows.append([name_of(tag) if first else "", arch_label(src, s) if s else DASH, seeds_cell(src, s),
                     arch_label(src, n) if n else DASH, seeds_cell(src, n), minirocket(src, tag) if first else ""])
    return table(["dataset", "standard", "accuracy", "NeuroView", "accuracy", "MiniRocket"], rows)


def shown_mean(accs: list[float]) -> float:
    """The mean over seeds in %, rounded as the tables show it: differences quoted in the text
    are differences of the numbers a reader sees."""
    return round(100 * statistics.fmean(accs), 1)


def _against_minirocket(src: Sources) -> list[tuple[str, list[tuple[str, float]], float]]:
    """Per dataset with a MiniRocket figure: its NeuroView entries with their mean over seeds
    (best first), and MiniRocket's mean; in %."""
    out = []
    for tag in sorted({t for t, _, _ in pairs(src)}, key=lambda t: (order(t), t)):
        nvs = [(n, shown_mean(seed_accs(src, n))) for t, _, n in pairs(src) if t == tag and n and seed_accs(src, n)]
        if tag in src.minirocket and nvs:
            out.append((tag, sorted(nvs, key=lambda p: -p[1]), round(100 * src.minirocket[tag]["mean"], 1)))
    return out


def prose(text: str) -> str:
    return textwrap.fill(text, 96, subsequent_indent="  " if text.startswith("- ") else "", break_on_hyphens=False)


def render_gaps(src: Sources) -> str:
    parts = [f"{name_of(tag)} " + ", ".join(f"`{n.split('.')[0]}` {signed(m - ref)}" for n, m in nvs)
             for tag, nvs, ref in _against_minirocket(src)]
    return prose("NeuroView against MiniRocket, in points of mean test accuracy over the seeds above: " + "; ".join(parts) + ".")


def render_aim(src: Sources) -> str:
    lines = []
    for tag, nvs, ref in _against_minirocket(src):
        (best, _), gap = nvs[0], nvs[0][1] - ref
        status = ("met, above" if gap >= 0 else "met") if gap >= -AIM else "not met"
        e = src.manifest[best]
        where = "above" if gap >= 0 else "below"
        lines.append(prose(f"- **{name_of(tag)}: {status}.** `{e['architecture']}` {seeds_cell(src, best)} (the "
                           f"entry: {100 * e['metrics']['test_acc']:.1f}) vs MiniRocket {minirocket(src, tag)}: {abs(gap):.1f} "
                           f"points {where} on average (one test sample is {100 / e['metrics']['test_size']:.2f} points)."))
    worse = []
    for tag, s, n in pairs(src):
        if s and n and seed_accs(src, s) and seed_accs(src, n):
            ms, mn = shown_mean(seed_accs(src, s)), shown_mean(seed_accs(src, n))
            if mn < ms:
                worse.append(f"{name_of(tag)} `{src.manifest[n]['architecture']}` {mn:.1f} vs `{src.manifest[s]['architecture']}` "
                             f"{ms:.1f} ({signed(mn - ms)})")
    lines.append(prose("- NeuroView below its standard counterpart (same recipe, mean over seeds): "
                       + ("; ".join(worse) if worse else "nowhere") + "."))
    return "\n".join(lines)


def render_zoo_entries(src: Sources) -> str:
    rows, seen, total = [], set(), 0
    for tag, s, n in pairs(src):
        for name in (x for x in (s, n) if x):
            e = src.manifest[name]
            what = f"{name_of(tag)} ({e['metrics']['test_size']:,} {DATASETS.get(tag, ('', 'test samples'))[1]})"
            rows.append([f"`{name}`", name_of(tag) if tag in seen else what, f"{e['num_params']:,}",
                         f"{100 * e['metrics']['test_acc']:.2f}%", f"{e['size_bytes'] / 1e6:.2f} MB"])
            seen.add(tag)
            total += e["size_bytes"]
    out = table(["entry", "dataset", "parameters", "test accuracy", "size"], rows, ["---", "---", "---:", "---:", "---:"])
    # the sparse variants too, as `neuroview zoo` lists them (Sources keeps them apart from the manifest's dense entries)
    every = sum(e["size_bytes"] for e in src.manifest.values()) + sum(e["size_bytes"] for e in src.sparse.values())
    return out + (f"\n\n{total / 1e6:.1f} MB for these {len(rows)} entries; {every / 1e6:.1f} MB with their "
                  f"{len(src.sparse)} sparse variants.")


def render_quantizers(src: Sources) -> str:
    """As quantizers.py writes it: mean ± population std over seeds, as every table of the docs; a cell of fewer seeds
    than the script's default shows their count, and a file of other epochs than the script's (which the README's
    prose states) is refused."""
    q = _benchmark("quantizers")
    meta, epochs = src.quantizers.get("meta", {}), {d: e for d, (_, _, e) in q.DATASETS.items()}
    made = meta.get("epochs")
    if src.quantizers and made is not None and ({d: made for d in epochs} if isinstance(made, int) else made) != epochs:
        raise ValueError(f"benchmarks/results/quantizers.json: its runs trained {made} epochs (made by "
                         f"`{meta.get('command')}`), the README's table is of {epochs}; run `python benchmarks/quantizers.py` "
                         "(trial runs: --out elsewhere)")
    acc = src.quantizers.get("accuracy", {})
    variants = list(next(iter(acc.values()), {}))
    rows = [[ds] + [mean_std(a, q.SEEDS) for a in r.values()] for ds, r in acc.items()]
    return table(["dataset"] + [("standard CNN" if v == "standard" else v) for v in variants], rows)


def render_ucr(src: Sources, unseen: bool = False) -> str:
    ucr = _benchmark("ucr_accuracy")  # its own table, as the script prints it
    shown = [r for r in src.ucr_runs.values() if "test_acc" in r and not r.get("extra")
             and r["sha"] == (ucr.README_SHAS.get(r["recipe"]) or ucr._sha(r["recipe"], src.root))]  # the versions shown
    sets = sorted({r["set"] for r in shown} - set(ucr.DEV_SETS)) if unseen else list(ucr.DEV_SETS)
    return ucr.table(list(ucr.RECIPES), sets, src.ucr_runs, src.minirocket, shas=ucr.README_SHAS)


UNSEEN_SETS = ("OSULeaf", "PickupGestureWiimoteZ", "ACSF1")  # the sets no recipe option was chosen on


def render_ucr_now(src: Sources, single: bool = False) -> str:
    """The recipes as they are now (chosen on validation): every development and unseen set, and
    each run that ended below 99% accuracy on its own training split. ``single``: with NeuroView
    LITE's recipe as one network (``ucr_accuracy.SINGLE_SHAS``), the version before its members."""
    ucr = _benchmark("ucr_accuracy")  # its own table, as the script prints it
    recipes, sets = list(ucr.RECIPES), [*ucr.DEV_SETS, *UNSEEN_SETS]
    shas = {r: (ucr.SINGLE_SHAS if single else {}).get(r) or ucr._sha(r, src.root) for r in recipes}  # --root's recipes
    body = ucr.table(recipes, sets, src.ucr_runs, src.minirocket, shas=shas)
    now = [r for r in src.ucr_runs.values() if r["recipe"] in recipes and r["set"] in sets and "test_acc" in r
           and not r.get("extra") and r["sha"] == shas[r["recipe"]]]
    short = sorted((r for r in now if r.get("train_acc", 1.0) < 0.99), key=lambda r: (r["recipe"], r["set"], r["seed"]))
    fit = ", ".join(f"{Path(r['recipe']).stem} on {r['set']} seed {r['seed']} ({100 * r['train_acc']:.1f}%, "
                    f"{r.get('stopped', '?')})" for r in short)
    return body + f"\n\nRuns that ended below 99% on their own training split: {fit or 'none'} (of {len(now)} runs)."


def render_depthwise_cost(src: Sources) -> str:
    return _benchmark("depthwise_cost").table(src.depthwise).rstrip("\n")  # its own table, as the script prints it


def render_ucr_choices(src: Sources) -> str:
    ch = _benchmark("ucr_choices")  # its own table, as its report gives it
    return ch.table(ch.kept(src.ucr_runs))


def render_ucr_ensemble_val(src: Sources) -> str:
    """Members and ensembles on validation (the held-out fifth of each UCR development set's training
    split), each recipe as it was judged, and the verdict of ``ucr_ensemble.verdict``."""
    ens = _benchmark("ucr_ensemble")  # its own table and verdict, as the script prints them
    runs = src.ucr_ensemble_val
    ucr = _benchmark("ucr_accuracy")
    shas = {r: ucr.SINGLE_SHAS.get(r) or ucr._sha(r, src.root) for r in ens.RECIPES}  # the versions judged: one network each
    lines = [ens.table(list(ens.RECIPES), list(ens.VAL_SETS), list(range(5)), runs, shas=shas), ""]
    for r in ens.RECIPES:
        lines.append("- " + ens.verdict_line(ens.verdict(r, list(ens.VAL_SETS), runs, sha=shas[r])))
    return "\n".join(lines)


def render_sparse_ensemble(src: Sources) -> str:
    se = _benchmark("sparse_ensemble")  # its own table, as the script prints it
    return se.table(src.sparse_ensemble)


def render_ucr_ensemble(src: Sources) -> str:
    """ucr_ensemble.py's own table of the versions its ``--table`` shows (``shown_shas``: README_SHAS, else the recipe
    as it is now), on the sets and seeds of those versions' runs only: a run of another version (kept under
    ``<key>@<sha>``, or merged from a worktree) on a set of its own would add a row of blanks."""
    ens = _benchmark("ucr_ensemble")  # its own table, as the script prints it
    recipes = list(ens.RECIPES)
    shas = ens.shown_shas(recipes)
    runs = {k: r for k, r in src.ucr_ensemble.items() if shas.get(ens.recipe_path(r.get("recipe", ""))) == r.get("sha")}
    return ens.table(recipes, ens.sets_of(runs), ens.seeds_of(runs), runs, shas=shas)


def render_nv_minirocket(src: Sources) -> str:
    mr = _benchmark("ucr_nv_minirocket")  # its own table, as its report gives it
    return mr.table(src.nv_minirocket)


def render_rnn_accuracy(src: Sources) -> str:
    """rnn_accuracy.py's own table (one formatting for its .md and the docs: a cell of other seeds than 0, 1, 2 shows
    them), of the default recipe the README states; a cell whose runs come from two versions of the code is refused."""
    rnn = _benchmark("rnn_accuracy")
    path = src.root / "benchmarks" / "results" / "rnn_accuracy.json"
    made, want = (src.rnn_meta or {}).get("recipe"), rnn.asdict(rnn.Recipe())
    if src.rnn_runs and made != want:  # the README states the default recipe (hidden 64, 100 epochs)
        raise ValueError(f"{path}: its runs were made with the recipe {made}, the docs' table is of the default {want}; "
                         f"restore it (`git checkout -- benchmarks/results/rnn_accuracy.json`), or delete it and run "
                         "`python benchmarks/rnn_accuracy.py` (other recipes: --out elsewhere)")
    mixed = rnn.mixed_cells(src.rnn_runs)
    if mixed:
        raise ValueError(f"{path}: the runs of {'; '.join(mixed)} were made by different versions of the code; run them "
                         "again together (`python benchmarks/rnn_accuracy.py --datasets D --kinds K --rerun`)")
    return rnn.table(src.rnn_runs, rnn.DATASETS, list(rnn.KINDS))


def _model_label(model: dict) -> str:
    kw = model.get("model_kwargs") or {}
    extras = ([{"none": "quantizer none"}.get(kw["quantizer"], f"{kw['quantizer']} codes")] if "quantizer" in kw else []) \
        + (["1-D"] if kw.get("dims") == 1 else []) + ([f"hidden {kw['hidden_size']}"] if "hidden_size" in kw else [])
    return f"`{model['arch']}`" + (f" ({', '.join(extras)})" if extras else "")


def _length(trainer: dict) -> str:
    steps = trainer.get("max_steps") or -1
    plain = f"{steps:,} steps" if steps > 0 else f"{trainer['max_epochs']:,}"
    stops = any("EarlyStopping" in str(c.get("class_path", "")) and str(c.get("init_args", {}).get("monitor", "")).startswith("train_loss")
                for c in trainer.get("callbacks") or [] if isinstance(c, dict))
    return f"to a training-loss plateau, at most {plain}{' epochs' if steps <= 0 else ''}" if stops else plain


def render_recipes(src: Sources) -> str:
    by_recipe = {e["recipe"]: name for name, e in src.manifest.items()}

    def key(item: tuple[str, dict]) -> tuple:
        tag, arch = tag_of(item[1]["data"]), item[1]["model"]["arch"]
        return order(tag), tag, arch.removeprefix("nv_"), not arch.startswith("nv_")

    defaults = _benchmark("ucr_accuracy").RECIPES
    rows, seen = [], set()
    for path, cfg in sorted(src.recipes.items(), key=key):
        if path in defaults:  # one recipe for every set: its own table below
            continue
        tag, entry = tag_of(cfg["data"]), by_recipe.get(path)
        zoo = f"{pct(src.manifest[entry]['metrics']['test_acc'])} (`{entry}`)" if entry else DASH
        rows.append([f"`{Path(path).name}`", _model_label(cfg["model"]),
                     name_of(tag) if tag in seen else DATASETS.get(tag, ("", "", tag))[2], _length(cfg["trainer"]),
                     cfg.get("test_ckpt", "best"), zoo, seeds_cell(src, entry)])
        seen.add(tag)
    for path in defaults:
        cfg = src.recipes.get(path)
        if cfg is None:
            continue
        entries = sorted(n for n, e in src.manifest.items() if e["recipe"] == path)
        zoo = f"{len(entries)} entries (`{entries[0].split('.')[0]}.<set>`)" if entries else DASH
        rows.append([f"`{Path(path).name}`", _model_label(cfg["model"]), "any UCR/UEA set (`--data.init_args.name`)",
                     _length(cfg["trainer"]), cfg.get("test_ckpt", "best"), zoo, "README, time-series table"])
    seeds = header_seeds(src)
    return table(["recipe", "model", "data", "epochs (or steps)", "`fit` tests", "zoo entry (seed 0, last epoch)",
                  f"seeds {', '.join(map(str, seeds))}: mean ± std"], rows, ["---", "---", "---", "---:", "---", "---:", "---:"])


def render_retrofit(src: Sources) -> str:
    rows = []
    for _, s, _ in pairs(src):
        r = src.retrofit.get(s) if s else None
        if r is None:
            continue
        cost = 100 * (r["standard_acc"] - r["neuroview_acc"])
        rows.append([f"`{s}`", f"{100 * r['standard_acc']:.2f}%", f"{100 * r['neuroview_acc']:.2f}%",
                     f"+{cost:.2f}" if cost >= 0 else f"{MINUS}{-cost:.2f} (NeuroView better)"])
    return table(["trained standard entry", "standard", "retrofitted NeuroView", "cost (points)"], rows,
                 ["---", "---:", "---:", "---:"])


def _readable(m: dict) -> tuple[str, str]:
    """``(units per class, k90)`` cells of a manifest entry's metrics (RNNs: hidden states, then steps)."""
    upc = f"{m['units_per_class']:,.1f}".removesuffix(".0") if "units_per_class" in m else DASH
    upc += f" ({m['steps_per_class']:.1f}".removesuffix(".0") + " steps)" if "steps_per_class" in m else ""
    if "k90" not in m:
        return upc, DASH
    steps = f" ({m['k90_steps']:g} steps)" if "k90_steps" in m else ""
    return upc, f"{m['k90']:g}{steps}"


def _sparse_runs(src: Sources, n: str, max_k90: float | None, max_k90_steps: float | None = None,
                 q: float = 0.5, finetune: int = 0, caps: tuple = (None, None)) -> list[dict]:
    """sparsify_zoo.py's runs of entry ``n`` with the readability budget ``max_k90`` (and
    ``max_k90_steps``, held for the share ``q`` of training decisions; None: the default rule) and the
    caps ``(units, steps)`` per class, only those made with the point rule (deviance) of its seed-0 run."""
    runs = [r for k, r in src.sparse_runs.items()
            if k.split(":")[0] == n and r.get("max_k90") == max_k90 and r.get("max_k90_steps") == max_k90_steps
            and r.get("k90_quantile", 0.5) == q and r.get("finetune", 0) == finetune
            and (r.get("max_units_per_class"), r.get("max_steps_per_class")) == tuple(caps)
            and (not finetune or r.get("finetune_epochs_kept") is not None)  # fine-tuned within the budget
            and r.get("finetune_mode") in (None, "train")]  # finetune_sparse's eval-mode runs are apart
    rule = next((r.get("deviance") for r in runs if r["seed"] == 0), None)
    return [r for r in runs if r.get("deviance") == rule]


def _drop(runs: list[dict]) -> str:
    drops = [r["dense"]["accuracy"] - r["sparse"]["accuracy"] for r in runs]
    return f"{signed(statistics.fmean(drops))} ± {statistics.pstdev(drops):.1f} ({len(drops)})" if drops else DASH


def render_sparse(src: Sources) -> str:
    """Every NeuroView entry, dense and its zoo sparse entry: test accuracy, units per class, k90 (seed 0,
    the zoo's weights), and the accuracy drop over the seeds sparsify_zoo.py has run with the same budget."""
    rows = []
    for tag, _, n in pairs(src):
        if n is None or n not in src.sparse:
            continue
        d, sp = src.manifest[n]["metrics"], src.sparse[n]["metrics"]
        made = src.sparse[n].get("training", {})
        rows.append([name_of(tag), f"`{n}`", pct(d["test_acc"]), *_readable(d), pct(sp["test_acc"]), *_readable(sp),
                     _drop(_sparse_runs(src, n, made.get("max_k90"), made.get("max_k90_steps"), made.get("k90_quantile", 0.5),
                                         made.get("finetune", 0),
                                         (made.get("max_units_per_class"), made.get("max_steps_per_class"))))])
    head = ["dataset", "NeuroView entry", "dense acc.", "units/class", "k90", "sparse acc.", "units/class", "k90",
            "drop, points (seeds)"]
    return table(head, rows, ["---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"])


def render_sparse_default(src: Sources) -> str:
    """The same entries sparsified with ``nv.sparsify``'s defaults (no readability budget), from sparsify_zoo.json."""
    rows = []
    for tag, _, n in pairs(src):
        runs = _sparse_runs(src, n, None) if n else []
        first = next((r for r in runs if r["seed"] == 0), None)
        if first is None:
            continue
        sp = first["sparse"] | {"test_acc": first["sparse"]["accuracy"] / 100}
        rows.append([name_of(tag), f"`{n}`", pct(sp["test_acc"]), *_readable(sp), _drop(runs)])
    head = ["dataset", "NeuroView entry", "sparse acc. (defaults)", "units/class", "k90", "drop, points (seeds)"]
    return table(head, rows, ["---", "---", "---:", "---:", "---:", "---:"])


RENDER = {"sparse": render_sparse, "sparse_default": render_sparse_default, "zoo": render_zoo, "seeds": render_seeds, "seeds_by_arch": render_seeds_by_arch, "gaps": render_gaps,
          "aim": render_aim, "zoo_entries": render_zoo_entries, "quantizers": render_quantizers,
          "rnn_accuracy": render_rnn_accuracy, "recipes": render_recipes, "retrofit": render_retrofit,
          "ucr": render_ucr, "ucr_unseen": lambda src: render_ucr(src, unseen=True), "ucr_ensemble": render_ucr_ensemble,
          "ucr_choices": render_ucr_choices, "ucr_now": render_ucr_now,
          "ucr_single": lambda src: render_ucr_now(src, single=True), "ucr_ensemble_val": render_ucr_ensemble_val,
          "sparse_ensemble": render_sparse_ensemble, "depthwise_cost": render_depthwise_cost,
          "nv_minirocket": render_nv_minirocket}


def _benchmark(name: str):
    """A sibling benchmark script as a module (the benchmarks folder is not a package)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        folder = str(Path(__file__).parent)
        sys.path.insert(0, folder)  # while it runs: the scripts import their siblings (_cache, reproduce_zoo)
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        finally:
            sys.path.remove(folder)
    return sys.modules[name]


def stale_retrofits(src: Sources) -> list[str]:
    """Standard zoo entries whose retrofit result is missing or was computed from other weights."""
    return [s for _, s, _ in pairs(src) if s and src.retrofit.get(s, {}).get("sha256") != src.manifest[s]["sha256"]]


# --------------------------------------------------------------------------- the docs
def splice(text: str, name: str, body: str, where: str) -> str:
    """``text`` with what stands between the markers of table ``name`` replaced by ``body``."""
    pattern = re.compile(rf"(<!-- table:{re.escape(name)} -->\n).*?(<!-- /table:{re.escape(name)} -->)", re.S)
    if len(pattern.findall(text)) != 1:
        raise ValueError(f"{where}: expected one '<!-- table:{name} -->' ... '<!-- /table:{name} -->' pair of markers")
    # blank lines around the table: Markdown would otherwise read the closing marker as a row
    return pattern.sub(lambda m: f"{m.group(1)}\n{body}\n\n{m.group(2)}", text)


@contextlib.contextmanager
def _rooted(root: Path):
    """The sibling scripts pointed at ``root``'s checkout while tables render: what their own functions still read by
    themselves (the recipes for their versions, ``ucr_ensemble.table``'s minirocket.json, ``ucr_choices.kept``'s
    verdicts) would otherwise come from this script's checkout, whatever ``--root`` says. The rest comes in ``Sources``."""
    ucr, ens, ch = (_benchmark(n) for n in ("ucr_accuracy", "ucr_ensemble", "ucr_choices"))
    results = root / "benchmarks" / "results"
    moved = [(ucr, "ROOT", root), (ch, "ROOT", root), (ens, "MINIROCKET", results / "minirocket.json"),
             (ch, "VERDICTS", results / "ucr_choices.json")]
    before = [(m, name, getattr(m, name)) for m, name, _ in moved]
    try:
        for m, name, value in moved:
            setattr(m, name, value)
        yield
    finally:
        for m, name, value in before:
            setattr(m, name, value)


def render_docs(root: Path, src: Sources | None = None) -> dict[str, tuple[str, str, list[str]]]:
    """Per document: ``(current text, text with every table rendered, names of tables that differ)``."""
    src = src or Sources.load(root)
    with _rooted(root):
        return _render_docs(root, src)


def _render_docs(root: Path, src: Sources) -> dict[str, tuple[str, str, list[str]]]:
    out = {}
    for doc, names in DOCS.items():
        current = (root / doc).read_text()
        new, differ = current, []
        for name in names:
            rendered = splice(new, name, RENDER[name](src), doc)
            if rendered != new:
                differ.append(name)
            new = rendered
        out[doc] = (current, new, differ)
    return out


def check(root: Path = ROOT) -> list[str]:
    """What disagrees with the data, one line per document table (empty: the docs are in sync)."""
    src = Sources.load(root)
    problems = [f"{doc}: table '{name}' differs from what benchmarks/docs_tables.py renders"
                for doc, (_, _, differ) in render_docs(root, src).items() for name in differ]
    problems += [f"benchmarks/results/retrofit.json: no result for the weights of {name} in the manifest"
                 for name in stale_retrofits(src)]
    problems += stale_runs(src)
    problems += [f"{path}: missing (the tables it feeds would read as dashes)" for path in src.missing]
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table differs from the data")
    p.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this script's)")
    args = p.parse_args(argv)
    if args.check:
        problems = check(args.root)
        for line in problems:
            print(line)
        if problems:
            print("run `python benchmarks/docs_tables.py` to rewrite them")
        return 1 if problems else 0
    src = Sources.load(args.root)
    for line in src.missing + stale_runs(src) + incomplete(src):  # written all the same: said, not hidden
        print(f"warning: {line}")
    stale = stale_retrofits(src)
    if stale:
        _benchmark("retrofit_zoo").refresh(args.root, stale)
    for doc, (current, new, differ) in render_docs(args.root).items():
        if differ:
            (args.root / doc).write_text(new)
            print(f"{doc}: rewrote {', '.join(differ)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
