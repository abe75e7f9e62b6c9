"""A bool of any kind is no class and no count, and the waterfall's gallery units follow the class it draws (a probe's
faults, each failing on the code before it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neuroview as nv
from neuroview.attribution.gallery import waterfall_units


def _explained(target=None):
    torch.manual_seed(0)
    net = nv.create_model("nv_small_cnn", num_classes=4, in_channels=1, widths=[4, 8])
    x = torch.randn(4, 1, 8, 8)
    net(x)
    return net, x, net.explain(x, target=target)


@pytest.mark.parametrize("mask", [np.True_, torch.tensor(True), torch.tensor([True, False, True, False]),
                                  np.array([True, False, True, False]), [True, False, True, False]])
def test_booleans_are_no_class(mask):
    net, x, exp = _explained()
    for call in (lambda: exp.targets(mask), lambda: exp.for_class(mask), lambda: net.explain(x, target=mask)):
        with pytest.raises(TypeError, match="target: expected a class index or a tensor of them"):  # read as 1 and 0
            call()
    with pytest.raises(ValueError, match="k: expected a positive int"):
        exp.top_share(k=torch.tensor(True))


def test_the_gallery_s_units_are_the_bars_of_the_class_explained():
    _, _, exp = _explained(target=3)
    assert int(exp.predicted[0]) != 3
    c = exp.contributions[0, 3]  # the bars waterfall(exp, 0) draws: class 3's largest |contributions|, not the prediction's
    expected = set(c.abs().argsort(descending=True)[:8].tolist())
    assert set(waterfall_units(exp, [0], k=8)) == expected
