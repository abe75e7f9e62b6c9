"""Two more reads of the data module a Lightning ``Trainer`` keeps from its last ``fit`` (``trainer.datamodule``) when a
later call is given plain loaders: Lightning restores that module's state from a ``ckpt_path``, and its file was held
to the checkpoint (a test on loaders refused: "its training split changed since"), and an unbuilt NeuroView-CNN found
its sites on that module's batch, of another data set (3 channels where the call's loaders hold 2: a bare conv error;
or the same shape: sites found on other data, unsaid). Each case runs after an earlier fit on the same trainer; a data
module passed to the call is still read, and a call of neither a data module nor loaders is still refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from neuroview.data import NpzDataModule
from neuroview.training.module import NeuroViewModule


def _npz(path, channels: int = 1, shift: float = 0.0, seed: int = 0) -> str:
    """36 series of ``channels`` x 24 of classes a, b, c (class k drawn around k + ``shift``)."""
    rng = np.random.default_rng(seed)
    y = np.array(list("abc") * 12)
    x = (rng.normal(size=(36, channels, 24)) + (np.arange(36) % 3)[:, None, None] + shift).astype(np.float32)
    np.savez(path, X=x, y=y)
    return str(path)


def _trainer(tmp_path, **kw) -> pl.Trainer:
    kw = {"max_epochs": 1, "logger": False, **kw}
    return pl.Trainer(default_root_dir=str(tmp_path / "run"), enable_progress_bar=False, enable_model_summary=False,
                      accelerator="cpu", enable_checkpointing=False, num_sanity_val_steps=0, **kw)


def _module(channels: int = 1, built: bool = True, **kw) -> NeuroViewModule:
    torch.manual_seed(0)
    m = NeuroViewModule(arch="nv_fcn1d", num_classes=3, in_channels=channels, max_len=24, **kw)
    return m.build(torch.randn(4, channels, 24)) if built else m


def _loader(channels: int = 1, n: int = 12, value: float | None = None) -> DataLoader:
    """Labels 0, 1, 2 of no names, batches of 4 (every value ``value`` where given: a batch that can be told)."""
    torch.manual_seed(1)
    x = torch.randn(n, channels, 24) if value is None else torch.full((n, channels, 24), value)
    return DataLoader(TensorDataset(x, torch.arange(n) % 3), batch_size=4)


def _fitted_on(tmp_path, dm, channels: int = 1) -> pl.Trainer:
    """A trainer that fitted a module on ``dm``: Lightning keeps that module on it."""
    tr = _trainer(tmp_path, max_steps=1)
    tr.fit(_module(channels), dm)
    assert tr.datamodule is dm
    return tr


def _seen_by_discover(m: NeuroViewModule) -> list:
    """The batches the network's site search is given, recorded as they come."""
    seen, discover = [], m.model.discover

    def spy(x, *a, **kw):
        seen.append(x.detach().clone())
        return discover(x, *a, **kw)

    m.model.discover = spy
    return seen


# ------------------------------------------------------------------ (1) a kept data module's file and a ckpt_path
@pytest.fixture
def changed(tmp_path):
    """A checkpoint of 2 steps on xyz.npz, and that file rewritten since (other series): ``(ckpt, path)``."""
    path = _npz(tmp_path / "xyz.npz")
    tr = _trainer(tmp_path, max_steps=2)
    tr.fit(_module(scheduler="none"), NpzDataModule(path, batch_size=8))
    tr.save_checkpoint(tmp_path / "xyz.ckpt")
    _npz(path, seed=5)
    return tmp_path / "xyz.ckpt", path


def test_a_test_on_plain_loaders_with_ckpt_path_is_not_refused_by_the_kept_data_modules_changed_file(changed, tmp_path):
    ckpt, path = changed
    kept = NpzDataModule(path, batch_size=8)
    tr = _fitted_on(tmp_path, kept)  # a fit on the rewritten file: kept on the trainer
    tr.test(_module(), _loader(), ckpt_path=str(ckpt), verbose=False)  # was: "xyz.npz is the file ... changed since"
    assert "test_acc" in tr.callback_metrics and tr.datamodule is kept
    assert kept._trained_file is None  # not held to a checkpoint this call restored for loaders it does not read


