"""A resume by the Python API (``pl.Trainer.fit(module, dm, ckpt_path=...)``) is held to the checks of ``neuroview fit
--ckpt_path``: another model option (``lr``), other data options (split ``seed``, ``batch_size``), a run its
EarlyStopping ended, another EarlyStopping ``patience`` and a budget that ends before the checkpoint are refused by name
in the module's own ``on_load_checkpoint``, before anything is trained or written, with advice in Python's words; a
resume with the run's own options goes on (``init_weights`` is not one: it has no effect on a resume); a refused resume
leaves nothing on the module that the next fit of it reads."""

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


def run(folder: Path, epochs: int, ckpt=None, *, patience=None, module=None, data=None, extra=(), **trainer):
    pl.seed_everything(0, verbose=False)
    callbacks = [ModelCheckpoint(dirpath=folder, save_last=True), *extra]
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
    with pytest.raises(ValueError, match=r"had patience 1, and this Trainer gives patience 5"):
        run(other, 20, other / "last.ckpt", patience=5)


def test_a_python_resume_with_a_budget_below_its_checkpoint_is_refused_by_name(tmp_path):
    run(tmp_path, 3)
    with pytest.raises(ValueError, match=r"Trainer\(max_epochs=2\), and it has run 3 epochs"):
        run(tmp_path, 2, tmp_path / "last.ckpt")
    assert run(tmp_path, 3, tmp_path / "last.ckpt").global_step == 9


class _StopAtEpochEnd(pl.Callback):
    """Stops the run at its first epoch's end: a last.ckpt with a budget (and a schedule) not run to its end."""

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


def test_a_refused_python_resume_leaves_nothing_that_refuses_the_next_plain_fit(tmp_path):
    """The refused resume left the checkpoint's data options (and schedules) on the module: the next fit of the same
    object, with no ckpt_path, was refused as 'ckpt_path: None resumes a run trained on other data options'."""
    cosine = {**KW, "scheduler": "cosine"}
    run(tmp_path / "a", 2, module=NeuroViewModule(**cosine))
    m = NeuroViewModule(**cosine)
    with pytest.raises(ValueError, match=r"cosine schedule runs over 6 optimizer steps"):  # 3 batches x 2 epochs
        run(tmp_path / "a", 4, tmp_path / "a" / "last.ckpt", module=m)
    t = run(tmp_path / "b", 1, module=m, data=DigitsDataModule(batch_size=16))  # a new run: 3 steps, nothing refused
    assert t.global_step == 3 and t.ckpt_path is None
    run(tmp_path / "half", 2, module=NeuroViewModule(**cosine), extra=[_StopAtEpochEnd()])  # 6 steps, 3 taken
    m = NeuroViewModule(**cosine)  # refused later, as it starts training: its split seed is another
    with pytest.raises(ValueError, match=r"other data options \(seed=1 given, 0 in the checkpoint\)"):
        run(tmp_path / "half", 2, tmp_path / "half" / "last.ckpt", module=m, data=DigitsDataModule(batch_size=32, seed=1))
    t = run(tmp_path / "c", 1, module=m, data=DigitsDataModule(batch_size=32, seed=1))  # not held to 6 steps of cosine
    assert t.global_step == 3


def test_a_python_resume_of_a_run_started_from_init_weights_needs_not_name_its_file(tmp_path):
    """init_weights has no effect on a resume (the checkpoint's weights go over the network's): a module built with
    init_weights=None was refused as built with other model options."""
    run(tmp_path / "pre", 1)
    init = tmp_path / "init.ckpt"
    init.write_bytes((tmp_path / "pre" / "last.ckpt").read_bytes())
    run(tmp_path / "ft", 1, module=NeuroViewModule(**KW, init_weights=str(init)))
    last = tmp_path / "ft" / "last.ckpt"
    init.unlink()
    assert run(tmp_path / "ft", 2, last, module=NeuroViewModule(**KW)).global_step == 6
    # the gone file named: the module reads init_weights at its setup, before Lightning names the checkpoint it restores
    with pytest.raises(FileNotFoundError, match=r"init_weights: weight file .*init.ckpt' is missing"):
        run(tmp_path / "ft", 3, last, module=NeuroViewModule(**KW, init_weights=str(init)))


