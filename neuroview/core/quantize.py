"""Unit codes: which affine region each pre-activation falls into, averaged over positions.

Imports only torch and einops. Which modules are activations, and their breakpoints, is
:mod:`neuroview.core.activations`; where a site's units lie (dim 1 or the last dim of its
sample-first pre-activation) is decided in :mod:`neuroview.core.axes` and handed in here as ``axis``.

A piecewise-affine activation splits the real line at its breakpoints (ReLU at 0, ReLU6 at 0
and 6, Hardswish at -3 and 3). The vector-quantization code of a unit at one position is the
index of its region, i.e. the number of breakpoints the pre-activation ``z`` exceeds; for
ReLU-like units that is the on/off bit ``1[z > 0]``. Smooth activations (GELU, SiLU, Tanh, ...)
use the breakpoint of the ReLU they smooth.
"""

from __future__ import annotations

import math
import warnings

import torch
from einops import rearrange
from torch import Tensor

from . import fused

QUANTIZERS = ("hard", "soft", "none")

#: What a site keeps for its code's gradient where the activation after it does not keep ``z`` itself
#: (ReLU saves its output; in-place activations overwrite ``z``): the surrogate's slope at ``z``
#: rounded to 4 bits (two per byte) or 8 bits, or a bfloat16 copy of ``z`` (2 bytes, the state
#: before 4-bit slopes were measured: ``benchmarks/grad_state.py``).
GRAD_STATES = ("uint4", "uint8", "bf16")


class _MeanCode(torch.autograd.Function):
    """Mean over positions of the region code, with a sigmoid-shaped surrogate gradient.

    Forward: ``sum_k step((z - t_k) / tau)`` (``hard``) or ``sum_k sigmoid((z - t_k) / tau)``
    (``soft``), averaged over the positions of ``zf [B, C, N]`` (dim 2) or ``[B, N, C]`` (dim
    1). Backward: ``sum_k sigmoid'((z - t_k) / tau) / tau``, the gradient of ``soft`` and the
    straight-through surrogate of ``hard``, exact up to the precision of the state it is read from
    (below: with the default ``"uint4"`` about 3% per element for ``soft`` too; ``"bf16"`` 0.1%).

    What backward reads, by ``state`` (:data:`GRAD_STATES`) and the site:

    - ``shared`` (the activation after the site saves ``z`` itself for its own backward, see
      :mod:`neuroview.core.shared_input`): ``zf``, a view of that storage; no extra byte, rounded
      to bfloat16 in backward, so the gradient is the same to the bit as with ``"bf16"``;
    - ``"uint4"`` / ``"uint8"``: the slope ``d = sum_k sigmoid'((z - t_k) / tau)`` itself, computed
      in forward (in float32 for half inputs) and rounded to ``q = round(d / step)`` with
      ``step = peak / 15`` (``/ 255``) for the slope's bound ``peak`` (:func:`_slope_peak`, 0.25
      for one breakpoint): half a byte (one byte) per element, and backward is one multiply,
      ``q * step * grad / (N * tau)``, off the exact surrogate by at most ``step / 2`` in the slope
      (a compiled graph takes 8 bits where eager mode takes 4: :func:`mean_code`);
    - ``"bf16"``: a bfloat16 copy of ``z`` (2 bytes per element; a copy, so an in-place
      activation after us cannot corrupt it), the sigmoid recomputed in backward.

    float64 input always keeps an exact copy (gradient checks). Nothing saved is written to in
    backward: a second backward (``retain_graph``) reads the same state. Under ``create_graph`` the
    gradient is a function of the upstream one (derivatives through the head are exact), but only a
    ``shared`` site differentiates the slope itself in ``z``: elsewhere the surrogate's curvature is 0
    in a second derivative through the backbone, and a warning says so.
    """

    @staticmethod
    def forward(ctx, zf: Tensor, dim: int, points: tuple[float, ...], tau: float, hard: bool,
                shared: bool = False, state: str = "uint4") -> Tensor:
        half = zf.dtype in (torch.float32, torch.float16)
        ctx.points, ctx.tau, ctx.dtype, ctx.dim, ctx.round, ctx.shared = points, tau, zf.dtype, dim, shared and half, shared
        ctx.n, ctx.slope = zf.shape[dim], not shared and state != "bf16" and zf.dtype != torch.float64
        bits = 4 if state == "uint4" else 8
        ctx.step = _slope_peak(points, tau) / (2 ** bits - 1)
        code, keep = _code_and_slope(zf.detach(), dim, points, tau, hard, ctx.step if ctx.slope else None, bits)
        if ctx.slope:
            ctx.shape, ctx.bits = zf.shape, bits
        else:
            keep = zf if shared else zf.to(torch.bfloat16) if half else zf.clone()
        ctx.save_for_backward(keep)
        return code

    @staticmethod
    def backward(ctx, grad: Tensor):
        (kept,) = ctx.saved_tensors
        if torch.is_grad_enabled() and not ctx.shared:  # create_graph: a second derivative is asked for
            warnings.warn("create_graph through a NeuroView site that keeps a compact slope or a copy of its "
                          "pre-activation (ReLU, in-place activations; any grad_state): the surrogate's curvature in "
                          "the pre-activation is taken as 0, so a second derivative through the backbone lacks that "
                          "term (derivatives through the head are exact)", stacklevel=2)
        if ctx.slope:
            # CUDA: unpacking and scaling in one kernel, the same numbers; not under create_graph (grad mode
            # on in backward), where the gradient must stay a function of `grad` for a second backward
            if not torch.is_grad_enabled() and fused.grad_enabled(kept, ctx.shape):
                gz = fused.slope_grad(kept, grad, ctx.shape, ctx.dim, ctx.bits, ctx.step / (ctx.n * ctx.tau), ctx.dtype)
                return gz, None, None, None, None, None, None
            g = (grad.to(torch.float32) * (ctx.step / (ctx.n * ctx.tau))).unsqueeze(ctx.dim)
            # a fresh float32 tensor, scaled in place: faster on CPU than a uint8 * float32 product
            gz = _unpack_slope(kept, ctx.shape, ctx.bits).to(torch.float32).mul_(g)
            return gz.to(ctx.dtype), None, None, None, None, None, None
        # always a fresh tensor (copy=True): the scaling below works in place, and the saved one
        # must survive for a second backward (retain_graph) whatever its dtype
        zf = kept.to(torch.bfloat16).to(ctx.dtype) if ctx.round else kept.to(ctx.dtype, copy=True)
        g = (grad.to(ctx.dtype) / (ctx.n * ctx.tau)).unsqueeze(ctx.dim).expand_as(zf)
        gz = None
        for t in ctx.points:
            # with one breakpoint at 0 (ReLU-like) zf itself is used up in place; else a copy
            u = zf if (t == 0 and len(ctx.points) == 1) else zf - t
            s = torch.sigmoid_(_over_tau(u, ctx.tau, inplace=True))
            # aten's fused sigmoid backward: g * s * (1 - s) in one pass
            d = torch.ops.aten.sigmoid_backward(g, s)
            gz = d if gz is None else gz.add_(d)
        # zf is a view of the pre-activation: autograd routes gz back through the view to it
        return gz, None, None, None, None, None, None


