"""Files read for a trained model, end to end: ``neuroview predict``/``test`` and ``explain --data`` of a file of new
recordings holding some of the model's classes (or one) score each series as the model's class of its label's name
(they refused it, or would number the file's own classes from 0); ``explain --weights W --data FILE`` and
``neuroview retrofit RUN.ckpt`` refuse the model's own file changed since (they re-carved it without a word), and the
refusal names the weight file, not "the zoo entry". Known answers: the class a label names is its position among the
checkpoint's recorded classes; the rows of each split follow from the file's first steps."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from neuroview.training.cli import cli_main

ROOT = Path(__file__).resolve().parents[2]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu"]


def _series(n: int, seed: int, labels=("a", "b", "c")):
    """``n`` series of the classes ``labels`` cycled, class k a bump at its own window (learnable, not needed)."""
    rng = np.random.default_rng(seed)
    y = np.array([labels[i % len(labels)] for i in range(n)])
    x = rng.normal(size=(n, 1, 24)).astype(np.float32)
    for i, c in enumerate(y):
        k = "abcd".index(c)
        x[i, 0, 4 + 5 * k:8 + 5 * k] += 2.0
    return x, y


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A NeuroView and a standard 1-D CNN, two steps each, on ``mine.npz`` (30 series of classes a, b, c)."""
    tmp = tmp_path_factory.mktemp("classes")
    x, y = _series(30, 0)
    np.savez(tmp / "mine.npz", X=x, y=y)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROVIEW_CACHE", str(tmp / "cache"))
        for recipe in ("ucr_nv_cnn", "ucr_cnn"):
            cli_main(["fit", "--config", str(ROOT / "recipes" / f"{recipe}.yaml"), "--data", "neuroview.data.NpzDataModule",
                      "--data.init_args.path", str(tmp / "mine.npz"), "--trainer.default_root_dir", str(tmp / recipe),
                      "--trainer.max_steps", "2", "--test_after_fit", "false", *QUIET]
                     + (["--model.model_kwargs.members", "1"] if recipe == "ucr_nv_cnn" else []))
    return tmp


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)


def _ckpt(runs, recipe="ucr_nv_cnn") -> str:
    return str(runs / recipe / "checkpoints" / "last.ckpt")


def _table(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _predict(runs, tmp_path, name: str, labels) -> list[dict]:
    x, y = _series(9, 5, labels)
    np.savez(tmp_path / f"{name}.npz", X=x, y=y)
    cli_main(["predict", "--ckpt_path", _ckpt(runs), "--data", "neuroview.data.NpzDataModule", "--data.init_args.path",
              str(tmp_path / f"{name}.npz"), "--trainer.default_root_dir", str(tmp_path / "out"), *QUIET])
    found = sorted((tmp_path / "out").rglob("predictions.csv"))
    assert len(found) == 1
    return _table(found[0])


@pytest.mark.parametrize("labels", [("b", "c"), ("c",)], ids=["two_of_three", "one"])
def test_predict_scores_a_file_of_some_of_the_models_classes_by_name(runs, tmp_path, labels):
    model = [str(c) for c in torch.load(_ckpt(runs), map_location="cpu", weights_only=True)["neuroview_classes"]]
    assert sorted(model) == ["a", "b", "c"]
    rows = _predict(runs, tmp_path, "new", labels)
    _, y = _series(9, 5, labels)
    assert [r["target"] for r in rows] == list(y[[int(r["split_index"]) for r in rows]])  # every series, read whole
    assert [int(r["target_index"]) for r in rows] == [model.index(r["target"]) for r in rows]  # the model's class of it
    assert [k for k in rows[0] if k.startswith("prob_")] == [f"prob_{c}" for c in model]  # all 3 outputs, by name


def test_predict_refuses_a_label_the_model_has_no_class_for_by_name(runs, tmp_path):
    with pytest.raises(ValueError, match=r"got \['d'\]"):
        _predict(runs, tmp_path, "odd", ("b", "d"))


def test_explain_data_of_a_file_of_some_of_the_models_classes_reads_it_by_name(runs, tmp_path):
    from neuroview.viz.report import main as explain

    x, y = _series(8, 7, ("a", "c"))
    np.savez(tmp_path / "two.npz", X=x, y=y)
    assert explain(["--ckpt", _ckpt(runs), "--data", str(tmp_path / "two.npz"), "--out", str(tmp_path / "rep"),
                    "--samples", "8", "--examples", "0", "--no-gallery", "--no-progress", "--dpi", "30"]) == 0
    table = _table(tmp_path / "rep" / "predictions.csv")
    assert sorted(int(r["file_index"]) for r in table) == list(range(8))
    assert [r["true"] for r in table] == list(y[[int(r["file_index"]) for r in table]])


def _reordered(path) -> None:
    d = np.load(path)
    perm = np.random.default_rng(3).permutation(len(d["y"]))
    np.savez(path, X=d["X"][perm], y=d["y"][perm])


def test_explain_weights_data_refuses_the_weight_files_own_file_changed_since(tmp_path, capsys):
    from neuroview.training.retrofit import main as retrofit
    from neuroview.viz.report import main as explain
    from neuroview.zoo import create_model

    x, y = _series(30, 2)
    np.savez(tmp_path / "mine.npz", X=x, y=y)
    torch.manual_seed(0)
    torch.save(create_model("lite", num_classes=3, in_channels=1).state_dict(), tmp_path / "std.pt")
    out = tmp_path / "nv.safetensors"
    assert retrofit([str(tmp_path / "std.pt"), "--arch", "lite", "--arch-kwargs", '{"num_classes": 3, "in_channels": 1}',
                     "--data", str(tmp_path / "mine.npz"), "--epochs", "5", "--out", str(out)]) == 0
    _reordered(tmp_path / "mine.npz")
    capsys.readouterr()
    for data in (["--data", str(tmp_path / "mine.npz")], []):  # with --data: it was rc 0, re-carved
        assert explain(["--model", "nv_lite", "--weights", str(out), *data, "--out", str(tmp_path / f"rep{len(data)}"),
                        "--samples", "4", "--examples", "0", "--no-gallery", "--no-progress", "--dpi", "30"]) == 2
        err = capsys.readouterr().err
        assert "its training split changed since" in err and f"the weight file {out}" in err, err
        assert "the zoo entry" not in err


def test_retrofit_of_a_checkpoint_refuses_its_file_changed_since(runs, tmp_path, capsys):
    from neuroview.training.retrofit import main as retrofit

    run = tmp_path / "copy"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(Path(_ckpt(runs, "ucr_cnn")).read_bytes())
    assert retrofit([str(run / "checkpoints" / "last.ckpt"), "--epochs", "3"]) == 0  # its file as it was: read
    _reordered(runs / "mine.npz")
    try:
        capsys.readouterr()
        assert retrofit([str(run / "checkpoints" / "last.ckpt"), "--epochs", "3"]) == 2
        assert "its training split changed since" in capsys.readouterr().err
    finally:
        x, y = _series(30, 0)
        np.savez(runs / "mine.npz", X=x, y=y)  # the module's file back as the fits read it
