"""What the head's normalization statistics can answer: the training split's mean features (``baseline="mean"``)
and the codes' spread (``unit_importance(standardized=True)``) only once they saw a training batch.

A head trained with the network in eval mode (the usual way to keep a backbone's BatchNorm frozen: a linear probe),
or a network not trained yet, has ``CodeNorm``'s initial statistics, zeros and ones: read as the training mean they
made ``"mean"`` zero codes, and ``standardized=True`` the raw weights, without a word. A BatchNorm-v1-style file loads
without the counter (0) but with real statistics: only statistics that are still the initial ones are flagged.

Imports only torch.
"""

from __future__ import annotations

import warnings

from torch import Tensor, nn

from .head import _caller_level

__all__ = ["mean_features", "never_trained", "warn_unstandardized"]


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


def mean_features(norm: nn.Module | None, baseline) -> Tensor | None:
    """``norm``'s running mean, the training split's mean features that ``baseline="mean"`` reads (None without a
    normalization); a warning where ``baseline`` is ``"mean"`` and they never saw a training batch. A warning, not an
    error: ``nv.readability``, whose default ``"mean"`` is, is called on networks not trained yet (a smoke test)."""
    if norm is None:
        return None
    if isinstance(baseline, str) and baseline == "mean" and never_trained(norm):
        warnings.warn(f"baseline: 'mean' reads the training split's mean features from the head's statistics, but {_WHY}: "
                      "the contributions are taken against zero codes, the initial statistics; pass the real mean, "
                      "baseline=nv.mean_codes(net, train_loader) (or baseline=None, zero codes, to say so)",
                      UserWarning, stacklevel=_caller_level())
    return norm.running_mean


def warn_unstandardized(norm: nn.Module | None) -> None:
    """A warning where ``unit_importance(standardized=True)`` would scale by statistics that never saw a batch."""
    if never_trained(norm):
        warnings.warn(f"unit_importance(standardized=True): {_WHY}, so the weights are not scaled by the codes' standard "
                      "deviation (a std of 1 each: these are the raw weights, which rank units of different scales "
                      "wrongly); scale them yourself: net.unit_importance() * codes.std(0), codes = net.codes(x) over "
                      "training batches", UserWarning, stacklevel=_caller_level())
