"""NeuroViewModule(num_classes=5) on a data module of 3 classes (the Python API, where num_classes is not linked from
the data) trained without a word: two outputs learned classes that never occur, the confusion matrix dropped the class
names, and the checkpoint (3 class names for 5 outputs) was refused by ``explain`` on its own training file. Every
stage now refuses the run at ``setup``, naming num_classes and the data module's classes; ``write_confusion`` and the
predictions writer say why they write class numbers where the data module names another number of classes."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from neuroview.data import NpzDataModule
from neuroview.training.module import NeuroViewModule
from neuroview.training.outputs import _class_names, write_confusion


@pytest.fixture
def three(tmp_path):
    """A data module of 3 classes, 'a', 'b', 'c' (12 series each)."""
    rng = np.random.default_rng(0)
    y = np.array(["a", "b", "c"] * 12)
    x = (rng.normal(size=(36, 1, 24)) + (np.arange(36) % 3)[:, None, None]).astype(np.float32)
    np.savez(tmp_path / "three.npz", X=x, y=y)
    return NpzDataModule(str(tmp_path / "three.npz"), batch_size=8)


def _trainer(tmp_path) -> pl.Trainer:
    return pl.Trainer(max_epochs=1, default_root_dir=str(tmp_path / "run"), enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu", logger=False, enable_checkpointing=False)


def _module(num_classes: int) -> NeuroViewModule:
    torch.manual_seed(0)
    return NeuroViewModule(arch="nv_fcn1d", num_classes=num_classes, in_channels=1, max_len=24)


@pytest.mark.parametrize("num_classes", [5, 2])
def test_fit_is_refused_before_training_where_num_classes_is_not_the_data_modules(three, tmp_path, num_classes):
    m = _module(num_classes)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    tr = _trainer(tmp_path)
    with pytest.raises(ValueError, match=rf"^num_classes: the model has {num_classes} outputs \(num_classes="
                                         rf"{num_classes}\), the data module's classes are 3 \(a, b, c\); pass "
                                         r"num_classes=3"):
        tr.fit(m, three)
    assert tr.global_step == 0  # nothing trained
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k in after)


@pytest.mark.parametrize("stage", ["test", "validate", "predict"])
def test_every_other_stage_is_refused_too(three, tmp_path, stage):
    with pytest.raises(ValueError, match=r"^num_classes: the model has 5 outputs .* classes are 3 \(a, b, c\)"):
        getattr(_trainer(tmp_path), stage)(_module(5), three)


def test_the_data_modules_own_count_trains(three, tmp_path):
    tr = _trainer(tmp_path)
    tr.fit(_module(3), three)
    assert tr.global_step == len(three.train_dataloader()) > 0  # one epoch, every training batch


def _fake_trainer(log_dir, names):
    return SimpleNamespace(log_dir=str(log_dir), is_global_zero=True, loggers=[object()],
                           datamodule=SimpleNamespace(class_names=names))


def test_write_confusion_says_why_it_writes_class_numbers(tmp_path):
    confusion = torch.eye(5, dtype=torch.long)
    with pytest.warns(UserWarning, match=r"confusion_matrix.csv: the data module names 3 classes \(a, b, c\), the "
                                         r"model has 5 outputs: its columns are written as class numbers"):
        write_confusion(_fake_trainer(tmp_path, ["a", "b", "c"]), confusion, 5)
    with open(tmp_path / "confusion_matrix.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["true\\predicted", "0", "1", "2", "3", "4"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "3", "4"]


def test_write_confusion_names_the_classes_without_a_warning_where_the_counts_agree(tmp_path, recwarn):
    write_confusion(_fake_trainer(tmp_path, ("a", "b", "c")), torch.eye(3, dtype=torch.long), 3)
    with open(tmp_path / "confusion_matrix.csv", newline="", encoding="utf-8") as f:
        assert next(csv.reader(f)) == ["true\\predicted", "a", "b", "c"]
    assert not [w for w in recwarn if "confusion" in str(w.message)]


def test_the_predictions_writer_says_why_it_writes_no_names():
    with pytest.warns(UserWarning, match=r"predictions.csv: the data module names 3 classes \(a, b, c\), the model "
                                         r"has 5 outputs: no target_name and pred_name columns"):
        assert _class_names(SimpleNamespace(class_names=["a", "b", "c"]), 5, "predictions.csv") is None
    assert _class_names(SimpleNamespace(class_names=["a", "b", "c"]), 3, "predictions.csv") == ["a", "b", "c"]
    assert _class_names(SimpleNamespace(), 3, "predictions.csv") is None  # a data module that names none: nothing said