#: The largest float32: a ``1 / tau`` beyond it is ``inf`` in a float32 product (see :func:`_over_tau`).
_F32_MAX = torch.finfo(torch.float32).max


def _over_tau(u: Tensor, tau: float, inplace: bool = False) -> Tensor:
    """``u / tau`` as every code here takes it: ``u * (1 / tau)``, the product the fused CUDA kernel
    takes too (the same numbers to the bit). Where ``1 / tau`` overflows float32 (tau below 3e-39) it
    scales in two steps of at most float32's largest value, so ``u = 0`` gives 0, not ``0 * inf = NaN``."""
    if tau == 1.0:
        return u
    inv = 1.0 / tau
    if inv <= _F32_MAX:
        return u.mul_(inv) if inplace else u * inv
    s = min(math.sqrt(inv), _F32_MAX)
    return (u.mul_(s) if inplace else u * s).mul_(s)


def _slope_peak(points: tuple[float, ...], tau: float) -> float:
    """An upper bound of ``sum_k sigmoid'((z - t_k) / tau)`` over all ``z``: 0.25 for one
    breakpoint. For several, the breakpoint nearest ``z`` gives at most 0.25 and every other one
    ``t_j`` is at least half its distance to that one away from ``z``, so at most
    ``sigmoid'(|t_j - t_k| / (2 tau))`` (ReLU6, Hardswish at tau 1: 0.295, the true peak 0.253)."""
    def slope(u: float) -> float:
        e = math.exp(-abs(u))
        return e / (1.0 + e) ** 2

    return 0.25 + max(sum(slope((a - b) / (2 * tau)) for b in points if b != a) for a in points)


