"""A copy of a zoo entry's file from before its metadata recorded ``norm_floor`` (the shipped nv_small_cnn files
before 1577611), loaded outside its zoo folder: built with the default floor 0.1 it computed another function, silently.

A file that names an installed zoo entry (``neuroview.name``) and leaves out a setting the entry records is that
entry when its tensors are the entry's own (it loads with the entry's setting); otherwise its setting is unknown, and
the load is refused naming the setting and ``arch_kwargs=``, which supplies it. Files that record it load as before.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import neuroview as nv
from neuroview.zoo.weights import ArchitectureError, build_facts, load_weights

NAME, ARCH = "nv_small_cnn.toy", "nv_small_cnn"
KW = {"in_channels": 1, "num_classes": 3, "quantizer": "soft", "widths": [4]}
X = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _net(**kw):
    torch.manual_seed(1)
    net = nv.create_model(ARCH, **KW, **kw)
    net.eval()(X)  # its sites and head are built on a first batch
    return net


def _trained_state(floor: float) -> dict:
    """A network's tensors whose variances differ enough that a floor of 0.1 moves its logits."""
    net = _net(norm_floor=floor)
    with torch.no_grad():
        var = net.norm.running_var
        var.copy_(torch.linspace(1e-4, 2.0, len(var)))  # small variances: clamped by a 0.1 floor, not by 0
        net.norm.running_mean.copy_(torch.linspace(-0.2, 0.2, len(var)))
    return {k: v.clone() for k, v in net.state_dict().items()}


def _write(path, state: dict, kwargs: dict, name: str = NAME) -> str:
    meta = {"neuroview.architecture": ARCH, "neuroview.arch_kwargs": json.dumps(kwargs), "neuroview.name": name}
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata=meta)
    return str(path)


def _reference(state: dict, floor: float) -> torch.Tensor:
    """Logits of the tensors in a network built with ``floor``, loaded by torch itself (no neuroview check)."""
    net = _net(norm_floor=floor)
    net.load_state_dict(state)
    with torch.no_grad():
        return net.eval()(X)


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """An installed zoo of one entry trained with ``norm_floor: 0.0``, its file recording it (as shipped now)."""
    root = tmp_path / "zoo"
    root.mkdir()
    state = _trained_state(0.0)
    _write(root / f"{NAME}.safetensors", state, {**KW, "norm_floor": 0.0})
    entry = {"architecture": ARCH, "arch_kwargs": {**KW, "norm_floor": 0.0}, "file": f"{NAME}.safetensors"}
    (root / "manifest.json").write_text(json.dumps({"format": 1, "entries": {NAME: entry}}))
    monkeypatch.setenv("NEUROVIEW_CHECKPOINTS", str(root))
    return state


def test_the_floor_matters_here(zoo):
    # the case can fail: the two floors give logits far apart
    assert (_reference(zoo, 0.0) - _reference(zoo, 0.1)).abs().max() > 0.05


def test_an_old_copy_of_the_entry_loads_with_the_entry_floor(zoo, tmp_path):
    old = _write(tmp_path / "copy.safetensors", zoo, KW)  # the same tensors, its record without norm_floor
    net = load_weights(_net(norm_floor=0.0), old)  # was refused: "file 0.1 (not given: the default), model 0.0"
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(X), _reference(zoo, 0.0), rtol=0, atol=0)
    # what `neuroview explain --weights` builds the network from: the entry's floor, not the default
    assert build_facts(old) == (ARCH, {**KW, "norm_floor": 0.0})
    from neuroview.viz.report import _built_as
    assert _built_as(old, ARCH, {})["norm_floor"] == 0.0


def test_an_old_copy_into_a_default_built_network_is_refused_by_name(zoo, tmp_path):
    old = _write(tmp_path / "copy.safetensors", zoo, KW)
    net = _net()  # the default floor 0.1: it loaded silently, logits up to 0.8 off
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ArchitectureError, match=r"norm_floor: file 0\.0 \(from its zoo entry 'nv_small_cnn\.toy'.*model 0\.1") as e:
        load_weights(net, old)
    assert e.value.fits
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # nothing copied


def test_other_weights_naming_the_entry_without_the_setting_are_refused(zoo, tmp_path):
    other = _trained_state(0.1)  # another network's weights (an earlier release of a later-refitted entry)
    other["classifier.weight"] = other["classifier.weight"] + 1.0
    path = _write(tmp_path / "other.safetensors", other, KW)
    for floor in (0.0, 0.1):  # neither guess is taken
        with pytest.raises(ArchitectureError, match=r"does not record norm_floor.*nv_small_cnn\.toy.*0\.0.*"
                                                    r"arch_kwargs=\{'norm_floor': \.\.\.\}"):
            load_weights(_net(norm_floor=floor), path)
    assert build_facts(path) == (ARCH, KW)  # the file's record as it is; the load names what it lacks
    # told what it was trained with, it loads as that
    net = load_weights(_net(), path, arch_kwargs={"norm_floor": 0.1})
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(X), _reference(other, 0.1), rtol=0, atol=0)
    with pytest.raises(ArchitectureError, match=r"norm_floor: file 0\.1.*model 0\.0"):
        load_weights(_net(norm_floor=0.0), path, arch_kwargs={"norm_floor": 0.1})


def test_arch_kwargs_must_agree_with_what_the_file_records(zoo, tmp_path):
    path = _write(tmp_path / "now.safetensors", zoo, {**KW, "norm_floor": 0.0})
    with pytest.raises(ArchitectureError, match=r"arch_kwargs: .*records norm_floor=0\.0, arch_kwargs gives 0\.1"):
        load_weights(_net(), path, arch_kwargs={"norm_floor": 0.1})


def test_files_that_record_their_settings_load_as_before(zoo, tmp_path):
    path = _write(tmp_path / "now.safetensors", zoo, {**KW, "norm_floor": 0.0})
    net = load_weights(_net(norm_floor=0.0), path)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(X), _reference(zoo, 0.0), rtol=0, atol=0)
    with pytest.raises(ArchitectureError, match=r"norm_floor: file 0\.0, model 0\.1"):
        load_weights(_net(), path)
    # a file naming no installed entry: its record is the whole story, as before (absent = the default)
    plain = _write(tmp_path / "mine.safetensors", _trained_state(0.1), KW, name="mine.digits")
    load_weights(_net(), plain)


def test_the_shipped_digits_file_as_it_was_before_it_recorded_its_floor(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROVIEW_CHECKPOINTS", raising=False)
    from neuroview.zoo.pretrained import get_entry
    from neuroview.zoo.weights import read_weights

    full, entry = get_entry("nv_small_cnn.digits")
    src = nv.zoo.files.checkpoints_dir() / entry["file"]
    tensors, meta = read_weights(src)
    kw = json.loads(meta["neuroview.arch_kwargs"])
    assert kw.pop("norm_floor") == 0.0
    old = tmp_path / "nv_small_cnn.digits.safetensors"  # its tensors unchanged since: only the record lacked the floor
    save_file(tensors, str(old), metadata={**meta, "neuroview.arch_kwargs": json.dumps(kw)})
    with pytest.raises(ArchitectureError, match="norm_floor: file 0.0"):
        load_weights(nv.create_model(ARCH, **kw), old)
    arch, facts = build_facts(old)
    assert facts["norm_floor"] == 0.0
    net = load_weights(nv.create_model(arch, **facts), old).eval()
    ref = nv.create_model(full, pretrained=True).eval()
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 16
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref(x), rtol=0, atol=0)
