"""The deviance rule of ``nv.sparsify`` reads the whole path of ``points`` penalties (README, the ``deviance`` argument,
``SparsityPath.deviance_met``): a walk that stopped where the validation loss levelled off for three points (the
reference reached) kept a point the rule on the whole path does not pick, recorded as "deviance rule met"."""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

import neuroview as nv
import neuroview.training.sparsify as sparsify_module

# the designed path: the scale of the one separating weight at each penalty; 0, then a level stretch (4 points at 1),
# then the loss falls again as the weight grows (a later, denser point: more units read, weight 1e-6 on each)
SCALES = [0.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0]


def _net_and_data():
    # a hard code of one unit that is 1 on class 1 (every position positive) and 0 on class 0: standardized, +1 / -1
    conv = nn.Conv1d(1, 4, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, 0.5, -0.5]).view(4, 1, 1)), conv.bias.zero_()
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, quantizer="hard", input_shape=(1, 6)).eval()
    g = torch.Generator().manual_seed(0)

    def split(n):
        y = torch.arange(n) % 2
        x = torch.rand(n, 1, 6, generator=g) + 0.1
        return x * (2.0 * y - 1.0).view(n, 1, 1), y

    return net, split(40), split(20)


def _designed_path(z, y, num_classes, *, lambdas, **_):
    """In place of the solver: a point per penalty, weight +-scale on the code that separates the classes."""
    sep = int(((z[y == 1].mean(0) - z[y == 0].mean(0)).abs()).argmax())
    for i, a in zip(range(len(lambdas)), SCALES):
        w = z.new_zeros(num_classes, z.shape[1])
        w[:, :i // 3] = 1e-6  # later points read more units (sparsity grows along the path)
        w[1, sep], w[0, sep] = a / 2, -a / 2
        yield w, z.new_zeros(num_classes)


def test_the_deviance_rule_reads_the_whole_path_not_a_walk_stopped_at_a_level_stretch(monkeypatch):
    net, train, (xv, yv) = _net_and_data()
    monkeypatch.setattr(sparsify_module, "iter_path", _designed_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparse = nv.sparsify(net, [train], val=[(xv, yv)], points=len(SCALES), relaxed=None)
    path = sparse.sparsity_path
    assert len(path.lambdas) == len(SCALES)  # every penalty asked for was walked (it stopped after 5)
    # the rule by hand: standardized codes are +-1, so a point of scale a scores log(1 + exp(-a)) on every sample
    loss = [math.log1p(math.exp(-a)) for a in SCALES]
    need = loss[0] - 0.99 * (loss[0] - min(loss))  # the loss a point may have at most (0.0073)
    first = next(i for i, v in enumerate(loss) if v <= need)  # the sparsest that meets it: scale 6 (0.0025)
    with torch.no_grad():
        kept = float(nn.functional.cross_entropy(sparse(xv), yv))
    assert kept <= need + 1e-6, (kept, need)  # the walk stopped at the level stretch kept scale 1: 0.31
    assert abs(kept - loss[first]) < 1e-4, (kept, loss[first])  # and not a denser point that meets it too
    assert path.chosen == first
    assert path.deviance_met is True
