"""The unit axis of a site after a residual add does not depend on the order of its operands: on token input
[B, N, C] (outside the [B, C_in, ...] contract, as point sets and embedded sequences come), fc(x) + x found the
Linear's 16 features and x + fc(x) found the 10 tokens, the input's assumed dim 1 taken first."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv


class Res(nn.Module):
    def __init__(self, input_first: bool):
        super().__init__()
        self.input_first = input_first
        self.fc1, self.act = nn.Linear(16, 16), nn.GELU()

    def forward(self, x):
        return self.act(x + self.fc1(x) if self.input_first else self.fc1(x) + x)


@pytest.mark.parametrize("input_first", [False, True])
def test_the_linear_s_features_are_the_units_either_way(input_first):
    torch.manual_seed(0)
    m, x = Res(input_first).eval(), torch.randn(4, 10, 16)
    net = nv.wrap(m, 3, normalize=False, example_input=x).eval()
    with torch.no_grad():
        z = m.fc1(x) + x
    assert [(s.channels, s.axis) for s in net.sites] == [(16, -1)]
    torch.testing.assert_close(net.codes(x), (z > 0).float().mean(1))  # per feature, over the tokens, by hand
