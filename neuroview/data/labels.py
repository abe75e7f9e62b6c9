"""How every split's labels become class indices, and which labels are refused before they do.

Holds :func:`class_list` (the classes in the order of their indices: the training split's labels
encoded, or the fixed label space of a set whose classes are known, as MNIST's and CIFAR-10's are)
and :func:`label_indices` (one split's labels as indices into them). A label that cannot be a
class is refused by name: NaN or inf, one number written two ways in the training split ("1" and
"1.0": two classes), a label outside a fixed label space (a target >= ``num_classes`` in the
loss, or a class index named after another class), a label the training split lacks; and
:func:`one_class_a_series` says where a file's labels are no classes (one a series). Imports
``neuroview.data.splits``, numpy and torch; nothing else from neuroview.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from decimal import Decimal
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .splits import apart_how, encode_labels, label_number, same_number, same_text, written_apart

__all__ = ["ONE_SHOT", "check_labels_option", "class_list", "label_indices", "model_classes", "model_label_space",
           "one_class_a_series"]

# the classes of the model a file is read for (its outputs' names, in order): its labels are looked up among them
_MODEL_CLASSES = contextvars.ContextVar("neuroview_model_classes", default=None)


@contextlib.contextmanager
def model_classes(names: Sequence | None):
    """Data modules made inside read their labels as the classes ``names`` of the model they are read for (its
    checkpoint's ``neuroview_classes``, in output order), by name: a file of some of them (a day of one class, a batch
    without a rare one) is scored with each series as the model's class of its name, not renumbered from the file's
    own labels; a label the model has no class for is refused by name. ``None``: the file's own labels, as outside."""
    token = _MODEL_CLASSES.set(None if names is None else tuple(str(n) for n in names))
    try:
        yield
    finally:
        _MODEL_CLASSES.reset(token)


def model_label_space() -> tuple[str, ...] | None:
    """The classes :func:`model_classes` gives data modules made now, or None."""
    return _MODEL_CLASSES.get()

#: The way past :func:`one_class_a_series`'s refusal, for labels that are classes (a one-shot set).
ONE_SHOT = ("; if they are classes (a one-shot set: one series a class), pass labels='classes' "
            "(--data.init_args.labels classes)")


def check_labels_option(labels) -> str:
    """A data module's ``labels`` option: ``"auto"`` (nearly one class a series refused: :func:`one_class_a_series`)
    or ``"classes"`` (the labels are classes, however few series a class)."""
    if labels not in ("auto", "classes"):
        raise ValueError(f"labels: expected 'auto' (labels of nearly one class a series refused as measurements or row "
                         f"numbers) or 'classes' (they are classes: a one-shot set), got {labels!r}")
    return labels


def _first_not_finite(y: np.ndarray) -> int | None:
    """The index of the first label that is NaN or inf (a float, or text "NaN", a missing value), or None. Text
    "inf" is a class name (an abbreviation, as "infected"), not a number: only a float label is infinite, in a float
    array or among an object array's labels (a pandas column of mixed types), whose ``str`` is the text ``'inf'``."""
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y))
        return int(bad[0]) if len(bad) else None
    if y.dtype.kind not in "UO":
        return None
    floats = [] if y.dtype.kind == "U" else [  # text holds no float; Decimal('sNaN') refuses float(): its own test
        i for i, v in enumerate(y.tolist()) if isinstance(v, (float, np.floating, Decimal))
        and (v.is_nan() or v.is_infinite() if isinstance(v, Decimal) else not math.isfinite(v))]
    text = y.astype(str)
    odd = [v for v in np.unique(text) if (n := label_number(v)) is not None and not math.isfinite(n)]
    found = floats[:1] + ([int(np.flatnonzero(np.isin(text, odd))[0])] if odd else [])
    return min(found) if found else None


def _first_blank(y: np.ndarray) -> int | None:
    """The index of the first label that is no label: empty or blank text, ``None``, pandas' ``NA`` (a missing cell
    of a spreadsheet: ``""`` was a class of its own, ``None`` failed in numpy's sort), or None."""
    if y.dtype.kind == "U":
        bad = np.flatnonzero(np.char.strip(y) == "")
    elif y.dtype.kind == "O":
        bad = [i for i, v in enumerate(y.tolist()) if v is None or type(v).__name__ == "NAType"
               or (isinstance(v, (str, bytes)) and not v.strip())]
    else:
        return None
    return int(bad[0]) if len(bad) else None


