"""The time-series recipes' options, chosen on validation only: every option, both members of a pair alike.

The ``ucr_*`` recipes' options were first picked by test accuracy on the development sets. This
script re-chooses them without the test split: each recipe learns from four fifths of each
development set's training split and is scored on the fifth held out (``ucr_accuracy.py --val
0.2``, stratified, the data module's seed), once as it is and once per alternative value of each
option. The rule, written here before the runs:

- an option's value is judged by its mean validation accuracy over the development sets it
  matters on (:data:`CHOICES`), over the seeds run;
- an alternative replaces the recipe's value only if it is better by more than
  :data:`MARGIN` points (validation splits are 7 to 800 series: a smaller gap is noise);
- a verdict is given before every run is in only when it is settled: when no result of the
  missing runs (anywhere from 0 to 100%) could turn it; those runs are then not made (added after
  55 runs, when the one run left for the standard LITE's ``classifier_lr`` was a 25-minute
  MNIST-1D run that could not have changed its verdict);
- the NeuroView recipe and its standard counterpart are judged apart, on the same options and
  values where the option applies to both (a pair then differs only where validation says so).

    nice -n 10 python benchmarks/ucr_choices.py --jobs 1               # run what is missing (cached)
    nice -n 10 python benchmarks/ucr_choices.py --only classifier_lr   # one option
    nice -n 10 python benchmarks/ucr_choices.py --recipes recipes/ucr_rnn.yaml recipes/ucr_nv_rnn.yaml
    nice -n 10 python benchmarks/ucr_choices.py --only <option> --cv    # 5-fold cross-validation, seeds 0-4
    python benchmarks/ucr_choices.py --report                          # every verdict, as README's table

Runs are the ``ucr_accuracy.py`` runs with ``--val 0.2`` (and ``--extra <alternative>``), cached in
the same ``benchmarks/results/ucr_accuracy.json``; a run writes its verdicts to ``ucr_choices.json``
and every kept verdict (:func:`kept`: README's table, what ``--report`` prints without writing) to
``benchmarks/results/ucr_choices.md``. A run counts only for the recipe version (SHA-256) it was
made with, so changing a recipe after a choice makes its runs stale, as it should.

Every seed holds out the same fifth (the data module's seed is 0): the seeds vary the network, not
the validation series, and a small set's fifth is a handful of series (ArrowHead: 6 or 7). ``--cv``
makes seed s hold out fold s of a 5-fold cross-validation instead (``val_fold``), so seeds 0-4
validate every training series once; its runs are kept apart (``@val0.2cv``), and a verdict on
more runs replaces one on fewer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from neuroview.zoo.pretrained import _locked  # noqa: E402  the zoo's file lock
from ucr_accuracy import CNN_ONLY, DEV_SETS, OUT, RESULTS, _key, _run, _sha, load, recipe_path  # noqa: E402
from _cache import read_cache, write_cache  # noqa: E402 - resumable caches, written whole
from _seeds_said import seeds_said  # noqa: E402 - the report's header: the seeds its rows were judged on

REPORT = RESULTS / "ucr_choices.md"
VERDICTS = RESULTS / "ucr_choices.json"  # each verdict, kept with the recipe version (SHA-256) it judged
VAL = 0.2
MARGIN = 1.0  # points of mean validation accuracy an alternative must win by
# ``cv`` below (``--cv``): each seed s holds out fold s of a 5-fold cross-validation of the training
# split (seeds 0-4 validate every training series once) instead of the one fifth every seed shares
NV_CNN, CNN, NV_RNN, RNN = (f"recipes/ucr_{n}.yaml" for n in ("nv_cnn", "cnn", "nv_rnn", "rnn"))
FOLDS = [0, 1, 2, 3, 4]  # the seeds of a 5-fold cross-validation, one fold each: what --report judges on


@dataclass(frozen=True)
class Choice:
    """One option: the recipe's value (in words) and each alternative as command-line arguments, per recipe."""

    name: str
    current: str
    alternatives: dict[str, dict[str, tuple[str, ...]]]  # label -> recipe -> extra arguments
    sets: tuple[str, ...] = DEV_SETS  # the development sets the option can matter on


