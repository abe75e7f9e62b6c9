"""Two writers of one path at once (probe P8, findings 2 and 5), each race forced by a step that makes the other
writer's file at the worst moment, never by timing:

- ``atomic_write_all``: another writer's journal that appears after this writer's ``recover`` looked was a bare
  ``[Errno 17] File exists``; now the "process N is writing it now" refusal, and the other's journal untouched;
- ``_settle`` globbed ``.<name>.*.tmp``, which took another writer's in-flight journal temporary
  (``.<name>.neuroview-journal.<8>.tmp``): that writer then died with a bare FileNotFoundError;
- ``atomic_write(..., replace=False)`` refuses a file that appeared at ``path`` since the caller checked;
- ``Explanation.load`` between two whole saves read one save's sidecar and the next one's tensors and said "save
  the explanation again": it reads the pair again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import neuroview as nv
from neuroview import _io
from neuroview.core.explanation import CNNExplanation

HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from neuroview import _io
    journal = Path(sys.argv[1])
    rows = [["e.safetensors", "0" * 64, None, False], ["e.json", "0" * 64, None, False]]
    fd = _io._start_journal(journal, {"owner": _io._owner(), "files": rows})
    print("holding", flush=True)
    sys.stdin.readline()  # the journal's lock held until the test lets go
""")


