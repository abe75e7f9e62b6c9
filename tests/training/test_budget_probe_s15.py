"""Faults a probe of the run budget and the plateau options found: a run by steps (``--trainer.max_steps``) resumed
from a checkpoint of an epoch's end re-entered that epoch with no batch left and ran its end hooks again (the ucr
recipes' EarlyStopping then raised Lightning's bare "metric `train_loss_epoch` which is not available");
``plateau_patience``/``plateau_factor`` with a schedule that never reads them were silently unused; a fractional
``plateau_patience`` ran as its floor."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from neuroview.data import NpzDataModule
from neuroview.training.cli import cli_main
from neuroview.training.module import NeuroViewModule
from neuroview.training.schedules import SCHEDULE_ONLY

ROOT = Path(__file__).resolve().parents[2]
UCR = str(ROOT / "recipes" / "ucr_cnn.yaml")  # train_plateau (patience 50, floor 0.1), EarlyStopping on train_loss_epoch


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def _series(path: Path, n: int = 20) -> str:
    """``n`` one-channel series of 16 steps, two classes; batch_size auto gives 4: 5 batches an epoch for 20."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    x = (np.sin(np.linspace(0, 6, 16))[None] * (1 + y[:, None]) + 0.5 * rng.standard_normal((n, 16)))[:, None]
    np.savez(path, X=x.astype(np.float32), y=y, X_test=x[:6].astype(np.float32), y_test=y[:6])
    return str(path)


def _ucr_run(tmp_path: Path, name: str, data: str, *extra: str):
    return cli_main(["fit", "--config", UCR, "--data", "neuroview.data.NpzDataModule", "--data.init_args.path", data,
                     "--trainer.default_root_dir", str(tmp_path / name), "--trainer.accelerator", "cpu",
                     "--trainer.deterministic", "true", "--trainer.enable_progress_bar", "false",
                     "--trainer.enable_model_summary", "false", "--test_after_fit", "false",
                     "--model.plateau_patience", "0", "--model.lr", "0.01", *extra])


def _last(tmp_path: Path, name: str) -> dict:
    return torch.load(tmp_path / name / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def test_a_step_budget_resume_of_an_epoch_end_checkpoint_is_the_uninterrupted_run(tmp_path):
    """10 steps = 2 whole epochs, then resumed to 20: the weights, the rates and the plateau schedule (patience 0:
    it cuts at every epoch without a lower loss) are the uninterrupted 20 steps', and EarlyStopping counted each
    epoch once."""
    data = _series(tmp_path / "d.npz")
    _ucr_run(tmp_path, "whole", data, "--trainer.max_steps", "20")
    _ucr_run(tmp_path, "cut", data, "--trainer.max_steps", "10")
    saved = _last(tmp_path, "cut")
    assert (saved["epoch"], saved["global_step"], saved["neuroview_mid_epoch"]) == (1, 10, None)  # an epoch's end
    cli = _ucr_run(tmp_path, "cut", data, "--trainer.max_steps", "20", "--ckpt_path", "last")
    assert cli.trainer.current_epoch == 4 and cli.trainer.global_step == 20
    a, b = _last(tmp_path, "whole"), _last(tmp_path, "cut")
    assert (b["epoch"], b["global_step"]) == (a["epoch"], a["global_step"]) == (3, 20)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    sa, sb = a["lr_schedulers"][0], b["lr_schedulers"][0]
    for key in ("last_epoch", "best", "num_bad_epochs", "_last_lr"):
        assert sb[key] == sa[key], (key, sa[key], sb[key])
    assert sa["last_epoch"] == 4  # one plateau step per epoch, none twice
    stops = [k for k in a["callbacks"] if k.startswith("EarlyStopping")]
    assert stops and all(b["callbacks"][k]["wait_count"] == a["callbacks"][k]["wait_count"] for k in stops)


def _fit(tmp_path, **kw) -> pl.Trainer:
    dm = NpzDataModule(_series(tmp_path / "d.npz"), batch_size="auto", val_fraction=0.0, normalize="sample")
    m = NeuroViewModule("small_cnn", num_classes=2, in_channels=1, model_kwargs={"widths": [4], "dims": 1}, **kw)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(m, dm)
    return trainer


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle", "none"])
@pytest.mark.parametrize("key,value,default", [("plateau_patience", 3, 5), ("plateau_factor", 0.1, 0.5)])
def test_plateau_options_with_a_schedule_that_never_reads_them_are_refused(tmp_path, scheduler, key, value, default):
    with pytest.raises(ValueError, match=rf"^{key}: the \w+ of the plateau schedules \('plateau', 'train_plateau'\); "
                                         rf"expected its default {default} with scheduler '{scheduler}', got {value}: "
                                         rf"drop {key}, or use a plateau schedule"):
        _fit(tmp_path, scheduler=scheduler, **{key: value})


def test_plateau_options_at_their_defaults_or_with_a_plateau_schedule_run(tmp_path):
    assert _fit(tmp_path, scheduler="cosine", plateau_patience=5, plateau_factor=0.5).global_step == 5
    trainer = _fit(tmp_path, scheduler="train_plateau", plateau_patience=3, plateau_factor=0.1)
    assert trainer.lr_scheduler_configs[0].scheduler.patience == 3
    assert trainer.lr_scheduler_configs[0].scheduler.factor == 0.1


def test_the_unused_defaults_are_the_modules():
    defaults = inspect.signature(NeuroViewModule.__init__).parameters
    for key, (_, default, _) in SCHEDULE_ONLY.items():
        assert defaults[key].default == default, key


def test_a_recipes_plateau_patience_the_named_scheduler_does_not_read_is_dropped_with_a_warning(tmp_path):
    """ucr_cnn sets plateau_patience 50 beside train_plateau: --model.scheduler cosine runs without it, and says so
    (its plateau_factor 0.5 is the default: nothing to say); named on the command line too, it stays and fit
    refuses it."""
    with pytest.warns(UserWarning, match=r"plateau_patience: the config's 50 is not used by --model.scheduler cosine "
                                         r"\(the patience of the plateau schedules\): set to 5") as caught:
        cli = cli_main(["--config", UCR, "--model.scheduler", "cosine"], run=False)
    assert cli.model.hparams.plateau_patience == 5 and cli.model.hparams.plateau_factor == 0.5
    assert not [w for w in caught if "plateau_factor" in str(w.message)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cli = cli_main(["--config", UCR, "--model.scheduler", "cosine", "--model.plateau_patience", "3",
                        "--model.plateau_factor", "0.2"], run=False)
    assert cli.model.hparams.plateau_patience == 3 and cli.model.hparams.plateau_factor == 0.2


@pytest.mark.parametrize("bad", [2.5, 2.0, True])
def test_a_plateau_patience_that_is_no_whole_count_is_refused_by_name(bad):
    with pytest.raises(ValueError, match=r"^plateau_patience: expected "):
        NeuroViewModule("small_cnn", num_classes=2, in_channels=1, model_kwargs={"widths": [4], "dims": 1},
                        scheduler="train_plateau", plateau_patience=bad)


def test_a_plateau_patience_of_any_int_type_passes():
    for ok in (0, np.int64(2), torch.tensor(3)):
        m = NeuroViewModule("small_cnn", num_classes=2, in_channels=1, model_kwargs={"widths": [4], "dims": 1},
                            scheduler="train_plateau", plateau_patience=ok)
        assert m.hparams.plateau_patience == ok
