"""The backbone's state across the passes that find a NeuroView-CNN's sites: given back as it was.

The first batch runs the backbone three extra times (two discovery passes, one reach pass) on its first samples. A
module whose forward changes its own parameters or buffers (Glow's ActNorm initialised from the first batch it sees,
a step counter) would otherwise be left as those passes made it, not as the user's batch would. :func:`snapshot`
keeps a copy of each parameter and buffer and its ``_version`` (which every in-place change bumps); the function it
returns copies back those whose version moved. In eval mode, as those passes run, a plain network changes none.

Imports only torch.
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch
from torch import nn
from torch.nn.parameter import UninitializedTensorMixin

#: parameters are copied up to this many bytes in all (buffers always): beyond it a change is said, not undone
BUDGET = 256 * 2**20


def snapshot(module: nn.Module) -> Callable[[], None]:
    """Keep ``module``'s parameters and buffers as they are; the returned function restores those that changed."""
    # a lazy module's parameters are made by the first pass; an inference tensor keeps no version (nor changes)
    plain = lambda t: not isinstance(t, UninitializedTensorMixin) and not t.is_inference()  # noqa: E731
    owned = [(m, f"{mn}.{n}".lstrip("."), t, b) for mn, m in module.named_modules()
             for (n, t), b in [*((kv, False) for kv in m._parameters.items()), *((kv, True) for kv in m._buffers.items())]
             if t is not None and plain(t)]
    copy_params = sum(t.numel() * t.element_size() for _, _, t, b in owned if not b) <= BUDGET
    kept = [(m, n, t, t._version, t.detach().clone() if copy_params or b else None) for m, n, t, b in owned]
    # a module's plain attributes too (ActNorm's "initialised" flag): its tensors put back without them, it never
    # initialised again and kept its defaults for good
    # (not a lazy module's: the first pass infers them, num_features of a LazyBatchNorm, and they stay as inferred)
    lazy = {id(m) for m in module.modules() if any(isinstance(t, UninitializedTensorMixin)
                                                   for t in (*m._parameters.values(), *m._buffers.values()))}
    attrs = {id(m): dict(_plain_attrs(m)) for m in {id(m): m for m, *_ in owned}.values() if id(m) not in lazy}

    def restore() -> None:
        changed = [(m, n, t, old) for m, n, t, v, old in kept if t._version != v]
        with torch.no_grad():
            for m, _, t, old in changed:
                if old is not None and old.shape == t.shape:
                    t.copy_(old)
                    if id(m) in attrs:
                        _put_back(m, attrs[id(m)])
        lost = [n for _, n, t, old in changed if old is None or old.shape != t.shape]
        if lost:
            warnings.warn(f"wrap: the passes that find the sites (on the first batch's first samples) changed "
                          f"{lost[:6]}{' ...' if len(lost) > 6 else ''} in place, which are too large to keep a copy "
                          "of: the backbone's forward changes its own state (a data-dependent initialisation, a counter); find "
                          "the sites before that state matters (example_input=x)", stacklevel=4)
    return restore


def _plain_attrs(m: nn.Module):
    """``(name, value)`` of ``m``'s own attributes that are plain values (a flag, a count), its mode aside."""
    return ((k, v) for k, v in vars(m).items() if k != "training" and (v is None or type(v) in (bool, int, float, str)))


def _put_back(m: nn.Module, before: dict) -> None:
    """``m``'s plain attributes as they were: changed ones set back, ones the passes added removed."""
    now = dict(_plain_attrs(m))
    for k, v in before.items():
        if now.get(k, v) != v or k not in vars(m):
            m.__dict__[k] = v
    for k in now.keys() - before.keys():
        del m.__dict__[k]
