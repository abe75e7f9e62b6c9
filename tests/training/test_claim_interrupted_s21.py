"""A Ctrl-C (KeyboardInterrupt) inside ``claim_folder`` once its marker was made (finding L1): the marker stayed on
disk, locked by a descriptor this process never closed, and every later fit of this process was refused as "this
process" until it exited. An interrupted claim now removes the marker it made (only while it is still the file it
holds: never another run's) and closes its descriptor. Each interrupt is forced at one point, never by timing."""

from __future__ import annotations

import errno
import json
import os
import threading

import pytest

from neuroview._io import _same_file
from neuroview.training import run_folder
from neuroview.training.run_folder import claim_folder, marker_of, release_folder


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _interrupt_once(monkeypatch, module, name, when):
    """``module.name`` raising KeyboardInterrupt the first time ``when(*args)`` holds; else the real one."""
    real, fired = getattr(module, name), []

    def fake(*args, **kwargs):
        if not fired and when(*args):
            fired.append(args)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, fake)
    return fired


def _claim_in_another_thread(folder, root):
    got = {}

    def fit():
        try:
            got["claim"] = claim_folder(folder, root)
        except ValueError as e:
            got["error"] = str(e)

    t = threading.Thread(target=fit)
    t.start()
    t.join(60)
    return got


def _the_folder_is_free(folder, root) -> None:
    """Nothing of the interrupted claim holds the folder: a fit of another thread, then of this one, takes it."""
    got = _claim_in_another_thread(folder, root)
    assert "error" not in got, got.get("error")  # before: "... (pid <this> on this host: this process, ...)"
    assert _same_file(got["claim"].fd, marker_of(folder))
    release_folder(got["claim"])
    assert not marker_of(folder).exists()
    release_folder(claim := claim_folder(folder, root))
    assert claim is not None and not marker_of(folder).exists()


@pytest.fixture
def folder(tmp_path):
    (folder := tmp_path / "checkpoints").mkdir()
    return folder


def test_a_ctrl_c_as_the_marker_is_read_back_removes_it_and_its_lock(folder, tmp_path, monkeypatch):
    before = _fds()
    fired = _interrupt_once(monkeypatch, run_folder.json, "loads", lambda text, *a: isinstance(text, bytes))
    with pytest.raises(KeyboardInterrupt):
        claim_folder(folder, tmp_path)
    monkeypatch.undo()
    assert fired  # the interrupt came after the marker was linked in: the window of the fault
    assert not marker_of(folder).exists()  # before: left, naming this process
    assert _fds() == before  # before: one descriptor never closed, holding the marker's lock
    _the_folder_is_free(folder, tmp_path)


def test_a_ctrl_c_just_after_the_link_removes_the_marker(folder, tmp_path, monkeypatch):
    real, fired = os.link, []

    def link_then_interrupt(src, dst, *a, **k):
        real(src, dst, *a, **k)
        if not fired and str(dst) == str(marker_of(folder)):
            fired.append(dst)
            raise KeyboardInterrupt

    monkeypatch.setattr(run_folder.os, "link", link_then_interrupt)
    before = _fds()
    with pytest.raises(KeyboardInterrupt):
        claim_folder(folder, tmp_path)
    monkeypatch.undo()
    assert fired and not marker_of(folder).exists()
    assert _fds() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoints"]  # no temporary marker file left either
    _the_folder_is_free(folder, tmp_path)


def test_a_ctrl_c_leaves_another_run_s_marker_alone(folder, tmp_path, monkeypatch):
    """Another run's marker, there and locked (here by a second open file of this process: flock tells the two
    apart as it tells two processes): an interrupt as this claim tries to link its own removes nothing of it."""
    marker = marker_of(folder)
    record = {"owner": "1-2-0123abcd", "host": "elsewhere", "locked": True}
    other = os.open(marker, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        assert run_folder._lock(other) is True
        os.write(other, json.dumps(record).encode())
        before = _fds()
        _interrupt_once(monkeypatch, run_folder.os, "link", lambda src, dst, *a: str(dst) == str(marker))
        with pytest.raises(KeyboardInterrupt):
            claim_folder(folder, tmp_path)
        monkeypatch.undo()
        assert _same_file(other, marker) and json.loads(marker.read_text()) == record  # the other run's, whole
        assert _fds() == before  # before: this call's own locked file left open
        with pytest.raises(ValueError, match="another `neuroview fit` .*it holds the marker's lock"):
            claim_folder(folder, tmp_path)  # still refused by that run's lock, not by a leftover of this process
    finally:
        os.close(other)
        marker.unlink(missing_ok=True)


def _no_hard_links(monkeypatch):
    def refuse(src, dst, *a, **k):
        raise OSError(errno.EPERM, "no hard links here", str(dst))

    monkeypatch.setattr(run_folder.os, "link", refuse)


def test_without_hard_links_a_ctrl_c_after_the_marker_is_written_removes_it(folder, tmp_path, monkeypatch):
    _no_hard_links(monkeypatch)
    before = _fds()
    fired = _interrupt_once(monkeypatch, run_folder.json, "loads", lambda text, *a: isinstance(text, bytes))
    with pytest.raises(KeyboardInterrupt):
        claim_folder(folder, tmp_path)
    assert fired and not marker_of(folder).exists()  # before: left, locked by a descriptor never closed
    assert _fds() == before
    monkeypatch.undo()
    _the_folder_is_free(folder, tmp_path)


def test_without_hard_links_a_ctrl_c_as_the_marker_is_locked_removes_it(folder, tmp_path, monkeypatch):
    """The marker made in place (no hard links), interrupted before its text is in: before, an empty marker stayed,
    and the next fit waited on it as "another run writing its marker this instant"."""
    _no_hard_links(monkeypatch)
    marker = marker_of(folder)
    before = _fds()
    fired = _interrupt_once(monkeypatch, run_folder, "_lock", lambda fd, *a: _same_file(fd, marker))
    with pytest.raises(KeyboardInterrupt):
        claim_folder(folder, tmp_path)
    assert fired and not marker.exists()
    assert _fds() == before
    monkeypatch.undo()
    _the_folder_is_free(folder, tmp_path)
