"""What a NeuroView-CNN's decision never reaches: the backbone parameters its codes do not depend on.

The forward pass stops after the last site, so the backbone's own head (and anything else whose output no site reads,
such as Inception's auxiliary classifier) never gets a gradient. ``DistributedDataParallel`` waits for a gradient of
every parameter that asks for one, so at the second step it fails ("Expected to have finished reduction in the prior
iteration"). The wrapper therefore freezes those parameters when it finds its sites (:func:`freeze_unreached`), and
gives them back as they were on ``unwrap()`` (:func:`thaw`) or when the network is garbage-collected.

The frozen parameters are recorded by name and by object, and each name is looked up again (:func:`current`) where what
a network holds is read: pruning, ``parametrize`` (weight_norm) or ``load_state_dict(assign=True)`` on the head after
wrapping put another name or another object in a frozen parameter's place, and what stands there now is what is held and
given back (a bare lookup by name failed there with torch's AttributeError, in ``torch.save``, ``deepcopy`` and
``unwrap()``; the garbage collection thawed the old objects and left the new ones frozen for good). Only where the
module holding the name is still the one that held it when it was frozen (those edits keep it): a module put in its
place since is the user's, and left as they set it (a new head they froze stays frozen), but what the network froze
stays held by object (SyncBatchNorm's conversion and QAT keep the Parameter objects in a new module). torch's
``parametrize.remove_parametrizations`` on a frozen weight (weight_norm baked in) rebuilds it as a plain tensor, no
parameter: nothing stands under the name then, and the head's weight never trains again. Bake it in after ``unwrap()``,
or call ``requires_grad_(True)`` on the module before ``remove_parametrizations``.

What was frozen can be made trainable again (``requires_grad_(True)``, a new head put in place, a backbone the user
froze at the first batch and unfroze later): :func:`unreached_trainable` names those parameters, and
:func:`warn_unreached_trainable` says so once, before plain DDP fails on them with torch's generic message.

What is reached is read from the autograd graph of the codes of one small batch (the parameters that graph accumulates
into), which is what DDP itself checks, rather than from which modules ran: a module can run before the last site
without any site reading its output.

Imports only torch and the core modules :mod:`.guards` (to tell the NeuroView networks inside a backbone),
:mod:`.reach_graph` (what autograd and nested networks tell of reach) and :mod:`.search_scope`.
"""

from __future__ import annotations

import copy
import os
import sys
import sysconfig
import warnings
import weakref

import torch
from torch import Tensor, nn

from ._utils import restore_modes
from .guards import Guarded
from .reach_graph import graph, nested_needs, stand_ins
from .search_scope import own_pass


#: ``id`` of a parameter neuroview froze -> (the parameter, weakly; the live networks that froze it). It is thawed
#: when the last of them is unwrapped or garbage-collected, so a wrapper thrown away does not leave the user's
#: model with a head that no longer trains, and a second wrapper of the same backbone keeps what it needs frozen.
_HOLDERS: dict[int, tuple[weakref.ref, weakref.WeakSet]] = {}

#: each live network -> the names (in its backbone) of the parameters it froze itself, looked up again whenever what it
#: holds is read (a copy, ``unwrap()``, its garbage collection): a reparametrization or a load puts another object, or
#: another name, in a frozen parameter's place (prune's ``weight_orig``, weight_norm's ``parametrizations.weight.
#: original0``, the new tensors of ``load_state_dict(assign=True)``, which keep the old one's ``requires_grad=False``),
#: and what stands under the name now is what it holds and gives back
_OWN: "weakref.WeakKeyDictionary[nn.Module, list[str]]" = weakref.WeakKeyDictionary()

#: each live network -> the modules holding its unreached parameters when they were found, by name (weakly): a module
#: put in the place of one since (a new head) is unreached too, and the user's (what they set stays; :func:`_same`)
_MODULES: "weakref.WeakKeyDictionary[nn.Module, dict[str, weakref.ref]]" = weakref.WeakKeyDictionary()

#: each live network -> the unreached parameters found trainable when it last said so (said once per set)
_SAID: "weakref.WeakKeyDictionary[nn.Module, frozenset[str]]" = weakref.WeakKeyDictionary()

#: each live network -> ``id`` of the backbone parameters its codes reach: a parameter one of them reaches is never
#: frozen by another wrapper of the same model (its training would leave those layers as they were, unsaid)
_REACHED: "weakref.WeakKeyDictionary[nn.Module, set[int]]" = weakref.WeakKeyDictionary()


