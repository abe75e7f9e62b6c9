"""Without groups the path's penalty is plain L1, ``lam * ||W||_1``, whatever ``l1_ratio``.

Every feature alone is a group of one, where both parts of the sparse group lasso are ``|w|``
(``sqrt(1) * ||w||_2 = |w|``): ``lam * (a |w| + (1 - a) |w|) = lam |w|``. The solver thresholded by
``l1_ratio * lam`` there instead: ``l1_ratio=0.5`` halved the penalty (the path's first point was not
empty) and ``0`` removed it (``nv.sparsify`` on a CNN read 9 units per class at every point). The
default (``l1_ratio`` None, read as 1.0) was right all along and is unchanged.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.training.glm import fit_path, lambda_grid


def _problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(150, 20, generator=g, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * x[:, 1] - 0.7 * x[:, 2] + 0.3 * torch.randn(150, generator=g, dtype=torch.float64) > 0).long()
    y = y + (x[:, 3] > 1).long()  # three classes
    return x, y


def _path(x, y, **kw):
    return fit_path(x, y, 3, lambdas=lambda_grid(x, y, 3, points=6), tol=1e-9, max_iter=50_000, **kw)


@pytest.mark.parametrize("l1_ratio", [0.0, 0.5])
def test_without_groups_every_l1_ratio_gives_the_plain_l1_path(l1_ratio):
    x, y = _problem()
    plain, other = _path(x, y), _path(x, y, l1_ratio=l1_ratio)
    assert not bool((other[0][0] != 0).any())  # the path's first point reads nothing
    for (w1, b1), (w2, b2) in zip(plain, other):
        assert torch.equal(w1, w2) and torch.equal(b1, b2)
    # the same as each feature its own group of the sparse group lasso (its group prox, not the shortcut)
    singletons = _path(x, y, l1_ratio=l1_ratio, groups=torch.arange(20))
    for (w1, b1), (w2, b2) in zip(plain, singletons):
        torch.testing.assert_close(w1, w2, atol=1e-6, rtol=0)


def test_each_point_meets_the_plain_l1_optimality_conditions():
    """Computed here: at the optimum of mean CE + lam ||W||_1 the smooth gradient is -lam sign(w) on the
    weights in use and at most lam in size on the others; the bias' gradient is zero."""
    x, y = _problem()
    lambdas = lambda_grid(x, y, 3, points=6)
    onehot = nn.functional.one_hot(y, 3).double()
    for lam, (w, b) in zip(lambdas.tolist(), _path(x, y, l1_ratio=0.5)):
        grad = (torch.softmax(x @ w.T + b, 1) - onehot).T @ x / len(y)
        used = w != 0
        assert float(grad[~used].abs().max()) <= lam * (1 + 1e-6)
        if used.any():
            torch.testing.assert_close(grad[used], -lam * w[used].sign(), atol=1e-7, rtol=0)
        assert float((torch.softmax(x @ w.T + b, 1) - onehot).mean(0).abs().max()) < 1e-7


def test_sparsify_on_a_cnn_reads_the_same_path_for_the_default_and_any_l1_ratio():
    torch.manual_seed(0)
    net = nv.wrap(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU()), 3)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(90, 1, 6, 6, generator=g), torch.randint(0, 3, (90,), generator=g)
    train = [(x[i:i + 16] + 0.5 * y[i:i + 16, None, None, None], y[i:i + 16]) for i in range(0, 90, 16)]
    net = nv.fit_ridge_head(net, train)
    kw = dict(points=6, folds=2, relaxed=None)
    default = nv.sparsify(net, train, **kw).sparsity_path.units_per_class
    assert float(default[0]) == 0.0 and float(default[-1]) > 0
    for a in (1.0, 0.5, 0.0):  # 0.0: 9 units per class at every point
        torch.testing.assert_close(nv.sparsify(net, train, l1_ratio=a, **kw).sparsity_path.units_per_class, default)
