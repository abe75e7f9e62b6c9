"""Batched ensemble faults found by probing: the grouped pass followed settings changed after its first call,
each member's BatchNorm count, an outer wrap's and torch's global hooks, parametrized weights, a float64 first
batch and one network given as ``members``. Every expected number comes from the members run one by one."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook
from torch.nn.utils import parametrizations

import neuroview as nv
from neuroview.core.ensemble import Ensemble, members_loss


def _batched(members: int = 2, **kw) -> tuple[Ensemble, torch.Tensor]:
    """A batched ensemble whose grouped pass is built (one eval call), and a batch."""
    torch.manual_seed(0)
    ens = nv.create_model("nv_lite", num_classes=3, in_channels=1, members=members, batched=True, **kw).eval()
    x = torch.randn(6, 1, 32)
    ens(x)
    assert ens._pass is not None
    return ens, x


def _mean_of_members(ens: Ensemble, x: torch.Tensor) -> torch.Tensor:
    """The documented decision, from each member's own modules."""
    return torch.stack([m(x) for m in ens.members]).mean(0)


@pytest.mark.parametrize("setting, value", [("tau", 0.05), ("quantizer", "hard")])
def test_a_setting_changed_on_every_member_after_the_first_call_is_followed(setting, value):
    """The grouped copy kept the settings of its first call: logits and explanation 0.08 to 0.09 off the members'."""
    ens, x = _batched(quantizer="soft")
    for m in ens.members:
        setattr(m, setting, value)
    want = _mean_of_members(ens, x)
    torch.testing.assert_close(ens(x), want, rtol=1e-5, atol=1e-5)
    assert ens._pass is not None and getattr(ens._pass.shell.net, setting) == value  # still batched, rebuilt
    exp = ens.explain(x)
    torch.testing.assert_close(exp.logits, want, rtol=1e-5, atol=1e-5)


def test_a_grad_state_changed_after_the_first_call_gives_the_members_gradients():
    ens, x = _batched()
    y = torch.arange(6) % 3
    ens.train()
    members_loss(ens.member_logits(x), y).backward()  # a training pass built the grouped network
    apart = copy.deepcopy(ens)
    apart.batched = False
    for net in (ens, apart):
        net.zero_grad()
        for m in net.members:
            m.grad_state = "bf16"
        members_loss(net.member_logits(x), y).backward()
    for (name, a), b in zip(apart.named_parameters(), ens.parameters()):
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_a_setting_changed_on_one_member_runs_them_one_by_one_with_the_warning():
    ens, x = _batched(quantizer="soft")
    ens.members[1].tau = 0.05
    with pytest.warns(UserWarning, match=r"batched: the members' NeuroView settings .* differ; the members run one by one"):
        got = ens(x)
    torch.testing.assert_close(got, _mean_of_members(ens, x), rtol=1e-5, atol=1e-5)
    ens.members[0].tau = 0.05  # alike again: batched again
    torch.testing.assert_close(ens(x), _mean_of_members(ens, x), rtol=1e-5, atol=1e-5)
    assert ens._pass is not None and ens._pass.shell.net.tau == 0.05


@pytest.mark.parametrize("momentum", [None, 0.1])
def test_batchnorm_counts_that_differ_stay_each_member_s_own(momentum):
    """The grouped pass wrote member 0's count into every member; with momentum=None member 1's running mean
    was also averaged with member 0's count (1.19 off its own)."""
    ens, x = _batched()
    with torch.no_grad():
        for i, m in enumerate(ens.members):
            for bn in (mod for mod in m.modules() if isinstance(mod, nn.BatchNorm1d)):
                bn.momentum = momentum
                bn.num_batches_tracked.fill_(1 + 9 * i)  # member 0: 1, member 1: 10
    alone = [copy.deepcopy(m).train() for m in ens.members]
    for m in alone:
        m(x)
    ens.train().member_logits(x)
    for a, b in zip(alone, ens.members):
        for (name, want), got in zip(a.backbone.named_buffers(), b.backbone.buffers()):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)
    assert int(ens.members[1].backbone.bn.num_batches_tracked) == 11
    # momentum=None and other counts: one by one (one grouped count cannot weigh both); a momentum: still batched
    assert (ens._batched(x) is None) == (momentum is None)