def test_a_journal_that_appears_after_recover_looked_names_its_writer(tmp_path, monkeypatch):
    (tmp_path / "e.json").write_text("earlier sidecar")
    journal = tmp_path / ".e.json.neuroview-journal"
    other = subprocess.Popen([sys.executable, "-c", HOLDER, str(journal)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert other.stdout.readline().strip() == "holding"
        real, calls = _io.recover, []

        def looked_too_early(last, busy_ok=False):  # the first look finds no journal: the other's came just after
            calls.append(last)
            return None if len(calls) == 1 else real(last, busy_ok)

        monkeypatch.setattr(_io, "recover", looked_too_early)
        with pytest.raises(FileExistsError, match=rf"process {other.pid} is writing it now") as err:
            _io.atomic_write_all({tmp_path / "e.safetensors": b"tensors", tmp_path / "e.json": b"sidecar"})
        assert "Errno" not in str(err.value)
        record = json.loads(journal.read_text())  # the other writer's journal, whole and in place
        assert record["owner"].split("-")[0] == str(other.pid)
        assert (tmp_path / "e.json").read_text() == "earlier sidecar"
        assert not (tmp_path / "e.safetensors").exists()
    finally:
        other.communicate("\n", timeout=60)


def test_settling_a_write_leaves_another_writers_journal_temporary(tmp_path):
    import fcntl

    rows = [["e.safetensors", "0" * 64, None, False], ["e.json", "0" * 64, None, False]]
    theirs = tmp_path / ".e.json.neuroview-journal.ab12cd34.tmp"  # a running writer's journal, being written: locked
    theirs.write_text(json.dumps({"owner": _io._owner(), "files": rows}))
    dead = tmp_path / ".e.json.neuroview-journal.de4d0000.tmp"  # one a killed writer never put in place: no lock
    dead.write_text(json.dumps({"owner": None, "files": rows}))
    killed = tmp_path / ".e.json.zz99yy88.tmp"  # what a killed atomic_write of e.json left
    killed.write_text("half")
    fd = os.open(theirs, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _io.atomic_write_all({tmp_path / "e.safetensors": b"tensors", tmp_path / "e.json": b"sidecar"})
    finally:
        os.close(fd)
    assert json.loads(theirs.read_text())["files"] == rows
    assert not killed.exists() and not dead.exists()
    assert (tmp_path / "e.json").read_bytes() == b"sidecar" and (tmp_path / "e.safetensors").read_bytes() == b"tensors"


def test_atomic_write_without_replace_refuses_a_file_that_appeared(tmp_path):
    path = tmp_path / "w.safetensors"
    _io.atomic_write(path, b"first", replace=False)  # none there: written
    assert path.read_bytes() == b"first"
    with pytest.raises(FileExistsError) as err:
        _io.atomic_write(path, b"second", replace=False)
    assert str(path) in str(err.value)
    assert path.read_bytes() == b"first"
    assert sorted(os.listdir(tmp_path)) == ["w.safetensors"]  # no temporary left
    _io.atomic_write(path, b"third")  # replace=True, the default: replaced as before
    assert path.read_bytes() == b"third"


def _explanation(widths) -> CNNExplanation:
    torch.manual_seed(0)
    net = nv.create_model("nv_small_cnn", in_channels=1, num_classes=3, widths=widths).eval()
    return net.explain(torch.randn(2, 1, 8, 8))


def test_load_reads_the_pair_again_when_a_save_came_between_its_reads(tmp_path, monkeypatch):
    first, second = _explanation([4, 8]), _explanation([6])  # 12 units, then 6
    path = tmp_path / "e.safetensors"
    first.save(path)
    real, saved = type(path).read_text, []

    def another_save_meanwhile(self, *args, **kwargs):  # the sidecar read, then another process's whole save
        text = real(self, *args, **kwargs)
        if self.name == "e.json" and not saved:
            saved.append(True)
            second.save(path)
        return text

    monkeypatch.setattr(type(path), "read_text", another_save_meanwhile)
    back = CNNExplanation.load(path)
    assert saved
    assert len(back.units) == 6  # the second save's pair, whole
    assert torch.equal(back.logits, second.logits)
    assert torch.allclose(back.contributions.flatten(2).sum(-1) + back.bias, back.logits, atol=1e-5)


def test_a_pair_that_does_not_match_twice_is_still_refused(tmp_path):
    path = tmp_path / "e.safetensors"
    _explanation([4]).save(path)
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")  # changed apart from its sidecar
    with pytest.raises(ValueError, match="does not match its sidecar"):
        CNNExplanation.load(path)


# review R9, finding 2: _settle kept a journal temporary unless its record was whole and named a process gone, so an
# empty or cut-short one (a writer killed before its record was written and synced) stayed for good, and one that is
# the journal itself (killed between linking it in and unlinking the temporary) outlived recover().

@pytest.mark.parametrize("left", ["empty", "cut short", "whole"])
def test_the_next_save_removes_a_killed_writers_journal_temporary(tmp_path, left):
    import fcntl

    rows = [["e.safetensors", "0" * 64, None, False], ["e.json", "0" * 64, None, False]]
    text = json.dumps({"owner": None, "files": rows})
    dead = tmp_path / ".e.json.neuroview-journal.de4d0000.tmp"  # no process holds its lock: its writer was killed
    dead.write_text({"empty": "", "cut short": text[:20], "whole": text}[left])
    live = tmp_path / ".e.json.neuroview-journal.11fe0000.tmp"  # a running writer's, as empty: locked from its start
    live.write_text("")
    fd = os.open(live, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _io.atomic_write_all({tmp_path / "e.safetensors": b"tensors", tmp_path / "e.json": b"sidecar"})
    finally:
        os.close(fd)
    assert sorted(os.listdir(tmp_path)) == sorted(["e.json", "e.safetensors", live.name])  # the killed one's gone
    assert (tmp_path / "e.json").read_bytes() == b"sidecar" and (tmp_path / "e.safetensors").read_bytes() == b"tensors"


@pytest.mark.parametrize("busy_ok", [True, False])
def test_recover_removes_a_journal_temporary_that_is_the_journal_itself(tmp_path, busy_ok):
    _io.atomic_write_all({tmp_path / "e.safetensors": b"tensors", tmp_path / "e.json": b"sidecar"})
    rows = [["e.safetensors", "1" * 64, None, True], ["e.json", "1" * 64, None, True]]  # a write of other bytes
    (journal := tmp_path / ".e.json.neuroview-journal").write_text(json.dumps({"owner": None, "files": rows}))
    os.link(journal, tmp_path / ".e.json.neuroview-journal.5a5a5a5a.tmp")  # killed before it unlinked its temporary
    _io.recover(tmp_path / "e.json", busy_ok=busy_ok)  # a load (busy_ok) or recover(): the journal's lock is free
    assert sorted(os.listdir(tmp_path)) == ["e.json", "e.safetensors"]
    assert (tmp_path / "e.json").read_bytes() == b"sidecar" and (tmp_path / "e.safetensors").read_bytes() == b"tensors"


def test_a_journal_temporary_removed_before_its_writer_locked_it_is_made_again(tmp_path, monkeypatch):
    """Another save's clean-up removes a journal temporary whose lock it can take: between its mkstemp and its lock a
    running writer's is one such. The writer, once it holds the lock, finds its name gone and makes another."""
    real, taken = _io._lock, []

    def a_settle_got_there_first(fd, block=False):
        if not taken:  # the first lock is the journal temporary's: an unlocked .neuroview-journal.<8>.tmp, removed
            taken.append(os.readlink(f"/proc/self/fd/{fd}"))
            os.unlink(taken[0])
        return real(fd, block)

    monkeypatch.setattr(_io, "_lock", a_settle_got_there_first)
    _io.atomic_write_all({tmp_path / "e.safetensors": b"tensors", tmp_path / "e.json": b"sidecar"})
    assert ".e.json.neuroview-journal." in taken[0]
    assert sorted(os.listdir(tmp_path)) == ["e.json", "e.safetensors"]
    assert (tmp_path / "e.json").read_bytes() == b"sidecar" and (tmp_path / "e.safetensors").read_bytes() == b"tensors"
