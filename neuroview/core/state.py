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
    params = [(n, p) for n, p in module.named_parameters() if plain(p)]
    buffers = [(n, b) for n, b in module.named_buffers() if plain(b)]
    copy_params = sum(p.numel() * p.element_size() for _, p in params) <= BUDGET
    kept = [(n, t, t._version, t.detach().clone() if copy_params or is_buffer else None)
            for group, is_buffer in ((params, False), (buffers, True)) for n, t in group]

    def restore() -> None:
        changed = [(n, t, old) for n, t, v, old in kept if t._version != v]
        with torch.no_grad():
            for _, t, old in changed:
                if old is not None and old.shape == t.shape:
                    t.copy_(old)
        lost = [n for n, t, old in changed if old is None or old.shape != t.shape]
        if lost:
            warnings.warn(f"wrap: the passes that find the sites (on the first batch's first samples) changed "
                          f"{lost[:6]}{' ...' if len(lost) > 6 else ''} in place, which are too large to keep a copy "
                          "of: the backbone's forward changes its own state (a data-dependent initialisation, a counter); find "
                          "the sites before that state matters (example_input=x)", stacklevel=4)
    return restore
