"""A batch of three items is read as ``(x, lengths, y)``: for a CNN, whose batches carry lengths only as padded series
do, a middle item that is no lengths is named (``(x, y, other)`` was scored, or trained, against ``other``). The
gallery, ``readability`` and ``mean_codes`` refused such batches already; ``retrofit``'s test read, ``finetune_sparse``
and the zoo's ``evaluate`` did not."""

from __future__ import annotations

import pytest
import torch

import neuroview as nv
from neuroview.zoo.evaluate import evaluate


def _data():
    torch.manual_seed(0)
    x, y = torch.randn(24, 1, 16), torch.arange(24) % 3
    other = torch.full((24,), 7)  # no lengths (T = 16 would be; 7 would be too), no labels of 3 classes
    return x, y, torch.arange(24) % 2 + 20, other


def _net():
    net = nv.create_model("nv_fcn1d", num_classes=3, widths=(4, 4), kernels=(3, 3))
    with torch.no_grad():
        net(torch.randn(2, 1, 16))
    return net.eval()


def test_the_zoo_s_evaluate_names_a_middle_item_that_is_no_lengths():
    x, y, other, _ = _data()
    with pytest.raises(ValueError, match=r"batch: a batch of 3 items is read as \(x, lengths, y\)"):
        evaluate(_net(), [(x, y, other)])
    assert evaluate(_net(), [(x, torch.full((24,), 16), y)])[1] == 24  # true lengths still read


def test_finetune_sparse_names_a_middle_item_that_is_no_lengths():
    x, y, other, _ = _data()
    sparse = nv.sparsify(_net(), [(x, y)], folds=2, points=4)
    with pytest.raises(ValueError, match=r"train: a batch of 3 items is read as \(x, lengths, y\)"):
        nv.finetune_sparse(sparse, [(x, y, other)], epochs=1)


def test_retrofit_s_test_read_names_a_middle_item_that_is_no_lengths():
    x, y, other, _ = _data()
    std = nv.create_model("fcn1d", num_classes=3, widths=(4, 4), kernels=(3, 3))
    with pytest.raises(ValueError, match=r"test: a batch of 3 items is read as \(x, lengths, y\)"):
        nv.retrofit(std, [(x, y)], test=[(x, y, other)], epochs=1)
