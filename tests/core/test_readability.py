"""Readability of explanations: k90 and the top-10 share (checked against a plain-Python count),
explanations against the training mean code (exact, with the bias as the average sample's logit),
and a repr that never builds the dense [B, C, U] tensor."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.explanation import Explanation, k_share


def _k90_by_hand(row: list[float]) -> int:
    """The fewest values, largest |value| first, whose |values| make up 90% of the row's total."""
    mags = sorted((abs(v) for v in row), reverse=True)
    total = sum(mags)
    if total == 0:
        return 0
    acc = 0.0
    for i, m in enumerate(mags, 1):
        acc += m
        if acc >= 0.9 * total - 1e-12 * total:
            return i
    return len(mags)


def test_k_share_matches_a_count_by_hand():
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(40, 30, generator=g) * torch.rand(40, 1, generator=g) ** 3  # some rows dominated by few values
    rows[3] = 0.0
    rows[5, 7] = 100.0
    got = k_share(rows, 0.9).tolist()
    assert got == [_k90_by_hand(r) for r in rows.tolist()]
    assert got[3] == 0 and got[5] == 1


def test_explanation_k90_and_top_share_per_decision():
    codes = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    weight = torch.tensor([[10.0, -1.0, 0.5, 0.0], [1.0, 1.0, 1.0, 1.0]])
    bias = torch.zeros(2)
    exp = Explanation(codes @ weight.T + bias, bias, codes=codes, weight=weight)
    exp.target = torch.tensor([0, 1])
    # sample 0, class 0: |10|, |-1|, |.5| of 11.5: 10 is 87%, so k90 = 2; sample 1, class 1: a single 1
    assert exp.k90(per_sample=True).tolist() == [2, 1]
    assert exp.k90() == pytest.approx(1.5)  # the median of 2 and 1
    assert exp.top_share(1, per_sample=True).tolist() == pytest.approx([10 / 11.5, 1.0])
    with pytest.raises(ValueError, match="k:"):
        exp.top_share(0)
    with pytest.raises(ValueError, match="level"):
        exp.k90(level="steps")


def _trained_cnn() -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 6, 3), nn.ReLU(), nn.Conv1d(6, 5, 3), nn.ReLU()), 3,
                          input_shape=(1, 16))
    net.train()
    for _ in range(5):
        net(torch.randn(16, 1, 16))  # moves the normalization's running statistics away from 0
    return net.eval()


def test_mean_baseline_is_exact_and_its_bias_is_the_average_codes_logit():
    net = _trained_cnn()
    x = torch.randn(7, 1, 16)
    exp = net.explain(x, baseline="mean", maps=True)
    mean = net.norm.running_mean
    w, b = net.effective_classifier()
    # the bias is the logit of the baseline code itself
    assert torch.allclose(exp.bias, mean @ w.T + b, atol=1e-5)
    assert torch.allclose(exp.baseline, mean)
    # contributions are W (c - mean), and with the bias they give the network's own logits
    for c in range(3):
        assert torch.allclose(exp.for_class(c), (net.codes(x) - mean) * w[c], atol=1e-6)
        assert torch.allclose(exp.for_class(c).sum(-1) + exp.bias[c], net(x)[:, c], atol=1e-5)
    assert exp.residual().abs().max() < 1e-5
    # per site, every class at once (one product per site, never the dense tensor): against the baseline
    # too (it summed the raw codes, missing the logit by the baseline's share until the dense tensor was read)
    by_site = exp.by_site()
    assert torch.allclose(by_site.sum(-1) + exp.bias, net(x), atol=1e-5)
    assert torch.allclose(by_site, torch.stack([exp.by_site(c) for c in range(3)], 1), atol=1e-6)
    # spatial maps still sum to each unit's contribution
    t = exp.target
    assert torch.allclose(torch.cat([exp.spatial_map(s).flatten(2).sum(-1) for s in exp.site_slices], 1),
                          exp.for_class(t), atol=1e-6)
    # the zero baseline is the default and leaves the classifier's own bias
    assert torch.equal(net.explain(x).bias, b.detach())


def test_baseline_tensor_and_errors():
    net = _trained_cnn()
    x = torch.randn(4, 1, 16)
    base = torch.rand(net.num_units)
    exp = net.explain(x, baseline=base)
    assert torch.allclose(exp.for_class(1).sum(-1) + exp.bias[1], net(x)[:, 1], atol=1e-5)
    with pytest.raises(ValueError, match="baseline: expected a tensor of shape"):
        net.explain(x, baseline=torch.zeros(3))
    with pytest.raises(ValueError, match="baseline: expected None, 'zero', 'mean'"):
        net.explain(x, baseline="median")
    with pytest.raises(ValueError, match="baseline: contains NaN"):
        net.explain(x, baseline=torch.full((net.num_units,), float("nan")))
    raw = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2, input_shape=(1, 8), normalize=False).eval()
    with pytest.raises(ValueError, match="nv.mean_codes"):
        raw.explain(torch.randn(2, 1, 8), baseline="mean")


def test_rnn_baseline_steps_and_k90_levels():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 4, num_layers=2, batch_first=True), 3, max_len=6)
    net.train()
    net(torch.randn(8, 6, 2))
    net.eval()
    x, lengths = torch.randn(5, 6, 2), torch.tensor([6, 2, 4, 6, 1])
    for baseline in (None, "mean"):
        exp = net.explain(x, lengths=lengths, baseline=baseline)
        assert torch.allclose(exp.time_importance.sum(-1) + exp.bias, exp.logits, atol=1e-5)
        assert torch.allclose(exp.logits, net(x, lengths=lengths), atol=1e-5)
        # each series' own steps (features) apart, all its padding steps (past lengths) as one item, their sum
        steps = exp.time_importance[torch.arange(5), exp.target]
        assert exp.k90(per_sample=True, level="steps").tolist() == [
            _k90_by_hand(r[:n] + [sum(r[n:])]) for r, n in zip(steps.tolist(), lengths.tolist())]
        feats = exp.for_class()  # [B, L, D, T, H]
        assert exp.k90(per_sample=True).tolist() == [
            _k90_by_hand(f[:, :, :n].flatten().tolist() + [float(f[:, :, n:].sum())]) for f, n in zip(feats, lengths.tolist())]
    zero = net.explain(x, lengths=lengths)
    assert zero.time_importance[1, :, 2:].eq(0).all()  # against zero codes a padded step adds exactly 0


def test_repr_shows_shapes_and_never_builds_the_dense_tensor():
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU()), 1000, input_shape=(1, 12)).eval()
    exp = net.explain(torch.randn(3, 1, 12))
    text = repr(exp)
    assert exp._contributions is None
    assert "logits=[3, 1000]" in text and "codes=[3, 8]" in text and "tensor(" not in text
    exp.k90(), exp.top_share()
    assert exp._contributions is None  # readability reads one row per sample
