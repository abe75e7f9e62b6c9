"""Cases of the fused site kernel, run by tests/core/test_fused.py: under Triton's CPU interpreter,
and on a GPU too where there is one (``NEUROVIEW_FUSED_CASES=cuda``: the compiled kernel on CUDA
tensors, each compared with the torch code on the same tensor on the CPU).

Not collected by a plain ``pytest`` (no ``test_`` prefix): ``TRITON_INTERPRET=1`` must be set before
triton is first imported, since triton decorates its own library (``tl.sum``, ``tl.zeros``) when it
is imported, and another test (``torch.compile``) may import it first. test_fused.py runs this
file in a fresh process with the variable set.

The kernel (:mod:`neuroview.core.fused`) against the torch code on CPU tensors: codes equal to the
bit (fp32, bf16, fp16; both unit layouts; sizes off the block sizes; 1 to 3 breakpoints); the slope
state's bytes equal except where the slope lies within float32 rounding of a rounding midpoint (the
interpreter's ``exp`` is numpy's, not torch's): there a code may differ by one, and it is still
within half a step of the exact slope.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.core import fused
from neuroview.core.quantize import _mean_region_code, _packed_slope, _slope_peak, _unpack_slope

ON_CUDA = os.environ.get("NEUROVIEW_FUSED_CASES") == "cuda"
DEV = torch.device("cuda" if ON_CUDA else "cpu")
pytestmark = pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1" and not (ON_CUDA and torch.cuda.is_available()),
                                reason="run by tests/core/test_fused.py in a process with TRITON_INTERPRET=1 "
                                       "(or NEUROVIEW_FUSED_CASES=cuda on a GPU)")
POINTS = [(0.0,), (0.0, 6.0), (-3.0, 3.0), (-3.0, 0.5, 3.0)]
DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@pytest.fixture(scope="module")
def interpreted():
    """:func:`fused.site_code` on CPU tensors: its kernel run by Triton's interpreter, or on the GPU
    (the input copied there with its strides, the results back)."""
    if not ON_CUDA:
        return fused.site_code

    def on_gpu(z, *args, **kwargs):
        code, state = fused.site_code(z.to(DEV), *args, **kwargs)
        return code.cpu(), None if state is None else state.cpu()
    return on_gpu


def _site(shape, dim: int, dtype, points, seed: int = 0) -> torch.Tensor:
    """``[B, C, N]`` (dim 2) or ``[B, N, C]`` (dim 1) values around the breakpoints, with some exactly
    on them, signed zeros and infinities."""
    g = torch.Generator().manual_seed(seed)
    b, c, n = shape
    z = torch.randn(b, c, n, generator=g) * 4
    flat = z.view(-1)
    for i, t in enumerate(points):
        flat[i::11] = t
    flat[5::13], flat[6::29], flat[7::31], flat[8::37] = 0.0, -0.0, float("inf"), float("-inf")
    z = z.to(dtype)
    return z if dim == 2 else z.transpose(1, 2).contiguous()


def _check_state(z, dim, points, tau, bits, got, rare: bool = True):
    """Bytes equal to the torch path's, or one step off where float32 rounding straddles a midpoint."""
    step = _slope_peak(points, tau) / (2 ** bits - 1)
    want = _packed_slope(z, points, tau, step, bits)
    assert got.dtype == torch.uint8 and got.shape == want.shape
    if torch.equal(got, want):
        return
    a, b = (_unpack_slope(s, z.shape, bits).double() for s in (got, want))
    zd = z.double()
    exact = sum(torch.sigmoid((zd - t) / tau) * (1 - torch.sigmoid((zd - t) / tau)) for t in points) / step
    off = a != b
    assert ((a - b).abs()[off] == 1).all()
    assert ((exact - exact.floor() - 0.5).abs()[off] < 1e-4).all()  # at a midpoint, both roundings are fair
    assert off.double().mean() < 1e-3 or not rare


