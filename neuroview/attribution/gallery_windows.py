"""Where a unit responds in a sample: its strongest position and the input window it reads there
(:func:`windows`), for :func:`neuroview.attribution.gallery.unit_gallery`.

The window is measured, not derived from kernel sizes: the input positions on which the unit's
pre-activation at its strongest position has a non-zero gradient (:func:`preactivation` takes that
pre-activation with its graph), boxed per spatial dimension. A box cannot hold a window that wraps
around the input's end (``padding_mode="circular"``): that is an error, not the whole input.

Imports: torch and :mod:`neuroview.core`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.cnn import NeuroViewCNN
from ..core.ensemble import Ensemble
from ..core.quantize import units_first
from ..core.recorder import sample_first

__all__ = ["windows", "preactivation"]


def windows(net: NeuroViewCNN, site, chs: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """``(window [B, D, 2], strongest position [B])`` of unit ``chs[b]`` of ``site`` on sample ``x[b]``
    (samples never depend on each other's batch, so one pass serves all)."""
    device = next(net.parameters()).device
    x = x.to(device).requires_grad_(True)
    rows = torch.arange(len(x), device=device)
    z = preactivation(net, site, x)[rows, chs.to(device)].reshape(len(x), -1)  # [B, positions]
    pos = z.argmax(1)  # the first of equal maxima
    spatial = x.shape[2:]
    if z.requires_grad:
        g = torch.autograd.grad(z.gather(1, pos[:, None]).sum(), x)[0].detach()
        support = g.abs().sum(1) > 0  # [B, *spatial]
    else:
        support = torch.zeros(len(x), *spatial, dtype=torch.bool, device=device)
    circular = next((n for n, m in net.named_modules() if getattr(m, "padding_mode", None) == "circular"), None)
    box = torch.zeros(len(x), len(spatial), 2, dtype=torch.long)
    for d, size in enumerate(spatial):
        other = [e + 1 for e in range(len(spatial)) if e != d]
        on = (support.any(dim=other) if other else support).cpu()  # [B, size]
        for i in range(len(x)):
            idx = on[i].nonzero().flatten()
            if circular is not None and _wraps(idx, size):
                raise ValueError(
                    f"net: unit '{site.name} #{int(chs[i])}' at its strongest position reads input positions "
                    f"{idx.tolist()} of input dimension {d}, around the input's end (padding_mode='circular' of "
                    f"module {circular!r}); a (start, stop) window cannot hold that, and the gallery would show the "
                    "whole input")
            box[i, d] = torch.stack([idx.min(), idx.max() + 1]) if len(idx) else torch.tensor([0, size])
    return box, pos.cpu()


def _wraps(idx: Tensor, size: int) -> bool:
    """Whether positions ``idx`` (sorted) of a dimension of ``size`` sit tighter on a circle than on
    a line: the largest run of positions they skip lies inside their box, not across the end."""
    if len(idx) < 2:
        return False
    inside = int((idx[1:] - idx[:-1]).max()) - 1
    return inside > size - 1 - int(idx[-1]) + int(idx[0])


def preactivation(net: NeuroViewCNN, site, x: Tensor) -> Tensor:
    """The pre-activation of ``site`` on ``x``, units first ``[B, C_s, *positions]``, with its graph.

    Taken by a hook of its own on the site's module, at the site's call number (``name:1`` is
    the second call), and cloned before an in-place activation can overwrite it.
    """
    # a NeuroView-CNN names modules inside its backbone; an ensemble's sites name them from itself
    module = dict((net if isinstance(net, Ensemble) else net.backbone).named_modules())[site.module]
    call = int(site.name.rpartition(":")[2]) if ":" in site.name else 0
    seen, got = [0], []

    def grab(z):
        if seen[0] == call:
            got.append(z.clone())
        seen[0] += 1

    if site.from_input:
        handle = module.register_forward_pre_hook(lambda m, args: grab(args[0]))
    else:
        handle = module.register_forward_hook(lambda m, args, out: grab(out))
    try:
        with torch.enable_grad():
            net.codes(x)
    finally:
        handle.remove()
    return units_first(sample_first(got[0], site, len(x)), site.axis, len(x))  # [T, B, C] and [T * B, C] sites too
