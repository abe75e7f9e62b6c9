"""``nv.readability``: k90 and accuracy over a split, with the labels checked as everywhere else."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv


def _net():
    torch.manual_seed(0)
    net = nv.wrap(nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Conv1d(4, 3, 3), nn.ReLU()), num_classes=3)
    x = torch.randn(6, 2, 16)
    net(x)
    return net.eval(), x


def test_accuracy_is_the_share_of_predictions_equal_to_the_labels():
    net, x = _net()
    pred = net(x).argmax(1)
    y = pred.clone()
    y[:2] = (y[:2] + 1) % 3  # two of six wrong, by construction
    out = nv.readability(net, [(x, y)])
    assert out["accuracy"] == pytest.approx(100 * 4 / 6) and out["samples"] == 6
    assert nv.readability(net, [(x, y.float())])["accuracy"] == out["accuracy"]  # whole floats are their classes


def test_labels_that_are_not_class_indices_are_refused():
    net, x = _net()
    y = torch.arange(6) % 3
    with pytest.raises(ValueError, match=r"batches: expected one class index per sample, shape \[6\], got labels of shape \(6, 3\) \(one-hot rows: pass y.argmax\(1\)\)"):
        nv.readability(net, [(x, nn.functional.one_hot(y, 3))])
    with pytest.raises(ValueError, match="batches: expected integer class labels"):
        nv.readability(net, [(x, y + 0.3)])
