"""A gallery's rows as the units were asked: ``unit_gallery(units=[3, 0, 3])`` has three rows, unit 3's twice, as
``x[[3, 0, 3]]`` has for a torch or numpy user (merged, row 2 was another unit's, without a word). Each distinct unit
is scanned and measured once, its rows then repeated (:func:`repeat_rows`, :func:`asked_units`).

Imports: :mod:`neuroview.core.rnn` and the gallery's own :mod:`~neuroview.attribution.gallery_rows`.
"""

from __future__ import annotations

import dataclasses
import operator

import torch

from ..core.rnn import NeuroViewRNN
from .gallery_rows import _integer, _is_pair

__all__ = ["asked_units", "repeat_rows"]

#: the fields of a UnitGallery with one row per unit (the rest, class means and counts, are of the classes)
ROWS = ("units", "names", "index", "value", "x", "y", "window", "heat", "position", "lengths", "reads")


def asked_units(net, units, distinct: list[int]) -> list[int]:
    """Every unit of ``units`` in the order asked, repeats included (an index and its ``(site, channel)`` pair are one
    unit); ``distinct``: ``units`` as :func:`~neuroview.attribution.gallery_rows.check_units` read them (checked, its
    errors naming ``units``), each once in the order of first appearance: the units scanned."""
    items = units.tolist() if hasattr(units, "ndim") and hasattr(units, "tolist") else units
    if _is_pair(items) or isinstance(items, (str, bytes)) or not hasattr(items, "__iter__") or len(items) == len(distinct):
        return distinct  # one unit, or none repeated
    pairs = {} if isinstance(net, NeuroViewRNN) else {(s, ch): i for i, (s, ch) in enumerate(net.units)}
    return [pairs[(u[0], _integer(u[1]))] if _is_pair(u) and pairs else operator.index(u) for u in items]


def repeat_rows(net, units, g):
    """Gallery ``g`` of ``net``, made of each distinct unit of ``units`` once (``g.units``, as ``check_units`` read
    them), with one row per unit of ``units`` in the order asked (``g`` itself where none repeats)."""
    distinct = g.units
    each = asked_units(net, units, distinct)
    if each == distinct:
        return g
    at = {u: r for r, u in enumerate(distinct)}
    rows = torch.tensor([at[u] for u in each], dtype=torch.long)

    def pick(v):
        return [v[r] for r in rows.tolist()] if isinstance(v, list) else v[rows]

    return dataclasses.replace(g, **{f: pick(getattr(g, f)) for f in ROWS if getattr(g, f) is not None})
