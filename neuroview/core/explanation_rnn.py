"""Helpers of :class:`~neuroview.core.explanation.RNNExplanation` kept apart so that its class stays short: each
series' length in input samples (``input_lengths``: read from the input, checked against ``lengths`` in steps, joined
over explanations of several batches), and the in-place edit counts its kept ``time_importance`` is checked by.

A windowed network folds ``window`` input samples into one step, so a series' length in steps,
``ceil(samples / window)``, loses where it ends inside its last step: a series of 8 samples at ``window=3`` is 3 steps,
the third reading samples 6-7 and then 1 of zero padding. The tables and plots name the samples a step reads from
``input_lengths``. At ``window=1`` a step is a sample and ``lengths`` says where each series ends: none are kept.

``dataclasses.replace`` passes every field to the new explanation, the ``input_lengths`` the user never touched
too: taking the first samples' ``logits``/``codes``/``lengths`` then carried the whole batch's. An explanation keeps
its own copy and marks it held (by identity, as its kept ``time_importance`` is checked by identity and edit count):
a held tensor that no longer fits the new explanation came with it, not from the user, and is dropped (its labels
then cut a series' last step at ``max_len`` only); one the user gives that does not fit is refused by name.

Imports only torch and the standard library.

>>> input_lengths(8, None, 2, 13).tolist(), input_lengths(13, None, 2, 13)
([8, 8], None)
"""

from __future__ import annotations

import weakref
from typing import Sequence

import torch
from torch import Tensor

__all__ = ["input_lengths", "check_input_lengths", "settled_input_lengths", "held", "joined_input_lengths", "versions"]

#: id -> the ``input_lengths`` tensor an explanation holds (its own copy), while it lives
_HELD: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def input_lengths(t: int, lengths: Tensor | None, b: int, max_len: int | None) -> Tensor | None:
    """``[b]`` input samples of each series of a batch ``[b, t, F]`` as ``prepare`` gives it (``lengths`` None: all
    ``t`` long; else a copy of them), None where every series is ``max_len`` long."""
    if lengths is not None:
        return lengths.clone()
    return None if t == max_len else torch.full((b,), t, dtype=torch.long)


def _steps(exp) -> int | None:
    """The explanation's steps T, from whichever of its tensors holds them (None: none does)."""
    for value, dim in ((exp.codes, 3), (exp.__dict__.get("_contributions"), 4), (exp.__dict__.get("_time_importance"), 2)):
        if isinstance(value, Tensor) and value.dim() > dim:
            return value.shape[dim]
    return None


def check_input_lengths(exp) -> None:
    """A ValueError naming ``input_lengths`` where they are not ``[B]`` integers in ``[1, max_len]`` that agree with
    the explanation's ``lengths`` in steps (``ceil(input_lengths / window)``; without ``lengths``, every step)."""
    n, b, window = exp.input_lengths, exp.logits.shape[0], int(exp.window)
    if n is None:
        return
    if (not isinstance(n, Tensor) or n.dtype.is_floating_point or n.dtype.is_complex or n.dtype == torch.bool
            or tuple(n.shape) != (b,)):
        got = f"dtype {n.dtype} and shape {tuple(n.shape)}" if isinstance(n, Tensor) else type(n).__name__
        raise ValueError(f"input_lengths: expected an integer tensor of shape [{b}] (each series' length in input "
                         f"samples), got {got}; pass those of the {b} series explained (input_lengths=exp.input_lengths[:{b}] "
                         "beside the first samples' logits and codes), or input_lengths=None")
    t = _steps(exp)
    top = exp.max_len if exp.max_len is not None else None if t is None else t * window
    n = n.detach().cpu().long()
    lo, hi = int(n.min()), int(n.max())
    if lo < 1 or (top is not None and hi > top):
        raise ValueError(f"input_lengths: expected values in [1, {top}] (max_len, the input samples the network "
                         f"reads), got min {lo} and max {hi}")
    reach = torch.div(n + window - 1, window, rounding_mode="floor")
    steps = exp.lengths if exp.lengths is not None else None if t is None else torch.full((b,), t)
    steps = None if steps is None else torch.as_tensor(steps).detach().cpu().reshape(-1).long()
    if steps is None or steps.shape != (b,) or bool((reach == steps).all()):
        return  # (lengths of another count are refused where they are read)
    i = int((reach != steps).nonzero()[0])
    raise ValueError(f"input_lengths: series {i} has {int(n[i])} input samples ({int(reach[i])} steps of window "
                     f"{window}), but lengths says {int(steps[i])} steps; pass input_lengths that agree with lengths "
                     "(lengths == ceil(input_lengths / window)), or input_lengths=None")


def settled_input_lengths(exp) -> Tensor | None:
    """The ``input_lengths`` an explanation keeps: checked (:func:`check_input_lengths`) and copied, or None at
    ``window=1`` (they say nothing ``lengths`` does not) and where they were carried by ``dataclasses.replace`` from an
    explanation (held by it) and no longer fit this one's samples (other samples, another count; see the module's
    docstring). Ones given that do not fit are refused."""
    n = exp.input_lengths
    if n is None:
        return None
    try:
        check_input_lengths(exp)
    except ValueError:
        if _HELD.get(id(n)) is n:  # carried, never touched by the user (the first samples taken): dropped
            return None
        raise
    if int(exp.window) == 1:
        return None
    n = n.clone()  # its own: a user's tensor given to two explanations is given both times
    _HELD[id(n)] = n
    return n


def held(state: dict) -> dict:
    """A pickled (or copied) explanation's ``state`` with its ``input_lengths`` marked held, as a built one's."""
    n = state.get("input_lengths")
    if isinstance(n, Tensor):
        _HELD[id(n)] = n
    return state


def joined_input_lengths(parts: Sequence) -> Tensor | None:
    """``input_lengths`` of explanations of several batches joined in order into one (as ``torch.cat`` of their
    logits): a part without them holds series of its ``max_len``; None where no part has them."""
    if all(p.input_lengths is None for p in parts):
        return None
    device = parts[0].logits.device
    return torch.cat([p.input_lengths.to(device) if p.input_lengths is not None else torch.full(
        (p.logits.shape[0],), p.max_len if p.max_len is not None else _steps(p) * p.window, device=device) for p in parts])


def versions(*tensors: Tensor | None) -> tuple | None:
    """Each tensor's in-place edit count (None for an absent one); None where one keeps none (an inference tensor)."""
    try:
        return tuple(None if t is None else t._version for t in tensors)
    except RuntimeError:
        return None