def test_an_outer_wrap_of_a_batched_ensemble_reads_the_members_own_modules():
    """nv.wrap / nv.retrofit of a batched standard ensemble: 'its forward pass called 0 sites, expected 8' (the
    outer wrap's hooks sat on the members' modules, which the grouped copy never calls)."""
    torch.manual_seed(0)
    std = nv.create_model("lite", num_classes=3, in_channels=1, members=2, batched=True).eval()
    apart = copy.deepcopy(std)
    apart.batched = False
    x = torch.randn(5, 1, 32)
    wrapped, want = nv.wrap(std, num_classes=3).eval(), nv.wrap(apart, num_classes=3).eval()
    want(x), wrapped(x)  # each finds its sites (and builds its head) on its first batch
    wrapped.load_state_dict(want.state_dict())
    torch.testing.assert_close(wrapped.codes(x), want.codes(x))
    torch.testing.assert_close(wrapped(x), want(x))
    std(x)
    assert std._pass is not None  # unwatched, the ensemble alone still runs batched


def test_a_global_module_hook_sees_the_members_own_modules():
    """It saw the grouped copy's 2x-wide layers, never the members'."""
    ens, x = _batched()
    own = {id(mod) for m in ens.members for mod in m.modules()}
    seen = []
    handle = register_module_forward_hook(lambda mod, args, out: seen.append(mod))
    try:
        got = ens(x)
    finally:
        handle.remove()
    bns = [mod for mod in seen if isinstance(mod, nn.BatchNorm1d)]
    assert len(bns) == 6 and all(id(mod) in own for mod in bns)  # 3 a member, the members' own
    torch.testing.assert_close(got, _mean_of_members(ens, x))


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
def test_a_backward_hook_on_a_member_s_module_is_called():
    ens, x = _batched()
    grads = []
    conv = ens.members[1].backbone.convs[0]
    conv.register_full_backward_hook(lambda mod, gin, gout: grads.append(gout[0].shape))
    members_loss(ens.train().member_logits(x), torch.arange(6) % 3).backward()
    assert grads == [(6, conv.out_channels, 32)]  # the member's own layer ran: the grouped one is twice as wide


@pytest.mark.parametrize("when", ["before", "after the first call"])
def test_parametrized_members_run_one_by_one_with_a_warning(when):
    """weight_norm on the members' layers: a bare KeyError 'convs.0.weight' from the grouped pass."""
    ens, x = _batched()
    members = list(ens.members) if when != "before" else [copy.deepcopy(m) for m in ens.members]
    for m in members:
        parametrizations.weight_norm(m.backbone.convs[0])
    match = r"batched: member 0's module 'convs.0' has parametrized tensors .*; the members run one by one"
    with pytest.warns(UserWarning, match=match):
        ens = ens if when != "before" else Ensemble(members, batched=True).eval()
        got = ens(x)
    torch.testing.assert_close(got, _mean_of_members(ens, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("found", [True, False])
def test_a_float64_first_batch_is_the_clear_dtype_error(found):
    """The first batched call gave 'ValueError: ... expected scalar type Double but found Float' from discovery."""
    torch.manual_seed(0)
    ens = nv.create_model("nv_lite", num_classes=3, in_channels=1, members=2, batched=True).eval()
    x = torch.randn(4, 1, 32)
    if found:
        for m in ens.members:
            m(x)  # the members' sites found, the grouped pass not built
    with pytest.raises(TypeError, match=r"x: expected dtype torch.float32 \(the model's parameters\), got torch.float64; convert x"):
        ens(x.double())
    torch.testing.assert_close(ens(x), _mean_of_members(ens, x))
    assert ens._pass is not None


def test_one_network_given_as_members_is_a_clear_error():
    """One NeuroViewCNN: "'NeuroViewCNN' object is not iterable"; one nn.Sequential: its layers became the members."""
    net = nv.create_model("nv_lite", num_classes=3, in_channels=1)
    with pytest.raises(TypeError, match=r"members: expected a list of networks \(nn.Module\), got one NeuroViewCNN; pass \[net, ...\]"):
        Ensemble(net)
    with pytest.raises(TypeError, match=r"members: expected a list of networks \(nn.Module\), got one Sequential"):
        Ensemble(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)))
    with pytest.raises(TypeError, match=r"members: expected a list of networks \(nn.Module\), got a list holding str"):
        Ensemble(["lite", "lite"])
    assert len(Ensemble(nn.ModuleList([nn.Linear(4, 2), nn.Linear(4, 2)]))) == 2  # a ModuleList is a list of them
    assert len(Ensemble(nn.Linear(4, 2) for _ in range(3))) == 3
