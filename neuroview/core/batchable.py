"""Whether an ensemble's members can run in one grouped pass (:mod:`neuroview.core.batched`), and what of theirs
that pass depends on: :func:`why_not_batchable` says why not (no grouped form, shapes, settings, parametrized
tensors, a member whose class computes otherwise than its grouped form: :func:`_mirrors`), :func:`_settings` what a
cached pass is checked against at each call.

Imports only torch and :mod:`neuroview.core`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from ._utils import own_rng
from .cnn import NeuroViewCNN
from .own_decision import NAMES, _defined_by, _over

__all__ = ["why_not_batchable"]


def _backbone(member: nn.Module) -> nn.Module:
    return member.backbone if isinstance(member, NeuroViewCNN) else member


@torch.compiler.disable  # eager, once a structure (a grouped form built): no part of a graph
def why_not_batchable(members: list[nn.Module], settings: list[tuple] | None = None, dtypes: bool = True) -> str | None:
    """Why the members cannot run in one grouped pass (no grouped form, shapes, settings that differ, parametrized
    tensors, a grouped form of another network: :func:`_mirrors`), or None; ``settings``: each's :func:`_settings`;
    ``dtypes=False``: dtypes left to the pass, whose error names a member converted alone after construction."""
    first = _backbone(members[0])
    if not callable(getattr(first, "grouped", None)):
        return f"{type(first).__name__} has no grouped form (.grouped(k), as LITE's)"
    if not isinstance(members[0], NeuroViewCNN) and not isinstance(getattr(members[0], "fc", None), nn.Linear):
        return f"{type(members[0]).__name__} has no linear head .fc to decide with"
    kinds = list(dict.fromkeys(type(m).__name__ + (f"({type(m.backbone).__name__})" if isinstance(m, NeuroViewCNN)
                                                   else "") for m in members))
    if len(kinds) > 1:  # member 0 answers for all below: they must be of one class (a subclass elsewhere ran as it)
        return f"the members are of different classes ({' / '.join(kinds)})"
    shapes = [{n: (t.shape, dtypes and t.dtype) for n, t in _backbone(m).state_dict().items()} for m in members]
    if any(s != shapes[0] for s in shapes[1:]):
        return "the members differ in shape or dtype (their tensors cannot be laid side by side)"
    why = _why_not_now(members, settings or [_settings(m) for m in members])
    own = next(((i, n) for i, m in enumerate(members) for n in _own(m)), None)
    if why is None and own is not None:  # set on the instance: no class of it says what it computes
        return f"member {own[0]}'s {own[1]} is its own (set on the instance), which its grouped form does not compute"
    nv = isinstance(members[0], NeuroViewCNN)
    over = next(((type(m), o) for m in members if nv
                 for o in [_over(type(m), NeuroViewCNN, NAMES)] if o), None)
    if why is None and over:  # the grouped pass computes NeuroViewCNN's decision, not a subclass's (any member's)
        return f"{over[0].__name__} has its own {', '.join(over[1])}, which the grouped pass does not compute"
    return why or _mirrors(first, nv)  # the members are alike: member 0 answers for all


_PLAIN = (int, float, str, bool, tuple, type(None))


def _plain(mod: nn.Module, skip: tuple[str, ...] = ("training",)) -> tuple:
    """A module's plain settings (BatchNorm's eps, affine, a convolution's padding_mode ...), read from ``vars``,
    which torch.compile traces where it breaks its graph on ``extra_repr``."""
    return tuple((a, v) for a, v in vars(mod).items() if a[0] != "_" and a not in skip and isinstance(v, _PLAIN))


def _own(m: nn.Module) -> tuple[str, ...]:
    """The methods set on member ``m``'s instance that its grouped pass would not call: its backbone's ``forward`` (and
    ``head``, for a standard member: a NeuroView member decides by its own head, never the backbone's), its own."""
    nv = isinstance(m, NeuroViewCNN)
    return tuple(n for n in ("forward", "head") if (n in vars(_backbone(m)) and not (nv and n == "head"))
                 or (nv and n in vars(m)))


def _settings(m: nn.Module) -> tuple:
    """What the grouped pass runs a member with that is no tensor: its modules' kinds, plain settings (:func:`_plain`)
    and which tensors each holds (a conv's bias or none), and a NeuroView member's own (quantizer, tau, layers ...)."""
    mods = tuple((n, type(mod), _plain(mod), tuple(t for t, v in (*mod._parameters.items(), *mod._buffers.items())
                                                   if v is not None)) for n, mod in _backbone(m).named_modules())
    if not isinstance(m, NeuroViewCNN):  # last: what is set on the instance (after a pass was built: checked again)
        return mods, (), _own(m)
    return mods, (m.quantizer, m.tau, m.grad_state, m.stop_early, tuple(sorted(m.unit_axis.items())),
                  tuple(n for n, _, _ in m._targets)), _own(m)


def _why_not_now(members: list[nn.Module], settings: list[tuple]) -> str | None:
    """:func:`why_not_batchable` of what can change after the ensemble is built: each member's ``settings``."""
    # the grouped network's weights are plain tensors: a parametrization's (weight_norm ...) has no place there
    para = next(((i, n) for i, m in enumerate(members) for n, mod in _backbone(m).named_modules()
                 if parametrize.is_parametrized(mod)), None)
    if para is not None:
        return (f"member {para[0]}'s module {para[1]!r} has parametrized tensors (torch.nn.utils.parametrize, "
                "as weight_norm gives), which the grouped network does not have")
    # settings that are no tensors: the grouped pass runs the first's
    if any(s[0] != settings[0][0] for s in settings[1:]):
        i, name = next((i, a[0]) for i, s in enumerate(settings) for a, b in zip(settings[0][0], s[0]) if a != b)
        a, b = (getattr(dict(_backbone(members[j]).named_modules()).get(name), "extra_repr", lambda: "absent")()
                for j in (0, i))
        return f"the members' modules differ in settings that are no tensors ({name!r}: {a} / {b})"
    if any(s[1] != settings[0][1] for s in settings[1:]):
        return "the members' NeuroView settings (quantizer, tau, grad_state, layers ...) differ"
    return None


def _mirrors(bb: nn.Module, nv: bool = False) -> str | None:
    """Why ``bb.grouped(k)`` is not ``k`` of ``bb`` side by side, or None. It is built from the class defining
    ``grouped`` and its layers' kinds: a subclass's own forward or head, another activation, a conv's bias ... computed
    another network. ``bb.grouped(1)`` must have ``bb``'s modules, settings and tensors (its head ``fc`` aside, and
    ``nv``: a NeuroView member's backbone, whose own ``head`` no decision reads)."""
    cls, desc = type(bb), lambda m: "absent" if m is None else f"{type(m).__name__}({m.extra_repr()})"
    owner = _defined_by(cls, "grouped")
    names = {n for c in owner.__mro__ if issubclass(c, nn.Module) and c is not nn.Module for n, v in vars(c).items()
             if callable(v) and n not in ("__init__", "grouped", *(("head",) if nv else ()))} | {"__call__"}
    over = _over(cls, owner, names)
    if over:
        return (f"{cls.__name__} has its own {', '.join(over)}, but its grouped form (from {owner.__name__}.grouped) "
                f"computes {owner.__name__}'s")
    try:
        with own_rng():  # its initial weights are never used: the caller's RNG is not drawn from
            shell = bb.grouped(1)
    except Exception as err:  # noqa: BLE001 - any refusal of the grouped form: the members run as they are
        return f"their grouped form could not be built ({type(err).__name__}: {err})"
    mods, got = dict(bb.named_modules()), dict(shell.named_modules())
    for name, g in got.items():
        m, skip = mods.get(name), ("training", "inplace")  # ReLU's inplace changes no number
        if name and (type(m) is not type(g) or _plain(m, skip) != _plain(g, skip)):
            return f"the members' module {name!r} is {desc(m)} where their grouped form computes {desc(g)}"
    extra = [n for n in mods if n not in got and n.split(".")[0] != "fc"]
    if extra:
        return f"the members' module {extra[0]!r} ({desc(mods[extra[0]])}) has no counterpart in their grouped form"
    held, want = (sorted({n for n, _ in (*net.named_parameters(), *net.named_buffers()) if n.split(".")[0] != "fc"})
                  for net in (bb, shell))
    odd = sorted(set(held) ^ set(want))
    return f"the members' tensors and their grouped form's differ ({', '.join(odd)}: in one only)" if odd else None
