"""Which modules of a backbone a NeuroView-CNN hooks: every activation module, or the modules ``layers=[...]`` names.

``layers=[...]`` takes module names (every call of the module is a site) and the site names the network reports for
the calls of a module called at several places (``'act:1'``, ``'act::1'`` where ``'act:1'`` names another module; also
``'act:0'`` for the first call, whose site is ``'act'``): only the calls so named are sites. A module's own name beside
one of its site names is its first call.

Said by name rather than failing later: a TorchScript module in the backbone (no hooks can be registered on it), a
name that is one module registered twice (``named_modules()`` lists it once, under its first name).

Imports only torch and the core modules below it.
"""

from __future__ import annotations

import difflib
import re
import warnings
from typing import Sequence

import torch
from torch import nn

from .activations import is_activation, looks_like_activation
from .reach import _user_level


def refuse_torchscript(backbone: nn.Module) -> None:
    """Refuse a backbone that is, or holds, a TorchScript module (``torch.jit.script``/``trace``/``load``): hooks
    cannot be registered on one, and its compiled forward calls no activation module a hook would see."""
    found: list[str] = []
    for name, m in backbone.named_modules():
        if isinstance(m, torch.jit.ScriptModule) and not any(name.startswith(f"{o}.") for o in found):
            found.append(name)
        if "" in found:  # the whole model: its submodules say nothing more
            break
    if found:
        what = "it is" if "" in found else f"{found[:3]} {'is' if len(found) == 1 else 'are'}"
        raise TypeError(f"backbone: {what} a TorchScript module (torch.jit.script, torch.jit.trace or torch.jit.load), "
                        "on which NeuroView cannot register the hooks that read its sites: wrap the eager model (the "
                        "nn.Module before scripting or tracing)")


def find_targets(backbone: nn.Module, layers: Sequence[str] | None):
    """``(targets, left_out)``: ``(name, module, is_activation)`` of each module to hook, and ``(name, class)`` of the
    activation-like modules left out (not registered)."""
    named = dict(backbone.named_modules())
    if layers is None:
        found = _outermost([(n, m, True) for n, m in named.items() if is_activation(m)], backbone)
        left = [(n, type(m).__name__) for n, m in named.items() if looks_like_activation(m)]
        if not found:
            raise ValueError(
                "backbone: found no activation module (see neuroview.core.activations; left out: "
                f"{left or 'none'}). If it calls functional activations such as F.relu, replace them by "
                "modules (nn.ReLU()); register your own class with nv.register_activation(MyAct, "
                "breakpoints=(0.0,)); or pass layers=[...] naming the modules whose outputs to quantize."
            )
        if left:
            warnings.warn(f"wrap: activation-like modules left out (not registered): {left}; "
                          "nv.register_activation(cls) makes a class a site", stacklevel=_user_level())
        return found, left
    if isinstance(layers, str) or not len(layers):
        raise ValueError(f"layers: expected a non-empty list of module (or site) names, got {layers!r}")
    out, calls = Targets(), {}
    for name in dict.fromkeys(layers):  # a name given twice is one site (it hooked the module twice)
        module, site = (name, None) if name in named else _call_of(named, name)
        if module is None:
            raise ValueError(f"layers: no module named {name!r} in backbone{_hint(backbone, named, name)}")
        if site is not None:
            calls.setdefault(module, []).append(site)
        if all(n != module for n, _, _ in out):
            out.append((module, named[module], is_activation(named[module])))
    for module, sites in calls.items():  # 'act' beside 'act:1': the site 'act', its first call
        out.calls[module] = set(sites) | ({module} if module in layers else set())
    return out, []


class Targets(list):
    """The ``(name, module, is_activation)`` of each module to hook, and ``calls``: for a module named by the site
    names of its calls (``layers=['act:1']``), the names of the calls that are sites (the others are no sites)."""

    def __init__(self, items=()):
        super().__init__(items)
        self.calls: dict[str, set[str]] = {}


def _call_of(named: dict, name) -> tuple[str | None, str | None]:
    """``(module, site)`` of a site name ``name`` of one call of a module (``'act:1'``; ``'act:0'`` is the site
    ``'act'``), else ``(None, None)``."""
    found = re.fullmatch(r"(.*[^:])(:+)(\d+)", name) if isinstance(name, str) else None
    if found is None or found[1] not in named:
        return None, None
    return found[1], name if int(found[3]) else found[1]


def refuse_unknown_calls(targets, calls: list) -> None:
    """Refuse a site name in ``layers=[...]`` that names no call of its module on the batch the sites are found on
    (``calls``: discovery's ``_Call`` list, with each call's site name)."""
    for module, wanted in getattr(targets, "calls", {}).items():
        have = [c.name for c in calls if c.module == module]
        missing = sorted(wanted - set(have))
        if missing:
            raise ValueError(f"layers: {missing} name{'s' * (len(missing) == 1)} no call of module {module!r} on this "
                             f"batch: it was called at {len(have)} place{'s' * (len(have) != 1)}, sites {have}")


def leave_out(name: str, module: str, names: list[str], which: str = "the sites to read") -> str:
    """The advice to leave site ``name`` (a call of ``module``, whose calls are the sites ``names``) out of the sites:
    ``layers=[...]`` naming ``which``, each call of a module called at several places by its own site name."""
    if len(names) < 2:
        return f"leave it out with layers=[...] naming {which}"
    keep = [f"{module}:0" if n == module else n for n in names if n != name]
    return (f"{module!r} is one module called at {len(names)} places, sites {names}: leave {name!r} out with "
            f"layers=[...] naming {which}, each call by its site name ({keep} of this module; {module!r} alone "
            "names every call), or give that call a module of its own")


def _outermost(found: list, backbone: nn.Module) -> list:
    """``found`` less the activations registered only inside another one (a registered ``SquaredReLU``'s own
    ``nn.ReLU``, a swish's ``nn.Sigmoid`` gate): the outer call reads the same pre-activation, and its class is the
    activation the user registered. One also registered elsewhere stays a target, and its calls inside the outer
    one are no quiet sites: :mod:`neuroview.core.discovery` refuses them by name in the default sites (one module at
    two places, even where it is only ever called inside: a shared ``self.act`` handed to two ``SquaredReLU``) and
    warns of them in named ones."""
    outer = [n for n, m, _ in found if any(True for _ in m.children())]
    inside = lambda name: any(name.startswith(f"{o}.") for o in outer if o)  # noqa: E731
    if not outer:
        return found
    names: dict[int, list[str]] = {}
    for n, m in backbone.named_modules(remove_duplicate=False):
        names.setdefault(id(m), []).append(n)
    return [(n, m, a) for n, m, a in found if not all(inside(k) for k in names[id(m)])]


def _hint(backbone: nn.Module, named: dict, name) -> str:
    """What a name missing from ``named_modules()`` is: a second name of a module registered twice, or a typo."""
    alias = dict(backbone.named_modules(remove_duplicate=False)).get(name)
    if alias is not None:  # one instance at two places (a shared nn.ReLU): hooked once, each of its calls a site
        first = next(n for n, m in named.items() if m is alias)
        return (f": {name!r} is the module named {first!r} (one module registered twice), whose calls are all sites "
                f"of that name ({first!r}, {first + ':1'!r}, ...); name it {first!r}")
    close = difflib.get_close_matches(str(name), [n for n in named if n], n=3)
    return f"; did you mean {close}?" if close else ""
