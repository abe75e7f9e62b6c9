"""benchmarks/ucr_accuracy.py as a cache of runs: validation runs apart from the tables, the end of
training kept with each run, the README's tables pinned to a recipe version, raw-series sets."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def ua(benchmark_script):
    return benchmark_script("ucr_accuracy"), benchmark_script("reproduce_zoo")


def test_validation_runs_and_older_versions_stay_out_of_the_table(ua):
    ua, _ = ua
    r = "recipes/ucr_nv_cnn.yaml"
    base = {"recipe": r, "set": "GunPoint", "sha": ua._sha(r), "seconds": 9.0, "extra": [], "train_acc": 1.0,
            "train_loss": 0.002, "epochs": 300, "steps": 3000, "stopped": "plateau"}
    runs = {ua._key(r, "GunPoint", 0): base | {"seed": 0, "test_acc": 0.98},
            ua._key(r, "GunPoint", 1, val=0.2): base | {"seed": 1, "val_acc": 0.5, "val_size": 10, "val_fraction": 0.2},
            "old": base | {"seed": 2, "test_acc": 0.7, "sha": "0123456789abcdef"}}
    row = next(line for line in ua.table([r], ["GunPoint"], runs, mr={}).splitlines() if line.startswith("| GunPoint"))
    assert "| 98.0 (1) |" in row  # not the validation run, not the older recipe
    row = next(line for line in ua.table([r], ["GunPoint"], runs, mr={}, shas={r: "0123456789abcdef"}).splitlines()
               if line.startswith("| GunPoint"))
    assert "| 70.0 (1) |" in row  # the pinned version only
    listed = ua.listing([r], ["GunPoint"], runs, val=0.2)
    assert listed.startswith("ucr_nv_cnn@GunPoint@1@val0.2") and "val  50.0 | train 100.0, loss 0.0020, 300 epochs" in listed
    assert ua._key(r, "GunPoint", 1, ("--a", "b"), 0.2) == "ucr_nv_cnn@GunPoint@1@--a b@val0.2"
    assert ua.overrides("ArrowHead", 0.2) == ["--data.init_args.name", "ArrowHead", "--data.init_args.val_fraction", "0.2"]


def test_rescaled_set_is_aeon_s_with_every_series_rescaled(ua, tmp_path, monkeypatch):
    ua, _ = ua
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path))
    args = ua.overrides("GunPointRescaled", 0.2)
    assert args[:2] == ["--data", "neuroview.data.NpzDataModule"] and args[-2:] == ["--data.init_args.val_fraction", "0.2"]
    from aeon.datasets import load_classification

    with np.load(args[3]) as f:
        x, y = f["X"], f["y"]
    ref, labels = load_classification("GunPoint", split="train")
    assert list(y) == list(labels.astype(str)) and x.shape == ref.shape
    a = x.std(-1) / ref.std(-1)  # each series its own factor, offset taken out
    assert 0.05 <= a.min() and a.max() <= 20 and a.max() / a.min() > 10
    np.testing.assert_allclose((x - x.mean(-1, keepdims=True)) / a[..., None], ref - ref.mean(-1, keepdims=True), atol=1e-3)


def test_end_of_training_is_read_from_the_run_s_log(ua, tmp_path):
    _, rz = ua
    log = tmp_path / "logs" / "version_0"
    log.mkdir(parents=True)
    (log / "metrics.csv").write_text("epoch,step,train_acc,train_loss_epoch,train_loss_step\n"
                                     "0,9,0.5,0.9,\n0,9,,,0.8\n1,19,0.9,0.25,\n2,29,,,0.1\n")
    assert rz._end_of_training(str(tmp_path)) == {"last_epoch": 1, "train_loss": 0.25}
    stop = {"class_path": "pytorch_lightning.callbacks.EarlyStopping", "init_args": {"monitor": "train_loss_epoch"}}
    assert rz._stops_early({"trainer": {"callbacks": [stop]}}) and not rz._stops_early({"trainer": {"callbacks": None}})


def test_a_run_of_a_new_recipe_version_keeps_the_older_one(ua):
    ua, _ = ua
    old = {"sha": "0123456789abcdef", "test_acc": 0.7}
    runs = ua.keep({"k": old}, "k", {"sha": "fedcba9876543210", "test_acc": 0.9})
    assert runs == {"k": {"sha": "fedcba9876543210", "test_acc": 0.9}, "k@0123456789abcdef": old}
    assert ua.keep(runs, "k", {"sha": "fedcba9876543210", "test_acc": 0.8})["k"]["test_acc"] == 0.8  # same version: replaced


def test_runs_made_in_a_worktree_merge_without_displacing_the_recipe_as_it_is(ua):
    ua, _ = ua
    now, then, older = ({"sha": s, "test_acc": a} for s, a in (("aa", 0.9), ("bb", 0.8), ("cc", 0.7)))
    # the worktree ran an earlier version (bb) of the recipe under the plain key, and had a run of cc moved aside
    merged, new = ua.merge({"k": now}, {"k": then, "k@cc": older, "j": now})
    assert new == 3 and merged["k@cc"] == older and merged["j"] == now
    assert merged["k"] == now and merged["k@bb"] == then  # the recipe as it is here keeps its key
    assert ua.merge(merged, {"k": then, "k@cc": older, "j": now})[1] == 0  # merging again adds nothing


def test_a_run_keeps_the_version_it_was_trained_from_when_the_recipe_changes_meanwhile(monkeypatch, benchmark_script):
    ua = benchmark_script("ucr_accuracy")
    file = {"version": "as-trained"}
    monkeypatch.setattr(ua, "_sha", lambda recipe: file["version"])

    def fake_train(recipe, seed, extra=None, threads=None, split="test"):
        file["version"] = "edited-during-the-run"  # someone edits the recipe while it trains
        return {"metrics": {"test_acc": 0.5, "test_size": 2}, "arch": "nv_lite", "fit": {"train_acc": 1.0},
                "epochs": 1, "steps": 1, "seconds": 0.1, "arch_kwargs": {"members": 5, "batched": True}}

    monkeypatch.setattr(ua, "train", fake_train)
    rec = ua.run_one("recipes/ucr_nv_cnn.yaml", "GunPoint", 0, export=False)
    assert rec["sha"] == "as-trained" and rec["batched"] is True
