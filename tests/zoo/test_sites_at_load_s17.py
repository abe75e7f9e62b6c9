"""A pretrained zoo NeuroView-CNN has its sites when it is created (session 17, fault 1).

``nv.create_model("nv_small_cnn.digits", pretrained=True).sites`` was None until the first batch, so the README's
``[(s.name, s.channels, s.axis) for s in net.sites]`` failed with a bare TypeError on a freshly loaded network. The
manifest now records each NeuroView-CNN entry's per-sample ``input_shape`` and loading finds the sites on it; the
network computes exactly what the lazy path (the same weights, sites found on the first real batch) computes.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import neuroview as nv
from neuroview import zoo
from neuroview.zoo.pretrained import checkpoints_dir, read_manifest

ENTRY = "nv_small_cnn.digits"


def _digits(n: int = 16) -> torch.Tensor:
    from sklearn.datasets import load_digits

    x = torch.as_tensor(load_digits().images[:n], dtype=torch.float32)[:, None]
    return (x - x.mean()) / x.std()


def test_a_pretrained_cnn_has_its_sites_at_creation_as_the_readme_reads_them():
    net = nv.create_model(ENTRY, pretrained=True)
    rows = [(s.name, s.channels, s.axis) for s in net.sites]  # the README's line: a TypeError before
    # the SmallCNN of widths (32, 64, 128): one ReLU a block, channels first
    assert rows == [("features.0.2", 32, 1), ("features.2.2", 64, 1), ("features.4.2", 128, 1)]
    assert net.input_shape == (1, 8, 8) and not net.training
    assert len(net.units) == 32 + 64 + 128


def test_finding_the_sites_at_load_changes_nothing_the_lazy_path_computes():
    entry = read_manifest()[ENTRY]
    state = load_file(str(checkpoints_dir() / entry["file"]))
    torch.manual_seed(123)
    eager = nv.create_model(ENTRY, pretrained=True)
    assert eager.sites is not None  # found at load, on the entry's input_shape
    after = torch.rand(3)  # the caller's random state is not drawn from by the load's probe batch
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))
    # no parameter changed, no statistic moved: every tensor is the file's, bit for bit
    got = eager.state_dict()
    assert all(torch.equal(got[k], v) for k, v in state.items())
    lazy = nv.create_model("nv_small_cnn", **entry["arch_kwargs"]).eval()
    lazy.load_state_dict(state)
    assert lazy.sites is None  # built by hand, no shape known: the first batch finds the sites
    x = _digits()
    with torch.no_grad():
        a, b = eager(x), lazy(x)
    assert torch.equal(a, b)
    assert [(s.name, s.channels, s.axis) for s in eager.sites] == [(s.name, s.channels, s.axis) for s in lazy.sites]
    assert torch.equal(eager.explain(x).logits, a)


@pytest.mark.parametrize("name", sorted(n for n, e in read_manifest().items() if "input_shape" in e))
def test_every_recorded_cnn_entry_loads_with_its_sites(name):
    net = zoo.pretrained.load_pretrained(name)  # create_model(name, pretrained=True) goes through it
    assert net.sites is not None and net.input_shape == tuple(read_manifest()[name]["input_shape"])


def test_every_neuroview_cnn_entry_records_its_input_shape():
    for name, e in read_manifest().items():
        net = zoo.pretrained._build(e["architecture"], e["arch_kwargs"])
        is_cnn = any(isinstance(m, nv.NeuroViewCNN) for m in net.modules())
        assert ("input_shape" in e) == is_cnn, name


def test_save_pretrained_records_the_shape_and_a_bad_record_is_named(tmp_path):
    net = nv.create_model("nv_small_cnn", widths=(4,), num_classes=2).eval()
    net(torch.randn(3, 1, 6, 6))  # the sites, found on a first batch of 6x6 images
    zoo.pretrained.save_pretrained(net, "nv_small_cnn.toy", architecture="nv_small_cnn", arch_kwargs={"widths": [4], "num_classes": 2},
                        dataset={"name": "toy"}, recipe=None, seed=0, metrics={}, root=tmp_path)
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["entries"]["nv_small_cnn.toy"]["input_shape"] == [1, 6, 6]
    loaded = zoo.pretrained.load_pretrained("nv_small_cnn.toy", root=tmp_path)
    assert [s.channels for s in loaded.sites] == [4]
    x = torch.randn(5, 1, 6, 6)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    doc["entries"]["nv_small_cnn.toy"]["input_shape"] = [1, "6", 6]
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"nv_small_cnn.toy.*expected 'input_shape' a list of ints >= 1.*got \[1, '6', 6\]"):
        zoo.pretrained.load_pretrained("nv_small_cnn.toy", root=tmp_path)
    # a standard network records none and loads as before
    std = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    assert zoo.pretrained._input_shape(std) == {}
