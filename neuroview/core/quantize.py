"""Unit codes: which affine region each pre-activation falls into, averaged over positions.

A piecewise-affine activation splits the real line at its breakpoints (ReLU at 0, ReLU6 at 0
and 6, Hardswish at -3 and 3). The vector-quantization code of a unit at one position is the
index of its region, i.e. the number of breakpoints the pre-activation ``z`` exceeds; for
ReLU-like units that is the on/off bit ``1[z > 0]``. Smooth activations (GELU, SiLU, Tanh, ...)
use the breakpoint of the ReLU they smooth.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

QUANTIZERS = ("hard", "soft", "none")

#: Activation module types found automatically, with their region breakpoints.
ACTIVATIONS: dict[type[nn.Module], tuple[float, ...]] = {
    nn.ReLU: (0.0,),
    nn.LeakyReLU: (0.0,),
    nn.PReLU: (0.0,),
    nn.RReLU: (0.0,),
    nn.ELU: (0.0,),
    nn.CELU: (0.0,),
    nn.SELU: (0.0,),
    nn.GELU: (0.0,),
    nn.SiLU: (0.0,),
    nn.Mish: (0.0,),
    nn.Softplus: (0.0,),
    nn.Tanh: (0.0,),
    nn.Sigmoid: (0.0,),
    nn.ReLU6: (0.0, 6.0),
    nn.Hardswish: (-3.0, 3.0),
    nn.Hardsigmoid: (-3.0, 3.0),
}


def breakpoints(module: nn.Module) -> tuple[float, ...]:
    """Region breakpoints of an activation module (``(0.0,)`` for any other module)."""
    if isinstance(module, nn.Hardtanh):  # ReLU6 is a Hardtanh too
        return (float(module.min_val), float(module.max_val))
    for kind, points in ACTIVATIONS.items():
        if isinstance(module, kind):
            return points
    return (0.0,)


def is_activation(module: nn.Module) -> bool:
    return isinstance(module, (nn.Hardtanh, *ACTIVATIONS))


class _MeanCode(torch.autograd.Function):
    """Mean over positions of the region code, with a sigmoid-shaped surrogate gradient.

    Forward: ``sum_k step((z - t_k) / tau)`` (``hard``) or ``sum_k sigmoid((z - t_k) / tau)``
    (``soft``), averaged over every dim after the channel dim. Backward:
    ``sum_k sigmoid'((z - t_k) / tau) / tau``, the exact gradient of ``soft`` and the
    straight-through surrogate of ``hard``.

    ``z`` is kept for backward in bfloat16 (a copy, so an in-place activation after us cannot
    corrupt it) to halve the extra memory; the surrogate gradient does not need more precision.
    """

    @staticmethod
    def forward(ctx, z: Tensor, points: tuple[float, ...], tau: float, hard: bool) -> Tensor:
        zf = z.flatten(2)
        code = _mean_region_code(zf.detach(), points, tau, hard)
        keep = zf.to(torch.bfloat16) if zf.dtype in (torch.float32, torch.float16) else zf.clone()
        ctx.save_for_backward(keep)
        ctx.points, ctx.tau, ctx.dtype = points, tau, z.dtype
        ctx.shape = z.shape
        return code

    @staticmethod
    def backward(ctx, grad: Tensor):
        (zf,) = ctx.saved_tensors
        zf = zf.to(ctx.dtype)  # a fresh tensor: the scaling below may work in place
        g = (grad / (zf.shape[-1] * ctx.tau)).unsqueeze(-1).expand_as(zf)
        gz = None
        for t in ctx.points:
            # with one breakpoint at 0 (ReLU-like) zf itself is used up in place; else a copy
            u = zf if (t == 0 and len(ctx.points) == 1) else zf - t
            s = torch.sigmoid_(u.mul_(1.0 / ctx.tau) if ctx.tau != 1.0 else u)
            # aten's fused sigmoid backward: g * s * (1 - s) in one pass
            d = torch.ops.aten.sigmoid_backward(g, s)
            gz = d if gz is None else gz.add_(d)
        return gz.reshape(ctx.shape), None, None, None


def _mean_region_code(zf: Tensor, points: tuple[float, ...], tau: float, hard: bool) -> Tensor:
    """``[B, C]`` mean over the last dim of the region code of ``zf`` ``[B, C, N]``, in as few passes as we can.

    The hard code does not depend on ``tau`` (``(z - t) / tau > 0`` iff ``z > t``), so it is one
    comparison and one count per breakpoint; this is the hot path of every forward and explain.
    """
    code = None
    for t in points:
        if hard:
            # 1[z > t] as ceil(clamp(z - t, 0, 1)): exact, and 3x faster on CPU than
            # summing the boolean (z > t), which converts dtype on the way
            c = (zf - t if t else zf).clamp(0, 1).ceil_().sum(-1)
        else:
            u = zf - t if t else zf
            c = torch.sigmoid(u * (1.0 / tau) if tau != 1.0 else u).sum(-1)
        code = c if code is None else code.add_(c)
    return code.div_(zf.shape[-1])


def code_map(z: Tensor, points: tuple[float, ...], quantizer: str, tau: float) -> Tensor:
    """Per-position code of ``z`` (no averaging), as used by spatial explanation maps."""
    out = None
    for t in points:
        c = (z > t).to(z.dtype) if quantizer == "hard" else torch.sigmoid((z - t) / tau)
        out = c if out is None else out.add_(c)
    return out


def mean_code(z: Tensor, points: tuple[float, ...], quantizer: str, tau: float) -> Tensor:
    """``[B, C]`` code of each unit averaged over positions, from the pre-activation ``z``."""
    if z.dim() == 1:
        raise ValueError(f"site output: expected at least [B, C], got shape {tuple(z.shape)}")
    if z.dim() == 2:
        z = z.unsqueeze(-1)
    if torch.is_grad_enabled() and z.requires_grad:
        return _MeanCode.apply(z, points, tau, quantizer == "hard")
    return _mean_region_code(z.flatten(2), points, tau, quantizer == "hard")
