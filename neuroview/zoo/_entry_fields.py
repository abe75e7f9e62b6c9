"""The fields of a manifest entry that people read (``neuroview zoo``'s table, the class names ``explain`` names the
outputs by): what :func:`~neuroview.zoo.pretrained.save_pretrained` takes for ``dataset`` and ``metrics``
(:func:`checked_fields`), and how the table shows a field of an older or hand-edited manifest that is of another
kind (:func:`shown`, :func:`shown_number`): ``?``, not a traceback that lists nothing of the folder.

Imports nothing of neuroview.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

__all__ = ["checked_fields", "shown", "shown_number"]

#: The metrics the zoo's table, the README's tables and the tests read as numbers: a str there is refused.
NUMBERS = frozenset({"test_acc", "test_size", "slice_acc", "slice_size", "k90", "k90_zero", "k90_steps", "top10_share",
                     "units_per_class", "steps_per_class"})


def checked_fields(dataset: Any, metrics: Any, num_classes: int | None) -> tuple[dict, dict]:
    """``(dataset, metrics)`` as the manifest stores them, or an error naming the argument and the key: ``dataset`` a
    dict, its ``name`` a str and its ``class_names`` a list of ``num_classes`` (the network's outputs, where known)
    strings; ``metrics`` a dict of numbers or None (a str too, for keys other than :data:`NUMBERS`), a numpy or 0-dim tensor number made plain (json refused
    ``np.float32`` with a bare TypeError; a str accuracy, a dataset named by a string, failed ``neuroview zoo``)."""
    if not isinstance(dataset, Mapping):
        raise TypeError(f"dataset: expected a dict (name, class_names, ...), got {type(dataset).__name__} {dataset!r:.60}")
    dataset = dict(dataset)
    if "name" in dataset and not isinstance(dataset["name"], str):
        raise TypeError(f"dataset: expected a str under 'name', got {type(dataset['name']).__name__} {dataset['name']!r:.60}")
    if "class_names" in dataset:
        names, count = dataset["class_names"], "" if num_classes is None else f"{num_classes} "
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"dataset: expected a list of {count}names under 'class_names' (one str per output of the "
                            f"network), got {type(names).__name__} {names!r:.60}")
        if num_classes is not None and len(names) != num_classes:  # explain named the outputs by them, and refused
            raise ValueError(f"dataset: expected {num_classes} names under 'class_names' (one per output of the "
                             f"network), got {len(names)}: {list(names)!r:.80}")
        dataset["class_names"] = list(names)
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics: expected a dict (name -> number), got {type(metrics).__name__} {metrics!r:.60}")
    plain = {}
    for k, v in metrics.items():
        if not isinstance(k, str):
            raise TypeError(f"metrics: expected str keys, got {type(k).__name__} {k!r:.60}")
        v = v.item() if hasattr(v, "item") and getattr(v, "ndim", None) == 0 else v  # np.float32, torch.tensor(0.9)
        if isinstance(v, str) and k not in NUMBERS:  # a user's tag or note, kept as text
            plain[k] = v
            continue
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)):
            kinds = "a number or None" if k in NUMBERS else "a number, a str or None"
            raise TypeError(f"metrics: expected {kinds} under {k!r}, got {type(v).__name__} {v!r:.60}")
        plain[k] = v if v is None else int(v) if isinstance(v, numbers.Integral) else float(v)
    return dataset, plain


def shown(value: Any, missing: str = "?") -> str:
    """A text field of the table: as it is where it prints on one line, escaped where not (a newline broke the row);
    ``missing`` where it is no str."""
    if not isinstance(value, str):
        return missing
    return value if value.isprintable() else value.encode("unicode_escape").decode("ascii")


def shown_number(value: Any, form: str, scale: float = 1.0, unit: str = "") -> str:
    """A number of the table in ``form`` (``",.1f"``) times ``scale``, with ``unit``; ``-`` where None, ``?`` where it
    is no number (a hand-edited ``"95%"``)."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return "?"
    return f"{scale * value:{form}}{unit}"
