"""The model's own file, read again by `neuroview explain`/`test` and Lightning (probe P9, F1 and F2): rewritten at its
path with its rows in another order, it was carved into other splits and its "test" split, 10 of 12 series of which
the model was trained on, was scored as if unseen, without a word; `explain --split train` wrote no file_index, and
unit_gallery.csv named each sample by its index in the training split (116 of 164 rows named a row of the file of
another class). Expected rows are computed here from the file and the carve's documented rule."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from neuroview.data.splits import stratified_split
from neuroview.training.cli import cli_main
from neuroview.viz.report import main as explain

from test_explain_own_files_s15 import NAMES, _series  # the same three-class series, told apart by two windows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A two-step model on `train.npz` (30 series; fit carved a fifth to test, then a fifth of the rest to validate)."""
    tmp = tmp_path_factory.mktemp("changed")
    x, y = _series(30, 0)
    np.savez(tmp / "train.npz", X=x, y=NAMES[y])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROVIEW_CACHE", str(tmp / "cache"))
        cli_main(["fit", "--config", str(ROOT / "recipes" / "ucr_nv_cnn.yaml"), "--data", "neuroview.data.NpzDataModule",
                  "--data.init_args.path", str(tmp / "train.npz"), "--data.init_args.val_fraction", "0.2",
                  "--model.model_kwargs.members", "1", "--trainer.default_root_dir", str(tmp / "run"),
                  "--trainer.max_steps", "2", "--test_after_fit", "false", "--trainer.enable_progress_bar", "false",
                  "--trainer.enable_model_summary", "false"])
    return tmp, str(tmp / "run" / "checkpoints" / "last.ckpt"), str(tmp / "run" / "logs" / "version_0" / "config.yaml")


