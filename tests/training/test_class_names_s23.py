"""Trained weights scored in Python (``NeuroViewModule.load_from_checkpoint`` then ``trainer.test`` / ``validate`` /
``predict``, or a module fitted earlier in the session, then tested) on a data module of as many classes as the model
has outputs but under other names were scored and named by position without a word: the model's class 'b' (output 1)
was scored as the data's class 'c', and ``confusion_matrix.csv`` / ``predictions.csv`` named its outputs so. Only a
count that differs was refused. The same data through ``ckpt_path=`` or ``init_weights=`` was refused by name; now
every way in refuses it in the same words, when the stage starts, before any batch. The ways that worked still run: the
same names in the same order, a data module that names no classes, weights that record none, a fit (fine-tuning) on
other classes of the same count; and, refused by the first version of this check, a ``ckpt_path=`` scored on its own
data whatever the module held before (Lightning restores it after ``setup``), a plain loader given to a trainer that
fitted a data module earlier (Lightning keeps that module on the trainer), and data after a fit on plain loaders
(which records no names)."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from neuroview.data import NpzDataModule
from neuroview.training.module import NeuroViewModule

# written out, not built from check_classes: the words ckpt_path= and init_weights= give for data 'b, c, d'
REFUSED = ("data: its classes, in order, are ['b', 'c', 'd']; the model's outputs are ['a', 'b', 'c']: a data module "
           "numbers the classes it reads, so its class i would be scored and named as the model's class i. Pass data "
           "of the classes the model was trained on (every one of them in its training split)")


def _data(folder, classes: str) -> NpzDataModule:
    """A data module of ``classes`` (one letter each, 12 series each), class k drawn around k."""
    rng = np.random.default_rng(0)
    n = 12 * len(classes)
    y = np.array(list(classes) * 12)
    x = (rng.normal(size=(n, 1, 24)) + (np.arange(n) % len(classes))[:, None, None]).astype(np.float32)
    np.savez(folder / f"{classes}.npz", X=x, y=y)
    return NpzDataModule(str(folder / f"{classes}.npz"), batch_size=8)


def _trainer(tmp_path, **kw) -> pl.Trainer:
    kw = {"max_epochs": 1, "logger": False, **kw}
    return pl.Trainer(default_root_dir=str(tmp_path / "run"), enable_progress_bar=False, enable_model_summary=False,
                      accelerator="cpu", enable_checkpointing=False, num_sanity_val_steps=0, **kw)


def _module(num_classes: int = 3) -> NeuroViewModule:
    torch.manual_seed(0)
    return NeuroViewModule(arch="nv_fcn1d", num_classes=num_classes, in_channels=1, max_len=24)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model of 3 outputs trained (2 steps) on classes a, b, c: its checkpoint (which records them), and the same
    checkpoint without that record."""
    folder = tmp_path_factory.mktemp("abc")
    tr = _trainer(folder, max_steps=2)
    tr.fit(_module(), _data(folder, "abc"))
    tr.save_checkpoint(folder / "abc.ckpt")
    ckpt = torch.load(folder / "abc.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["neuroview_classes"] == ["a", "b", "c"]
    del ckpt["neuroview_classes"]
    torch.save(ckpt, folder / "unnamed.ckpt")
    return folder


def _scored(trainer, stage, module, dm):
    kw = {} if stage == "predict" else {"verbose": False}
    return getattr(trainer, stage)(module, dm, **kw)


@pytest.mark.parametrize("stage", ["test", "validate", "predict"])
def test_load_from_checkpoint_on_other_names_of_the_same_count_is_refused_as_ckpt_path_refuses_it(trained, tmp_path, stage):
    with pytest.raises(ValueError) as by_path:  # the way in that was refused already: the words to match
        getattr(_trainer(tmp_path), stage)(_module(), _data(tmp_path, "bcd"), ckpt_path=trained / "abc.ckpt")
    assert str(by_path.value) == REFUSED
    m = NeuroViewModule.load_from_checkpoint(trained / "abc.ckpt", weights_only=True)
    with pytest.raises(ValueError) as e:
        _scored(_trainer(tmp_path), stage, m, _data(tmp_path, "bcd"))
    assert str(e.value) == REFUSED


def test_the_refused_test_writes_no_confusion_matrix_named_by_the_datas_classes(trained, tmp_path):
    m = NeuroViewModule.load_from_checkpoint(trained / "abc.ckpt", weights_only=True)
    trainer = _trainer(tmp_path, logger=CSVLogger(str(tmp_path / "logs")))
    with pytest.raises(ValueError, match=r"^data: its classes, in order, are \['b', 'c', 'd'\]"):
        trainer.test(m, _data(tmp_path, "bcd"), verbose=False)
    assert not list((tmp_path / "logs").rglob("confusion_matrix.csv"))


def test_a_module_fitted_earlier_in_the_session_then_tested_on_other_names_is_refused(tmp_path):
    m = _module()
    _trainer(tmp_path, max_steps=1).fit(m, _data(tmp_path, "abc"))
    with pytest.raises(ValueError) as e:
        _trainer(tmp_path).test(m, _data(tmp_path, "bcd"), verbose=False)
    assert str(e.value) == REFUSED


def test_names_that_share_a_prefix_are_refused_too(trained, tmp_path):
    m = NeuroViewModule.load_from_checkpoint(trained / "abc.ckpt", weights_only=True)
    with pytest.raises(ValueError, match=r"^data: its classes, in order, are \['a', 'b', 'd'\]; the model's outputs "
                                         r"are \['a', 'b', 'c'\]"):
        _trainer(tmp_path).predict(m, _data(tmp_path, "abd"))


# ---------------------------------------------------------------- the ways that worked, still working
def test_the_same_names_in_the_same_order_are_scored(trained, tmp_path):
    m = NeuroViewModule.load_from_checkpoint(trained / "abc.ckpt", weights_only=True)
    out = _trainer(tmp_path).test(m, _data(tmp_path, "abc"), verbose=False)
    assert 0.0 <= out[0]["test_acc"] <= 1.0
    m = _module()
    _trainer(tmp_path, max_steps=1).fit(m, _data(tmp_path, "abc"))
    preds = torch.cat([p["preds"] for p in _trainer(tmp_path).predict(m, _data(tmp_path, "abc"))])
    assert len(preds) > 0 and set(preds.tolist()) <= {0, 1, 2}


def test_weights_that_record_no_classes_are_checked_by_count_alone(trained, tmp_path):
    m = NeuroViewModule.load_from_checkpoint(trained / "unnamed.ckpt", weights_only=True)
    out = _trainer(tmp_path).test(m, _data(tmp_path, "bcd"), verbose=False)
    assert "test_acc" in out[0]


def test_data_that_names_no_classes_is_scored(trained, tmp_path):
    m = NeuroViewModule.load_from_checkpoint(trained / "abc.ckpt", weights_only=True)
    x = torch.randn(12, 1, 24)
    m.build(x[:4])  # a plain loader: no data module to find the sites on
    loader = DataLoader(TensorDataset(x, torch.arange(12) % 3), batch_size=4)
    out = _trainer(tmp_path).test(m, loader, verbose=False)
    assert "test_acc" in out[0]


def test_a_fit_of_trained_weights_on_other_names_fine_tunes_them_and_then_scores_those(trained, tmp_path):
    m = NeuroViewModule.load_from_checkpoint(trained / "abc.ckpt", weights_only=True)
    tr = _trainer(tmp_path, max_steps=2)
    tr.fit(m, _data(tmp_path, "bcd"))  # a new run from the weights (as init_weights= at fit): its outputs are b, c, d
    assert tr.global_step == 2
    assert "test_acc" in _trainer(tmp_path).test(m, _data(tmp_path, "bcd"), verbose=False)[0]
    with pytest.raises(ValueError, match=r"^data: its classes, in order, are \['a', 'b', 'c'\]; the model's outputs "
                                         r"are \['b', 'c', 'd'\]"):
        _trainer(tmp_path).test(m, _data(tmp_path, "abc"), verbose=False)


def test_the_same_names_in_another_order_are_refused(trained, tmp_path):
    class Reordered(NpzDataModule):  # a data module of the user's that numbers the classes c, b, a
        @property
        def class_names(self):
            return ["c", "b", "a"]

    _data(tmp_path, "abc")
    m = NeuroViewModule.load_from_checkpoint(trained / "abc.ckpt", weights_only=True)
    with pytest.raises(ValueError, match=r"^data: its classes, in order, are \['c', 'b', 'a'\]; the model's outputs "
                                         r"are \['a', 'b', 'c'\]"):
        _trainer(tmp_path).test(m, Reordered(str(tmp_path / "abc.npz"), batch_size=8), verbose=False)


# ---------------------------------------------------------------- a restore, a trainer's earlier data, a fit on loaders
@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """A model of 3 outputs trained (2 steps) on classes x, y, z: its checkpoint records them."""
    folder = tmp_path_factory.mktemp("xyz")
    tr = _trainer(folder, max_steps=2)
    tr.fit(_module(), _data(folder, "xyz"))
    tr.save_checkpoint(folder / "xyz.ckpt")
    return folder / "xyz.ckpt"


def _held_abc(how, trained, tmp_path) -> NeuroViewModule:
    """A module that holds the classes a, b, c: loaded from their checkpoint, or fitted on them in the session."""
    if how == "loaded":
        return NeuroViewModule.load_from_checkpoint(trained / "abc.ckpt", weights_only=True)
    m = _module()
    _trainer(tmp_path, max_steps=1).fit(m, _data(tmp_path, "abc"))
    return m


@pytest.mark.parametrize("how", ["loaded", "fitted"])
@pytest.mark.parametrize("stage", ["test", "validate", "predict"])
def test_ckpt_path_of_other_names_is_scored_on_its_own_data_whatever_the_module_held(trained, other, tmp_path, how, stage):
    # the weights scored are xyz.ckpt's (restored after setup): its own data is the right data, whatever a, b, c held
    m = _held_abc(how, trained, tmp_path)
    kw = {} if stage == "predict" else {"verbose": False}
    out = getattr(_trainer(tmp_path), stage)(m, _data(tmp_path, "xyz"), ckpt_path=other, **kw)
    assert len(out) > 0
    with pytest.raises(ValueError, match=r"^data: its classes, in order, are \['b', 'c', 'd'\]; the model's outputs "
                                         r"are \['x', 'y', 'z'\]"):  # the checkpoint's names, not the module's earlier
        getattr(_trainer(tmp_path), stage)(_module(), _data(tmp_path, "bcd"), ckpt_path=other, **kw)


@pytest.mark.parametrize("stage", ["test", "predict"])
def test_a_trainer_that_fitted_a_data_module_then_scores_plain_loaders_by_count_alone(other, tmp_path, stage):
    tr = _trainer(tmp_path, max_steps=1)
    tr.fit(_module(), _data(tmp_path, "abc"))  # Lightning keeps this data module on the trainer
    m = NeuroViewModule.load_from_checkpoint(other, weights_only=True)  # weights of x, y, z
    x = torch.randn(12, 1, 24)
    m.build(x[:4])
    loader = DataLoader(TensorDataset(x, torch.arange(12) % 3), batch_size=4)  # no data module, no names
    kw = {} if stage == "predict" else {"verbose": False}
    out = getattr(tr, stage)(m, loader, **kw)
    assert len(out) > 0


def test_a_fit_on_plain_loaders_records_no_names_so_later_data_is_checked_by_count(tmp_path):
    m = _module()
    _trainer(tmp_path, max_steps=1).fit(m, _data(tmp_path, "abc"))
    x = torch.randn(24, 1, 24)
    loader = DataLoader(TensorDataset(x, torch.arange(24) % 3), batch_size=8)  # labels of no names
    _trainer(tmp_path, max_steps=2, limit_val_batches=0).fit(m, loader)  # its outputs are no longer a, b, c
    out = _trainer(tmp_path).test(m, _data(tmp_path, "bcd"), verbose=False)
    assert "test_acc" in out[0]
    with pytest.raises(ValueError, match=r"^data: the data module's classes are 4 \(a, b, c, d\); the model's 3 "
                                         r"outputs are the classes its weights \(an earlier fit\) were trained on"):
        _trainer(tmp_path).test(m, _data(tmp_path, "abcd"), verbose=False)  # the count is still checked


def test_a_plain_loader_tested_after_a_fit_on_a_data_module_is_not_named_by_its_classes(other, tmp_path):
    tr = _trainer(tmp_path, max_steps=1, logger=CSVLogger(str(tmp_path / "logs")))
    tr.fit(_module(), _data(tmp_path, "abc"))
    m = NeuroViewModule.load_from_checkpoint(other, weights_only=True)  # weights of x, y, z
    x = torch.randn(12, 1, 24)
    m.build(x[:4])
    tr.test(m, DataLoader(TensorDataset(x, torch.arange(12) % 3), batch_size=4), verbose=False)
    (written,) = (tmp_path / "logs").rglob("confusion_matrix.csv")
    assert written.read_text(encoding="utf-8").splitlines()[0] == "true\\predicted,0,1,2"  # not a, b, c: numbers
