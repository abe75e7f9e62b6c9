"""``_io.keep_aside`` (finding L2): it picked the first ``<stem>-v<N><suffix>`` that did not exist, then renamed onto
it; a kept file another process (or thread) put at that name between the two was replaced: the other run's kept
checkpoint gone. The name is now taken atomically before the move. The other writer is forced in at whichever call
takes or fills the ``-v1`` name, never by timing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from neuroview import _io
from neuroview._io import keep_aside

OTHER = "the other run's last.ckpt, kept as -v1 a moment ago"


def _another_keep_lands_on_v1(monkeypatch, target: str):
    """Every call of ``os`` that could take or fill a name: the first one aimed at ``target`` finds another writer's
    kept file has just appeared there (made with the real calls), as a concurrent ``keep_aside`` makes it."""
    fired = []

    def hooked(name, real):
        def call(*args, **kwargs):
            names = [str(a) for a in args if isinstance(a, (str, os.PathLike))]
            if not fired and names and names[-1 if name != "open" else 0] == target:
                fired.append(name)
                if not os.path.lexists(target):
                    Path(target).write_text(OTHER)
            return real(*args, **kwargs)
        return call

    for name in ("rename", "replace", "link", "open", "mkdir", "symlink"):
        monkeypatch.setattr(_io.os, name, hooked(name, getattr(os, name)))
    return fired


def test_a_file_kept_at_the_same_name_meanwhile_is_never_replaced(tmp_path, monkeypatch):
    (path := tmp_path / "last.ckpt").write_text("this run's earlier last.ckpt")
    fired = _another_keep_lands_on_v1(monkeypatch, str(tmp_path / "last-v1.ckpt"))
    kept = keep_aside(path)
    monkeypatch.undo()
    assert fired  # the other writer came in
    files = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert files == {"last-v1.ckpt": OTHER, "last-v2.ckpt": "this run's earlier last.ckpt"}  # before: -v1 ours, OTHER gone
    assert kept == tmp_path / "last-v2.ckpt"


def test_the_first_free_name_is_taken_and_others_left(tmp_path):
    (tmp_path / "last-v1.ckpt").write_text("1")
    (tmp_path / "last-v2.ckpt").symlink_to(tmp_path / "nowhere")  # a dangling link is a name taken too
    (tmp_path / "last.ckpt").write_text("new")
    assert keep_aside(tmp_path / "last.ckpt") == tmp_path / "last-v3.ckpt"
    assert (tmp_path / "last-v3.ckpt").read_text() == "new" and (tmp_path / "last-v1.ckpt").read_text() == "1"
    assert (tmp_path / "last-v2.ckpt").is_symlink() and not (tmp_path / "last.ckpt").exists()


def test_a_link_and_a_folder_are_kept_as_they_are(tmp_path):
    (target := tmp_path / "target.csv").write_text("x")
    (link := tmp_path / "predictions.csv").symlink_to(target)
    kept = keep_aside(link)
    assert kept.is_symlink() and os.readlink(kept) == str(target) and not os.path.lexists(link)
    (folder := tmp_path / "report").mkdir()
    (folder / "a.txt").write_text("a")
    kept = keep_aside(folder)
    assert kept == tmp_path / "report-v1" and (kept / "a.txt").read_text() == "a" and not folder.exists()


def test_a_missing_file_or_an_interrupted_move_leaves_no_name_taken(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        keep_aside(tmp_path / "last.ckpt")
    assert list(tmp_path.iterdir()) == []
    (path := tmp_path / "last.ckpt").write_text("kept")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    for name in ("rename", "replace"):
        monkeypatch.setattr(_io.os, name, interrupted)
    with pytest.raises(KeyboardInterrupt):
        keep_aside(path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"] and path.read_text() == "kept"


def test_two_threads_that_chose_their_names_before_either_moved_keep_both_files(tmp_path, monkeypatch):
    """Two keep_asides of ``last.ckpt`` at once, held at their move until both have chosen a name; the first moves,
    a new ``last.ckpt`` is written, then the second moves it (the moves' order forced, never timing). Before: both chose
    the free ``-v1`` (nothing was there yet) and the second move replaced the first's kept file (run on the code before
    the fix: ``{'last-v1.ckpt': 'second'}``, the first file gone). Now the first call's ``-v1`` is made before the
    second looks, which takes ``-v2``."""
    import threading

    path, both_chose, first_moved, errors = tmp_path / "last.ckpt", threading.Barrier(2), threading.Event(), []
    real = {name: getattr(os, name) for name in ("rename", "replace")}

    def held(name):
        def move(src, dst, *args, **kwargs):
            if Path(src) != path:
                return real[name](src, dst, *args, **kwargs)
            both_chose.wait(10)  # a BrokenBarrierError, not a hang, if one never comes
            if threading.current_thread().name == "second":
                assert first_moved.wait(10)
            real[name](src, dst, *args, **kwargs)
            if threading.current_thread().name == "first":
                path.write_text("second")  # the next file to keep aside, at the name the first just left
                first_moved.set()
        return move

    for name in real:
        monkeypatch.setattr(_io.os, name, held(name))
    path.write_text("first")

    def keep() -> None:
        try:
            keep_aside(path)
        except BaseException as e:  # noqa: BLE001 - said by the assert below
            errors.append(e)

    threads = [threading.Thread(target=keep, name=name) for name in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    monkeypatch.undo()
    assert not errors, errors
    files = {p.name: p.read_text() for p in tmp_path.iterdir()}  # which thread took -v1 is the scheduler's choice
    assert sorted(files) == ["last-v1.ckpt", "last-v2.ckpt"] and sorted(files.values()) == ["first", "second"], files
