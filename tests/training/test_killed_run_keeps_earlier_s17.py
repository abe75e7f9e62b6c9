"""A ``neuroview fit`` killed before its first checkpoint, in the folder of an earlier run (probe s17, finding 2). It had
kept the earlier run's files aside (``last-v1.ckpt``, its best as ``...-v1.ckpt``) and saved nothing of its own, and
``--ckpt_path last`` then read the newest ``last*.ckpt``: the earlier run, resumed as if it were the killed one, which
ended in Lightning's bare FileNotFoundError (the kept checkpoint named its best by the name it had before the rename).
Now ``last`` reads ``last.ckpt`` only and refuses by name, and a kept checkpoint names its own files as kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neuroview.training.cli import cli_main

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
         "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false", "--model.scheduler", "none",
         "--trainer.enable_model_summary", "false", "--trainer.num_sanity_val_steps", "0"]
KILLER = '''
import os, signal
import pytorch_lightning as pl

class KillAt(pl.Callback):
    """SIGKILL the process before batch `batch` of epoch `epoch`: after training started, before any save."""
    def __init__(self, epoch: int = 0, batch: int = 1):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)
'''


def _checkpoint_state(path: Path) -> dict:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    (state,) = [s for k, s in saved["callbacks"].items() if k.startswith("Checkpoint")]
    return state


def test_a_run_killed_before_its_first_checkpoint_leaves_the_earlier_run_whole_and_last_refuses_by_name(tmp_path):
    root = tmp_path / "run"
    folder = root / "checkpoints"
    base = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK]
    cli_main([*base, "--seed_everything", "0", "--trainer.max_epochs", "1", "--test_after_fit", "false"])  # run A
    a_best = next(folder.glob("best-*.ckpt"))
    a_weights = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]

    (tmp_path / "killer.py").write_text(KILLER)
    kill = tmp_path / "kill.yaml"
    kill.write_text("trainer:\n  callbacks:\n    - class_path: killer.KillAt\n      init_args: {epoch: 0, batch: 1}\n")
    b_args = [*base, "--seed_everything", "1", "--trainer.max_epochs", "2"]  # run B, killed in its first epoch
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    env.pop("NEUROVIEW_KEPT_INIT_WEIGHTS", None)
    proc = subprocess.run([sys.executable, "-m", "neuroview.cli", *b_args, "--config", str(kill)], env=env,
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    kept_best = a_best.with_name(f"{a_best.stem}-v1.ckpt")
    assert sorted(p.name for p in folder.iterdir()) == sorted(["last-v1.ckpt", kept_best.name])  # B saved nothing

    # the kept checkpoint names its own files by their kept names: the best it resumes and tests is there
    state = _checkpoint_state(folder / "last-v1.ckpt")
    assert state["best_model_path"] == state["kth_best_model_path"] == str(kept_best)
    assert list(state["best_k_models"]) == [str(kept_best)]
    assert state["last_model_path"] == str(folder / "last-v1.ckpt")
    assert _checkpoint_state(kept_best)["best_model_path"] == str(kept_best)

    # `--ckpt_path last` of the killed run: no last.ckpt of its own; the earlier run's kept file is named, not resumed
    with pytest.raises(FileNotFoundError, match=r"ckpt_path: 'last' resumes the last checkpoint in .*no last.ckpt.*"
                                                r"last-v1.ckpt is an earlier run's.*Run without --ckpt_path to start a "
                                                r"new run, or pass --ckpt_path .*last-v1.ckpt to continue that run"):
        cli_main([*b_args, "--ckpt_path", "last"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(["last-v1.ckpt", kept_best.name])

    # the earlier run resumed by its kept name goes on, and the test after it reads its best under the kept name
    cli = cli_main([*base, "--seed_everything", "0", "--trainer.max_epochs", "2", "--ckpt_path", str(folder / "last-v1.ckpt")])
    assert cli.trainer.current_epoch == 2 and "test_acc" in cli.trainer.callback_metrics
    assert Path(cli.trainer.checkpoint_callback.best_model_path).is_file()
    resumed = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)
    assert (resumed["epoch"], resumed["global_step"]) == (1, 6)  # A's epoch 1 on top of its epoch 0
    assert resumed["state_dict"].keys() == a_weights.keys()


def test_last_reads_last_ckpt_even_where_a_kept_one_is_newer(tmp_path):
    """Lightning's own 'last' took the newest last*.ckpt by time of change: a kept file touched later was read."""
    from jsonargparse import Namespace

    from neuroview.training.cli import _checkpoint_file

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "last.ckpt").write_bytes(b"this run")
    (folder / "last-v1.ckpt").write_bytes(b"an earlier run")
    os.utime(folder / "last-v1.ckpt", (os.stat(folder / "last.ckpt").st_mtime + 100,) * 2)
    cfg = Namespace(ckpt_path="last", checkpoint=Namespace(dirpath=str(folder)), trainer=Namespace(default_root_dir=str(tmp_path)))
    assert _checkpoint_file(cfg, "fit") == str(folder / "last.ckpt")
    (folder / "last.ckpt").unlink()
    with pytest.raises(FileNotFoundError, match=r"no last.ckpt.*last-v1.ckpt is an earlier run's.*Name a checkpoint "
                                                r"file, or pass --ckpt_path .*last-v1.ckpt to test that run's model"):
        _checkpoint_file(cfg, "test")


def _same_weights(a: Path, b: dict) -> bool:
    got = torch.load(a, map_location="cpu", weights_only=True)["state_dict"]
    return got.keys() == b.keys() and all(torch.equal(got[k], b[k]) for k in b)


def test_a_resume_of_an_earlier_run_s_kept_checkpoint_keeps_the_later_run_s_files(tmp_path):
    """What the refusal above offers, where a later run did save: the resume of last-v1.ckpt wrote its last.ckpt over
    the later run's (its weights gone), and could write a best of the same name over that run's."""
    root = tmp_path / "run"
    folder = root / "checkpoints"
    base = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--trainer.max_epochs", "1"]
    cli_main([*base, "--seed_everything", "0", "--test_after_fit", "false"])  # run A
    cli_main([*base, "--seed_everything", "1", "--test_after_fit", "false"])  # run B: A kept as last-v1.ckpt
    b_last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    (b_best,) = [p for p in folder.glob("best-*.ckpt") if not p.stem.endswith("-v1")]
    b_best_weights = torch.load(b_best, map_location="cpu", weights_only=True)["state_dict"]

    cli = cli_main([*base, "--seed_everything", "0", "--trainer.max_epochs", "2", "--ckpt_path", str(folder / "last-v1.ckpt")])
    assert cli.trainer.current_epoch == 2 and Path(cli.trainer.checkpoint_callback.best_model_path).is_file()
    assert torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == 1  # A, continued
    assert _same_weights(folder / "last-v2.ckpt", b_last)  # B's last, kept
    kept_best = Path(_checkpoint_state(folder / "last-v2.ckpt")["best_model_path"])  # B's best, by its kept name
    assert kept_best.parent == folder and kept_best.stem.endswith(("-v1", "-v2"))
    assert _same_weights(kept_best, b_best_weights)