def _holders(p: Tensor) -> weakref.WeakSet | None:
    entry = _HOLDERS.get(id(p))
    return entry[1] if entry is not None and entry[0]() is p else None


def current(backbone: nn.Module, name: str) -> list[Tensor]:
    """The parameters that stand now for the parameter ``name`` of ``backbone``: itself or, where a reparametrization
    moved it, what holds its values (``torch.nn.utils.prune``'s ``<name>_orig``; ``parametrize``'s
    ``parametrizations.<name>.original*``, as weight_norm and orthogonal leave them; the old ``weight_norm``'s
    ``<name>_g`` and ``<name>_v``, the old ``spectral_norm``'s ``<name>_orig``); ``[]`` where none does (the module or
    the parameter is gone; ``remove_parametrizations`` of a frozen weight left a plain tensor, no parameter: above)."""
    owner, _, attr = name.rpartition(".")
    try:
        module = backbone.get_submodule(owner)
    except AttributeError:
        return []
    own = module._parameters
    if own.get(attr) is not None:
        return [own[attr]]
    moved = module._modules.get("parametrizations")
    if isinstance(moved, nn.ModuleDict) and attr in moved:
        return [p for p in moved[attr]._parameters.values() if p is not None]
    return [own[k] for k in (attr + "_orig", attr + "_g", attr + "_v") if own.get(k) is not None]


def _take(net: nn.Module, p: Tensor) -> None:
    """Freeze ``p`` with ``net`` among its holders."""
    p.requires_grad_(False)
    holders = _holders(p)
    if holders is None:  # the entry goes with the parameter (before its id can be reused); made with its holder in it,
        # so no garbage collection running another network's release in between finds it held by none
        _HOLDERS[id(p)] = (weakref.ref(p, lambda _, key=id(p): _HOLDERS.pop(key, None)), weakref.WeakSet([net]))
    else:
        holders.add(net)


def _adopt(net: nn.Module) -> None:
    """Hold for ``net`` what stands now under the names it froze, where another object took a frozen parameter's place
    (still frozen: weight_norm and ``load_state_dict(assign=True)`` copy ``requires_grad=False`` onto the new ones)."""
    backbone, mods = net.__dict__.get("_modules", {}).get("backbone"), _MODULES.get(net, {})
    for name in _OWN.get(net, ()) if isinstance(backbone, nn.Module) else ():
        for p in current(backbone, name) if _same(mods, backbone, name) else ():
            holders = _holders(p)
            if holders is not None:
                holders.add(net)
            elif not p.requires_grad and not p.is_inference():
                _take(net, p)


def _same(mods: dict, backbone: nn.Module, name: str) -> bool:
    """Whether the module holding ``name`` in ``backbone`` is the one recorded in ``mods`` (:data:`_MODULES`) when it
    was frozen; not one the user put in its place since (theirs, left as they set it)."""
    owner = name.rpartition(".")[0]
    try:
        return (ref := mods.get(owner)) is not None and ref() is backbone.get_submodule(owner)
    except AttributeError:
        return False


def _adopt_all() -> None:
    for net in list(_OWN):  # (a WeakKeyDictionary: the live networks only)
        _adopt(net)


