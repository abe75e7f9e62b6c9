"""``--ckpt_path best`` with a user's ModelCheckpoint beside ``--checkpoint``'s: with ``last.ckpt`` the best it records
first was taken (the user's callback, listed first), without it the best ``best*.ckpt`` file (``--checkpoint``'s), so
the same run's "best" was another file when ``--checkpoint.save_last false``. Now it is ``--checkpoint``'s monitored best
either way; where a file holds several callbacks' states and none (or several) of them is ``--checkpoint``'s, the
choice is refused naming ``--ckpt_path`` (session 24, F6)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neuroview.training.best_checkpoint import best_checkpoint
from neuroview.training.cli import cli_main

DIGITS = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
         "--model.scheduler", "none", "--test_after_fit", "false"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)


def test_the_best_of_a_fit_with_a_users_second_checkpoint_is_checkpoints_own_with_or_without_last_ckpt(tmp_path):
    """--checkpoint ranks by epoch, min: its best is epoch 0's file. The user's ModelCheckpoint, in the same folder,
    ranks by epoch, max: its best is the last epoch's. Before: 'user-epoch=1.ckpt' with last.ckpt, the epoch-0 file
    without it."""
    root = tmp_path / "run"
    folder = root / "checkpoints"
    user = ('{"class_path": "pytorch_lightning.callbacks.ModelCheckpoint", "init_args": {"dirpath": "%s", '
            '"filename": "user-{epoch}", "monitor": "epoch", "mode": "max", "save_top_k": 1}}' % folder)
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--trainer.max_epochs", "2",
              "--checkpoint.monitor", "epoch", "--checkpoint.mode", "min", "--trainer.callbacks+", user])
    names = sorted(p.name for p in folder.glob("*.ckpt"))
    assert len(names) == 3 and names[0].startswith("best-epoch000") and names[2] == "user-epoch=1.ckpt", names
    assert best_checkpoint(folder, "test").name == names[0]  # last.ckpt records both callbacks' bests
    (folder / "last.ckpt").unlink()  # as --checkpoint.save_last false leaves the folder
    assert best_checkpoint(folder, "test").name == names[0]


def _key(cls: str, monitor: str, mode: str) -> str:
    return f"{cls}{{'monitor': {monitor!r}, 'mode': {mode!r}, 'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}}"


def _state(folder: Path, best: str, scores: dict[str, float]) -> dict:
    return {"dirpath": str(folder), "current_score": torch.tensor(scores[best]), "best_model_path": str(folder / best),
            "best_k_models": {str(folder / n): torch.tensor(v) for n, v in scores.items()}}


def test_files_of_a_users_checkpoint_of_the_same_rule_are_not_the_runs_best_without_last_ckpt(tmp_path):
    """A --checkpoint.filename of the run's own (no best*.ckpt) and a user's callback of the same monitor and mode into
    the same folder: without last.ckpt its better file 'u-0.99.ckpt' was the run's best, with it 'ep2.ckpt'."""
    folder = tmp_path / "ck"
    folder.mkdir()
    user, ours = _key("ModelCheckpoint", "val_acc", "max"), _key("Checkpoint", "val_acc", "max")
    mine, theirs = {"ep1.ckpt": 0.8, "ep2.ckpt": 0.9}, {"u-0.99.ckpt": 0.99}
    for name in (*mine, *theirs):  # each file holds both states, the user's first, as LightningCLI lists them
        torch.save({"callbacks": {user: _state(folder, "u-0.99.ckpt", theirs),
                                  ours: _state(folder, "ep2.ckpt" if name == "ep2.ckpt" else "ep1.ckpt",
                                               {n: v for n, v in mine.items() if name == "ep2.ckpt" or n == "ep1.ckpt"})}},
                   folder / name)
    torch.save({"callbacks": {user: _state(folder, "u-0.99.ckpt", theirs), ours: _state(folder, "ep2.ckpt", mine)}},
               folder / "last.ckpt")
    assert best_checkpoint(folder, "test").name == "ep2.ckpt"
    (folder / "last.ckpt").unlink()
    assert best_checkpoint(folder, "test").name == "ep2.ckpt"


def test_two_callbacks_neither_of_them_checkpoints_own_are_refused_naming_the_override(tmp_path):
    """Two ModelCheckpoints of the user's (no --checkpoint state, as a run of the Python API saves them): the first's
    best was taken without a word."""
    folder = tmp_path / "ck"
    folder.mkdir()
    a, b = _key("ModelCheckpoint", "val_loss", "min"), _key("MyCheckpoint", "val_acc", "max")
    states = {a: _state(folder, "a.ckpt", {"a.ckpt": 0.1}), b: _state(folder, "b.ckpt", {"b.ckpt": 0.9})}
    for name in ("a.ckpt", "b.ckpt", "last.ckpt"):
        torch.save({"callbacks": states}, folder / name)
    with pytest.raises(ValueError, match=r"^ckpt_path: 'best' reads the best checkpoint of the run's --checkpoint "
                                         r"callback, and last.ckpt records 2 checkpoint callbacks \(ModelCheckpoint by "
                                         r"val_loss \(min\), MyCheckpoint by val_acc \(max\)\), none of them --checkpoint's.*"
                                         r"pass --ckpt_path with the file to test"):
        best_checkpoint(folder, "test")
    (folder / "last.ckpt").unlink()  # each file still holds both states: whose best is meant is still unknown
    with pytest.raises(ValueError, match=r"ckpt_path: 'best' .* none of them --checkpoint's.*--ckpt_path"):
        best_checkpoint(folder, "fit")
    torch.save({"callbacks": {a: states[a]}}, folder / "last.ckpt")  # one callback alone: its best, as before
    assert best_checkpoint(folder, "test").name == "a.ckpt"


def test_best_files_all_of_a_users_checkpoint_are_refused_by_name_without_last_ckpt(tmp_path):
    """Every best*.ckpt written by the user's callback (its state names it, --checkpoint's names none): none is the
    run's best (before: the user's best of the two, 'best-u2.ckpt')."""
    folder = tmp_path / "ck"
    folder.mkdir()
    user, ours = _key("ModelCheckpoint", "val_acc", "max"), _key("Checkpoint", "val_acc", "max")
    theirs = {"best-u1.ckpt": 0.7, "best-u2.ckpt": 0.9}
    for name in theirs:
        torch.save({"callbacks": {user: _state(folder, name, {name: theirs[name]}),
                                  ours: {"current_score": torch.tensor(0.5), "best_model_path": "", "best_k_models": {}}}},
                   folder / name)
    with pytest.raises(FileNotFoundError, match=r"^ckpt_path: 'best' reads the best checkpoint of the run's --checkpoint "
                                                r"callback in .*, and the files there \(best-u1.ckpt, best-u2.ckpt\) are "
                                                r"another checkpoint callback's .*: name a checkpoint file"):
        best_checkpoint(folder, "test")