def one_class_a_series(train: np.ndarray, test: np.ndarray | None = None) -> str | None:
    """``"40 classes for 40 series (e.g. '0.126', ...)"`` where the training labels ``train`` give nearly one class a
    series (at least 10 series, classes for 90% of them or more): a column of measurements or of row numbers read as
    the labels, which no split can stratify. None where they do not (a small set of 12 series in 7 classes is a set),
    or where a ``test`` split of 4 series or more repeats training classes (none other, fewer classes than half its
    series): a set of one series a class (UCR's Fungi: 18 classes, 18 training series) tested on many."""
    y = np.asarray(train).astype(str)
    classes = np.unique(y)
    if len(y) < 10 or len(classes) < 0.9 * len(y):  # more than half (a first rule) refused 7 classes of 12 series
        return None
    if test is not None:
        seen = np.unique(np.asarray(test).astype(str))
        if len(test) >= 4 and 2 * len(seen) <= len(test) and np.isin(seen, classes).all():
            return None
    shown = ", ".join(repr(v) for v in y[:3].tolist())
    return f"{len(classes)} classes for {len(y)} series (e.g. {shown}, ...)"


def class_list(labels: dict[str, np.ndarray], owner: str, label_space: Sequence[str] | None = None,
               model: Sequence[str] | None = None) -> list[str]:
    """The classes, in the order of their indices, of the splits' ``labels`` (``{split: y}``, with a ``"train"``):
    ``label_space`` where the set has a fixed one, ``model`` where the data is read for a model of those classes
    (:func:`model_classes`: one of them alone is fine), else the training split's labels (:func:`encode_labels`)."""
    for name, y in labels.items():
        at = _first_blank(y)
        if at is not None:
            raise ValueError(f"{owner}: y: expected a class label for every series, got an empty label "
                             f"({y[at].tolist() if isinstance(y[at], np.generic) else y[at]!r}) in the {name} split at series {at}; drop those series or label them")
        at = _first_not_finite(y)
        if at is not None:  # str(nan) would be a class of its own
            raise ValueError(f"{owner}: y: expected a class label for every series, got NaN or inf in the "
                             f"{name} split (at series {at}: {str(y[at])!r}); drop those series")
    if model is not None and label_space is None:
        return [str(c) for c in model]
    present = encode_labels(labels["train"])
    if len(present) < 2:  # a classifier of one class: caught here, by name, not when the model is built
        raise ValueError(f"{owner}: y: expected labels of at least 2 classes in the training split, "
                         f"got only {present} ({len(labels['train'])} series); check the labels (y, label_column)")
    if label_space is not None:
        return [str(c) for c in label_space]
    twice = same_number(present)
    if twice:
        raise ValueError(f"{owner}: y: expected every class written one way, got {twice[0]!r} and {twice[1]!r} in the "
                         "training split: the same number written apart (e.g. float and int labels, or files exported "
                         "apart), which would be two classes; store the labels one way")
    twice = same_text(present)
    if twice:
        raise ValueError(f"{owner}: y: expected every class written one way, got {twice[0]!r} and {twice[1]!r} in the "
                         f"training split: {apart_how(*twice)}, which would be two classes; store the labels one way")
    return present


def label_indices(y: np.ndarray, classes: list[str], split: str, owner: str, fixed: bool | str = False) -> Tensor:
    """``y`` (the ``split`` split's labels) as int64 indices into ``classes``; a label not among them is an
    error naming it (``fixed``: ``classes`` is the set's fixed label space, not the training split's labels;
    ``"model"``: the classes of the model the data is read for, :func:`model_classes`)."""
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(v) for v in y} - set(index), key=lambda v: (label_number(v) is None, label_number(v) or 0.0, v))
    if unknown and fixed == "model":
        raise ValueError(f"{owner}: y: expected labels among the classes of the model the data is read for "
                         f"{classes[:8]}{' ...' if len(classes) > 8 else ''}, got {unknown[:5]} in the {split} split, "
                         f"which it has no output for{written_apart(unknown, classes, 'the model')}; drop those series "
                         "or pass data of the model's classes")
    if unknown and fixed:
        shown = unknown[:5] + (["..."] if len(unknown) > 5 else [])
        raise ValueError(f"{owner}: y: expected the labels {_space(classes)} (the set's {len(classes)} classes), got "
                         f"{shown} in the {split} split ({len(unknown)} label{'s' * (len(unknown) > 1)} outside them: "
                         "no class index is theirs); read a set of other classes in this "
                         "format as arrays of your own (NpzDataModule), whose classes are its labels")
    if unknown:
        raise ValueError(f"{owner}: the {split} split has labels {unknown[:5]} that the training split "
                         f"lacks{written_apart(unknown, classes)}")
    return torch.tensor([index[str(v)] for v in y], dtype=torch.long)


def _space(classes: list[str]) -> str:
    """``0 to 9`` for consecutive whole numbers, else the list."""
    if all(c.isdigit() for c in classes) and [int(c) for c in classes] == list(range(int(classes[0]), int(classes[0]) + len(classes))):
        return f"{classes[0]} to {classes[-1]}"
    return str(classes)
