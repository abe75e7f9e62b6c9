"""A resume by the Python API (``pl.Trainer.fit(module, dm, ckpt_path=...)``) is held to the checks of ``neuroview fit
--ckpt_path``: another model option (``lr``), other data options (split ``seed``, ``batch_size``), a run its
EarlyStopping ended, another EarlyStopping ``patience`` and a budget that ends before the checkpoint are refused by name
in the module's own ``on_load_checkpoint``, before anything is trained or written; a resume with the run's own options
goes on."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from neuroview.data import DigitsDataModule
from neuroview.training.module import NeuroViewModule

KW = dict(arch="nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [8, 16]}, lr=3e-3, scheduler="none")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def run(folder: Path, epochs: int, ckpt=None, *, patience=None, module=None, data=None, **trainer):
    pl.seed_everything(0, verbose=False)
    callbacks = [ModelCheckpoint(dirpath=folder, save_last=True)]
    if patience is not None:  # a rule that stops at once: the loss must fall by 10 an epoch
        callbacks.append(EarlyStopping(monitor="train_loss_epoch", mode="min", patience=patience, min_delta=10.0,
                                       check_on_train_epoch_end=True))
    t = pl.Trainer(max_epochs=epochs, default_root_dir=folder, logger=False, enable_progress_bar=False,
                   enable_model_summary=False, accelerator="cpu", limit_train_batches=3, limit_val_batches=1,
                   callbacks=callbacks, **trainer)
    t.fit(module or NeuroViewModule(**KW), data or DigitsDataModule(batch_size=32), ckpt_path=ckpt)
    return t


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_another_lr_on_a_python_resume_is_refused_by_name(tmp_path):
    """The optimizer kept the checkpoint's rates while the resumed checkpoints recorded lr 1e-05."""
    run(tmp_path, 1)
    last = tmp_path / "last.ckpt"
    before = digest(last)
    with pytest.raises(ValueError, match=r"ckpt_path: .*last.ckpt resumes a run trained with other model options "
                                         r"\(lr=1e-05 given, 0.003 in the checkpoint\).*load_from_checkpoint"):
        run(tmp_path, 2, last, module=NeuroViewModule(**{**KW, "lr": 1e-5}))
    assert digest(last) == before
    t = run(tmp_path, 2, last)  # the run's own options: it goes on
    assert t.global_step == 6
    assert torch.load(last, weights_only=True)["hyper_parameters"]["lr"] == 3e-3


def test_other_data_options_on_a_python_resume_are_refused_by_name(tmp_path):
    run(tmp_path, 1)
    with pytest.raises(ValueError, match=r"resumes a run trained on other data options \(batch_size=16 given, 32 in the "
                                         r"checkpoint; seed=1 given, 0 in the checkpoint\)"):
        run(tmp_path, 2, tmp_path / "last.ckpt", data=DigitsDataModule(batch_size=16, seed=1))
    t = run(tmp_path, 2, tmp_path / "last.ckpt", data=DigitsDataModule(batch_size=32, num_workers=0))  # no split changed
    assert t.global_step == 6


def test_a_python_resume_of_a_run_its_early_stopping_ended_writes_nothing(tmp_path):
    """It trained another epoch and wrote over the finished run's last.ckpt."""
    first = run(tmp_path, 20, patience=1)
    assert first.should_stop and first.current_epoch < 20
    last = tmp_path / "last.ckpt"
    before = digest(last)
    with pytest.raises(ValueError, match=r"is a run that already ended .*nothing to resume"):
        run(tmp_path, 20, last, patience=1)
    assert digest(last) == before
    other = tmp_path / "other"  # a run not ended yet, resumed with another patience: Lightning restored the saved 1
    run(other, 1, patience=1)
    with pytest.raises(ValueError, match=r"had patience 1, and this command gives patience 5"):
        run(other, 20, other / "last.ckpt", patience=5)


def test_a_python_resume_with_a_budget_below_its_checkpoint_is_refused_by_name(tmp_path):
    run(tmp_path, 3)
    with pytest.raises(ValueError, match=r"max_epochs 2, and it has run 3 epochs"):
        run(tmp_path, 2, tmp_path / "last.ckpt")
    assert run(tmp_path, 3, tmp_path / "last.ckpt").global_step == 9