def freeze_unreached(net: nn.Module, x: Tensor) -> tuple[str, ...]:
    """Set ``requires_grad=False`` on the backbone parameters the codes of ``x`` do not depend on;
    return their names in the backbone (those another network froze are listed too, and stay frozen until neither
    needs them). A parameter another live network's codes reach is never frozen, nor one a NeuroView network inside the
    backbone decides with (:func:`nested_needs`), and one another network froze that these codes reach trains again,
    with a warning. Unreached parameters the user froze are left alone and not listed, but noted
    (``net._kept_frozen``): :func:`unreached_trainable` names them once they are unfrozen (a linear probe's backbone
    frozen at the first batch, unfrozen later).

    One eval-mode pass with gradients on (no BatchNorm statistics move, no backward runs).
    """
    _adopt_all()  # what moved since other networks froze it (weight_norm, a load with assign=True): still theirs
    params = [(n, p) for n, p in net.backbone.named_parameters()
              if (p.is_floating_point() or p.is_complex()) and not p.is_inference()]
    net.__dict__["_kept_frozen"] = ()
    if not params:
        return ()
    lifted = [p for _, p in params if not p.requires_grad]
    restore = restore_modes(net)
    try:
        net.eval()
        for p in lifted:  # frozen (by another network, or by the user): the graph must still show whether this one
            p.requires_grad_(True)  # reaches them
        with torch.enable_grad(), own_pass(), stand_ins(net.backbone):  # (own_pass: a site search of an outer wrap
            reached = graph([net.codes(x)])[0]  # running it reads none of it; stand_ins: inference tensors' copies)
    finally:
        restore()
        for p in lifted:
            p.requires_grad_(False)
    _REACHED[net] = {id(p) for _, p in params if id(p) in reached}
    others = set().union(*(r for o, r in list(_REACHED.items()) if o is not net), nested_needs(net.backbone))
    # frozen by another wrapper, and this one's decision reaches them
    needed = [p for _, p in params if id(p) in reached and not p.requires_grad and _holders(p) is not None]
    for p in needed:  # given back: this network trains them (the other's decision does not read them)
        _HOLDERS.pop(id(p), None)
        p.requires_grad_(True)
    if needed:
        warnings.warn(f"wrap: {[n for n, p in params if any(p is q for q in needed)]} were frozen by another NeuroView "
                      "network over the same model, whose decision does not reach them; this one's does, so they train "
                      "again (the other's plain DDP would wait for their gradients)", stacklevel=4)
    unreached = [(n, p) for n, p in params if id(p) not in reached and id(p) not in others]
    names = tuple(n for n, p in unreached if p.requires_grad or _holders(p) is not None)
    net.__dict__["_kept_frozen"] = tuple(n for n, p in unreached if not p.requires_grad and _holders(p) is None)
    hold(net, names)
    return names


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


def hold(net: nn.Module, names: tuple[str, ...], swapped: tuple[str, ...] = ()) -> None:
    """Freeze ``names`` of ``net``'s backbone with ``net`` as their holder: its garbage collection (or its
    ``unwrap()``) thaws them where no other live network holds them, whatever stands under those names by then
    (:func:`current`). A copy of a network (deepcopy, pickle) holds its own copies so: they are thawed when it goes,
    as the original's are; but not what stands in ``swapped`` (:func:`held_state`: modules its original had put in
    place of the ones it froze in, the user's), recorded as another's (:func:`_same`), as the original records them."""
    own = _OWN.get(net)
    if own is None:
        _OWN[net], _MODULES[net] = own, mods = [], {}
        weakref.finalize(net, _let_go, weakref.ref(net.backbone), own, mods).atexit = False
    own[:] = dict.fromkeys(names)
    for name in names:
        for p in current(net.backbone, name) if name.rpartition(".")[0] not in swapped else ():
            _take(net, p)
    mods = _MODULES[net]  # (the finalizer's own: its gc gives back only what stands in these modules)
    mods.clear()
    for name in tuple(names) + tuple(net.__dict__.get("_kept_frozen", ())):
        owner = name.rpartition(".")[0]
        try:
            mods[owner] = _gone if owner in swapped else weakref.ref(net.backbone.get_submodule(owner))
        except AttributeError:
            pass


def _gone() -> None:
    """The record (:data:`_MODULES`) of a module no longer in the network (a dead reference): none stands there."""


def held_state(net: nn.Module) -> dict:
    """``net.__getstate__()`` (deepcopy, pickle, ``copy.copy``) with ``_swapped``: the owners of the names it froze (or
    kept frozen) where a module stands now other than the one it froze them in and ``net`` holds none of what stands
    under its names (a new head: the user's, which its ``unwrap()`` and garbage collection leave as they set it). The
    copy's :func:`hold` takes none of those, so the copy's record refers to the copy's modules as the original's does to
    the original's (a copy took such a head as its own). A module put in place around the very parameters ``net`` froze
    (``nn.SyncBatchNorm.convert_sync_batchnorm``, Lightning's ``sync_batchnorm=True``; QAT's ``from_float``) is not the
    user's: the original gives those back by object, so the copy takes its copies of them (it left them frozen for good,
    and a pickle's load thawed them while unreached). Not yet: a frozen head the user wrapped in a new module (its
    parameters under new names, ``4.0.weight``): a copy's record is by name, so it holds none of them (a deepcopy's stay
    frozen after its ``unwrap()``; a pickle's come back trainable), where the original gives them back by object."""
    state = nn.Module.__getstate__(net)
    mods, backbone = _MODULES.get(net, {}), net.__dict__.get("_modules", {}).get("backbone")
    names = tuple(net.__dict__.get("frozen", ())) + tuple(net.__dict__.get("_kept_frozen", ()))
    if isinstance(backbone, nn.Module):
        moved = {n.rpartition(".")[0] for n in names if n.rpartition(".")[0] in mods and not _same(mods, backbone, n)}
        kept = {n.rpartition(".")[0] for n in names if any(net in (_holders(p) or ()) for p in current(backbone, n))}
        state["_swapped"] = tuple(o for o in dict.fromkeys(n.rpartition(".")[0] for n in names) if o in moved - kept)
    return state


