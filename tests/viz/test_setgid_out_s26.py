"""An existing shared (setgid) ``--out`` gives the report's files its group (probe s26 P2, finding 3): the report was
staged beside the folder, in its parent, so its files took the parent's group, not the shared folder's, and the
folder's group could not edit them in place, though the docs said the report was staged inside such a folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from neuroview.viz.report import write_report  # noqa: E402
from test_killed_report_s17 import _child, _net  # noqa: E402  (tests/viz is on the path: its own folder)


def _shared(parent: Path) -> Path:
    """``parent/shared``, setgid (2775), of a group other than its parent's; a skip where this process cannot."""
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
    os.chmod(out, 0o2775)
    assert os.stat(out).st_gid != mine and os.stat(out).st_mode & stat.S_ISGID
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
