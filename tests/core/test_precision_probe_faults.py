"""Precision kept where it was promised (a probe's faults, each failing on the code before it): records of a float64
explanation carry float64 (they sum to the logit as the tensors do), and a float16 network is never fine-tuned into
NaN weights."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv


def test_records_of_a_float64_explanation_sum_to_its_logit():
    torch.manual_seed(0)
    net = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1, widths=[4, 8]).double()
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    exp = net.explain(x)
    rows = exp.to_records()
    for b in range(len(x)):
        c = int(exp.predicted[b])
        total = sum(r["contribution"] for r in rows if r["sample"] == b and r["class"] == c)
        assert abs(total + float(exp.bias[c]) - float(exp.logits[b, c])) < 1e-12  # 1.2e-8 through a float32 cast
    rnn = nv.NeuroViewRNN(nn.GRU(2, 3, batch_first=True), 2, max_len=5).double().eval()
    e = rnn.explain(torch.randn(2, 5, 2, dtype=torch.float64))
    values = sorted(r["contribution"] for r in e.to_records())
    assert values == sorted(e.direction_time().flatten().tolist())


def test_a_float16_network_is_refused_by_the_fine_tuning():
    torch.manual_seed(0)
    net = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1, widths=[4, 8])
    x, y = torch.randn(30, 1, 8, 8), torch.arange(30) % 3
    loader = [(x[i:i + 10], y[i:i + 10]) for i in range(0, 30, 10)]
    net(x[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = nv.sparsify(net, loader, points=4, folds=2).half()
    with pytest.raises(TypeError, match="sparse: float16 weights to train, which AdamW cannot train"):  # NaN weights before
        nv.finetune_sparse(sparse, [(a.half(), b) for a, b in loader], epochs=1)
    frozen = sparse.float()  # a float16 backbone left frozen, the head float32: only the head trains (the review)
    frozen.backbone.half().requires_grad_(False)
    tuned = nv.finetune_sparse(frozen, [(a.half(), b) for a, b in loader], epochs=1)
    assert all(torch.isfinite(p).all() for p in tuned.parameters())
