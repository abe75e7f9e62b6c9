"""A network over a part of another's backbone (``nv.wrap(model.features)``, ``nv.wrap(bb[:3])``: the same module
objects) called from a hook during the other's pass, either way round (probe S27 P6, finding 2). Only a pass over the
very same backbone object was recorded apart; these failed with ``PathChanged: backbone: its forward pass took another
path than when its sites were found`` or with a ``ValueError`` telling the user to find the sites again on an ``x`` of
another size.

Expected values come from networks built alone (the same seeds, no hook), not from the code under test."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv

X1 = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
X2 = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(2))
X3 = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(3))  # another batch size


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(),
                                               nn.Conv2d(6, 8, 3, padding=1), nn.ReLU()))
    model.add_module("head", nn.Sequential(nn.Conv2d(8, 5, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                           nn.Flatten(), nn.Linear(5, 10)))
    return model.eval()


def _alone(part: str | None, x: torch.Tensor) -> torch.Tensor:
    """The codes of a network over ``_model()`` (or its ``part``) built alone."""
    m = _model()
    return nv.wrap(m if part is None else m.get_submodule(part), 10, input_shape=(1, 8, 8)).eval().codes(x)


def _monitor(call, seen: dict):
    busy: list = []

    def hook(module, args, output=None):
        if not busy:  # the inner pass may run this layer too
            busy.append(1)
            try:
                seen["inner"] = call()
            finally:
                busy.pop()
    return hook


# every module that starts before the outer network's last site ends, hooked before (pre) or after it runs
_NET_PLACES = ["features", "features.0", "features.1", "features.2", "features.3", "head", "head.0", "head.1"]
_FEAT_PLACES = ["0", "1", "2", "3"]


@pytest.mark.filterwarnings("ignore:forward hooks")  # (one on net's 'head', after the stop: said, never run)
@pytest.mark.parametrize("pre", [True, False], ids=["pre", "fwd"])
@pytest.mark.parametrize("outer_part,where", [(None, w) for w in _NET_PLACES] + [("features", w) for w in _FEAT_PLACES])
def test_a_network_over_a_submodule_and_one_over_the_model_record_apart_either_way(outer_part, where, pre):
    model = _model()
    net, feat = nv.wrap(model, 10, input_shape=(1, 8, 8)).eval(), nv.wrap(model.features, 10, input_shape=(1, 8, 8)).eval()
    outer, inner, inner_part = (net, feat, "features") if outer_part is None else (feat, net, None)
    seen: dict = {}
    layer = outer.backbone.get_submodule(where)
    hook = _monitor(lambda: inner.codes(X2), seen)
    h = layer.register_forward_pre_hook(hook) if pre else layer.register_forward_hook(hook)
    try:
        got = outer.codes(X1)
    finally:
        h.remove()
    torch.testing.assert_close(got, _alone(outer_part, X1))
    if where == "head" and not pre:  # a forward hook on net's 'head': the pass stops before it ends, and never runs it
        assert "inner" not in seen
    else:
        torch.testing.assert_close(seen["inner"], _alone(inner_part, X2))


def test_a_network_over_a_slice_called_with_another_batch_size_records_apart():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()
    net = nv.wrap(bb, 10, input_shape=(1, 8, 8)).eval()
    sub = nv.wrap(bb[:2], 10, input_shape=(1, 8, 8)).eval()  # a new Sequential holding bb[0] and bb[1]
    with torch.no_grad():  # hard codes by hand: the on-share of each channel
        want_net = torch.cat([(bb[0](X1) > 0).float().mean((2, 3)), (bb[2](bb[1](bb[0](X1))) > 0).float().mean((2, 3))], 1)
        want_sub = (bb[0](X3) > 0).float().mean((2, 3))
    for outer, inner, x_out, x_in, where, w_out, w_in in (
            (net, sub, X1, X3, bb[2], want_net, want_sub),  # was PathChanged blaming the backbone
            (sub, net, X3, X1, bb[0], want_sub, want_net)):  # was "x: site '1' folds 2 positions into dim 0 ..."
        seen: dict = {}
        h = where.register_forward_hook(_monitor(lambda: inner.codes(x_in), seen))
        try:
            got = outer.codes(x_out)
        finally:
            h.remove()
        torch.testing.assert_close(got, w_out)
        torch.testing.assert_close(seen["inner"], w_in)


def test_a_hook_running_the_plain_model_during_a_pass_is_refused_naming_the_hook():
    """Review S27 R2 F1: a monitor on a layer running the wrapped model itself (no network) on a reference batch
    during net(x): the pass's recorder read the inner call's sites as its own, and net(x) returned the reference
    batch's logits without a word. The expected logits come from the network without the hook."""
    model = _model()
    net = nv.wrap(model, 10, input_shape=(1, 8, 8)).eval()
    with torch.no_grad():
        plain = net(X1)
        h = model.features[0].register_forward_hook(_monitor(lambda: model(X2), {}))
        try:
            with pytest.raises(RuntimeError, match=r"backbone: the hook '_monitor.<locals>.hook' called the backbone again"):
                net(X1)
        finally:
            h.remove()
        torch.testing.assert_close(net(X1), plain)  # the network is whole after it


class _Outer(nn.Module):
    """A user's model holding a NeuroView network as a layer (its pass is a part of the outer wrap's)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.pre, self.inner = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Tanh()), inner

    def forward(self, x):
        return self.inner(self.pre(x))


@pytest.mark.filterwarnings("ignore")  # (the inner head's clamp and sigmoid, which the outer search sees run)
@pytest.mark.parametrize("where", ["pre.0", "pre.1"])
def test_a_held_network_called_from_a_hook_during_the_outer_pass_records_apart(where):
    """Review S27 R2 F3: the held network's pass was read as a part of the outer one by structure (it is a module of
    the outer backbone), not by how it was called: called from a user's hook during the outer pass it failed with
    PathChanged. Expected values: each network's codes without the hook."""
    torch.manual_seed(0)
    inner = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU()), 3,
                            example_input=X1[:3]).eval()
    model = _Outer(inner)
    outer = nv.wrap(model, 2, example_input=X1[:3]).eval()
    with torch.no_grad():
        want_outer, want_inner = outer.codes(X1), inner.codes(X3)
        seen: dict = {}
        h = model.get_submodule(where).register_forward_hook(_monitor(lambda: inner.codes(X3), seen))
        try:
            got = outer.codes(X1)
        finally:
            h.remove()
    torch.testing.assert_close(seen["inner"], want_inner)
    torch.testing.assert_close(got, want_outer)
