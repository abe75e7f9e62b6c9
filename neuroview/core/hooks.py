"""The hooks a NeuroView-CNN keeps on its backbone: one per site module, one where the pass stops.

A :class:`Hook` holds nothing but its kind (pre or post): it hands each call to the recorders of
the passes running in the calling thread (:func:`run_to_last_site`), and each recorder looks the module
up in its own plan. So the backbone never keeps a wrapper alive, two wrappers of one backbone
share one set of hooks, two threads running one network record apart, and a deepcopy of the
backbone copies no wrapper (its hooks come along empty, and the parameters the wrappers froze come
back trainable, as ``unwrap()`` gives them; so does a pickle, ``torch.save(model)``). A hook knows its users weakly; the last
one to go (deleted, or ``unwrap()``) removes it. A pass that runs inside an outer pass in the thread records apart
(a hook of the user's calling the network again, another network of its backbone, of a part of it, of a model holding
it), unless its network is a part of the outer one's backbone (``nv.wrap(model)`` of a model holding a NeuroView
network); a network's codes hook (an ablation's, :class:`CodesHooks`) acts in the thread that set it.

Imports only torch, :mod:`.stop_checks` (what the early stop skips), :mod:`.search_scope` (which call a hook entered)
and :mod:`.reach` (when a backbone is copied).
"""

from __future__ import annotations

import copy
import sys
import threading
import weakref
from typing import Iterable

import torch
from torch import Tensor, nn

from .search_scope import _CALL, _from_hook
from .stop_checks import unwound


class StopForward(BaseException):
    """Raised at the first module to start after a pass has read its last site: nothing after the
    last site takes part in the decision.

    A ``BaseException`` (as ``KeyboardInterrupt`` is) so that a backbone's own ``try/except
    Exception`` lets it through. The recorder that raises it marks itself ``stopped``, and only
    its own pass catches it (:func:`run_to_last_site`), so it never reaches the caller.
    """


class PathChanged(RuntimeError):
    """A pass that ran another path than the one its sites were found on (a site skipped, run on some samples only,
    or another module in its place): raised by the recorders inside the backbone's pass, and let through as it is."""


class SiteSize(ValueError):
    """A site's input of a size the sites found cannot read (no positions; another unit count, as a site after a
    ``Flatten`` gets from another image size): raised by the recorders, and said by :func:`run_to_last_site` as x's,
    with both sample shapes, where x's samples differ from those the sites were found on. ``path``: a unit count that
    changed on samples of that shape is a changed path (:class:`PathChanged`)."""

    def __init__(self, message: str, path: bool = False):
        super().__init__(message)
        self.path = path


def sized(e: SiteSize, x, found: tuple | None) -> Exception:
    """The error a :class:`SiteSize` raised in a pass over ``x`` is said as (``found``: the sample shape the sites were
    found on)."""
    if isinstance(x, Tensor) and found is not None and tuple(x.shape[1:]) != tuple(found):
        return ValueError(f"x: {e}; its samples are of shape {tuple(x.shape[1:])}, the sites were found on {tuple(found)} "
                          "(a site whose size follows x's reads only samples of that shape): give samples of that shape")
    return PathChanged(f"backbone: its forward pass took another path than when its sites were found: {e}") if e.path else ValueError(str(e))


# The recorders of the passes running in this thread, innermost last. A thread-local (not a
# ContextVar) because torch.compile traces reads of it without a graph break.
_ACTIVE = threading.local()


def run_to_last_site(backbone: nn.Module, x, rec) -> None:
    """``backbone(x)`` while ``rec`` records the calls of every :class:`Hook` in this thread (with the recorders of
    the outer passes whose backbone holds ``rec``'s network), ended early by ``rec``'s own :class:`StopForward`.
    (No context manager: torch.compile would break its graph on one around a raise.)"""
    outer = getattr(_ACTIVE, "recs", ())
    # a pass inside an outer one is part of it only where its network is a layer of the outer backbone; any other
    # (a hook of the user's calling a network of the same backbone, of a slice or a submodule of it, of a model
    # holding it) runs modules the outer pass may run too, whose calls its recorder read as its next sites (a
    # changed path, blamed on the backbone or on x): by what they share, not by the backbone object alone
    _ACTIVE.recs = (*(r for r in outer if holds(r.net.backbone, rec.net)
                      and (torch.compiler.is_compiling() or not from_hook(r.net.backbone))), rec) \
        if outer else (rec,)
    try:
        backbone(x)
    except StopForward as e:
        if not rec.stopped:  # another network's pass, running inside this one
            raise
        if not torch.compiler.is_compiling():  # (a compiled pass shows no frames: one graph, no break for it)
            refuse_reentry(backbone, e.__traceback__)
        if torch.nn.modules.module._global_forward_hooks:  # ModuleTracker's, ModTracker's stacks: popped
            unwound(rec.net)
    except SiteSize as e:  # a site that cannot be read on this batch, said with x's shape where it differs
        raise sized(e, x, getattr(rec.net, "input_shape", None)) from None
    except RuntimeError as e:  # an error on a batch whose likely cause is x: named, as the first batch's is
        # (neuroview.core.discovery); any other (a user's own RuntimeError, a device's) as it is, for `except RuntimeError`
        found, kind = getattr(rec.net, "input_shape", None), rec.net.__dict__.get("_input_dtype")
        if isinstance(e, PathChanged) or not isinstance(x, Tensor) or out_of_memory(e) or not blames_x(x, found, kind, e):
            raise
        raise ValueError(failed(x, e, found, kind)) from e
    finally:
        _ACTIVE.recs = outer


