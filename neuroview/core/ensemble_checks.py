"""What :class:`~neuroview.core.ensemble.Ensemble` checks of its members, said by name rather than done wrong.

- At construction: a list of distinct networks (``[net] * k`` is one network k times), all NeuroView-CNNs or none, one
  number of classes; members whose weights are equal tensor for tensor (``copy.deepcopy`` of one network) are warned
  of: they start equal, and trained on the same batches without dropout, each with the gradient it gets alone, they
  stay equal and decide as one network (lazy members, not built yet, are not compared).
- The members' NeuroView settings (``quantizer``, ``tau``, ``grad_state``, ``stop_early``, ``check_finite``) set on
  the ensemble: passed on to every member, each checking it as it checks its own (``ens.tau = v`` was stored on the
  ensemble and changed nothing); read from it: the members' common value. ``check_finite``, a switch any network may
  carry (the Lightning module's batch check reads it off the model), is kept on the ensemble itself where members
  lack it; the other settings are refused by name there.
- Recurrent members (those with a ``batch_first``) of one layout: the ensemble hands every member the same ``x``, which a
  time-first member (``[T, B, F]``) beside a batch-first one read with its samples as steps (logits that looked right
  where B == T, a bare ``torch.stack`` error otherwise); ``ens.batch_first`` is theirs, as the data readers ask it.
- What only NeuroView-CNN members have (``input_shape``, ``units`` ...): an error that is a TypeError and an
  AttributeError, so that ``hasattr`` (which ``torch.jit.trace`` asks) answers False for standard members.

Imports only torch, numpy and :mod:`neuroview.core`.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from . import settings as _settings

__all__ = ["NotNeuroView", "SETTINGS", "checked_members", "layout", "num_classes", "pass_setting", "read_setting"]

#: the members' settings an ensemble passes on (and reads back as their common value)
SETTINGS = ("quantizer", "tau", "grad_state", "stop_early", "check_finite")

#: the NeuroView-CNN members' own properties an ensemble exposes (an AttributeError too for other members)
NV_ONLY = ("sites", "input_shape", "units", "site_slices", "num_units")

_ADVICE = ("pass networks built apart, e.g. nv.create_model(name, members=k) or [build() for _ in range(k)] with your "
           "own builder (a copy.deepcopy of one network starts equal: re-initialize each copy's parameters)")


class NotNeuroView(TypeError, AttributeError):
    """What only NeuroView-CNN members have, asked of an ensemble of other networks: a TypeError that ``hasattr`` and
    ``getattr(net, name, default)`` read as a missing attribute."""


def num_classes(net: nn.Module) -> int | None:
    """``net.num_classes``, else the width of its linear head (``classifier``, ``fc`` or ``head``)."""
    n = getattr(net, "num_classes", None)
    heads = (getattr(net, h, None) for h in ("classifier", "fc", "head"))
    return n if n is not None else next((h.out_features for h in heads if isinstance(h, nn.Linear)), None)


def checked_members(members, batched) -> tuple[list[nn.Module], int | None, bool | str]:
    """``(members as a list, their number of classes, batched)``, or an error naming what is wrong with them."""
    from .cnn import NeuroViewCNN  # (cnn imports nothing of the ensemble's; kept local to keep this module light)

    # one network is no list of them: an nn.Sequential would iterate into its layers as members
    one = not hasattr(members, "__iter__") or isinstance(members, nn.Module) and not isinstance(members, nn.ModuleList)
    given = [] if one else list(members)
    odd = sorted({type(m).__name__ for m in given if not isinstance(m, nn.Module)})
    if one or odd:
        got = f"one {type(members).__name__}" if one else f"a {type(members).__name__} holding {', '.join(odd)}"
        raise TypeError(f"members: expected a list of networks (nn.Module), got {got}; pass [net, ...]")
    if not given:
        raise ValueError("members: expected at least one network, got none")
    distinct(given)
    if len({isinstance(m, NeuroViewCNN) for m in given}) > 1:
        raise TypeError("members: expected all NeuroView-CNNs or none, got a mix (their average would "
                        "have no exact explanation)")
    classes = {num_classes(m) for m in given}
    if len(classes) > 1:
        raise ValueError(f"members: expected the same number of classes for every member, got {sorted(classes, key=str)}")
    batched = bool(batched) if isinstance(batched, np.bool_) else batched  # numpy's, as create_model takes it
    if not isinstance(batched, bool) and batched != "auto":
        raise ValueError(f"batched: expected true, false or 'auto', got {batched!r}")
    layout(given)
    _warn_equal(given)
    return given, classes.pop(), batched


def layout(members) -> bool | None:
    """The members' common ``batch_first`` (recurrent members: ``x`` read as ``[B, T, F]`` or ``[T, B, F]``), None where
    none has one; an error naming the members of each layout where they differ (members replaced since construction
    too: :meth:`Ensemble.member_logits` asks at every call). Members without a ``batch_first`` are not compared: a
    standard CNN reads ``[B, C, T]``, but a network of one's own without that attribute (a GRU wrapped in a module of
    one's own, a transformer) may read ``[B, T, F]`` as an RNN beside it does, so a mix is no certain error."""
    given = [(i, getattr(m, "batch_first", None)) for i, m in enumerate(members)]  # no walrus: a cell torch.compile
    firsts = {i: bool(v) for i, v in given if v is not None}  # cannot read (a graph break per call)
    if len(set(firsts.values())) > 1:
        ids = {f: [str(i) for i, b in firsts.items() if b is f] for f in (True, False)}
        first, time = (f"member{'s' * (len(ids[f]) > 1)} {', '.join(ids[f])}" for f in (True, False))
        raise ValueError(f"members: {first} read{'s' * (len(ids[True]) == 1)} x as [B, T, F] (batch_first=True) and "
                         f"{time} as [T, B, F] (batch_first=False), but the ensemble hands every member the same x: "
                         "a time-first member would read its samples as steps; build every member with one batch_first "
                         "(an RNN's weights are the same either way: load a time-first member's state dict into the same "
                         "network built over nn.GRU(..., batch_first=True), as the zoo's RNNs are)")
    return next(iter(firsts.values()), None)


