"""sparsify(distill=T): the path fitted to the dense network's own probabilities instead of the labels.

The solver's soft-target path is checked against the optimality conditions of the cross-entropy
against soft targets, written here with autograd (not the solver's gradient); the sparse head is
checked to read the unit the dense decision reads, on a hand-built network whose labels follow
another unit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.training.glm import fit_path, lambda_grid, relax, targets


def _soft(n=160, seed=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 10, generator=g)
    logits = torch.stack([x[:, 1], -0.5 * x[:, 4], 0.3 * x[:, 7]], 1) * 2
    return x, torch.softmax(logits, 1)


def test_the_soft_target_path_meets_the_optimality_conditions(one_thread):
    # KKT of  mean_i -sum_c p_ic log softmax(z_i)_c + lam ||W||_1, the gradient from autograd
    x, p = _soft()
    lams = lambda_grid(x, p, 3, points=4)
    for lam, (w, b) in zip(lams.tolist(), fit_path(x, p, 3, lambdas=lams, tol=1e-5, max_iter=5000)):
        wv, bv = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
        (-(p * torch.log_softmax(x @ wv.T + bv, 1)).sum(1).mean()).backward()
        zero = w == 0
        assert bv.grad.abs().max() < 1e-4
        assert (wv.grad[zero].abs() <= lam * (1 + 1e-3) + 1e-5).all()
        assert torch.allclose(wv.grad[~zero], -lam * w[~zero].sign(), atol=1e-4)
    w0, b0 = fit_path(x, p, 3, lambdas=lams[:1])[0]
    assert (w0 == 0).all() and torch.allclose(torch.softmax(b0, 0), p.mean(0), atol=1e-5)  # the mean probabilities
    # the relaxed refit lowers the soft loss on its support
    w, b = fit_path(x, p, 3, lambdas=lams)[-1]
    w2, b2 = relax(x, p, w, b, l2=0.0)
    loss = lambda w, b: float(-(p * torch.log_softmax(x @ w.T + b, 1)).sum(1).mean())
    assert torch.equal(w2 == 0, w == 0) and loss(w2, b2) <= loss(w, b) + 1e-7


def test_one_hot_targets_walk_the_labels_path():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(90, 8, generator=g)
    y = (x[:, 2] + 0.3 * torch.randn(90, generator=g) > 0).long() + (x[:, 5] > 1).long()
    lams = lambda_grid(x, y, 3, points=5)
    assert torch.equal(lams, lambda_grid(x, torch.eye(3)[y], 3, points=5))
    for (w1, b1), (w2, b2) in zip(fit_path(x, y, 3, lambdas=lams), fit_path(x, torch.eye(3)[y], 3, lambdas=lams)):
        assert torch.equal(w1, w2) and torch.equal(b1, b2)


@pytest.mark.parametrize("bad", [torch.full((4, 2), 0.5), torch.tensor([[0.5, 0.6, -0.1]] * 4),
                                 torch.tensor([[0.2, 0.2, 0.2]] * 4), torch.tensor([[float("nan"), 0.5, 0.5]] * 4)])
def test_bad_soft_targets_are_an_error_naming_y(bad):
    with pytest.raises(ValueError, match="y: "):
        targets(bad, 3)


def _hand_built():
    """A NeuroView-CNN whose head decides by unit 3's code alone; labels that follow unit 8's."""
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 12, 5), nn.ReLU()), 2, input_shape=(1, 30), normalize=False).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(160, 1, 30, generator=g)
    with torch.no_grad():
        feats = torch.cat([net.codes(x[i:i + 40]) for i in range(0, 160, 40)])
        net.classifier.weight.zero_()
        net.classifier.weight[1, 3], net.classifier.weight[0, 3] = 40.0, -40.0
        med3, med8 = feats[:, 3].median(), feats[:, 8].median()
        net.classifier.bias.copy_(torch.tensor([40.0 * med3, -40.0 * med3]))
    y = (feats[:, 8] > med8).long()
    dense = net(x).argmax(1)
    assert 0.2 < float((dense == y).float().mean()) < 0.8  # the labels are not the dense decision
    return net, x, y, dense


def test_distill_reads_the_unit_of_the_dense_decision_the_labels_another(one_thread):
    net, x, y, dense = _hand_built()
    batches = [(x[i:i + 40], y[i:i + 40]) for i in range(0, 160, 40)]
    read = {}
    for distill in (None, 1.0):
        sparse = nv.sparsify(net, batches, distill=distill, tolerance=100.0, deviance=0.0, points=12, folds=4)
        cols = (sparse.classifier.weight != 0).any(0).nonzero()[:, 0].tolist()
        read[distill] = (cols, float((sparse(x).argmax(1) == dense).float().mean()), float((sparse(x).argmax(1) == y).float().mean()))
        exp = sparse.explain(x[:5])  # still exact
        assert torch.allclose(exp.for_class().sum(-1) + exp.bias[exp.target], sparse(x[:5]).gather(1, exp.target[:, None])[:, 0],
                              atol=1e-5)
    assert read[1.0][0] == [3] and read[1.0][1] >= 0.95  # the dense decision's unit, and its decisions
    assert 8 in read[None][0] and 3 not in read[None][0] and read[None][2] >= 0.9  # the labels' unit
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), _hand_built()[0].state_dict().values()))


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), True, "1"])
def test_distill_rejects_a_temperature_that_is_not_positive(bad):
    net, x, y, _ = _hand_built()
    with pytest.raises(ValueError, match="distill: expected None or a temperature > 0"):
        nv.sparsify(net, [(x, y)], distill=bad)


@pytest.mark.parametrize("kind", ["cnn", "rnn", "ensemble"])
def test_the_targets_are_the_dense_networks_own_probabilities(kind, monkeypatch, one_thread):
    """What the path fits is softmax(net(x) / T) of the network itself, run here, for every kind sparsify takes."""
    from neuroview.training import sparsify as module

    torch.manual_seed(0)
    x = torch.randn(40, 2, 16)
    y = torch.arange(40) % 3
    if kind == "rnn":
        net = nv.wrap(nn.GRU(2, 8, batch_first=True), num_classes=3, max_len=16).eval()
        xin = x.transpose(1, 2)  # [N, T, C] for the network; sparsify takes a data module's [N, C, T]
    else:
        make = lambda: nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(2, 6, 3), nn.ReLU()), 3, input_shape=(2, 16))  # noqa: E731
        net = (nv.Ensemble([make(), make()]) if kind == "ensemble" else make()).eval()
        xin = x
    net(xin)  # find the sites
    seen = []
    real = module.lambda_grid
    monkeypatch.setattr(module, "lambda_grid", lambda z, t, *a, **k: seen.append(t) or real(z, t, *a, **k))
    nv.sparsify(net, [(x, y)], distill=2.0, points=4, folds=2)
    with torch.no_grad():
        expected = torch.softmax(net(xin) / 2.0, 1)
    assert torch.allclose(seen[0], expected, atol=1e-5)


def test_soft_targets_in_low_precision_sum_to_one_within_their_rounding():
    p = torch.softmax(torch.randn(50, 7, generator=torch.Generator().manual_seed(0)), 1).bfloat16()
    assert targets(p, 7).dtype == torch.float32  # bfloat16 rows sum to 1 only within bfloat16's rounding
    with pytest.raises(ValueError, match="y: soft targets"):
        targets((p.float() * 1.05).bfloat16(), 7)  # 5% off is not rounding
