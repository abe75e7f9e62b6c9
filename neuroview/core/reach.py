"""What a NeuroView-CNN's decision never reaches: the backbone parameters its codes do not depend on.

The forward pass stops after the last site, so the backbone's own head (and anything else whose
output no site reads, such as Inception's auxiliary classifier) never gets a gradient.
``DistributedDataParallel`` waits for a gradient of every parameter that asks for one, so at the
second step it fails ("Expected to have finished reduction in the prior iteration"). The wrapper
therefore freezes those parameters when it finds its sites (:func:`freeze_unreached`), and gives
them back as they were on ``unwrap()`` (:func:`thaw`).

What is reached is read from the autograd graph of the codes of one small batch (the parameters
that graph accumulates into), which is what DDP itself checks, rather than from which modules
ran: a module can run before the last site without any site reading its output.

Imports only torch and the core modules :mod:`.guards` (to tell the NeuroView networks inside a backbone) and
:mod:`.search_scope`.
"""

from __future__ import annotations

import copy
import warnings
import weakref

import torch
from torch import Tensor, nn

from ._utils import restore_modes
from .guards import Guarded
from .search_scope import own_pass


def graph_leaves(out: Tensor) -> set[int]:
    """``id`` of every leaf tensor (parameter) the autograd graph of ``out`` accumulates into."""
    return graph([out])[0]


def graph(outs) -> tuple[set[int], set]:
    """``(ids of the leaves, nodes)`` of the autograd graph of the tensors ``outs``."""
    leaves: set[int] = set()
    seen: set = set()
    stack = [o.grad_fn for o in outs]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        var = getattr(fn, "variable", None)  # an AccumulateGrad node: its leaf
        if var is not None:
            leaves.add(id(var))
        stack.extend(nxt for nxt, _ in fn.next_functions)
    return leaves, seen


#: ``id`` of a parameter neuroview froze -> (the parameter, weakly; the live networks that froze it). It is thawed
#: when the last of them is unwrapped or garbage-collected, so a wrapper thrown away does not leave the user's
#: model with a head that no longer trains, and a second wrapper of the same backbone keeps what it needs frozen.
_HOLDERS: dict[int, tuple[weakref.ref, weakref.WeakSet]] = {}


#: each live network -> ``id`` of the backbone parameters its codes reach: a parameter one of them reaches is never
#: frozen by another wrapper of the same model (its training would leave those layers as they were, unsaid)
_REACHED: "weakref.WeakKeyDictionary[nn.Module, set[int]]" = weakref.WeakKeyDictionary()


def _holders(p: Tensor) -> weakref.WeakSet | None:
    entry = _HOLDERS.get(id(p))
    return entry[1] if entry is not None and entry[0]() is p else None


def freeze_unreached(net: nn.Module, x: Tensor) -> tuple[str, ...]:
    """Set ``requires_grad=False`` on the backbone parameters the codes of ``x`` do not depend on;
    return their names in the backbone (parameters the user froze are left alone and not listed; those another
    network froze are listed too, and stay frozen until neither needs them). A parameter another live network's
    codes reach is never frozen, nor one a NeuroView network inside the backbone decides with (:func:`nested_needs`),
    and one another network froze that these codes reach trains again, with a warning.

    One eval-mode pass with gradients on (no BatchNorm statistics move, no backward runs).
    """
    trainable = [(n, p) for n, p in net.backbone.named_parameters() if p.requires_grad or _holders(p) is not None]
    if not trainable:
        return ()
    held = [p for _, p in trainable if not p.requires_grad]
    restore = restore_modes(net)
    try:
        net.eval()
        for p in held:  # frozen by another network: the graph must still show whether this one reaches them
            p.requires_grad_(True)
        with torch.enable_grad(), own_pass():  # (a site search of an outer wrap running it reads none of it)
            reached = graph_leaves(net.codes(x))
    finally:
        restore()
        for p in held:
            p.requires_grad_(False)
    _REACHED[net] = {id(p) for _, p in trainable if id(p) in reached}
    others = set().union(*(r for o, r in list(_REACHED.items()) if o is not net), nested_needs(net.backbone))
    needed = [p for p in held if id(p) in reached]  # frozen by another wrapper, and this one's decision reaches them
    for p in needed:  # given back: this network trains them (the other's decision does not read them)
        _HOLDERS.pop(id(p), None)
        p.requires_grad_(True)
    if needed:
        warnings.warn(f"wrap: {[n for n, p in trainable if any(p is q for q in needed)]} were frozen by another NeuroView "
                      "network over the same model, whose decision does not reach them; this one's does, so they train "
                      "again (the other's plain DDP would wait for their gradients)", stacklevel=4)
    names = tuple(n for n, p in trainable if id(p) not in reached and id(p) not in others)
    hold(net, names)
    return names


