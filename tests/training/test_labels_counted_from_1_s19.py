"""Labels counted from 1 (UCR's 1..C) with ``num_classes = y.max() + 1``: nv.sparsify, fit_ridge_head and retrofit
(``sparse_checks.check_labels``) told a user who passed the whole training split to "pass the whole training split",
and nv.minirocket advised ``num_classes=3`` for labels 1..3, which gave the same error again. The hint that fixes it
("labels counted from 1? pass y - 1") now comes first, the range is checked before the absent classes, and advice
that cannot work (the classes held as num_classes, where they are not 0 .. k-1) is no longer given."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.training.sparse_checks import check_labels

HINT = "labels counted from 1? pass y - 1"


def _series(n: int = 30, length: int = 40):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, length, generator=g)


def _cnn(num_classes: int):
    return nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), num_classes, input_shape=(1, 40)).eval()


def _message(fn, *args, **kw) -> str:
    with pytest.raises(ValueError) as e:
        fn(*args, **kw)
    return str(e.value)


@pytest.mark.parametrize("fit", ["sparsify", "fit_ridge_head"])
def test_a_network_of_largest_label_plus_1_classes_on_labels_1_to_3_is_told_to_pass_y_minus_1(fit):
    x, y = _series(), torch.tensor([1, 2, 3] * 10)
    msg = _message(getattr(nv, fit), _cnn(4), [(x, y)])
    assert msg.startswith("train: expected samples of each of the network's 4 classes, got none of class [0]")
    assert HINT in msg and "num_classes=3" in msg  # y - 1 is 0..2: a network of 3 classes, else class 3 is absent then
    whole = msg.find("pass the whole training split")
    assert whole == -1 or msg.index(HINT) < whole  # the hint that fixes it first
    check_labels(y - 1, 3)  # the advice, followed, passes the same check (it looped before)


def test_check_labels_checks_the_range_before_the_absent_classes():
    y = torch.tensor([1, 2, 3] * 10)  # for 3 classes: class 0 absent, and label 3 past the last class
    msg = _message(check_labels, y, 3)
    assert msg == f"train: labels must lie in [0, 3) (the network's classes), got [1, 2, 3] ({HINT})"
    msg = _message(check_labels, torch.tensor([0, 1, 2, 5] * 5), 3)  # no 1-based reading: no hint
    assert msg == "train: labels must lie in [0, 3) (the network's classes), got [0, 1, 2, 5]"


def test_a_class_absent_from_labels_that_do_not_run_1_to_c_minus_1_gets_no_hint():
    msg = _message(check_labels, torch.tensor([0, 2] * 10), 3)  # class 1 absent: a filtered split, not 1-based labels
    assert HINT not in msg and msg.endswith("pass the whole training split")
    msg = _message(check_labels, torch.tensor([2, 3] * 10), 4)  # classes 0 and 1 absent: not the labels 1..3
    assert HINT not in msg


def test_minirocket_of_labels_1_to_3_says_pass_y_minus_1_and_not_num_classes():
    x, y = _series(), torch.tensor([1, 2, 3] * 10)
    msg = _message(nv.minirocket, [(x, y)], num_features=84)  # num_classes read as 4, the largest label + 1
    assert HINT in msg and "got none of class [0]" in msg
    assert "or the classes it holds as num_classes" not in msg  # num_classes=3 gave the same error again
    msg = _message(nv.minirocket, [(x, y)], num_features=84, num_classes=3)  # the advice it gave: label 3 now named
    assert msg == f"train: labels must lie in [0, 3) (the classes of num_classes=3), got [1, 2, 3] ({HINT})"
    msg = _message(nv.minirocket, [(x, y)], num_features=84, num_classes=4)
    assert HINT in msg and "num_classes=3" in msg  # y - 1 alone with num_classes=4 would lack class 3
    net = nv.minirocket([(x, y - 1)], num_features=84)  # following the hint fits
    assert net.num_classes == 3


def test_minirocket_offers_num_classes_only_where_the_classes_held_are_0_to_k_minus_1():
    x = _series()
    msg = _message(nv.minirocket, [(x, torch.tensor([0, 2, 5] * 10))], num_features=84)
    assert "got none of classes [1, 3, 4]" in msg and "or the classes it holds as num_classes" not in msg
    assert "torch.unique(y, return_inverse=True)" in msg  # renumbered 0..2, the classes held make a task of 3
    msg = _message(nv.minirocket, [(x, torch.tensor([0, 1, 2] * 10))], num_features=84, num_classes=4)
    assert re.search(r"got none of class \[3\]; .*pass the whole training split, or the classes it holds as "
                     r"num_classes=3$", msg)
    msg = _message(nv.minirocket, [(x, torch.tensor([0, 1, 2, 5] * 5))], num_features=84, num_classes=3)
    assert msg == "train: labels must lie in [0, 3) (the classes of num_classes=3), got [0, 1, 2, 5]"
