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


def _plain(fast: DepthwiseConv1d) -> nn.Conv1d:
    c, k, d = fast.in_channels, fast.kernel_size[0], fast.dilation[0]
    plain = nn.Conv1d(c, c, k, padding="same", dilation=d, groups=c, bias=False)
    plain.load_state_dict(fast.state_dict())
    return plain


@pytest.mark.parametrize("route", ["phases", "flipped"])
@pytest.mark.parametrize("kernel, dilation", [(19, 2), (9, 4), (3, 1), (4, 2), (5, 3)])
@pytest.mark.parametrize("batch, length", [(3, 40), (1, 37), (2, 2)])
def test_outputs_and_gradients_are_nn_conv1d_s(monkeypatch, route, kernel, dilation, batch, length):
    monkeypatch.setattr(timeseries, "CPU_DEPTHWISE", route)
    torch.manual_seed(0)
    fast = DepthwiseConv1d(6, kernel, dilation)
    plain = _plain(fast)
    x = torch.randn(batch, 6, length)
    outs = []
    for conv in (fast, plain):
        xi = x.clone().requires_grad_(True)
        y = conv(xi)
        (y * torch.linspace(-1, 1, length)).sum().backward()
        outs.append((y.detach(), xi.grad, conv.weight.grad))
    # phases for float32 and an odd kernel; the flipped kernel's input gradient otherwise
    want = "_DepthwisePhases" if route == "phases" and kernel % 2 else "_DepthwiseSame"
    assert fast(x.requires_grad_(True)).grad_fn.name().startswith(want)  # the route was taken
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # evaluation takes the route's forward too
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length", [12, 13])
def test_finite_differences_in_float64(length):
    conv = DepthwiseConv1d(3, 5, 2).double()
    x = torch.randn(2, 3, length, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: timeseries._DepthwiseSame.apply(x, w, 4, 2), (x, conv.weight))
    assert torch.autograd.gradcheck(lambda x, w: timeseries._DepthwisePhases.apply(x, w, 2), (x, conv.weight))
    # in float64 the module keeps nn.Conv1d's forward (phases run slower there) and the flipped backward
    assert conv(x).grad_fn.name().startswith("_DepthwiseSame")


def test_elsewhere_it_is_nn_conv1d(monkeypatch):
    conv, x = DepthwiseConv1d(4, 9, 2), torch.randn(2, 4, 30, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
        assert y.dtype == torch.bfloat16 and y.grad_fn.name().startswith("ConvolutionBackward")
    monkeypatch.setattr(timeseries, "CPU_DEPTHWISE", "native")
    assert conv(x).grad_fn.name().startswith("ConvolutionBackward")
    monkeypatch.setattr(timeseries, "CPU_DEPTHWISE", "fast")  # a route that does not exist is an error, not a guess
    with pytest.raises(ValueError, match="CPU_DEPTHWISE: expected 'phases', 'flipped' or 'native', got 'fast'"):
        conv(x)
    with pytest.raises(ValueError, match="CPU_DEPTHWISE"), torch.autocast("cpu", dtype=torch.bfloat16):
        conv(x)  # also where nn.Conv1d's own route would run (autocast, another device)


def test_lite_keeps_its_state_dict_and_an_even_reach_is_an_error():
    net = nv.create_model("lite", num_classes=2)
    assert isinstance(net.separable[0], DepthwiseConv1d) and "separable.0.weight" in net.state_dict()
    assert not any(k.endswith(".bias") and k.startswith("separable.0") for k in net.state_dict())
    with pytest.raises(ValueError, match="kernel_size: a symmetric 'same' depthwise convolution needs an odd span"):
        DepthwiseConv1d(4, 4, 1)
    x, y = torch.randn(4, 1, 50), torch.tensor([0, 1, 0, 1])
    F.cross_entropy(net(x), y).backward()  # the whole network trains through it
    assert net.separable[0].weight.grad.abs().sum() > 0
