"""``ablate_units`` with passes inside passes (probe S27 P6, finding 1): a monitor hook that calls the ablated network
again, a network over a part of its backbone called several times, a backbone whose forward calls itself. The
ablation's per-pass state (the calls of each site module counted so far) was one per ablation: a nested pass reset
it, and the rest of the outer pass ran with the units alive (logits 0.166 off, without a word).

Expected values come from a fresh network with the same weights whose removed units are killed by hand (the
BatchNorm in front of their ReLU gives -1e4 for them: the ReLU outputs 0, the hard code is 0), or from networks
built alone, not from the ablation under test."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.ablation import ablate_units

X1 = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
X2 = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(2))
GONE = [0, 1, 2]  # channels of site '2' removed
UNITS = [("2", c) for c in GONE]


def _backbone() -> nn.Sequential:
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                       nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    with torch.no_grad():  # BatchNorm statistics of its own, so that the units differ
        for bn in (bb[1], bb[4]):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.05, 0.2)
    return bb


def _net() -> nv.NeuroViewCNN:
    net = nv.wrap(_backbone(), 10, input_shape=(1, 8, 8), quantizer="hard").eval()
    with torch.no_grad():
        net.classifier.weight.normal_(generator=torch.Generator().manual_seed(4))
    return net


def _killed(net: nv.NeuroViewCNN) -> nv.NeuroViewCNN:
    """A fresh network with ``net``'s weights whose units GONE of site '2' are dead by hand."""
    fresh = nv.wrap(_backbone(), 10, input_shape=(1, 8, 8), quantizer="hard").eval()
    fresh.load_state_dict(net.state_dict())
    with torch.no_grad():
        fresh.backbone[1].weight[GONE] = 0.0
        fresh.backbone[1].bias[GONE] = -1e4
    return fresh


def _monitor(call, seen: dict):
    """A forward (or pre-) hook scoring a reference batch whenever its layer runs (not again inside its own call)."""
    busy: list = []

    def hook(module, args, output=None):
        if not busy:
            busy.append(1)
            try:
                seen["inner"] = call()
            except ValueError as e:  # a per-sample mask of another batch: the user's hook catches it
                seen["error"] = e
            finally:
                busy.pop()
    return hook


def test_the_hand_killed_reference_is_what_the_ablation_gives_alone():
    net = _net()
    ref = _killed(net)
    with torch.no_grad(), ablate_units(net, UNITS):
        torch.testing.assert_close(net.codes(X1), ref.codes(X1))
        torch.testing.assert_close(net(X1), ref(X1))
    assert (ref.codes(X1)[:, 6:] - net.codes(X1)[:, 6:]).abs().max() > 0.05  # the removal reaches site '5'


def _backbone3() -> nn.Sequential:
    """Three sites ('2', '5', '8'): units of the middle one removed, a call count shifted by a nested pass leaves a
    site after them to feed on their live outputs (review S27 R2 F6: with the units at the last site, whose output
    feeds nothing but its codes, a shifted count could not show)."""
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                       nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                       nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    with torch.no_grad():
        for bn in (bb[1], bb[4], bb[7]):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.05, 0.2)
    return bb


@pytest.mark.parametrize("where,pre", [(0, False), (1, False), (2, True), (2, False), (4, False)])
def test_a_monitor_calling_the_ablated_network_again_leaves_every_pass_ablated_whole(where, pre):
    net = nv.wrap(_backbone3(), 10, input_shape=(1, 8, 8), quantizer="hard").eval()
    with torch.no_grad():
        net.classifier.weight.normal_(generator=torch.Generator().manual_seed(4))
    ref = nv.wrap(_backbone3(), 10, input_shape=(1, 8, 8), quantizer="hard").eval()
    ref.load_state_dict(net.state_dict())
    with torch.no_grad():  # channels GONE of the middle site '5' dead by hand
        ref.backbone[4].weight[GONE] = 0.0
        ref.backbone[4].bias[GONE] = -1e4
    want_codes, want_logits, want_inner = ref.codes(X1), ref(X1), ref.codes(X2)
    seen: dict = {}
    hook = _monitor(lambda: net.codes(X2), seen)
    layer = net.backbone[where]
    h = layer.register_forward_pre_hook(hook) if pre else layer.register_forward_hook(hook)
    try:
        with torch.no_grad(), ablate_units(net, [("5", c) for c in GONE]):
            got_codes = net.codes(X1)
            got_inner = seen.pop("inner")
            got_logits = net(X1)
            got_exp = net.explain(X1)
    finally:
        h.remove()
    torch.testing.assert_close(got_codes, want_codes)
    torch.testing.assert_close(got_logits, want_logits)
    torch.testing.assert_close(got_exp.logits, want_logits)
    torch.testing.assert_close(got_inner, want_inner)
    torch.testing.assert_close(seen["inner"], want_inner)


