"""Caps on what each class reads (``max_units_per_class``, ``max_steps_per_class``): unlike a k90
budget, which holds for the training split's median decision, a cap holds for every decision on
any data. Counted here from the head's weights and from the explanations, not by the code under test;
the cut of a point to the caps checked on hand-built weights with known answers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.training.sparsity_path import cap_weights


def _fit(net, x, y, steps, lr=1e-2):
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


def _spread(n, seed):
    """Three classes whose evidence is spread over samples 2..13 of 16: a dense head reads many units."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 16, generator=g)
    s = x[:, 0, 2:14].reshape(n, 3, 4).sum(2)
    return x, s.argmax(1)


def _steps_read(weight: torch.Tensor, feature_shape) -> torch.Tensor:
    """``[C]`` the time steps each class reads: a step counts where any of its hidden states has a weight."""
    w = weight.reshape(weight.shape[0], *feature_shape)  # [C, L, D, T, H]
    return (w != 0).any(4).any(2).any(1).sum(1)


def test_a_unit_cap_bounds_what_every_class_reads_and_every_decision_on_new_data(one_thread):
    torch.manual_seed(0)
    x, y = _spread(240, 0)
    net = _fit(nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 12, 3), nn.ReLU(), nn.Conv1d(12, 12, 3), nn.ReLU()), 3,
                               input_shape=(1, 16)), x[:180], y[:180], 150)
    train = [(x[:180], y[:180])]
    free = nv.sparsify(net, train, folds=3, max_iter=200, tolerance=0.0)
    capped = nv.sparsify(net, train, folds=3, max_iter=200, tolerance=0.0, max_units_per_class=3)
    assert int((free.classifier.weight != 0).sum(1).max()) > 3  # the cap binds here
    per_class = (capped.classifier.weight != 0).sum(1)
    assert int(per_class.max()) <= 3 and int(per_class.min()) >= 0 and int(per_class.sum()) > 0
    # every decision on samples it never saw reads at most 3 units, and still sums to its logit
    exp = capped.explain(x[180:], baseline=nv.mean_codes(capped, train))
    contrib = exp.for_class(exp.predicted).flatten(1)
    assert int((contrib != 0).sum(1).max()) <= 3
    rows = torch.arange(len(contrib))
    assert torch.allclose(exp.bias[exp.predicted] + contrib.sum(1), capped(x[180:])[rows, exp.predicted], atol=1e-4)
    path = capped.sparsity_path
    assert path.max_units_per_class == 3 and "at most 3 units per class" in str(path)
    assert net.classifier.weight.count_nonzero() == net.classifier.weight.numel()  # the given network untouched


def test_a_step_cap_bounds_the_steps_each_class_reads_and_finetuning_keeps_it(one_thread):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(150, 1, 12, generator=g)
    y = (x[:, 0, 2:10].sum(1) > 0).long()  # evidence spread over eight steps
    net = _fit(nv.NeuroViewRNN(nn.GRU(1, 6, batch_first=True), 2, max_len=12), x[:120].transpose(1, 2), y[:120], 60)
    train = [(x[:120], y[:120])]
    free = nv.sparsify(net, train, folds=3, max_iter=200, tolerance=0.0)
    capped = nv.sparsify(net, train, folds=3, max_iter=200, tolerance=0.0, max_steps_per_class=2)
    assert int(_steps_read(free.classifier.weight, free.feature_shape).max()) > 2  # the cap binds here
    assert int(_steps_read(capped.classifier.weight, capped.feature_shape).max()) <= 2
    tuned = nv.finetune_sparse(capped, train, epochs=2)
    assert int(_steps_read(tuned.classifier.weight, tuned.feature_shape).max()) <= 2
    # each decision on new series: its contributions summed per step, at most 2 steps nonzero
    exp = tuned.explain(x[120:].transpose(1, 2), baseline=nv.mean_codes(tuned, train))
    per_step = exp.for_class(exp.predicted).reshape(30, *tuned.feature_shape).sum(dim=(1, 2, 4))
    assert int((per_step != 0).sum(1).max()) <= 2
    assert "at most 2 steps per class" in str(capped.sparsity_path)


def test_caps_reject_bad_values():
    x = torch.randn(40, 1, 16)
    y = torch.arange(40) % 2
    cnn = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2, input_shape=(1, 16)).eval()
    for bad in (0, 1.5, True, "3"):
        with pytest.raises(ValueError, match="max_units_per_class: expected None or an int >= 1"):
            nv.sparsify(cnn, [(x, y)], max_units_per_class=bad)
    with pytest.raises(ValueError, match="max_steps_per_class: a cap in time steps needs a NeuroViewRNN"):
        nv.sparsify(cnn, [(x, y)], max_steps_per_class=2)


def test_cap_weights_keeps_each_classs_largest_weights_and_steps():
    w = torch.tensor([[0.5, -3.0, 0.0, 2.0, 0.1, -0.2],
                      [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    assert cap_weights(w, max_units=2).tolist() == [[0.0, -3.0, 0.0, 2.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    steps = torch.tensor([0, 0, 1, 1, 2, 2])  # per class and step, summed |weight|: 3.5, 2.0, 0.3 | 1, 0, 0
    assert cap_weights(w, steps, max_steps=1).tolist() == [[0.5, -3.0, 0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    # steps first, then units within them
    assert cap_weights(w, steps, max_units=1, max_steps=2).tolist() == [[0.0, -3.0, 0.0, 0.0, 0.0, 0.0],
                                                                       [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]]
    assert cap_weights(w, max_units=9).equal(w) and w[0, 0] == 0.5  # nothing to cut; the input untouched


def test_near_copies_that_enter_the_path_together_are_cut_to_the_cap(one_thread):
    # twelve near copies of one unit: they enter the L1 path together, at any penalty
    torch.manual_seed(0)
    conv = nn.Conv1d(1, 12, 3)
    with torch.no_grad():
        conv.weight.copy_(conv.weight[:1].repeat(12, 1, 1) + 1e-3 * torch.randn(12, 1, 3))
        conv.bias.copy_(conv.bias[:1].repeat(12) + 1e-3 * torch.randn(12))
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, input_shape=(1, 16), quantizer="soft").eval()
    x = torch.randn(90, 1, 16, generator=torch.Generator().manual_seed(2))
    y = (net.codes(x)[:, 0] > net.codes(x)[:, 0].median()).long()
    free = nv.sparsify(net, [(x, y)], folds=3, max_iter=200)
    assert int((free.classifier.weight != 0).sum(1).min()) > 2  # every point of the path reads more
    capped = nv.sparsify(net, [(x, y)], folds=3, max_iter=200, max_units_per_class=2)
    assert 1 <= int((capped.classifier.weight != 0).sum(1).max()) <= 2
    assert float(capped.sparsity_path.val_acc[capped.sparsity_path.chosen]) > 90  # one copy decides as well
