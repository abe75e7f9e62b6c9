"""LITE's depthwise convolutions: nn.Conv1d's numbers, with the input gradient taken as a forward
convolution on the CPU; checked against nn.Conv1d's own backward and by finite differences."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.zoo.architectures import timeseries
from neuroview.zoo.architectures.timeseries import DepthwiseConv1d


@pytest.mark.parametrize("kernel, dilation", [(19, 2), (9, 4), (3, 1), (4, 2)])
def test_gradients_are_nn_conv1d_s(kernel, dilation):
    torch.manual_seed(0)
    fast = DepthwiseConv1d(6, kernel, dilation)
    plain = nn.Conv1d(6, 6, kernel, padding="same", dilation=dilation, groups=6, bias=False)
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(3, 6, 40)
    outs = []
    for conv in (fast, plain):
        xi = x.clone().requires_grad_(True)
        y = conv(xi)
        (y * torch.linspace(-1, 1, 40)).sum().backward()
        outs.append((y.detach(), xi.grad, conv.weight.grad))
    assert fast(x.requires_grad_(True)).grad_fn.name().startswith("_DepthwiseSame")  # the fast route was taken
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_finite_differences_in_float64():
    conv = DepthwiseConv1d(3, 5, 2).double()
    x = torch.randn(2, 3, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: timeseries._DepthwiseSame.apply(x, w, 4, 2), (x, conv.weight))


def test_elsewhere_it_is_nn_conv1d(monkeypatch):
    conv, x = DepthwiseConv1d(4, 9, 2), torch.randn(2, 4, 30, requires_grad=True)
    with torch.no_grad():
        assert conv(x).grad_fn is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(x).dtype == torch.bfloat16 and not conv(x).grad_fn.name().startswith("_DepthwiseSame")
    monkeypatch.setattr(timeseries, "FAST_DEPTHWISE_BACKWARD", False)
    assert not conv(x).grad_fn.name().startswith("_DepthwiseSame")


def test_lite_keeps_its_state_dict_and_an_even_reach_is_an_error():
    net = nv.create_model("lite", num_classes=2)
    assert isinstance(net.separable[0], DepthwiseConv1d) and "separable.0.weight" in net.state_dict()
    assert not any(k.endswith(".bias") and k.startswith("separable.0") for k in net.state_dict())
    with pytest.raises(ValueError, match="kernel_size: a symmetric 'same' depthwise convolution needs an odd span"):
        DepthwiseConv1d(4, 4, 1)
    x, y = torch.randn(4, 1, 50), torch.tensor([0, 1, 0, 1])
    F.cross_entropy(net(x), y).backward()  # the whole network trains through it
    assert net.separable[0].weight.grad.abs().sum() > 0
