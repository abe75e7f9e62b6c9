"""Whether a site's code map lies over its input in the input's order: what a unit gallery's ``heat`` needs before it
stretches the map over the input (:func:`neuroview.attribution.gallery.unit_gallery`).

A map made by a pure move of its positions (``conv(x).mT``: ``[B, C, W, H]`` of an ``[H, W]`` input) sums and ranks
exactly, but stretched over the input unmoved it marks the unit on at transposed (or stretched) places. Each corner of
the map is checked against the input cells its pre-activation's gradient reaches: the stretch must lay that corner on
the cells it reads (per input dim, where the gradient reaches any).

Imports only torch.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor


def in_input_order(pre, x: Tensor) -> bool:
    """Whether the map ``pre(x)`` (``[*positions]``: one unit's pre-activation on the one sample ``x [1, C, *spatial]``,
    with its graph) has its positions in the order of ``x``'s spatial dims: each corner position, stretched (nearest)
    over the input, lands on the input cells it reads in every dim (a corner whose gradient reaches no cell, or a map of
    another rank than the input's positions, tells nothing: True; so does a series, whose one dim no move swaps)."""
    spatial = tuple(x.shape[2:])
    if len(spatial) < 2:  # one positional dim: no move swaps it (MiniRocket's centre maps lie on a part of it)
        return True
    with torch.inference_mode(False), torch.enable_grad():  # a copy out of the caller's no_grad or inference mode
        x = x.detach().clone().requires_grad_(True)
        z = pre(x)
        if not z.requires_grad or z.dim() != len(spatial):
            return True
        for corner in itertools.product(*[(0, m - 1) for m in z.shape]):
            g = torch.autograd.grad(z[corner], x, retain_graph=True, allow_unused=True)[0]
            on = g[0].abs().sum(0) > 0 if g is not None else None  # [*spatial]: the cells it reads
            if on is None or not bool(on.any()):
                continue
            for d, (c, m, s) in enumerate(zip(corner, z.shape, spatial)):
                cells = on.any(dim=[e for e in range(len(spatial)) if e != d]) if len(spatial) > 1 else on
                laid = torch.arange(s) * m // s == c  # the input cells nearest-stretching lays map cell c on
                if not bool((cells.cpu() & laid).any()):
                    return False
    return True