def _table(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _carve(y: np.ndarray) -> dict[str, np.ndarray]:
    """The file's rows of each split: test_fraction 0.2 by seed + 1, then val_fraction 0.2 of the rest by seed (0)."""
    keep, test = stratified_split(NAMES[y], 0.2, 1)
    train, val = stratified_split(NAMES[y][keep], 0.2, 0)
    return {"train": keep[train], "val": keep[val], "test": test}


def test_explain_of_the_training_and_validation_splits_names_each_sample_s_row_of_the_file(run):
    tmp, ckpt, _ = run
    _, y = _series(30, 0)
    rows = _carve(y)
    for split in ("train", "val"):
        out = tmp / f"{split}_out"
        assert explain(["--ckpt", ckpt, "--out", str(out), "--no-progress", "--split", split, "--examples", "2"]) == 0
        table = _table(out / "predictions.csv")
        assert list(table[0])[:3] == ["sample", "split_index", "file_index"]  # was no file_index
        got = [int(r["file_index"]) for r in table]
        assert got == rows[split][[int(r["split_index"]) for r in table]].tolist()
        assert [r["true"] for r in table] == list(NAMES[y][got])  # each row of the file is that sample's class
        assert json.loads((out / "report.json").read_text())["file_index"] == got
    gallery = _table(tmp / "train_out" / "unit_gallery.csv")  # the gallery reads the training split
    assert gallery and list(gallery[0])[:4] == ["unit", "rank", "sample", "file_index"]
    assert [int(r["file_index"]) for r in gallery] == [int(rows["train"][int(r["sample"])]) for r in gallery]
    assert [r["class"] for r in gallery] == [NAMES[y][int(r["file_index"])] for r in gallery]  # 116 of 164 were not


def test_the_training_file_reordered_at_its_path_is_refused_by_explain_and_test(run, capsys):
    tmp, ckpt, config = run
    path = tmp / "train.npz"
    saved = path.read_bytes()
    try:
        with np.load(path) as f:
            x, y = f["X"], f["y"]
        order = np.random.default_rng(1).permutation(len(y))
        np.savez(path, X=x[order], y=y[order])  # the same 30 series, another order (a shuffled re-export)
        capsys.readouterr()
        assert explain(["--ckpt", ckpt, "--out", str(tmp / "after"), "--no-progress", "--no-gallery"]) == 2
        err = capsys.readouterr().err
        assert f"path: {path} is the file the checkpoint {ckpt} was trained on, but its training split changed since" in err
        assert "test (validation) split may hold series the model was trained on" in err and "Restore the file" in err
        assert not (tmp / "after").exists()
        with pytest.raises(ValueError, match=rf"path: {path} is the file the checkpoint {ckpt} was trained on"):
            cli_main(["test", "--config", config, "--ckpt_path", ckpt])
    finally:
        path.write_bytes(saved)
    assert explain(["--ckpt", ckpt, "--out", str(tmp / "restored"), "--no-progress", "--no-gallery"]) == 0


def test_a_trainer_restoring_the_checkpoint_holds_the_file_to_it(run):
    import pytorch_lightning as pl

    from neuroview.data import NpzDataModule
    from neuroview.training.module import NeuroViewModule

    tmp, ckpt, _ = run
    path = tmp / "train.npz"
    saved = path.read_bytes()
    try:
        x, y = _series(31, 0)  # a series appended: the same path, other series
        np.savez(path, X=x, y=NAMES[y])
        module = NeuroViewModule.load_from_checkpoint(ckpt)
        trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
        with pytest.raises(ValueError, match=rf"path: {path} is the file the checkpoint {ckpt} was trained on"):
            trainer.test(module, datamodule=NpzDataModule(str(path), val_fraction=0.2, normalize="sample"), ckpt_path=ckpt)
    finally:
        path.write_bytes(saved)


def test_a_copy_of_the_changed_training_file_is_refused_and_the_advice_reads_it_whole(run, capsys):
    import shutil

    tmp, ckpt, config = run
    path = tmp / "train.npz"
    saved = path.read_bytes()
    try:
        x, y = _series(36, 0)  # six series appended (the first 30 as trained)
        np.savez(path, X=x, y=NAMES[y])
        shutil.copy(path, tmp / "data_v2.npz")  # "save the new contents under another name", data.npz left changed
        v2 = ["test", "--config", config, "--ckpt_path", ckpt, "--data.init_args.path", str(tmp / "data_v2.npz")]
        with pytest.raises(ValueError, match=rf"path: {tmp / 'data_v2.npz'} is a copy of {path}, the file the "
                                             rf"checkpoint {ckpt} was trained on, but that file changed since"):
            cli_main(v2)  # it was carved as the model's own data: 11 of its 12 "test" series trained on
        capsys.readouterr()
        assert explain(["--ckpt", ckpt, "--data", str(tmp / "data_v2.npz"), "--out", str(tmp / "v2"), "--no-progress",
                        "--no-gallery"]) == 2
        assert "is a copy of" in capsys.readouterr().err and not (tmp / "v2").exists()
        path.write_bytes(saved)  # the advice: the file restored as trained, the new contents under another name
        cli = cli_main(v2)
        assert cli.datamodule.split_sizes()["test"] == 36  # read as new data, whole
        os.replace(path, tmp / "trained.npz")  # or nothing left at the trained path: new data too
        cli = cli_main(v2)
        assert cli.datamodule.split_sizes()["test"] == 36
        os.replace(tmp / "trained.npz", path)
    finally:
        path.write_bytes(saved)


def test_a_resume_on_the_changed_training_file_gives_advice_for_a_resume(run):
    tmp, ckpt, config = run
    path = tmp / "train.npz"
    saved = path.read_bytes()
    try:
        x, y = _series(36, 0)
        np.savez(path, X=x, y=NAMES[y])
        with pytest.raises(ValueError) as e:
            cli_main(["fit", "--config", config, "--ckpt_path", ckpt, "--trainer.max_steps", "3"])
        said = str(e.value)
        assert f"path: {path} is the file the checkpoint {ckpt} was trained on" in said
        assert "a resume would carve the training and validation splits of the changed file otherwise" in said
        assert f"--model.init_weights {ckpt}" in said and "another name" not in said
    finally:
        path.write_bytes(saved)
