"""The compact surrogate-gradient state (``grad_state``): the slope rounded to 4 or 8 bits.

Checked against the surrogate written out here in float64 (``sum_k s(u_k) (1 - s(u_k)) / tau``,
``u_k = (z - t_k) / tau``, times the code's gradient over the N positions): the error is at most
half a rounding step of the slope, ``peak / (2**bits - 1) / 2``, where ``peak`` bounds the slope
(0.25 for one breakpoint); each site keeps what it claims (half a byte or one byte per element);
a second backward reads the same state; sites that share the activation's input do not change.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.core.quantize import _MeanCode, _slope_peak


def _exact(z: torch.Tensor, g: torch.Tensor, dim: int, points, tau: float) -> torch.Tensor:
    """The surrogate gradient in float64, from the formula."""
    z = z.detach().double()
    slope = sum(torch.sigmoid((z - t) / tau) * (1 - torch.sigmoid((z - t) / tau)) for t in points) / tau
    return slope * g.double().unsqueeze(dim) / z.shape[dim]


def _bound(g: torch.Tensor, dim: int, n: int, points, tau: float, bits: int) -> torch.Tensor:
    return (_slope_peak(points, tau) / (2 ** bits - 1) / 2) * g.double().abs().unsqueeze(dim) / (n * tau)


@pytest.mark.parametrize("points, tau", [((0.0,), 1.0), ((0.0,), 0.3), ((0.0, 6.0), 1.0), ((-3.0, 3.0), 0.5), ((1.0,), 2.0)])
def test_slope_peak_bounds_the_slope_and_is_a_quarter_for_one_breakpoint(points, tau):
    z = torch.linspace(min(points) - 20 * tau, max(points) + 20 * tau, 200_001, dtype=torch.float64)
    true_peak = float(_exact(z.view(1, 1, -1), torch.full((1, 1), float(z.numel())), 2, points, tau).max()) * tau
    assert true_peak <= _slope_peak(points, tau) <= true_peak + 0.05
    if len(points) == 1:
        assert _slope_peak(points, tau) == 0.25


@pytest.mark.parametrize("state, bits", [("uint4", 4), ("uint8", 8)])
@pytest.mark.parametrize("points, tau", [((0.0,), 1.0), ((0.0,), 0.3), ((0.0, 6.0), 1.0), ((-3.0, 3.0), 0.5)])
@pytest.mark.parametrize("dim", [2, 1])
def test_gradient_is_within_half_a_step_of_the_exact_surrogate(state, bits, points, tau, dim):
    torch.manual_seed(0)
    shape = (3, 5, 7) if dim == 2 else (3, 7, 5)  # 105 elements: an odd count ends in a zero half byte
    z = (torch.randn(shape) * 4).requires_grad_()
    g = torch.randn(3, 5)
    for hard in (True, False):  # the soft code's exact gradient is what is rounded there
        (got,) = torch.autograd.grad(_MeanCode.apply(z, dim, points, tau, hard, False, state), z, g)
        assert got.dtype == torch.float32 and got.shape == z.shape
        err = (got.double() - _exact(z, g, dim, points, tau)).abs()
        bound = _bound(g, dim, z.shape[dim], points, tau, bits)
        assert (err <= bound * (1 + 1e-5) + 1e-12).all()
        assert (err / bound).max() > 0.3  # rounded: the bound is what the state costs, not slack


def _saved_bytes_of_one_site(state: str, dtype=torch.float32) -> int:
    z = torch.randn(2, 4, 9, dtype=dtype, requires_grad=True)
    sizes = []

    def pack(t):
        sizes.append(t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _MeanCode.apply(z, 2, (0.0,), 1.0, True, False, state)
    return sum(sizes)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_one_site_keeps_half_a_byte_one_byte_or_two_per_element(dtype):
    n = 2 * 4 * 9
    assert _saved_bytes_of_one_site("uint4", dtype) == n // 2
    assert _saved_bytes_of_one_site("uint8", dtype) == n
    assert _saved_bytes_of_one_site("bf16", dtype) == 2 * n


def _relu_net(state: str, inplace: bool, seed: int = 0, act=None) -> tuple[nv.NeuroViewCNN, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    act = act or (lambda: nn.ReLU(inplace=inplace))
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), act(), nn.Conv2d(8, 6, 3), act(),
                             nn.Flatten(), nn.Linear(6 * 4 * 4, 5))
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    return nv.NeuroViewCNN(backbone, 5, example_input=x, grad_state=state).train(), x, y


@pytest.mark.parametrize("state", ["uint4", "uint8", "bf16"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_second_backward_reads_the_same_state_in_every_precision(state, dtype):
    net, x, y = _relu_net(state, inplace=True)
    net = net.to(dtype)
    loss = F.cross_entropy(net(x.to(dtype)).float(), y)
    w = net.backbone[0].weight
    g1 = torch.autograd.grad(loss, w, retain_graph=True)[0]
    g2 = torch.autograd.grad(loss, w)[0]
    assert g1.dtype == dtype and torch.isfinite(g1).all() and g1.abs().sum() > 0
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_compact_state_trains_under_autocast_close_to_the_bf16_copy(dtype):
    grads = {}
    for state in ("uint8", "bf16"):
        net, x, y = _relu_net(state, inplace=False)
        with torch.autocast("cpu", dtype=dtype):
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        grads[state] = net.backbone[0].weight.grad
    assert grads["uint8"].dtype == torch.float32 and torch.isfinite(grads["uint8"]).all()
    # both round the surrogate (bf16 rounds z, uint8 the slope): close, not equal
    assert (grads["uint8"] - grads["bf16"]).norm() <= 0.05 * grads["bf16"].norm()


def test_network_gradient_through_compact_sites_is_close_to_the_exact_one():
    """Whole-network check in float64 terms: the uint8 / uint4 weight gradients against float64's exact copy."""
    net64, x, y = _relu_net("bf16", inplace=True)  # float64 always keeps an exact copy: the reference
    net64 = net64.double()
    F.cross_entropy(net64(x.double()), y).backward()
    want = net64.backbone[0].weight.grad.float()
    for state, tol in (("uint8", 0.01), ("uint4", 0.05)):
        net, _, _ = _relu_net(state, inplace=True)
        F.cross_entropy(net(x), y).backward()
        got = net.backbone[0].weight.grad
        assert (got - want).norm() <= tol * want.norm(), state


def test_shared_sites_do_not_depend_on_the_state():
    grads = []
    for state in ("uint4", "bf16"):
        net, x, y = _relu_net(state, inplace=False, act=nn.GELU)
        F.cross_entropy(net(x), y).backward()
        grads.append([p.grad for p in net.parameters() if p.grad is not None])
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_unknown_state_is_a_clear_error():
    with pytest.raises(ValueError, match=r"grad_state: expected one of \('uint4', 'uint8', 'bf16'\), got 'int4'"):
        nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), 2, grad_state="int4")


def test_zoo_builders_take_the_state():
    net = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1, grad_state="uint8")
    assert net.grad_state == "uint8"
    assert nv.create_model("nv_small_cnn", num_classes=3, in_channels=1).grad_state == "uint4"
    assert math.isclose(_slope_peak((0.0,), 1.0), 0.25)
