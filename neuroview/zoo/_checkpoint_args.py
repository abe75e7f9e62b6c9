"""The caller's builder arguments against a trained entry's (``create_model(name, pretrained=True, **kwargs)``): where
they would build another network than the entry's (:func:`given_clash`), compared with what the entry's network has.

An argument a builder derives where it is not given is compared by the value it derives: an RNN builder's ``window``
(samples per step) left at ``None`` is ``rnn_window(max_len, None, max_steps)``, 3 for 150 samples in 50 steps, so
``window=3`` is the entry's own and ``window=2`` is refused naming 3 (it was refused naming ``None``, the signature's).

May import ``._save_checks`` (arguments compared as files store them) and ``.architectures`` (the window rule).
"""

from __future__ import annotations

from typing import Any

from ._save_checks import plain as _plain
from .architectures import rnn_window

__all__ = ["given_clash"]

_NO_DEFAULT = object()  # an argument the architecture has no default for: any value given clashes


def given_clash(kwargs: dict, arch_kwargs: dict, defaults: dict) -> dict[str, tuple[Any, str]]:
    """``{argument: (given, the checkpoint's as shown)}`` where ``kwargs`` differ from what the entry was built with:
    its ``arch_kwargs``, else the architecture's default (``quantizer='hard'``, ``members=1`` agree with an entry
    built without them), else what its builder derives (:func:`_derived`). Unlike ``arch_clash``, arguments of speed
    (``batched``) count: they are not applied."""
    out = {}
    for k, v in kwargs.items():
        built = arch_kwargs[k] if k in arch_kwargs else defaults.get(k, _NO_DEFAULT)
        derived = _derived(k, built, arch_kwargs, defaults) if v is not None else None  # None: derived, as the entry's
        if derived is not None:
            built, shown = derived
        else:
            shown = repr(built) if k in arch_kwargs else "<default>" if built is _NO_DEFAULT else f"{built!r}, the default"
        if _plain(built) != _plain(v):
            out[k] = (v, shown)
    return out


def _derived(key: str, built: Any, arch_kwargs: dict, defaults: dict) -> tuple[Any, str] | None:
    """``(value, as shown)`` of an argument the entry leaves to its builder to derive; ``None`` for the others. An RNN
    builder's ``window`` (it takes ``max_steps`` too): the samples a step its network reads."""
    if key != "window" or built is not None or "max_steps" not in defaults:
        return None
    steps, length = (arch_kwargs.get(k, defaults.get(k)) for k in ("max_steps", "max_len"))
    window = rnn_window(length, None, steps)
    return window, f"{window}, from max_steps={steps}" if steps is not None else f"{window}, the default (a sample a step)"
