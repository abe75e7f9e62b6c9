"""What torch's generic module tools cannot do to a NeuroView network, said by name rather than done wrong.

- ``torch.jit.script``: the codes are read by hooks and an autograd Function; scripting failed deep in TorchScript
  (a lambda property, an Optional cast). ``torch.export`` (strict) and ``torch.compile`` take the network.
- ``net.requires_grad_(...)``, ``net.apply(fn)`` before a lazy network's first batch: the head that batch builds is
  none of the modules they reach (PyTorch's lazy modules refuse both); so said, with the fix.
- ``copy.copy`` of a lazy network: the copy shares the original's submodules but not its unbuilt head, so its first
  batch wrote a new head into the original; refused (``copy.deepcopy`` copies it whole).
- ``load_state_dict`` that torch (or the network) refuses: the head built, adopted or merged for it is put back, a
  soft code's ``tau`` and a normalization's floor taken from the file too, and every tensor torch copied or assigned
  before it raised (torch raises after its walk over the whole network: a checkpoint for other classes had the
  backbone copied first).

Imports only torch.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


#: what a NeuroView network builds, adopts or merges for a state dict before torch loads it (its head)
_HEAD = ("classifier", "norm", "step_shared")
_NONE = object()
#: what a load takes from the file besides tensors: a soft code's tau, a normalization's floor, a lazy wrap's sites
_TAKEN = ("_tau", "floor", "_loaded_sites")


def _record(net: nn.Module) -> list:
    """What a load may change in place in ``net``'s modules: each one's parameters and buffers (the dict holding it,
    its name, the tensor object and a detached clone of its values) and the settings of :data:`_TAKEN`."""
    return [(m, [(d, k, t, t.detach().clone()) for d in (m._parameters, m._buffers) for k, t in d.items() if t is not None],
             {k: m.__dict__.get(k, _NONE) for k in _TAKEN}) for m in net.modules()]


def _put_back(record: list) -> None:
    """Each module of ``record`` as it was: its tensor objects back in place (``assign=True`` put the file's there),
    their values and its settings too; the notes of what the load took from the file dropped."""
    for m, tensors, taken in record:
        for d, k, t, data in tensors:
            if d.get(k) is not t:  # as torch's assign sets it: an RNN's flat weights follow its parameters
                setattr(m, k, t)
            with torch.inference_mode() if t.is_inference() else torch.no_grad():
                t.copy_(data)
        m.__dict__.pop("_load_notes", None)
        for k, v in taken.items():
            m.__dict__.pop(k, None)
            if v is not _NONE:
                m.__dict__[k] = v


class Guarded(nn.Module):
    """The mix-in of the NeuroView networks."""

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """torch's load; where it is refused (a size, a missing or unexpected key, a setting the network names), the
        network is left as it was: every NeuroView network in this one keeps the head it had (a head built for the
        checkpoint's width, a normalization adopted, a shared step merged were left, and no later load, the network's
        own checkpoint, fitted it again), and every parameter and buffer its tensor object and values (torch copies
        as it walks the modules and raises at the end: the backbone of a checkpoint for other classes was copied).
        Loaded inside another module (``outer.load_state_dict``) only torch's own load runs: its copies stay."""
        self._before_load(state_dict)
        record = _record(self)  # what a refusal puts back; dropped once the load succeeds
        kept = [(m, {k: (True, m._modules[k]) if k in m._modules else (False, m.__dict__.get(k, _NONE)) for k in _HEAD})
                for m in self.modules() if isinstance(m, Guarded)]
        try:
            out = super().load_state_dict(state_dict, strict=strict, assign=assign)
        except BaseException:
            _put_back(record)
            for m, heads in kept:
                for k, (registered, v) in heads.items():
                    m.__dict__.pop(k, None)
                    if registered:
                        m._modules[k] = v  # in its place: the submodules' (and the state dict's) order kept
                        continue
                    m._modules.pop(k, None)
                    if v is not _NONE:
                        m.__dict__[k] = v
            raise
        for m, _ in kept:  # what the load took from the file, said at the caller's line (a load inside another
            for note in m.__dict__.pop("_load_notes", ()):  # module's, a Lightning resume's, takes it as it takes a floor)
                warnings.warn(note, stacklevel=2)
        return out

    def _before_load(self, state_dict) -> None:
        """Refuse ``state_dict`` before anything is built or copied for it (a network whose settings it contradicts)."""

    def _unbuilt(self) -> bool:
        members = getattr(self, "members", None)
        if isinstance(members, nn.ModuleList):  # an ensemble: a lazy member's head (its own None head is no lazy one)
            return any(isinstance(m, Guarded) and m._unbuilt() for m in members)
        return "classifier" in self.__dict__ and self.__dict__["classifier"] is None  # a None head, not yet a module

    def __prepare_scriptable__(self):
        raise TypeError(f"torch.jit.script: a {type(self).__name__} cannot be scripted (its decision is read through "
                        "hooks, autograd Functions and torch.func, which TorchScript does not compile); use "
                        "torch.export.export(net, (x,), strict=True) or torch.compile(net)")

    def _say_unbuilt(self, what: str) -> None:
        if self._unbuilt():
            warnings.warn(f"{what}: the network's head is built on its first batch, after this call, which does not "
                          "reach it; call net(x) once (or build it with example_input=x) first", stacklevel=3)

    def requires_grad_(self, requires_grad: bool = True):
        self._say_unbuilt(f"requires_grad_({requires_grad})")
        return super().requires_grad_(requires_grad)

    def apply(self, fn):
        self._say_unbuilt("apply(fn)")
        return super().apply(fn)

    def __copy__(self):
        if self._unbuilt():
            raise TypeError("copy.copy: the network's head is built on its first batch, and a shallow copy shares "
                            "every module but that one (its first batch would replace the original's head); use "
                            "copy.deepcopy, or copy it after one batch")
        factory, args, state = self.__reduce_ex__(4)[:3]
        new = factory(*args)
        new.__setstate__(state)
        return new
