"""Naming a gallery's units: :func:`check_units` reads ``unit_gallery``'s ``units`` (code-vector indices,
``(site, channel)`` pairs of ``net.units``, or an RNN's steps) and :func:`row_of` finds a unit's row in a
:class:`~neuroview.attribution.gallery.UnitGallery` by what ``units`` takes or by the gallery's own names.

Imports: torch (through :mod:`neuroview.core`) and :mod:`neuroview.core.rnn`.
"""

from __future__ import annotations

import operator
import re
from typing import Sequence

from ..core.rnn import NeuroViewRNN

__all__ = ["check_units", "row_of"]


def check_units(net, units) -> list[int]:
    """``units`` as a list of distinct code-vector indices (CNN) or steps (RNN), in the order given."""
    if hasattr(units, "ndim") and hasattr(units, "tolist"):  # a tensor or numpy array of indices
        units = units.tolist()
    if _is_pair(units) or (not isinstance(units, (bool, str, Sequence)) and hasattr(units, "__index__")):
        units = [units]  # one unit
    if isinstance(units, (str, bytes)) or not hasattr(units, "__len__") or not len(units):  # 1.0, True: no len()
        raise ValueError(f"units: expected a non-empty list of unit indices (or one index, or one (site, channel) "
                         f"pair), got {units!r}")
    if isinstance(net, NeuroViewRNN):
        n, what, lookup = net.steps, "steps of this NeuroView-RNN", {}
    else:
        n, what = net.num_units, "indices into the code vector (net.units)"
        lookup = {(s, ch): i for i, (s, ch) in enumerate(net.units)}
    out = []
    for u in units:
        if _is_pair(u) and lookup:
            ch = _integer(u[1])
            if ch is None:  # True == 1, 2.0 == 2 as dict keys: read as channels 1 and 2, where units=[True] is refused
                raise ValueError(f"units: no unit {tuple(u)!r}: expected (site, channel) pairs with an integer "
                                 f"channel, got channel {u[1]!r}")
            if (u[0], ch) not in lookup:
                sites = {s: c for s, c in ((s.name, s.channels) for s in net.sites)}
                raise ValueError(f"units: no unit {tuple(u)!r}; the sites and their channel counts are {sites}")
            u = lookup[(u[0], ch)]
        if not isinstance(u, bool) and hasattr(u, "__index__"):
            u = operator.index(u)  # numpy and tensor integers too
        if isinstance(u, bool) or not isinstance(u, int) or not 0 <= u < n:
            raise ValueError(f"units: expected {what} in [0, {n}), got {u!r}")
        if u not in out:
            out.append(u)
    return out


def row_of(g, unit) -> int | None:
    """The row of ``unit`` in gallery ``g``, given as ``units=`` gives it (an index or step, a ``(site, channel)``
    pair of a CNN's) or by one of ``g.names``; None where the gallery lacks it. Anything else is an error: ``int()``
    truncated 1.7 to unit 1's row and took True for unit 1."""
    if isinstance(unit, str):  # a name of the gallery's form it lacks: None; "0" (an index as text) named
        if unit in g.names or re.fullmatch(r".+ #\d+" if g.kind == "units" else r"step \d+", unit):
            return g.names.index(unit) if unit in g.names else None
        raise ValueError(f"unit: expected one of the gallery's names {g.names} (or a name of that form), or an "
                         f"integer {'index' if g.kind == 'units' else 'step'}, got the text {unit!r}")
    if _is_pair(unit) and g.kind == "units" and _integer(unit[1]) is not None:
        name = f"{unit[0]} #{_integer(unit[1])}"  # the gallery's own name of the pair
        return g.names.index(name) if name in g.names else None
    i = None if _is_pair(unit) else _integer(unit)
    if i is None:
        pair = ", a (site, channel) pair with an integer channel" if g.kind == "units" else ""
        raise ValueError(f"unit: expected an integer {'index' if g.kind == 'units' else 'step'}{pair} or one of the "
                         f"gallery's names {g.names}, got {unit!r}")
    return g.units.index(i) if i in g.units else None


def _integer(c) -> int | None:
    """``c`` as an int where it is one (numpy and tensor integers too: a tensor hashes by identity, so
    ``("3", tensor(1))`` missed ``("3", 1)`` in a dict); None for a bool, a float or anything else."""
    if isinstance(c, bool) or str(getattr(c, "dtype", "")) in ("bool", "torch.bool"):
        return None
    try:
        return operator.index(c)
    except TypeError:
        return None


def _is_pair(u) -> bool:
    """A ``(site, channel)`` pair, as ``net.units`` lists them (a tuple of ints is a list of units)."""
    return isinstance(u, (tuple, list)) and len(u) == 2 and isinstance(u[0], str)
