"""Freezing what a NeuroView-CNN's decision never reaches (its backbone's own head), for the Lightning module.

Imports torch and ``neuroview.core`` only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.cnn import NeuroViewCNN

__all__ = ["freeze_unreached"]


def freeze_unreached(model: nn.Module, x: Tensor | None) -> list[str]:
    """Freeze parameters the decision never reaches; return their module names.

    A NeuroView CNN stops its backbone after the last site, so the backbone's own head gets no
    gradient. Left trainable, DDP would wait for its gradients forever (or need
    ``find_unused_parameters``), and AdamW would keep it in its state for nothing.
    """
    if not isinstance(model, NeuroViewCNN):
        return []
    called: set[nn.Module] = set()
    handles = [m.register_forward_pre_hook(lambda mod, args: called.add(mod)) for m in model.backbone.modules()]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            if x is None:  # sites found on an example input given when wrapping: its shape, on zeros
                p = next(model.parameters())
                x = torch.zeros(2, *model.input_shape, device=p.device, dtype=p.dtype)
            model(x[:2])
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    names = []
    # only the backbone: at eval the global classifier is applied as a folded F.linear, not called
    for name, m in model.backbone.named_modules():
        own = list(m.parameters(recurse=False))
        if own and m not in called:
            for q in own:
                q.requires_grad_(False)
            names.append(f"backbone.{name}" if name else "backbone")
    return names