@torch._dynamo.disable
def refuse_reentry(backbone: nn.Module, tb) -> None:
    """Refuse a pass whose stop was reached inside a call of ``backbone`` that a hook entered during it (a monitor
    running the plain model on a reference batch): that call is no network's pass, so this pass's recorder read its
    sites as its own, and the pass returned the other batch's codes without a word (review S27 R2 F1). A backbone
    whose forward calls itself (a multi-scale network) makes one pass. (Eager only: a compiled pass shows no frames.)"""
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    frames.reverse()  # innermost first, as a stack walk gives them
    calls = [i for i, g in enumerate(frames) if g.f_code is _CALL and g.f_locals.get("self") is backbone]
    hooked = [g for i, g in enumerate(frames[calls[0]:calls[-1]], calls[0]) if _from_hook(g, frames[i + 1])] if calls else []
    if len(calls) > 1 and hooked:
        raise RuntimeError(
            f"backbone: the hook {hooked[-1].f_code.co_qualname!r} called the backbone again during a NeuroView pass over "
            "it, whose recorder read that call's sites as its own (the pass would return the other batch's codes): call "
            "the network from the hook (net(x), net.codes(x): its pass is recorded apart), or run the model after the pass")


@torch._dynamo.disable
def from_hook(backbone: nn.Module) -> bool:
    """Whether the calling pass was started from a hook (a user's monitor) inside the running call of ``backbone``,
    not from its forward: a network held in ``backbone`` called so is no part of its pass (review S27 R2 F3: it
    failed with PathChanged). Eager only: a compiled pass shows no frames, and is read as a part."""
    frames, f = [], sys._getframe(1)
    while f is not None and not (f.f_code is _CALL and f.f_locals.get("self") is backbone):
        frames.append(f)
        f = f.f_back
    return f is not None and any(_from_hook(g, frames[i + 1] if i + 1 < len(frames) else f) for i, g in enumerate(frames))


def holds(backbone: nn.Module, net: nn.Module) -> bool:
    """Whether ``net`` is a module of ``backbone`` (its pass is then a part of ``backbone``'s)."""
    return any(m is net for m in backbone.modules())


def out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an out-of-memory error: torch's own class (a device's), or the CPU allocator's plain
    RuntimeError ("can't allocate memory"), which a caller's batch-halving retry catches as a RuntimeError."""
    return isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in str(e) or "out of memory" in str(e)


def _integer(dtype: torch.dtype) -> bool:
    return not (dtype.is_floating_point or dtype.is_complex)


def _token_ids(x: Tensor, kind: torch.dtype | None, e: BaseException | None) -> bool:
    """Whether ``e`` is a float ``x``'s failure in a network whose sites were found on token ids (``kind``: int64 or
    int32): an error naming indices or an embedding (torch's ``Expected tensor for argument #1 'indices'``). Not a
    uint8 image network's, nor one that says nothing of indices (a user's own edit's)."""
    return (kind in (torch.int64, torch.int32) and x.dtype.is_floating_point
            and any(w in str(e) for w in ("indices", "index", "embedding", "Long")))


def blames_x(x: Tensor, found: tuple | None, kind: torch.dtype | None = None, e: BaseException | None = None) -> bool:
    """Whether a failed pass on ``x`` is likely ``x``'s doing: an integer ``x`` (it reaches the backbone as it is),
    samples of another shape than ``found``, those the sites were found on, or a float ``x`` failing on indices where
    they were found on token ids (``kind``, :func:`_token_ids`). Not a float batch of that shape otherwise, whose error
    (a user's own RuntimeError, a cuDNN status) says nothing of x."""
    return (_integer(x.dtype) or (found is not None and tuple(x.shape[1:]) != tuple(found))
            or _token_ids(x, kind, e))