def _packed_slope(zf: Tensor, points: tuple[float, ...], tau: float, step: float, bits: int) -> Tensor:
    """``round(sum_k sigmoid'((zf - t_k) / tau) / step)`` as uint8, flat in ``zf``'s logical order:
    one per byte (``bits=8``) or two (``bits=4``: of ``2m`` elements, element ``i`` in the low half
    of byte ``i`` and element ``m + i`` in its high half; an odd count ends in a zero)."""
    u0 = zf.float() if zf.dtype in (torch.float16, torch.bfloat16) else zf
    inv = torch.full((), 1.0 / step, dtype=u0.dtype, device=u0.device)
    acc = None
    for t in points:
        u = u0 - t if t else u0
        s = torch.sigmoid(_over_tau(u, tau))
        # s * (1 - s) / step in one pass, written over s
        d = torch.ops.aten.sigmoid_backward.grad_input(inv, s, grad_input=s)
        acc = d if acc is None else acc.add_(d)
    # rounded half up: every value is >= 0, so the cast's truncation is a floor
    q = acc.add_(0.5).to(torch.uint8).reshape(-1)
    if bits == 8:
        return q
    if q.numel() % 2:
        q = torch.cat((q, q.new_zeros(1)))
    half = q.numel() // 2  # halves rather than neighbours: contiguous reads, 6x faster to pack on CPU
    return torch.add(q[:half], q[half:], alpha=16)  # lo + 16 * hi, in uint8


def _unpack_slope(kept: Tensor, shape: torch.Size, bits: int) -> Tensor:
    """The uint8 slope codes of :func:`_packed_slope`, in ``shape``."""
    if bits == 8:
        return kept.view(shape)
    both = torch.cat((kept & 15, kept >> 4))
    return both[: shape.numel()].view(shape)


def _same_storage(a: Tensor, b: Tensor) -> bool:
    """Whether ``a`` and ``b`` are views of one storage (``False`` for tensors without one)."""
    try:
        return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError, TypeError):
        return False


def _code_and_slope(zf: Tensor, dim: int, points: tuple[float, ...], tau: float, hard: bool,
                    step: float | None = None, bits: int = 4) -> tuple[Tensor, Tensor | None]:
    """The site's ``[B, C]`` code and, given ``step``, its packed slope state: one fused kernel on
    CUDA (:mod:`neuroview.core.fused`, the same codes to the bit), else the torch code below."""
    if hard and fused.enabled(zf, points):
        return fused.site_code(zf, dim, points, tau, step, bits if step else None)
    code = _mean_region_code(zf, dim, points, tau, hard)
    return code, None if step is None else _packed_slope(zf, points, tau, step, bits)


def _mean_region_code(zf: Tensor, dim: int, points: tuple[float, ...], tau: float, hard: bool) -> Tensor:
    """``[B, C]`` mean over the positions (``dim``) of the region code of ``zf``, in as few passes
    as we can, accumulated in float32 whatever the input dtype (a bf16 sum of 0/1 codes over
    thousands of positions is not exact).

    The hard code does not depend on ``tau`` (``(z - t) / tau > 0`` iff ``z > t``), so it is one
    comparison and one count per breakpoint; this is the hot path of every forward and explain.
    """
    code = None
    acc = torch.float64 if zf.dtype == torch.float64 else torch.float32
    for t in points:
        if hard:
            # 1[z > t] as ceil(clamp(z - t, 0, 1)): exact, and 3x faster on CPU than
            # summing the boolean (z > t), which converts dtype on the way
            c = (zf - t if t else zf).clamp(0, 1).ceil_().sum(dim, dtype=acc)
        else:
            c = torch.sigmoid(_over_tau(zf - t if t else zf, tau)).sum(dim, dtype=acc)
        code = c if code is None else code.add_(c)
    # not in place: an in-place op on _MeanCode.forward's output made torch 2.11's compiled backward
    # return a zero gradient (tests/core/test_compile.py, on the GPU machine's torch 2.11); [B, C] is small
    return code / zf.shape[dim]


def as_units(z: Tensor, axis: int, batch: int) -> tuple[Tensor, int]:
    """``(zf, dim)``: ``z`` as ``[B, C, N]`` (units on dim 1, ``dim=2``) or ``[B, N, C]`` (units
    last, ``dim=1``), positions flattened (a view where the layout allows). ``z`` is sample-first
    and may fold positions into its leading dim (windows, MobileViT's ``[B * P, N, C]``,
    sample-major): ``batch`` is the true B."""
    if axis == 1 and z.dim() > 2:
        if z.shape[0] == batch:  # the hot path, a conv map: einops would take twice as long for a flatten
            return z.flatten(2), 2
        return rearrange(z, "(b k) c ... -> b c (k ...)", b=batch), 2
    return rearrange(z, "(b k) ... c -> b (k ...) c", b=batch), 1


