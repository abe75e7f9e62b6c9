"""Breakpoints and soft codes taken as given (a probe's faults, each failing on the code before it):
``register_activation`` refuses NaN, infinite and string breakpoints and takes a lone number as one; a
user's registered ``nn.Hardtanh`` subclass keeps its breakpoints; soft code maps of a half-precision
network average to the codes it read, so spatial maps sum to the logit; a tiny ``tau`` gives no NaN code."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core import activations, quantize

EXPECTED = "breakpoints: expected a non-empty, increasing tuple of finite numbers"


def _fresh() -> type:
    class Shift(nn.Module):
        def forward(self, x):
            return torch.relu(x - 0.5)
    return Shift


@pytest.mark.parametrize("bad", [(float("nan"),), (float("inf"),), (-float("inf"), 0.0), "0.5", "05", b"05",
                                 ("0.5",), (True,), (), (1.0, 0.0), (0.0, 0.0), object(), None])
def test_register_activation_refuses_nonfinite_strings_and_disorder(bad):
    cls = _fresh()
    with pytest.raises((TypeError, ValueError), match=EXPECTED):
        activations.register_activation(cls, breakpoints=bad)
    assert not activations.is_activation(cls())  # nothing half-registered


@pytest.mark.parametrize("lone, want", [(0.5, (0.5,)), (2, (2.0,)), (torch.tensor(-1.5), (-1.5,)),
                                        (torch.tensor([0.0, 6.0]), (0.0, 6.0)), ([-3, 3], (-3.0, 3.0))])
def test_a_lone_number_is_one_breakpoint(lone, want):
    cls = activations.register_activation(_fresh(), breakpoints=lone)
    assert activations.breakpoints(cls()) == want
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = nv.wrap(nn.Sequential(nn.Conv1d(2, 4, 3), cls(), nn.Flatten(), nn.Linear(24, 3)), 3,
                      example_input=torch.randn(4, 2, 8))
    assert net.sites[0].points == want
    with torch.no_grad():
        assert torch.isfinite(net.eval().codes(torch.randn(2, 2, 8))).all()


def test_a_registered_hardtanh_subclass_keeps_its_breakpoints():
    class Gate(nn.Hardtanh):  # clips to [-1, 1]; its user wants the on/off code 1[z > 0]
        def __init__(self):
            super().__init__(-1.0, 1.0)

    class Clip(nn.Hardtanh):  # not registered: read off the instance as every Hardtanh
        pass

    nv.register_activation(Gate, breakpoints=(0.0,))
    assert activations.breakpoints(Gate()) == (0.0,)  # was (-1.0, 1.0): the registration was ignored
    assert activations.breakpoints(Clip(-2.0, 5.0)) == (-2.0, 5.0)
    assert activations.breakpoints(nn.ReLU6()) == (0.0, 6.0)
    assert activations.breakpoints(nn.Hardtanh(-0.5, 0.25)) == (-0.5, 0.25)
    torch.manual_seed(0)
    net = nv.wrap(nn.Sequential(nn.Conv1d(2, 4, 3), Gate(), nn.Flatten(), nn.Linear(24, 3)), 3,
                  example_input=torch.randn(4, 2, 8))
    assert net.sites[0].points == (0.0,)
    with torch.no_grad():
        codes = net.eval().codes(torch.randn(3, 2, 8) * 3)
    assert float(codes.max()) <= 1.0  # on/off bits, not the 0..2 region count


def test_registering_hardtanh_itself_is_refused_and_relu6_keeps_its_bounds():
    """nn.Hardtanh's breakpoints are each instance's bounds: registering the class again (the review: with the
    library's own (-1, 1)) made every ReLU6 in the process code at (-1, 1)."""
    with pytest.raises(ValueError, match=r"cls: Hardtanh's breakpoints are each instance's min_val and max_val .*"
                                         r"register a subclass"):
        nv.register_activation(nn.Hardtanh, (-1.0, 1.0))
    assert activations.breakpoints(nn.ReLU6()) == (0.0, 6.0)
    assert activations.breakpoints(nn.Hardtanh(-2.0, 2.0)) == (-2.0, 2.0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_soft_code_map_of_a_half_input_averages_to_the_code(dtype):
    torch.manual_seed(0)
    z = (torch.randn(4, 8, 12, 12) * 4).to(dtype)
    for points, tau in [((-3.0, 3.0), 1.0), ((-3.0, 3.0), 0.7), ((0.0, 6.0), 0.7), ((0.0,), 0.7)]:
        m = quantize.code_map(z, points, "soft", tau)
        code = quantize._mean_region_code(z.flatten(2), 2, points, tau, False)
        # summed in the input's dtype the two sigmoids were off by 8e-4 (bfloat16) on the mean
        torch.testing.assert_close(m.float().flatten(2).mean(-1), code, atol=1e-6, rtol=0)
        assert m.dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_spatial_maps_of_a_half_soft_network_sum_to_the_logit(dtype):
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3), nn.Hardswish(),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))
    net = nv.wrap(bb, 5, quantizer="soft", tau=0.7, example_input=torch.randn(4, 3, 16, 16)).eval().to(dtype)
    e = net.explain((torch.randn(6, 3, 16, 16) * 2).to(dtype), maps=True)
    top = e.logits.float().abs().max()
    for s in net.sites:
        got = e.spatial_map(s.name).flatten(2).sum(-1).float()
        want = e.for_class(None)[:, net.site_slices[s.name]].float()
        assert (got - want).abs().max() <= 1e-6 * top  # was 1.5e-4 at the Hardswish site
    total = sum(e.spatial_map(s.name).flatten(1).sum(-1).float() for s in net.sites) + e.bias[e.target].float()
    logit = e.logits.gather(1, e.target[:, None])[:, 0].float()
    assert (total - logit).abs().max() <= 1e-5 * top  # was 3e-4 (bfloat16), 2.3e-5 (float16)


@pytest.mark.parametrize("tau", [1e-39, 1e-60, 5e-324])
def test_a_tiny_tau_gives_no_nan_soft_code(tau):
    z = torch.tensor([[[0.0, 1.0, -2.0, 3.0]]])  # [B, C, N] with an exact zero: 0 * (1 / tau) was 0 * inf = NaN
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        zz = z.to(dtype)
        code = quantize._mean_region_code(zz, 2, (0.0,), tau, False)
        assert torch.isfinite(code).all() and float(code) == pytest.approx((0.5 + 1 + 0 + 1) / 4)
        cmap = quantize.code_map(zz, (0.0,), "soft", tau)
        assert cmap.flatten().tolist() == [0.5, 1.0, 0.0, 1.0]
        slope = quantize._unpack_slope(quantize._packed_slope(zz, (0.0,), tau, 0.25 / 15, 4), zz.shape, 4)
        assert slope.flatten().tolist() == [15, 0, 0, 0]  # sigmoid' is 0.25 at 0 only


def test_a_normal_tau_scales_as_before():
    # the product by 1 / tau, bit for bit (the fused CUDA kernel multiplies by the same float32 number)
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        u = torch.randn(1000).to(dtype)
        for tau in (0.7, 0.1, 3.0, 1e-30):
            assert torch.equal(quantize._over_tau(u, tau), u * (1.0 / tau))
            assert torch.equal(quantize._over_tau(u.clone(), tau, inplace=True), u * (1.0 / tau))
        assert quantize._over_tau(u, 1.0) is u
