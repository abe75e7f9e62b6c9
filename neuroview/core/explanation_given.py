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

__all__ = ["GIVEN", "GivenShapeError", "public_names", "public_new", "check_given", "check_set", "built"]

#: public name -> the dataclass field that holds what was given
GIVEN = {"contributions": "_contributions", "time_importance": "_time_importance"}


def public_names(cls):
    """``cls`` (a dataclass) whose ``__init__`` takes ``contributions=`` / ``time_importance=`` for its fields
    ``_contributions`` / ``_time_importance`` (positionally where those stand), and shows them so in its signature and
    ``__match_args__``. Leaves an ``__init__`` that takes no private name as it is (a wrapped one, a user's own)."""
    init = cls.__init__
    sig = inspect.signature(init)
    params = list(sig.parameters)
    names = {k: v for k, v in GIVEN.items() if v in params}
    if names:
        at = {public: params.index(private) - 1 for public, private in names.items()}  # positions after self

        @functools.wraps(init)
        def __init__(self, *args, **kw):
            for public, private in names.items():
                if public in kw and len(args) > at[public]:  # named, not as the generated init's private name
                    raise TypeError(f"{type(self).__qualname__}.__init__() got multiple values for argument '{public}'")
                if public in kw:  # over the private one: dataclasses.replace(exp, contributions=c) passes both
                    kw[private] = kw.pop(public)
            init(self, *args, **kw)

        back = {v: k for k, v in names.items()}
        __init__.__signature__ = sig.replace(parameters=[p.replace(name=back.get(p.name, p.name))
                                                         for p in sig.parameters.values()])
        cls.__init__ = __init__
        if "__match_args__" in cls.__dict__:  # case CNNExplanation(logits, bias, contributions): the formed ones
            cls.__match_args__ = tuple(back.get(n, n) for n in cls.__match_args__)
    cls._public_init = cls.__init__
    return cls


def public_new(cls):
    """A new instance of ``cls``, whose ``__init__`` is first given the public names where a ``@dataclass`` subclass
    (a user's: ``tag: str = ""`` beside the fields) generated one taking ``_contributions=`` (files of it failed to
    load, ``contributions=`` was refused). Python looks ``__init__`` up after ``__new__``: the wrapped one runs."""
    if cls.__dict__.get("_public_init") is not cls.__init__:
        public_names(cls)
    return object.__new__(cls)


class GivenShapeError(ValueError):
    """Given ``contributions`` / ``time_importance`` whose ``[B, C]`` are not the logits'; ``detail`` says how."""

    def __init__(self, message: str, public: str, detail: str):
        super().__init__(message)
        self.public, self.detail = public, detail


def _mismatch(logits, value) -> str | None:
    """How ``value`` ``[B, C, ...]`` misses ``logits [B, C]`` (None: it fits, or there is nothing to compare)."""
    shape, got = tuple(getattr(logits, "shape", ())), getattr(value, "shape", None)
    if len(shape) != 2 or got is None or tuple(got[:2]) == shape:
        return None
    return (f"for [{', '.join(map(str, got[:2]))}, ...] (samples, classes; shape {list(got)}), the logits "
            f"[{shape[0]}, {shape[1]}]")


def check_given(exp) -> None:
    """A ValueError naming the field where given contributions or time importance are not ``[B, C, ...]`` for the
    explanation's ``logits [B, C]`` (derived with ``dataclasses.replace`` for other samples, they failed bare later)."""
    for public, private in GIVEN.items():
        if (detail := _mismatch(exp.logits, exp.__dict__.get(private))) is not None:
            raise GivenShapeError(f"{public}: the ones given are {detail}; give {public} of these samples and classes "
                                  f"too (dataclasses.replace(exp, ..., {public}=...)), or leave them to the codes and "
                                  "weight", public, detail)


def check_set(exp, public: str, value) -> None:
    """The check of :func:`check_given` for ``exp.<public> = value``, before it is taken (a mis-shaped edit was
    taken without a word, saved, and its file then refused)."""
    if (detail := _mismatch(exp.logits, value)) is not None:
        b, c = exp.logits.shape
        raise ValueError(f"{public}: the ones set are {detail}; set {public} of these samples and classes "
                         f"([{b}, {c}, ...]), or None to leave them to the codes and weight")


def built(kind, kw: dict, path):
    """``kind(**kw)`` read from the file ``path``; given tensors that do not fit its logits name the file."""
    try:
        return kind(**kw)
    except GivenShapeError as e:
        raise ValueError(f"path: {str(path)!r} cannot be read: its {e.public} are {e.detail} (edited, or from "
                         "another explanation); save the explanation again") from None
