"""Two ``staged_dir`` writes of one folder from two threads of one process (probe P12, finding 1): the second took the
first's live staging folder (and set-aside folder) for a killed run's leftovers, because ``_alive`` calls this process
dead, and removed it; the first then crashed with a bare FileNotFoundError and its undo deleted the earlier report's
files. Forced interleavings (events, a paused rename), never timing."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from neuroview import _io
from neuroview._io import staged_dir


def _run(target, name: str, results: dict) -> threading.Thread:
    def body():
        try:
            target()
            results[name] = "ok"
        except BaseException as e:  # noqa: BLE001 - the test reports what each thread got
            results[name] = f"{type(e).__name__}: {e}"

    t = threading.Thread(target=body, name=name, daemon=True)
    t.start()
    return t


def _contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.iterdir()}


def test_a_second_thread_leaves_the_first_thread_s_live_stage_alone(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "old.txt").write_text("earlier report")
    written, go, results = threading.Event(), threading.Event(), {}

    def a():
        with staged_dir(out) as stage:
            (stage / "a1.txt").write_text("A part 1")
            written.set()
            assert go.wait(60)  # A still writing its report while B writes the same folder
            (stage / "a2.txt").write_text("A part 2")

    def b():
        with staged_dir(out) as stage:
            (stage / "b1.txt").write_text("B")

    ta = _run(a, "A", results)
    assert written.wait(60)
    _run(b, "B", results).join(60)
    go.set()
    ta.join(60)
    assert results == {"A": "ok", "B": "ok"}  # before: A: FileNotFoundError ... a2.txt (its stage removed by B)
    assert _contents(out) == {"old.txt": "earlier report", "a1.txt": "A part 1", "a2.txt": "A part 2", "b1.txt": "B"}
    assert os.listdir(tmp_path) == ["report"]  # no stage or set-aside folder left beside it


def test_a_second_thread_during_the_first_s_moves_in_loses_nothing(tmp_path, monkeypatch):
    out = tmp_path / "report"
    out.mkdir()
    for i in range(6):
        (out / f"f{i}.txt").write_text("EARLIER")
    (out / "notes.txt").write_text("the user's own")
    moving, go, results, real, moved = threading.Event(), threading.Event(), {}, os.replace, [0]

    def replace(src, dst, *args, **kwargs):  # A paused at its third file moved in: two of the earlier set aside
        if threading.current_thread().name == "A" and Path(dst).parent == out and ".neuroview-stage." in str(src):
            moved[0] += 1
            if moved[0] == 3:
                moving.set()
                assert go.wait(60)
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)

    def a():
        with staged_dir(out) as stage:
            for i in range(6):
                (stage / f"f{i}.txt").write_text("A")

    def b():
        with staged_dir(out) as stage:
            (stage / "b.txt").write_text("B")

    ta = _run(a, "A", results)
    assert moving.wait(60)
    _run(b, "B", results).join(60)
    go.set()
    ta.join(60)
    assert results == {"A": "ok", "B": "ok"}  # before: A: FileNotFoundError, and the folder held b.txt alone
    assert _contents(out) == {**{f"f{i}.txt": "A" for i in range(6)}, "notes.txt": "the user's own", "b.txt": "B"}
    assert os.listdir(tmp_path) == ["report"]


def test_this_process_s_own_leftover_that_no_thread_uses_is_still_undone(tmp_path):
    """The sequential behaviour kept: a stage of this process that no write of it goes on with (a failed call's) is
    removed by the next write, as a killed run's is."""
    out = tmp_path / "report"
    out.mkdir()
    (out / "old.txt").write_text("earlier report")
    left = tmp_path / f".report.neuroview-stage.{_io._owner()}.abcd1234.tmp"
    left.mkdir()
    (left / "half.txt").write_text("half of a report")
    with staged_dir(out) as stage:
        (stage / "new.txt").write_text("new")
    assert _contents(out) == {"old.txt": "earlier report", "new.txt": "new"}
    assert os.listdir(tmp_path) == ["report"]
