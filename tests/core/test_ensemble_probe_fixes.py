"""Ensemble and sparse-head fixes found by probing: a bfloat16 batched ensemble folds its members'
normalization as each member does (float32 at least), an ensemble's baseline tensor has one layout,
and a float64 network's training mean code is not rounded to float32."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import neuroview as nv


def _folded_logits_by_hand(member, f: torch.Tensor) -> torch.Tensor:
    """A member's eval-time logits of codes ``f``, everything in float64: ``W ((f - mu) / sqrt(var + eps)) + b``,
    the variance floored at ``floor * mean(var)``."""
    norm, head = member.norm, member.classifier
    var = norm.running_var.double()
    var = var.clamp_min(norm.floor * var.mean()) if norm.floor > 0 else var
    z = (f.double() - norm.running_mean.double()) / (var + norm.eps).sqrt()
    return z @ head.weight.double().T + head.bias.double()


def test_a_bfloat16_batched_ensemble_gives_its_members_own_eval_logits():
    torch.manual_seed(0)
    ens = nv.create_model("nv_lite", num_classes=3, in_channels=2, members=2)
    x = torch.randn(6, 2, 40)
    ens.eval()(x)
    with torch.no_grad():  # statistics far from 0 and 1: w @ mu rounded to bfloat16 moves the bias
        for m in ens.members:
            m.norm.running_mean.copy_(3 + 2 * torch.rand_like(m.norm.running_mean))
            m.norm.running_var.copy_(0.5 + torch.rand_like(m.norm.running_var))
    ens = ens.bfloat16().eval()
    batched = copy.deepcopy(ens)
    batched.batched = True
    xb = x.bfloat16()
    codes = [m.codes(xb) for m in ens.members]  # bfloat16 codes, the same for both paths
    want = torch.stack([_folded_logits_by_hand(m, f) for m, f in zip(ens.members, codes)]).mean(0)
    got = batched(xb)
    assert batched._pass is not None
    torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-4)  # was 1e-2 off (a bfloat16 fold)
    e = batched.explain(xb)
    torch.testing.assert_close(e.logits.double(), want, rtol=0, atol=1e-4)
    torch.testing.assert_close(e.bias.double(), torch.stack([_folded_logits_by_hand(m, torch.zeros_like(f[:1]))[0]
                                                             for m, f in zip(ens.members, codes)]).mean(0),
                               rtol=0, atol=1e-4)


@pytest.mark.parametrize("how", ["apart", "batched_maps"])
def test_an_ensemble_baseline_of_another_layout_is_an_error(how):
    torch.manual_seed(0)
    ens = nv.create_model("nv_lite", num_classes=3, filters=4, members=2).eval()
    x = torch.randn(6, 1, 40)
    ens(x)
    ens.batched = how == "batched_maps"
    m0, m1 = (m.codes(x).mean(0) for m in ens.members)
    maps = how == "batched_maps"
    with pytest.raises(ValueError, match=r"baseline: expected a tensor of shape \[108\].*got shape \[54, 2\]"):
        ens.explain(x, baseline=torch.stack([m0, m1], dim=1), maps=maps)  # was read interleaved
    right = torch.cat([m0, m1])
    e, e1 = ens.explain(x, baseline=right, maps=maps), ens.explain(x, baseline=right[None], maps=maps)
    torch.testing.assert_close(e1.contributions, e.contributions)
    # against member i's own mean code: each member's contributions are its standardized codes' difference
    for i, (m, mu) in enumerate(zip(ens.members, (m0, m1))):
        want = _folded_logits_by_hand(m, m.codes(x)) - _folded_logits_by_hand(m, mu[None])
        part = e.contributions[..., i * 54:(i + 1) * 54].sum(-1)
        torch.testing.assert_close(part.double() * 2, want, rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def float64_sparse():
    torch.manual_seed(0)
    x = torch.randn(60, 1, 30, dtype=torch.float64)
    y = (x[:, 0, 5:12].mean(1) > 0).long()
    backbone = nn.Sequential(nn.Conv1d(1, 8, 5), nn.ReLU(), nn.Conv1d(8, 8, 3), nn.ReLU()).double()
    net = nv.NeuroViewCNN(backbone, 2, input_shape=(1, 30)).eval()
    net(x)
    train = [(x[i:i + 20], y[i:i + 20]) for i in range(0, 60, 20)]
    return x, train, nv.sparsify(net, train, tolerance=5.0)


def test_a_float64_sparsified_network_keeps_the_float64_training_mean_code(float64_sparse):
    x, train, sp = float64_sparse
    with torch.no_grad():
        mean = sp.codes(x).double().mean(0)  # the training split is all of x
    assert sp.norm.running_mean.dtype == torch.float64
    torch.testing.assert_close(sp.norm.running_mean, mean, rtol=0, atol=1e-12)  # was 7e-8 off (float32)
    torch.testing.assert_close(nv.mean_codes(sp, train), mean, rtol=0, atol=1e-12)
    e = sp.explain(x[:4], baseline="mean")
    torch.testing.assert_close(e.bias.double(), _folded_logits_by_hand(sp, mean[None])[0], rtol=0, atol=1e-10)


def test_a_float64_fine_tuned_network_keeps_the_float64_training_mean_code(float64_sparse):
    x, train, sp = float64_sparse
    tuned = nv.finetune_sparse(sp, train, epochs=1, lr=1e-2)
    with torch.no_grad():
        mean = tuned.codes(x).double().mean(0)
    torch.testing.assert_close(tuned.norm.running_mean, mean, rtol=0, atol=1e-12)  # was 8e-8 off (float32)


def test_a_float64_network_without_normalization_is_standardized_in_float64():
    torch.manual_seed(1)
    x = torch.randn(40, 1, 30, dtype=torch.float64)
    y = (x[:, 0, 5:12].mean(1) > 0).long()
    backbone = nn.Sequential(nn.Conv1d(1, 6, 5), nn.ReLU()).double()
    net = nv.NeuroViewCNN(backbone, 2, input_shape=(1, 30), normalize=False).eval()
    net(x)
    val = [(x[30:], y[30:])]  # a validation split: the dense network's own accuracy on float64 codes
    sp = nv.sparsify(net, [(x[:30], y[:30])], val, tolerance=5.0)
    with torch.no_grad():
        mean = sp.codes(x[:30]).double().mean(0)
    assert sp.norm.running_mean.dtype == torch.float64
    torch.testing.assert_close(sp.norm.running_mean, mean, rtol=0, atol=1e-12)
