"""What an explanation refuses to name: a class for a NaN decision, and class names that read alike in a table.

Kept apart from :mod:`neuroview.core.explanation` (at its size limit). Imports only torch and core helpers. Holds the
project's look-alike rule for names (:func:`text_key`, :func:`apart_how`: NFC, surrounding whitespace stripped), in core
so that the tables, and the data modules and plots (:mod:`neuroview.data.splits`, which core may not import), read
names by one rule.

>>> predicted_classes(torch.tensor([[1.0, 2.0], [3.0, -1.0]])).tolist()
[1, 0]
"""

from __future__ import annotations

from typing import Sequence

import unicodedata

import torch
from torch import Tensor

from ._utils import name_sequence
from .records import class_labels

__all__ = ["apart_how", "predicted_classes", "table_names", "text_key"]


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
    kept = (~nan).nonzero().flatten().tolist()
    # indices, not a mask over x: x's sample axis is dim 1 of a time-first RNN's x, and lengths go with the samples
    alone = "" if not kept else (
        "explain the other samples alone (keep = torch.isfinite(exp.logits).all(1).nonzero().flatten(), here "
        f"{kept if len(kept) <= 8 else f'{len(kept)} samples'}; net.explain(x.index_select(d, keep)) with d the samples' "
        "axis of x: 0, or 1 for a time-first RNN (batch_first=False); with lengths, lengths=lengths[keep]), ")
    raise ValueError(
        f"logits: {who} ({len(rows)} of {len(logits)}) {'has' if len(rows) == 1 else 'have'} NaN logits ({each}"
        f"{'; ...' if len(rows) > 5 else ''}): a non-finite decision names no class (argmax reads NaN as the largest "
        f"logit); check the network's weights (torch.isfinite), {alone}or read exp.logits.argmax(1) where argmax's "
        "reading is what you want")


def table_names(num_classes: int, class_names: Sequence) -> list[str]:
    """The class column of ``to_records`` (:func:`~neuroview.core.records.class_labels`: one name a class, ``str()``),
    refused where two names read alike once written (``str()``, then :func:`text_key`: ``1`` and ``'1'``, ``' a'`` and
    ``'a'``, the NFC and NFD forms of ``'café'``), naming each clash with its positions: two classes would be one in a
    table; and where a name is blank (empty or only whitespace: no name in a table, a missing value in a CSV), as the
    plots refuse it. ``'1'`` and ``'1.0'`` are two names, as the plots draw them. The count is checked first.

    >>> table_names(2, [" cat", "dog"])
    [' cat', 'dog']
    """
    names = list(name_sequence(class_names))
    if len(names) != num_classes:
        return class_labels(num_classes, names)  # names the count
    blank = [i for i, n in enumerate(names) if not str(n).strip()]
    if blank:  # the plots' words (viz._style._distinct): a class of no name
        raise ValueError(f"class_names: expected a name that prints for every class, got {names[blank[0]]!r} for class "
                         f"{blank[0]} (empty or only whitespace)")
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        seen.setdefault(text_key(str(n)), []).append(i)
    clashes = [(text, at) for text, at in seen.items() if len(at) > 1]
    if not clashes:
        return class_labels(num_classes, names)

    def listed(text: str, at: list[int]) -> str:
        parts = [f"{names[i]!r} at {i}" for i in at]
        forms = [str(names[i]) for i in at if str(names[i]).strip() != str(names[at[0]]).strip()]
        how = f" ({apart_how(str(names[at[0]]), forms[0])})" if forms else ""  # they print alike: their code points
        return ", ".join(parts[:-1]) + " and " + parts[-1] + f" read {text!r}{how}"

    raise ValueError("class_names: expected names that differ once written (str(), surrounding spaces stripped), got "
                     + "; ".join(listed(text, at) for text, at in clashes)
                     + ": their classes would be one in a table; rename them")


def text_key(label: str) -> str:
    """What a label or class name names as text: its NFC form without the whitespace around it. The project's one
    look-alike rule: the tables' here, the data modules' and the plots' through :mod:`neuroview.data.splits`."""
    return unicodedata.normalize("NFC", label).strip()


def apart_how(a: str, b: str) -> str:
    """How two labels of one :func:`text_key` differ, for an error: whitespace, or Unicode form (shown code point by
    code point, as the two print alike)."""
    if a.strip() == b.strip():
        return "the same label with other whitespace around it (a CSV's reader strips it)"
    def form(v: str) -> str:
        return next((f for f in ("NFC", "NFD") if unicodedata.is_normalized(f, v)), "neither NFC nor NFD")

    spaced = unicodedata.normalize("NFC", a) != unicodedata.normalize("NFC", b)  # the form alone does not join them
    return (f"the same label in two Unicode forms{' and with other whitespace around it' if spaced else ''}, which print "
            f"alike ({ascii(a)}: {form(a)}, {ascii(b)}: {form(b)}; NFC composes a letter and its accent into one "
            "character, NFD keeps them apart; unicodedata.normalize('NFC', label)"
            f"{'.strip()' if spaced else ''} writes them one way)")
