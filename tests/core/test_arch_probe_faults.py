"""Architectures whose later batches take paths the first batch's site-finding passes did not (data-dependent routing,
training-only branches), whose forward changes its own state, TorchScript parts, shared modules, position-less maps."""

from __future__ import annotations

import copy
import gc
import sys
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core import reach


class _MoE(nn.Module):
    """Top-1 mixture of experts: each sample goes to the expert its pixel [0, 0, 0] names."""

    def __init__(self, c=4, e=4):
        super().__init__()
        self.stem, self.act0 = nn.Conv2d(3, c, 3), nn.ReLU()
        self.experts = nn.ModuleList([nn.Conv2d(c, c, 3) for _ in range(e)])
        self.act = nn.ReLU()

    def forward(self, x):
        h = self.act0(self.stem(x))
        k = x[:, 0, 0, 0].round().long() % len(self.experts)
        return self.act(torch.stack([self.experts[int(k[i])](h[i:i + 1])[0] for i in range(len(x))]))


def _routed(routes):
    x = torch.randn(len(routes), 3, 9, 9)
    x[:, 0, 0, 0] = torch.tensor(routes, dtype=x.dtype)
    return x


def test_an_expert_the_first_samples_do_not_route_to_trains_when_a_later_batch_does():
    """The reach pass saw the first 3 samples only, froze the experts they did not route to (requires_grad=False),
    unsaid, and later batches routed to them: those experts never trained."""
    torch.manual_seed(0)
    bb = _MoE()
    net = nv.wrap(bb, 3, example_input=_routed([0, 1, 0]), unit_axis={"act": 1})
    assert net.unreached == ["backbone.experts.2", "backbone.experts.3"]  # as the first samples show
    x = _routed([0, 1, 2, 3, 2, 3])
    with pytest.warns(UserWarning, match=r"\['experts.2', 'experts.3'\] run on this batch but did not reach the decision"):
        loss = nn.functional.cross_entropy(net.train()(x), torch.tensor([0, 1, 2, 0, 1, 2]))
    assert net.unreached == [] and all(e.weight.requires_grad for e in bb.experts)
    loss.backward()
    assert all(e.weight.grad is not None and e.weight.grad.abs().sum() > 0 for e in bb.experts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        net(x)
    net.unwrap()
    assert all(p.requires_grad for p in bb.parameters())


class _Noisy(nn.Module):
    """A training-only branch feeding the site (a regulariser), and an auxiliary head no site reads."""

    def __init__(self):
        super().__init__()
        self.conv, self.noise, self.act = nn.Conv2d(3, 6, 3), nn.Conv2d(6, 6, 1), nn.ReLU()
        self.aux = nn.Sequential(nn.Flatten(), nn.Linear(6 * 36, 2))
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        h = self.conv(x)
        if self.training:
            h = h + 0.1 * self.noise(h)
            self.aux_out = self.aux(h)  # read by the plain model's own loss, never by NeuroView's decision
        return self.fc(self.act(h).mean((2, 3)))


def test_a_training_only_branch_feeding_a_site_trains_and_an_auxiliary_head_stays_frozen():
    """The reach pass runs in eval mode: a training-only branch before a site was frozen as unreached, unsaid."""
    torch.manual_seed(0)
    bb = _Noisy()
    x = torch.randn(4, 3, 8, 8)
    net = nv.wrap(bb, 3, example_input=x)
    assert net.unreached == ["backbone.noise", "backbone.aux.1", "backbone.fc"]
    with pytest.warns(UserWarning, match=r"\['noise'\] run on this batch") as seen:
        net.train()(x).sum().backward()
    assert not any("aux" in str(w.message) for w in seen)
    assert bb.noise.weight.requires_grad and bb.noise.weight.grad is not None
    assert not bb.aux[1].weight.requires_grad and not bb.fc.weight.requires_grad  # no site reads them
    assert net.unreached == ["backbone.aux.1", "backbone.fc"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net(x)  # the auxiliary head is looked at once


class _Gated(nn.Module):
    """A refinement block run for hard inputs only, and an auxiliary branch run while training only."""

    def __init__(self):
        super().__init__()
        self.conv, self.act0 = nn.Conv2d(3, 4, 3), nn.ReLU()
        self.aux, self.act_aux = nn.Conv2d(4, 2, 1), nn.ReLU()
        self.conv2, self.act = nn.Conv2d(4, 4, 1), nn.ReLU()
        self.extra, self.act_extra = nn.Conv2d(4, 4, 1), nn.ReLU()

    def forward(self, x):
        h = self.act0(self.conv(x))
        if self.training:
            self.aux_out = self.act_aux(self.aux(h))  # read by no site (Inception's auxiliary head)
        h = self.act(self.conv2(h))
        if x.abs().mean() > 1.2:
            h = self.act_extra(self.extra(h))
        return h


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_an_activation_the_first_batch_did_not_run_is_refused_by_name(mode):
    """An activation module that did not run on the first batch (a block for hard inputs) was no site, and later
    batches that ran it were decided without its units, unsaid."""
    torch.manual_seed(0)
    easy, hard = torch.randn(4, 3, 8, 8) * 0.5, torch.randn(4, 3, 8, 8) * 3
    net = nv.wrap(_Gated(), 3, example_input=easy)
    assert [s.name for s in net.sites] == ["act0", "act"]
    getattr(net, mode)()
    net(easy)  # an auxiliary branch's activation, run while training and read by no site, is no error
    if mode == "eval":
        with pytest.raises(ValueError, match=r"activation 'act_extra' runs on this batch but did not when the sites were "
                                             r"found.*example_input=x\), or pass layers="):
            net(hard)
    else:  # after the last site, in training: a training-only head's (a projector) passes; explain refuses it below
        net(hard)
    with pytest.raises(ValueError, match="'act_extra'"):
        net.explain(hard)
    assert [s.name for s in nv.wrap(_Gated(), 3, example_input=hard).sites] == ["act0", "act", "act_extra"]
    named = nv.wrap(_Gated(), 3, layers=["act0", "act"], example_input=easy).eval()
    assert named(hard).shape == (4, 3)  # named sites: the others are left out by choice


class _ActNorm(nn.Module):
    """Glow's ActNorm: initialised from the statistics of the first batch it sees."""

    def __init__(self, c):
        super().__init__()
        self.bias, self.logs = nn.Parameter(torch.zeros(1, c, 1, 1)), nn.Parameter(torch.zeros(1, c, 1, 1))
        self.register_buffer("inited", torch.tensor(False))
        self.register_buffer("steps", torch.tensor(0))

    def forward(self, x):
        if not self.inited:
            with torch.no_grad():
                self.bias.copy_(-x.mean((0, 2, 3), keepdim=True))
                self.logs.copy_(-x.std((0, 2, 3), keepdim=True).log())
                self.inited.fill_(True)
        self.steps += 1
        return (x + self.bias) * self.logs.exp()


def test_the_site_finding_passes_leave_the_backbones_own_state_as_it_was():
    """The first batch's discovery and reach passes (on 2 and 3 samples) initialised an ActNorm, not the user's
    batch of 16: its bias was off by 0.1, and its step counter counted 4 calls."""
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(3, 8, 3), _ActNorm(8), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.ReLU())
    plain, x = copy.deepcopy(bb), torch.randn(16, 3, 10, 10)
    net = nv.wrap(bb, 3).train()
    net(x)
    plain.train()(x)
    assert int(bb[1].steps) == int(plain[1].steps) == 1
    torch.testing.assert_close(bb[1].bias.detach(), plain[1].bias.detach(), rtol=0, atol=0)
    torch.testing.assert_close(bb[1].logs.detach(), plain[1].logs.detach(), rtol=0, atol=0)


def test_a_torchscript_module_in_the_backbone_is_refused_at_construction():
    """Scripted parts failed on the first batch, blaming x ("the backbone's forward pass on this batch failed"), or
    said "found no activation module ... F.relu" of a whole scripted model."""
    x = torch.randn(2, 3, 8, 8)
    part = nn.Sequential(nn.Conv2d(3, 4, 3), torch.jit.script(nn.Sequential(nn.ReLU())), nn.Conv2d(4, 5, 3), nn.ReLU())
    with pytest.raises(TypeError, match=r"backbone: \['1'\] is a TorchScript module.*wrap the eager model"):
        nv.wrap(part, 3)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    for whole in (torch.jit.script(plain), torch.jit.trace(plain, x)):
        with pytest.raises(TypeError, match=r"backbone: it is a TorchScript module.*wrap the eager model"):
            nv.wrap(whole, 3, layers=["1"])


def test_a_module_registered_twice_named_by_its_second_name_says_its_first():
    """layers=['3'] for a ReLU instance registered as (1) and (3) said "no module named '3'", which print(model)
    shows."""
    act = nn.ReLU()
    bb = nn.Sequential(nn.Conv2d(3, 4, 3), act, nn.Conv2d(4, 6, 3), act)
    with pytest.raises(ValueError, match=r"layers: no module named '3' in backbone: '3' is the module named '1' "
                                         r"\(one module registered twice\).*name it '1'"):
        nv.wrap(bb, 3, layers=["3"])
    net = nv.wrap(bb, 3, layers=["1"], example_input=torch.randn(2, 3, 8, 8))
    assert [s.name for s in net.sites] == ["1", "1:1"]


def test_spatial_map_at_a_site_without_positions_follows_the_documented_recipe():
    """map.flatten(2).sum(-1) failed with a bare IndexError at a [B, C] site (an MLP layer)."""
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5), nn.ReLU())
    x = torch.randn(4, 3, 8, 8)
    net = nv.wrap(bb, 3, example_input=x).eval()
    exp = net.explain(x, maps=True)
    assert exp.spatial_map("5").shape == (4, 5, 1)
    for s in net.sites:
        torch.testing.assert_close(exp.spatial_map(s.name).flatten(2).sum(-1),
                                   exp.for_class()[:, net.site_slices[s.name]], rtol=0, atol=1e-6)


