"""The fused one-pass site kernel (issue 25, :mod:`neuroview.core.fused`) against the torch code.

tests/core/fused_cases.py runs the Triton kernel under Triton's CPU interpreter, in a fresh
process started with ``TRITON_INTERPRET=1``, and, on a machine with a GPU, compiled on CUDA tensors
(``NEUROVIEW_FUSED_CASES=cuda``) (triton reads it when it is first imported, and
``torch.compile`` in another test may import it first). Skipped without triton (CI does not install
it: ``pip install triton`` to run it). The other tests check, without triton, that CPU tensors keep
the torch path.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core import fused, quantize
from neuroview.core.quantize import mean_code

CASES = Path(__file__).with_name("fused_cases.py")


@pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                    reason="triton is not installed (pip install triton): the fused kernel is checked under its CPU interpreter")
def test_the_kernel_matches_the_torch_code_under_the_triton_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES)],
                         env=env, capture_output=True, text=True, timeout=900, cwd=CASES.parents[2])
    if run.returncode and _INTERPRETER_BUG in run.stdout:  # seen with triton 3.6 (torch 2.11's), fixed by 3.9
        import numpy
        import triton
        pytest.skip(f"triton {triton.__version__}'s interpreter cannot loop over an int argument with numpy "
                    f"{numpy.__version__} ({_INTERPRETER_BUG}); the compiled kernel is checked on CUDA below")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-2000:]


#: what triton 3.6's interpreter raises at ``for n0 in range(0, N, BLOCK_N)`` (``int()`` of a
#: one-element array, an error in recent numpy): its bug, not the kernel's
_INTERPRETER_BUG = "only 0-dimensional arrays can be converted to Python scalars"


@pytest.mark.skipif(importlib.util.find_spec("triton") is None or not torch.cuda.is_available(),
                    reason="needs a GPU and triton: the compiled kernel on CUDA tensors")
def test_the_kernel_matches_the_torch_code_on_the_gpu():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"} | {"NEUROVIEW_FUSED_CASES": "cuda"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES)],
                         env=env, capture_output=True, text=True, timeout=900, cwd=CASES.parents[2])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-2000:]


def test_cpu_tensors_keep_the_torch_path(monkeypatch):
    """CPU users are unaffected: the dispatch says no before it ever looks for triton."""
    def boom(*a, **k):
        raise AssertionError("the fused kernel was asked for on CPU")

    monkeypatch.setattr(fused, "_kernel", boom)
    monkeypatch.setattr(fused, "site_code", boom)
    z = torch.randn(2, 4, 5, 5, requires_grad=True)
    assert not fused.enabled(z.flatten(2), (0.0,))
    mean_code(z, (0.0,), "hard", 1.0).sum().backward()
    with torch.no_grad():
        mean_code(z, (0.0, 6.0), "hard", 1.0)
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))
    x = torch.randn(2, 3, 8, 8)
    nv.NeuroViewCNN(backbone, 3, example_input=x).explain(x)


def test_without_triton_site_code_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(fused, "_kernel", lambda: None)
    with pytest.raises(RuntimeError, match="pip install triton"):
        fused.site_code(torch.randn(1, 2, 3), 2, (0.0,))
    assert quantize.fused is fused  # the one dispatch point


def test_a_kernel_that_fails_on_its_device_turns_itself_off(monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("a compile error")

    monkeypatch.setattr(fused, "site_code", broken)
    with pytest.warns(UserWarning, match="fused site kernel is off on cpu .RuntimeError: a compile error"):
        assert not fused._works_on.__wrapped__(torch.device("cpu"))


def _reference_kernels(monkeypatch, code_off: float = 0.0, grad_off: float = 0.0):
    """site_code and slope_grad stood in for by the torch code (on CPU), shifted by the given offsets:
    what a kernel whose numbers are off would give (the H200's first run: codes one rounding off)."""
    def site_code(zf, dim, points, tau=1.0, step=None, bits=None, out=None):
        code = quantize._mean_region_code(zf, dim, points, tau, True) + code_off
        return code, None if step is None else quantize._packed_slope(zf, points, tau, step, bits)

    def slope_grad(kept, grad, shape, dim, bits, scale, dtype):
        g = (grad.float() * scale).unsqueeze(dim)
        return (quantize._unpack_slope(kept, shape, bits).float() * g + grad_off).to(dtype)

    monkeypatch.setattr(fused, "site_code", site_code)
    monkeypatch.setattr(fused, "slope_grad", slope_grad)


@pytest.mark.parametrize("code_off, grad_off, ok", [(0.0, 0.0, True), (2 ** -24, 0.0, False), (0.0, 1e-9, False)])
def test_a_kernel_with_other_numbers_turns_itself_off(monkeypatch, code_off, grad_off, ok):
    """The once-per-device check compares codes and gradient to the bit: one float32 rounding off in
    either turns the kernels off with a warning (and the reference itself passes)."""
    _reference_kernels(monkeypatch, code_off, grad_off)
    if ok:
        assert fused._works_on.__wrapped__(torch.device("cpu"))
        return
    with pytest.warns(UserWarning, match="codes, slopes or gradient differ from the reference"):
        assert not fused._works_on.__wrapped__(torch.device("cpu"))


def test_double_backward_keeps_the_torch_path(monkeypatch):
    """A backward with ``create_graph=True`` (a gradient penalty, a Hessian-vector product) needs the
    site's gradient as a function of the upstream one: a Triton kernel's output has no graph, so the
    dispatch is not even asked then, and the second-order gradient is the torch code's."""
    asked = []
    monkeypatch.setattr(fused, "grad_enabled", lambda kept, shape: asked.append(shape) or False)
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    w = torch.randn(2, 3, requires_grad=True)
    code = mean_code(z, (0.0,), "hard", 1.0)
    with pytest.warns(UserWarning, match="curvature"):  # the slope's own derivative in z is 0: said
        (gz,) = torch.autograd.grad((code * w).sum(), z, create_graph=True)
    assert not asked and gz.requires_grad
    (gw,) = torch.autograd.grad(gz.sum(), w)  # d/dw of the site's gradient: its slopes summed over positions
    slopes = quantize._unpack_slope(quantize._packed_slope(z.detach().flatten(2), (0.0,), 1.0, 0.25 / 15, 4),
                                    torch.Size((2, 3, 16)), 4).float() * (0.25 / 15 / 16)
    torch.testing.assert_close(gw, slopes.sum(2))
    code = mean_code(z, (0.0,), "hard", 1.0)
    code.sum().backward()  # a plain backward asks
    assert asked == [torch.Size((2, 3, 16))]


def test_a_second_derivative_through_a_compact_site_says_what_it_lacks():
    """Double backward through a ReLU site (a compact slope) dropped the surrogate's curvature in z with no word
    (a gradient penalty's weight gradient 4.7% off); a site that shares the activation's own input has it."""
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    code = mean_code(z, (0.0,), "hard", 1.0)
    with pytest.warns(UserWarning, match="surrogate's curvature in the pre-activation is taken as 0"):
        torch.autograd.grad((code * torch.randn(2, 3)).sum(), z, create_graph=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = mean_code(z, (0.0,), "hard", 1.0)
        code.sum().backward()  # a plain backward: nothing to say
