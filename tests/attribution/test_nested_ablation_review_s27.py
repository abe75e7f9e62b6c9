"""Review S27 R2 of the per-pass ablation counter: a compiled network inside ``ablate_units`` (F4: a guard on the
size of the per-pass table recompiled ``zero_output`` every pass, up to dynamo's limit, then ran it eagerly for good),
and bare calls of the backbone inside the ``with`` entered again from a hook (F2: one shared counter, reset by the
inner entry: the rest of the outer call ran unablated, without a word).

Expected values come from a fresh network with the same weights whose removed units are killed by hand (as in
``test_nested_ablation_s27.py``), not from the ablation under test."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.ablation import ablate_units

X1 = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
X2 = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(2))
GONE = [0, 1, 2]  # channels of site '5' (the middle one of three) removed


def _backbone() -> nn.Sequential:
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                       nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                       nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    with torch.no_grad():  # BatchNorm statistics of its own, so that the units differ
        for bn in (bb[1], bb[4], bb[7]):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.05, 0.2)
    return bb.eval()


def _net() -> nv.NeuroViewCNN:
    net = nv.wrap(_backbone(), 10, input_shape=(1, 8, 8), quantizer="hard").eval()
    with torch.no_grad():
        net.classifier.weight.normal_(generator=torch.Generator().manual_seed(4))
    return net


def _killed(net: nv.NeuroViewCNN) -> nv.NeuroViewCNN:
    """A fresh network with ``net``'s weights whose units GONE of site '5' are dead by hand."""
    fresh = nv.wrap(_backbone(), 10, input_shape=(1, 8, 8), quantizer="hard").eval()
    fresh.load_state_dict(net.state_dict())
    with torch.no_grad():
        fresh.backbone[4].weight[GONE] = 0.0
        fresh.backbone[4].bias[GONE] = -1e4
    return fresh


def _monitor(call, seen: dict):
    """A forward hook scoring a reference batch whenever its layer runs (not again inside its own call)."""
    busy: list = []

    def hook(module, args, output=None):
        if not busy:
            busy.append(1)
            try:
                seen["inner"] = call()
            finally:
                busy.pop()
    return hook


def _compiles() -> bool:
    try:
        torch.compile(lambda t: t + 1, backend="eager")(torch.zeros(1))
    except Exception:  # noqa: BLE001 (a platform without dynamo)
        return False
    return True


@pytest.mark.skipif(not _compiles(), reason="torch.compile is unavailable on this platform")
def test_a_compiled_network_inside_an_ablation_compiles_its_passes_once():
    from torch._dynamo.utils import counters

    net = _net()
    want = _killed(net)(X1)
    torch._dynamo.reset()
    compiled = torch.compile(net, backend="eager")
    try:  # a frame past dynamo's recompile limit ran eagerly for good, with a warning: here an error
        with torch.no_grad(), ablate_units(net, [("5", c) for c in GONE]), \
                torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
            for _ in range(2):  # the first passes compile (one variant per call count of a site module, at most)
                torch.testing.assert_close(compiled(X1), want)
            before = counters["frames"]["total"]
            for _ in range(3):  # each later pass reuses them: a guard on something that changes per pass recompiled
                torch.testing.assert_close(compiled(X1), want)
            after = counters["frames"]["total"]
    finally:
        torch._dynamo.reset()
    assert after == before, f"frames compiled after the first passes: {before} -> {after}"


@pytest.mark.parametrize("again", ["model", "copy"])
def test_a_hook_calling_the_model_again_inside_a_bare_call_leaves_both_ablated(again):
    net = _net()
    ref = _killed(net).backbone
    model = net.backbone  # the user's own model, which nv.wrap hooks
    with torch.no_grad():
        want, want_inner = ref(X1), ref(X2)
        with ablate_units(net, [("5", c) for c in GONE]):
            cp = copy.deepcopy(net)
            call = (lambda: model(X2)) if again == "model" else (lambda: cp.backbone(X2))
            seen: dict = {}
            h = model[2].register_forward_hook(_monitor(call, seen))  # before site '5': a reset there lost it
            try:
                got = model(X1)
            finally:
                h.remove()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(seen["inner"], want_inner)


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


@pytest.mark.parametrize("site", ["act", "act:1"])
def test_a_bare_call_of_a_backbone_calling_itself_is_one_pass(site):
    torch.manual_seed(0)
    bb, x = _MultiScale(), torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    net = nv.wrap(bb, 2, example_input=x[:2], quantizer="none").eval()

    def by_hand(t, full):  # channel 0 of the named call dead: 'act' the full-scale call, 'act:1' the coarse one
        y = bb.act(bb.conv(t)).clone()
        if (site == "act") == full:
            y[:, 0] = 0.0
        if t.shape[-1] > 8:
            y = y + nn.functional.interpolate(by_hand(nn.functional.avg_pool2d(t, 2), False), size=t.shape[-2:])
        return y

    with torch.no_grad():
        want = by_hand(x, True)
        with ablate_units(net, [(site, 0)]):
            got = bb(x)  # the inner self-call reset the count: its call ablated as the outer's (0.82 off)
    torch.testing.assert_close(got, want)
