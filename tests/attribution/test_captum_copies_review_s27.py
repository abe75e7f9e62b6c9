"""What the Captum checks hand to Captum (review S27 R6 finding 1, and a lazily built network).

Made to run under ``torch.inference_mode()``, ``unit_scores`` / ``step_scores`` cloned every chunk of ``x`` (and
the IG baseline) up front, inside the mode or not: a whole extra copy of the input held for the call (441 MB peak
against 135 MB for a 305 MB ``x``). Only inference tensors need an ordinary copy, and one chunk at a time. Checked on
the storage of what Captum's ``attribute`` is called on, not on the code's own rule.
"""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution import faithfulness as fa

captum_attr = pytest.importorskip("captum.attr")
pytestmark = pytest.mark.filterwarnings("ignore:unit_importance")  # an untrained head: its global order warns


def _spy(monkeypatch, cls):
    """The tensors ``cls.attribute`` is called on (inputs, and the baselines where given), in call order."""
    seen: list[tuple] = []
    orig = cls.attribute

    def attribute(self, inputs, *args, **kw):
        seen.append((inputs, kw.get("baselines")))
        return orig(self, inputs, *args, **kw)

    monkeypatch.setattr(cls, "attribute", attribute)
    return seen


def _shares(t, x) -> bool:
    return t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()


def _cnn():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(6, 5), nn.ReLU()), 3, input_shape=(6,), quantizer="soft").eval()
    return net, torch.randn(24, 6), torch.arange(24) % 3  # chunks of 8 rows: 64-byte aligned, as a copy is


def test_unit_scores_hand_captum_views_of_x_outside_inference_mode(monkeypatch):
    net, x, y = _cnn()
    want = fa.unit_scores(net, x, y, "layer_grad_x_act", batch_size=8)
    seen = _spy(monkeypatch, captum_attr.LayerGradientXActivation)
    got = fa.unit_scores(net, x, y, "layer_grad_x_act", batch_size=8)
    assert len(seen) == 3 and all(_shares(xb, x) for xb, _ in seen)  # no copy of x: views of its chunks
    assert [xb.data_ptr() - x.data_ptr() for xb, _ in seen] == [0, 8 * 6 * 4, 16 * 6 * 4]
    assert torch.equal(got, want)


def test_unit_scores_copy_an_inference_x_one_chunk_at_a_time(monkeypatch):
    net, x, y = _cnn()
    want = fa.unit_scores(net, x, y, "layer_grad_x_act", batch_size=8)
    alive: list[bool] = []
    orig = captum_attr.LayerGradientXActivation.attribute

    def attribute(self, inputs, *args, **kw):
        gc.collect()
        alive.append([r() is not None for r in refs])  # the copies of the chunks before this one
        refs.append(weakref.ref(inputs))
        assert not inputs.is_inference() and not _shares(inputs, xi)
        return orig(self, inputs, *args, **kw)

    refs: list = []
    monkeypatch.setattr(captum_attr.LayerGradientXActivation, "attribute", attribute)
    with torch.inference_mode():
        xi = x.clone()
        got = fa.unit_scores(net, xi, y, "layer_grad_x_act", batch_size=8)
    assert len(alive) == 3 and not any(a for row in alive for a in row)  # chunk 1's copy gone before chunk 2's call
    assert torch.equal(got, want)


def test_step_scores_hand_captum_views_of_x_and_of_one_baseline_outside_inference_mode(monkeypatch):
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=6).eval()
    x, y = torch.randn(5, 6, 2), torch.tensor([0, 1, 2, 0, 1])
    want = fa.step_scores(net, x, y, "integrated_gradients", n_steps=4, batch_size=2)
    want_mean = fa.step_scores(net, x, y, "integrated_gradients", n_steps=4, batch_size=2, baseline="mean")
    seen = _spy(monkeypatch, captum_attr.IntegratedGradients)
    got = fa.step_scores(net, x, y, "integrated_gradients", n_steps=4, batch_size=2)
    assert len(seen) == 3 and all(_shares(xb, x) for xb, _ in seen)
    assert len({b.untyped_storage().data_ptr() for _, b in seen}) == 1  # the one zero baseline's chunks, not copies
    assert torch.equal(got, want)
    seen.clear()
    with torch.inference_mode():
        got = fa.step_scores(net, x, y, "integrated_gradients", n_steps=4, batch_size=2)
        got_mean = fa.step_scores(net, x, y, "integrated_gradients", n_steps=4, batch_size=2, baseline="mean")
    assert len(seen) == 6 and not any(xb.is_inference() or b.is_inference() for xb, b in seen)
    assert torch.equal(got, want) and torch.equal(got_mean, want_mean)


def test_unit_scores_of_a_network_whose_sites_are_not_found_yet():
    """A lazily built network (no ``input_shape``) died with "'NoneType' object is not iterable"."""
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(6, 5), nn.ReLU()), 3, quantizer="soft").eval()
    x, y = torch.randn(24, 6), torch.arange(24) % 3
    assert net.sites is None
    got = fa.unit_scores(net, x, y, "layer_grad_x_act", batch_size=8)
    twin, _, _ = _cnn()
    twin.load_state_dict(net.state_dict())
    assert got.shape == (24, 5) and torch.equal(got, fa.unit_scores(twin, x, y, "layer_grad_x_act", batch_size=8))
