"""``norm_floor`` (NeuroViewCNN) and ``floor`` (CodeNorm) are refused by name unless a finite number >= 0: inf trained
every weight to NaN without a word and the next forward blamed x; NaN and negatives were kept and acted as no floor."""

import math

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.head import CodeNorm


def _body():
    return nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten())


@pytest.mark.parametrize("floor", [math.inf, math.nan, -1.0, "0.1", True, None])
def test_a_floor_that_is_no_finite_number_at_least_0_is_refused_by_name(floor):
    with pytest.raises(ValueError, match=r"^norm_floor: expected a finite number >= 0 .*got"):
        nv.NeuroViewCNN(_body(), num_classes=2, norm_floor=floor)
    with pytest.raises(ValueError, match=r"^floor: expected a finite number >= 0"):
        CodeNorm(3, floor=floor)


@pytest.mark.parametrize("floor", [0, 0.0, 0.1, 2])
def test_finite_floors_at_least_0_are_taken_as_floats(floor):
    net = nv.NeuroViewCNN(_body(), num_classes=2, norm_floor=floor)
    net(torch.randn(4, 1, 12))
    assert CodeNorm(3, floor=floor).floor == float(floor) and isinstance(CodeNorm(3, floor=floor).floor, float)
