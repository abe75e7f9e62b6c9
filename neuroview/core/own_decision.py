"""Whether a subclass of a NeuroView network decides as its codes and linear head say.

``explain``, :func:`neuroview.sparsify`, :func:`neuroview.mean_codes` and :func:`neuroview.readability` read the
codes (``codes()``, an RNN's ``features()``) and the folded linear head (``effective_classifier()``), never the
network's ``forward``. A subclass whose own ``forward``, ``head``, ``decide`` or ``__call__`` changes the logits (an
input normalization, a temperature) then has explanations, and a sparse head, of another network than the one that
decides. Such a subclass is checked on the batch at hand (its own logits in eval mode against the codes' linear
decision, :func:`require_own_decision`) and refused by name where they differ; one whose override changes no number
(logging, then ``super().forward``) goes through. A class of the library itself runs no extra pass; a ``forward``,
``head`` or ``decide`` set on the instance (``net.head = ...``) is checked as a class's. A network that cannot be called
as ``net(x)`` (``forward(x, mask)``), or whose output holds no one tensor of the logits' shape (a dict's ``"logits"``
is read), explained before this check: it still does, with a warning (once a class) that it could not be checked.

Imports only torch and :mod:`neuroview.core`.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ._utils import describe, restore_modes
from .hooks import PathChanged
from .reach import _user_level

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
    (none for that class itself: one identity test), and those set on ``net`` itself (``net.head = ...``, which
    ``net(x)`` calls: a dict lookup each, review R4 finding 3)."""
    cls, own = type(net), [f"{n} (set on the instance)" for n in NAMES if n in net.__dict__]
    return own if cls.__module__.startswith(__package__ + ".") else _over(cls, _base(cls), NAMES) + own


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


def _eval_logits(net: nn.Module, x, lengths, logits: Tensor):
    """``net(x)`` (with ``lengths`` where given) in eval mode, every module's mode put back after: the tensor it
    returns, or its ``"logits"`` entry, or the one tensor of ``logits``' shape it holds; else why it cannot be told
    (a string: the call failed, or no such tensor; an error of the network's path, PathChanged, is raised)."""
    restore, call = restore_modes(net), "net(x)" if lengths is None else "net(x, lengths=lengths)"
    try:
        net.eval()
        with torch.no_grad():
            own = net(x) if lengths is None else net(x, lengths=lengths)
    except PathChanged:
        raise
    except Exception as e:  # (a forward(x, mask), a forward reading a dict of inputs) explain does not call
        return f"which cannot be called as {call} to check that its logits are the codes' linear decision ({type(e).__name__}: {e})"
    finally:
        restore()
    if isinstance(own, Mapping) and isinstance(own.get("logits"), Tensor):
        return own["logits"]
    held = list(own.values()) if isinstance(own, Mapping) else list(own) if isinstance(own, (tuple, list)) else [own]
    held = [t for t in held if isinstance(t, Tensor) and t.shape == logits.shape]
    if len(held) == 1:
        return held[0]
    return (f"whose output ({describe(own)}) holds {'no' if not held else len(held)} tensors of the logits' shape "
            f"{tuple(logits.shape)} where {call} is given, so its logits cannot be checked against the codes' linear decision")


_UNCHECKED: "weakref.WeakSet[type]" = weakref.WeakSet()  # the classes warned of (once each)


def _unchecked(what: str, who: str, cls: type, over: list[str], why: str) -> None:
    """Say once per class that ``who``'s own ``over`` could not be checked (``why``): it explained before the check."""
    if cls in _UNCHECKED:
        return
    _UNCHECKED.add(cls)
    warnings.warn(f"{what}: {who} has its own {', '.join(over)}, {why}; explanations, nv.sparsify, nv.mean_codes and "
                  "nv.readability read codes() and effective_classifier(), not it, so where it changes the logits they "
                  "describe another network than the one that decides. To have it checked, let net(x) (an RNN's "
                  "net(x, lengths=lengths)) return the logits tensor (or a dict holding it under 'logits')",
                  stacklevel=_user_level())


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
    own = _eval_logits(net, x, lengths, logits)
    if isinstance(own, str):
        return _unchecked(what, type(net).__name__, type(net), over, own)
    gap = _gap(own, logits)
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
    own = _eval_logits(net, x, lengths, logits)
    if isinstance(own, str):
        return _unchecked("net", over[0], type(net), over[1], f"{own} (on the first batch of {what})")
    gap = _gap(own, logits)
    if gap is not None:
        raise _refusal("net", over[0], over[1], gap, f" on the first batch of {what}")
