"""The builder arguments a registered architecture takes, and their defaults, read from its builder's code.

:func:`arch_defaults` (what a file's record that leaves an argument out was built with), :func:`check_arguments` (a
typo named with the close name it meant: ``create_model``, a checkpoint's ``model_kwargs``) and :func:`check_given`
(``load_weights(arch_kwargs=)``: a dict of argument names the file's architecture takes).

May import the standard library and torch; of neuroview, only ``.build`` and ``.registry`` (deferred: ``.architectures`` and
``neuroview.core.cnn``, whose arguments a NeuroView builder never passes on).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from .build import builder
from .registry import _MODELS

__all__ = ["arch_defaults", "code_names", "filled", "accepted", "check_arguments", "check_given", "NOT_COMPUTED"]

#: Builder arguments that change how fast a network runs, not what it computes.
NOT_COMPUTED = frozenset({"batched", "stop_early"})


def code_names(code: Any) -> list[str]:
    """The global names a function's code reads, its lambdas' and inner functions' included."""
    if code is None:
        return []
    return list(code.co_names) + [n for c in code.co_consts if inspect.iscode(c) for n in code_names(c)]


def filled(cell: Any) -> bool:
    """Whether a closure cell holds a value (an empty one raises when read)."""
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def arch_defaults(arch: str | None) -> dict[str, Any]:
    """The defaults of a registered architecture's arguments: its builder's, then those of the builders it
    wraps and of the network classes it builds (``quantizer``, ``norm_floor`` of NeuroViewCNN ...); ``{}``
    for an architecture that is not registered. What a builder sets in its body is not seen."""
    try:
        todo: list = [builder(arch)] if arch else []
    except ValueError:
        return {}
    out: dict[str, Any] = {}
    seen: list = []
    while todo:
        f = todo.pop(0)
        if f in seen:
            continue
        seen.append(f)
        try:
            sig = inspect.signature(f.__init__ if isinstance(f, type) else f, follow_wrapped=False)
        except (TypeError, ValueError):
            continue
        for p in sig.parameters.values():
            if p.default is not p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                out.setdefault(p.name, p.default)
        if not isinstance(f, type):
            cells = [c.cell_contents for c in (getattr(f, "__closure__", None) or ()) if filled(c)]
            names = [getattr(f, "__globals__", {}).get(n) for n in code_names(getattr(f, "__code__", None))]
            todo += [getattr(f, "__wrapped__", None)] + [c for c in cells if inspect.isfunction(c)]
            todo += [c for c in names if inspect.isfunction(c) and c.__module__.startswith("neuroview.zoo.architectures")]
            todo += [c for c in cells + names if isinstance(c, type) and issubclass(c, nn.Module)]
            todo = [t for t in todo if t is not None]
    return out


def accepted(name: str, extra: Any = ()) -> set[str] | None:
    """The argument names the architecture of ``name`` (``arch`` or ``arch.tag``) takes, with ``extra`` (an entry's
    ``arch_kwargs``); None where any name may be right: an architecture that is not registered (loading it says so), or
    a user's builder (``nv.register_model``), which may pass anything on through ``**kwargs`` and says what it takes."""
    arch = name.split(".", 1)[0]
    try:
        build = builder(arch, trained=True)
    except ValueError:
        return None
    if not getattr(build, "__module__", "").startswith("neuroview.zoo.architectures"):
        return None
    known = set(arch_defaults(arch)) | set(extra or ()) | set(getattr(build, "passed_on", ()))
    known |= {n for n, p in inspect.signature(build).parameters.items()  # those without a default (max_len)
              if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    if arch.startswith("nv_"):  # the wrapper's arguments its builders never pass on (unit_axis, input_shape ...)
        from .architectures import _NV_KEYS  # noqa: PLC0415
        from ..core.cnn import NeuroViewCNN  # noqa: PLC0415

        known -= set(inspect.signature(NeuroViewCNN.__init__).parameters) - {*_NV_KEYS, "num_classes"}
    return known


def _refuse_unknown(kwargs: dict, known: set[str], of: str, what: str) -> None:
    for k, v in kwargs.items():
        if k not in known:
            close = difflib.get_close_matches(k, sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"its arguments: {', '.join(sorted(known))}"
            raise TypeError(f"{what + ': ' if what else ''}{k}: unexpected keyword argument {k!r} of {of} ({hint}); got {k}={v!r}")


def check_arguments(name: str, kwargs: dict, arch_kwargs: dict | None = None, what: str = "") -> None:
    """A ``TypeError`` naming the first of ``kwargs`` that the architecture of ``name`` does not take (nor its entry's
    ``arch_kwargs``), with the close names it does: ``widht``, timm's ``in_chans`` or ``drop_rate``; ``what``: the
    argument that holds them, named first (``arch_kwargs``)."""
    known = accepted(name, arch_kwargs)
    if known is not None:
        _refuse_unknown(kwargs, known, name.split(".", 1)[0], what)


def check_given(given: Any, arch: Any, what: str = "arch_kwargs") -> dict:
    """``load_weights(arch_kwargs=given)`` as a dict, ``{}`` for None: a ``TypeError`` naming ``what`` where it is no
    mapping of argument names, or names one that the file's architecture ``arch`` does not take (where the file names
    none, that no registered architecture takes): a misspelt setting was taken and never read.

    >>> check_given({"norm_flor": 0.0}, "nv_small_cnn")
    Traceback (most recent call last):
    ...
    TypeError: arch_kwargs: norm_flor: unexpected keyword argument 'norm_flor' of nv_small_cnn (did you mean 'norm_floor'?); got norm_flor=0.0
    """
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise TypeError(f"{what}: expected a dict of builder arguments (the settings a file's record leaves out, e.g. "
                        f"{{'norm_floor': 0.0}}), got {type(given).__name__} {repr(given)[:80]}")
    bad = [k for k in given if not isinstance(k, str)]
    if bad:
        raise TypeError(f"{what}: expected builder argument names (str) as keys, got {bad[0]!r}")
    given = dict(given)
    if isinstance(arch, str):
        check_arguments(arch, given, what=what)
        return given
    each = [accepted(name) for name in sorted(_MODELS)]
    if all(k is not None for k in each):  # a user's builder may take any name: then none is refused
        _refuse_unknown(given, set().union(*each), "any registered architecture (the file names none)", what)
    return given
