"""The functions that read a loader (`readability`, `unit_gallery`, `mean_codes`, `sparsify`, `finetune_sparse`,
`fit_ridge_head`, `minirocket`) on inputs a probe found mishandled (s18): a bool mask given as the labels, lengths
stored as uint64, and a `torch.compile`d network.

Every value compared is recomputed here: accuracies from the network's own logits, results with uint64 lengths
against the same lengths as int64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv

MASK = r"expected a class index or a tensor of them, got .*\(booleans: a mask picks samples, not classes"


def _cnn(classes: int = 3) -> tuple[nv.NeuroViewCNN, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = nv.wrap(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 3), nn.ReLU()), num_classes=classes,
                  input_shape=(1, 16))
    g = torch.Generator().manual_seed(1)
    y = torch.arange(60) % classes
    x = torch.randn(60, 1, 16, generator=g) + 0.8 * y[:, None, None]
    net.train()
    net(x)
    return net.eval(), x, y


def _rnn() -> tuple[nv.NeuroViewRNN, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = nv.wrap(nn.GRU(2, 3, batch_first=True), num_classes=3, max_len=6)
    x = torch.randn(24, 6, 2, generator=torch.Generator().manual_seed(2))
    lengths = torch.tensor([6, 3, 1, 6, 2, 4] * 4)
    net.train()
    net(x, lengths=lengths)
    return net.eval(), x.transpose(1, 2), lengths, torch.arange(24) % 3  # series channels-first, as loaders give


# ------------------------------------------------------------------ a bool mask given as the labels
@pytest.mark.parametrize("classes", [2, 3])
def test_a_bool_mask_as_labels_is_refused_by_every_loader_reader(classes):
    net, x, y = _cnn(classes)
    mask = y == 1  # "the class-1 samples": was read as classes 1 and 0
    with torch.no_grad():
        want = 100.0 * (net(x).argmax(1) == y).double().mean().item()
    assert nv.readability(net, [(x, y)])["accuracy"] == pytest.approx(want)  # the labels themselves: as before
    for call in (lambda m: nv.readability(net, [(x, m)]),
                 lambda m: nv.unit_gallery(net, [(x, m)], units=[0], k=2),
                 lambda m: nv.sparsify(net, [(x, m)], points=3, folds=2),
                 lambda m: nv.fit_ridge_head(net, [(x, m)])):
        for m in (mask, mask.numpy(), mask.tolist()):
            with pytest.raises(TypeError, match=MASK):
                call(m)


def test_a_bool_mask_is_refused_by_finetune_sparse_and_minirocket():
    net, x, y = _cnn(2)
    sparse = nv.sparsify(net, [(x, y)], points=3, folds=2, tolerance=50.0)
    with pytest.raises(TypeError, match="train: " + MASK):
        nv.finetune_sparse(sparse, [(x, y == 1)], epochs=1)
    with pytest.raises(TypeError, match="train: " + MASK):
        nv.minirocket([(x, y == 1)], num_features=84)


# ------------------------------------------------------------------ lengths stored as uint64
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_uint64_lengths_are_read_as_their_int64_values(kind):
    net, xc, lengths, y = _rnn()
    u = lengths.numpy().astype(np.uint64) if kind == "numpy" else lengths.to(torch.uint64)
    with torch.no_grad():
        want = 100.0 * (net(xc.transpose(1, 2), lengths=lengths).argmax(1) == y).double().mean().item()
    got = nv.readability(net, [(xc, u, y)])
    assert got["accuracy"] == pytest.approx(want)
    assert got == nv.readability(net, [(xc, lengths, y)])
    assert torch.equal(nv.mean_codes(net, [(xc, u, y)]), nv.mean_codes(net, [(xc, lengths, y)]))
    g_u, g_i = nv.unit_gallery(net, [(xc, u, y)], units=[0], k=2), nv.unit_gallery(net, [(xc, lengths, y)], units=[0], k=2)
    assert torch.equal(g_u.index, g_i.index) and torch.equal(g_u.value, g_i.value)
    assert torch.equal(g_u.lengths, g_i.lengths) and g_u.lengths.dtype == g_i.lengths.dtype
    gru = nn.GRU(2, 3, batch_first=True)
    res_u = nv.retrofit(gru, [(xc, u, y)], num_classes=3, max_len=6)
    res_i = nv.retrofit(gru, [(xc, lengths, y)], num_classes=3, max_len=6)
    assert res_u.train_acc == res_i.train_acc
    assert all(torch.equal(a, b) for a, b in zip(res_u.model.state_dict().values(), res_i.model.state_dict().values()))


def test_uint64_lengths_out_of_range_are_named():
    net, xc, lengths, y = _rnn()
    big = lengths.numpy().astype(np.uint64)
    big[0] = 2 ** 63 + 5  # a negative int64 when cast: refused as no length, not wrapped round
    big = torch.from_numpy(big)
    with pytest.raises(ValueError, match=r"batches: a batch of 3 items is read as \(x, lengths, y\), and its middle item "
                                         r"is not lengths \(one integer per sample in \[1, 6\], the steps of x\): got shape \(24,\), "
                                         r"torch.uint64, values 1 to 9223372036854775807"):
        nv.readability(net, [(xc, big, y)])


# ------------------------------------------------------------------ a torch.compile'd network
@pytest.mark.parametrize("family", ["cnn", "rnn"])
def test_a_compiled_network_is_refused_by_name_with_its_uncompiled_one(family):
    if family == "cnn":
        net, x, y = _cnn()
        batches = [(x, y)]
    else:
        net, xc, lengths, y = _rnn()
        batches = [(xc, lengths, y)]
    compiled = torch.compile(net)  # never run: nothing is compiled
    match = (r"net: expected a NeuroView network, got a torch.compile'd OptimizedModule \(around a "
             + type(net).__name__ + r"\); pass the network it compiled, net._orig_mod")
    for call in (nv.readability, nv.mean_codes, nv.fit_ridge_head):
        with pytest.raises(TypeError, match=match):
            call(compiled, batches)
    # its network, which shares the compiled module's weights, reads the batches
    with torch.no_grad():
        logits = net(x) if family == "cnn" else net(xc.transpose(1, 2), lengths=lengths)
    want = 100.0 * (logits.argmax(1) == y).double().mean().item()
    assert nv.readability(compiled._orig_mod, batches)["accuracy"] == pytest.approx(want)
