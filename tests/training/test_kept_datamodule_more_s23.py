"""More reads of the data module a Lightning ``Trainer`` keeps from its last ``fit`` (``trainer.datamodule``) when a
later call is given plain loaders: a resume on loaders was refused by the earlier module's file ("changed since"), a
warm-up counted the earlier module's training batches, a plateau schedule's check named the earlier module (or read
its empty validation split in place of the module's own ``val_dataloader``), and a refused batch named the earlier
module's ``on_before_batch_transfer``. Each case runs after an earlier fit on the same trainer; a data module passed
to the call is still read."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from neuroview.data import NpzDataModule
from neuroview.training.module import NeuroViewModule


def _data(folder, classes: str, cls=NpzDataModule, **kw) -> NpzDataModule:
    """A data module of ``classes`` (one letter each, 12 series each), class k drawn around k."""
    rng = np.random.default_rng(0)
    n = 12 * len(classes)
    y = np.array(list(classes) * 12)
    x = (rng.normal(size=(n, 1, 24)) + (np.arange(n) % len(classes))[:, None, None]).astype(np.float32)
    np.savez(folder / f"{classes}.npz", X=x, y=y)
    return cls(str(folder / f"{classes}.npz"), batch_size=8, **kw)


def _trainer(tmp_path, **kw) -> pl.Trainer:
    kw = {"max_epochs": 1, "logger": False, **kw}
    return pl.Trainer(default_root_dir=str(tmp_path / "run"), enable_progress_bar=False, enable_model_summary=False,
                      accelerator="cpu", enable_checkpointing=False, num_sanity_val_steps=0, **kw)


def _module(cls=NeuroViewModule, **kw) -> NeuroViewModule:
    torch.manual_seed(0)
    m = cls(arch="nv_fcn1d", num_classes=3, in_channels=1, max_len=24, **kw)
    m.build(torch.randn(4, 1, 24))
    return m


def _loader(n: int = 12, labels=None) -> DataLoader:
    """Labels 0, 1, 2 (or ``labels``) of no names, batches of 4: no data module."""
    torch.manual_seed(1)
    y = torch.arange(n) % 3 if labels is None else labels
    return DataLoader(TensorDataset(torch.randn(n, 1, 24), y), batch_size=4)


def _fitted_on(tmp_path, dm, **kw) -> pl.Trainer:
    """A trainer that fitted a module on ``dm``: Lightning keeps that module on it."""
    tr = _trainer(tmp_path, **{"max_steps": 1, **kw})
    tr.fit(_module(), dm)
    assert tr.datamodule is dm
    return tr


@pytest.fixture
def xyz(tmp_path):
    """A checkpoint of 2 steps (no schedule: a resume may run longer) on the data module of xyz.npz, its options
    recorded with it."""
    tr = _trainer(tmp_path, max_steps=2)
    tr.fit(_module(scheduler="none"), _data(tmp_path, "xyz"))
    tr.save_checkpoint(tmp_path / "xyz.ckpt")
    return tmp_path / "xyz.ckpt"


def test_a_resume_on_plain_loaders_is_not_refused_by_the_options_of_the_trainers_earlier_data_module(xyz, tmp_path):
    tr = _fitted_on(tmp_path, _data(tmp_path, "xyz", seed=1))  # the same file, another split seed
    tr.fit_loop.max_epochs, tr.fit_loop.epoch_loop.max_steps = 3, 4
    tr.fit(_module(scheduler="none"), _loader(), ckpt_path=xyz)  # was: "other data options (seed=1 given, 0 in ...)"
    assert tr.global_step == 4 and tr.datamodule.hparams.seed == 1  # it resumed at 2 and trained; the module is kept
    # a data module of that seed passed to the resume is still held to the checkpoint's options
    with pytest.raises(ValueError, match=r"^ckpt_path: .*xyz\.ckpt resumes a run trained on other data options "
                                         r"\(seed=1 given, 0 in the checkpoint\)"):
        _trainer(tmp_path, max_steps=4, max_epochs=3).fit(_module(scheduler="none"), _data(tmp_path, "xyz", seed=1),
                                                          ckpt_path=xyz)


def test_a_resume_on_plain_loaders_is_not_refused_by_the_file_of_the_trainers_earlier_data_module(xyz, tmp_path):
    tr = _fitted_on(tmp_path, _data(tmp_path, "abc"))
    tr.fit_loop.max_epochs, tr.fit_loop.epoch_loop.max_steps = 3, 4
    tr.fit(_module(scheduler="none"), _loader(), ckpt_path=xyz)  # was refused: abc.npz "is a copy of xyz.npz ... changed"
    assert tr.global_step == 4


def test_warmup_epochs_on_plain_loaders_count_this_fits_batches_not_the_earlier_data_modules(tmp_path):
    dm = _data(tmp_path, "abc")
    tr = _fitted_on(tmp_path, dm, max_epochs=-1)
    kept = len(dm.train_dataloader())
    loader = _loader(24)
    assert kept != len(loader) == 6  # the two sources differ: a wrong count shows
    tr.fit_loop.epoch_loop.max_steps = 8  # a run longer than its warm-up (else the warm-up is cut to fit)
    tr.fit(_module(scheduler="cosine", warmup_epochs=1.0), loader)
    sched = tr.lr_scheduler_configs[0].scheduler
    assert sched._milestones == [6]  # one epoch of this fit's loader: 6 batches of 4


def test_plateau_without_validation_on_plain_loaders_names_the_loaders_not_the_earlier_data_module(tmp_path):
    tr = _fitted_on(tmp_path, _data(tmp_path, "abc"), max_epochs=2)
    with pytest.raises(ValueError, match=r"^scheduler: 'plateau' .* no validation loader was given to fit "
                                         r"\(val_dataloaders\); use scheduler 'train_plateau'"):
        tr.fit(_module(scheduler="plateau"), _loader())


class _OwnVal(NeuroViewModule):
    """A module with a validation loader of its own (fit given a training loader only)."""

    def val_dataloader(self):
        return _loader()


def test_plateau_reads_the_modules_own_validation_not_the_earlier_data_modules_empty_split(tmp_path):
    tr = _fitted_on(tmp_path, _data(tmp_path, "abc", val_fraction=0.0), max_epochs=2)
    tr.fit_loop.epoch_loop.max_steps = -1  # a whole epoch, validated at its end
    tr.fit(_module(_OwnVal, scheduler="plateau"), _loader())  # was refused: "the data module has no validation split (val_fraction=0.0)"
    assert "val_acc" in tr.callback_metrics
    # the same data module passed to the call is still refused
    with pytest.raises(ValueError, match=r"no validation split \(val_fraction=0\.0\)"):
        _trainer(tmp_path, max_epochs=1).fit(_module(scheduler="plateau"), _data(tmp_path, "abc", val_fraction=0.0))


class _HookedData(NpzDataModule):
    def on_before_batch_transfer(self, batch, dataloader_idx):
        return batch


class _OwnHook(NeuroViewModule):
    """A module whose batch hook does not call super(): neuroview's checks run after it, named by it."""

    def on_before_batch_transfer(self, batch, dataloader_idx):
        return batch


def test_a_refused_batch_on_plain_loaders_names_the_hook_of_this_call_not_the_earlier_data_modules(tmp_path):
    tr = _fitted_on(tmp_path, _data(tmp_path, "abc", cls=_HookedData))
    bad = _loader(labels=torch.full((12,), 7))  # class 7 of 3 outputs
    with pytest.raises(ValueError, match=r"\(the batch as _OwnHook\.on_before_batch_transfer returned it\)"):
        tr.test(_module(_OwnHook), bad, verbose=False)