def test_a_data_module_passed_to_the_call_is_still_held_to_the_checkpoints_file(changed, tmp_path):
    ckpt, path = changed
    tr = _fitted_on(tmp_path, NpzDataModule(_npz(tmp_path / "abc.npz"), batch_size=8))
    with pytest.raises(ValueError, match=r"^path: .*xyz\.npz is the file the checkpoint .*xyz\.ckpt was trained on, "
                                         r"but its training split changed since"):
        tr.test(_module(), NpzDataModule(path, batch_size=8), ckpt_path=str(ckpt), verbose=False)


# ------------------------------------------------------------------ (2) the first batch an unbuilt network is built on
def test_an_unbuilt_network_tested_on_plain_loaders_finds_its_sites_on_them_not_on_the_kept_data_module(tmp_path):
    tr = _fitted_on(tmp_path, NpzDataModule(_npz(tmp_path / "three.npz", channels=3), batch_size=8), channels=3)
    m = _module(channels=2, built=False)
    seen = _seen_by_discover(m)
    tr.test(m, _loader(channels=2, value=0.25), verbose=False)  # was: a conv's bare "expected input ... 2 channels"
    assert "test_acc" in tr.callback_metrics
    assert [tuple(x.shape) for x in seen] == [(4, 2, 24)] and bool((seen[0] == 0.25).all())


@pytest.mark.parametrize("stage", ["fit", "validate", "predict"])
def test_each_stage_on_plain_loaders_builds_on_its_own_loader_of_the_same_shape_not_the_kept_data_modules(tmp_path, stage):
    # the same shape: no error showed the wrong read, the sites were found on the kept module's series
    tr = _fitted_on(tmp_path, NpzDataModule(_npz(tmp_path / "abc.npz", shift=9.0), batch_size=8))
    m = _module(built=False, scheduler="none")
    seen = _seen_by_discover(m)
    if stage == "fit":
        tr.fit_loop.epoch_loop.max_steps = 2
        tr.fit(m, _loader(value=0.25), _loader(value=-3.0))  # the training loader's batch, as with a data module
    else:
        getattr(tr, stage)(m, _loader(value=0.25), **({} if stage == "predict" else {"verbose": False}))
    assert len(seen) == 1 and tuple(seen[0].shape) == (4, 1, 24) and bool((seen[0] == 0.25).all())


def test_an_unbuilt_network_fitted_on_plain_loaders_by_a_fresh_trainer_is_built_on_them(tmp_path):
    m = _module(built=False, scheduler="none")  # was refused: "this trainer has no datamodule to take it from"
    seen = _seen_by_discover(m)
    tr = _trainer(tmp_path, max_steps=2)
    tr.fit(m, _loader(value=0.25))
    assert tr.global_step == 2 and len(seen) == 1 and bool((seen[0] == 0.25).all())


def test_a_data_module_passed_to_the_call_is_still_where_the_sites_are_found(tmp_path):
    tr = _fitted_on(tmp_path, NpzDataModule(_npz(tmp_path / "abc.npz"), batch_size=8))
    dm = NpzDataModule(_npz(tmp_path / "three.npz", channels=3), batch_size=8)
    m = _module(channels=3, built=False)
    seen = _seen_by_discover(m)
    tr.test(m, dm, verbose=False)
    assert len(seen) == 1 and torch.equal(seen[0], next(iter(dm.test_dataloader()))[0])


def test_an_empty_loader_given_to_the_call_is_named(tmp_path):
    tr = _fitted_on(tmp_path, NpzDataModule(_npz(tmp_path / "abc.npz"), batch_size=8))
    empty = DataLoader(TensorDataset(torch.randn(0, 1, 24), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match=r"^NeuroViewModule: the test loader given to this call \(dataloaders\) has no "
                                         r"batch to find the network's sites on"):
        tr.test(_module(built=False), empty, verbose=False)


class _OwnTest(NeuroViewModule):
    """A module with a test loader of its own (its hook is not called before setup: the network is built first)."""

    def test_dataloader(self):
        return _loader()


def test_a_call_of_neither_a_data_module_nor_loaders_is_still_refused_by_name(tmp_path):
    tr = _fitted_on(tmp_path, NpzDataModule(_npz(tmp_path / "abc.npz"), batch_size=8))
    m = _OwnTest(arch="nv_fcn1d", num_classes=3, in_channels=1, max_len=24)  # was: built on the kept module's test batch
    with pytest.raises(RuntimeError, match=r"finds its sites on the first batch, and this call was given no data module "
                                           r"or loaders to take it from; call module\.build\(x\)"):
        tr.test(m, verbose=False)
