"""``write_report`` from two threads of one process into one ``--out`` (probe P12, finding 1): the later call's
recovery took the earlier call's live staging folder for a killed run's and removed it, so the earlier call crashed
with a bare FileNotFoundError and, moving in over an earlier report, deleted that report too. Now the later one
leaves it alone: without ``overwrite`` the loser gets the named "written by another run meanwhile", with it the two
reports move in one after the other. Forced interleavings (events, a paused step), never timing."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import threading
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.viz import report_writer  # noqa: E402
from neuroview.viz.report_writer import write_report  # noqa: E402


def _net(seed: int):
    torch.manual_seed(seed)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()
    return net, torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])


def _report(out: Path, run: str, overwrite: bool = False) -> list[str]:
    net, x, y = _net(len(run))
    return write_report(net, x, y, out, examples=1, progress=False, dpi=30, overwrite=overwrite, about={"run": run})


def _thread(name: str, out: Path, results: dict, overwrite: bool = False) -> threading.Thread:
    def body():
        try:
            results[name] = _report(out, name, overwrite)
        except BaseException as e:  # noqa: BLE001 - the test reports what each thread got
            results[name] = e

    t = threading.Thread(target=body, name=name, daemon=True)
    t.start()
    return t


def _run_of(out: Path) -> str:
    return json.loads((out / "report.json").read_text())["run"]


@pytest.fixture
def paused_a(monkeypatch):
    """Thread "A" stops once its whole report is in its staging folder, until ``go`` is set."""
    written, go, real = threading.Event(), threading.Event(), report_writer._write_all

    def write_all(*args, **kwargs):
        files = real(*args, **kwargs)
        if threading.current_thread().name == "A":
            written.set()
            assert go.wait(120)
        return files

    monkeypatch.setattr(report_writer, "_write_all", write_all)
    return written, go


def test_the_later_report_into_a_new_out_wins_and_the_earlier_is_refused_by_name(tmp_path, one_thread, paused_a):
    out, results = tmp_path / "report", {}
    written, go = paused_a
    ta = _thread("A", out, results)
    assert written.wait(120)
    _thread("B", out, results).join(120)  # B's whole report, while A's stage waits beside the folder
    go.set()
    ta.join(120)
    assert isinstance(results["B"], list) and "index.html" in results["B"]
    # before: A -> FileNotFoundError: [Errno 2] No such file or directory: '.../.report.neuroview-stage....tmp/...'
    assert isinstance(results["A"], FileExistsError), results["A"]
    assert str(results["A"]).startswith(f"out_dir (--out): {str(out)!r} was written by another run meanwhile")
    assert sorted(os.listdir(out)) == sorted(results["B"]) and _run_of(out) == "B"  # B's report, whole
    assert os.listdir(tmp_path) == ["report"]


def test_overwrite_reports_from_two_threads_move_in_one_after_the_other(tmp_path, one_thread, monkeypatch):
    out, results = tmp_path / "report", {}
    assert "index.html" in _report(out, "earlier")
    (out / "my_notes.txt").write_text("the user's own file")
    moving, go, at_lock, moved = threading.Event(), threading.Event(), threading.Event(), [0]
    real_replace, real_flock = os.replace, fcntl.flock

    def replace(src, dst, *args, **kwargs):  # A paused at its second file moved in, holding the folder's lock
        if threading.current_thread().name == "A" and Path(dst).parent == out and ".neuroview-stage." in str(src):
            moved[0] += 1
            if moved[0] == 2:
                moving.set()
                assert go.wait(120)
        return real_replace(src, dst, *args, **kwargs)

    def flock(fd, op):  # B about to wait for the folder's lock, which A holds
        if threading.current_thread().name == "B" and op == fcntl.LOCK_EX and stat.S_ISDIR(os.fstat(fd).st_mode):
            at_lock.set()
        return real_flock(fd, op)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(fcntl, "flock", flock)
    ta = _thread("A", out, results, overwrite=True)
    assert moving.wait(120)
    tb = _thread("B", out, results, overwrite=True)  # B starts (and undoes leftovers) while A moves its report in
    assert at_lock.wait(120)
    go.set()
    ta.join(120)
    tb.join(120)
    # before: A -> FileNotFoundError ('.../.report.neuroview-stage....tmp/...' -> '.../report/...'): B had removed its
    # stage, and A's undo deleted the earlier report's files
    assert isinstance(results["A"], list) and isinstance(results["B"], list), results
    assert sorted(os.listdir(out)) == sorted([*results["B"], "my_notes.txt"]) and _run_of(out) == "B"
    assert (out / "my_notes.txt").read_text() == "the user's own file"
    assert os.listdir(tmp_path) == ["report"]