@pytest.mark.parametrize("points", POINTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [2, 1])
@pytest.mark.parametrize("shape", [(1, 3, 1100), (2, 130, 5)])  # positions / units over a block, odd counts
def test_codes_and_state_equal_the_torch_path(interpreted, shape, dim, dtype, points):
    z = _site(shape, dim, dtype, points)
    tau = 0.5 if len(points) == 2 else 1.0
    want = _mean_region_code(z, dim, points, tau, True)
    for bits in (None, 4, 8):
        step = bits and _slope_peak(points, tau) / (2 ** bits - 1)
        code, state = interpreted(z, dim, points, tau, step, bits)
        assert code.dtype == torch.float32 and torch.equal(code, want), bits
        if bits:
            _check_state(z, dim, points, tau, bits, state)
        else:
            assert state is None


def test_a_slope_at_a_rounding_midpoint(interpreted):
    """Found among 4.7M slopes (1 differed): the interpreter's exp (numpy's) gives code 68, torch's 67;
    the exact slope / step is 67.49999..., so either is a fair rounding."""
    z = torch.full((1, 1, 3), float.fromhex("0x1.475cc2p+0"))
    step = _slope_peak((0.0, 6.0), 0.5) / 255
    _check_state(z, 2, (0.0, 6.0), 0.5, 8, interpreted(z, 2, (0.0, 6.0), 0.5, step, 8)[1], rare=False)


def test_writes_a_slice_of_the_code_buffer_through_strides():
    z = torch.randn(2, 6, 45, 47).contiguous(memory_format=torch.channels_last)  # units of unit stride
    zf = z.flatten(2)
    assert zf.stride(1) == 1
    buf = torch.full((2, 20), -1.0, device=DEV)
    code, state = fused.site_code(zf.to(DEV), 2, (0.0,), 1.0, 0.25 / 15, 4, out=buf[:, 7:13])
    assert code.data_ptr() == buf[:, 7:13].data_ptr()
    buf, state = buf.cpu(), state.cpu()
    assert torch.equal(buf[:, 7:13], _mean_region_code(zf, 2, (0.0,), 1.0, True))
    assert (buf[:, :7] == -1).all() and (buf[:, 13:] == -1).all()
    _check_state(zf, 2, (0.0,), 1.0, 4, state)


def test_nan_rows_and_half_rounding_of_z_minus_t(interpreted):
    z = torch.randn(2, 3, 10)
    z[1, 2, 4] = float("nan")
    got = interpreted(z, 2, (0.0,))[0]
    assert torch.equal(got.isnan(), _mean_region_code(z, 2, (0.0,), 1.0, True).isnan()) and got.isnan().sum() == 1
    # 2**-24 - 5e-8 is below half of float16's smallest step: torch's z - t rounds to 0 there, so no code
    z = torch.full((1, 1, 3), 2.0 ** -24, dtype=torch.float16)
    want = _mean_region_code(z, 2, (5e-8,), 1.0, True)
    assert float(want) == 0.0 and torch.equal(interpreted(z, 2, (5e-8,))[0], want)


