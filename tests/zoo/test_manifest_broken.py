"""A broken ``manifest.json`` is an error that names it: JSON cut short gave the decoder's bare message
(no file, no ``--root``), an entry without ``architecture`` a bare ``KeyError`` traceback out of
``neuroview zoo --verify``."""

from __future__ import annotations

import json

import pytest
import torch

import neuroview as nv
from neuroview.cli import main
from neuroview.zoo import pretrained as zoo


def _tiny_entry(root) -> dict:
    torch.manual_seed(0)
    net = nv.create_model("small_cnn", widths=[8])
    return zoo.save_pretrained(net, "small_cnn.tiny", architecture="small_cnn", arch_kwargs={"widths": [8]},
                               dataset={"name": "none"}, recipe=None, seed=0, metrics={}, root=root)


def test_a_manifest_cut_short_names_the_file(tmp_path, capsys):
    _tiny_entry(tmp_path)
    path = tmp_path / "manifest.json"
    path.write_text(path.read_text()[:40])
    with pytest.raises(ValueError, match=r"root: expected a neuroview manifest \(JSON\) in .*manifest.json, got a file that "
                       r"is not readable JSON \(JSONDecodeError: "):
        zoo.read_manifest(tmp_path)
    with pytest.raises(ValueError, match=r"manifest.json, got a file that is not readable JSON"):
        nv.create_model("small_cnn.tiny", pretrained=True, root=tmp_path)
    assert main(["zoo", "--verify", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"neuroview zoo: root: expected a neuroview manifest (JSON) in {path}") and "\n" not in err


@pytest.mark.parametrize("key", ["architecture", "arch_kwargs", "file"])
def test_an_entry_without_a_required_key_names_the_manifest_and_the_entry(tmp_path, capsys, key):
    _tiny_entry(tmp_path)
    path = tmp_path / "manifest.json"
    data = json.loads(path.read_text())
    del data["entries"]["small_cnn.tiny"][key]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"root: the entry 'small_cnn.tiny' of .*manifest.json has no '{key}' \(expected "
                       r"'architecture', 'arch_kwargs' and 'file'\)"):
        zoo.load_pretrained("small_cnn.tiny", root=tmp_path)
    assert main(["zoo", "--verify", "--root", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith(f"FAILED small_cnn.tiny: root: the entry 'small_cnn.tiny' of {path} has no '{key}'")
    assert "verified 0/1" in captured.out


def test_an_entry_whose_arch_kwargs_is_no_object_is_named(tmp_path):
    _tiny_entry(tmp_path)
    path = tmp_path / "manifest.json"
    data = json.loads(path.read_text())
    data["entries"]["small_cnn.tiny"]["arch_kwargs"] = [8]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"root: the entry 'small_cnn.tiny' of .*manifest.json: expected a string "
                       r"'architecture' and an object 'arch_kwargs', got 'small_cnn' and \[8\]"):
        zoo.load_pretrained("small_cnn.tiny", root=tmp_path)