def nested_needs(backbone: nn.Module) -> set[int]:
    """``id`` of the parameters the NeuroView networks inside ``backbone`` decide with, whatever an outer wrap's codes
    reach: each one's head (classifier, normalization, shared step: it comes after its codes, so no codes reach it, and
    an outer decision that stops inside it never does), and the whole of a network that records no reach of its own
    (an RNN; an ensemble's own head). A NeuroView-CNN's backbone is left to its own record (:data:`_REACHED`, taken
    when it finds its sites: what it reaches then trains again, with a warning, where an outer wrap froze it first)."""
    nested = [m for m in backbone.modules() if isinstance(m, Guarded)]
    cnns = [(m, m._modules["backbone"]) for m in nested if "frozen" in m.__dict__ and m._modules.get("backbone") is not None]
    heads: set[int] = set()
    for m, bb in cnns:
        heads |= {id(p) for p in m.parameters()} - {id(p) for p in bb.parameters()}
    own = {id(p) for _, bb in cnns for p in bb.parameters()}
    return heads | ({id(p) for m in nested for p in m.parameters()} - own)


def nested_stop(backbone: nn.Module, site: nn.Module, stop: nn.Module | None) -> nn.Module | None:
    """Where a pass of ``backbone`` whose last site is the module ``site`` stops: at ``stop`` (the first module seen to
    start after it, in eval mode) or, where ``site`` lies in the backbone of a NeuroView network inside ``backbone``
    and ``stop`` does not, at that network's normalization. Its head calls it as a module while training (a search
    that found its sites lazily, inside this one's, saw no head start at eval), and running it moved its statistics."""
    nets = [(m._modules["backbone"], m._modules.get("norm")) for m in backbone.modules()
            if isinstance(m, Guarded) and isinstance(m._modules.get("backbone"), nn.Module)]
    holding = [(bb, norm) for bb, norm in nets if any(site is s for s in bb.modules())]
    for bb, norm in sorted(holding, key=lambda h: sum(1 for _ in h[0].modules())):  # the innermost first
        if stop is not None and any(stop is s for s in bb.modules()):
            return stop  # inside its backbone: before its head
        if norm is not None:
            return norm
    return stop


def hold(net: nn.Module, names: tuple[str, ...]) -> None:
    """Freeze ``names`` of ``net``'s backbone with ``net`` as their holder: its garbage collection (or its
    ``unwrap()``) thaws them where no other live network holds them. A copy of a network (deepcopy, pickle) holds
    its own copies so: they are thawed when it goes, as the original's are."""
    params = [net.backbone.get_parameter(n) for n in names]
    for p in params:
        p.requires_grad_(False)
        holders = _holders(p)
        if holders is None:  # the entry goes with the parameter (before its id can be reused)
            _HOLDERS[id(p)] = (weakref.ref(p, lambda _, key=id(p): _HOLDERS.pop(key, None)), holders := weakref.WeakSet())
        holders.add(net)
    weakref.finalize(net, _release, [weakref.ref(p) for p in params]).atexit = False


def held(users) -> list[Tensor]:
    """The parameters ``users`` (live networks) froze."""
    params = (net.backbone.get_parameter(n) for net in list(users) for n in getattr(net, "frozen", ()))
    return list({id(p): p for p in params if _holders(p) is not None}.values())


def thaw_in_copy(users, memo: dict) -> None:
    """In a ``copy.deepcopy`` (``memo``) of a model that ``users`` wrap, made without them: each parameter they froze
    is copied with ``requires_grad=True``, as ``unwrap()`` would give it back (no wrapper of the copy ever could).
    Those a network copied along with it holds stay frozen: that copy's own ``unwrap()`` thaws them."""
    for p in held(users):
        if not any(id(h) in memo for h in _holders(p)):
            copy.deepcopy(p, memo).requires_grad_(True)  # memo: the copy's own module then takes this one


def _release(refs: list[weakref.ref]) -> None:
    """Thaw the parameters no live network holds frozen any more (a WeakSet yields only live members)."""
    for ref in refs:
        p = ref()
        holders = _holders(p) if p is not None else None
        if holders is not None and not any(True for _ in holders):
            del _HOLDERS[id(p)]
            if not p.is_inference():  # a copy made under inference_mode: torch refuses it (and it cannot train)
                p.requires_grad_(True)


def thaw(net: nn.Module, names: tuple[str, ...]) -> tuple[()]:
    """Undo :func:`freeze_unreached` for ``names`` (those no other live network holds frozen); returns ``()``."""
    params = [net.backbone.get_parameter(n) for n in names]
    for p in params:
        holders = _holders(p)
        if holders is not None:
            holders.discard(net)
        else:  # not held (frozen before the registry): as before, given back
            p.requires_grad_(True)
    _release([weakref.ref(p) for p in params])
    return ()


def reached_later(net: nn.Module, names: tuple[str, ...]) -> None:
    """Take ``names`` (of :attr:`frozen`) off ``net``'s frozen parameters: a later pass's decision reached them. They
    stay trainable (no wrapper of the model freezes them again)."""
    params = [net.backbone.get_parameter(n) for n in names]
    for p in params:  # as freeze_unreached gives back what another wrapper froze and this one's decision reaches
        _HOLDERS.pop(id(p), None)
        p.requires_grad_(True)
    _REACHED.setdefault(net, set()).update(id(p) for p in params)
    net.frozen = tuple(n for n in net.frozen if n not in names)


def module_names(names: tuple[str, ...]) -> list[str]:
    """``backbone.<module>`` of each parameter name, once each, in order."""
    out = {f"backbone.{n.rpartition('.')[0]}".rstrip("."): None for n in names}
    return list(out)
