"""Which modules of a backbone a NeuroView-CNN hooks: every activation module, or the modules ``layers=[...]`` names.

Said by name rather than failing later: a TorchScript module in the backbone (no hooks can be registered on it), a
name that is one module registered twice (``named_modules()`` lists it once, under its first name).

Imports only torch and the core modules below it.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Sequence

import torch
from torch import nn

from .activations import is_activation, looks_like_activation


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
                          "nv.register_activation(cls) makes a class a site", stacklevel=3)
        return found, left
    if isinstance(layers, str) or not len(layers):
        raise ValueError(f"layers: expected a non-empty list of module names, got {layers!r}")
    out = []
    for name in dict.fromkeys(layers):  # a name given twice is one site (it hooked the module twice)
        if name not in named:
            raise ValueError(f"layers: no module named {name!r} in backbone{_hint(backbone, named, name)}")
        out.append((name, named[name], is_activation(named[name])))
    return out, []


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
