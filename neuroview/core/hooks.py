"""The hooks a NeuroView-CNN keeps on its backbone: one per site module, one where the pass stops.

A :class:`Hook` holds nothing but its kind (pre or post): it hands each call to the recorders of
the passes running in the calling thread (:func:`run_to_last_site`), and each recorder looks the module
up in its own plan. So the backbone never keeps a wrapper alive, two wrappers of one backbone
share one set of hooks, two threads running one network record apart, and a deepcopy of the
backbone copies no wrapper (its hooks come along empty, and the parameters the wrappers froze come
back trainable, as ``unwrap()`` gives them; so does a pickle, ``torch.save(model)``). A hook knows its users weakly; the last
one to go (deleted, or ``unwrap()``) removes it. A pass over a backbone that an outer pass in the thread is running
(a hook of the user's calling the network again) records apart; a network's codes hook (an ablation's,
:class:`CodesHooks`) acts in the thread that set it.

Imports only torch (and :mod:`.reach` when a backbone is copied).
"""

from __future__ import annotations

import threading
import weakref
from typing import Iterable

import torch
from torch import Tensor, nn


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


# The recorders of the passes running in this thread, innermost last. A thread-local (not a
# ContextVar) because torch.compile traces reads of it without a graph break.
_ACTIVE = threading.local()


def run_to_last_site(backbone: nn.Module, x, rec) -> None:
    """``backbone(x)`` while ``rec`` records the calls of every :class:`Hook` in this thread (with the outer
    passes' recorders, unless one of those runs ``backbone`` itself), ended early by ``rec``'s own
    :class:`StopForward`. (No context manager: torch.compile would break its graph on one around a raise.)"""
    outer = getattr(_ACTIVE, "recs", ())
    # a pass over a backbone that an outer pass is running (a hook of the user's on it calls a network of it
    # again): its calls are its own, and the outer recorders read them as their next sites (a changed path)
    reentered = any(r.net.backbone is backbone for r in outer)
    _ACTIVE.recs = (rec,) if reentered else (*outer, rec)
    try:
        backbone(x)
    except StopForward:
        if not rec.stopped:  # another network's pass, running inside this one
            raise
    except RuntimeError as e:  # an error on a batch whose likely cause is x: named, as the first batch's is
        # (neuroview.core.discovery); any other (a user's own RuntimeError, a device's) as it is, for `except RuntimeError`
        found = getattr(rec.net, "input_shape", None)
        if isinstance(e, PathChanged) or not isinstance(x, Tensor) or out_of_memory(e) or not blames_x(x, found):
            raise
        raise ValueError(failed(x, e, found)) from e
    finally:
        _ACTIVE.recs = outer


def out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an out-of-memory error: torch's own class (a device's), or the CPU allocator's plain
    RuntimeError ("can't allocate memory"), which a caller's batch-halving retry catches as a RuntimeError."""
    return isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in str(e) or "out of memory" in str(e)


def blames_x(x: Tensor, found: tuple | None) -> bool:
    """Whether a failed pass on ``x`` is likely ``x``'s doing: an integer ``x`` (it reaches the backbone as it is), or
    samples of another shape than ``found``, those the sites were found on. Not a float batch of that shape, whose
    error (a user's own RuntimeError, a cuDNN status) says nothing of x."""
    return not (x.is_floating_point() or x.is_complex()) or (found is not None and tuple(x.shape[1:]) != tuple(found))


def failed(x: Tensor, e: BaseException, found: tuple | None) -> str:
    """The message of a backbone's pass that failed on ``x``, with what may explain it: an integer ``x`` (token ids,
    uint8 images reach the backbone as they are), samples of another size than those the sites were found on."""
    why = f"x: the backbone's forward pass on this batch failed ({type(e).__name__}: {e})"
    if not (x.is_floating_point() or x.is_complex()):
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
    another's explain), after the hook found there. Threads leave in any order; the last one puts that hook back."""

    _lock = threading.Lock()

    def __init__(self, previous):
        self.previous, self.entered = previous, ()

    def __deepcopy__(self, memo) -> CodesHooks:
        return self  # shared by a copy, as the ablation's functions on the backbone are (a thread-local has no copy)

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
            if not isinstance(net._codes_hook, cls):
                net._codes_hook = cls(net._codes_hook)
            net._codes_hook.entered += ((here, fn),)
        return here

    @classmethod
    def leave(cls, net: nn.Module, here: threading.local) -> None:
        with cls._lock:
            hook = net._codes_hook
            if isinstance(hook, cls):
                hook.entered = tuple(e for e in hook.entered if e[0] is not here)
                if not hook.entered:
                    net._codes_hook = hook.previous


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
    weakref.finalize(owner, _release, entries).atexit = False


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
