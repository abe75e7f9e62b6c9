"""A received ``manifest.json``, explanation sidecar or write journal nested deeper than Python's JSON reader goes
(probe s18, P6 finding 7) gave a bare ``RecursionError`` traceback (``neuroview zoo`` exited 1): such a file is
refused as the files cut short or malformed are, "not readable JSON", by the argument's name."""

from __future__ import annotations

import json
import os

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview import _io
from neuroview.zoo.manifest_io import read_document

DEEP = "[" * 200_000 + "]" * 200_000  # far past the recursion limit, whatever it is set to


def test_json_this_deep_is_past_python_s_reader():
    with pytest.raises(RecursionError):
        json.loads(DEEP)


def test_a_deeply_nested_manifest_is_not_readable_json(tmp_path, capsys):
    from neuroview.zoo.cli import main as zoo_main

    (tmp_path / "manifest.json").write_text('{"format": 1, "entries": ' + DEEP + "}")
    with pytest.raises(ValueError, match=r"^root: expected a neuroview manifest \(JSON\) in .*not readable JSON "
                                         r"\(RecursionError"):
        read_document(tmp_path / "manifest.json")
    assert zoo_main(["--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not readable JSON" in err and "Traceback" not in err, err


def _explanation():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()
    return net.explain(torch.rand(5, 1, 8, 8))


def test_a_deeply_nested_sidecar_is_not_valid_json(tmp_path):
    _explanation().save(tmp_path / "e")
    (tmp_path / "e.json").write_text(DEEP)
    with pytest.raises(ValueError, match=r"^path: .*e\.json is not valid JSON \(maximum recursion depth"):
        nv.Explanation.load(tmp_path / "e")


def test_saving_over_a_deeply_nested_sidecar_says_it_is_no_explanation_s(tmp_path):
    """save() asks whether the files in the way are an earlier explanation's: that one is not."""
    (tmp_path / "e.json").write_text(DEEP)
    with pytest.raises(FileExistsError, match=r"^path: .*e\.json exists and is no neuroview explanation's"):
        _explanation().save(tmp_path / "e")
    assert (tmp_path / "e.json").read_text() == DEEP


def test_a_deeply_nested_journal_is_refused_and_nothing_is_touched(tmp_path):
    """neuroview leaves a journal empty (its placeholder) or whole, never JSON its reader cannot read: refused by name."""
    (tmp_path / "last.json").write_text("the last file\n")
    (tmp_path / "other.bin").write_text("another file\n")
    (tmp_path / ".last.json.neuroview-journal").write_text(DEEP)
    with pytest.raises(_io.Received, match=r"\.last\.json\.neuroview-journal, the journal of a killed write, is not as "
                                           r"neuroview writes one: .*, got 400000 bytes that are not readable JSON "
                                           r"\(RecursionError: maximum recursion depth exceeded"):
        _io.recover(tmp_path / "last.json", busy_ok=True)
    assert sorted(os.listdir(tmp_path)) == [".last.json.neuroview-journal", "last.json", "other.bin"]
    assert (tmp_path / ".last.json.neuroview-journal").read_text() == DEEP