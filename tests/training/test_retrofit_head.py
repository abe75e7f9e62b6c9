"""The retrofit's classifier is the optimum of its documented objective, not where an optimizer's budget ran out.

The objective: the mean cross-entropy of the standardized codes' logits plus ``weight_decay / 2 * ||W||^2``
(the bias free). scikit-learn's ``LogisticRegression`` minimizes ``C * sum CE + ||W||^2 / 2``: the same
optimum at ``C = 1 / (N * weight_decay)``. Before, ``epochs * ceil(N / 256)`` AdamW steps (200 for 300
samples) left the training cross-entropy at 0.519 against 0.356 at the optimum, and ~5 points of the
reported "cost of the explanation" were the optimizer's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv

sklearn = pytest.importorskip("sklearn.linear_model")


def _standard() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(5, 3)).eval()


def _data(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g)
    return x + 0.5 * y[:, None, None, None], y


@pytest.mark.parametrize("weight_decay", [1e-4, 1e-2])
def test_the_head_is_the_logistic_regression_optimum_of_the_standardized_codes(weight_decay):
    x, y = _data(300, 0)
    res = nv.retrofit(_standard(), [(x[i:i + 64], y[i:i + 64]) for i in range(0, 300, 64)], num_classes=3,
                      weight_decay=weight_decay)
    net = res.model
    with torch.no_grad():
        z = net.norm(net.codes(x)).double().numpy()  # the codes standardized as the head reads them
    ref = sklearn.LogisticRegression(C=1 / (len(y) * weight_decay), tol=1e-12, max_iter=100_000).fit(z, y.numpy())
    w, b = net.classifier.weight.detach().double().numpy(), net.classifier.bias.detach().double().numpy()
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(w, ref.coef_, atol=2e-4 * scale)
    # the intercepts are free up to one shared constant (the softmax does not see it)
    np.testing.assert_allclose(b - b.mean(), ref.intercept_ - ref.intercept_.mean(), atol=2e-4 * scale)
    logits = z @ w.T + b
    ce = -(logits[np.arange(300), y.numpy()] - np.log(np.exp(logits).sum(1))).mean()
    ce_ref = -np.log(ref.predict_proba(z)[np.arange(300), y.numpy()]).mean()
    assert ce == pytest.approx(ce_ref, abs=1e-5)
    assert res.train_acc == pytest.approx((logits.argmax(1) == y.numpy()).mean())


def test_the_head_does_not_depend_on_how_the_training_set_is_batched_or_ordered():
    x, y = _data(200, 3)
    one = nv.retrofit(_standard(), [(x, y)], num_classes=3).model.classifier
    perm = torch.randperm(200, generator=torch.Generator().manual_seed(1))
    many = nv.retrofit(_standard(), [(x[perm][i:i + 7], y[perm][i:i + 7]) for i in range(0, 200, 7)],
                       num_classes=3).model.classifier
    torch.testing.assert_close(many.weight, one.weight, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(many.bias - many.bias.mean(), one.bias - one.bias.mean(), atol=1e-4, rtol=1e-4)


def test_a_budget_that_runs_out_says_so():
    x, y = _data(120, 4)
    with pytest.warns(RuntimeWarning, match=r"stopped after epochs=2 L-BFGS iterations .* pass a larger epochs"):
        nv.retrofit(_standard(), [(x, y)], num_classes=3, epochs=2)
