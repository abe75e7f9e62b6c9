"""Schedules read the run's budget right: warm-up counted in epochs of the training loader, plateau refused
without a validation split, and module options that give a schedule or an optimizer nonsense refused by name."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl

from neuroview.data import DigitsDataModule
from neuroview.training.module import NeuroViewModule

TINY = {"widths": [8, 16]}


class LrRecorder(pl.Callback):
    def __init__(self):
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def fit_lrs(tmp_path, **trainer_kw) -> list[float]:
    pl.seed_everything(0)
    rec = LrRecorder()
    module = NeuroViewModule("nv_small_cnn", 10, 1, TINY, lr=1e-2, scheduler="cosine", warmup_epochs=1)
    trainer = pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_train_batches=5,
                         limit_val_batches=0, num_sanity_val_steps=0, callbacks=[rec], **trainer_kw)
    trainer.fit(module, datamodule=DigitsDataModule(batch_size=64))
    return rec.lrs


def test_warmup_lasts_an_epoch_of_the_loader_when_max_steps_ends_the_run_early(tmp_path):
    """`--trainer.max_steps 30` on a 20-epoch recipe warmed up over 1 step (steps per epoch taken as 30 / 20):
    an epoch is the optimizer steps of one pass over the training loader (5 here), whatever ends the run."""
    ramp = [1e-2 * (s + 1) / 6 for s in range(5)]  # warmup_epochs 1: 5 steps to the peak
    by_epochs = fit_lrs(tmp_path / "a", max_epochs=4)  # the run max_epochs bounds: as it always was
    by_steps = fit_lrs(tmp_path / "b", max_epochs=20, max_steps=8)  # cut short by max_steps
    by_steps_only = fit_lrs(tmp_path / "c", max_epochs=-1, max_steps=8)
    for lrs in (by_epochs, by_steps, by_steps_only):
        assert lrs[:5] == pytest.approx(ramp), lrs[:6]
        assert lrs[5] == pytest.approx(1e-2)  # the peak after one epoch
    assert len(by_steps) == len(by_steps_only) == 8 and by_steps == pytest.approx(by_steps_only)


def test_plateau_without_a_validation_split_is_refused_before_training(tmp_path):
    """`scheduler: plateau` reads val_acc; with val_fraction 0 Lightning failed after a whole epoch, naming
    neither option."""
    module = NeuroViewModule("nv_small_cnn", 10, 1, TINY, scheduler="plateau")
    trainer = pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, max_epochs=2, limit_train_batches=3)
    with pytest.raises(ValueError, match=r"scheduler: 'plateau' cuts the rate when val_acc stalls, and the data module "
                                         r"has no validation split \(val_fraction=0\.0\); use scheduler 'train_plateau'"):
        trainer.fit(module, datamodule=DigitsDataModule(batch_size=64, val_fraction=0.0))
    assert trainer.global_step == 0
    # train_plateau reads the training loss: the same run goes
    module = NeuroViewModule("nv_small_cnn", 10, 1, TINY, scheduler="train_plateau")
    trainer = pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, max_epochs=1, limit_train_batches=3)
    trainer.fit(module, datamodule=DigitsDataModule(batch_size=64, val_fraction=0.0))
    assert trainer.global_step == 3


@pytest.mark.parametrize("kw, says", [
    ({"classifier_weight_decay": -1.0}, r"classifier_weight_decay: expected a finite number in \[0, inf\) or None, got -1.0"),
    ({"warmup_epochs": math.nan}, r"warmup_epochs: expected a finite number in \[0, inf\), got nan"),
    ({"momentum": -1.0, "optimizer": "sgd"}, r"momentum: expected a finite number in \[0, 1\), got -1.0"),
    ({"weight_decay": math.nan}, r"weight_decay: expected a finite number in \[0, inf\), got nan"),
])
def test_schedule_and_optimizer_options_out_of_range_are_refused_by_name(kw, says):
    """classifier_weight_decay=-1 was accepted (weight_decay=-1 was not), NaN passed `v < 0`, and a negative SGD
    momentum gave torch's bare error at the first fit."""
    with pytest.raises(ValueError, match=says):
        NeuroViewModule("nv_small_cnn", 10, 1, TINY, **kw)
    NeuroViewModule("nv_small_cnn", 10, 1, TINY, classifier_weight_decay=None, momentum=0.0)  # the edges pass
