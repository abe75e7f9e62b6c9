"""The tools that make or train a network work under ``torch.inference_mode()`` (a Lightning test loop runs in it), and
what they return is an ordinary network afterwards; the unit gallery reads a float32 network whatever torch's
default dtype is (a probe's faults, each failing on the code before it)."""

from __future__ import annotations

import gc
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv


def _net_and_loader():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(), nn.Flatten(),
                       nn.Linear(180, 3))
    net = nv.wrap(bb, 3, input_shape=(1, 6, 6)).eval()
    x, y = torch.rand(60, 1, 6, 6), torch.arange(60) % 3
    return net, [(x[i:i + 20], y[i:i + 20]) for i in range(0, 60, 20)], x, y


def _trains(net, x, y):
    net.train()
    nn.functional.cross_entropy(net(x[:10]), y[:10]).backward()  # "Inference tensors cannot be saved for backward" before
    return any(p.grad is not None for p in net.parameters())


def test_a_sparse_head_made_under_inference_mode_trains_and_fine_tunes():
    net, loader, x, y = _net_and_loader()
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = nv.sparsify(net, loader, points=4, folds=2)
        tuned = nv.finetune_sparse(sparse, loader, epochs=1)  # a bare "does not require grad" before
    assert not any(p.is_inference() for p in sparse.parameters())
    assert _trains(sparse, x, y) and _trains(tuned, x, y)
    del sparse, tuned
    gc.collect()  # its release thawed nothing it could not ("Setting requires_grad=True on inference tensor")


def test_a_ridge_head_made_under_inference_mode_is_an_ordinary_network():
    net, loader, x, y = _net_and_loader()
    with torch.inference_mode():
        ridge = nv.fit_ridge_head(net, loader)
    assert not any(p.is_inference() for p in ridge.parameters())
    assert _trains(ridge, x, y)


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_the_gallery_reads_a_float32_network_under_a_float64_default(kind):
    torch.manual_seed(0)
    if kind == "cnn":
        net, loader, _, _ = _net_and_loader()
        units = [0, 5]
    else:
        net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=6).eval()
        loader, units = [(torch.randn(20, 2, 6), torch.arange(20) % 3)], [0, 1]
    ref = nv.unit_gallery(net, loader, units, k=3)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        got = nv.unit_gallery(net, loader, units, k=3)  # a bare index_put / index_add_ dtype error before
    finally:
        torch.set_default_dtype(old)
    assert torch.equal(got.index, ref.index) and torch.equal(got.value, ref.value)
