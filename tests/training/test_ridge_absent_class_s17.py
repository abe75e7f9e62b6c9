"""nv.minirocket(num_classes=...) and nv.fit_ridge_head fitted a head for a class the training data never holds (a
fixed logit of -1, never predicted) without a word; nv.sparsify refuses the same data. Both ridge fitters now
refuse it as sparsify does, naming train, the absent class and the number of classes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv


def _data():
    torch.manual_seed(0)
    x = torch.randn(40, 1, 30)
    y = torch.arange(40) % 2  # classes 0 and 1 only
    x[y == 1] += torch.linspace(0, 2, 30)
    return x, y


def test_minirocket_refuses_num_classes_with_a_class_absent_from_train():
    x, y = _data()
    with pytest.raises(ValueError, match=r"train: expected samples of each of the 3 classes of num_classes=3, got none "
                                         r"of class \[2\]"):
        nv.minirocket([(x, y)], num_features=84, num_classes=3)


def test_minirocket_refuses_labels_with_a_gap():
    """num_classes from the largest label + 1: labels {0, 2} hold no class 1."""
    x, y = _data()
    with pytest.raises(ValueError, match=r"largest label \+ 1: num_classes=3, got none of class \[1\]"):
        nv.minirocket([(x, y * 2)], num_features=84)


def test_fit_ridge_head_refuses_a_class_absent_from_train():
    x, y = _data()
    three = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 3, max_len=30).eval()  # reads the series [B, C, T]
    with pytest.raises(ValueError, match=r"train: expected samples of each of the network's 3 classes, got none of "
                                         r"class \[2\]"):
        nv.fit_ridge_head(three, [(x, y)])
    with pytest.raises(ValueError, match=r"got none of class \[2\]"):  # nv.sparsify: the same answer
        nv.sparsify(three, [(x, y)])


def test_fit_ridge_head_every_class_present_fits():
    x, y = _data()
    net = nv.minirocket([(x, y)], num_features=84)
    out = nv.fit_ridge_head(net, [(x, y)])
    assert out.ridge.train_acc > 50.0
