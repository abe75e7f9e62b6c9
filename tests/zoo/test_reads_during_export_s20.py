"""Readers of a zoo folder while another process exports into it (probe P8, findings 4 and 7).

- ``load_pretrained`` read the manifest, then the entry's file: an overwrite of the entry landing between the two
  readings (or under way: new weights in, the manifest not yet) was refused as "the file is corrupted or was
  replaced", about 12% of loads in a race, where docs/ERRORS.md promises no error during an export. Now the pair is
  read again while it changed or an export is under way, and only a pair that stays apart is called corrupted.
- ``neuroview zoo --root R`` read the manifest twice (the table's entries, then the names): an entry added in between
  was a bare ``KeyError``. Now it reads it once.

The networks are hand-set: every parameter 1.0 (the first export) or 2.0 (the second), and each entry's metrics
carry that tag, so a load says by itself which export it read, and whether its weights and its entry belong together.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading

import pytest
import torch

import neuroview as nv
import neuroview._io as io
from neuroview.zoo import pretrained as zoo

KW = {"in_channels": 1, "num_classes": 3, "widths": [4, 8]}
NAME = "nv_small_cnn.race"


def _net(value: float):
    net = nv.create_model("nv_small_cnn", **KW).eval()
    net(torch.randn(2, 1, 8, 8))  # its sites and head built
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(value)
    return net


def _save(value: float, root, name: str = NAME):
    zoo.save_pretrained(_net(value), name, architecture="nv_small_cnn", arch_kwargs=KW, dataset={"name": "none"},
                        recipe=None, seed=None, metrics={"tag": value}, root=root, overwrite=True)


def _values(model) -> set[float]:
    return {float(v) for p in model.parameters() for v in p.detach().flatten().unique()}


def test_a_load_whose_entry_is_overwritten_between_its_two_readings_loads_the_new_entry_whole(tmp_path, monkeypatch):
    _save(1.0, tmp_path)
    real, calls = zoo.read_weights, []

    def other_process_exports_first(path, *args, **kwargs):  # the manifest (tag 1) is read; then the export lands
        calls.append(path)
        if len(calls) == 1:
            _save(2.0, tmp_path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(zoo, "read_weights", other_process_exports_first)
    model = zoo.load_pretrained(NAME, root=tmp_path, _probe=False)  # was ChecksumError: "corrupted or was replaced"
    assert model.pretrained_cfg["metrics"]["tag"] == 2.0 and _values(model) == {2.0}  # the new entry, whole
    assert len(calls) == 2


def test_a_load_during_an_export_waits_for_its_manifest_rather_than_calling_the_file_corrupted(tmp_path, monkeypatch):
    _save(1.0, tmp_path)
    real, weights_in, go = io.atomic_write, threading.Event(), threading.Event()

    def slow_manifest(path, data):  # the export holds here: its new weights in place, the manifest still the old one
        if path.name == "manifest.json":
            weights_in.set()
            assert go.wait(30)
        return real(path, data)

    monkeypatch.setattr(io, "atomic_write", slow_manifest)
    writer = threading.Thread(target=_save, args=(2.0, tmp_path))
    writer.start()
    try:
        assert weights_in.wait(30)
        assert (tmp_path / f"{NAME}.safetensors").read_bytes() != b""  # replaced already; the manifest names the old
        threading.Timer(0.3, go.set).start()  # the export ends while the load is under way
        model = zoo.load_pretrained(NAME, root=tmp_path, _probe=False)
    finally:
        go.set()
        writer.join(30)
    assert model.pretrained_cfg["metrics"]["tag"] == 2.0 and _values(model) == {2.0}


@pytest.mark.parametrize("journal", [None, "other entry's export"])
def test_a_file_that_stays_unlike_its_manifest_entry_is_still_refused_as_corrupted(tmp_path, monkeypatch, journal):
    _save(1.0, tmp_path)
    other = tmp_path / "other"
    _save(2.0, other)
    (tmp_path / f"{NAME}.safetensors").write_bytes((other / f"{NAME}.safetensors").read_bytes())  # replaced by hand
    held = None
    if journal:  # an export of another entry under way in the folder (a live writer holds its journal): not this one
        path = tmp_path / ".manifest.json.neuroview-journal"
        path.write_text(json.dumps({"owner": io._owner(), "files": [["nv_other.safetensors", "0" * 64, None, False],
                                                                   ["manifest.json", "0" * 64, None, True]]}))
        held = os.open(path, os.O_RDWR)
        fcntl.flock(held, fcntl.LOCK_EX)  # as atomic_write_all holds it while it writes
    waits = []
    monkeypatch.setattr(zoo.time, "sleep", waits.append)
    try:
        with pytest.raises(zoo.ChecksumError, match="the file is corrupted or was replaced, so it is not loaded"):
            zoo.load_pretrained(NAME, root=tmp_path, _probe=False)
    finally:
        if held is not None:
            os.close(held)
    assert len(waits) <= 1  # one reading again at most, not the 3 s of an export's


def test_zoo_listing_reads_the_manifest_once_while_an_export_adds_entries(tmp_path, monkeypatch, capsys):
    from neuroview.zoo.cli import main as zoo_main

    _save(1.0, tmp_path, "nv_small_cnn.e0")
    real, added = zoo.read_document, []

    def export_after_each_reading(path):  # another process adds an entry right after every reading of the manifest
        doc = real(path)
        if not added:
            added.append(True)
            _save(2.0, tmp_path, f"nv_small_cnn.e{len(added)}")
            added.clear()
        return doc

    monkeypatch.setattr(zoo, "read_document", export_after_each_reading)
    assert zoo_main(["--root", str(tmp_path)]) == 0  # was a bare KeyError: 'nv_small_cnn.e1'
    out = capsys.readouterr().out
    assert "nv_small_cnn.e0" in out and "nv_small_cnn.e1" not in out  # the one reading's entries, whole
