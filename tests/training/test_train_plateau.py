"""A budget read from the data: the rates fall when the training loss stops falling, and training
stops on the same plateau (``scheduler: train_plateau`` with Lightning's ``EarlyStopping``)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping

from neuroview.data import DigitsDataModule
from neuroview.training.module import NeuroViewModule
from neuroview.training.schedules import make_scheduler

TINY_CNN = {"widths": [8, 16]}


def test_train_plateau_halves_every_rate_on_a_training_loss_plateau_down_to_its_floor():
    m = NeuroViewModule("nv_small_cnn", 10, 1, TINY_CNN, lr=1e-2, classifier_lr=1e-3, scheduler="train_plateau",
                        plateau_patience=2, plateau_factor=0.5, min_lr_factor=0.25).build(torch.randn(2, 1, 8, 8))
    opt = torch.optim.AdamW(m.parameter_groups(), lr=1e-2)
    sched = make_scheduler(opt, m.hparams, trainer=None)
    assert sched["monitor"] == "train_loss_epoch" and sched["interval"] == "epoch"
    peaks = [g["lr"] for g in opt.param_groups]
    assert sorted(set(peaks)) == [1e-3, 1e-2]  # the classifier's own rate, cut by the same rule
    history = []
    for loss in [1.0, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4]:
        sched["scheduler"].step(loss)
        history.append([g["lr"] / p for g, p in zip(opt.param_groups, peaks)])
    # two epochs without a lower loss are tolerated; the third halves, then it waits again
    assert [h[0] for h in history] == pytest.approx([1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25])
    assert all(h == pytest.approx([h[0]] * len(h)) for h in history)  # every group by the same factor
    with pytest.raises(ValueError, match="plateau_factor"):
        NeuroViewModule("nv_small_cnn", 10, 1, TINY_CNN, plateau_factor=1.0)


def test_a_run_stops_on_its_training_loss_plateau_before_its_maximum(tmp_path):
    # Lightning finds train_loss_epoch for the scheduler and the stop at the end of every epoch; a
    # plateau is forced: at a rate next to zero the loss cannot fall by min_delta
    pl.seed_everything(0)
    dm = DigitsDataModule(batch_size=64, val_fraction=0.0)
    m = NeuroViewModule("nv_small_cnn", 10, 1, TINY_CNN, lr=1e-9, scheduler="train_plateau", plateau_patience=1)
    stop = EarlyStopping(monitor="train_loss_epoch", mode="min", patience=2, min_delta=0.5, check_on_train_epoch_end=True)
    trainer = pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, max_epochs=50, limit_train_batches=2,
                         callbacks=[stop])
    trainer.fit(m, datamodule=dm)
    assert trainer.current_epoch == 3 and stop.stopped_epoch == 2  # the first epoch sets the best; two more without
    # the scheduler read the same metric every epoch (Lightning raises when a monitored key is missing)
    assert [c.monitor for c in trainer.lr_scheduler_configs] == ["train_loss_epoch"]
