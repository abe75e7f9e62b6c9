"""A process killed at any file-system step of :func:`neuroview._io.staged_dir` over an earlier folder (a report
written with ``overwrite=True``) leaves what :func:`recover_dir` turns into the earlier folder whole or the new one
whole, never a mix (s19, S4 finding 3). A kill inside the final removal of the set-aside folder used to recover to a
mix: the earlier ``index.html`` beside the new ``explanation.json`` (the moves list removed first: the folder read
as an earlier neuroview's, its namesakes put back over the finished report), or a report missing a file (a namesake
removed first: the moves undone, that file gone)."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from neuroview import _io

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="kills a forked child")

EVENTS = {"open", "os.rename", "os.remove", "os.link", "os.mkdir", "os.rmdir", "os.chmod", "tempfile.mkstemp",
          "tempfile.mkdtemp", "shutil.rmtree", "os.truncate"}
EARLIER = {"explanation.json": b"json of run 0", "explanation.safetensors": b"tensors of run 0",
           "index.html": b"<html>run 0</html>", "spatial_maps_0.png": b"png 0", "mine.txt": b"the user's own"}
NEW = {"explanation.json": b"json of run 1", "explanation.safetensors": b"tensors of run 1",
       "index.html": b"<html>run 1</html>", "spatial_maps_1.png": b"png 1", "z_last.csv": b"1,2,3"}


def _tree(folder) -> dict:
    return {n: (folder / n).read_bytes() for n in sorted(os.listdir(folder))}


def _write_new(out) -> None:
    with _io.staged_dir(out) as tmp:
        for name, data in NEW.items():
            (tmp / name).write_bytes(data)


def _killed_at(k: int, out) -> bool:
    """Run the write in a child killed (SIGKILL: no handler, no finally) at its k-th file-system event; whether it was."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        n = [0]

        def hook(event, args):
            if event in EVENTS:
                n[0] += 1
                if n[0] == k:
                    os.kill(os.getpid(), signal.SIGKILL)
        sys.addaudithook(hook)
        try:
            _write_new(out)
            os._exit(0)
        except BaseException:
            os._exit(3)
    status = os.waitpid(pid, 0)[1]
    if os.WIFEXITED(status):
        assert os.WEXITSTATUS(status) == 0
        return False
    assert os.WTERMSIG(status) == signal.SIGKILL
    return True


def test_a_kill_at_every_step_of_an_overwrite_recovers_to_the_earlier_folder_or_the_new_one_whole(tmp_path):
    earlier = dict(EARLIER)
    new = {**EARLIER, **NEW}  # a file with no namesake in the new set (the user's own, an earlier picture) stays
    states, k = {}, 0
    while True:
        k += 1
        (out := tmp_path / f"k{k}" / "out").mkdir(parents=True)
        for name, data in EARLIER.items():
            (out / name).write_bytes(data)
        if not _killed_at(k, out):
            assert _tree(out) == new
            break
        _io.recover_dir(out)
        got = _tree(out)
        state = "earlier" if got == earlier else "new" if got == new else None
        assert state, (k, {n: got.get(n) for n in sorted(set(got) | set(earlier) | set(new))})
        assert sorted(os.listdir(out.parent)) == ["out"], (k, os.listdir(out.parent))  # no temporary folder left
        states[state] = states.get(state, 0) + 1
    # the kills fell on both sides of the commit: the last moves and the removal of the set-aside folder included
    assert states.get("earlier", 0) > 10 and states.get("new", 0) >= len(EARLIER), states


def test_a_kill_inside_the_removal_of_the_set_aside_folder_keeps_the_new_folder(tmp_path, monkeypatch):
    """The same, without a fork: the removal stopped after each of its files (as a kill would stop it), then recovered."""
    real = _io.shutil.rmtree
    for stop in range(len(EARLIER) + 1):
        (out := tmp_path / f"s{stop}" / "out").mkdir(parents=True)
        for name, data in EARLIER.items():
            (out / name).write_bytes(data)

        def cut(folder, *a, _stop=stop, **kw):  # the set-aside folder's files: `stop` of them removed, then the kill
            if ".neuroview-" in os.path.basename(folder) and os.path.isdir(folder) and any(
                    n.startswith(".neuroview-moves") for n in os.listdir(folder)):
                for name in sorted(os.listdir(folder), reverse=True)[:_stop]:  # the moves list among the first
                    os.unlink(os.path.join(folder, name))
                raise _Killed
            return real(folder, *a, **kw)
        monkeypatch.setattr(_io.shutil, "rmtree", cut)
        with pytest.raises(_Killed):
            _write_new(out)
        monkeypatch.setattr(_io.shutil, "rmtree", real)
        _io.recover_dir(out)
        assert _tree(out) == {**EARLIER, **NEW}, stop


class _Killed(BaseException):
    """Stands for the kill: nothing after it runs in the write (the stage's own removal is not reached either)."""
