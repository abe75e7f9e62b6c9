"""A Lightning ``Trainer`` keeps the data module of its last ``fit`` (``trainer.datamodule``) when a later call is given
plain loaders. Three checks read that kept module instead of the current call's data: a ``test(plain loader,
ckpt_path=...)`` was refused by the earlier module's class names; a checkpoint of a fit on plain loaders recorded the
earlier module's names as its outputs' (every later check then trusted them); and ``init_weights=`` scored on a plain
loader was refused by those names too. Each now reads the data module of the call being run (none for loaders: checked
by count alone), and a data module passed to the call is still checked by name."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from neuroview.data import NpzDataModule
from neuroview.training.module import NeuroViewModule


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


def _module(**kw) -> NeuroViewModule:
    torch.manual_seed(0)
    return NeuroViewModule(arch="nv_fcn1d", num_classes=3, in_channels=1, max_len=24, **kw)


def _loader() -> DataLoader:
    """Labels 0, 1, 2 of no names: no data module."""
    torch.manual_seed(1)
    return DataLoader(TensorDataset(torch.randn(12, 1, 24), torch.arange(12) % 3), batch_size=4)


@pytest.fixture(scope="module")
def xyz(tmp_path_factory):
    """A checkpoint of 3 outputs trained (2 steps) on classes x, y, z, which it records."""
    folder = tmp_path_factory.mktemp("xyz")
    tr = _trainer(folder, max_steps=2)
    tr.fit(_module(), _data(folder, "xyz"))
    tr.save_checkpoint(folder / "xyz.ckpt")
    assert torch.load(folder / "xyz.ckpt", map_location="cpu", weights_only=True)["neuroview_classes"] == ["x", "y", "z"]
    return folder / "xyz.ckpt"


def _fitted_on_abc(tmp_path) -> pl.Trainer:
    """A trainer that fitted a module on a data module of classes a, b, c: Lightning keeps that module on it."""
    tr = _trainer(tmp_path, max_steps=1)
    tr.fit(_module(), _data(tmp_path, "abc"))
    assert tr.datamodule is not None and list(tr.datamodule.class_names) == ["a", "b", "c"]
    return tr


def _built() -> NeuroViewModule:
    m = _module()
    m.build(torch.randn(4, 1, 24))
    return m


@pytest.mark.parametrize("stage", ["test", "validate", "predict"])
def test_ckpt_path_on_a_plain_loader_is_not_refused_by_the_trainers_earlier_data_module(xyz, tmp_path, stage):
    tr = _fitted_on_abc(tmp_path)
    kw = {} if stage == "predict" else {"verbose": False}
    out = getattr(tr, stage)(_built(), _loader(), ckpt_path=xyz, **kw)  # weights of x, y, z on labels of no names
    assert len(out) > 0
    # a data module passed to the call is still read against the checkpoint's names
    with pytest.raises(ValueError, match=r"^data: its classes, in order, are \['b', 'c', 'd'\]; the model's outputs "
                                         r"are \['x', 'y', 'z'\]"):
        getattr(tr, stage)(_built(), _data(tmp_path, "bcd"), ckpt_path=xyz, **kw)


def test_a_checkpoint_of_a_fit_on_plain_loaders_records_no_names_of_the_trainers_earlier_data_module(tmp_path):
    tr = _fitted_on_abc(tmp_path)
    tr.save_checkpoint(tmp_path / "abc.ckpt")  # the data module of this fit: its names, recorded
    assert torch.load(tmp_path / "abc.ckpt", map_location="cpu", weights_only=True)["neuroview_classes"] == ["a", "b", "c"]
    m = _built()
    before = m.classifier.weight.detach().clone()
    tr.fit_loop.max_epochs, tr.fit_loop.epoch_loop.max_steps = 2, 2  # one more step, on loaders: a fit that trains
    tr.fit(m, _loader())
    assert not torch.equal(m.classifier.weight, before)  # it trained
    assert list(tr.datamodule.class_names) == ["a", "b", "c"]  # and Lightning kept the abc module on the trainer
    tr.save_checkpoint(tmp_path / "plain.ckpt")
    ckpt = torch.load(tmp_path / "plain.ckpt", map_location="cpu", weights_only=True)
    assert ckpt.get("neuroview_classes") is None  # its outputs were trained as labels 0, 1, 2: no names known
    # so data of other names of the same count is scored by count, not refused by a, b, c
    out = _trainer(tmp_path).test(_module(), _data(tmp_path, "bcd"), ckpt_path=tmp_path / "plain.ckpt", verbose=False)
    assert "test_acc" in out[0]


@pytest.mark.parametrize("stage", ["test", "validate", "predict"])
def test_init_weights_scored_on_a_plain_loader_is_not_refused_by_the_trainers_earlier_data_module(xyz, tmp_path, stage):
    tr = _fitted_on_abc(tmp_path)
    kw = {} if stage == "predict" else {"verbose": False}
    m = _module(init_weights=str(xyz))
    m.build(torch.randn(4, 1, 24))
    out = getattr(tr, stage)(m, _loader(), **kw)
    assert len(out) > 0
    m = _module(init_weights=str(xyz))
    m.build(torch.randn(4, 1, 24))
    with pytest.raises(ValueError, match=r"^data: its classes, in order, are \['b', 'c', 'd'\]; the model's outputs "
                                         r"are \['x', 'y', 'z'\]"):  # a data module of the call: still read by name
        getattr(tr, stage)(m, _data(tmp_path, "bcd"), **kw)
