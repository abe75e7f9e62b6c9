"""Options the run would ignore are refused or warned of by name: ``warmup_epochs`` with a schedule that never warms
up, ``min_lr_factor`` with one that has no floor, a fit with nothing to train, ``momentum`` with Adam(W), a warm-up
as long as the run; ``plateau`` reads val_acc after each validation (``check_val_every_n_epoch``). A recipe's own
value that the scheduler named on the command line does not read is dropped with a warning, not refused."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from neuroview.data import NpzDataModule
from neuroview.training.cli import cli_main
from neuroview.training.module import NeuroViewModule

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")  # scheduler cosine, warmup_epochs 1
UCR = str(ROOT / "recipes" / "ucr_cnn.yaml")  # scheduler train_plateau, min_lr_factor 0.1
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
         "--trainer.max_epochs", "1", "--test_after_fit", "false"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


class _Rates(pl.Callback):
    def __init__(self):
        self.lrs = []

    def on_before_optimizer_step(self, trainer, module, opt):
        self.lrs.append(opt.param_groups[0]["lr"])


def _fit(tmp_path, trainer_kw: dict | None = None, **kw):
    """103 series, 20 of them for validation: 83 training series (80 after drop_last), batch 16: 5 optimizer steps
    an epoch."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 140)
    x = rng.normal(size=(140, 2, 16)).astype(np.float32)
    x[:, 0] += y[:, None] * 0.7
    np.savez(tmp_path / "d.npz", X=x[:103], y=y[:103], X_test=x[103:], y_test=y[103:])
    dm = NpzDataModule(str(tmp_path / "d.npz"), batch_size=16, val_fraction=0.2)
    m = NeuroViewModule("small_cnn", num_classes=3, in_channels=2, model_kwargs={"widths": [4], "dims": 1}, lr=0.01, **kw)
    rates = _Rates()
    trainer = pl.Trainer(**{"max_epochs": 3, **(trainer_kw or {})}, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[rates])
    trainer.fit(m, dm)
    return trainer, rates.lrs


@pytest.mark.parametrize("scheduler", ["plateau", "train_plateau", "none", "onecycle"])
def test_warmup_with_a_schedule_that_never_warms_up_is_refused(scheduler, tmp_path):
    """The rate started at its peak (onecycle peaked at its own 30%), as without warmup_epochs, without a word."""
    with pytest.raises(ValueError, match=rf"warmup_epochs: only scheduler 'cosine' warms up; expected 0 with scheduler "
                                         rf"'{scheduler}', got 2: drop warmup_epochs, or use scheduler 'cosine'"):
        _fit(tmp_path, scheduler=scheduler, warmup_epochs=2)


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle", "none"])
def test_a_floor_with_a_schedule_that_has_none_is_refused(scheduler, tmp_path):
    """cosine still went down to 0 (and onecycle to its own end), under a floor of half the peak."""
    with pytest.raises(ValueError, match=rf"min_lr_factor: the floor of the plateau schedules \('plateau', "
                                         rf"'train_plateau'\); expected 0 with scheduler '{scheduler}', got 0.5: drop "
                                         rf"min_lr_factor, or use a plateau schedule"):
        _fit(tmp_path, scheduler=scheduler, min_lr_factor=0.5)


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("max_epochs", 0, "an int >= 1 \\(or -1: no limit\\)"),
    ("max_steps", 0, "an int >= 1 \\(or -1: no limit\\)"),
    ("limit_train_batches", 0, "> 0 \\(batches, or a fraction\\)"),
])
def test_a_fit_that_trains_nothing_is_refused(option, value, expected, tmp_path):
    """It exited 0 having taken no step, and its test scored the untrained network as the run's result."""
    args = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path / "run"), *QUICK]
    with pytest.raises(ValueError, match=rf"--trainer.{option}: expected {expected} for fit, got {value}(\.0)?: the run "
                                         rf"would train nothing and its test would score the untrained network"):
        cli_main([*args, f"--trainer.{option}", str(value)])
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_recipes_option_the_named_scheduler_does_not_read_is_dropped_with_a_warning(tmp_path):
    """The recipes set warmup_epochs beside cosine and min_lr_factor beside train_plateau: another scheduler named
    on the command line runs without them (the benchmarks ran ucr_cnn with --model.scheduler cosine), and says so;
    the option named too is refused."""
    root = ["--trainer.default_root_dir", str(tmp_path / "run"), *QUICK]
    with pytest.warns(UserWarning, match=r"warmup_epochs: the config's 1.0 is not used by --model.scheduler none "
                                         r"\(only 'cosine' warms up\): set to 0"):
        cli = cli_main(["fit", "--config", DIGITS, *root, "--model.scheduler", "none"])
    assert cli.model.hparams.warmup_epochs == 0 and cli.trainer.global_step == 2
    with pytest.raises(ValueError, match=r"warmup_epochs: only scheduler 'cosine' warms up; expected 0 with "
                                         r"scheduler 'none', got 2"):
        cli_main(["fit", "--config", DIGITS, *root, "--model.scheduler", "none", "--model.warmup_epochs", "2"])
    with pytest.warns(UserWarning, match=r"min_lr_factor: the config's 0.1 is not used by --model.scheduler cosine "
                                         r"\(the floor of the plateau schedules\): set to 0"):
        cli = cli_main(["--config", UCR, "--model.scheduler", "cosine"], run=False)
    assert cli.model.hparams.min_lr_factor == 0 and cli.model.hparams.scheduler == "cosine"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cli = cli_main(["--config", DIGITS], run=False)  # a recipe as shipped: nothing dropped
    assert cli.model.hparams.warmup_epochs == 1


