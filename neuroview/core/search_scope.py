"""Which calls the site search (:mod:`neuroview.core.discovery`) reads: the searching thread's own pass of the backbone.

- A pass that enters the backbone again inside the searched one is no part of it: a user's forward hook (or pre-hook)
  that calls a NeuroView network of the backbone, a monitor scoring a reference batch, or the lazy network being
  searched itself, whose first batch then finds its sites inside the hook. Its calls are skipped, as later passes
  record such a pass apart (:func:`neuroview.core.hooks.run_to_last_site`); they were read as the search's own ("the
  backbone calls other modules for 3 samples than for 2", "the activation '3' runs inside the activation '1'").
- So is a pass a network runs for itself inside the searched one (:func:`own_pass`): a lazy NeuroView network held
  as a layer finds its sites (and what its decision reaches) on its first batch, inside the outer wrap's first
  search pass and not in the second ("the backbone calls other modules for 3 samples than for 2").
- Another thread's calls are skipped too: another thread running a network of the same backbone meanwhile is no
  finding. But a target module called from another thread that runs no pass of the backbone is counted: a backbone
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

    def __init__(self, backbone: nn.Module):
        self.backbone, self.thread = backbone, threading.get_ident()
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

    def _depth(self) -> int:
        depth = getattr(self.local, "depth", 0)
        if depth > 1:  # a call left by a BaseException (StopForward, Ctrl-C) skips the forward hook: count the frames
            depth, f = 0, sys._getframe(2)
            while f is not None:
                depth += f.f_code is _CALL and f.f_locals.get("self") is self.backbone
                f = f.f_back
            self.local.depth = depth
        return depth

    def ours(self) -> bool:
        """Whether the calling code is the searched pass: in the searching thread, not inside a second pass."""
        return threading.get_ident() == self.thread and getattr(_OWN, "level", 0) == self.level and self._depth() <= 1

    def only(self, hook, name: str | None = None):
        """``hook``, run for the searched pass only; calls of the target module ``name`` from another thread that runs
        no pass of the backbone are counted."""
        def searched(*args):
            if self.ours():
                return hook(*args)
            if name is not None and threading.get_ident() != self.thread and not getattr(self.local, "depth", 0):
                self.elsewhere[name] = self.elsewhere.get(name, 0) + 1
            return None
        return searched


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
