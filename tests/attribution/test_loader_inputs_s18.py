"""The functions that read a loader (`readability`, `unit_gallery`, `mean_codes`, `sparsify`, `finetune_sparse`,
`fit_ridge_head`, `minirocket`, the Lightning module's batch check) on inputs a probe found mishandled (s18): bool
labels (a 2-class task's: classes 0 and 1; a mask over more classes: refused), a bool mask given for lengths or sample
indices, lengths stored as uint64, and a `torch.compile`d network.

Every value compared is recomputed here: accuracies from the network's own logits, results with uint64 lengths
against the same lengths as int64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.readability import units_per_class

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


# ------------------------------------------------------------------ bool labels: a 2-class task's, or a mask
def test_a_bool_mask_as_labels_of_a_network_of_3_classes_is_refused_by_every_loader_reader():
    net, x, y = _cnn(3)
    mask = y == 1  # "the class-1 samples": was read as classes 1 and 0
    with torch.no_grad():
        want = 100.0 * (net(x).argmax(1) == y).double().mean().item()
    assert nv.readability(net, [(x, y)])["accuracy"] == pytest.approx(want)  # the labels themselves: as before
    for call in (lambda m: nv.readability(net, [(x, m)]),
                 lambda m: nv.unit_gallery(net, [(x, m)], units=[0], k=2),
                 lambda m: nv.sparsify(net, [(x, m)], points=3, folds=2),
                 lambda m: nv.fit_ridge_head(net, [(x, m)])):
        for m in (mask, mask.numpy(), mask.tolist()):
            with pytest.raises(TypeError, match=MASK + r" \(a task of 3 classes\): pass each sample's class "
                                                        r"index, or y.long\(\) where True and False are classes 1 and 0"):
                call(m)


def test_bool_labels_of_a_2_class_network_are_classes_0_and_1_for_every_loader_reader():
    net, x, y = _cnn(2)
    b = y == 1
    with torch.no_grad():  # against the labels as 0 / 1, from the network's own logits
        want = 100.0 * (net(x).argmax(1) == y).double().mean().item()
    for m in (b, b.numpy(), b.tolist()):
        assert nv.readability(net, [(x, m)])["accuracy"] == pytest.approx(want)
        g, ref = nv.unit_gallery(net, [(x, m)], units=[0], k=2), nv.unit_gallery(net, [(x, y)], units=[0], k=2)
        assert torch.equal(g.index, ref.index) and torch.equal(g.value, ref.value)
        fit, fit_ref = nv.fit_ridge_head(net, [(x, m)]), nv.fit_ridge_head(net, [(x, y)])
        assert torch.equal(fit.classifier.weight, fit_ref.classifier.weight)
    from neuroview.training.module import NeuroViewModule  # its batch check: a user's loader of bool labels trained

    module = NeuroViewModule("nv_small_cnn", num_classes=2, in_channels=1)
    assert module.on_before_batch_transfer((x, b), 0)[1].tolist() == y.tolist()
    three = NeuroViewModule("nv_small_cnn", num_classes=3, in_channels=1)
    with pytest.raises(TypeError, match=r"y: " + MASK + r" \(a task of 3 classes\)"):
        three.on_before_batch_transfer((x, b), 0)


def test_bool_labels_in_finetune_sparse_and_minirocket_follow_the_class_count():
    net, x, y = _cnn(3)
    sparse = nv.sparsify(net, [(x, y)], points=3, folds=2, tolerance=50.0)
    with pytest.raises(TypeError, match="train: " + MASK + r" \(a task of 3 classes\)"):
        nv.finetune_sparse(sparse, [(x, y == 1)], epochs=1)
    net2, x2, y2 = _cnn(2)
    sparse2 = nv.sparsify(net2, [(x2, y2)], points=3, folds=2, tolerance=50.0)
    torch.manual_seed(0)
    got = nv.finetune_sparse(sparse2, [(x2, y2 == 1)], epochs=1)
    torch.manual_seed(0)
    ref = nv.finetune_sparse(sparse2, [(x2, y2)], epochs=1)
    assert torch.equal(got.classifier.weight, ref.classifier.weight)
    # minirocket: no class count known (no num_classes, no data module): refused, y.long() named as the way out
    xs = torch.randn(20, 1, 12, generator=torch.Generator().manual_seed(3))
    ys = torch.arange(20) % 2
    with pytest.raises(TypeError, match="train: " + MASK + r": pass each sample's class index, or y.long\(\)"):
        nv.minirocket([(xs, ys == 1)], num_features=84)
    got = nv.minirocket([(xs, ys == 1)], num_classes=2, num_features=84)
    ref = nv.minirocket([(xs, ys)], num_classes=2, num_features=84)
    assert torch.equal(got.classifier.weight, ref.classifier.weight)


def test_bool_labels_of_the_faithfulness_tools_follow_the_class_count():
    from neuroview.attribution.faithfulness import unit_scores

    net, x, y = _cnn(2)
    want = unit_scores(net, x, y, "neuroview")
    assert torch.equal(unit_scores(net, x, y == 1, "neuroview"), want)
    net3, x3, y3 = _cnn(3)
    with pytest.raises(TypeError, match=r"y: " + MASK + r" \(a task of 3 classes\)"):
        unit_scores(net3, x3, y3 == 1, "neuroview")


def test_the_report_reads_bool_labels_of_a_2_class_data_module_as_classes_0_and_1():
    from neuroview.viz.report import load_batch
    from neuroview.viz.report_data import check_labels

    y = torch.tensor([0, 1, 1, 0, 1])
    assert check_labels(y == 1, 5, 2).tolist() == y.tolist()
    with pytest.raises(TypeError, match=r"y: " + MASK + r" \(a task of 3 classes\)"):
        check_labels(y == 1, 5, 3)

    class Bools:  # a user's data module whose dataset gives each label as a bool (is_positive)
        def __init__(self, num_classes):
            self.num_classes = num_classes

        def setup(self, stage):
            pass

        def _dataset(self, split):
            return [(torch.full((1, 4), float(i)), bool(v)) for i, v in enumerate(y.tolist())]

    x, lengths, got = load_batch(Bools(2), "test", 10)
    assert got.tolist() == y.tolist() and lengths is None and x[:, 0, 0].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError, match=r"data: " + MASK + r" \(a task of 3 classes\)"):
        load_batch(Bools(3), "test", 10)


def test_a_bool_mask_for_lengths_or_sample_indices_is_named_as_such_not_as_classes():
    from neuroview.attribution import importance
    from neuroview.viz.report_data import check_options

    xs = torch.randn(3, 5, 2)
    with pytest.raises(TypeError, match=r"lengths: expected integer lengths, one per row of x, got .*\(booleans: a mask "
                                        r"is no lengths: pass one integer length per row of x\)") as e:
        importance.class_means(xs, torch.tensor([0, 1, 0]), 2, lengths=torch.tensor([True, True, False]))
    assert "class" not in str(e.value)
    with pytest.raises(TypeError, match=r"sample_indices: expected integer indices, one per sample of x, got .*"
                                        r"\(booleans: a mask: pass np.flatnonzero\(mask\)") as e:
        check_options(3, 8, 2, None, np.array([True, False, True]))
    assert "class" not in str(e.value)
    assert check_options(2, 8, 2, None, np.flatnonzero(np.array([True, False, True]))) == [0, 2]


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
    for value in (2 ** 63 + 5, 2 ** 64 - 1):  # a negative int64 when cast; a -1 wrapped round in unsigned arithmetic
        big[0] = value  # refused as no length, named by the value given (it was int64's largest, 9223372036854775807)
        with pytest.raises(ValueError, match=r"batches: a batch of 3 items is read as \(x, lengths, y\), and its middle "
                                             r"item is not lengths \(one integer per sample in \[1, 6\], the steps of x\): "
                                             rf"got shape \(24,\), torch.uint64, values 1 to {value}; pass batches"):
            nv.readability(net, [(xc, torch.from_numpy(big), y)])


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
    with pytest.raises(TypeError, match=match):  # every caller of require_neuroview: the network alone too
        units_per_class(compiled)
    # its network, which shares the compiled module's weights, reads the batches
    with torch.no_grad():
        logits = net(x) if family == "cnn" else net(xc.transpose(1, 2), lengths=lengths)
    want = 100.0 * (logits.argmax(1) == y).double().mean().item()
    assert nv.readability(compiled._orig_mod, batches)["accuracy"] == pytest.approx(want)
