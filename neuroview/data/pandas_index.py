"""pandas' index written into a delimited file of series (``df.to_csv(path)`` without ``index=False``): read, the row
number would be step 0 (or the label) of every series.

Holds :func:`check_header` (an unnamed first column of a header) and :func:`check_index` (a named one counting the
rows), which :func:`~neuroview.data.delimited.read_series` runs. May import ``neuroview.data.splits``; nothing else from
neuroview.
"""

from __future__ import annotations

import re
import warnings

from .splits import number

__all__ = ["check_header", "check_index"]


def check_header(names: list[str], where: str) -> None:
    """An unnamed column before named ones (pandas' index, ``df.to_csv(path)``) is refused: read, the row number
    would be a step (or the label) of every series."""
    j = next((j for j, n in enumerate(names) if not n and any(names[j + 1:])), None)
    if j is not None:
        why = ("pandas' index column (write with df.to_csv(path, index=False))" if j == 0 else
               "expected a name for each column; name it or drop the column")
        raise ValueError(f"path: column {j + 1} of {where}'s header is unnamed: {why}")


#: The names pandas' ``df.to_csv(path)`` writes a named index under, as users name it (its unnamed one is refused apart).
_INDEX_NAMES = frozenset({"id", "ids", "index", "idx", "row", "rowid", "sample", "sampleid"})


def check_index(names: list[str], rows: list[tuple[int, list[str]]], at: int, where: str) -> None:
    """pandas' named index written as the first column (``df.index.name = "id"; df.to_csv(path)``), read, would be step
    0 of every series. Refused where the column (not the label's) is named as an index (``id``, ``index``, ...) and holds
    distinct integers, in any order (a split's rows, ``df.iloc[24:]``); warned about where a column of another name
    (no step's, as ``0`` or ``t0`` are) counts the rows 0, 1, ... or 1, 2, ... down a file of 10 rows or more."""
    first = names[0].strip() if names else ""
    if len(rows) < 2 or at % len(names) == 0 or number(first) is not None:
        return
    values = [number(fields[0].strip()) if fields else None for _, fields in rows]
    whole = all(v is not None and float(v).is_integer() for v in values)
    fix = "write with df.to_csv(path, index=False), or drop the column"
    if whole and re.sub("[^a-z]", "", first.lower()) in _INDEX_NAMES and len(set(values)) == len(values):
        raise ValueError(f"path: column 1 of {where}, {first!r}, holds a distinct integer a row ({values[0]:g}, "
                         f"{values[1]:g}, ...): pandas' index written as a column (a named index, df.to_csv(path)), "
                         f"which would be step 0 of every series; {fix}")
    start = values[0]
    if (len(rows) >= 10 and whole and start in (0, 1) and values == [start + k for k in range(len(rows))]
            and not re.fullmatch(r"[A-Za-z]{0,8}_?\d+", first)):
        warnings.warn(f"path: column 1 of {where}, {first!r}, counts the rows ({start:g}, {start + 1:g}, ..., "
                      f"{start + len(rows) - 1:g}): read as step 0 of every series; if it is pandas' index, {fix}",
                      UserWarning, stacklevel=5)
