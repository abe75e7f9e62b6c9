"""What a later pass runs that the passes finding a NeuroView-CNN's sites did not: said, or taken in.

The sites and what the decision reaches (:mod:`neuroview.core.reach`) are found on the first batch's first samples,
in eval mode. A data-dependent path (a mixture of experts routed by content, a block run for hard inputs only) or a
branch run only while training runs modules there that those passes never saw run, or never saw reach the codes:

- an activation module that is no site: the decision would leave its units out, unsaid. A pass that runs one
  before its stop point is refused by name: in eval mode, or after the last site, at once; while training before
  the last site (where an auxiliary head's activations run outside the decision) where its output reaches the codes.
- a module whose parameters were frozen as unreached: they would never train. The first pass with gradients that
  runs it before the stop point lets them ask for gradients and reads the codes' autograd graph: reached, they
  train from then on (with a warning); not reached (an auxiliary head), they stay frozen and the module is not
  looked at again.

The watched modules get the network's own forward hooks (:mod:`neuroview.core.hooks`); one set lookup per hooked
call, a graph walk only on a pass that runs one of them.

What was frozen as unreached can also be made trainable again by the user (``requires_grad_(True)``, a new head put
in place, a backbone frozen at the first batch and unfrozen later): plain DDP then fails at its second step.
:func:`watch_trainable` names those parameters on the next training pass (:func:`~neuroview.core.reach.
warn_unreached_trainable`); per pass it checks a few flags and object identities against what its last full look saw.

Imports only torch and the core modules below it.
"""

from __future__ import annotations

import warnings
import weakref

import torch
from torch import Tensor, nn

from .edits import added
from .hooks import run_to_last_site
from .reach import current, reached_later, warn_unreached_trainable
from .reach_graph import graph
from .recorder import Recorder

#: each network -> the watched modules found not to reach its codes (looked at once)
_CLEARED: "weakref.WeakKeyDictionary[nn.Module, set[str]]" = weakref.WeakKeyDictionary()


def note_running(backbone: nn.Module, ran: set[str]):
    """Add to ``ran`` the name of each module of ``backbone`` holding parameters as it runs, until the returned
    function is called (around the passes that find the sites)."""
    handles = [m.register_forward_pre_hook(lambda *_, n=n: ran.add(n)) for n, m in backbone.named_modules()
               if n and next(m.parameters(recurse=False), None) is not None]
    return lambda: [h.remove() for h in handles]


def watch_hooks(net: nn.Module) -> list[tuple[nn.Module, bool]]:
    """Note on ``net`` the modules to watch (its target modules that never ran, those holding its :attr:`frozen`
    parameters that never ran: not its own head, run after the last site) and return the ``(module, pre)`` hooks
    they need."""
    called = {s.module for s in net.sites} | {m for m, _ in net.not_sites}
    watched = {m: (n, ()) for n, m, _ in net._targets if n not in called}
    watched.update((m, (n, ())) for m, n in (net.__dict__.get("_added") or {}).items())  # added since: neuroview.core.edits
    owned: dict[str, list[str]] = {}
    ran = net.__dict__.get("_ran")  # (None: a network pickled before it was kept)
    for p in net.frozen if ran is not None else ():
        owner = p.rpartition(".")[0]
        if owner and owner not in ran:  # (the backbone's own parameters: its pre-hook would run before everything)
            owned.setdefault(owner, []).append(p)
    for owner, params in owned.items():
        m = net.backbone.get_submodule(owner)
        watched.setdefault(m, (owner, tuple(params)))
    net._watch = watched
    _CLEARED[net] = set()
    return [(m, True) for m in watched] + [(m, False) for m, (_, params) in watched.items() if not params]


def unseen(name: str, training: bool = False) -> str:
    how = ("a training-only path, which sites found in eval mode never take: pass layers=[...] naming the sites to "
           "read, this activation among them" if training else "find the sites on a batch that takes this path "
           "(example_input=x), or pass layers=[...] naming the sites to read")
    return (f"x: the activation {name!r} runs on this batch but did not when the sites were found (on the first "
            f"batch's first samples, in eval mode), so it is no site and the decision would leave its units out; {how}")