def held(users) -> list[Tensor]:
    """The parameters ``users`` (live networks) hold frozen that their backbones hold now (found where they moved)."""
    out: dict[int, Tensor] = {}
    for net in list(users):
        backbone = net.__dict__.get("_modules", {}).get("backbone")
        if isinstance(backbone, nn.Module):
            _adopt(net)
            out.update((id(p), p) for p in backbone.parameters() if net in (_holders(p) or ()))
    return list(out.values())


def thaw_in_copy(users, memo: dict) -> None:
    """In a ``copy.deepcopy`` (``memo``) of a model that ``users`` wrap, made without them: each parameter they froze
    is copied with ``requires_grad=True``, as ``unwrap()`` would give it back (no wrapper of the copy ever could).
    Those a network copied along with it holds stay frozen: that copy's own ``unwrap()`` thaws them."""
    for p in held(users):
        if not any(id(h) in memo for h in _holders(p)):
            copy.deepcopy(p, memo).requires_grad_(True)  # memo: the copy's own module then takes this one


def _free(params: list[Tensor]) -> None:
    """Thaw the parameters no live network holds frozen any more (a WeakSet yields only live members)."""
    for p in params:
        holders = _holders(p)
        if holders is not None and not any(True for _ in holders):
            del _HOLDERS[id(p)]
            if not p.is_inference():  # a copy made under inference_mode: torch refuses it (and it cannot train)
                p.requires_grad_(True)


def _let_go(backbone_ref: weakref.ref, own: list[str], mods: dict) -> None:
    """A network garbage-collected: thaw what no live network holds now, the objects it froze and what stands under the
    names it froze (another object, frozen, in a parameter's place: ``load_state_dict(assign=True)``, weight_norm) in
    the modules it froze them in (``mods``)."""
    _adopt_all()  # what moved that another live network froze too: it holds it
    _free([p for ref, _ in list(_HOLDERS.values()) if (p := ref()) is not None])
    backbone = backbone_ref()
    for name in own if backbone is not None else ():
        for p in current(backbone, name) if _same(mods, backbone, name) else ():
            if _holders(p) is None and not p.requires_grad and not p.is_inference():
                p.requires_grad_(True)


def thaw(net: nn.Module, names: tuple[str, ...]) -> tuple[()]:
    """Undo :func:`freeze_unreached` for ``net`` (``unwrap()``): what it holds frozen and no other live network does is
    trainable again, found where it moved, and ``names`` no network holds (frozen before the registry) too; the
    unreached parameters the user had frozen stay as they are. Returns ``()``."""
    _adopt_all()  # another network holding a moved parameter keeps it
    mine = [p for ref, holders in list(_HOLDERS.values()) if net in holders and (p := ref()) is not None]
    for p in mine:
        _holders(p).discard(net)
    for name in names:
        for p in current(net.backbone, name) if _same(_MODULES.get(net, {}), net.backbone, name) else ():
            if _holders(p) is None and not p.is_inference():  # not held (frozen before the registry): given back
                p.requires_grad_(True)
    _free(mine)
    _OWN.get(net, []).clear()
    net.__dict__.pop("_kept_frozen", None)
    return ()


def reached_later(net: nn.Module, names: tuple[str, ...]) -> None:
    """Take ``names`` (of :attr:`frozen`) off ``net``'s frozen parameters: a later pass's decision reached them. They
    stay trainable (no wrapper of the model freezes them again)."""
    params = [p for n in names for p in current(net.backbone, n)]
    for p in params:  # as freeze_unreached gives back what another wrapper froze and this one's decision reaches
        _HOLDERS.pop(id(p), None)
        if not p.is_inference():
            p.requires_grad_(True)
    _REACHED.setdefault(net, set()).update(id(p) for p in params)
    net.frozen = tuple(n for n in net.frozen if n not in names)
    own = _OWN.get(net, [])
    own[:] = [n for n in own if n not in names]


