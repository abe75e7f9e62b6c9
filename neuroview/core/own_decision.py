"""Whether a subclass of a NeuroView network decides as its codes and linear head say.

``explain``, :func:`neuroview.sparsify`, :func:`neuroview.mean_codes` and :func:`neuroview.readability` read the
codes (``codes()``, an RNN's ``features()``) and the folded linear head (``effective_classifier()``), never the
network's ``forward``. A subclass whose own ``forward``, ``head``, ``decide`` or ``__call__`` changes the logits (an
input normalization, a temperature) then has explanations, and a sparse head, of another network than the one that
decides. Such a subclass is checked on the batch at hand (its own logits in eval mode against the codes' linear
decision, :func:`require_own_decision`) and refused by name where they differ; one whose override changes no number
(logging, then ``super().forward``) goes through. A class of the library itself runs no extra pass.

Imports only torch and :mod:`neuroview.core`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._utils import describe, restore_modes

__all__ = ["overrides", "require_own_decision", "require_codes_decide"]

#: what computes a network's logits from its input
NAMES = ("forward", "head", "decide", "__call__")


def _defined_by(cls: type, name: str) -> type | None:
    return next((b for b in cls.__mro__ if name in vars(b)), None)


def _over(cls: type, base: type, names) -> list[str]:
    """The methods of ``names`` that ``cls`` defines otherwise than ``base`` does."""
    return sorted(n for n in names if _defined_by(cls, n) is not _defined_by(base, n))


def _base(cls: type) -> type:
    """The nearest class of ``cls`` (its MRO) that this library defines: NeuroViewCNN, NeuroViewRNN, Ensemble."""
    return next(c for c in cls.__mro__ if c.__module__.startswith(__package__ + "."))


def overrides(net: nn.Module) -> list[str]:
    """The methods of :data:`NAMES` that ``net``'s class computes otherwise than the library's class it derives from
    (none for that class itself: one identity test)."""
    cls = type(net)
    return [] if cls.__module__.startswith(__package__ + ".") else _over(cls, _base(cls), NAMES)


def _tolerance(own: Tensor, logits: Tensor) -> float:
    """The gap two computations of the same logits may show: the root of the coarser dtype's epsilon (float32:
    3.5e-4), relative to the logits' scale (at least 1)."""
    coarse = min((own.dtype, logits.dtype), key=lambda d: torch.finfo(d).bits)
    return torch.finfo(coarse).eps ** 0.5 * max(1.0, float(logits.abs().max()))


def _gap(own, logits: Tensor) -> str | None:
    """How ``own`` (the network's output) differs from ``logits`` (the codes' linear decision), or None: alike."""
    if not isinstance(own, Tensor) or own.shape != logits.shape or not own.is_floating_point():
        return f" (it returned {describe(own)}, where the codes' linear decision gives logits of shape {tuple(logits.shape)})"
    gap = float((own.detach().to(logits.device, torch.float64) - logits.double()).abs().nan_to_num(torch.inf).max())
    return None if gap <= _tolerance(own, logits) else f" by up to {gap:.3g}"


def _eval_logits(net: nn.Module, x, lengths) -> Tensor:
    """``net(x)`` (with ``lengths`` where given) in eval mode, every module's mode put back after."""
    restore = restore_modes(net)
    try:
        net.eval()
        with torch.no_grad():
            return net(x) if lengths is None else net(x, lengths=lengths)
    finally:
        restore()


def _refusal(what: str, who: str, over: list[str], gap: str, where: str) -> ValueError:
    return ValueError(
        f"{what}: {who} has its own {', '.join(over)}, whose logits{where} differ from {'its' if what == 'net' else 'the'} "
        f"codes' linear decision (codes() and effective_classifier(), which explanations, nv.sparsify, nv.mean_codes "
        f"and nv.readability read){gap}: they would describe another network than the one that decides. Move input "
        "transforms into the backbone (an nn.Sequential(transform, model)), and temperatures or other changes of the "
        "logits out of the network (apply them to net(x) outside it)")


def require_own_decision(net: nn.Module, logits: Tensor, x, lengths=None, *, what: str = "explain") -> None:
    """``explain``'s check: where ``net``'s class has its own :data:`NAMES` (:func:`overrides`), its own logits of
    ``x`` (in eval mode) must be ``logits``, the explanation's; a plain class pays one identity test."""
    over = overrides(net)
    if not over:
        return
    gap = _gap(_eval_logits(net, x, lengths), logits)
    if gap is not None:
        raise _refusal(what, type(net).__name__, over, gap, "")


def require_codes_decide(net: nn.Module, feats: Tensor, x, lengths=None, *, what: str = "train") -> None:
    """The check of the readers of codes (:func:`neuroview.sparsify`, :func:`neuroview.mean_codes`), on one batch
    ``x`` of ``what`` whose codes (an RNN's flat features) are ``feats``: as :func:`require_own_decision`, for ``net``
    and, for an Ensemble that decides by the mean of its members' logits, for each member's class too."""
    members = getattr(net, "members", None)
    parts = [("", net)] + ([(f" (members.{i})", m) for i, m in enumerate(members)]
                           if isinstance(members, nn.ModuleList) and getattr(net, "classifier", None) is None else [])
    over = next(((f"{type(m).__name__}{at}", o) for at, m in parts for o in [overrides(m)] if o), None)
    if over is None:
        return
    w, b = net.effective_classifier()
    with torch.no_grad():
        logits = feats.flatten(1).double() @ w.detach().double().T.to(feats.device) + b.detach().double().to(feats.device)
    gap = _gap(_eval_logits(net, x, lengths), logits)
    if gap is not None:
        raise _refusal("net", over[0], over[1], gap, f" on the first batch of {what}")
