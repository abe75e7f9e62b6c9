"""Which calls the site search (:mod:`neuroview.core.discovery`) reads: the searching thread's own pass of the backbone.

- A pass that enters the backbone again from a hook inside the searched one is no part of it: a user's forward hook (or pre-hook)
  that calls a NeuroView network of the backbone, a monitor scoring a reference batch, or the lazy network being
  searched itself, whose first batch then finds its sites inside the hook. Its calls are skipped, as later passes
  record such a pass apart (:func:`neuroview.core.hooks.run_to_last_site`); they were read as the search's own ("the
  backbone calls other modules for 3 samples than for 2", "the activation '3' runs inside the activation '1'"). A
  backbone whose forward calls the backbone itself (a multi-scale network: ``self(avg_pool2d(x))``) makes one pass,
  and later passes read its inner call's sites: they are the search's too.
- So is a pass a network runs for itself inside the searched one (:func:`own_pass`): a lazy NeuroView network held
  as a layer finds its sites (and what its decision reaches) on its first batch, inside the outer wrap's first
  search pass and not in the second ("the backbone calls other modules for 3 samples than for 2").
- Another thread's calls are skipped too: another thread running a network of the same backbone meanwhile is no
  finding, and so is one running any NeuroView network's pass (a network built on a part of the backbone: its
  recorders read those calls). But a target module called from another thread that runs no such pass is counted: a backbone
  that runs branches on a thread pool. Later passes read sites in the calling thread only (their recorders are the
  calling thread's), so their units were left out without a word; :func:`refuse_elsewhere` names them.

Imports only torch.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

from torch import nn

_CALL = nn.Module._call_impl.__code__  # the frame of each module call (its hooks run inside it)
# the frames that call a module's hooks and its forward: the call's own, and (torch >= 2.1 with hooks) its closure
_CALLERS = (_CALL, *(c for c in _CALL.co_consts if getattr(c, "co_name", "") == "inner"))
_OWN = threading.local()  # per thread: how many passes a network runs for itself (site searches, reach passes) run


@contextmanager
def own_pass():
    """Around a pass a network runs for itself, not for its caller (a site search's, the reach pass): no site search
    running in the thread reads its calls but its own."""
    _OWN.level = getattr(_OWN, "level", 0) + 1
    try:
        yield
    finally:
        _OWN.level -= 1


class Scope:
    """The searching thread's own pass of ``backbone``: :meth:`only` wraps the search's hooks; :meth:`hooks` are the
    backbone's own (registered after the search's others, so that its forward hook ends a pass after theirs)."""

    def __init__(self, backbone: nn.Module, passes=tuple):
        """``passes()``: the network passes running in the calling thread (:data:`neuroview.core.hooks._ACTIVE`'s)."""
        self.backbone, self.thread, self.passes = backbone, threading.get_ident(), passes
        self.level = getattr(_OWN, "level", 0) + 1  # the own_pass its pass runs in
        self.local = threading.local()  # per thread: how many calls of the backbone are running (at least)
        self.elsewhere: dict[str, int] = {}  # target module -> its calls from other threads running no pass of it

    def hooks(self, backbone: nn.Module) -> list:
        return [backbone.register_forward_pre_hook(self._enter, prepend=True),  # ahead of a user's pre-hook on it
                backbone.register_forward_hook(self._leave, always_call=True)]

    def _enter(self, module, args) -> None:
        self.local.depth = getattr(self.local, "depth", 0) + 1

    def _leave(self, module, args, output) -> None:
        self.local.depth = max(getattr(self.local, "depth", 0) - 1, 0)

    def _hooked(self) -> bool:
        """Whether a call of the backbone running inside the searched one was entered from a hook (a user's hook, a
        global module hook) rather than from a forward: its pass is another one. A backbone whose forward calls itself
        (a multi-scale network running ``self(avg_pool2d(x))``) makes one pass. Counted on the frames: a call left by
        a BaseException (StopForward, Ctrl-C) skips the forward hook that counts it."""
        frames, f = [], sys._getframe(1)
        while f is not None:
            frames.append(f)
            f = f.f_back
        calls = [i for i, g in enumerate(frames) if g.f_code is _CALL and g.f_locals.get("self") is self.backbone]
        self.local.depth = len(calls)
        return len(calls) > 1 and any(_from_hook(g, frames[i + 1]) for i, g in enumerate(frames[calls[0]:calls[-1]], calls[0]))

    def ours(self) -> bool:
        """Whether the calling code is the searched pass: in the searching thread, not inside a second pass (a
        network's own search, or one entered from a hook)."""
        if threading.get_ident() != self.thread or getattr(_OWN, "level", 0) != self.level:
            return False
        return getattr(self.local, "depth", 0) <= 1 or not self._hooked()

    def only(self, hook, name: str | None = None):
        """``hook``, run for the searched pass only; calls of the target module ``name`` from another thread that runs
        no pass of the backbone are counted."""
        def searched(*args):
            if self.ours():
                return hook(*args)
            if name is not None and threading.get_ident() != self.thread and not getattr(self.local, "depth", 0) \
                    and not self.passes() and not getattr(_OWN, "level", 0):  # no network's pass there
                self.elsewhere[name] = self.elsewhere.get(name, 0) + 1
            return None
        return searched


def _from_hook(g, caller) -> bool:
    """Whether the frame ``g``, called from ``caller``, is a hook that a module's call runs (not its forward)."""
    if caller.f_code not in _CALLERS or g.f_code in _CALLERS:
        return False
    forward = caller.f_locals.get("forward_call")
    code = getattr(forward, "__code__", None) or getattr(getattr(forward, "__func__", None), "__code__", None)
    return code is not None and g.f_code is not code


def refuse_elsewhere(small: Scope, large: Scope, targets) -> None:
    """Refuse target modules called from other threads during both passes of the search (on 2 and on 3 samples): the
    backbone's own branches (one other thread's passing call is not counted twice), whose units later passes could
    not read."""
    both = [(n, fi) for n, _, fi in targets if n in small.elsewhere and n in large.elsewhere]
    if both:
        what = "activation" if all(fi for _, fi in both) else "module"
        raise ValueError(
            f"backbone: the {what}{'s' * (len(both) > 1)} {[n for n, _ in both]} ran on another thread during the "
            "backbone's pass on the first batch (branches run on a thread pool, or nn.DataParallel's replicas: wrap "
            "the module it holds); NeuroView reads sites in the calling thread only, so their units would be left out "
            "of the decision: run those branches in the calling thread, or pass layers=[...] naming sites that run in it")
