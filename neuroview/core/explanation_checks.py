"""What an explanation refuses to name: a class for a NaN decision, and class names that read alike in a table.

Kept apart from :mod:`neuroview.core.explanation` (at its size limit). Imports only torch and core helpers.

>>> predicted_classes(torch.tensor([[1.0, 2.0], [3.0, -1.0]])).tolist()
[1, 0]
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ._utils import name_sequence
from .records import class_labels

__all__ = ["predicted_classes", "table_names"]


def predicted_classes(logits: Tensor) -> Tensor:
    """``[B]``: each sample's largest logit (``Explanation.predicted``), refused where a sample's logits hold NaN, naming
    the samples. argmax reads NaN as the largest value, so such a sample was named the class of its first NaN logit, as
    if that class had won (a head weight NaN after a diverged run, an overflow), in accuracies, reports and titles; -1
    would index the last class wherever it is used as an index. ``Explanation.targets()`` (the explained class, which
    ``explain`` stores) keeps argmax's reading: that class's logit is NaN, so its contributions or bias carry the NaN,
    refused by k90, top_share and the plots, and the rest of the batch is still explained."""
    nan = torch.isnan(logits.detach()).any(1)
    if not bool(nan.any()):
        return logits.argmax(1)
    rows = nan.nonzero().flatten().tolist()
    first = torch.isnan(logits.detach()[rows]).long().argmax(1).tolist()  # each row's first NaN class
    each = "; ".join(f"sample {i}'s logit of class {c} is nan" for i, c in zip(rows[:5], first))
    who = f"sample {rows[0]}" if len(rows) == 1 else f"samples {rows[:5]}" + (" and more" if len(rows) > 5 else "")
    raise ValueError(
        f"logits: {who} ({len(rows)} of {len(logits)}) {'has' if len(rows) == 1 else 'have'} NaN logits ({each}"
        f"{'; ...' if len(rows) > 5 else ''}): a non-finite decision names no class (argmax reads NaN as the largest "
        "logit); check the network's weights (torch.isfinite), explain the other samples alone "
        "(net.explain(x[torch.isfinite(exp.logits).all(1)])), or read exp.logits.argmax(1) where argmax's reading is "
        "what you want")


def table_names(num_classes: int, class_names: Sequence) -> list[str]:
    """The class column of ``to_records`` (:func:`~neuroview.core.records.class_labels`: one name a class, ``str()``),
    refused where two names read alike once written (``str()``, surrounding spaces stripped: ``1`` and ``'1'``, ``' a'``
    and ``'a'``), naming each clash with its positions: two classes would be one in a table. The count is checked first.

    >>> table_names(2, [" cat", "dog"])
    [' cat', 'dog']
    """
    names = list(name_sequence(class_names))
    if len(names) != num_classes:
        return class_labels(num_classes, names)  # names the count
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        seen.setdefault(str(n).strip(), []).append(i)
    clashes = [(text, at) for text, at in seen.items() if len(at) > 1]
    if not clashes:
        return class_labels(num_classes, names)

    def listed(at: list[int]) -> str:
        parts = [f"{names[i]!r} at {i}" for i in at]
        return ", ".join(parts[:-1]) + " and " + parts[-1]

    raise ValueError("class_names: expected names that differ once written (str(), surrounding spaces stripped), got "
                     + "; ".join(f"{listed(at)} read {text!r}" for text, at in clashes)
                     + ": their classes would be one in a table; rename them")