def distinct(members: list[nn.Module]) -> None:
    """An error where one module is two members ([net] * 5 is one network five times: it trains and decides as one)."""
    first: dict[int, int] = {}
    for i, m in enumerate(members):
        if first.setdefault(id(m), i) != i:
            raise ValueError(f"members: member {i} is member {first[id(m)]}, the same module (as [net] * k gives); "
                             + _ADVICE)


def _warn_equal(members: list[nn.Module]) -> None:
    """A warning where two members' parameters are equal tensor for tensor (copies of one network): they start equal,
    and the members' loss gives each the gradient it gets alone, so without dropout, on the same batches, they stay
    equal, and the ensemble costs k networks and computes one. (Comparisons stop at the first tensor that differs:
    members built apart cost little.) Members with a lazy layer not built yet (``nn.LazyConv1d``: its parameter has no
    values to compare) or a tensor without data (the meta device) are not compared: nothing is known of them."""
    if any(nn.parameter.is_lazy(p) or p.is_meta for m in members for p in m.parameters()):
        return
    params = [[p.detach() for p in m.parameters()] for m in members]
    for i in range(1, len(members)):
        for j in range(i):
            a, b = params[j], params[i]
            if a and len(a) == len(b) and all(s.shape == t.shape and s.dtype == t.dtype and s.device == t.device
                                               and torch.equal(s, t) for s, t in zip(a, b)):
                warnings.warn(f"members: member {i} has the weights of member {j}, tensor for tensor (a copy of one "
                              "network?): they start equal, and trained on the same batches they stay equal and decide as one "
                              "network (dropout alone may part them); " + _ADVICE,
                              stacklevel=4)
                return


def _check(name: str, value):
    """The ensemble's own check of a switch its members keep unchecked (``stop_early``, ``check_finite``): the text
    "false" is no False; the members' checked settings (``tau`` ...) are checked by each member as it is set."""
    return _settings.flag(name, value) if name in ("stop_early", "check_finite") else value


def read_setting(members, name: str):
    """The members' common ``name``; an AttributeError naming why where there is none (members without it, or
    members that differ), so that ``getattr(ens, name, default)`` gives the default."""
    kinds = sorted({type(m).__name__ for m in members if not hasattr(m, name)})
    if kinds:
        raise AttributeError(f"{name}: the ensemble's members ({', '.join(kinds)}) have no {name}")
    if name == "batch_first":  # members that differ: an error, not a missing attribute (getattr's default guessed a layout)
        return layout(members)
    values = [getattr(m, name) for m in members]
    if any(v != values[0] for v in values[1:]):
        raise AttributeError(f"{name}: the members' values differ ({values}); read each one's: [m.{name} for m in "
                             f"ens.members], or set it on the ensemble (ens.{name} = v sets every member's)")
    return values[0]


def pass_setting(members, name: str, value) -> dict:
    """``name`` set to ``value`` on every member, each checking it as it checks its own setting; where one refuses it
    (or has no such setting), every member keeps the value it had. Returns what the ensemble keeps itself: ``{}``, or
    ``{"check_finite": flag}`` where members lack that switch (any network may carry it: the Lightning module's batch
    check reads ``getattr(model, "check_finite", True)``, a single LITE's as an ensemble's)."""
    kinds = sorted({type(m).__name__ for m in members if not hasattr(m, name)})
    if kinds and name != "check_finite":
        raise AttributeError(f"{name}: the ensemble's members ({', '.join(kinds)}) have no {name}, so setting it on "
                             "the ensemble would change nothing")
    value = _check(name, value)
    members = [m for m in members if hasattr(m, name)]
    before = [getattr(m, name) for m in members]
    try:
        for m in members:
            setattr(m, name, value)
    except BaseException:
        for m, v in zip(members, before):
            setattr(m, name, v)
        raise
    return {name: value} if kinds else {}
