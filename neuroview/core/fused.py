"""One pass per site on CUDA (issue 25): a Triton kernel that reads a site's pre-activation once.

>>> zf = torch.randn(2, 8, 49, device="cuda")           # [B, C, N]: units on dim 1, positions after
>>> code, state = site_code(zf, 2, (0.0,), step=0.25 / 15, bits=4)   # doctest: +SKIP
>>> code.shape, state.shape, state.dtype                 # doctest: +SKIP
(torch.Size([2, 8]), torch.Size([392]), torch.uint8)

For every (sample, unit) row of ``zf`` (``[B, C, N]``, ``dim=2``, or units last ``[B, N, C]``,
``dim=1``; any strides) the kernel writes the row's mean hard code ``sum_k 1[z > t_k]`` over its N
positions, counted in integers and divided once in float32 with IEEE rounding: the same number to
the bit as :func:`neuroview.core.quantize._mean_region_code` on the CPU (a float32 sum of 0/1 codes
is exact below 2^24 positions; on CUDA that torch code is within one float32 rounding, as ATen
divides a CUDA tensor by a scalar as a product with its reciprocal; half inputs compare ``z - t``
rounded to their own dtype, as torch does; a NaN in a row makes its code NaN, as torch's ``clamp``
does). It writes into ``out`` when given, e.g. a
slice of a preallocated ``[B, U]`` code buffer at the site's unit offset, so no concatenation is
needed. In training it can also write the surrogate gradient's slope state in the same pass, packed
as :func:`neuroview.core.quantize._packed_slope` packs it (one code per byte, or two: element ``i``
in the low half of byte ``i``, element ``m + i`` in its high half). Those bytes equal the torch
path's except where the slope lies within float32 rounding of a rounding midpoint (the kernel's
``exp`` is not torch's): there a code may differ by one step, and both stay within half a step of
the exact slope, plus float32 rounding (tests/core/test_fused.py states and checks this).
:func:`slope_grad` is that state's backward in one kernel (the torch code unpacks, casts and scales
in five), the same numbers to the bit; :func:`grad_enabled` dispatches it as :func:`enabled` does.

:func:`enabled` is the dispatch: CUDA tensors of float32/bfloat16/float16 with 1 to 3 breakpoints,
triton importable, not while ``torch.compile`` traces (Inductor fuses the torch code there), and
not with ``NEUROVIEW_FUSED=0``, and only once the kernel has passed a small check on the device
(else a warning). Everything else, CPU included, keeps the torch code. Triton ships
with torch's CUDA wheels; it is imported only when a CUDA tensor asks, so this module imports and
works without it. Verified under Triton's CPU interpreter (``TRITON_INTERPRET=1``) and compiled on
an H200 (triton 3.6; ``benchmarks/fused_cost.py``: README, "On the GPU").

Imports only torch (triton lazily).
"""

from __future__ import annotations

import functools
import os
import warnings

import torch
from torch import Tensor

_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_MAX_POSITIONS = 2 ** 24 // 3  # up to 3 breakpoints' counts, exact in float32 as in the torch path


