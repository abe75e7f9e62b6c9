"""Exports that keep the zoo folder whole: an interrupted ``save_pretrained`` destroyed the entry it was
replacing (new weights, old sha256 in the manifest: ChecksumError); the manifest lock lived in ``$TMPDIR``,
so jobs with different ones lost each other's entries; an export replaced another entry's (or no entry's)
weight file without a word; keys added by hand to the manifest were dropped; ``refuse_existing`` found a
broken manifest (under ``--overwrite``) or an ``--out`` below a file only after the work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import neuroview as nv
from neuroview.cli import main as cli
from neuroview.zoo import pretrained as zoo

KW = {"widths": [8]}


def _net(seed: int):
    torch.manual_seed(seed)
    return nv.create_model("small_cnn", **KW).eval()


def _save(net, name, root, overwrite=False):
    return zoo.save_pretrained(net, name, architecture="small_cnn", arch_kwargs=KW, dataset={"name": "none"},
                               recipe=None, seed=0, metrics={}, root=root, overwrite=overwrite)


def _files(root) -> set[str]:
    return {p for p in os.listdir(root) if p != ".manifest.lock"}


def _interrupt_manifest_writes(monkeypatch):
    import neuroview._io as io  # every file is written by its one writer

    real = io.atomic_write

    def flaky(path, data):
        if path.name == "manifest.json":
            raise KeyboardInterrupt("Ctrl-C while writing the manifest")
        return real(path, data)

    monkeypatch.setattr(io, "atomic_write", flaky)


def test_an_interrupted_export_keeps_the_entry_it_was_replacing(tmp_path, monkeypatch):
    old = _net(0)
    _save(old, "small_cnn.x", tmp_path)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        want = old(x)
    _interrupt_manifest_writes(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        _save(_net(1), "small_cnn.x", tmp_path, overwrite=True)
    monkeypatch.undo()
    with torch.no_grad():
        got = zoo.load_pretrained("small_cnn.x", root=tmp_path)(x)  # was a ChecksumError: the old weights were gone
    torch.testing.assert_close(got, want)
    assert _files(tmp_path) == {"manifest.json", "small_cnn.x.safetensors"}  # no temporary file left


def test_an_interrupted_export_of_a_new_entry_leaves_no_orphan_file(tmp_path, monkeypatch):
    _save(_net(0), "small_cnn.x", tmp_path)
    _interrupt_manifest_writes(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        _save(_net(1), "small_cnn.y", tmp_path)
    monkeypatch.undo()
    assert _files(tmp_path) == {"manifest.json", "small_cnn.x.safetensors"}  # was: small_cnn.y.safetensors, unlisted
    assert zoo.list_pretrained(root=tmp_path) == ["small_cnn.x"]


def test_the_manifest_lock_holds_between_processes_with_other_tmpdirs(tmp_path, monkeypatch):
    root, mine, theirs = tmp_path / "zoo", tmp_path / "tmp_a", tmp_path / "tmp_b"
    mine.mkdir(), theirs.mkdir()
    _save(_net(0), "small_cnn.x", root)
    (root / ".manifest.lock").unlink(missing_ok=True)
    zoo.load_pretrained("small_cnn.x", root=root)
    assert not (root / ".manifest.lock").exists()  # reading the zoo creates nothing in it
    child = textwrap.dedent(f"""
        import torch; torch.set_num_threads(1)
        import neuroview as nv
        from neuroview.zoo import pretrained as zoo
        zoo.versions()  # its imports are slow: done before 'ready', so only the lock can hold the export up
        torch.manual_seed(1); net = nv.create_model("small_cnn", widths=[8])
        print("ready", flush=True)
        zoo.save_pretrained(net, "small_cnn.y", architecture="small_cnn", arch_kwargs={{"widths": [8]}},
                            dataset={{}}, recipe=None, seed=1, metrics={{}}, root={str(root)!r})
        print("saved", flush=True)
    """)
    monkeypatch.setattr("tempfile.tempdir", str(mine))
    with zoo._locked(root):  # this process exports (holds the lock) with $TMPDIR=tmp_a, the child with tmp_b
        proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "TMPDIR": str(theirs)})
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.5)
        assert proc.poll() is None, "the child wrote the manifest while this process held its lock"
        assert zoo.list_pretrained(root=root) == ["small_cnn.x"]
    assert proc.stdout.readline().strip() == "saved" and proc.wait(timeout=60) == 0
    assert zoo.list_pretrained(root=root) == ["small_cnn.x", "small_cnn.y"]


def test_an_export_never_replaces_another_entrys_weight_file(tmp_path):
    net = _net(0)
    _save(net, "small_cnn.a", tmp_path)
    doc = json.loads((tmp_path / "manifest.json").read_text())
    doc["entries"]["small_cnn.best"] = doc["entries"].pop("small_cnn.a")  # renamed by hand: the file keeps its name
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    before = (tmp_path / "small_cnn.a.safetensors").read_bytes()
    msg = r"small_cnn.a.safetensors to be free or the weight file of 'small_cnn.a', got the weight file of the entry " \
          r"'small_cnn.best'"
    with pytest.raises(ValueError, match=r"out: expected .*" + msg):
        zoo.refuse_existing(tmp_path, ["small_cnn.a"], overwrite=True)  # overwrite asks for small_cnn.a, not .best
    with pytest.raises(ValueError, match=r"name: expected .*" + msg):
        _save(_net(1), "small_cnn.a", tmp_path)
    assert (tmp_path / "small_cnn.a.safetensors").read_bytes() == before
    zoo.load_pretrained("small_cnn.best", root=tmp_path)  # was a ChecksumError: its weights had been replaced


def test_an_export_never_replaces_a_file_no_entry_lists(tmp_path):
    (tmp_path / "small_cnn.b.safetensors").write_bytes(b"someone's weights")
    with pytest.raises(ValueError, match=r"out: .*small_cnn.b.safetensors .*no entry of .*manifest.json lists \(no entry"):
        zoo.refuse_existing(tmp_path, ["small_cnn.b"], overwrite=False)
    with pytest.raises(ValueError, match=r"name: .*small_cnn.b.safetensors .*no entry: an orphan\); move it away"):
        _save(_net(0), "small_cnn.b", tmp_path)
    assert (tmp_path / "small_cnn.b.safetensors").read_bytes() == b"someone's weights"
    _save(_net(0), "small_cnn.c", tmp_path)  # the entry's own file, replaced again: as before
    _save(_net(1), "small_cnn.c", tmp_path, overwrite=True)
    assert zoo.list_pretrained(root=tmp_path) == ["small_cnn.c"]


def test_an_export_keeps_the_keys_added_to_the_manifest_by_hand(tmp_path):
    _save(_net(0), "small_cnn.a", tmp_path)
    doc = json.loads((tmp_path / "manifest.json").read_text())
    doc.update(description="our lab's zoo", maintainer="someone")
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    _save(_net(1), "small_cnn.b", tmp_path)
    after = json.loads((tmp_path / "manifest.json").read_text())
    assert after["description"] == "our lab's zoo" and after["maintainer"] == "someone"  # were dropped
    assert sorted(after["entries"]) == ["small_cnn.a", "small_cnn.b"] and after["format"] == 1


def test_refuse_existing_finds_a_broken_manifest_under_overwrite(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text('{"format": 1, "entries": {')  # cut short
    with pytest.raises(ValueError, match=r"root: expected a neuroview manifest \(JSON\) in .*manifest.json"):
        zoo.refuse_existing(tmp_path, ["nv_minirocket.x"], overwrite=True)  # was found only after the work
    assert cli(["minirocket", "--data", "ItalyPowerDemand", "--out", str(tmp_path), "--overwrite"]) == 2
    assert "not readable JSON" in capsys.readouterr().err


def test_refuse_existing_finds_an_out_below_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("precious")
    out = tmp_path / "afile" / "sub"
    for overwrite in (False, True):
        with pytest.raises(ValueError, match=r"out: expected a folder to write zoo entries into, got '.*afile/sub', "
                                             r"which cannot be made: '.*afile' is a file"):
            zoo.refuse_existing(out, ["nv_minirocket.x"], overwrite=overwrite)  # was a NotADirectoryError after the work
    assert cli(["minirocket", "--data", "ItalyPowerDemand", "--out", str(out)]) == 2
    assert "which cannot be made" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "precious"
