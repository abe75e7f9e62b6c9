"""The report's baseline where the head's statistics never saw a training batch: no training mean to read.

``write_report(baseline="auto")`` without ``gallery_data`` reads the training mean from the head's normalization (its
running estimate). A head trained with the network in eval mode (a linear probe), or not trained yet, still holds the
initial zeros, so ``explain(baseline="mean")`` takes zero codes and warns; the page and ``report.json`` said "the
training mean code" all the same, over a bias and k90 of zero codes. Here ``"auto"`` takes zero codes and says so (a
warning, and the page's words); an explicit ``"mean"`` is explained as asked (``explain`` warns) and named as what it is.
``neuroview explain`` never comes here: it passes the exact mean of the training split. :func:`gallery_classes`:
``gallery_data`` checked against the classes the model records, first (the mean's pass and the gallery read it).

Imports only :mod:`neuroview.core`.
"""

from __future__ import annotations

import warnings

from torch import nn

from ..core._utils import extension
from ..core.head_stats import never_trained

__all__ = ["unseen_mean", "UNSEEN", "gallery_classes"]

_FIX = "pass gallery_data= (the training data) or baseline=nv.mean_codes(net, train) for it"
#: the page's words for zero codes taken in place of a training mean that the statistics never held
UNSEEN = f"zero codes (the head's normalization statistics never saw a training batch, so they hold no training mean: {_FIX})"


def unseen_mean(model: nn.Module, baseline, auto: bool = False) -> tuple | None:
    """``(what explain takes, words for the page)`` where ``baseline`` is ``"mean"`` and a normalization it reads
    never saw a training batch (an ensemble without a global head: its members'); None where the mean is there."""
    if not (isinstance(baseline, str) and baseline == "mean"):
        return None
    norm = getattr(model, "norm", None)
    norms = [norm] if norm is not None else [getattr(m, "norm", None) for m in getattr(model, "members", ())]
    unseen = [i for i, n in enumerate(norms) if never_trained(n)]
    if not unseen:
        return None
    if len(unseen) < len(norms):  # some members trained: their running means, zero codes for the others
        return baseline, (f"the members' training mean codes (their normalizations' running estimates), zero codes for "
                          f"members {', '.join(map(str, unseen))}, whose statistics never saw a training batch ({_FIX})")
    if auto:  # as explain(baseline="mean") warns, and the words say it
        warnings.warn("baseline: 'auto' has no training mean to take the contributions against: the head's "
                      "normalization statistics never saw a training batch (the head was trained with the network in "
                      "eval mode, or not trained yet), so the report takes them against zero codes and says so; pass "
                      "gallery_data= (the training data) or baseline=nv.mean_codes(net, train_loader)",
                      UserWarning, stacklevel=4)
        return None, UNSEEN
    return baseline, UNSEEN  # explain warns of it (head_stats.mean_features)


def gallery_classes(model: nn.Module, gallery_data) -> None:
    """``write_report``'s ``gallery_data`` refused, naming it, where it is a data module of other classes than ``model``
    records (``neuroview.training.classes_checked``): at the start, not in the gallery after every explanation and
    the baseline's pass over it, naming ``unit_gallery``'s ``loader``."""
    if gallery_data is not None:
        extension("data_classes")(model, gallery_data, "gallery_data")