def _both(pairs: dict[str, tuple[str, ...]], recipes: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {r: pairs[r] for r in recipes}


CHOICES = (
    Choice("classifier_lr", "a tenth of the backbone's rate (NeuroView); the backbone's rate (standard)", {
        "the backbone's rate": {NV_CNN: ("--model.classifier_lr", "1.0e-3"), NV_RNN: ("--model.classifier_lr", "3.0e-3")},
        "a tenth of the backbone's rate": {CNN: ("--model.classifier_lr", "1.0e-4"), RNN: ("--model.classifier_lr", "3.0e-4")},
    }),
    Choice("classifier_lr (NeuroView CNN, again)", "the backbone's rate (the change above)", {
        "a tenth of the backbone's rate": {NV_CNN: ("--model.classifier_lr", "1.0e-4")},
    }, sets=tuple(s for s in DEV_SETS if s not in CNN_ONLY)),  # added to judge that change again on 5-fold
    # cross-validation, from the recipe it made; the five UCR sets, as the other options of the five-member
    # recipe (a five-member MNIST-1D run takes 20 to 50 minutes on the 2 cores; set before any run)
    Choice("head_dropout", "0.5 (NeuroView-GRU), 0 (GRU)", {
        "0": {NV_RNN: ("--model.model_kwargs.head_dropout", "0.0")},
        "0.5": {RNN: ("--model.model_kwargs.head_dropout", "0.5")},
    }),
    Choice("num_layers", "2 (both GRUs)", {
        "1": {NV_RNN: ("--model.model_kwargs.num_layers", "1"), RNN: ("--model.model_kwargs.num_layers", "1")},
    }),
    Choice("normalize (NeuroView-GRU head)", "off: no batch statistics in front of the classifier", {
        "on": {NV_RNN: ("--model.model_kwargs.normalize", "true")},
    }),  # added after the first verdicts: judged on the recipe they made
    Choice("resample", "stretched to the longest series (all four)", {
        "padded (CNN) / masked (RNN)": {r: ("--data.init_args.resample", "false") for r in (NV_CNN, CNN, NV_RNN, RNN)},
    }, sets=("JapaneseVowels",)),  # the one development set of variable length
    Choice("arch (CNN)", "LITE (both CNN recipes)", {
        "InceptionTime": {NV_CNN: ("--model.arch", "nv_inception_time"), CNN: ("--model.arch", "inception_time")},
        "FCN": {NV_CNN: ("--model.arch", "nv_fcn1d"), CNN: ("--model.arch", "fcn1d")},
    }, sets=tuple(s for s in DEV_SETS if s not in CNN_ONLY)),  # the five UCR sets: a LITE run on MNIST-1D's
    # 4,000 series takes 10 to 40 minutes on the 2 cores, an InceptionTime run several times that (set before any run)
    Choice("precise BN (CNN)", "off: eval mode reads the running statistics training left", {
        "on: recomputed over the training split when training ends": {
            r: ("--trainer.callbacks+=neuroview.training.callbacks.PreciseBatchNorm",) for r in (NV_CNN, CNN)},
    }),  # added after a LITE run on OSULeaf (an unseen set) scored 68.2% and 94.2% recomputed (bn_gap.py)
    Choice("precise BN (NeuroView CNN, again)", "off: eval mode reads the running statistics training left", {
        "on: recomputed over the training split when training ends": {
            NV_CNN: ("--trainer.callbacks+=neuroview.training.callbacks.PreciseBatchNorm",)},
    }, sets=tuple(s for s in DEV_SETS if s not in CNN_ONLY)),  # added because the row above, for NeuroView LITE,
    # needs five-member MNIST-1D runs of 20 to 50 minutes each on the 2 cores and stayed unjudged; on 5-fold
    # cross-validation of the five UCR sets, as its classifier_lr was judged again (set before any run)
    Choice("members, trained jointly (NeuroView CNN)", "5: the ensemble trained in one run, one seed, one stop", {
        "1: one network": {NV_CNN: ("--model.model_kwargs.members", "1")},
    }, sets=tuple(s for s in DEV_SETS if s not in CNN_ONLY)),  # added after ucr_ensemble.py's verdict (separate
    # runs) made the recipe train 5 members jointly, which that verdict did not test; the five UCR sets, as
    # the verdict's (a five-member MNIST-1D run takes hours on the 2 cores)
    Choice("shared_steps (NeuroView-GRU head)", "off: a weight of its own for every step's hidden states", {
        "on: plus a part every step shares": {NV_RNN: ("--model.model_kwargs.shared_steps", "true")},
    }),  # added after the NeuroView-GRU trailed the GRU on ACSF1 (an unseen set) by 10.7 points, where heads
    # refitted on its frozen states read better pooled over the steps than step by step (validation, seed 0)
    Choice("max_steps (GRUs)", "50: a step reads ceil(T / 50) samples (both GRUs)", {
        "25": {r: ("--model.model_kwargs.max_steps", "25") for r in (NV_RNN, RNN)},
        "100": {r: ("--model.model_kwargs.max_steps", "100") for r in (NV_RNN, RNN)},
    }, sets=("GunPoint", "BasicMotions", "JapaneseVowels", "ArrowHead")),  # added with hidden_size when the
    # GRU recipes' options were listed against issue 24 (both had been set on test accuracy); the sets whose
    # series are longer than 25 steps (ItalyPowerDemand's 24 read the same); at 100 JapaneseVowels' 29 steps
    # read as at 50, so those runs repeat the recipe's (set before any run)
    Choice("hidden_size (GRUs)", "128 (both GRUs)", {
        "64": {r: ("--model.model_kwargs.hidden_size", "64") for r in (NV_RNN, RNN)},
    }),
    Choice("bidirectional (GRUs)", "off: one direction (both GRUs)", {
        "on: both directions": {r: ("--model.model_kwargs.bidirectional", "true") for r in (NV_RNN, RNN)},
    }),  # added when issue 24's review listed it as the GRU recipes' last option set on test accuracy (the
    # GPU machine's layout screen, recipes' comments); every RNN development set (set before any run)
    Choice("label_smoothing (GRUs)", "0: one-hot targets (both GRUs)", {
        "0.1": {r: ("--model.label_smoothing", "0.1") for r in (NV_RNN, RNN)},
    }),  # added because every NeuroView-GRU run of the tables ends at 100% of its training split with a loss near 0
    # (12,800 features read from as few as 36 series) and trails the GRU on three sets' test splits; label
    # smoothing keeps a head's logits finite on separable training data. Both GRUs, every RNN development set,
    # 5-fold cross-validation (set before any run; the CNN recipes' five-member runs are too long for it here)
    Choice("lr (GRUs)", "3e-3 (both GRUs; the NeuroView-GRU's classifier a tenth of it)", {
        "1e-3": {NV_RNN: ("--model.lr", "1.0e-3", "--model.classifier_lr", "1.0e-4"), RNN: ("--model.lr", "1.0e-3")},
    }),  # added when the GRU recipes' learning rate was found never screened (set on test accuracy before the
    # screen existed; the CNN recipes keep the published LITE's 1e-3); Adam's default, with the NeuroView-GRU's
    # classifier at a tenth of it as its recipe has (its classifier_lr verdict); both GRUs, every RNN
    # development set, 5-fold cross-validation (set before any run)
    Choice("weight_decay (GRUs)", "1e-4 on the recurrent and input weights (both GRUs; the module's default)", {
        "1e-2": {r: ("--model.weight_decay", "1.0e-2") for r in (NV_RNN, RNN)},
    }),  # added as the GRU recipes' last option never judged (the module's default, kept unexamined): against
    # AdamW's own default, the CNN recipes' value (at lr 3e-3, 1e-4 shrinks a weight by 3e-7 a step, about none);
    # the classifiers keep their 1e-2; both GRUs, every RNN development set, 5-fold cross-validation (set before any run)
)


def _sets_of(recipe: str, sets: tuple[str, ...]) -> tuple[str, ...]:
    """The sets of ``sets`` that ``recipe`` runs on (an RNN recipe skips the CNN-only ones)."""
    return tuple(s for s in sets if not ("rnn" in Path(recipe).stem and s in CNN_ONLY))


def _needed(recipe: str, sets: tuple[str, ...], seeds: list[int]) -> int:
    """The runs one side of a verdict needs: every set ``recipe`` runs on, every seed."""
    return len(seeds) * len(_sets_of(recipe, sets))


def _runs_for(runs: dict, recipe: str, sets: tuple[str, ...], seeds: list[int], extra: tuple[str, ...],
              cv: bool = False) -> list[float]:
    """Validation accuracies (%) of ``recipe`` + ``extra`` on ``sets`` x ``seeds`` made with the recipe as it is now."""
    got, sha = [], _sha(recipe)  # once: read per run (a YAML parse where SAME_SETTINGS applies), it took seconds
    for s in _sets_of(recipe, sets):
        for seed in seeds:
            r = _run_of(runs, recipe, s, seed, extra, cv, sha)
            if r is not None:
                got.append(100 * r["val_acc"])
    return got


def _run_of(runs: dict, recipe: str, s: str, seed: int, extra: tuple[str, ...], cv: bool = False,
            sha: str | None = None) -> dict | None:
    """The cached validation run of the recipe as it is now (``sha``, if known): under its key, or under
    ``<key>@<sha>`` where a run of another version took the key since (``ucr_accuracy.keep``)."""
    key, sha = _key(recipe, s, seed, extra, VAL, cv), sha or _sha(recipe)
    return next((r for r in (runs.get(key), runs.get(f"{key}@{sha}"))
                 if r is not None and r.get("sha") == sha and ("val_fold" in r) == cv), None)


def todo(choices: tuple[Choice, ...], seeds: list[int], runs: dict,
         judged: dict | None = None, cv: bool = False) -> list[tuple[str, str, int, tuple[str, ...]]]:
    """Every (recipe, set, seed, extra) a judgement needs that the cache lacks: the recipe as it is,
    and each alternative not yet judged (in ``judged``, the kept verdicts, whatever the version)."""
    need = []
    for c in choices:
        for label, alt in c.alternatives.items():
            for recipe, extra in alt.items():
                if _verdict(runs, recipe, c.sets, seeds, tuple(extra), cv)[0] != "not run yet":
                    continue  # settled: no result of the missing runs could change it
                if recipe_value(recipe, extra):
                    continue  # a verdict made it the recipe's own value: it would be judged against itself
                if _row_key(c.name, recipe, label) in (judged or {}):
                    continue  # judged on an earlier version of the recipe: the screen goes one option at a time
                for s in _sets_of(recipe, c.sets):
                    for seed in seeds:
                        for e in ((), tuple(extra)):
                            if _run_of(runs, recipe, s, seed, e, cv) is None and (recipe, s, seed, e) not in need:
                                need.append((recipe, s, seed, e))
    return need


#: keys whose default, where a recipe leaves them unset, is another key's value (NeuroViewModule's
#: ``classifier_lr``: None learns at ``lr``)
UNSET_READS = {"model.classifier_lr": "model.lr"}


def recipe_value(recipe: str, extra: tuple[str, ...]) -> bool:
    """Whether ``extra`` (``--a.b.c value`` pairs) only sets what ``recipe`` already has: an
    alternative a change made the recipe's value (``ucr_rnn``'s head dropout 0.5, one layer;
    ``ucr_nv_cnn``'s classifier at the backbone's rate, by leaving ``classifier_lr`` unset)."""
    import yaml

    if not extra or len(extra) % 2 or any(not k.startswith("--") or "+=" in k for k in extra[::2]):
        return False
    cfg, missing = yaml.safe_load((ROOT / recipe).read_text()), object()

    def lookup(path: str):
        node = cfg
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return lookup(UNSET_READS[path]) if path in UNSET_READS else missing
            node = node[part]
        return node

    return all((node := lookup(key[2:])) is not missing and node == yaml.safe_load(value)
               for key, value in zip(extra[::2], extra[1::2]))


def _verdict(runs: dict, recipe: str, sets: tuple[str, ...], seeds: list[int], extra: tuple[str, ...], cv: bool = False):
    """("change" | "keep" | "not run yet", the recipe's accuracies, the alternative's) by the rule above.

    The means are over every run the option needs. Before all are in, a verdict is given only when
    it is settled: when even 0% for each missing run of one side and 100% for the other's could
    not turn it (so a slow set is not run for an option it cannot decide)."""
    base, other = _runs_for(runs, recipe, sets, seeds, (), cv), _runs_for(runs, recipe, sets, seeds, extra, cv)
    n = _needed(recipe, sets, seeds)
    lo_b, hi_b = sum(base) / n, (sum(base) + 100 * (n - len(base))) / n
    lo_o, hi_o = sum(other) / n, (sum(other) + 100 * (n - len(other))) / n
    verdict = "change" if lo_o > hi_b + MARGIN else "keep" if hi_o <= lo_b + MARGIN else "not run yet"
    return verdict, base, other


def judge(choices: tuple[Choice, ...], seeds: list[int], runs: dict, cv: bool = False) -> list[dict]:
    """One row per option, recipe and alternative: both means, the runs behind them, and the verdict by the
    rule above; ``cv``: on the 5-fold cross-validation's runs, else on the shared fifth's."""
    rows = []
    for c in choices:
        for label, alt in c.alternatives.items():
            for recipe, extra in alt.items():
                verdict, base, other = _verdict(runs, recipe, c.sets, seeds, tuple(extra), cv)
                rows.append({"option": c.name, "recipe": Path(recipe).stem, "sha": _sha(recipe)[:12],
                             "current": c.current, "alternative": label,
                             "current_acc": statistics.fmean(base) if base else None,
                             "alternative_acc": statistics.fmean(other) if other else None,
                             "runs": f"{len(base)} / {len(other)}", "verdict": verdict, "cv": cv,
                             "needed": _needed(recipe, c.sets, seeds), "seeds": list(seeds)})
    return rows


def _row_key(option: str, recipe: str, label: str) -> str:
    return f"{option} | {Path(recipe).stem} | {label}"


def keep_verdicts(rows: list[dict], judged: dict) -> list[dict]:
    """``rows`` with each verdict kept: a row judged now is recorded in ``judged`` (with the recipe
    version it judged); a row that cannot be judged on the recipe as it is now (its runs went stale
    when a verdict changed the recipe) is the verdict recorded for it, if any."""
    out = []
    for r in rows:
        k = _row_key(r["option"], r["recipe"], r["alternative"])
        if r["verdict"] != "not run yet" and _count(r) >= _count(judged.get(k)):
            judged[k] = r  # a verdict on fewer runs (fewer seeds) never replaces one on more
        out.append(judged.get(k, r))
    return out


def _count(row: dict | None) -> int:
    """The runs a verdict rests on (``"base / alternative"``)."""
    return sum(int(n) for n in row["runs"].split("/")) if row else -1


def table(rows: list[dict]) -> str:
    """The verdicts as a markdown table (the report's and the README's)."""
    def pct(v):
        return "–" if v is None else f"{v:.1f}"

    lines = ["| option | recipe | version | the recipe's value | alternative | recipe, val. % | alternative, val. % | runs | verdict |",
             "|---|---|---|---|---|---:|---:|---|---|"]
    for r in rows:
        lines.append(f"| {r['option']} | {r['recipe']} | {r['sha']} | {r['current']} | {r['alternative']} | "
                     f"{pct(r['current_acc'])} | {pct(r['alternative_acc'])} | {r['runs']}{_of(r)}{' (5-fold)' if r.get('cv') else ''} | "
                     f"{r['verdict']} |")
    return "\n".join(lines) + "\n"


def _of(row: dict) -> str:
    """`` of N`` after an unsettled row's runs: how many a side needs (the 5-fold row of an option over
    every development set can hold the five UCR sets' runs and still lack MNIST-1D's)."""
    return f" of {row['needed']}" if row["verdict"] == "not run yet" and "needed" in row else ""


def report(rows: list[dict]) -> str:
    """The report: the rule, then :func:`table`; the header names the seeds of the rows (``_seeds_said.seeds_said``)."""
    cv, shared = [r for r in rows if r.get("cv")], [r for r in rows if not r.get("cv")]
    held = [f"on a row marked (5-fold), fold s of a 5-fold cross-validation for seed s{seeds_said(cv, FOLDS)}"] * bool(cv) + [
        f"on {'the others' if cv else 'every row'}, the one fifth every seed shares{seeds_said(shared, FOLDS)}"] * bool(shared)
    lines = [f"# The ucr_* recipes' options, judged on validation ({int(VAL * 100)}% of each training split held out: "
             f"{'; '.join(held)}; the test split unread)", "",
             f"`python benchmarks/ucr_choices.py --report`. An alternative replaces the recipe's value only if its mean "
             f"validation accuracy over the sets is higher by more than {MARGIN:g} points.", "",
             "Options are screened one at a time from the recipe as it was when the option was judged: the "
             "version column is the recipe file's SHA-256 (first 12 digits). A verdict that changes a recipe "
             f"makes its later runs a new version; verdicts are kept in `{VERDICTS.name}`.", ""]
    return "\n".join(lines) + "\n" + table(rows)


def kept(runs: dict) -> list[dict]:
    """Every option's verdict from ``runs`` (the cache) and the kept verdicts, without writing them;
    an option without a verdict shows its 5-fold runs (``--report --cv``), the screen's way since
    the GRU recipes were re-judged."""
    judged = read_cache(VERDICTS)
    return with_others(keep_verdicts(judge(CHOICES, FOLDS, runs, cv=True), judged), judged)


def with_others(rows: list[dict], judged: dict) -> list[dict]:
    """``rows`` and then every kept verdict of an option judged elsewhere (``ucr_ensemble.py``'s
    ``members``, on runs of its own), so that the report and the README list every choice."""
    mine = {c.name for c in CHOICES}
    return rows + [v for _, v in sorted(judged.items()) if v["option"] not in mine]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", help="option names (default: all)")
    p.add_argument("--recipes", nargs="*", help="run only these recipes' runs (default: all)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0; with --cv the five folds, 0-4")
    p.add_argument("--cv", action="store_true",
                   help="seed s holds out fold s of a 5-fold cross-validation of the training split (every training "
                        "series validated once over seeds 0-4) rather than the one fifth all seeds share")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--report", action="store_true", help="print every kept verdict, and for an option without one "
                   "its 5-fold runs' judgement (README's table); run and write nothing")
    p.add_argument("--rejudge", action="store_true",
                   help="run what the options need on the recipes as they are now even where a verdict is kept "
                        "(more seeds: the verdict on more runs replaces the one on fewer)")
    args = p.parse_args(argv)
    judged = read_cache(VERDICTS)
    names = [c.name for c in CHOICES] + ([v["option"] for _, v in sorted(judged.items())] if args.report else [])
    if unknown := [o for o in args.only or [] if o not in names]:
        p.error(f"--only: expected option names of {sorted(set(names))}, got {unknown}")
    if args.recipes:
        args.recipes = [recipe_path(r) for r in args.recipes]  # ./recipes/x.yaml is recipes/x.yaml, as CHOICES names it
        mine = sorted({r for c in CHOICES for alt in c.alternatives.values() for r in alt})
        if unknown := [r for r in args.recipes if r not in mine]:
            p.error(f"--recipes: expected recipes the options are judged on, {mine}, got {unknown}")
    if args.report:  # what README's table shows (docs_tables renders kept() too), judged on 5-fold seeds 0-4
        if args.seeds is not None and sorted(set(args.seeds)) != FOLDS:
            p.error(f"--seeds: --report judges an option without a kept verdict on its 5-fold runs of seeds 0-4, as "
                    f"README's table; got {' '.join(map(str, args.seeds))}: leave --seeds out, or judge on those "
                    "seeds without --report (that runs what they lack)")
        print(report([r for r in kept(load()) if not args.only or r["option"] in args.only]))
        return 0
    args.seeds = args.seeds if args.seeds is not None else (FOLDS if args.cv else [0])
    choices = tuple(c for c in CHOICES if not args.only or c.name in args.only)
    need = [n for n in todo(choices, args.seeds, load(), None if args.rejudge else judged, args.cv)
            if not args.recipes or n[0] in args.recipes]
    for extra in dict.fromkeys(e for *_, e in need):  # one pool per set of extra arguments, in order
        _run([(r, s, seed) for r, s, seed, e in need if e == extra], args.jobs, False, extra, VAL, OUT, args.cv)
    with _locked(RESULTS):  # two runs of this script (disjoint --recipes) may end together
        judged = read_cache(VERDICTS)
        text = report(with_others(keep_verdicts(judge(choices, args.seeds, load(), args.cv), judged), judged))
        write_cache(VERDICTS, json.dumps(judged, indent=1, sort_keys=True) + "\n")
        REPORT.write_text(report(kept(load())))  # every verdict, as --report prints them: not this run's options only
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
