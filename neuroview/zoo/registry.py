"""A registry the size of a postcard: ``register_model`` adds a keyword-only builder to one dict.

Imports nothing of neuroview; ``neuroview.zoo.api`` builds ``list_models``/``create_model`` on it.
"""

from __future__ import annotations

from typing import Callable

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Add a keyword-only builder under its function name; a second builder of that name is refused."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"register_model: a model named {name!r} is already registered")
    _MODELS[name] = fn
    return fn
