"""Two ``neuroview fit`` runs into one ``--trainer.default_root_dir`` at once: the second set the first's live
``last.ckpt`` aside as "the earlier run's" and wrote its own over the one the first went on saving (probe P8, finding
3). A fit now marks its checkpoint folder for as long as it runs; a second run while the first lives is refused by
name, before it moves anything; the marker of a run that is gone (killed) is taken over."""

from __future__ import annotations

import json
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
        with pytest.raises(ValueError, match=rf"trainer.default_root_dir: another `neuroview fit` \(pid {a.pid} on this "
                                             rf"host, running: it holds the marker's lock\) is writing its checkpoints "
                                             rf"in {tmp_path}.*--trainer.default_root_dir DIR"):
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


# review R7 of 788fd90: a marker of another host (a container, a SLURM node) never went stale; two fits over a killed
# run's marker could both take the folder

_OTHER_HOST = """
import socket, sys, time
socket.gethostname = lambda: "node-a"  # a container's, a SLURM node's, a pod's own hostname
from neuroview.training.run_folder import claim_folder
claim = claim_folder(sys.argv[1], sys.argv[2])
print("claimed", flush=True)
time.sleep(600)
"""


def _run_on_node_a(folder: Path, root: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", _OTHER_HOST, str(folder), str(root)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "claimed", p.stderr.read()
    return p


def test_another_host_s_run_is_named_by_host_pid_and_marker_and_its_killed_marker_is_taken_over(tmp_path, one_thread):
    from neuroview.training.run_folder import claim_folder, marker_of, release_folder

    args = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "1",
            "--test_after_fit", "false", "--model.scheduler", "none", "--model.warmup_epochs", "0", *QUICK]
    cli_main(args)  # a run to resume (no schedule: its budget may grow)
    folder, marker = tmp_path / "checkpoints", marker_of(tmp_path / "checkpoints")
    a = _run_on_node_a(folder, tmp_path)
    try:
        assert os.path.exists(marker)
        with pytest.raises(ValueError) as e:  # a resume while node-a's run goes on
            cli_main([*args, "--ckpt_path", "last", "--trainer.max_epochs", "2"])
        said = str(e.value)
        assert f"(pid {a.pid} on host node-a: it holds the marker's lock)" in said and f"its marker is {marker}" in said
        assert "this resume would write its checkpoints over" in said and "Resume when that run has ended" in said
        assert "folder of its own" not in said and "aside" not in said  # a resume must read this folder's last.ckpt
        assert f"If that run is no longer running, delete {marker} and run this again" in said
    finally:
        a.kill()
        a.wait()
    assert os.path.exists(marker)  # left by the killed run, which names a pid of another host
    # the resume the review ran: `--ckpt_path last` on this host, after node-a's run was killed
    cli_main([*args, "--ckpt_path", "last", "--trainer.max_epochs", "2"])
    assert torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == 1
    assert not os.path.exists(marker)
    # a marker of another host written without a lock (a file system without locks): refused, never called alive here
    marker.write_text(f"{a.pid}-12345-{'0' * 8}")
    with pytest.raises(ValueError) as e:
        claim_folder(folder, tmp_path)
    said = str(e.value)
    assert f"(pid {a.pid} on host unknown (its marker names it by a hash), which this host cannot check" in said
    assert f"If that run is no longer running, delete {marker} and run this again" in said
    assert "--trainer.default_root_dir DIR" in said
    marker.unlink()
    release_folder(claim_folder(folder, tmp_path))
    assert not os.path.exists(marker)


def _takes_over(folder, root, q, reached=None, go=None, end=None):
    from neuroview.training import run_folder

    if reached is not None:  # stopped between judging the killed run's marker and taking it over
        real = run_folder._alive

        def paused(owner):
            got = real(owner)
            reached.set()
            go.wait(30)
            return got

        run_folder._alive = paused
    try:
        claim = run_folder.claim_folder(folder, root)
        q.put((os.getpid(), "claimed", run_folder.marker_of(folder).read_text()))
        end.wait(30)
        run_folder.release_folder(claim)
    except ValueError as e:
        q.put((os.getpid(), "refused", str(e)))


def test_two_fits_over_a_killed_run_s_marker_take_the_folder_once(tmp_path):
    """Forced interleaving: B has judged the killed run's marker stale and is about to take it over; C comes then and
    takes (or tries to take) it; then B goes on. B's take-over removed C's fresh marker, and both held the folder."""
    import multiprocessing as mp

    from neuroview._io import _owner, _started
    from neuroview.training.run_folder import marker_of

    ctx = mp.get_context("fork")
    dead = ctx.Process(target=time.sleep, args=(0,))
    dead.start()
    dead.join()
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    marker_of(folder).write_text(f"{dead.pid}-{_started(os.getpid())}-{_owner().rsplit('-', 1)[1]}")  # 788fd90's form
    q, reached, go, end = ctx.Queue(), ctx.Event(), ctx.Event(), ctx.Event()
    b = ctx.Process(target=_takes_over, args=(folder, tmp_path, q, reached, go, end))
    b.start()
    try:
        assert reached.wait(30)
        c = ctx.Process(target=_takes_over, args=(folder, tmp_path, q, None, None, end))
        c.start()
        first = q.get(timeout=60)
        go.set()
        second = q.get(timeout=60)
        results = {first[0]: first[1:], second[0]: second[1:]}
        claimed = [pid for pid, (what, _) in results.items() if what == "claimed"]
        assert len(claimed) == 1, results
        assert json.loads(marker_of(folder).read_text())["owner"].split("-")[0] == str(claimed[0])
        (refused,) = [text for what, text in results.values() if what == "refused"]
        assert f"pid {dead.pid} on this host has ended, and a process still holds the marker's lock" in refused
        assert f"its marker is {marker_of(folder)}" in refused
    finally:
        go.set()
        end.set()
        b.join(30)
        c.join(30)
    assert not marker_of(folder).exists()
