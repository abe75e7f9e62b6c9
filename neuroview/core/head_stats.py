"""What the head's normalization statistics can answer: the training split's mean features (``baseline="mean"``)
and the codes' spread (``unit_importance(standardized=True)``) only once they saw a training batch; and the warning
for a training batch left out of them (:class:`~neuroview.core.head.CodeNorm`: its statistics were NaN or Inf).

A head trained with the network in eval mode (the usual way to keep a backbone's BatchNorm frozen: a linear probe),
or a network not trained yet, has ``CodeNorm``'s initial statistics, zeros and ones: read as the training mean they
made ``"mean"`` zero codes, and ``standardized=True`` the raw weights, without a word. A BatchNorm-v1-style file loads
without the counter (0) but with real statistics: only statistics that are still the initial ones are flagged.

``CodeNorm`` tells a batch to leave out by its variance alone: a NaN or Inf mean always gives a NaN or Inf variance.
In two passes (DDP: the all-reduced sum over the count, then the squared deviations from it) every ``x - mean`` is then
Inf or NaN, so are its square and their sum. In Welford's update (``torch.var_mean``; float64 on the CPU for float32)
the step whose mean turns Inf or NaN adds ``delta * (x - mean)``, Inf or NaN times -Inf or NaN, to the sum of squares,
and no later step or merge of partial results makes it finite (sums, and products by counts > 0); a merge whose mean
overflows by rounding alone has ``|delta| > 2**103``, whose square overflows that sum.

Imports only torch.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["mean_features", "never_trained", "note_left_out", "say_left_out", "warn_left_out", "warn_unstandardized"]


def never_trained(norm: nn.Module | None) -> bool:
    """Whether ``norm`` holds statistics that no training batch set: no batch counted, and the initial zeros and ones.

    >>> import torch
    >>> from neuroview.core.head import CodeNorm
    >>> norm = CodeNorm(3)
    >>> never_trained(norm)
    True
    >>> _ = norm.train()(torch.randn(4, 3))
    >>> never_trained(norm)
    False
    """
    if norm is None or getattr(norm, "num_batches_tracked", None) is None or int(norm.num_batches_tracked) != 0:
        return False
    return bool(norm.running_mean.eq(0).all()) and bool(norm.running_var.eq(1).all())


_WHY = ("the head's normalization statistics never saw a training batch (num_batches_tracked is 0 and they are still "
        "the initial zeros and ones: the head was trained with the network in eval mode, or not trained yet)")


def mean_features(norm: nn.Module | Sequence[nn.Module | None] | None, baseline) -> Tensor | None:
    """``norm``'s running mean, the training split's mean features that ``baseline="mean"`` reads (None without a
    normalization); a warning where ``baseline`` is ``"mean"`` and they never saw a training batch. A warning, not an
    error: ``nv.readability``, whose default ``"mean"`` is, is called on networks not trained yet (a smoke test).
    ``norm`` may be a list: an ensemble's members' normalizations side by side, their means concatenated (None where
    one has none), one warning where any never saw a batch."""
    norms = list(norm) if isinstance(norm, (list, tuple)) else [norm]
    if any(n is None for n in norms):
        return None
    if isinstance(baseline, str) and baseline == "mean" and any(never_trained(n) for n in norms):
        warnings.warn(f"baseline: 'mean' reads the training split's mean features from the head's statistics, but {_WHY}: "
                      "the contributions are taken against zero codes, the initial statistics; pass the real mean, "
                      "baseline=nv.mean_codes(net, train_loader) (or baseline=None, zero codes, to say so)",
                      UserWarning, stacklevel=_caller_level())
    return norms[0].running_mean if len(norms) == 1 else torch.cat([n.running_mean for n in norms])


def warn_unstandardized(norm: nn.Module | None) -> None:
    """A warning where ``unit_importance(standardized=True)`` would scale by statistics that never saw a batch."""
    if never_trained(norm):
        warnings.warn(f"unit_importance(standardized=True): {_WHY}, so the weights are not scaled by the codes' standard "
                      "deviation (a std of 1 each: these are the raw weights, which rank units of different scales "
                      "wrongly); scale them yourself: net.unit_importance() * codes.std(0), codes = net.codes(x) over "
                      "training batches", UserWarning, stacklevel=_caller_level())


def warn_left_out(what: str) -> None:
    """The warning for training batches :class:`~neuroview.core.head.CodeNorm` left out of its running statistics."""
    warnings.warn(f"norm: {what} (a float16 overflow, whose step a gradient scaler skips? Its logits and loss are "
                  "NaN): left out of the running statistics, which stay those of the finite batches (they made every "
                  "later eval logit NaN); if every batch does so, look for the overflow (x's scale, the backbone's "
                  "weights, autocast)", UserWarning, stacklevel=_caller_level())


def note_left_out(norm: nn.Module, ok: Tensor, mean: Tensor, var: Tensor, said_at_once: Sequence[str]) -> None:
    """A batch ``norm`` (a ``CodeNorm``) left out of its statistics (``ok`` False): said at once where that costs
    nothing (devices ``said_at_once``, run eagerly); else (a device, or under torch.compile, which makes no Python call
    of a step) counted in ``norm.left_out`` with no host sync and no graph break, said by :func:`say_left_out`."""
    if torch.compiler.is_compiling() or ok.device.type not in said_at_once:
        norm.left_out += ~ok
        return
    # numbered by this run's own count (num_batches_tracked skips the batches left out, and goes on from a file's)
    seen = norm.__dict__["_seen"] = norm.__dict__.get("_seen", 0) + 1
    if not bool(ok):
        bad = (~(torch.isfinite(mean) & torch.isfinite(var))).nonzero().flatten().tolist()
        more = f" (of {len(bad)})" if len(bad) > 10 else ""
        warn_left_out(f"this run's training batch {seen} gave NaN or Inf statistics at features {bad[:10]}{more} "
                      f"of {norm.num_features}")


def say_left_out(norm: nn.Module) -> None:
    """The batches ``norm.left_out`` counted, said and zeroed (one host sync). A count no run can reach (negative, or
    over 2**40 batches: memory ``to_empty`` left as it was, never initialised) is no count: zeroed, not said."""
    if norm.left_out.is_meta:
        return
    n = int(norm.left_out)
    if n:
        norm.left_out.zero_()
    if 0 < n <= 2 ** 40:
        warn_left_out(f"{n} training batch{'' if n == 1 else 'es'} gave NaN or Inf statistics")


def _caller_level() -> int:
    """The ``stacklevel`` of the first caller outside torch, neuroview and the installed packages that call torch's load
    for the user (safetensors' ``load_model``, Lightning's): a load's warning at the user's line."""
    frame, level = sys._getframe(1), 1
    installed = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
    while frame.f_back is not None and (frame.f_globals.get("__name__", "").startswith(("torch.", "neuroview."))
                                        or any(d in frame.f_code.co_filename for d in installed)):
        frame, level = frame.f_back, level + 1
    return level
