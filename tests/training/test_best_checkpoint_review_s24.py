"""``--ckpt_path best`` without ``last.ckpt`` is ``--checkpoint``'s monitored best whatever its filename (review R3, F4):
the ``best*.ckpt`` names were preferred and a single one taken as it was, so a user's ``ModelCheckpoint`` naming its
files ``best-...`` beside ``--checkpoint.filename ep{epoch}`` gave the user's file (one of them), or was refused as "the
files there are another checkpoint callback's" though the run's own were there (two). Where no file records any
checkpoint callback's state, whose best a file is cannot be told: refused naming ``--ckpt_path`` and the file."""

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
USER = "ModelCheckpoint{'monitor': 'val_acc', 'mode': 'max', 'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}"
OURS = "Checkpoint{'monitor': 'val_acc', 'mode': 'max', 'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)


def test_a_fit_of_its_own_filename_beside_a_users_best_files_gives_its_own_best_without_last_ckpt(tmp_path):
    """--checkpoint ranks by epoch, min (its best: ep0.ckpt); the user's callback, by epoch, max, names its files best-*.
    Before: 'best-user-epoch=1.ckpt' once last.ckpt was gone."""
    root = tmp_path / "run"
    folder = root / "checkpoints"
    user = ('{"class_path": "pytorch_lightning.callbacks.ModelCheckpoint", "init_args": {"dirpath": "%s", '
            '"filename": "best-user-{epoch}", "monitor": "epoch", "mode": "max", "save_top_k": 1}}' % folder)
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--trainer.max_epochs", "2",
              "--checkpoint.monitor", "epoch", "--checkpoint.mode", "min", "--checkpoint.filename", "ep{epoch}",
              "--trainer.callbacks+", user])
    assert sorted(p.name for p in folder.glob("*.ckpt")) == ["best-user-epoch=1.ckpt", "ep0.ckpt", "last.ckpt"]
    assert best_checkpoint(folder, "test").name == "ep0.ckpt"
    (folder / "last.ckpt").unlink()  # as --checkpoint.save_last false leaves the folder
    assert best_checkpoint(folder, "test").name == "ep0.ckpt"


def _state(folder: Path, best: str, scores: dict[str, float]) -> dict:
    return {"dirpath": str(folder), "current_score": torch.tensor(scores[best]), "best_model_path": str(folder / best),
            "best_k_models": {str(folder / n): torch.tensor(v) for n, v in scores.items()}}


def _folder(tmp_path, theirs: dict[str, float], mine: dict[str, float]) -> Path:
    """Each file holds both callbacks' states, the user's first, as LightningCLI lists them; the run's best: ep2.ckpt."""
    folder = tmp_path / "ck"
    folder.mkdir()
    user_best = max(theirs, key=theirs.get) if theirs else None
    for name in (*mine, *theirs):
        states = {ours_or_user: state for ours_or_user, state in (
            (USER, _state(folder, user_best, theirs) if theirs else None), (OURS, _state(folder, "ep2.ckpt", mine)))
            if state is not None}
        torch.save({"callbacks": states}, folder / name)
    return folder


@pytest.mark.parametrize("theirs", [{"best-user-e1.ckpt": 0.99}, {"best-user-e1.ckpt": 0.95, "best-user-e2.ckpt": 0.99}])
def test_a_users_best_named_files_are_never_the_runs_best_one_or_several(tmp_path, theirs):
    """One user file: it was returned (the run's ep*.ckpt never looked at); two: FileNotFoundError '... are another
    checkpoint callback's', though ep1.ckpt and ep2.ckpt are the run's."""
    folder = _folder(tmp_path, theirs, {"ep1.ckpt": 0.8, "ep2.ckpt": 0.9})
    assert best_checkpoint(folder, "test").name == "ep2.ckpt"


def test_a_stateless_file_of_a_users_weights_only_callback_is_not_the_runs_best(tmp_path):
    """A ModelCheckpoint of the user's with save_weights_only writes files holding no callback state; the run's own
    files record theirs, and name no such file: it was taken (a single best*.ckpt) over the run's ep2.ckpt."""
    folder = _folder(tmp_path, {}, {"ep1.ckpt": 0.8, "ep2.ckpt": 0.9})
    torch.save({"state_dict": {}}, folder / "best-user.ckpt")
    assert best_checkpoint(folder, "test").name == "ep2.ckpt"


def test_only_a_users_files_left_is_refused_not_returned(tmp_path):
    """The run's own files removed: the user's single best file was returned as the run's best."""
    folder = _folder(tmp_path, {"best-user-e1.ckpt": 0.99}, {"ep1.ckpt": 0.8, "ep2.ckpt": 0.9})
    for name in ("ep1.ckpt", "ep2.ckpt"):
        (folder / name).unlink()
    with pytest.raises(FileNotFoundError, match=r"^ckpt_path: 'best' .* the files there \(best-user-e1.ckpt\) are another "
                                                r"checkpoint callback's"):
        best_checkpoint(folder, "test")


@pytest.mark.parametrize("name", ["best-a.ckpt", "model.ckpt"])
def test_a_single_file_that_records_no_callback_state_is_taken_whatever_its_name(tmp_path, name):
    """A weights-only save (``--checkpoint.save_weights_only``) records no callback state: the one file of the folder
    is the run's, whatever ``--checkpoint.filename`` named it; a second such file is a choice nothing records."""
    folder = tmp_path / "ck"
    folder.mkdir()
    torch.save({"state_dict": {}}, folder / name)
    assert best_checkpoint(folder, "test") == folder / name
    torch.save({"state_dict": {}}, folder / "other.ckpt")
    with pytest.raises(ValueError, match=r"^ckpt_path: 'best' .* 2 best files"):
        best_checkpoint(folder, "test")