@pytest.mark.parametrize("state", ["uint4", "uint8", "bf16"])
@pytest.mark.parametrize("act", [lambda: nn.ReLU(inplace=True), nn.ReLU6, nn.Hardswish])
def test_network_through_the_dispatch(interpreted, monkeypatch, state, act):
    """quantize's hook through the kernel (forced onto CPU tensors under the interpreter): codes to
    the bit (within one float32 rounding of the torch code on CUDA, see below), and the same weight
    gradient as the torch code on the same device."""
    def run():
        torch.manual_seed(0)
        backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), act(), nn.Conv2d(8, 6, 3), act(),
                                 nn.Flatten(), nn.Linear(6 * 4 * 4, 5))
        x = torch.randn(4, 3, 8, 8) * 3
        net = nv.NeuroViewCNN(backbone, 5, example_input=x, grad_state=state).train().to(DEV)
        x = x.to(DEV)
        codes = net.codes(x)
        F.cross_entropy(net.head(codes), torch.tensor([0, 1, 2, 3], device=DEV)).backward()
        with torch.no_grad():
            return codes, net.eval().codes(x), backbone[0].weight.grad

    monkeypatch.setenv("NEUROVIEW_FUSED", "0")  # the torch code (on a GPU the dispatch would take the kernel)
    want = run()
    monkeypatch.setenv("NEUROVIEW_FUSED", "1")
    calls, grad_calls = [], []
    enabled = fused.enabled if ON_CUDA else (lambda zf, points: True)
    grad_enabled = fused.grad_enabled if ON_CUDA else (lambda kept, shape: True)
    monkeypatch.setattr(fused, "enabled", lambda zf, points: calls.append(zf.shape) or enabled(zf, points))
    monkeypatch.setattr(fused, "grad_enabled", lambda kept, shape: grad_calls.append(shape) or grad_enabled(kept, shape))
    got = run()
    # a slope state only where the activation overwrites its input (the in-place ReLU: ReLU6 and
    # Hardswish keep theirs, which the site shares) and not as a bfloat16 copy, which recomputes the sigmoid
    assert bool(grad_calls) == (state != "bf16" and act().inplace)
    # on CUDA the torch code's division by the position count multiplies by its reciprocal (ATen's
    # "may lose one bit of precision"); the kernel divides correctly rounded, as the CPU does
    ulps = 1 if ON_CUDA else 0
    assert calls and all(torch.testing.assert_close(a, b, rtol=ulps * 2.0 ** -23, atol=0) is None
                         for a, b in zip(got[:2], want[:2]))
    torch.testing.assert_close(got[2], want[2], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [2, 1])
@pytest.mark.parametrize("shape", [(1, 3, 1100), (2, 130, 5), (3, 1, 7)])  # the last: an odd count of elements
def test_slope_grad_equals_the_torch_backward_to_the_bit(shape, dim, dtype, bits):
    """The backward kernel against quantize's torch backward of a slope state: unpack, float32, times
    ``grad * step / (N * tau)`` broadcast over the positions, cast to the input's dtype."""
    points, tau = (0.0, 6.0), 0.5
    z = _site(shape, dim, dtype, points)
    step = _slope_peak(points, tau) / (2 ** bits - 1)
    state = _packed_slope(z, points, tau, step, bits)
    b, c, n = shape
    grad = torch.randn(c, b, generator=torch.Generator().manual_seed(2)).t()  # not contiguous, as autograd may give
    scale = step / (n * tau)
    want = _unpack_slope(state, z.shape, bits).to(torch.float32).mul_((grad.to(torch.float32) * scale).unsqueeze(dim))
    got = fused.slope_grad(state.to(DEV), grad.to(DEV), z.shape, dim, bits, scale, dtype).cpu()
    assert got.dtype == dtype and got.shape == z.shape and got.is_contiguous()
    assert torch.equal(got, want.to(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_slope_grad_carries_nan_and_inf_as_torch_does(dtype):
    """A NaN or infinite gradient (and a zero slope times an infinite one) gives what the torch path
    gives, bfloat16's integer rounding included (NaN, overflow to inf)."""
    points, tau, bits = (0.0,), 1.0, 4
    z = _site((2, 3, 9), 2, dtype, points)
    step = _slope_peak(points, tau) / (2 ** bits - 1)
    state = _packed_slope(z, points, tau, step, bits)
    grad = torch.tensor([[float("nan"), float("inf"), -float("inf")], [3e38, -1.0, 0.0]])
    want = _unpack_slope(state, z.shape, bits).to(torch.float32).mul_((grad * (step / 9)).unsqueeze(2)).to(dtype)
    got = fused.slope_grad(state.to(DEV), grad.to(DEV), z.shape, 2, bits, step / 9, dtype).cpu()
    torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)


def test_the_once_per_device_check_passes(interpreted):
    assert fused._works_on.__wrapped__(DEV)