def failed(x: Tensor, e: BaseException, found: tuple | None, kind: torch.dtype | None = None) -> str:
    """The message of a backbone's pass that failed on ``x``, with what may explain it: an integer ``x`` (token ids,
    uint8 images reach the backbone as they are), a float ``x`` failing on indices where the sites were found on token
    ids (``kind``), samples of another size than those the sites were found on."""
    why = f"x: the backbone's forward pass on this batch failed ({type(e).__name__}: {e})"
    if _token_ids(x, kind, e):
        why += (f"; expected integer token ids (x of {kind}, which the sites were found on), got {x.dtype}: pass "
                f"x.long() (or x.to({kind}))")
    elif _integer(x.dtype):
        why += f"; x is {x.dtype}, which reaches the backbone as it is: convert x (x.float()) if it reads floats"
    if found is not None and tuple(x.shape[1:]) != tuple(found):
        why += f"; its samples are of shape {tuple(x.shape[1:])}, the sites were found on {tuple(found)}"
    return why


class Hook:
    """A forward (``pre=False``) or forward-pre hook that hands its calls to the running recorders.

    Recorders implement ``on(module, args, output, pre)``.
    """

    __slots__ = ("pre", "users", "__weakref__")

    def __init__(self, pre: bool):
        self.pre = pre
        self.users: weakref.WeakSet = weakref.WeakSet()  # the networks that need it, held weakly

    def __call__(self, module: nn.Module, args, output=None):
        for rec in getattr(_ACTIVE, "recs", ()):
            rec.on(module, args, output, self.pre)
        return None

    @property
    def __name__(self) -> str:  # what TorchScript reads of a hook first: its own error would say only that
        raise AttributeError("torch.jit.script: this model carries the hooks of a NeuroView network (or of one copied while "
                             "a network wrapped it), which TorchScript cannot compile; script the model as given, net.unwrap(), "
                             "once the network is done with it")

    # a copy of the backbone (deepcopy, pickle) gets the hook without its users: it copies no network; a deepcopy
    # made without them also gets back, trainable, the parameters they froze (neuroview.core.reach)
    def __deepcopy__(self, memo) -> Hook:
        from .reach import thaw_in_copy

        thaw_in_copy(self.users, memo)
        return Hook(self.pre)

    def __reduce__(self):  # pickle (torch.save): the parameters come along, one object each in the pickle
        from .reach import held

        return _unpickled, (self.pre, held(self.users))


def _unpickled(pre: bool, frozen: list) -> Hook:
    """A pickled :class:`Hook`: the parameters its networks froze come back trainable (a network pickled with
    them freezes its own again as it is restored)."""
    for p in frozen:
        p.requires_grad_(True)
    return Hook(pre)


class CodesHooks:
    """A network's ``_codes_hook`` (``(codes, maps) -> (codes, maps)`` after each pass's capture) made of hooks that
    threads :meth:`enter`: each acts on the passes of the thread that entered it only (one thread's ablation is not
    another's explain), after the hook found there (``previous``). Threads leave in any order; the last one puts that
    hook back. Each network holds its own: a deepcopy made while entered (of the network, of a copy of it) gets a twin
    with the same entries and its own copy of ``previous``; a :meth:`leave` takes its entry off every twin (the
    ``family``, held weakly), and each twin left empty puts its copy of ``previous`` back on its network. So an
    ablation of a copy is not its original's, and no copy keeps a holder (which an ensemble's batched pass reads as
    something watching its member: :func:`~neuroview.core.batched.watched`) nor anything a pickle refuses."""

    _lock = threading.Lock()

    def __init__(self, previous, owner: nn.Module, entered: tuple = (), family: weakref.WeakSet | None = None):
        self.previous, self.entered, self.owner = previous, entered, weakref.ref(owner)
        self.family = weakref.WeakSet() if family is None else family
        self.family.add(self)

    def __deepcopy__(self, memo):
        owner = self.owner()
        previous = copy.deepcopy(self.previous, memo)
        with self._lock:  # a twin for the network's copy (in the memo); what it held for anything else (or if left)
            if not self.entered or owner is None or id(owner) not in memo:
                return previous
            return CodesHooks(previous, memo[id(owner)], self.entered, self.family)

    def __copy__(self):  # (copy.copy: shared, as a shallow copy of its network shares it)
        return self

    def __reduce__(self):  # pickle (torch.save): refused while entered, else what it held (a leftover on a shallow copy)
        if self.entered:
            raise TypeError("ablate_units: a network cannot be pickled (torch.save) inside the with, which would save "
                            "its units removed; save it after the with")
        return _identity, (self.previous,)

    def __call__(self, codes, maps):
        if self.previous is not None:
            codes, maps = self.previous(codes, maps)
        for here, fn in self.entered:
            if getattr(here, "on", False):
                codes, maps = fn(codes, maps)
        return codes, maps

    @classmethod
    def enter(cls, net: nn.Module, fn) -> threading.local:
        """Add ``fn`` for this thread's passes of ``net``; returns what :meth:`leave` takes (its ``on``: set in this
        thread only, which the caller's own hooks may read)."""
        here = threading.local()
        here.on = True
        with cls._lock:
            hook = net._codes_hook
            if not isinstance(hook, cls) or hook.owner() is not net:  # (another network's: a shallow copy's, wrapped)
                hook = net._codes_hook = cls(hook, net)
            hook.entered += ((here, fn),)
        return here

    @classmethod
    def leave(cls, net: nn.Module, here: threading.local) -> None:
        with cls._lock:
            hook = net._codes_hook
            while isinstance(hook, cls) and not any(e[0] is here for e in hook.entered):
                hook = hook.previous
            for twin in list(hook.family) if isinstance(hook, cls) else ():
                if not any(e[0] is here for e in twin.entered):
                    continue
                twin.entered = tuple(e for e in twin.entered if e[0] is not here)
                if not twin.entered and (owner := twin.owner()) is not None and owner.__dict__.get("_codes_hook") is twin:
                    previous = twin.previous
                    while isinstance(previous, cls) and not previous.entered:  # a wrapped one, left meanwhile
                        previous = previous.previous
                    owner._codes_hook = previous


