"""Class names as the pictures and the report label them: under the pictures' own rule (:func:`._style._names`: a
name that is a number drawn ``class 1``, no blank name, no two that print alike, a long name cut), then the tables'
(names that read alike once written, ``str()`` and surrounding spaces stripped, refused naming each clash and its
positions: :func:`neuroview.core.explanation_checks.table_names`, the rule of ``to_records`` and ``export``'s tables).
Where a figure and a table are made from one list, both refuse it: ``" 1"`` and ``"1"`` were drawn ``class  1`` and
``class 1``, beside a table that refused them.

Imports: :mod:`neuroview.core` and :mod:`._style`.

>>> drawn_names(2, ["cat", "dog"])
['cat', 'dog']
>>> drawn_names(2, [" 1", "1"])
Traceback (most recent call last):
...
ValueError: class_names: expected names that differ once written (str(), surrounding spaces stripped), got ' 1' at 0 and '1' at 1 read '1': their classes would be one in a table; rename them
"""

from __future__ import annotations

from typing import Sequence

from ..core._utils import name_sequence
from ..core.explanation_checks import table_names
from ._style import _names

__all__ = ["drawn_names"]


def drawn_names(num_classes: int, class_names: Sequence | None) -> list[str]:
    """The ``num_classes`` names a figure draws (``class c`` where none are given), refused by both rules."""
    if class_names is None:
        return _names(num_classes, None)
    given = list(name_sequence(class_names))  # read once: an iterator gives its names once
    names = _names(num_classes, given)
    table_names(num_classes, given)  # " 1" and "1" were drawn "class  1" and "class 1"
    return names
