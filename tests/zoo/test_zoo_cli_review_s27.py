"""``neuroview zoo`` on a hand-edited manifest whose entry is not a dict (review R7 finding 5: a bare AttributeError
from ``format_table``, nothing of the folder listed): the other entries are listed, that row shows ``?``, and
``--verify`` names the entry as failed and exits 1, not a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from neuroview.zoo import cli

ZOO = Path(__file__).resolve().parents[2] / "checkpoints"


@pytest.fixture
def zoo(tmp_path):
    doc = json.loads((ZOO / "manifest.json").read_text(encoding="utf-8"))
    keep = "fcn1d.gunpoint"
    doc["entries"] = {keep: doc["entries"][keep], "zz.handedit": "see fcn1d.gunpoint", "zz.none": None}
    shutil.copy(ZOO / f"{keep}.safetensors", tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(doc), encoding="utf-8")
    return tmp_path


def test_format_table_shows_an_entry_that_is_no_dict_as_a_row_of_question_marks():
    out = cli.format_table({"a.b": "text", "c.d": None, "e.f": {"dataset": {"name": "gunpoint"}}})
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    assert rows["a.b"] == ["?"] * 6 and rows["c.d"] == ["?"] * 6
    assert rows["e.f"][0] == "gunpoint"


def test_neuroview_zoo_lists_a_manifest_with_an_entry_that_is_no_dict(zoo, capsys):
    assert cli.main(["--root", str(zoo)]) == 0
    out = capsys.readouterr().out
    assert "fcn1d.gunpoint" in out and "gunpoint" in out.split("fcn1d.gunpoint", 1)[1].splitlines()[0]
    line = next(ln for ln in out.splitlines() if ln.startswith("zz.handedit"))
    assert line.split()[1:] == ["?"] * 6


def test_verify_names_an_entry_that_is_no_dict_and_fails(zoo, capsys):
    assert cli.main(["--root", str(zoo), "--verify", "zz.*"]) == 1
    err = capsys.readouterr().err
    assert "FAILED zz.handedit" in err and "FAILED zz.none" in err
    assert "expected the entry 'zz.handedit' of" in err and "manifest.json to be a JSON object, got str" in err