def test_momentum_with_adam_is_warned_of(tmp_path):
    """AdamW has no momentum (its betas stay (0.9, 0.999)): momentum 0.5 was accepted and ignored."""
    with pytest.warns(UserWarning, match=r"momentum: 0.5 is ignored with optimizer 'adamw', which has no momentum "
                                         r"option \(its betas stay \(0.9, 0.999\)\); it is SGD's \(optimizer 'sgd'\)"):
        _fit(tmp_path, scheduler="none", optimizer="adamw", momentum=0.5, trainer_kw={"max_epochs": 1})
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="momentum")
        _fit(tmp_path, scheduler="none", optimizer="sgd", momentum=0.5, trainer_kw={"max_epochs": 1})


def test_a_warmup_as_long_as_the_run_is_warned_of(tmp_path):
    """3 epochs of 5 steps, warmup_epochs 3: 15 steps of warm-up clamped to 14, the rate climbing to its peak at the
    last step and never decaying."""
    with pytest.warns(UserWarning, match=r"warmup_epochs: 3 epochs of warm-up \(15 optimizer steps\) last the whole "
                                         r"run \(15 steps\): the rate climbs until the last step and never decays"):
        _, lrs = _fit(tmp_path, scheduler="cosine", warmup_epochs=3)
    assert lrs == pytest.approx([0.01 * (s + 1) / 15 for s in range(14)] + [0.01])  # never below the one before
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="warmup_epochs")
        _, lrs = _fit(tmp_path, scheduler="cosine", warmup_epochs=1)
    assert lrs[5:] == pytest.approx([0.01 * (1 + math.cos(math.pi * s / 10)) / 2 for s in range(10)])


def test_plateau_reads_val_acc_after_each_validation_every_n_epochs(tmp_path):
    """With check_val_every_n_epoch 2, Lightning raised after the first epoch ("ReduceLROnPlateau conditioned on
    metric val_acc which is not available"): the scheduler now steps after the epochs that validate."""
    trainer, _ = _fit(tmp_path, scheduler="plateau", trainer_kw={"max_epochs": 4, "check_val_every_n_epoch": 2})
    config = trainer.lr_scheduler_configs[0]
    assert config.frequency == 2 and trainer.current_epoch == 4
    assert config.scheduler.last_epoch == 2  # stepped twice in 4 epochs: after epochs 2 and 4