@functools.lru_cache(maxsize=1)
def _kernel():
    """The module of the compiled (or, with ``TRITON_INTERPRET=1``, interpreted) kernels
    (``site_kernel``, ``slope_grad_kernel``); ``None`` without triton."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return None
    from . import _fused_kernel

    return _fused_kernel


def enabled(zf: Tensor, points: tuple[float, ...]) -> bool:
    """Whether :func:`site_code` takes over the hard code of ``zf`` (the torch code otherwise)."""
    return (zf.is_cuda and not torch.compiler.is_compiling() and zf.dtype in _DTYPES and 1 <= len(points) <= 3
            and zf.dim() == 3 and os.environ.get("NEUROVIEW_FUSED", "1") != "0" and _fits(zf) and _kernel() is not None
            and _works_on(zf.device))


def grad_enabled(kept: Tensor, shape: torch.Size) -> bool:
    """Whether :func:`slope_grad` takes over the backward of a site whose slope state is ``kept``."""
    return (kept.is_cuda and not torch.compiler.is_compiling() and len(shape) == 3 and shape.numel() < 2 ** 31
            and os.environ.get("NEUROVIEW_FUSED", "1") != "0" and _kernel() is not None and _works_on(kept.device))


@functools.lru_cache(maxsize=None)
def _works_on(device: torch.device) -> bool:
    """Once per device: the kernels compile there and a small site's codes, slope state and gradient
    agree with a reference (codes and gradient exactly, slopes within half a step); else a warning,
    and the torch code from then on (a triton too old or too new for these kernels must not break a
    forward pass)."""
    try:
        z = torch.randn(3, 5, 37, generator=torch.Generator().manual_seed(0)).mul_(4)
        z.view(-1)[::7] = 0.0
        step = 0.3 / 15  # above the slope's peak for breakpoints 0 and 6 (0.295)
        code, state = site_code(z.to(device), 2, (0.0, 6.0), 1.0, step, 4)
        ok = torch.equal(code.cpu(), ((z > 0).float() + (z > 6).float()).sum(2) / 37)
        s = lambda u: torch.sigmoid(u.double()) * (1 - torch.sigmoid(u.double()))  # noqa: E731
        state = state.cpu()
        q = torch.cat((state & 15, state >> 4))[: z.numel()].double().view_as(z)
        ok = ok and bool(((q - (s(z) + s(z - 6)) / step).abs() <= 0.501).all())
        grad = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
        gz = slope_grad(state.to(device), grad.to(device), z.shape, 2, 4, 0.01, torch.float32).cpu()
        ok = ok and torch.equal(gz, q.float().mul_((grad * 0.01).unsqueeze(2)))
        why = "a small site's codes, slopes or gradient differ from the reference"
    except Exception as e:  # noqa: BLE001 (a compile error of any kind)
        ok, why = False, f"{type(e).__name__}: {str(e)[:300]}"
    if not ok:
        warnings.warn(f"neuroview: the fused site kernel is off on {device} ({why}); the torch code runs instead", stacklevel=2)
    return ok


def _fits(zf: Tensor) -> bool:
    n = max(zf.shape[1], zf.shape[2])  # the positions are one of the two; the bound is on both
    span = sum((s - 1) * abs(st) for s, st in zip(zf.shape, zf.stride()))
    return n <= _MAX_POSITIONS and zf.numel() < 2 ** 31 and span < 2 ** 31


def _blocks(zf: Tensor, dim: int) -> tuple[int, int]:
    """``(BLOCK_C, BLOCK_N)``: a tile of about 2,048 elements, long along the unit-stride axis."""
    c, n = zf.shape[3 - dim], zf.shape[dim]
    pow2 = lambda v: 1 << max(0, (v - 1).bit_length())  # noqa: E731
    if zf.stride(3 - dim) == 1 and c > 1:  # units contiguous (channels last, tokens)
        bc = min(pow2(c), 128)
        return bc, max(2048 // bc, 1)
    bn = min(pow2(n), 1024)
    return min(pow2(c), max(2048 // bn, 1)), bn


def site_code(zf: Tensor, dim: int, points: tuple[float, ...], tau: float = 1.0, step: float | None = None,
              bits: int | None = None, out: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """``(code [B, C] float32, state)`` of ``zf`` in one kernel (see the module docstring).

    ``dim``: the positions' dim (2 for ``[B, C, N]``, 1 for ``[B, N, C]``). ``step``, ``bits``
    (4 or 8): also the slope state ``round(sum_k sigmoid'((z - t_k) / tau) / step)`` as uint8,
    flat in ``zf``'s logical order (``None`` otherwise). ``out``: a float32 ``[B, C]`` tensor (any
    strides, e.g. a column slice of the code buffer) written and returned as the code.
    """
    kernel = _kernel()
    if kernel is None:
        raise RuntimeError("site_code: needs triton (pip install triton); use enabled() to dispatch")
    if zf.dim() != 3 or dim not in (1, 2) or zf.dtype not in _DTYPES or not 1 <= len(points) <= 3:
        raise ValueError(f"site_code: expected [B, C, N] (dim 2) or [B, N, C] (dim 1) in {_DTYPES} "
                         f"with 1 to 3 breakpoints, got {tuple(zf.shape)}, dim {dim}, {zf.dtype}, {points}")
    b, c, n = zf.shape[0], zf.shape[3 - dim], zf.shape[dim]
    s_b, s_c, s_n = zf.stride(0), zf.stride(3 - dim), zf.stride(dim)
    if out is None:
        out = torch.empty(b, c, dtype=torch.float32, device=zf.device)
    elif out.shape != (b, c) or out.dtype != torch.float32:
        raise ValueError(f"site_code: out must be float32 {(b, c)}, got {out.dtype} {tuple(out.shape)}")
    total, kind = zf.numel(), bits or 0
    half = (total + 1) // 2 if kind == 4 else total
    state = torch.empty(half if kind else 1, dtype=torch.uint8, device=zf.device)
    t = tuple(float(p) for p in points) + (0.0,) * (3 - len(points))
    bc, bn = _blocks(zf, dim)
    grid = (b, -(-c // bc))
    kernel.site_kernel[grid](zf, out, state, c, n, s_b, s_c, s_n, out.stride(0), out.stride(1), total, half,
                             t[0], t[1], t[2], 1.0 / tau, 1.0 / step if kind else 1.0, float(n),
                             NPTS=len(points), UNITS_LAST=dim == 1, STATE=kind, ROUND=zf.dtype != torch.float32,
                             BLOCK_C=bc, BLOCK_N=bn)
    return out, (state if kind else None)


def slope_grad(kept: Tensor, grad: Tensor, shape: torch.Size, dim: int, bits: int, scale: float,
               dtype: torch.dtype) -> Tensor:
    """The backward of a site whose slope state is ``kept`` (:func:`site_code`'s or the torch
    path's, ``bits`` 4 or 8), in one kernel: ``unpack(kept) * (grad * scale)`` broadcast over the
    positions (``dim``) of ``shape``, as ``dtype``, contiguous in ``shape``: the torch path's
    numbers to the bit (the same float32 products; ``scale`` is ``step / (N * tau)``)."""
    kernel = _kernel()
    if kernel is None:
        raise RuntimeError("slope_grad: needs triton (pip install triton); use grad_enabled() to dispatch")
    total, rows, width = shape.numel(), shape[0] * shape[1], shape[2]  # rows (b, c) or (b, n), N or C wide
    out = torch.empty(shape, dtype=dtype, device=kept.device)
    block = min(1 << max(0, (width - 1).bit_length()), 1024)
    tile_rows = max(1024 // block, 1)
    bf16 = dtype == torch.bfloat16
    grid = (-(-rows // tile_rows), -(-width // block))
    kernel.slope_grad_kernel[grid](kept, grad.contiguous(), out.view(torch.int16) if bf16 else out, shape[1], total,
                                   (total + 1) // 2, rows, width, float(scale), STATE=bits, UNITS_LAST=dim == 1,
                                   OUT_BF16=bf16, ROWS=tile_rows, BLOCK=block)
    return out
