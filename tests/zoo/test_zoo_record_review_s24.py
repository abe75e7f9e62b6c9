"""A loaded network's record after further loads (review R4 of 178231e, findings 1-4).

- ``pretrained_cfg`` describes the file last loaded: a third file, the entry's own bytes back (its record again), a
  file loaded into a sparsified copy;
- a file loaded into the entry's backbone module (not the network) restamps the network's record;
- ``nv.sparsify`` of a network loaded with another entry's file records that it was sparsified from what was loaded;
- ``create_model(entry, pretrained=True, layers=<the entry's own sites>)`` is the entry's network: the comparison is
  with the sites its network has, not with the signature's ``None``.

The expected records are written out here, never computed by the code's rule.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import neuroview as nv
from neuroview.zoo._checkpoint_args import given_clash
from neuroview.zoo._arguments import arch_defaults
from neuroview.zoo.pretrained import checkpoints_dir
from neuroview.zoo.weights import load_weights

ZOO = checkpoints_dir()
ENTRIES = json.loads((ZOO / "manifest.json").read_text())["entries"]
X = torch.randn(8, 1, 150, generator=torch.Generator().manual_seed(0))
BATCH = [(X, torch.arange(8) % 2)]


def _load(net, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_weights(net, ZOO / f"{name}.safetensors")


def _sparse(net):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nv.sparsify(net, BATCH, val=BATCH, tolerance=100.0)


# ---------------------------------------------------------------- finding 1: the record of the file last loaded
def test_a_second_and_third_file_are_each_recorded():
    net = nv.create_model("nv_lite.gunpoint", pretrained=True)
    _load(net, "nv_lite.italypowerdemand")
    assert net.pretrained_cfg == {"loaded_from": "nv_lite.italypowerdemand", "was": "nv_lite.gunpoint"}
    _load(net, "nv_lite.gunpoint_sparse")
    assert net.pretrained_cfg == {"loaded_from": "nv_lite.gunpoint_sparse", "was": "nv_lite.gunpoint"}


def test_the_entrys_own_file_back_gives_its_record_again():
    net = nv.create_model("nv_lite.gunpoint", pretrained=True)
    _load(net, "nv_lite.italypowerdemand")
    _load(net, "nv_lite.gunpoint")
    cfg = net.pretrained_cfg
    assert cfg["name"] == "nv_lite.gunpoint" and cfg["sha256"] == ENTRIES["nv_lite.gunpoint"]["sha256"]
    assert cfg["metrics"] == ENTRIES["nv_lite.gunpoint"]["metrics"]
    assert torch.equal(net(X), nv.create_model("nv_lite.gunpoint", pretrained=True)(X))


def test_a_file_loaded_into_a_sparsified_copy_replaces_its_record():
    sparse = _sparse(nv.create_model("nv_lite.gunpoint", pretrained=True))
    assert sparse.pretrained_cfg == {"sparsified_from": "nv_lite.gunpoint"}
    _load(sparse, "nv_lite.italypowerdemand")
    assert sparse.pretrained_cfg == {"loaded_from": "nv_lite.italypowerdemand", "was": "nv_lite.gunpoint"}
    _load(sparse, "nv_lite.gunpoint")  # the entry's own bytes: the network is the entry again
    assert sparse.pretrained_cfg["name"] == "nv_lite.gunpoint"
    assert sparse.pretrained_cfg["sha256"] == ENTRIES["nv_lite.gunpoint"]["sha256"]


def test_a_timm_style_record_that_is_not_the_zoos_is_left_alone():
    net = nv.create_model("nv_lite.gunpoint", pretrained=True)
    own = nv.create_model("nv_lite", num_classes=2, in_channels=1)
    own.pretrained_cfg = {"hf_hub_id": "x/y", "mean": (0.5,), "num_classes": 2}  # another library's record
    own(X[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_weights(own, ZOO / "nv_lite.gunpoint.safetensors")
    assert own.pretrained_cfg == {"hf_hub_id": "x/y", "mean": (0.5,), "num_classes": 2}
    assert torch.equal(own.eval()(X), net(X))


# ------------------------------------------------- finding 2: a file loaded into the entry's backbone module
def test_a_file_loaded_into_the_backbone_module_restamps_the_network():
    net = nv.create_model("nv_lite.gunpoint", pretrained=True)
    before = net(X)
    _load(net.backbone, "lite.gunpoint")
    assert not torch.allclose(net(X), before)  # the network computes another function now
    assert net.pretrained_cfg == {"loaded_from": "lite.gunpoint", "was": "nv_lite.gunpoint"}


def test_a_file_loaded_into_a_sparse_copys_backbone_restamps_the_copy():
    sparse = _sparse(nv.create_model("nv_lite.gunpoint", pretrained=True))
    _load(sparse.backbone, "lite.gunpoint")
    assert sparse.pretrained_cfg == {"loaded_from": "lite.gunpoint", "was": "nv_lite.gunpoint"}


def test_a_backbone_taken_out_of_the_network_does_not_restamp_it():
    net = nv.create_model("nv_lite.gunpoint", pretrained=True)
    old = net.backbone
    net.backbone = nv.create_model("nv_lite.gunpoint", pretrained=True).backbone
    _load(old, "lite.gunpoint")  # no longer the network's: its record stays
    assert net.pretrained_cfg["name"] == "nv_lite.gunpoint"


# ----------------------------------------------------- finding 3: a sparse copy of what was loaded
def test_sparsify_of_a_loaded_network_records_what_it_was_sparsified_from():
    net = nv.create_model("nv_lite.gunpoint", pretrained=True)
    _load(net, "nv_lite.italypowerdemand")
    assert _sparse(net).pretrained_cfg == {"sparsified_from": "nv_lite.italypowerdemand"}
    assert net.pretrained_cfg == {"loaded_from": "nv_lite.italypowerdemand", "was": "nv_lite.gunpoint"}  # the source unchanged


# ------------------------------------------------------ finding 4: the sites an entry's network has
SITES = ["fixed_relu", "relu", "separable.3", "separable.7"]  # nv_lite.gunpoint's, as net.sites lists them (R4 f4.py)


def test_the_entrys_own_sites_are_no_clash():
    e = ENTRIES["nv_lite.gunpoint"]
    args = (e["arch_kwargs"], arch_defaults("nv_lite"))
    assert given_clash({"layers": SITES}, *args, arch="nv_lite", input_shape=e["input_shape"]) == {}
    clash = given_clash({"layers": SITES[:2]}, *args, arch="nv_lite", input_shape=e["input_shape"])
    assert list(clash) == ["layers"] and str(SITES) in clash["layers"][1] and "None" not in clash["layers"][1]
    assert "layers" in given_clash({"layers": SITES[::-1]}, *args, arch="nv_lite", input_shape=e["input_shape"])


def test_sites_that_cannot_be_found_are_not_called_none_the_default():
    e = ENTRIES["nv_lite.gunpoint"]
    clash = given_clash({"layers": SITES}, e["arch_kwargs"], arch_defaults("nv_lite"))  # no architecture to build
    assert "the default" not in clash["layers"][1] and "site finding" in clash["layers"][1]


def test_pretrained_accepts_the_entrys_own_sites():
    net = nv.create_model("nv_lite.gunpoint", pretrained=True, layers=SITES)
    assert [s.name for s in net.sites] == SITES and net.pretrained_cfg["name"] == "nv_lite.gunpoint"
    with pytest.raises(ValueError, match=r"layers=\['relu'\] \(checkpoint: \['fixed_relu', 'relu', 'separable.3'"):
        nv.create_model("nv_lite.gunpoint", pretrained=True, layers=["relu"])
