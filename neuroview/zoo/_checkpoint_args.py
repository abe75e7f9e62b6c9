"""The caller's builder arguments against a trained entry's (``create_model(name, pretrained=True, **kwargs)``): where
they would build another network than the entry's (:func:`given_clash`), compared with what the entry's network has.

An argument a builder derives where it is not given is compared by the value it derives: an RNN builder's ``window``
(samples per step) left at ``None`` is ``rnn_window(max_len, None, max_steps)``, 3 for 150 samples in 50 steps, so
``window=3`` is the entry's own and ``window=2`` is refused naming 3 (it was refused naming ``None``, the signature's).
A NeuroView-CNN builder's ``layers`` left at ``None`` are the sites found on the entry's data: the names its network's
``net.sites`` lists, found here as the load finds them (the entry's architecture built, a batch of its recorded
``input_shape`` run through it); the entry's own 4 sites of ``nv_lite.gunpoint`` were refused naming ``None, the
default``. Where they cannot be found (no architecture or shape given), a given list is refused saying so.

May import torch, ``._save_checks`` (arguments compared as files store them), ``.architectures`` (the window rule),
``.build`` (the entry's builder) and ``._weights_checks`` (the load's site finding).
"""

from __future__ import annotations

from typing import Any

import torch

from ._save_checks import plain as _plain
from .architectures import rnn_window

__all__ = ["given_clash"]

_NO_DEFAULT = object()  # an argument the architecture has no default for: any value given clashes
_UNTOLD = object()  # a derived value that cannot be found here: any value given clashes, saying so


def given_clash(kwargs: dict, arch_kwargs: dict, defaults: dict, arch: str | None = None,
                input_shape: Any = None) -> dict[str, tuple[Any, str]]:
    """``{argument: (given, the checkpoint's as shown)}`` where ``kwargs`` differ from what the entry was built with:
    its ``arch_kwargs``, else the architecture's default (``quantizer='hard'``, ``members=1`` agree with an entry
    built without them), else what its builder derives (:func:`_derived`). Unlike ``arch_clash``, arguments of speed
    (``batched``) count: they are not applied. ``arch``, ``input_shape``: the entry's, to find the sites it derives."""
    out = {}
    for k, v in kwargs.items():
        built = arch_kwargs[k] if k in arch_kwargs else defaults.get(k, _NO_DEFAULT)
        derived = _derived(k, built, arch_kwargs, defaults, arch, input_shape) if v is not None else None  # None: derived, as the entry's
        if derived is not None:
            built, shown = derived
        else:
            shown = repr(built) if k in arch_kwargs else "<default>" if built is _NO_DEFAULT else f"{built!r}, the default"
        if _plain(built) != _plain(v):
            out[k] = (v, shown)
    return out


def _derived(key: str, built: Any, arch_kwargs: dict, defaults: dict, arch: str | None = None,
             input_shape: Any = None) -> tuple[Any, str] | None:
    """``(value, as shown)`` of an argument the entry leaves to its builder to derive; ``None`` for the others. An RNN
    builder's ``window`` (it takes ``max_steps`` too): the samples a step its network reads; a NeuroView-CNN builder's
    ``layers`` (it takes ``unit_axis`` too): its sites' names, in order (the head's units follow it)."""
    if key == "layers" and built is None and "unit_axis" in defaults:
        sites = _found_sites(arch, arch_kwargs, input_shape)
        if sites is None:
            return _UNTOLD, ("None: derived by site finding on the entry's data, which cannot be run here; "
                             "compare the names net.sites lists")
        return sites, f"{sites}, found by site finding"
    if key != "window" or built is not None or "max_steps" not in defaults:
        return None
    steps, length = (arch_kwargs.get(k, defaults.get(k)) for k in ("max_steps", "max_len"))
    window = rnn_window(length, None, steps)
    return window, f"{window}, from max_steps={steps}" if steps is not None else f"{window}, the default (a sample a step)"


def _found_sites(arch: str | None, arch_kwargs: dict, shape: Any) -> list[str] | None:
    """The names of the sites the entry's network has, found as its load finds them (the architecture built with
    ``arch_kwargs``, a seeded batch of ``shape`` run through it; the caller's random state untouched); ``None`` where
    that cannot be done (no architecture or shape, a build or pass that fails, a model without one ``sites`` list)."""
    from ._weights_checks import find_sites  # noqa: PLC0415 - the load's own site finding
    from .build import builder  # noqa: PLC0415

    if arch is None or shape is None:
        return None

    def build():
        with torch.random.fork_rng(devices=[]):
            return builder(arch)(**arch_kwargs).eval()
    try:
        with torch.inference_mode(False):
            sites = getattr(find_sites(build, arch, list(shape)), "sites", None)
    except Exception:  # noqa: BLE001 - whatever stops the pass: the sites are not told, and the refusal says so
        return None
    return [s.name for s in sites] if sites else None
