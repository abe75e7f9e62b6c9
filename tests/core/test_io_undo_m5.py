"""``atomic_write_all`` on a Python exception undoes itself completely and leaves nothing behind (no journal, no
kept link, no temporary file): only a kill leaves a journal. And a reader that meets the journal of a writer that
still runs never undoes it, whatever pid the journal names (this process's other thread; a pid not running here,
as a writer in another pid namespace or on another host shows).

The files are plain bytes written by hand, so the expected contents are known without the code under test."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from neuroview import _io

OLD = {"t.bin": b"old tensors " * 50, "t.json": b'{"sha": "old"}'}
NEW = {"t.bin": b"new tensors " * 70, "t.json": b'{"sha": "new"}'}


def _pair(tmp_path, data):
    return {tmp_path / name: data[name] for name in ("t.bin", "t.json")}  # the sidecar last: the commit point


def _contents(tmp_path):
    return {name: (tmp_path / name).read_bytes() for name in sorted(os.listdir(tmp_path))}


def _disk_full(*a, **k):
    raise OSError(28, "disk full")


def test_a_journal_that_cannot_be_written_leaves_nothing(tmp_path, monkeypatch):
    _io.atomic_write_all(_pair(tmp_path, OLD))
    monkeypatch.setattr(_io.os, "fsync", _disk_full)  # the first fsync is the journal's
    with pytest.raises(OSError, match="disk full"):
        _io.atomic_write_all(_pair(tmp_path, NEW))
    assert _contents(tmp_path) == OLD  # no journal, placeholder or temporary file beside the old pair


def test_a_copy_cut_short_never_replaces_the_file_it_keeps(tmp_path, monkeypatch):
    """Where there are no hard links the earlier file is kept as a copy; a full disk cuts that copy short, and the
    undo must not put the half copy where the whole file was."""
    _io.atomic_write_all(_pair(tmp_path, OLD))

    def half_copy(src, dst, *a, **k):
        with open(src, "rb") as f, open(dst, "wb") as g:
            g.write(f.read()[:100])
        raise OSError(28, "disk full")

    monkeypatch.setattr(_io.os, "link", _disk_full)
    monkeypatch.setattr(_io.shutil, "copy2", half_copy)
    with pytest.raises(OSError, match="disk full"):
        _io.atomic_write_all(_pair(tmp_path, NEW))
    assert _contents(tmp_path) == OLD


def test_a_failed_rename_into_place_leaves_only_the_old_pair(tmp_path, monkeypatch):
    _io.atomic_write_all(_pair(tmp_path, OLD))
    monkeypatch.setattr(_io.os, "replace", _disk_full)  # every rename into place fails, the undo's too
    with pytest.raises(OSError, match="disk full"):
        _io.atomic_write_all(_pair(tmp_path, NEW))
    assert _contents(tmp_path) == OLD


def test_an_undo_that_fails_too_leaves_its_journal_for_the_next_call(tmp_path, monkeypatch):
    """The tensors are in place when the sidecar's rename fails, and so does the rename that would put the old
    tensors back: the journal stays (named in a note), and the next recovery puts the old pair back."""
    _io.atomic_write_all(_pair(tmp_path, OLD))
    real, calls = os.replace, []

    def first_only(*a, **k):
        calls.append(a)
        if len(calls) > 1:
            raise OSError(5, "I/O error")
        return real(*a, **k)

    monkeypatch.setattr(_io.os, "replace", first_only)
    with pytest.raises(OSError, match="I/O error") as caught:
        _io.atomic_write_all(_pair(tmp_path, NEW))
    if sys.version_info >= (3, 11):
        assert ".t.json.neuroview-journal" in " ".join(caught.value.__notes__)
    assert (tmp_path / ".t.json.neuroview-journal").exists()
    monkeypatch.undo()
    _io.recover(tmp_path / "t.json")
    assert _contents(tmp_path) == OLD


@pytest.mark.parametrize("owner", ["this process", "a pid not running here"])
def test_a_reader_never_undoes_a_write_that_still_runs(tmp_path, monkeypatch, owner):
    """A writer in another thread stops with the new tensors in place and the old sidecar still there; a reader's
    recovery meanwhile must leave it alone, so that the writer ends with the whole new pair."""
    _io.atomic_write_all(_pair(tmp_path, OLD))
    if owner != "this process":  # pid 2**22 + 1 is above Linux's pid_max: no process here has it
        host = _io._owner().rsplit("-", 1)[1]
        monkeypatch.setattr(_io, "_owner", lambda: f"{2 ** 22 + 1}-12345-{host}")
    half_done, go_on, real = threading.Event(), threading.Event(), _io.atomic_write

    def write(path, data):
        if path.name == "t.json":
            half_done.set()
            assert go_on.wait(30)
        real(path, data)

    monkeypatch.setattr(_io, "atomic_write", write)
    errors = []
    writer = threading.Thread(target=lambda: _catch(errors, _io.atomic_write_all, _pair(tmp_path, NEW)))
    writer.start()
    try:
        assert half_done.wait(30)
        assert (tmp_path / "t.bin").read_bytes() == NEW["t.bin"]
        _io.recover(tmp_path / "t.json", busy_ok=True)  # a reader: must find the writer running
        assert (tmp_path / ".t.json.neuroview-journal").exists()
        assert (tmp_path / "t.bin").read_bytes() == NEW["t.bin"]
    finally:
        go_on.set()
        writer.join(30)
    assert errors == []
    assert _contents(tmp_path) == NEW


def _catch(errors, fn, *args):
    try:
        fn(*args)
    except BaseException as e:  # noqa: BLE001 - handed to the test's thread
        errors.append(e)