def test_a_frozen_inference_tensor_is_let_go_without_an_error(monkeypatch):
    """A network copy made under torch.inference_mode (its parameters inference tensors) printed "Exception ignored
    in finalize ... Setting requires_grad=True on inference tensor outside InferenceMode" when collected."""
    with torch.inference_mode():
        model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = model

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    holder = Holder()
    reach.hold(holder, ("1.weight",))
    del holder
    gc.collect()
    assert seen == [] and model[1].weight.is_inference()


class _Refined(nn.Module):
    """A refinement block for hard inputs before the last site."""

    def __init__(self):
        super().__init__()
        self.conv, self.act0 = nn.Conv2d(3, 4, 3), nn.ReLU()
        self.refine, self.act_refine = nn.Conv2d(4, 4, 1), nn.ReLU()
        self.conv2, self.act = nn.Conv2d(4, 4, 1), nn.ReLU()

    def forward(self, x):
        h = self.act0(self.conv(x))
        if x.abs().mean() > 1.2:
            h = self.act_refine(self.refine(h))
        return self.act(self.conv2(h))


def test_a_training_pass_through_an_activation_the_first_batch_did_not_run_is_refused_where_it_feeds_a_site():
    torch.manual_seed(0)
    easy, hard = torch.randn(4, 3, 8, 8) * 0.5, torch.randn(4, 3, 8, 8) * 3
    net = nv.wrap(_Refined(), 3, example_input=easy).train()
    with pytest.raises(ValueError, match="activation 'act_refine' runs on this batch but did not"):
        net(hard)
    # the refused pass leaves asking for gradients none of what stays frozen (its refinement block, never run before)
    assert {n for n, p in net.backbone.named_parameters() if not p.requires_grad} == set(net.frozen) == {
        "refine.weight", "refine.bias"}
