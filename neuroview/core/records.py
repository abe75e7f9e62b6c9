"""Explanations as tables: the class columns' names, the long ("tidy") rows of a CNN explanation, and a pandas frame.

Kept apart from :mod:`neuroview.core.explanation` (which re-exports :func:`class_labels` and
:func:`records_frame`) so that the tensors' class stays short. Imports only torch and core helpers.

>>> class_labels(3)
['class_0', 'class_1', 'class_2']
"""

from __future__ import annotations

from typing import Sequence

from ._utils import exact_values, name_sequence

__all__ = ["class_labels", "records_frame", "cnn_records"]


def class_labels(num_classes: int, class_names: Sequence | None = None) -> list[str]:
    """Column names of the per-class columns: the class names, or ``class_0, class_1, ...``."""
    if class_names is None:
        return [f"class_{c}" for c in range(num_classes)]
    names = [str(n) for n in name_sequence(class_names)]
    if len(names) != num_classes:
        raise ValueError(f"class_names: expected {num_classes} names (one per class), got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"class_names: expected distinct names, got {names}")
    return names


def records_frame(records: list[dict]):
    """A pandas DataFrame of ``records`` (pandas is optional: ``pip install pandas``)."""
    try:
        import pandas as pd  # noqa: PLC0415 - optional dependency
    except ImportError as e:
        raise ImportError(
            "to_frame needs pandas, which neuroview does not require: pip install pandas "
            "(or use to_records() / write_csv(), which need nothing)"
        ) from e
    return pd.DataFrame.from_records(records)


def cnn_records(exp, names: list) -> list[dict]:
    """The rows of ``CNNExplanation.to_records``: ``sample, class, site, channel, code, contribution``, and
    ``baseline`` (the unit's baseline code) where the explanation was taken against one, so that every row reads
    ``contribution == weight[class, unit] * (code - baseline)``: without it a unit that was off (code 0) showed a
    contribution that no weight times 0 gives."""
    contrib = exact_values(exp.contributions).tolist()
    # made from contributions alone (no codes): the code column holds None
    codes = exact_values(exp.codes).tolist() if exp.codes is not None else [[None] * len(exp.units)] * len(contrib)
    base = exact_values(exp.baseline).reshape(-1).tolist() if exp.baseline is not None else None
    rows = []
    for i in range(len(codes)):
        for k in range(exp.num_classes):
            for u, (s, ch) in enumerate(exp.units):
                row = {"sample": i, "class": names[k], "site": s, "channel": ch, "code": codes[i][u]}
                if base is not None:
                    row["baseline"] = base[u]
                row["contribution"] = contrib[i][k][u]
                rows.append(row)
    return rows
