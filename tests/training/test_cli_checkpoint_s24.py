"""A user's ModelCheckpoint beside ``--checkpoint``'s: LightningCLI lists the trainer's own callbacks first, so
``trainer.checkpoint_callback`` (Lightning's first) was the user's. ``fit``'s own test (``--test_ckpt best``) then
scored the user's best, and ``before_fit`` kept an earlier run's files aside in the user's folder, not the run's; a
``last.ckpt`` whose ``--checkpoint`` state records no best was read as recording one where the user's state did. Now
each reads ``--checkpoint``'s callback (neuroview's Checkpoint), and a trainer where that cannot be told is refused by
name (session 24, M2).

The run's checkpoints rank by ``epoch``, mode ``min``: its best is always the epoch-0 file; the user's rank by
``epoch``, mode ``max``: its best is the last epoch's (known answers, whatever the network learns)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from neuroview.training.callbacks import Checkpoint
from neuroview.training.cli import NeuroViewCLI, cli_main
from neuroview.training.cli_runs import run_best

DIGITS = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
         "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary",
         "false", "--trainer.accelerator", "cpu", "--model.scheduler", "none", "--checkpoint.monitor", "epoch",
         "--checkpoint.mode", "min"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)


def _user(folder: Path, cls: str = "pytorch_lightning.callbacks.ModelCheckpoint") -> str:
    return ('{"class_path": "%s", "init_args": {"dirpath": "%s", "filename": "user-{epoch}", "monitor": "epoch", '
            '"mode": "max", "save_top_k": 1}}' % (cls, folder))


@pytest.mark.parametrize("cls", ["pytorch_lightning.callbacks.ModelCheckpoint", "neuroview.training.callbacks.Checkpoint"])
def test_fits_own_test_scores_the_best_of_checkpoint_not_of_a_users_second_callback(tmp_path, cls):
    """Before: 'user-epoch=1.ckpt' (the user's best, by epoch max) was tested as the run's best. A user's callback of
    neuroview's own class too: the one the command made from --checkpoint is the run's."""
    root = tmp_path / "run"
    cli = cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--trainer.max_epochs", "2",
                    "--trainer.callbacks+", _user(root / "checkpoints", cls)])
    assert [type(c).__name__ for c in cli.trainer.checkpoint_callbacks] == [cls.rsplit(".", 1)[1], "Checkpoint"]  # the case
    tested = Path(cli.trainer.ckpt_path)
    assert tested.parent == (root / "checkpoints").resolve() and tested.name.startswith("best-epoch000-"), tested


def test_a_new_run_keeps_the_earlier_runs_files_of_checkpoints_folder_aside_not_the_users(tmp_path):
    """The user's callback writes into a folder of its own. Before: the user's folder was the one whose files were
    kept aside (and claimed), and the earlier run's last.ckpt in the run's folder was written over."""
    root, theirs = tmp_path / "run", tmp_path / "mine"
    folder = root / "checkpoints"
    folder.mkdir(parents=True)
    torch.save({"earlier": torch.tensor(7)}, folder / "last.ckpt")
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--trainer.max_epochs", "1",
              "--test_after_fit", "false", "--trainer.callbacks+", _user(theirs)])
    assert (folder / "last-v1.ckpt").is_file(), sorted(p.name for p in folder.iterdir())
    assert torch.load(folder / "last-v1.ckpt", weights_only=True) == {"earlier": torch.tensor(7)}
    assert "epoch" in torch.load(folder / "last.ckpt", weights_only=True, map_location="cpu")  # the run's own
    assert sorted(p.name for p in theirs.iterdir()) == ["user-epoch=0.ckpt"]  # nothing kept aside there


def _key(cls: str, monitor: str, mode: str) -> str:
    return f"{cls}{{'monitor': {monitor!r}, 'mode': {mode!r}, 'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}}"


def test_a_last_ckpt_whose_checkpoint_state_records_no_best_is_refused_though_a_users_state_records_one(tmp_path):
    """--checkpoint kept no best (save_top_k 0, no validation); the user's callback beside it did. Before: 'best' fell
    through to the folder's files and took the stale best-old.ckpt (a file of one state, taken as it is)."""
    folder = tmp_path / "ck"
    folder.mkdir()
    user, ours = _key("ModelCheckpoint", "epoch", "max"), _key("Checkpoint", "epoch", "min")
    torch.save({"callbacks": {ours: {"best_model_path": "", "best_k_models": {}}}}, folder / "best-old.ckpt")
    torch.save({"callbacks": {user: {"best_model_path": str(folder / "u.ckpt"), "best_k_models": {}},
                              ours: {"best_model_path": "", "best_k_models": {}}}}, folder / "last.ckpt")
    with pytest.raises(ValueError, match=r"ckpt_path: 'best' .* kept none \(it records no best file"):
        run_best(folder, "test")
    # the run's own record of a best (the user's none): not refused, that file read
    torch.save({"callbacks": {user: {"best_model_path": "", "best_k_models": {}},
                              ours: {"best_model_path": str(folder / "best-old.ckpt"), "best_k_models": {}}}},
               folder / "last.ckpt")
    assert run_best(folder, "test").name == "best-old.ckpt"


def _trainer(*callbacks) -> SimpleNamespace:
    return SimpleNamespace(checkpoint_callbacks=list(callbacks))


def test_the_runs_checkpoint_callback_is_checkpoints_by_class_or_the_one_the_command_made(tmp_path):
    """By class, not by place; two of the class: the one the command made from --checkpoint; a single callback: that
    one (as a file's single state is read); several, none of the class, or several of it and none of them the
    command's: refused naming the callbacks and what to do."""
    from neuroview.training.cli_runs import run_checkpoint  # noqa: PLC0415 - new in s24: the other tests ran before it
    user = ModelCheckpoint(dirpath=tmp_path, monitor="val_loss", mode="min")
    ours = Checkpoint(dirpath=tmp_path, monitor="epoch", mode="min")
    other = Checkpoint(dirpath=tmp_path, monitor="val_acc", mode="max")
    assert run_checkpoint(_trainer(user, ours)) is ours
    assert run_checkpoint(_trainer(other, ours), ours) is ours
    assert run_checkpoint(_trainer(user)) is user  # a Trainer of Lightning's default ModelCheckpoint
    assert run_checkpoint(_trainer()) is None  # checkpointing off
    with pytest.raises(ValueError, match=r"checkpoint: .* 2 checkpoint callbacks \(Checkpoint by val_acc \(max\), "
                                         r"Checkpoint by epoch \(min\)\), several of them neuroview's Checkpoint: .*"
                                         r"--checkpoint\.\*"):
        run_checkpoint(_trainer(other, ours))
    with pytest.raises(ValueError, match=r"checkpoint: .* 2 checkpoint callbacks \(ModelCheckpoint by val_loss \(min\), "
                                         r"ModelCheckpoint\), none of them neuroview's Checkpoint"):
        run_checkpoint(_trainer(user, ModelCheckpoint(dirpath=tmp_path / "b")))


def test_after_a_spawned_fit_its_test_reads_checkpoints_best_from_the_run_folder(tmp_path):
    """ddp_spawn gives the main process back the best of Lightning's first checkpoint callback only: with a user's
    ahead of --checkpoint's, --checkpoint's best_model_path stays empty there. Its best is then the one the run's
    last.ckpt records (not the user's, and not the last weights)."""
    folder, theirs = tmp_path / "ck", tmp_path / "mine"
    user = ModelCheckpoint(dirpath=theirs, monitor="epoch", mode="max")
    ours = Checkpoint(dirpath=folder, monitor="epoch", mode="min")
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False, enable_progress_bar=False,
                         default_root_dir=tmp_path, callbacks=[user, ours])
    folder.mkdir()
    theirs.mkdir()
    torch.save({"global_step": 6}, theirs / "u.ckpt")
    user.best_model_path = str(theirs / "u.ckpt")  # what the spawn launcher gives back: the first callback's
    torch.save({"global_step": 2}, folder / "best-a.ckpt")
    torch.save({"global_step": 6, "callbacks": {ours.state_key: {"best_model_path": str(folder / "best-a.ckpt"),
                                                                 "best_k_models": {}}}}, folder / "last.ckpt")
    tested = []
    trainer.test = lambda *a, **kw: tested.append(kw["ckpt_path"])
    cli = SimpleNamespace(config={"fit": {"test_after_fit": True, "test_ckpt": "best"}}, subcommand="fit",
                          trainer=trainer, model=None, datamodule=None)
    NeuroViewCLI.after_fit(cli)
    assert tested == [str(folder / "best-a.ckpt")]
