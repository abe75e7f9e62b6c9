"""A weight file's own record of how it was built (``neuroview.arch_kwargs`` in its metadata) against the
manifest's ``arch_kwargs`` and against the model it is loaded into.

Weights fit a network by tensor names and shapes; ``quantizer`` or ``norm_floor`` change what it computes
without changing a shape. A manifest edited to another quantizer loaded ``nv_small_cnn.digits`` without
error (logits off by up to 16) and ``neuroview zoo --verify`` passed it; ``load_weights`` into a network
built with the defaults (``hard``) took the entry's ``soft``-trained weights the same way.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import neuroview as nv
from neuroview.training.module import load_weights as init_weights
from neuroview.zoo import pretrained as zoo
from neuroview.zoo import weights as zw

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "checkpoints"
ENTRIES = zoo.read_manifest(ZOO) if (ZOO / "manifest.json").is_file() else {}
DIGITS = "nv_small_cnn.digits"
needs_digits = pytest.mark.skipif(DIGITS not in ENTRIES, reason="the shipped zoo is not in this checkout")


def _copy(tmp_path: Path, edit) -> Path:
    """A zoo folder holding a copy of the digits entry whose manifest entry ``edit`` changed."""
    entry = json.loads(json.dumps(ENTRIES[DIGITS]))
    shutil.copyfile(ZOO / entry["file"], tmp_path / entry["file"])
    edit(entry["arch_kwargs"])
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 1, "entries": {DIGITS: entry}}))
    return tmp_path


def _hard_no_floor(kw: dict) -> None:
    kw["quantizer"] = "hard"
    kw.pop("norm_floor")


@needs_digits
def test_a_manifest_that_disagrees_with_the_file_is_refused_and_fails_verify(tmp_path, capsys):
    root = _copy(tmp_path, _hard_no_floor)
    with pytest.raises(zoo.ArchitectureError, match=r"nv_small_cnn.digits: nv_small_cnn.digits.safetensors was trained "
                       r"with other arguments than the manifest's arch_kwargs say \(norm_floor: file 0(\.0)?, manifest 0.1 "
                       r"\(not given: the default\), quantizer: file 'soft', manifest 'hard'\)"):
        nv.create_model(DIGITS, pretrained=True, root=root)
    from neuroview.cli import main

    assert main(["zoo", "--verify", "--root", str(root)]) == 1
    captured = capsys.readouterr()
    assert f"FAILED {DIGITS}:" in captured.err and "quantizer: file 'soft', manifest 'hard'" in captured.err
    assert "verified 0/1" in captured.out


@needs_digits
def test_the_same_arguments_spelled_otherwise_still_load(tmp_path):
    """A JSON round trip (tuple and list, 0 and 0.0) and a default written out on one side only build the
    same network: they must not be refused."""
    def respell(kw: dict) -> None:
        kw["norm_floor"] = float(kw["norm_floor"]) if isinstance(kw["norm_floor"], int) else int(kw["norm_floor"])
        kw["tau"] = 1  # NeuroViewCNN's default (1.0), which the file does not record
        kw["stop_early"] = False  # how fast, not what: never compared

    root = _copy(tmp_path, respell)
    net = nv.create_model(DIGITS, pretrained=True, root=root)
    assert net.quantizer == "soft"
    saved, manifest = _file_kwargs(ZOO / ENTRIES[DIGITS]["file"]), ENTRIES[DIGITS]["arch_kwargs"]
    defaults = zw.arch_defaults("nv_small_cnn")
    assert zw.arch_clash({**saved, "widths": tuple(saved["widths"])}, manifest, defaults) == {}
    assert zw.arch_clash(saved, {**manifest, "quantizer": "hard"}, defaults) == {"quantizer": ("soft", "hard")}


def _file_kwargs(path: Path) -> dict:
    with safe_open(str(path), "pt") as f:
        return json.loads((f.metadata() or {}).get("neuroview.arch_kwargs", "{}"))


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_every_shipped_file_records_the_arguments_of_its_manifest_entry(name):
    entry = ENTRIES[name]
    assert zw.arch_clash(_file_kwargs(ZOO / entry["file"]), entry["arch_kwargs"], zw.arch_defaults(entry["architecture"])) == {}


@needs_digits
def test_load_weights_refuses_weights_trained_as_another_configuration():
    trained = nv.create_model(DIGITS, pretrained=True)
    x = torch.rand(4, 1, 8, 8)
    path = ZOO / ENTRIES[DIGITS]["file"]
    for load in (zoo.load_weights, zw.load_weights, init_weights):
        net = nv.create_model("nv_small_cnn")  # the architecture's defaults: quantizer 'hard', norm_floor 0.1
        net(x[:2])
        before = {k: v.clone() for k, v in net.state_dict().items()}
        with pytest.raises(zoo.ArchitectureError, match=r"was trained as a network built with other arguments \(norm_floor: "
                           r"file 0(\.0)?, model 0.1, quantizer: file 'soft', model 'hard'\); build the model with "
                           r"norm_floor=0(\.0)?, quantizer='soft'"):
            load(net, path)
        assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items()), "a refused load changed the model"
    # built as the file says, the same weights load and compute what the zoo entry does
    net = nv.create_model("nv_small_cnn", **ENTRIES[DIGITS]["arch_kwargs"])
    net(x[:2])
    zoo.load_weights(net, path)
    with torch.no_grad():
        assert torch.allclose(net.eval()(x), trained(x), atol=1e-5)


def test_a_file_that_records_no_arguments_loads_as_before(tmp_path):
    from safetensors.torch import save_file

    net = nv.create_model("nv_small_cnn", widths=(8,), quantizer="soft")
    net(torch.rand(2, 1, 8, 8))
    save_file(net.state_dict(), tmp_path / "w.safetensors", metadata={"neuroview.architecture": "nv_small_cnn"})
    other = nv.create_model("nv_small_cnn", widths=(8,))
    other(torch.rand(2, 1, 8, 8))
    zoo.load_weights(other, tmp_path / "w.safetensors")  # nothing to compare: the shapes alone decide
