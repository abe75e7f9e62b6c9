"""What a waterfall shows, kept apart from :mod:`.gallery` (which gives its bars their faces) for room: one sample's
contributions to one class, the bars drawn, and every unit (step) the waterfalls of some samples draw.

``target`` and ``samples`` are read as ``plots.waterfall`` reads them, so that a gallery drawn beside a waterfall
shows the bars it draws.

>>> import torch
>>> from neuroview.attribution.waterfall_items import largest
>>> largest(torch.tensor([0.5, -3.0, 0.0, 1.0]), 8)   # exact zeros are no bar
[1, 3, 0]

Imports: torch and :mod:`neuroview.core`, :mod:`.importance`.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from ..core._utils import as_labels, is_bool
from ..core.explanation import Explanation, RNNExplanation
from ..core.readable_items import fold_padding
from .importance import _check_sample

__all__ = ["decision_items", "largest", "waterfall_units"]


def decision_items(exp: Explanation, sample: int, target: int) -> Tensor:
    """One sample's contributions to class ``target`` (both checked as ``plots.waterfall`` checks them: one class, see
    :func:`_one_class`): ``[U]`` units, ``[T]`` steps of an RNN, or the flattened features, never the dense tensor."""
    sample = _check_sample(sample, exp.logits.shape[0])
    target = int(exp.targets(_one_class(target))[sample])
    if isinstance(exp, RNNExplanation):
        ti = exp.time_importance if exp.time_importance is not None else exp.contributions.sum(dim=(2, 3, 5))
        return ti[sample, target].detach().cpu()
    return exp.for_class(target)[sample].detach().cpu().flatten()


def _one_class(target):
    """``target`` as ``plots.waterfall`` reads it: None, or one class (an int, a whole float, or any one-element tensor,
    array or list: ``[2]``, which ``exp.targets`` reads as one class per sample); several values are refused by name."""
    if target is None or isinstance(target, str) or is_bool(target):  # a list of bools too
        return target  # None, and a bool or a name refused by exp.targets as such
    flat = as_labels(target, "target").reshape(-1)  # 1.7, NaN, strings in a list refused by name
    if len(flat) != 1:
        raise ValueError(f"target: expected one class index (for every sample drawn), got {len(flat)} values")
    return int(flat[0])


def largest(v: Tensor, k: int) -> list[int]:
    """The indices of the ``k`` largest ``|v|``, exact zeros left out: the bars a waterfall draws
    (a sparse head's unused units add exactly 0, and a bar of 0 with a gallery would read as a reason)."""
    return v.abs().topk(min(k, int(v.count_nonzero()))).indices.tolist()


def waterfall_units(exp: Explanation, samples, k: int = 8, target: int | None = None) -> list[int]:
    """Every unit (step) the waterfalls of ``samples`` (indices, or one int) draw a bar for, in first-seen order: what
    a gallery needs to give each bar its face. ``target``: default the class each sample was explained for
    (``exp.targets()``: the asked class, else the prediction), else one class read as the waterfall reads it (an int,
    a whole float, a one-element tensor; -1, 1.7, a bool or several values refused). An RNN sample's steps past its
    series' end (``exp.lengths``, in steps; padding: the -W baseline constant) are one item, their sum, as the waterfall
    draws them (one bar, "padding, steps a-b", without thumbnails): it takes one of the ``k`` and is left out.
    Picked among single steps, padded ones took the slots of real steps the waterfall draws, which got no face."""
    out: list[int] = []
    classes = exp.targets(_one_class(target))
    # one sample as plots.waterfall(sample=) takes it (was a bare "'int' object is not iterable")
    samples = [samples] if not isinstance(samples, Iterable) or getattr(samples, "ndim", None) == 0 else samples
    lengths = getattr(exp, "lengths", None) if isinstance(exp, RNNExplanation) else None
    for s in (_check_sample(s, exp.logits.shape[0], "samples") for s in samples):
        v = decision_items(exp, s, int(classes[s]))
        end = int(lengths[s]) if lengths is not None else len(v)
        if end < len(v):  # the steps kept, then the padding (index end): the items the waterfall draws
            folded = fold_padding(v[None], lengths[s:s + 1].cpu(), 1)[0]
            v = torch.cat([folded[:end], folded[-1:]])
        out += [u for u in largest(v, k) if u not in out and u < end]
    return out
