"""An existing shared (setgid) ``--out`` gives the report's files its group (probe s26 P2, finding 3): the report was
staged beside the folder, in its parent, so its files took the parent's group, not the shared folder's, and the
folder's group could not edit them in place, though the docs said the report was staged inside such a folder.

Review R3 of that fix: every folder of another group than its parent was staged inside too, though on Linux only a
setgid folder gives new files its group (F3); and a staging folder inside ``--out``, another user's or host's that the
next run cannot remove (F1) or a run's still writing (F2), made ``check_out`` refuse the folder as "is not empty",
though ``ls`` shows it empty and the lock-time check already skips such folders."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from neuroview import _io  # noqa: E402
from neuroview.viz import report_writer  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402
from test_killed_report_s17 import _child, _net  # noqa: E402  (tests/viz is on the path: its own folder)


def _shared(parent: Path, setgid: bool = True) -> Path:
    """``parent/shared``, setgid (2775; ``setgid=False``: 0775), of a group other than its parent's; a skip where this
    process cannot."""
    (out := parent / "shared").mkdir()
    mine = os.stat(parent).st_gid
    others = [g for g in (*os.getgroups(), os.getegid(), 4242) if g != mine]  # any group at all, as root
    for gid in others:
        try:
            os.chown(out, -1, gid)
            break
        except OSError:
            continue
    else:
        pytest.skip("this process can give a folder no group other than its parent's")
    os.chmod(out, 0o2775 if setgid else 0o775)
    assert os.stat(out).st_gid != mine and bool(os.stat(out).st_mode & stat.S_ISGID) == setgid
    return out


def _groups(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_gid for p in folder.rglob("*")}


def test_an_existing_setgid_out_gives_the_report_its_group(tmp_path):
    out = _shared(tmp_path)
    gid, ino = out.stat().st_gid, out.stat().st_ino
    net, x, y = _net(0)
    files = write_report(net, x, y, out, examples=1, progress=False, dpi=30)
    groups = _groups(out)
    assert set(groups) >= set(files) and "index.html" in groups
    assert set(groups.values()) == {gid}, groups  # before: every file of the parent's group (root's, here)
    assert out.stat().st_ino == ino and stat.S_IMODE(out.stat().st_mode) == 0o2775 and out.stat().st_gid == gid
    assert os.listdir(tmp_path) == ["shared"]  # no staging folder left, beside or inside


def test_a_killed_report_into_a_setgid_out_is_undone_and_the_next_one_takes_its_group(tmp_path):
    out = _shared(tmp_path)
    gid = out.stat().st_gid
    _child(out, 1, "built", overwrite=False)  # killed with every file written, none moved in
    assert os.listdir(tmp_path) == ["shared"]  # staged inside the shared folder, as the docs say: nothing beside it
    left = os.listdir(out)
    assert len(left) == 1 and ".neuroview-stage." in left[0]  # the killed run's, hidden, for the next run to undo
    assert set(_groups(out).values()) == {gid}  # the killed run's files already of the folder's group
    net, x, y = _net(1)
    files = write_report(net, x, y, out, examples=1, progress=False, dpi=30)  # not refused as "not empty"
    assert sorted(os.listdir(out)) == sorted(files) and set(_groups(out).values()) == {gid}
    assert os.listdir(tmp_path) == ["shared"]


# ---------------------------------------------------------------- review R3: F3, another group without setgid; F1, F2
def _report(out: Path, seed: int, **kw) -> list[str]:
    net, x, y = _net(seed)
    return write_report(net, x, y, out, examples=0, progress=False, dpi=30, baseline=None, **kw)


def test_an_out_of_another_group_that_is_not_setgid_is_staged_beside_it(tmp_path, monkeypatch):
    out = _shared(tmp_path, setgid=False)  # as a user's mkdir in /tmp gives: the user's group, /tmp root's
    seen = {}
    real = report_writer._write_all

    def built(*a, **k):  # every file written, none moved in: where are they?
        files = real(*a, **k)
        seen["inside"], seen["beside"] = os.listdir(out), sorted(os.listdir(tmp_path))
        return files

    monkeypatch.setattr(report_writer, "_write_all", built)
    files = _report(out, 0)
    # before: a hidden .neuroview-stage.* inside it, though on Linux a folder without setgid gives new files no group
    assert seen["inside"] == [], seen
    assert len(seen["beside"]) == 2 and seen["beside"][0].startswith(".shared.neuroview-stage."), seen
    assert sorted(os.listdir(out)) == sorted(files) and os.listdir(tmp_path) == ["shared"]


@pytest.mark.parametrize("setgid", [True, False], ids=["setgid", "other-group"])
def test_a_second_run_while_the_first_writes_is_written_and_the_first_is_told_another_run_wrote(tmp_path, monkeypatch,
                                                                                             setgid):
    out = _shared(tmp_path, setgid=setgid)
    real, second = report_writer._write_all, {}

    def built(*a, **k):  # the first run's report built, not moved in yet: a second run into the same folder now
        files = real(*a, **k)
        monkeypatch.setattr(report_writer, "_write_all", real)
        second["files"] = _report(out, 1, about={"run": "second"})  # before: "'.../shared' is not empty" at once
        return files

    monkeypatch.setattr(report_writer, "_write_all", built)
    with pytest.raises(FileExistsError, match=r"out_dir \(--out\): .*shared' was written by another run meanwhile"):
        _report(out, 0, about={"run": "first"})
    assert sorted(os.listdir(out)) == sorted(second["files"]) and '"run": "second"' in (out / "report.json").read_text()
    assert os.listdir(tmp_path) == ["shared"]  # no staging folder left, beside or inside


def test_a_staging_folder_the_next_run_cannot_remove_does_not_make_the_setgid_out_not_empty(tmp_path):
    out = _shared(tmp_path)
    # a run on another host, or another user's killed one (a 0700 folder this user cannot remove): left where it is
    other = f"{os.getpid()}-1-{'0' * 8 if _io._owner()[-8:] != '0' * 8 else '1' * 8}"
    (left := out / f".neuroview-stage.{other}.0123456789abcdef.x1y2z3q4.tmp").mkdir()
    (left / "index.html").write_text("another run's")
    files = _report(out, 0)  # before: "'.../shared' is not empty; pick a new folder or pass overwrite=True"
    assert sorted(os.listdir(out)) == sorted([*files, left.name]) and "index.html" in files
    assert (left / "index.html").read_text() == "another run's"  # never another's folder touched