def test_an_inner_pass_refused_for_its_batch_leaves_the_outer_per_sample_ablation_whole():
    net = _net()
    ref = _killed(net)
    mask = torch.zeros(len(X1), net.num_units, dtype=torch.bool)
    mask[:, GONE] = True  # per sample ([16, U]); the monitor's batch has 8 samples
    seen: dict = {}
    h = net.backbone[1].register_forward_hook(_monitor(lambda: net.codes(X2), seen))
    try:
        with torch.no_grad(), ablate_units(net, mask):
            got = net(X1)
    finally:
        h.remove()
    assert "per-sample mask has 16 rows, the batch has 8 samples" in str(seen["error"])
    torch.testing.assert_close(got, ref(X1))


def test_networks_sharing_the_backbones_modules_read_alike_on_every_call_inside_an_ablation():
    net = _net()
    ref = _killed(net)
    sub = nv.wrap(net.backbone[:6], 10, input_shape=(1, 8, 8), quantizer="hard").eval()  # a slice: the same modules
    same = nv.wrap(net.backbone, 10, input_shape=(1, 8, 8), quantizer="hard").eval()  # another wrapper of the object
    alone_sub = nv.wrap(_backbone()[:6], 10, input_shape=(1, 8, 8), quantizer="hard").eval()  # built alone
    alone_sub.backbone.load_state_dict(sub.backbone.state_dict())
    plain = alone_sub.codes(X1)
    with torch.no_grad(), ablate_units(net, UNITS):
        got = [sub.codes(X1), sub.codes(X1)]
        ablated = net(X1)
        got += [sub.codes(X1), same.codes(X1), sub.codes(X1)]
        again = net(X1)
    # ablate_units(net) removes net's units: another network of the same modules reads them as they are, every call
    for g in got:
        torch.testing.assert_close(g, plain)
    torch.testing.assert_close(ablated, ref(X1))
    torch.testing.assert_close(again, ref(X1))


class _MultiScale(nn.Module):
    """A backbone whose forward calls itself on a coarser copy of x: one module, two sites ('act', 'act:1')."""

    def __init__(self):
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, 3, 3, padding=1), nn.ReLU()

    def forward(self, x):
        y = self.act(self.conv(x))
        if x.shape[-1] > 8:
            y = y + nn.functional.interpolate(self(nn.functional.avg_pool2d(x, 2)), size=x.shape[-2:])
        return y


def test_a_backbone_calling_itself_ablates_the_named_call_only():
    torch.manual_seed(0)
    bb, x = _MultiScale(), torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    net = nv.wrap(bb, 2, example_input=x[:2], quantizer="none").eval()
    assert [s.name for s in net.sites] == ["act", "act:1"]
    with torch.no_grad():  # codes by hand ("none": the mean ReLU output), the full-scale call's channel 0 removed
        full = bb.act(bb.conv(x)).mean((2, 3))
        coarse = bb.act(bb.conv(nn.functional.avg_pool2d(x, 2))).mean((2, 3))
        full[:, 0] = 0.0
        with ablate_units(net, [("act", 0)]):
            got = net.codes(x)
    torch.testing.assert_close(got, torch.cat([full, coarse], 1))


class _Outer(nn.Module):
    """A user's model holding a NeuroView network as a layer: the outer wrap's sites lie inside the inner's pass."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.pre, self.inner = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Tanh()), inner

    def forward(self, x):
        return self.inner(self.pre(x))


def test_an_ablation_of_a_network_held_in_another_or_holding_it_acts_inside_the_inner_pass():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU())
    inner = nv.NeuroViewCNN(bb, num_classes=3, example_input=X1[:3]).eval()
    model = _Outer(inner)
    with warnings.catch_warnings():  # (the inner head's clamp and sigmoid, which the outer search sees run)
        warnings.simplefilter("ignore")
        outer = nv.wrap(model, 2, example_input=X1[:3]).eval()
    assert [s.name for s in outer.sites] == ["pre.1", "inner.backbone.1", "inner.backbone.3"]
    with torch.no_grad():  # hard codes by hand, channel 0 of the inner's first ReLU dead
        h = model.pre(X1)
        a = bb[0](h)
        b = bb[2](bb[1](a) * (torch.arange(4) != 0).float()[:, None, None])
        on = lambda t: (t > 0).float().mean((2, 3))  # noqa: E731
        want = torch.cat([on(model.pre[0](X1)), on(a), on(b)], 1)
        want[:, 1] = 0.0
        with ablate_units(outer, [("inner.backbone.1", 0)]):  # the outer's site, run by the inner network's pass
            got_outer = outer.codes(X1)
        with ablate_units(inner, [("1", 0)]):  # the inner's own, inside the outer's pass too
            got_inner, got_both = inner.codes(h), outer.codes(X1)
    torch.testing.assert_close(got_outer, want)
    torch.testing.assert_close(got_inner, want[:, 1:])
    torch.testing.assert_close(got_both[:, 2:], want[:, 2:])