def code_map(z: Tensor, points: tuple[float, ...], quantizer: str, tau: float, axis: int = 1, batch: int | None = None) -> Tensor:
    """Per-position code of ``z`` (no averaging), units on dim 1: ``[B, C, *positions]`` (a site with units last
    keeps its grid, ``[B, H, W, C]`` as ``[B, C, H, W]``, but gives ``[B, C, N]`` over tokens or folded windows).

    The hard code keeps ``z``'s dtype (counts of breakpoints, exact in any); the soft one is float32
    (float64 for float64 input), each sigmoid computed as :func:`_mean_region_code` computes it and
    summed in float32 as it sums them, so the map averages to the site's code: summed in bfloat16, two
    breakpoints' sigmoids were off by 8e-4 and the spatial maps missed the logit by 3e-4 of it."""
    out = None
    acc = torch.float64 if z.dtype == torch.float64 else torch.float32
    for t in points:
        if quantizer == "hard":
            c = (z > t).to(z.dtype)
        else:
            c = torch.sigmoid(_over_tau(z - t if t else z, tau)).to(acc)
        out = c if out is None else out.add_(c)
    return units_first(out, axis, batch)


def units_first(m: Tensor, axis: int, batch: int | None) -> Tensor:
    """``m`` with its units on dim 1: a conv map keeps its positions (``[B, C, H, W]``), and so does a
    channels-last map of the samples alone (ConvNeXt's ``[B, H, W, C]``: ``[B, C, H, W]``; flattened, the gallery's heat
    and the spatial maps of a 2-D channels-last site were lost); windows folded into the batch and tokens become
    ``[B, C, N]``."""
    if batch is None or m.shape[0] == batch:
        if axis == 1:
            return m
        if m.dim() > 3:  # [B, *grid, C]; a token map [B, N, C] (and [B, C]) as below, [B, C, N] ([B, C, 1])
            return m.movedim(-1, 1)  # a view, units innermost: spatial_maps without net leaves it out (order unknown)
    if axis == 1:
        return rearrange(m, "(b k) c ... -> b c (k ...)", b=batch)
    return rearrange(m, "(b k) ... c -> b c (k ...)", b=batch or m.shape[0])


def mean_code(z: Tensor, points: tuple[float, ...], quantizer: str, tau: float, axis: int = 1, batch: int | None = None,
              kept: Tensor | None = None, grad_state: str = "uint4") -> Tensor:
    """``[B, C]`` code of each unit averaged over positions, from the pre-activation ``z``.

    ``axis`` is the site's unit axis (1, or -1 for channels-last maps and tokens); the result is
    float32 (float64 for float64 input). ``kept``: a tensor autograd keeps for backward anyway
    (the activation's own input); when ``z``'s units are a view of its storage, the surrogate
    gradient keeps that view rather than its own state, which is ``grad_state``
    (:data:`GRAD_STATES`, see :class:`_MeanCode`).
    """
    if z.dim() == 1:
        raise ValueError(f"site output: expected at least [B, C], got shape {tuple(z.shape)}")
    zf, dim = as_units(z, axis, batch or z.shape[0])
    if torch.compiler.is_compiling() and not isinstance(tau, float):  # a tau changed between compiled calls is
        tau = float(tau)  # a symbolic float there, which the Function's traced backward cannot take: a recompile
    if torch.is_grad_enabled() and z.requires_grad:
        shared = kept is not None and _same_storage(zf, kept)
        if grad_state == "uint4" and torch.compiler.is_compiling():
            # packing pairs elements of the two halves of the tensor, a loop Inductor cannot fuse with the
            # activation's: a compiled graph keeps 8-bit slopes, computed (or recomputed in backward, as
            # AOTAutograd's partitioner decides) inside the kernels of the activation (compiled_kernels.py)
            grad_state = "uint8"
        if not torch.compiler.is_compiling() and torch._C._functorch.is_functorch_wrapped_tensor(z):  # (traced: none)
            raise TypeError(f"quantizer: the {quantizer!r} code's surrogate gradient (an autograd Function) cannot run "
                            "under torch.func's grad / jacrev / jvp; take the gradient with torch.autograd.grad (or "
                            "captum), or build the network with quantizer='none'")
        return _MeanCode.apply(zf, dim, points, tau, quantizer == "hard", shared, grad_state)
    return _code_and_slope(zf, dim, points, tau, quantizer == "hard")[0]
