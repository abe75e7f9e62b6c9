"""Names a user gives, one per class (``class_names``) or per unit, as the tables, the plots and the report read them:
:func:`name_sequence`, their one rule. Kept apart from :mod:`neuroview.core._utils` (which re-exports it) so that
module stays short. Imports only torch.

>>> import torch
>>> name_sequence(torch.tensor([1, 5, 7]))
['1', '5', '7']
"""

from __future__ import annotations

from collections.abc import ItemsView, KeysView, Mapping, Set as AbstractSet, ValuesView

import torch

__all__ = ["name_sequence"]


def name_sequence(class_names, arg: str = "class_names", what: str = "class"):
    """``class_names`` as a list, each name a tensor or numpy element (``y.unique()``) as its value's text (``'1'``,
    not ``'tensor(1)'``) and bytes as their UTF-8 text (``str(b"cat")`` is ``"b'cat'"``, as the data modules read
    labels), other names as given; an iterator of names read lazily, once (by the caller). An error where they are
    one string (its letters were read as the names: a title read "logit of a" for a class "cat"), a mapping (its keys,
    in its order), a set (no class order) or a 0-dim array, and where a name is None (it names no class: it was the
    word "None") or bytes that are not UTF-8: the tables', the plots' and the report's one rule. ``arg``: the
    argument named, ``what``: what each name names."""
    if isinstance(class_names, (str, bytes, Mapping)) or getattr(class_names, "ndim", None) == 0:
        raise TypeError(f"{arg}: expected a sequence of names, one per {what}, got {type(class_names).__name__} "
                        f"{class_names!r:.60}")
    # no order of its own: a set's changes with PYTHONHASHSEED (a dict's views keep the dict's order: read as given)
    if isinstance(class_names, (AbstractSet, ItemsView)) and not isinstance(class_names, (KeysView, ValuesView)):
        raise TypeError(f"{arg}: expected an ordered sequence of names, one per {what}, got a "
                        f"{type(class_names).__name__} {class_names!r:.60}, whose order is not the classes'; pass a "
                        f"list in {what} order ({arg}[c] names {what} c)")
    try:
        each = iter(class_names)
    except TypeError:
        raise TypeError(f"{arg}: expected a sequence of names, one per {what}, got {type(class_names).__name__} "
                        f"{class_names!r:.60}") from None
    names = (_text(n, i, arg, what) for i, n in enumerate(each))
    return names if each is class_names else list(names)  # a generator of names is spent once: by the caller


def _text(name, i: int, arg: str, what: str):
    """Name ``i`` as :func:`name_sequence` gives it."""
    if isinstance(name, torch.Tensor):  # its numpy value: a float32 0.1 as "0.1", not the float64 0.10000000149...
        if name.ndim:
            raise ValueError(f"{arg}: expected one name per {what}, got a tensor of shape {tuple(name.shape)} for {what} {i}")
        name = name.detach().cpu()
        name = (name.float() if name.dtype == torch.bfloat16 else name).numpy()
    numpy = type(name).__module__ == "numpy" and not isinstance(name, (str, bytes))
    if numpy and getattr(name, "ndim", 0):
        raise ValueError(f"{arg}: expected one name per {what}, got an array of shape {tuple(name.shape)} for {what} {i}")
    plain = name[()] if numpy else name  # a 0-dim array's element
    if isinstance(plain, bytes):
        try:
            return bytes(plain).decode("utf-8")
        except UnicodeDecodeError as e:  # a bare codec error named no argument
            raise ValueError(f"{arg}: expected names as UTF-8 text, got the bytes {bytes(plain)!r} for {what} {i} "
                             f"({e.reason}); decode them as they were written (e.g. name.decode('latin-1'))") from None
    if plain is None:
        raise ValueError(f"{arg}: expected a name that prints for every {what}, got None for {what} {i}")
    return str(plain) if numpy or isinstance(plain, str) else plain
