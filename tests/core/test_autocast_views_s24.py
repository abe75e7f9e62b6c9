"""Every view of an explanation is exact when read inside ``torch.autocast`` (probe S24 P3, Finding 1).

``by_site()``, ``site_magnitudes()``, ``layer_time()``, ``direction_time()`` and ``layer_magnitudes()`` reduce the codes
and the weight with a matmul or an einsum, which CPU / CUDA autocast runs in bfloat16 / float16: read inside an autocast
block (the usual inference pattern) they came back in bfloat16 and missed ``logits - bias`` by about 1% of the logit,
and so did the RNN's ``to_records()``, ``importance.layer_shares`` / ``layer_time_weights`` and an ensemble's
explanation. Each is checked here against sums formed by the test itself, in float64, from the codes and the weight
(``W[c, u] * (code - baseline)``), and against the logits.
"""

from __future__ import annotations

import collections

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.importance import layer_shares, layer_time_weights

_DTYPES = [torch.bfloat16, torch.float16]


def _cnn(seed: int = 0):
    torch.manual_seed(seed)
    net = nv.wrap(nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU()), num_classes=5)
    x = torch.randn(16, 1, 10, 10)
    net.train()
    for _ in range(2):
        net(x)
    return net.eval(), x


def _rnn(seed: int = 0):
    torch.manual_seed(seed)
    net = nv.wrap(nn.GRU(3, 12, num_layers=2, batch_first=True, bidirectional=True), num_classes=4, max_len=20)
    x = torch.randn(8, 20, 3)
    net.train()
    for _ in range(2):
        net(x)
    return net.eval(), x


def _contrib64(exp) -> torch.Tensor:
    """``[B, C, ...]`` in float64: ``W[c, u] * (code_u - baseline_u)``, formed here, not by the explanation."""
    d = exp.codes.double() - (0 if exp.baseline is None else exp.baseline.double())
    return d[:, None] * exp.weight.double()[None]


def _close(got: torch.Tensor, want: torch.Tensor, scale: torch.Tensor) -> None:
    assert got.dtype == torch.float32, got.dtype  # not autocast's bfloat16 / float16
    tol = 1e-5 * max(1.0, float(scale.abs().max()))  # float32 rounding of sums of a few hundred terms
    assert (got.double() - want).abs().max().item() <= tol


@pytest.mark.parametrize("dtype", _DTYPES, ids=["bf16", "fp16"])
@pytest.mark.parametrize("against", ["zero", "codes"])
def test_cnn_views_read_inside_autocast_sum_to_the_logits(dtype, against):
    net, x = _cnn()
    units = net.explain(x[:1]).codes.shape[1]
    exp = net.explain(x, baseline=None if against == "zero" else torch.rand(units, generator=torch.Generator().manual_seed(5)))
    c = _contrib64(exp)  # [B, C, U]
    target = (exp.logits.double() - exp.bias.double())  # what the contributions add up to
    per_site = torch.stack([c[..., s].sum(-1) for s in exp.site_slices.values()], -1)
    mags = torch.stack([c[..., s].abs().sum(-1) for s in exp.site_slices.values()], -1)
    with torch.autocast("cpu", dtype=dtype):
        by_site, site_mags = exp.by_site(), exp.site_magnitudes()
        shares, _ = layer_shares(exp)
    _close(by_site, per_site, exp.logits)
    _close(by_site.sum(-1), target, exp.logits)
    _close(site_mags, mags, mags)
    want = mags.mean(0)
    _close(shares, want / want.sum(-1, keepdim=True), torch.ones(()))


@pytest.mark.parametrize("dtype", _DTYPES, ids=["bf16", "fp16"])
def test_cnn_explained_and_read_in_one_autocast_block_sums_to_its_logits(dtype):
    net, x = _cnn(1)
    with torch.autocast("cpu", dtype=dtype):
        exp = net.explain(x)
        by_site = exp.by_site()
    per_site = torch.stack([_contrib64(exp)[..., s].sum(-1) for s in exp.site_slices.values()], -1)
    _close(by_site, per_site, exp.logits)
    _close(by_site.sum(-1) + exp.bias, exp.logits.double(), exp.logits)


@pytest.mark.parametrize("dtype", _DTYPES, ids=["bf16", "fp16"])
def test_rnn_views_read_inside_autocast_sum_to_the_logits(dtype):
    net, x = _rnn()
    exp = net.explain(x, lengths=torch.tensor([20, 17, 9, 20, 1, 5, 20, 12]))
    c = _contrib64(exp)  # [B, C, L, D, T, H]
    target = exp.logits.double() - exp.bias.double()
    with torch.autocast("cpu", dtype=dtype):
        lt, dt, lm, ti = exp.layer_time(), exp.direction_time(), exp.layer_magnitudes(), exp.time_importance
        ltw = layer_time_weights(exp)
        shares, _ = layer_shares(exp)
        rows = exp.to_records()
    _close(lt, c.sum(dim=(3, 5)), exp.logits)
    _close(dt, c.sum(-1), exp.logits)
    _close(ti, c.sum(dim=(2, 3, 5)), exp.logits)
    _close(lt.sum((2, 3)), target, exp.logits)
    _close(dt.sum((2, 3, 4)), target, exp.logits)
    mags = c.abs().sum(dim=(3, 4, 5))
    _close(lm, mags, mags)
    _close(ltw, c.sum(dim=(3, 5)).mean(0), exp.logits)  # [C, L, T]: the batch's mean, without labels
    want = mags.mean(0)
    _close(shares, want / want.sum(-1, keepdim=True), torch.ones(()))
    tot = collections.defaultdict(float)
    for r in rows:
        tot[(r["sample"], r["class"])] += r["contribution"]
    got = torch.tensor([[tot[(i, k)] for k in range(exp.num_classes)] for i in range(len(x))], dtype=torch.float64)
    assert (got - target).abs().max().item() <= 1e-5 * max(1.0, float(exp.logits.abs().max()))


@pytest.mark.parametrize("dtype", _DTYPES, ids=["bf16", "fp16"])
def test_an_ensemble_explanation_read_inside_autocast_sums_to_its_logits(dtype):
    members = [_cnn(s)[0] for s in (2, 3)]
    x = torch.randn(6, 1, 10, 10, generator=torch.Generator().manual_seed(4))
    ens = nv.Ensemble(members).eval()
    exp = ens.explain(x)
    c = _contrib64(exp)
    with torch.autocast("cpu", dtype=dtype):
        by_site = exp.by_site()
    _close(by_site, torch.stack([c[..., s].sum(-1) for s in exp.site_slices.values()], -1), exp.logits)
    _close(by_site.sum(-1) + exp.bias, exp.logits.double(), exp.logits)
