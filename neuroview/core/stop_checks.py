"""What the early stop of a NeuroView-CNN's pass skips, checked where it can matter (:func:`check_stop`), and torch's
global hooks handed the modules it unwound (:func:`unwound`).

The pass ends by raising :class:`~neuroview.core.hooks.StopForward` at the module where the decision's pass ends (the
network's ``_stop``, a dotted name in its backbone), which unwinds ``net.backbone``, the modules holding that module,
and the module itself: the **stop path**. It is found once and kept in ``net.__dict__["_stop_check"]``, then checked
on every pass by identity, one ``_modules`` read per step (an FSDP unit an ``auto_wrap_policy`` put inside the
backbone, a module replaced: the path is found again), so a check never reads a path that is no longer there.

Imports only torch and :mod:`.reach` (the first frame outside the package, which the warning names).
"""

from __future__ import annotations

import warnings
from functools import partial

import torch
from torch import nn

from .reach import _user_level


class _Seen:
    """A network's stop path as last found, and what it said of it."""

    __slots__ = ("backbone", "stop", "stop_at", "edges", "path", "names", "stopping", "fsdp", "tables", "sizes", "said")

    def __init__(self, net: nn.Module, backbone: nn.Module, said: frozenset):
        self.backbone, self.stop, self.stop_at = backbone, net._stop, net._stop_at
        # the pass stops there only where the module found is the one carrying the network's stop hook (replaced since:
        # the pass runs whole, and skips nothing)
        target = self.stop_at[0] if self.stop_at else None
        self.path, self.names, self.edges, self.stopping = _stop_path(backbone, net._stop, target)
        self.fsdp = next((f"net.backbone.{n}".rstrip(".") for m, n in zip(self.path, self.names)
                          if type(m).__name__ == "FullyShardedDataParallel"), None)
        self.tables = [m._forward_hooks for m in self.path] + [self.path[-1]._forward_pre_hooks]  # sizes compared
        self.sizes, self.said = None, said


def _current(net: nn.Module) -> _Seen:
    """``net``'s stop path, found again where a module on it is no longer the one found (a few dict reads a pass)."""
    seen, backbone = net.__dict__.get("_stop_check"), net._modules.get("backbone")  # (not net.backbone: 0.8 us)
    if type(seen) is _Seen and seen.backbone is backbone and seen.stop_at is net._stop_at and seen.stop == net._stop:
        for holder, key, child in seen.edges:
            if holder._modules.get(key) is not child:
                break
        else:
            return seen
    seen = net.__dict__["_stop_check"] = _Seen(net, backbone, seen.said if type(seen) is _Seen else frozenset())
    return seen


def check_stop(net: nn.Module, stops: bool) -> str | None:
    """What the early stop at ``net._stop`` skips, checked on every pass; the FSDP refusal for a backward (the caller
    raises it there: :func:`refuse_backward`), or None.

    :class:`~neuroview.core.hooks.StopForward` unwinds the stop path, so its modules' forward hooks never run, not even
    ``always_call`` ones (torch runs those on an ``Exception`` only); nor do forward-pre hooks registered on the stop
    module after neuroview's. The pass still stops (``stops``): running the rest changed what was measured (a backbone
    head that takes one input size only, FLOPs never spent, a frozen head's BatchNorm statistics moved). Instead a
    user's such hooks are named once per network and module, in a warning at the user's line that names them and the
    backbone. torch's global hooks are not named: those that take a call without output (registered ``always_call``,
    ``ModuleTracker``'s) are handed the modules unwound (:func:`unwound`).

    An FSDP unit (``FullyShardedDataParallel``) on the path is refused by name where a backward can follow (grad
    enabled): the decision never reads its output, on which FSDP hangs its backward hooks, so ``backward()`` failed
    deep inside FSDP whether the pass stopped or not. In training mode at once; in eval mode (a saliency map, a
    fine-tune with frozen BatchNorm) at the backward, so that inference without ``no_grad`` still works."""
    seen = _current(net)
    if seen.fsdp is not None and torch.is_grad_enabled():
        why = (f"FSDP: {seen.fsdp} is an FSDP unit, and it holds the module where the decision's pass ends "
               f"({seen.stop!r}): the decision never reads that unit's output, on which FSDP runs its backward, so a "
               "backward through it fails (in eval mode too: a saliency map, a fine-tune); wrap the whole network as "
               "one unit, or use an auto_wrap_policy that wraps only modules inside the backbone that do not hold "
               f"{seen.stop!r} (inference through it works)")
        if net.training:
            raise TypeError(why)
        return why
    if not (stops and seen.stopping):
        return None
    now = list(map(len, seen.tables))  # (the path's forward hooks, the stop module's pre-hooks)
    if now != seen.sizes:
        seen.sizes = now
        _warn(net, seen)
    return None