def unreached_trainable(net: nn.Module) -> list[str]:
    """The parameters (``backbone.<name>``) of what ``net``'s decision never reaches that require grad now: made
    trainable since it froze them (``requires_grad_(True)``, a fine-tuning schedule's unfreezing), those the user had
    frozen when the sites were found and unfroze since (``_kept_frozen``), and every one of a module put in the place of
    an unreached one (a new head). None of them ever gets a gradient."""
    return list(_trainable(net))


def _trainable(net: nn.Module) -> dict[str, str]:
    """:func:`unreached_trainable`'s names -> how to freeze each again: its whole module where nothing of that module is
    reached (``net.get_submodule('backbone.head')...``), else the parameter alone (a temperature on the backbone's root:
    freezing the module would stop its reached layers training too)."""
    backbone = net.__dict__.get("_modules", {}).get("backbone")
    names = tuple(net.__dict__.get("frozen", ())) + tuple(net.__dict__.get("_kept_frozen", ()))
    if not names or not isinstance(backbone, nn.Module):
        return {}
    was, out, unreached = _MODULES.get(net, {}), {}, {id(p) for n in names for p in current(backbone, n)}
    for name in names:
        owner = name.rpartition(".")[0]
        try:
            module = backbone.get_submodule(owner)
        except AttributeError:
            continue  # gone: nothing of it trains
        where = ".".join(filter(None, ("backbone", owner)))
        whole = f"net.get_submodule({where!r}).requires_grad_(False)"
        if (ref := was.get(owner)) is not None and ref() is not module:  # another module in its place: all of it
            out.update((f"{where}.{n}", whole) for n, p in module.named_parameters() if p.requires_grad)
            continue
        now = [p for p in current(backbone, name) if p.requires_grad]
        if now and all(id(p) in unreached for p in module.parameters()):
            out[f"backbone.{name}"] = whole
        elif now:  # each by the name it stands under now (moved by weight_norm: its originals)
            out[f"backbone.{name}"] = "; ".join(f"net.get_parameter({where + '.' + n!r}).requires_grad_(False)"
                                                for n, p in module.named_parameters() if any(p is q for q in now))
    return out


#: where the frames of the package, torch and the installed libraries are (a warning names the first frame outside them:
#: the user's line; under NeuroViewModule their ``trainer.fit``, past the training loop of the library that runs it)
_INSIDE = tuple(dict.fromkeys(os.path.join(d, "") for d in (os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.path.dirname(torch.__file__), sysconfig.get_path("purelib"), sysconfig.get_path("platlib"))))


def warn_unreached_trainable(net: nn.Module) -> None:
    """Warn, once per set, of :func:`unreached_trainable`'s parameters: call it on a training pass with gradients,
    where plain DDP would fail at its next step with torch's "Expected to have finished reduction in the prior
    iteration", which names neither them nor the wrapper. Nothing under ``torch.compile`` / ``torch.export``."""
    if torch.compiler.is_compiling() or torch.compiler.is_exporting():
        return
    found = _trainable(net)
    said, _SAID[net] = _SAID.get(net), frozenset(found)  # (none found: the next set is said again)
    if not found or said == _SAID[net]:
        return
    warnings.warn(f"net (the NeuroView network; module.model under NeuroViewModule): {list(found)} require grad, but "
                  "the decision never reaches them (found so when the sites were found: net.unreached lists those the "
                  "wrapper froze; or put in the place of such a module since): they never get a gradient, so plain "
                  "DistributedDataParallel fails at its second step ('Expected to have finished reduction in the prior "
                  f"iteration'); freeze them again ({'; '.join(dict.fromkeys(found.values()))}), or give DDP "
                  "find_unused_parameters=True", stacklevel=_user_level())


def _user_level() -> int:
    """The ``stacklevel`` of the first frame outside :data:`_INSIDE` (DDP's forward, the network's, a training loop)."""
    frame, level = sys._getframe(2), 2  # stacklevel 2: the caller of the function that warns, frame
    while frame is not None and frame.f_code.co_filename.startswith(_INSIDE):
        frame, level = frame.f_back, level + 1
    return level if frame is not None else 2


def module_names(names: tuple[str, ...]) -> list[str]:
    """``backbone.<module>`` of each parameter name, once each, in order; one of the backbone's own (not a submodule's)
    by its full name, ``backbone.<name>``, as ``named_parameters()`` and ``get_parameter`` name it."""
    return list({f"backbone.{n.rpartition('.')[0] or n}": None for n in names})
