"""Two ``neuroview fit`` runs into one ``--trainer.default_root_dir`` at once: the second set the first's live
``last.ckpt`` aside as "the earlier run's" and wrote its own over the one the first went on saving (probe P8, finding
3). A fit now marks its checkpoint folder for as long as it runs; a second run while the first lives is refused by
name, before it moves anything; the marker of a run that is gone (killed) is taken over."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from neuroview.training.cli import cli_main

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [4, 8]}", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
         "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false", "--trainer.num_sanity_val_steps", "0"]


def _lr(path: Path) -> float:
    return torch.load(path, map_location="cpu", weights_only=True)["hyper_parameters"]["lr"]


def test_a_second_fit_into_a_live_run_s_folder_is_refused_and_moves_nothing(tmp_path, one_thread):
    folder = tmp_path / "checkpoints"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("NEUROVIEW_KEPT_INIT_WEIGHTS", None)
    # run A, long enough to be alive while B starts: told apart from B by its learning rate
    a = subprocess.Popen([sys.executable, "-m", "neuroview.cli", "fit", "--config", DIGITS, "--trainer.default_root_dir",
                          str(tmp_path), "--model.lr", "0.001", "--trainer.max_epochs", "100000", *QUICK],
                         cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not (folder / "last.ckpt").is_file():  # A is training: its first epoch saved
            assert a.poll() is None, a.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        with pytest.raises(ValueError, match=rf"trainer.default_root_dir: another `neuroview fit` \(pid {a.pid}\) is "
                                             rf"writing its checkpoints in {tmp_path}.*--trainer.default_root_dir DIR"):
            cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--model.lr", "0.002",
                      "--trainer.max_epochs", "1", *QUICK])
        assert a.poll() is None  # A still ran all the while
        names = sorted(p.name for p in folder.iterdir())
        assert not [n for n in names if re.search(r"-v\d+\.ckpt$", n)], names  # nothing of A's set aside as an earlier run's
        assert _lr(folder / "last.ckpt") == 0.001  # A's, not written over by B
        assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["version_0"]  # B left no log folder
    finally:
        a.send_signal(signal.SIGKILL)
        a.wait()
    # A killed: its marker names a process that is gone; a new run takes the folder and keeps A's last.ckpt
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--model.lr", "0.002",
              "--trainer.max_epochs", "1", "--test_after_fit", "false", *QUICK])
    assert _lr(folder / "last-v1.ckpt") == 0.001 and _lr(folder / "last.ckpt") == 0.002
    assert not list(tmp_path.glob(".*neuroview-fit*"))  # the marker is gone with its run


def test_fits_one_after_another_in_one_process_each_take_the_folder(tmp_path, one_thread):
    """The marker is released when a fit ends, and when it fails after taking the folder (here in the model's setup:
    init weights of another shape): it names no live run afterwards."""
    args = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1",
            "--test_after_fit", "false", *QUICK]
    cli_main(args)
    assert not list(tmp_path.glob(".*neuroview-fit*"))
    first = tmp_path / "first.ckpt"
    first.write_bytes((tmp_path / "checkpoints" / "last.ckpt").read_bytes())
    with pytest.raises(Exception, match="init_weights"):
        cli_main([*args, "--model.model_kwargs", "{widths: [6, 10]}", "--model.init_weights", str(first)])
    assert not list(tmp_path.glob(".*neuroview-fit*"))
    cli_main([*args, "--model.lr", "0.002"])
    assert _lr(tmp_path / "checkpoints" / "last.ckpt") == 0.002
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("last*")) == ["last-v1.ckpt", "last.ckpt"]
    assert not list(tmp_path.glob(".*neuroview-fit*"))
