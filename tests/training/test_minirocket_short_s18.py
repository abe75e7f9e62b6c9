"""`nv.minirocket` on training series shorter than MiniRocket's 9-step kernels (s18): the error names `train` and the
series' length, not `input_length`, an argument the user never passed (it was read off the series)."""

from __future__ import annotations

import pytest
import torch

import neuroview as nv


def _series(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(20) % 2
    return torch.randn(20, 1, steps, generator=g) + y[:, None, None], y


@pytest.mark.parametrize("steps", [1, 8])
def test_series_shorter_than_9_steps_name_train_and_their_length(steps):
    x, y = _series(steps)
    with pytest.raises(ValueError, match=rf"train: MiniRocket needs series of at least 9 steps \(its kernels' length\), "
                                         rf"got series of {steps} steps \(pad or resample them to 9 or more") as e:
        nv.minirocket([(x, y)], num_features=84)
    assert "input_length" not in str(e.value)


def test_series_of_9_steps_are_fitted():
    x, y = _series(9)
    net = nv.minirocket([(x, y)], num_features=84)
    assert net.backbone.input_length == 9
    exp = net.explain(x)
    assert torch.allclose(exp.contributions.flatten(2).sum(-1) + exp.bias, net(x), atol=1e-4)
