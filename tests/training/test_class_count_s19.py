"""NeuroViewModule(num_classes=5) on a data module of 3 classes (the Python API, where num_classes is not linked from
the data) trained without a word: two outputs learned classes that never occur, the confusion matrix dropped the class
names, and the checkpoint (3 class names for 5 outputs) was refused by ``explain`` on its own training file. Every
stage now refuses the run at ``setup``, naming num_classes and the data module's classes; ``write_confusion`` and the
predictions writer say why they write class numbers where the data module names another number of classes. Trained
weights (load_from_checkpoint, init_weights, an earlier fit) are told to pass data of the classes they were trained on,
not num_classes=3, which their 5 outputs cannot follow; a ckpt_path, restored after setup, gets the way of each."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from neuroview.data import NpzDataModule
from neuroview.training.module import NeuroViewModule
from neuroview.training.outputs import PredictionWriter, write_confusion


@pytest.fixture
def three(tmp_path):
    """A data module of 3 classes, 'a', 'b', 'c' (12 series each)."""
    return _data(tmp_path, "abc")


def _data(folder, classes: str) -> NpzDataModule:
    """A data module of ``classes`` (one letter each, 12 series each)."""
    rng = np.random.default_rng(0)
    n = 12 * len(classes)
    y = np.array(list(classes) * 12)
    x = (rng.normal(size=(n, 1, 24)) + (np.arange(n) % len(classes))[:, None, None]).astype(np.float32)
    np.savez(folder / f"{classes}.npz", X=x, y=y)
    return NpzDataModule(str(folder / f"{classes}.npz"), batch_size=8)


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
                                         rf"{num_classes}\), the data module's classes are 3 \(a, b, c\)\. A new model: "
                                         r"pass num_classes=3 .*; weights trained on " rf"{num_classes} classes \(ckpt_path=, "
                                         r"a state dict\): pass data of those classes"):
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


def _predict(tmp_path, names, outputs: int) -> list[list[str]]:
    """``predictions.csv`` as :class:`PredictionWriter` writes it for two samples (targets 1 and 2, predicted 0 and
    2) of a model of ``outputs`` outputs, on a trainer whose data module names ``names``."""
    probs = torch.full((2, outputs), 0.1)
    probs[0, 0] = probs[1, 2] = 0.9
    batch = {"preds": probs.argmax(-1), "probs": probs, "target": torch.tensor([1, 2])}
    trainer = SimpleNamespace(log_dir=str(tmp_path), world_size=1, global_rank=0,
                              datamodule=SimpleNamespace(class_names=names))
    PredictionWriter(str(tmp_path)).write_on_epoch_end(trainer, None, [batch], [[[0, 1]]])
    with open(tmp_path / "predictions.csv", newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_the_predictions_writer_says_why_it_writes_no_names(tmp_path, recwarn):
    with pytest.warns(UserWarning, match=r"predictions.csv: the data module names 3 classes \(a, b, c\), the model "
                                         r"has 5 outputs: target, pred and prob_<k> are written as the model's output numbers"):
        rows = _predict(tmp_path / "five", ["a", "b", "c"], 5)
    assert rows[0] == ["split_index", "target", "pred", *[f"prob_{c}" for c in range(5)]]
    assert [r[:3] for r in rows[1:]] == [["0", "1", "0"], ["1", "2", "2"]]
    recwarn.clear()
    rows = _predict(tmp_path / "three", ["a", "b", "c"], 3)  # as many names as outputs: named, without a word
    assert rows[0] == ["split_index", "target", "pred", "target_index", "pred_index", "prob_a", "prob_b", "prob_c"]
    assert [r[:5] for r in rows[1:]] == [["0", "b", "a", "1", "0"], ["1", "c", "c", "2", "2"]]
    assert not [w for w in recwarn if "predictions.csv" in str(w.message)]


# ---------------------------------------------------------------- trained weights: the data, not num_classes
OLD = (r"^data: its classes, in order, are \['a', 'b', 'c'\]; the model's outputs are \['a', 'b', 'c', 'd', 'e'\].*"
       r"Pass data of the classes the model was trained on \(every one of them in its training split\)$")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model of 5 outputs trained (2 steps) on classes a..e: its Lightning checkpoint (which records the classes),
    the same without that record, and its network's state dict (a ``.pt`` file, no classes)."""
    folder = tmp_path_factory.mktemp("trained")
    tr = pl.Trainer(max_steps=2, default_root_dir=str(folder), enable_progress_bar=False, enable_model_summary=False,
                    accelerator="cpu", logger=False, enable_checkpointing=False, num_sanity_val_steps=0)
    m = _module(5)
    tr.fit(m, _data(folder, "abcde"))
    tr.save_checkpoint(folder / "five.ckpt")
    ckpt = torch.load(folder / "five.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["neuroview_classes"] == list("abcde")
    del ckpt["neuroview_classes"]
    torch.save(ckpt, folder / "unnamed.ckpt")
    torch.save(m.model.state_dict(), folder / "five.pt")
    return folder


def _kw():
    return dict(arch="nv_fcn1d", in_channels=1, max_len=24)


@pytest.mark.parametrize("how", ["init_weights", "load_from_checkpoint"])
def test_trained_weights_on_data_lacking_some_of_their_classes_are_told_to_pass_those_classes(trained, tmp_path, how):
    m = (NeuroViewModule(num_classes=5, init_weights=str(trained / "five.ckpt"), **_kw()) if how == "init_weights" else
         NeuroViewModule.load_from_checkpoint(trained / "five.ckpt"))
    with pytest.raises(ValueError, match=OLD) as e:
        _trainer(tmp_path).test(m, _data(tmp_path, "abc"), verbose=False)
    assert "num_classes=3" not in str(e.value)  # the outputs of trained weights are theirs: 3 would not load


@pytest.mark.parametrize("how", ["init_weights", "load_from_checkpoint"])
def test_trained_weights_that_record_no_classes_are_told_to_pass_the_classes_they_were_trained_on(trained, tmp_path, how):
    m = (NeuroViewModule(num_classes=5, init_weights=str(trained / "five.pt"), **_kw()) if how == "init_weights" else
         NeuroViewModule.load_from_checkpoint(trained / "unnamed.ckpt"))
    with pytest.raises(ValueError) as e:
        _trainer(tmp_path).predict(m, _data(tmp_path, "abc"))
    assert str(e.value) == (f"data: the data module's classes are 3 (a, b, c); the model's 5 outputs are the classes its "
                            f"weights ({how}) were trained on, which num_classes does not change. Pass data of the "
                            "classes the model was trained on (every one of them in its training split)")


def test_a_model_fitted_earlier_is_told_to_pass_the_classes_it_was_fitted_on(tmp_path):
    m, tr = _module(5), pl.Trainer(max_steps=1, default_root_dir=str(tmp_path), enable_progress_bar=False,
                                    enable_model_summary=False, accelerator="cpu", logger=False,
                                    enable_checkpointing=False, num_sanity_val_steps=0)
    tr.fit(m, _data(tmp_path, "abcde"))
    with pytest.raises(ValueError, match=OLD):
        tr.test(m, _data(tmp_path, "abc"), verbose=False)


def test_a_checkpoint_path_which_setup_cannot_see_gets_advice_true_of_new_and_trained_models(trained, tmp_path):
    # Lightning restores ckpt_path after setup: the message gives both ways, and each, followed, runs
    with pytest.raises(ValueError, match=r"^num_classes: .*A new model: pass num_classes=3 .*; weights trained on 5 "
                                         r"classes \(ckpt_path=, a state dict\): pass data of those classes \(every "
                                         r"one of them in its training split\)$"):
        _trainer(tmp_path).test(_module(5), _data(tmp_path, "abc"), ckpt_path=trained / "five.ckpt", verbose=False)
    _trainer(tmp_path).test(_module(5), _data(tmp_path, "abcde"), ckpt_path=trained / "five.ckpt", verbose=False)
    _trainer(tmp_path).test(_module(3), _data(tmp_path, "abc"), verbose=False)
