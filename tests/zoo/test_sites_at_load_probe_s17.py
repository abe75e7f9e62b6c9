"""Review of d248cd2 (a zoo NeuroView-CNN finds its sites as it loads, on the ``input_shape`` its entry records).

- An entry over token ids (``[B, L]`` integer batches, ``input_shape [L]``) was refused at load: its sites were
  searched on a float batch, which the ``nn.Embedding`` refuses, and the error named ``x``, which the caller never passed.
- An entry whose NeuroView-CNN holds another behind a stem that changes the channels was refused: every NeuroView-CNN
  in it was searched on the outer network's shape, and an inner one the outer search had covered was searched again.
- A bare load printed torch's ``padding='same'`` warning (which the first batch printed before), and
  ``verify_entry`` (``neuroview zoo --verify``) ran forward passes to check a file.

Loading now runs one batch of the recorded shape through the whole model, as its first batch would; where that pass
fails, the sites are found on the first batch, as before the shape was recorded; ``verify_entry`` runs no pass. Its
warnings were left for the first batch (by toggling process-wide switches around it); since review D they are said at
load (torch's warn-once then not again at the first batch): see tests/zoo/test_load_pass_s17_m7.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from collections import Counter

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.cnn import NeuroViewCNN
from neuroview.zoo import registry
from neuroview.zoo.pretrained import load_pretrained, save_pretrained, verify_entry


class _Channels(nn.Module):
    def forward(self, x):
        return x.transpose(1, 2)  # [B, L, E] embeddings -> [B, E, L]: the units on dim 1


#: 5 token ids x 2 channels, set by hand: a ReLU unit is on where its embedding is > 0
EMB = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [2.0, 3.0], [-1.0, -2.0], [0.5, -0.5]])
W, B = torch.tensor([[1.0, -2.0], [0.5, 3.0]]), torch.tensor([0.25, -1.0])


def m1_ids(*, num_classes: int = 2) -> nn.Module:
    bb = nn.Sequential(nn.Embedding(5, 2), _Channels(), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(2, num_classes))
    return nv.NeuroViewCNN(bb, num_classes, normalize=False, unit_axis={"2": 1})  # the embedding's channels, transposed


def m1_stemmed(*, num_classes: int = 2) -> nn.Module:
    inner = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 3)), 3)
    return nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 1), inner, nn.ReLU(), nn.Linear(3, num_classes)), num_classes)


def m1_nested(*, num_classes: int = 2) -> nn.Module:
    inner = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 3)), 3)
    return nv.NeuroViewCNN(nn.Sequential(inner, nn.ReLU(), nn.Linear(3, num_classes)), num_classes)


def m1_wrapped(*, num_classes: int = 2) -> nn.Module:
    """A user's module, a stem ahead of its NeuroView-CNN: the shape recorded is the NeuroView-CNN's, not the model's."""
    return nn.Sequential(nn.Conv1d(1, 3, 1), m1_stemmed(num_classes=num_classes).backbone[1])


def m1_same(*, num_classes: int = 2) -> nn.Module:
    """padding='same' with an even kernel: torch warns once a process (a zero-padded copy of the input)."""
    bb = nn.Sequential(nn.Conv1d(1, 4, 4, padding="same"), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, num_classes))
    return nv.NeuroViewCNN(bb, num_classes)


BUILDERS = (m1_ids, m1_stemmed, m1_nested, m1_wrapped, m1_same)


@pytest.fixture(autouse=True)
def registered():
    for f in BUILDERS:
        nv.register_model(f)
    yield
    for f in BUILDERS:
        registry._MODELS.pop(f.__name__, None)


def _save(net: nn.Module, arch: str, root) -> dict:
    return save_pretrained(net, f"{arch}.t", architecture=arch, arch_kwargs={}, dataset={"name": "toy"}, recipe=None,
                           seed=0, metrics={}, root=root)


@pytest.fixture
def discoveries(monkeypatch):
    """How many times each NeuroView-CNN (by id) searched its sites."""
    calls, search = Counter(), NeuroViewCNN.discover

    def counted(self, x):
        calls[id(self)] += 1
        return search(self, x)

    monkeypatch.setattr(NeuroViewCNN, "discover", counted)
    return calls


def test_an_entry_over_token_ids_loads_and_computes_its_known_logits(tmp_path):
    torch.manual_seed(0)
    net = m1_ids().eval()
    ids = torch.tensor([[0, 2, 4, 1], [3, 3, 1, 0], [2, 2, 2, 2]])
    with torch.no_grad():
        net.backbone[0].weight.copy_(EMB)
        net(ids)  # the sites, found on a batch of ids
        net.classifier.weight.copy_(W), net.classifier.bias.copy_(B)
    assert _save(net, "m1_ids", tmp_path)["input_shape"] == [4]  # a shape of ids: a float batch of it cannot run
    back = load_pretrained("m1_ids.t", root=tmp_path)  # was: ValueError "x: the backbone's forward pass ... FloatTensor"
    # by hand: each channel's code is the share of positions where its embedding is > 0 (no normalization)
    for x in (ids, torch.tensor([[2, 4, 4, 4, 0, 1, 3]])):  # ids of any length
        want = (EMB[x] > 0).float().mean(1) @ W.T + B
        with torch.no_grad():
            torch.testing.assert_close(back(x), want)
    assert [(s.name, s.channels, s.axis) for s in back.sites] == [("2", 2, 1)]