def _identity(x):
    """What an emptied :class:`CodesHooks` unpickles as: the hook it held."""
    return x


def _hooks_of(module: nn.Module, pre: bool) -> dict:
    return module._forward_pre_hooks if pre else module._forward_hooks


def _find(module: nn.Module, pre: bool) -> Hook | None:
    return next((h for h in _hooks_of(module, pre).values() if isinstance(h, Hook) and h.pre == pre), None)


def _remove(module: nn.Module, hook: Hook) -> None:
    for table in (module._forward_pre_hooks, module._forward_hooks):
        for key in [k for k, h in table.items() if h is hook]:
            del table[key]
            for extra in ("_forward_pre_hooks_with_kwargs", "_forward_hooks_with_kwargs", "_forward_hooks_always_called"):
                getattr(module, extra, {}).pop(key, None)


def _release(entries: list[tuple[weakref.ref, Hook]]) -> None:
    """Remove the hooks nobody uses any more (a WeakSet yields only live users)."""
    for ref, hook in entries:
        module = ref()
        if module is not None and not any(True for _ in hook.users):
            _remove(module, hook)


def install(owner: nn.Module, wanted: Iterable[tuple[nn.Module, bool]]) -> None:
    """Make ``owner`` a user of one :class:`Hook` of each ``(module, pre)`` kind, registering the
    hooks that are not there yet; they go when ``owner`` is garbage-collected or :func:`uninstall` ed."""
    entries = []
    for module, pre in dict.fromkeys(wanted):
        hook = _find(module, pre)
        if hook is None:
            hook = Hook(pre)
            (module.register_forward_pre_hook if pre else module.register_forward_hook)(hook)
        hook.users.add(owner)
        entries.append((weakref.ref(module), hook))
    # one finalizer per network: a re-install (a quantizer switch, unwrap() then a forward, discover) detaches the one
    # before and keeps what it held that is still on a module (its other hooks are gone), else one was left per install
    old = _FINALIZERS.pop(owner, None)
    kept = old.detach()[2][0] if old is not None and old.alive else []
    entries += [(ref, hook) for ref, hook in kept if (m := ref()) is not None and _find(m, hook.pre) is hook
                and not any(hook is h for _, h in entries)]
    fin = weakref.finalize(owner, _release, entries)
    fin.atexit = False
    _FINALIZERS[owner] = fin


#: each network's one finalizer (held weakly: a network's deepcopy or pickle carries none)
_FINALIZERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def uninstall(owner: nn.Module, backbone: nn.Module) -> None:
    """Drop ``owner`` from the hooks on ``backbone``; those left without users are removed."""
    for module in backbone.modules():
        for pre in (True, False):
            hook = _find(module, pre)
            if hook is not None:
                hook.users.discard(owner)
                _release([(weakref.ref(module), hook)])


def keep_unwrapped(net: nn.Module):
    """The NeuroView-CNNs in ``net`` that their user unwrapped (``unwrap()``: sites found, no hooks): the
    returned function takes the hooks off them again, after a pass that promised to leave ``net`` as it was."""
    unwrapped = [m for m in net.modules() if getattr(m, "_installed", True) is False and getattr(m, "sites", None)]

    def again() -> None:
        for m in unwrapped:
            uninstall(m, m.backbone)
            m._installed = False
    return again
