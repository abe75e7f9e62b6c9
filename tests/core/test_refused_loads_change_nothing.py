"""A load torch refuses for a key leaves a NeuroView network's head as it was, and a global head of another width is
named at its first use (a probe's faults, each failing on the code before it)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv


def _backbone(seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))


def _data():
    torch.manual_seed(0)
    x, y = torch.randn(48, 1, 12, 12), torch.arange(48) % 3
    x[y == 1] += 0.5
    return x, [(x[i:i + 16], y[i:i + 16]) for i in range(0, 48, 16)]


def test_a_refused_load_builds_no_head_into_a_lazy_wrap():
    x, _ = _data()
    other = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1)
    other(x[:4])
    lazy = nv.wrap(_backbone(), 3)
    with pytest.raises(RuntimeError, match="Missing key"):
        lazy.load_state_dict(other.state_dict())
    assert lazy.classifier is None and lazy.norm is None  # a head 224 wide was left: its first batch then failed
    assert lazy(x[:4]).shape == (4, 3)


def test_a_refused_load_adopts_no_normalization_and_merges_no_shared_step():
    x, batches = _data()
    dense = nv.wrap(_backbone(), 3, normalize=False).eval()
    dense(x[:4])
    own = {k: v.clone() for k, v in dense.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = nv.sparsify(dense, batches, points=6, folds=2, max_iter=50)
    bad = dict(sparse.state_dict()) | {"stray": torch.zeros(1)}
    order = list(dense.state_dict())
    with pytest.raises(RuntimeError, match="Unexpected key"):
        dense.load_state_dict(bad)
    assert dense.norm is None and list(dense.state_dict()) == order  # the review: its head put back in its place
    dense.load_state_dict(own)  # its own checkpoint loads again ("Missing key(s): norm.running_mean" before)
    torch.manual_seed(3)
    rnn = nv.NeuroViewRNN(nn.GRU(2, 5, batch_first=True), 3, max_len=10, shared_steps=True).eval()
    own = {k: v.clone() for k, v in rnn.state_dict().items()}
    bad = {k: v for k, v in own.items() if k != "step_shared.weight"} | {"stray": torch.zeros(1)}
    order = [n for n, _ in rnn.named_children()]
    with pytest.raises(RuntimeError, match="Unexpected key"):
        rnn.load_state_dict(bad)
    assert rnn.step_shared is not None and [n for n, _ in rnn.named_children()] == order
    rnn.load_state_dict(own)


def test_an_ensemble_s_global_head_of_another_width_is_named():
    x, _ = _data()
    single = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1)
    single(x[:4])
    ens = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1, members=3)
    ens(x[:4])
    with pytest.raises(RuntimeError):
        ens.load_state_dict(single.state_dict())
    assert ens.classifier is None and ens(x[:4]).shape == (4, 3)  # refused: no head left (a bare matmul error after)
    ens.load_state_dict(single.state_dict(), strict=False)  # the user's choice: what fits is loaded
    with pytest.raises(ValueError, match="members: their sites have 672 units but the global head reads 224"):
        ens(x[:4])