def test_a_nested_network_behind_a_stem_loads_each_searched_once_on_its_own_input(tmp_path, discoveries):
    torch.manual_seed(0)
    net = nv.create_model("m1_stemmed").eval()
    x = torch.randn(5, 1, 30)
    with torch.no_grad():
        ref = net(x)
    assert _save(net, "m1_stemmed", tmp_path)["input_shape"] == [1, 30]
    discoveries.clear()
    back = load_pretrained("m1_stemmed.t", root=tmp_path)  # was: "expected input[2, 1, 30] to have 3 channels"
    inner = back.backbone[1]
    assert back.sites is not None and inner.sites is not None  # found at load: before any batch of the user's
    assert back.input_shape == (1, 30) and inner.input_shape == (3, 30)  # the inner one on its real input
    assert discoveries[id(back)] == 1 and discoveries[id(inner)] == 1
    with torch.no_grad():
        assert torch.equal(back(x), ref)
    assert sorted(discoveries.values()) == [1, 1]  # the first batch searches nothing again


def test_an_inner_network_the_outer_search_covered_is_not_searched_again(tmp_path, discoveries):
    torch.manual_seed(0)
    net = nv.create_model("m1_nested").eval()
    x = torch.randn(5, 1, 30)
    with torch.no_grad():
        ref = net(x)
    _save(net, "m1_nested", tmp_path)
    discoveries.clear()
    back = load_pretrained("m1_nested.t", root=tmp_path)
    assert discoveries[id(back)] == 1 and discoveries[id(back.backbone[0])] == 1  # the inner one: 2 before
    with torch.no_grad():
        assert torch.equal(back(x), ref)


def test_a_stem_of_the_user_s_module_ahead_of_the_recorded_network_still_loads_with_its_sites(tmp_path):
    torch.manual_seed(0)
    net = nv.create_model("m1_wrapped").eval()
    x = torch.randn(5, 1, 30)
    with torch.no_grad():
        ref = net(x)
    assert _save(net, "m1_wrapped", tmp_path)["input_shape"] == [3, 30]  # the NeuroView-CNN's input, not the model's
    back = load_pretrained("m1_wrapped.t", root=tmp_path)  # a batch of [3, 30] fails the stem: run through [1] alone
    assert back[1].sites is not None and back[1].input_shape == (3, 30)  # as d248cd2 found them
    with torch.no_grad():
        assert torch.equal(back(x), ref)


def test_a_failed_pass_leaves_nothing_half_found(tmp_path, monkeypatch):
    torch.manual_seed(0)
    net = nv.create_model("m1_nested").eval()
    x = torch.randn(5, 1, 30)
    with torch.no_grad():
        ref = net(x)
    _save(net, "m1_nested", tmp_path)
    search = NeuroViewCNN.discover

    def outer_fails(self, x):  # the inner network's search has run (and found its sites) when the outer one fails
        found = search(self, x)
        if isinstance(self.backbone[0], NeuroViewCNN):
            raise RuntimeError("the outer search failed")
        return found

    monkeypatch.setattr(NeuroViewCNN, "discover", outer_fails)
    back = load_pretrained("m1_nested.t", root=tmp_path)  # not refused
    assert back.sites is None and back.backbone[0].sites is None  # a fresh build: all found on the first batch
    monkeypatch.setattr(NeuroViewCNN, "discover", search)
    with torch.no_grad():
        assert torch.equal(back(x), ref)


def test_a_load_says_what_its_pass_warns_and_verify_entry_runs_no_pass(tmp_path, discoveries):
    # the pass no longer keeps its warnings for the first batch: that set the process-wide warning switches, which
    # two threads' loads at once left set (review D of f9acc3d: tests/zoo/test_load_pass_s17_m7.py)
    torch.manual_seed(0)
    net = nv.create_model("m1_same").eval()
    x = torch.randn(4, 1, 20)
    with torch.no_grad():
        ref = net(x)
    _save(net, "m1_same", tmp_path)
    discoveries.clear()
    always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # torch's warn-once warns at every call: this test sees it whatever ran before
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            checked = verify_entry("m1_same.t", root=tmp_path)
            assert checked.sites is None and not discoveries  # checking a file runs no forward pass
            assert [str(w.message) for w in seen] == []  # nor warns
            back = load_pretrained("m1_same.t", root=tmp_path)
            assert back.sites is not None and any("padding='same'" in str(w.message) for w in seen)  # said at load
            with torch.no_grad():
                assert torch.equal(back(x), ref)
    finally:
        torch.set_warn_always(always)


def test_the_warn_once_of_a_load_is_said_at_load_and_once():
    # a fresh process: torch warns once a process; the load's pass says it, and the first batch then does not repeat it
    script = textwrap.dedent("""
        import warnings, torch
        from neuroview.zoo.pretrained import load_pretrained
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            net = load_pretrained("nv_fcn1d.gunpoint")
            print("load", net.sites is not None, [str(w.message)[:40] for w in seen])
            del seen[:]
            with torch.no_grad():
                net(torch.randn(2, 1, 150))
            print("batch", [str(w.message)[:40] for w in seen], torch.is_warn_always_enabled())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True).stdout
    load, batch = out.splitlines()
    assert load.startswith("load True [") and "Using padding='same'" in load
    assert batch == "batch [] False"  # was: the first batch said it (the pass had turned set_warn_always on around itself)
