"""A registry the size of a postcard: ``register_model`` adds a keyword-only builder to one dict.

Imports nothing of neuroview; ``neuroview.zoo.api`` builds ``list_models``/``create_model`` on it.
"""

from __future__ import annotations

import operator
from typing import Callable

import numpy as np

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Add a keyword-only builder under its function name; a second builder of that name is refused."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"register_model: a model named {name!r} is already registered")
    _MODELS[name] = fn
    return fn


def check_members(members, batched=False) -> tuple[int, bool | str]:
    """``members`` an int >= 1 and ``batched`` true, false or ``"auto"``, checked alike for every architecture and
    every member count: ``True`` and ``1.0`` equal 1 (an RNN took them without a word), and a ``batched`` typo
    went unread until a recipe asked for two members. Returns them as plain Python values (numpy's accepted)."""
    try:  # numpy's integers (a manifest read by numpy) are ints; a bool is no count
        ok = not isinstance(members, (bool, np.bool_)) and operator.index(members) >= 1
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"members: expected an int >= 1, got {members!r}")
    if not isinstance(batched, (bool, np.bool_)) and batched != "auto":
        raise ValueError(f"batched: expected true, false or 'auto', got {batched!r}")
    return operator.index(members), bool(batched) if isinstance(batched, np.bool_) else batched
