"""Labels counted from 1 (UCR's 1..C) with ``num_classes = y.max() + 1``: nv.sparsify, fit_ridge_head and retrofit
(``sparse_checks.check_labels``) told a user who passed the whole training split to "pass the whole training split",
and nv.minirocket advised ``num_classes=3`` for labels 1..3, which gave the same error again. The hint that fixes it
("labels counted from 1? pass y - 1") now comes first, the range is checked before the absent classes, and advice
that cannot work (the classes held as num_classes, where they are not 0 .. k-1) is no longer given. A trained network
(retrofit's, sparsify's) is told that its class 0 has no sample and both ways that run (y - 1 to a network of C classes,
trained again; samples of class 0), not "pass y - 1" alone, which left class C without one; and the range hint comes
only for labels exactly 1..C (labels {2, 3} were told to subtract 1, then told it again)."""

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


def _class_0_message(c: int) -> str:
    """What a network of ``c + 1`` classes is told of labels 1..c (class 0 absent): worked out here, by hand."""
    return (f"train: expected samples of each of the network's {c + 1} classes, got none of class [0] and labels 1..{c}: "
            f"the network's class 0 has no sample (labels counted from 1, the network sized as the largest label + 1?), "
            f"and a head fitted without it never predicts it; y - 1 alone leaves class {c} without one. Pass y - 1 to a "
            f"network of num_classes={c} (a network trained on labels 1..{c} has an output 0 nobody trained: train it "
            "again on y - 1); or, if class 0 is a class of its own, samples of it (the whole training split)")


@pytest.mark.parametrize("fit", ["sparsify", "fit_ridge_head"])
def test_a_network_of_largest_label_plus_1_classes_on_labels_1_to_3_is_told_to_pass_y_minus_1(fit):
    x, y = _series(), torch.tensor([1, 2, 3] * 10)
    assert _message(getattr(nv, fit), _cnn(4), [(x, y)]) == _class_0_message(3)
    check_labels(y - 1, 3)  # each way it gives, followed, passes the same check (it looped before)
    check_labels(torch.cat([y, torch.zeros(5, dtype=torch.long)]), 4)
    assert "class [3]" in _message(check_labels, y - 1, 4)  # and y - 1 alone would not: the message says so


def _trained_cnn(x, y, outputs: int) -> nn.Module:
    """A standard CNN of ``outputs`` outputs trained on ``(x, y)`` (100 full-batch Adam steps)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, outputs))
    opt = torch.optim.Adam(model.parameters(), 0.05)
    for _ in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


def test_retrofit_of_a_network_trained_on_labels_1_to_3_says_its_class_0_has_no_sample_and_what_runs():
    x, y = _series(60), torch.tensor([1, 2, 3] * 20)
    x = x + y[:, None, None].float()
    model = _trained_cnn(x, y, 4)  # 4 outputs, as y.max() + 1: output 0 never a label
    assert (model(x).argmax(1) == y).float().mean() > 0.9  # trained: its class count is its weights', not an argument
    assert _message(nv.retrofit, model, [(x, y)], [(x, y)], epochs=2) == _class_0_message(3)
    # the message's two ways, followed, run: trained again on y - 1 with 3 outputs, or samples of class 0
    nv.retrofit(_trained_cnn(x, y - 1, 3), [(x, y - 1)], [(x, y - 1)], epochs=2)
    x0, y0 = torch.cat([x, x[:6] - 3]), torch.cat([y, torch.zeros(6, dtype=torch.long)])
    nv.retrofit(model, [(x0, y0)], [(x0, y0)], epochs=2)


def test_labels_that_lack_class_1_too_are_not_told_to_subtract_1_twice():
    # UCR labels 1..3 and a split without class 1: y - 1 would be 1..2, told "counted from 1? pass y - 1" again
    for fn, kw in ((check_labels, {"num_classes": 3}), (nv.minirocket, {"num_classes": 3, "num_features": 84})):
        y = torch.tensor([2, 3] * 15)
        args = (y,) if fn is check_labels else ([(_series(), y)],)
        msg = _message(fn, *args, **kw)
        assert msg.startswith("train: labels must lie in [0, 3) (") and msg.endswith("got [2, 3]")
        assert "y - 1" not in msg
    assert "y - 1" not in _message(check_labels, torch.tensor([1, 3] * 10), 3)  # 1..3 lacking class 2: not exactly 1..C
    assert HINT in _message(check_labels, torch.tensor([1, 2, 3] * 10), 3)  # exactly 1..3: the hint


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