class PathRecorder(Recorder):
    """A :class:`Recorder` that also looks at the watched modules running before the pass's stop point."""

    def __init__(self, net, maps: bool, batch: int):
        super().__init__(net, maps, batch)
        quiet = torch.compiler.is_compiling() or torch.compiler.is_exporting()
        self.watch = None if quiet else net.__dict__.get("_watch")
        self.passed = False
        self.lifted: dict[str, tuple[tuple[str, ...], list[Tensor]]] = {}  # module -> (names, params made to ask)
        self.outputs: dict[str, list] = {}  # activation -> the grad_fn of each of its outputs

    def on(self, module: nn.Module, args, output, pre: bool) -> None:
        if self.watch and not self.passed:
            if pre and module in self.net._stop_at and len(self.codes) == len(self.net.sites):
                self.passed = True
            elif module in self.watch and self.watch[module][0] not in _CLEARED.get(self.net, ()):
                self._ran(module, output, pre, *self.watch[module])
        super().on(module, args, output, pre)

    def _ran(self, module: nn.Module, output, pre: bool, name: str, params: tuple[str, ...]) -> None:
        if pre and module in (self.net.__dict__.get("_added") or ()):  # added to the backbone since (neuroview.core.edits)
            raise added(self.net, name, module)
        if not params:  # an activation that is no site
            # the sites were found in eval mode: this path is another. While training, an auxiliary head's may run:
            # after the last site it feeds no code; before it, judged by the codes' graph (below)
            if pre and not module.training:
                raise ValueError(unseen(name))
            if len(self.codes) == len(self.net.sites):  # every code read: a training-only head's activation, after
                return  # the decision (a projector, deep supervision); in eval mode it is refused above
            if pre and torch.is_grad_enabled():
                self.outputs.setdefault(name, [])
            elif not pre and name in self.outputs and isinstance(output, Tensor) and output.grad_fn is not None:
                self.outputs[name].append(output.grad_fn)
        elif pre and torch.is_grad_enabled() and name not in self.lifted:
            ps = [p for n in params for p in current(self.net.backbone, n)  # where pruning or parametrize moved it
                  if not p.requires_grad and not p.is_inference()]  # (a bare lookup by name: torch's AttributeError)
            for p in ps:  # for this pass's graph to show whether the codes reach them
                p.requires_grad_(True)
            self.lifted[name] = (params, ps)

    def drop(self) -> None:
        """Freeze again what this pass made ask for gradients."""
        for _, ps in self.lifted.values():
            for p in ps:
                p.requires_grad_(False)
        self.lifted = {}


def run(net: nn.Module, x: Tensor, rec: PathRecorder) -> None:
    """``run_to_last_site`` with ``rec``, then judge what it saw of the watched modules."""
    try:
        run_to_last_site(net.backbone, x, rec)
        if (rec.lifted or rec.outputs) and len(rec.codes) == len(net.sites):  # (else the caller says the path changed)
            _settle(net, rec)
    finally:
        rec.drop()


def _settle(net: nn.Module, rec: PathRecorder) -> None:
    leaves, nodes = graph([c for c in rec.codes if c.grad_fn is not None])
    cleared = _CLEARED.setdefault(net, set())
    for name, fns in rec.outputs.items():
        if any(f in nodes for f in fns):
            raise ValueError(unseen(name, training=True))
        cleared.update([name] if fns else [])  # (an output without gradients cannot tell)
    reached = {name: names for name, (names, ps) in rec.lifted.items() if any(id(p) in leaves for p in ps)}
    cleared.update(name for name in rec.lifted if name not in reached)
    if reached:
        rec.lifted = {k: v for k, v in rec.lifted.items() if k not in reached}
        reached_later(net, tuple(n for names in reached.values() for n in names))
        warnings.warn(f"wrap: {list(reached)} run on this batch but did not reach the decision when the sites were "
                      "found (on the first batch's first samples, in eval mode), and were frozen as unreached; here "
                      "they reach it, so they train from now on (net.unreached no longer lists them). An optimizer or "
                      "DDP made with only the parameters that required grad does not hold them: make it again",
                      stacklevel=5)


#: each network -> (its frozen and kept-frozen names, ``(dict, key, object)`` that stood, parameters, their
#: ``requires_grad``) as :func:`watch_trainable` last looked in full
_SEEN: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def watch_trainable(net: nn.Module) -> None:
    """On a training pass with gradients, name the unreached parameters of ``net`` that require grad again (plain DDP
    fails on them at its second step), once per set: :func:`~neuroview.core.reach.warn_unreached_trainable`. That full
    look runs only where something it read changed since the last one (a flag, a module or parameter put in another's
    place, the names): no host sync, no repeated cost once said."""
    if not net.training or not torch.is_grad_enabled():
        return
    names = (net.__dict__.get("frozen"), net.__dict__.get("_kept_frozen"))
    if not (names[0] or names[1]) or torch.compiler.is_compiling() or torch.compiler.is_exporting():
        return
    seen = _SEEN.get(net)
    if (seen is not None and seen[0][0] is names[0] and seen[0][1] is names[1]
            and all(d.get(k) is v for d, k, v in seen[1]) and [p.requires_grad for p in seen[2]] == seen[3]):
        return
    warn_unreached_trainable(net)
    stood, params = _stood(net, (names[0] or ()) + (names[1] or ()))
    _SEEN[net] = (names, stood, params, [p.requires_grad for p in params])


def _stood(net: nn.Module, names: tuple[str, ...]) -> tuple[list[tuple[dict, str, object]], list[Tensor]]:
    """What the full look read for ``names``: each module on the way to their owners and what stands under each name
    (``(dict, key, object)``), and the parameters whose flags it read."""
    stood: dict[tuple[int, str], tuple[dict, str, object]] = {}
    params: dict[int, Tensor] = {}
    modules = net.__dict__["_modules"]
    backbone = modules.get("backbone")
    stood[id(modules), "backbone"] = (modules, "backbone", backbone)
    for name in names if isinstance(backbone, nn.Module) else ():
        *path, attr = name.split(".")
        module = backbone
        for part in path:
            child = module._modules.get(part)
            stood[id(module._modules), part] = (module._modules, part, child)
            if not isinstance(child, nn.Module):
                break
            module = child
        else:
            for key in (attr, "parametrizations"):
                d = module._modules if key == "parametrizations" else module._parameters
                stood[id(d), key] = (d, key, d.get(key))
            for p in current(backbone, name) or module.parameters():  # none by that name: another kind of module
                params[id(p)] = p  # put in its place (a deeper new head), all of whose parameters are read
    return list(stood.values()), list(params.values())
