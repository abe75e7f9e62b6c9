"""benchmarks/ucr_choices.py: the recipes' options are judged on validation only, each alternative
builds the network it names, and the rule changes a value only past its margin (no training here)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def choices(benchmark_script):
    return benchmark_script("ucr_choices")


def test_every_run_it_asks_for_holds_out_validation_and_pairs_alike(choices):
    need = choices.todo(choices.CHOICES, [0], {})
    assert need
    keys = {choices._key(r, s, seed, e, choices.VAL) for r, s, seed, e in need}
    assert all(k.endswith(f"@val{choices.VAL}") for k in keys)  # the test split is never what a run scores
    assert not any("rnn" in r and s == "mnist1d" for r, s, _, _ in need)
    # each alternative is run beside the recipe as it is, on the same sets and seeds
    for r, s, seed, e in need:
        if e:
            assert (r, s, seed, ()) in need
    # an option that applies to both members of a pair is asked of both
    layers = next(c for c in choices.CHOICES if c.name == "num_layers")
    assert set(layers.alternatives["1"]) == {choices.NV_RNN, choices.RNN}
    assert {s for r, s, _, e in need if e == ("--data.init_args.resample", "false")} == {"JapaneseVowels"}


def test_the_rule_changes_a_value_only_past_the_margin(choices, monkeypatch):
    monkeypatch.setattr(choices, "_sha", lambda recipe: "now")
    one = (choices.Choice("x", "a", {"b": {choices.NV_CNN: ("--model.lr", "1")}}, sets=("GunPoint", "ArrowHead")),)

    def runs(base, alt, sha="now"):
        out = {}
        for s, (a, b) in zip(("GunPoint", "ArrowHead"), zip(base, alt)):
            out[choices._key(choices.NV_CNN, s, 0, (), choices.VAL)] = {"val_acc": a / 100, "sha": sha}
            out[choices._key(choices.NV_CNN, s, 0, ("--model.lr", "1"), choices.VAL)] = {"val_acc": b / 100, "sha": sha}
        return out

    verdict = [r["verdict"] for r in choices.judge(one, [0], runs((90, 80), (91, 80.5)))]
    assert verdict == ["keep"]  # +0.75 on average: within the margin
    verdict = [r["verdict"] for r in choices.judge(one, [0], runs((90, 80), (92, 81)))]
    assert verdict == ["change"]  # +1.5
    assert choices.judge(one, [0], runs((90, 80), (99, 99), sha="old"))[0]["verdict"] == "not run yet"  # stale recipe
    # a run missing: a verdict only where no result of it (0 to 100%) could turn the verdict
    base_arrowhead = choices._key(choices.NV_CNN, "ArrowHead", 0, (), choices.VAL)
    alt_arrowhead = choices._key(choices.NV_CNN, "ArrowHead", 0, ("--model.lr", "1"), choices.VAL)
    partial = runs((90, 80), (92, 81))
    partial.pop(base_arrowhead)  # the recipe's mean lies in [45, 95], the alternative's is 86.5
    assert choices.judge(one, [0], partial)[0]["verdict"] == "not run yet"
    assert choices.todo(one, [0], partial) == [(choices.NV_CNN, "ArrowHead", 0, ())]
    partial = runs((90, 80), (99, 99))
    partial.pop(base_arrowhead)  # 99 beats even 95 by more than the margin
    assert choices.judge(one, [0], partial)[0]["verdict"] == "change"
    assert choices.todo(one, [0], partial) == []  # settled: the missing run is not asked for
    partial = runs((100, 100), (90, 0))
    partial.pop(alt_arrowhead)  # at most 95 against 100
    assert choices.judge(one, [0], partial)[0]["verdict"] == "keep"
    assert choices.todo(one, [0], partial) == []


def test_every_alternative_builds_the_network_it_names(choices):
    from neuroview.training.cli import cli_main

    for c in choices.CHOICES:
        for alt in c.alternatives.values():
            for recipe, extra in alt.items():
                with tempfile.TemporaryDirectory() as tmp:
                    cli = cli_main(["fit", "--config", str(BENCH.parent / recipe), *extra, "--trainer.default_root_dir", tmp,
                                    "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"], run=False)
                if extra[0].startswith("--trainer.callbacks+="):  # a callback added to the recipe's own
                    name = extra[0].split("=", 1)[1].rsplit(".", 1)[1]
                    names = [type(cb).__name__ for cb in cli.trainer.callbacks]
                    assert name in names and "EarlyStopping" in names
                    continue
                assert len(extra) % 2 == 0, extra
                for flag, value in zip(extra[::2], extra[1::2]):  # every pair an alternative sets
                    if flag == "--model.arch":
                        assert cli.model.hparams.arch == value
                    elif flag.startswith("--model.model_kwargs."):
                        got = cli.model.hparams.model_kwargs[flag.rsplit(".", 1)[1]]
                        assert got is (value == "true") if value in ("true", "false") else got == float(value)
                    elif flag.startswith("--model."):
                        assert float(cli.model.hparams[flag.removeprefix("--model.")]) == float(value)
                    else:
                        assert str(getattr(cli.datamodule, flag.rsplit(".", 1)[1])).lower() == value


def test_a_verdict_is_kept_with_the_version_it_judged_and_not_asked_again(choices, monkeypatch):
    # a verdict that changes the recipe makes its runs stale; the verdict itself must stay, and the
    # screen must not ask for that option's runs again on the new version
    one = (choices.Choice("x", "a", {"b": {choices.NV_CNN: ("--model.lr", "1")}}, sets=("GunPoint",)),)
    runs = {choices._key(choices.NV_CNN, "GunPoint", 0, (), choices.VAL): {"val_acc": 0.5, "sha": "v1"},
            choices._key(choices.NV_CNN, "GunPoint", 0, ("--model.lr", "1"), choices.VAL): {"val_acc": 0.9, "sha": "v1"}}
    judged: dict = {}
    monkeypatch.setattr(choices, "_sha", lambda recipe: "v1")
    rows = choices.keep_verdicts(choices.judge(one, [0], runs), judged)
    assert [r["verdict"] for r in rows] == ["change"] and list(judged) == ["x | ucr_nv_cnn | b"]
    monkeypatch.setattr(choices, "_sha", lambda recipe: "v2")  # the verdict was applied: a new version
    assert choices.judge(one, [0], runs)[0]["verdict"] == "not run yet"
    # a run of v2 takes the key, v1's moves to <key>@v1 (ucr_accuracy.keep): v1's runs still count for v1
    base = choices._key(choices.NV_CNN, "GunPoint", 0, (), choices.VAL)
    moved = runs | {base: {"val_acc": 0.7, "sha": "v2"}, f"{base}@v1": runs[base]}
    monkeypatch.setattr(choices, "_sha", lambda recipe: "v1")
    assert choices.judge(one, [0], moved)[0]["current_acc"] == 50.0 and choices.todo(one, [0], moved) == []
    monkeypatch.setattr(choices, "_sha", lambda recipe: "v2")
    rows = choices.keep_verdicts(choices.judge(one, [0], runs), judged)
    assert rows[0]["verdict"] == "change" and rows[0]["sha"] == "v1"
    assert choices.todo(one, [0], runs, judged) == [] and len(choices.todo(one, [0], runs)) == 2


def test_a_verdict_on_more_seeds_replaces_one_on_fewer_and_never_the_reverse(choices, monkeypatch):
    monkeypatch.setattr(choices, "_sha", lambda recipe: "v1")
    one = (choices.Choice("x", "a", {"b": {choices.NV_CNN: ("--model.lr", "1")}}, sets=("GunPoint",)),)
    runs = {}
    for seed, (a, b) in enumerate(((50, 90), (90, 50), (90, 50))):
        runs[choices._key(choices.NV_CNN, "GunPoint", seed, (), choices.VAL)] = {"val_acc": a / 100, "sha": "v1"}
        runs[choices._key(choices.NV_CNN, "GunPoint", seed, ("--model.lr", "1"), choices.VAL)] = {"val_acc": b / 100, "sha": "v1"}
    judged: dict = {}
    assert choices.keep_verdicts(choices.judge(one, [0], runs), judged)[0]["verdict"] == "change"  # seed 0 alone
    assert choices.keep_verdicts(choices.judge(one, [0, 1, 2], runs), judged)[0]["verdict"] == "keep"  # 76.7 against 63.3
    assert choices.keep_verdicts(choices.judge(one, [0], runs), judged)[0]["verdict"] == "keep"  # 2 runs do not undo 6



def test_cross_validation_reads_only_its_own_folds(choices, monkeypatch, benchmark_script):
    monkeypatch.setattr(choices, "_sha", lambda recipe: "now")
    lr = ("--model.lr", "1")
    one = (choices.Choice("x", "a", {"b": {choices.NV_CNN: lr}}, sets=("ArrowHead",)),)
    seeds = [0, 1, 2, 3, 4]

    def runs(cv, base, alt):
        return {choices._key(choices.NV_CNN, "ArrowHead", s, e, choices.VAL, cv): {"val_acc": a, "sha": "now"}
                | ({"val_fold": s} if cv else {}) for s in seeds for e, a in (((), base), (lr, alt))}

    both = runs(False, 0.5, 0.9) | runs(True, 0.8, 0.8)  # one split says change, the folds say keep
    assert choices.judge(one, seeds, both)[0]["verdict"] == "change"
    row = choices.judge(one, seeds, both, cv=True)[0]
    assert (row["verdict"], row["runs"], row["cv"]) == ("keep", "5 / 5", True)
    assert "| 5 / 5 (5-fold) | keep |" in choices.table([row])
    # a run without its fold recorded is not a fold, whatever its key: then the folds are asked for
    no_fold = {k: {kk: v for kk, v in r.items() if kk != "val_fold"} for k, r in runs(True, 0.8, 0.8).items()}
    unsettled = choices.judge(one, seeds, no_fold, cv=True)[0]
    assert unsettled["verdict"] == "not run yet"
    assert "| 0 / 0 of 5 (5-fold) | not run yet |" in choices.table([unsettled])  # what a side still needs
    need = choices.todo(one, seeds, {}, cv=True)
    assert len(need) == 10 and all(choices._key(r, s, seed, e, choices.VAL, True).endswith("@val0.2cv")
                                   for r, s, seed, e in need)
    ua = benchmark_script("ucr_accuracy")  # the fold goes to the data module; seed s is fold s
    assert ua.overrides("ArrowHead", 0.2, 3)[-2:] == ["--data.init_args.val_fold", "3"]
    assert ua.overrides("mnist1d", 0.2, 1)[-2:] == ["--data.val_fold", "1"]
    assert "val_fold" not in " ".join(ua.overrides("ArrowHead", 0.2))


def test_an_alternative_that_a_change_made_the_recipes_value_is_not_run_against_itself(choices, tmp_path, monkeypatch):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model:\n  lr: 0.001\n  model_kwargs:\n    num_layers: 1\n    head_dropout: 0.5\n")
    monkeypatch.setattr(choices, "ROOT", tmp_path)
    assert choices.recipe_value("r.yaml", ("--model.model_kwargs.num_layers", "1"))
    assert choices.recipe_value("r.yaml", ("--model.model_kwargs.head_dropout", "0.5", "--model.lr", "1.0e-3"))
    assert not choices.recipe_value("r.yaml", ("--model.model_kwargs.num_layers", "2"))
    assert not choices.recipe_value("r.yaml", ("--model.model_kwargs.max_steps", "25"))  # a key the file lacks
    assert not choices.recipe_value("r.yaml", ("--trainer.callbacks+=x.Y",))
    assert not choices.recipe_value("r.yaml", ())
    # an unset classifier_lr learns at lr (NeuroViewModule's default): setting it to lr is the recipe's value
    assert choices.recipe_value("r.yaml", ("--model.classifier_lr", "1.0e-3"))
    assert not choices.recipe_value("r.yaml", ("--model.classifier_lr", "1.0e-4"))
    recipe.write_text("model:\n  model_kwargs:\n    num_layers: 1\n")  # neither set: not the recipe's value
    assert not choices.recipe_value("r.yaml", ("--model.classifier_lr", "1.0e-3"))
    recipe.write_text("model:\n  lr: 0.001\n  model_kwargs:\n    num_layers: 1\n    head_dropout: 0.5\n")
    monkeypatch.setattr(choices, "_sha", lambda r: "now")
    one = (choices.Choice("n", "2", {"1": {"r.yaml": ("--model.model_kwargs.num_layers", "1")},
                                     "3": {"r.yaml": ("--model.model_kwargs.num_layers", "3")}}, sets=("GunPoint",)),)
    assert {e for *_, e in choices.todo(one, [0], {})} == {(), ("--model.model_kwargs.num_layers", "3")}
