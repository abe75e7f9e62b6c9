"""What an explanation is *given* rather than forms: dense ``contributions`` (and an RNN's ``time_importance``)
passed in or set, which then stand in for the ones its codes and weight would form.

The explanation classes keep them in the dataclass fields ``_contributions`` / ``_time_importance``, behind
properties of the public names that form the tensors when nothing was given. Named apart so that
``dataclasses.replace`` copies what was given (None: nothing), never the tensor a property forms from the *old*
codes and weight (a replaced weight, or the first samples, then read stale numbers, or failed bare);
:func:`public_names` lets the constructors take them by their public names, as always.

Imports only the standard library (and torch through the tensors it is handed).
"""

from __future__ import annotations

import functools
import inspect

__all__ = ["GIVEN", "public_names", "check_given"]

#: public name -> the dataclass field that holds what was given
GIVEN = {"contributions": "_contributions", "time_importance": "_time_importance"}


def public_names(cls):
    """``cls`` (a dataclass) whose ``__init__`` takes ``contributions=`` / ``time_importance=`` for its fields
    ``_contributions`` / ``_time_importance`` (positionally where those stand), and shows them so in its signature."""
    init, names = cls.__init__, {k: v for k, v in GIVEN.items() if v in cls.__dataclass_fields__}

    @functools.wraps(init)
    def __init__(self, *args, **kw):
        for public, private in names.items():
            if public in kw:  # over the private one: dataclasses.replace(exp, contributions=c) passes both, the old given
                kw[private] = kw.pop(public)
        init(self, *args, **kw)

    sig = inspect.signature(init)
    back = {v: k for k, v in names.items()}
    __init__.__signature__ = sig.replace(parameters=[p.replace(name=back.get(p.name, p.name)) for p in sig.parameters.values()])
    cls.__init__ = __init__
    return cls


def check_given(exp) -> None:
    """A ValueError naming the field where given contributions or time importance are not ``[B, C, ...]`` for the
    explanation's ``logits [B, C]`` (derived with ``dataclasses.replace`` for other samples, they failed bare later)."""
    shape = tuple(getattr(exp.logits, "shape", ()))
    if len(shape) != 2:
        return
    for public, private in GIVEN.items():
        v = exp.__dict__.get(private)
        if v is not None and tuple(v.shape[:2]) != shape:
            raise ValueError(f"{public}: the ones given are for [{', '.join(map(str, v.shape[:2]))}, ...] (samples, "
                             f"classes; shape {list(v.shape)}), the logits [{shape[0]}, {shape[1]}]; give {public} of "
                             f"these samples and classes too (dataclasses.replace(exp, ..., {public}=...)), or leave "
                             "them to the codes and weight")