def test_python_resume_refusals_give_python_advice(tmp_path):
    """A Trainer.fit(ckpt_path=...) caller was told of --trainer.max_epochs, neuroview test and --model.init_weights."""
    run(tmp_path, 3)
    last = tmp_path / "last.ckpt"
    with pytest.raises(ValueError) as said:
        run(tmp_path, 2, last)
    msg = str(said.value)
    assert "Trainer(max_epochs=2), and it has run 3 epochs" in msg
    assert f"trainer.test(module, datamodule, ckpt_path={str(last)!r})" in msg and f"init_weights={str(last)!r}" in msg
    assert "--" not in msg and "neuroview test" not in msg
    ended = tmp_path / "ended"
    run(ended, 20, patience=1)
    with pytest.raises(ValueError) as said:
        run(ended, 20, ended / "last.ckpt", patience=1)
    assert "nothing to resume" in str(said.value) and "--" not in str(said.value)
    assert "neuroview test" not in str(said.value)
    other = tmp_path / "other"
    run(other, 1, patience=1)
    with pytest.raises(ValueError) as said:
        run(other, 20, other / "last.ckpt", patience=5)
    assert "had patience 1, and this Trainer gives patience 5" in str(said.value) and "--" not in str(said.value)


# --- second review (/tmp/s22/S2, finding 4): the command line, like the Python API ---

DIGITS = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--config", DIGITS, "--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "3",
         "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary",
         "false", "--trainer.accelerator", "cpu", "--model.scheduler", "none", "--test_after_fit", "false"]


def cli_fit(root: Path, epochs: int, *extra: str):
    from neuroview.training.cli import cli_main
    return cli_main(["fit", *QUICK, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", str(epochs), *extra])


def test_a_cli_resume_of_a_run_started_from_init_weights_needs_not_name_its_file(tmp_path, monkeypatch):
    """`neuroview fit --ckpt_path last` of a run started with --model.init_weights FILE was refused unless FILE was
    named again (and was there), with the advice to 'drop those options' the user never gave."""
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    cli_fit(tmp_path / "A", 1)
    init = tmp_path / "init.ckpt"
    init.write_bytes((tmp_path / "A" / "checkpoints" / "last.ckpt").read_bytes())
    cli_fit(tmp_path / "B", 1, "--model.init_weights", str(init))
    init.unlink()
    assert cli_fit(tmp_path / "B", 2, "--ckpt_path", "last").trainer.global_step == 6  # one epoch of 3 steps more


def test_a_cli_resume_refusal_advises_the_runs_value_for_an_option_left_out(tmp_path, monkeypatch):
    """A run of --model.lr 0.01 resumed without it (the recipe's 3e-3): the refusal said 'drop those options'."""
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    cli_fit(tmp_path, 1, "--model.lr", "0.01")
    with pytest.raises(ValueError, match=r"model.lr 0.003 asked, 0.01 in the checkpoint\); a resume continues that run as "
                                         r"it was: pass --model.lr 0.01 as the run did, or start a new run") as said:
        cli_fit(tmp_path, 2, "--ckpt_path", "last")
    assert "drop" not in str(said.value)
    with pytest.raises(ValueError, match=r"model.lr 0.02 asked, 0.01 in the checkpoint\); a resume continues that run as "
                                         r"it was: drop --model.lr, or start a new run"):
        cli_fit(tmp_path, 2, "--ckpt_path", "last", "--model.lr", "0.02")
    assert cli_fit(tmp_path, 2, "--ckpt_path", "last", "--model.lr", "0.01").trainer.global_step == 6  # as the run did