def _warn(net: nn.Module, seen: _Seen) -> None:
    """Name the user's hooks the stop skips, once per network and module, at the user's line."""
    skipped = {k: v for k, v in _skipped(seen.path, seen.names).items() if k not in seen.said}
    if not skipped:
        return
    seen.said = seen.said | set(skipped)
    hooks = ", ".join(dict.fromkeys(h for names in skipped.values() for h in names))
    warnings.warn(f"forward hooks: those on {', '.join(skipped)} do not run ({hooks}; net.backbone: "
                  f"{type(seen.backbone).__name__}): the pass stops at net.backbone.{seen.stop} before the backbone's "
                  "end (its own head is never computed; stop_early=True); a forward-pre hook, or a hook on a module "
                  "that runs before the stop, runs; build with stop_early=False to run the backbone whole",
                  stacklevel=_user_level())


def refuse_backward(t: torch.Tensor, why: str) -> None:
    """Make a backward through ``t`` (a site's codes) raise ``TypeError(why)`` before it reaches the backbone."""
    if t.requires_grad:
        t.register_hook(partial(_refuse, why))


def _refuse(why: str, grad):
    raise TypeError(why)


def unwound(net: nn.Module) -> None:
    """Hand the modules a stop unwound (innermost first) to torch's global forward hooks that take a call without
    output: those registered ``always_call`` (torch.distributed's ``ModTracker``: ``MemTracker``, ``RuntimeEstimator``,
    ``SACEstimator``), which torch runs with ``output=None`` on an ``Exception``, and ``ModuleTracker``'s
    (``FlopCounterMode``'s), as if they returned: else their stacks kept them, and what follows the pass (the network's
    own head) was booked to a module that never ran. Not the others: they would read an output that is not there."""
    g = torch.nn.modules.module
    hooks = [(k, h) for k, h in g._global_forward_hooks.items() if k in g._global_forward_hooks_always_called
             or type(getattr(h, "__self__", None)).__name__ == "ModuleTracker"]
    for m in reversed(_current(net).path if hooks else ()):
        for k, h in hooks:
            try:
                h(m, (), {}, None) if k in g._global_forward_hooks_with_kwargs else h(m, (), None)
            except Exception as e:  # as torch does for an always_call hook on a failed forward
                warnings.warn("global module forward hook with ``always_call=True`` raised an exception that was "
                              f"silenced as the pass stopped early at {type(m).__name__}: {e}", stacklevel=2)


def _stop_path(backbone: nn.Module, stop: str, target: nn.Module | None) -> tuple[list, list, list, bool]:
    """The modules a stop at ``stop`` unwinds (the backbone first), their names (a wrapper's is the module's it wraps),
    the ``(holder, key, module)`` steps that reach them (``module`` None where none is), and whether it reached
    ``target``, the module carrying the stop hook (replaced since: the pass runs whole)."""
    path, names, edges, m, name = [backbone], [""], [], backbone, ""
    for part in stop.split("."):
        m = _unwrap(m, lambda w: part in w._modules, path, names, edges, name) or m
        child = m._modules.get(part)
        edges.append((m, part, child))
        if child is None:
            return path, names, edges, False
        name = f"{name}.{part}".lstrip(".")
        path.append(child)
        names.append(name)
        m = child
    m = _unwrap(m, lambda w: w is target, path, names, edges, name) or m  # a wrapper put around the stop module itself
    return path, names, edges, m is target


def _unwrap(m: nn.Module, found, path: list, names: list, edges: list, name: str) -> nn.Module | None:
    """The module inside the wrappers around ``m`` (FSDP's, checkpoint_wrapper's, torch.compile's: each has one child,
    which runs) that is ``found``, the wrappers and it put on ``path``; None (nothing put) where none is."""
    chain, w = [], m
    while not found(w) and len(w._modules) == 1:
        key, inner = next(iter(w._modules.items()))
        if not isinstance(inner, nn.Module):
            return None
        chain.append((w, key, inner))
        w = inner
    if not chain or not found(w):
        return None
    edges.extend(chain)
    path.extend(inner for _, _, inner in chain)
    names.extend(name for _ in chain)
    return w


def _ours(h) -> bool:
    """Whether a hook is neuroview's own (a :class:`Hook`, an ablation's, a search's) or ``fully_shard``'s."""
    f = getattr(h, "func", h)  # (a functools.partial)
    return (getattr(f, "__module__", None) or "").startswith("neuroview.") or type(
        getattr(f, "__self__", None)).__name__ == "FSDPState"


def _name(h) -> str:
    f = getattr(h, "func", h)  # (a functools.partial)
    return getattr(f, "__name__", None) or type(f).__name__


def _skipped(path: list, names: list) -> dict[str, list[str]]:
    """The users' hooks the stop skips, by module: forward hooks on every module of ``path``, and forward-pre hooks on
    the stop module (the last of ``path``) registered after neuroview's, which raises the stop."""
    out: dict[str, list[str]] = {}
    for m, n in zip(path, names):
        theirs = [_name(h) for h in m._forward_hooks.values() if not _ours(h)]
        if theirs:
            out.setdefault(f"net.backbone.{n}".rstrip("."), []).extend(theirs)
    pre = list(path[-1]._forward_pre_hooks.values())
    at = next((i for i, h in enumerate(pre) if type(h).__module__ == "neuroview.core.hooks" and getattr(h, "pre", 0) is True),
              len(pre))
    theirs = [_name(h) for h in pre[at + 1:] if not _ours(h)]
    if theirs:
        out[f"net.backbone.{names[-1]} (forward-pre hooks registered after the network's)"] = theirs
    return out
