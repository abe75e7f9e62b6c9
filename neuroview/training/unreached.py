"""What a NeuroView-CNN's decision never reaches (its backbone's own head, frozen by the wrapper), for the Lightning module.

Imports torch and ``neuroview.core`` only.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..core.cnn import NeuroViewCNN

__all__ = ["freeze_unreached"]


def freeze_unreached(model: nn.Module, x: Tensor | None) -> list[str]:
    """Module names of the parameters the decision never reaches (a parameter of the backbone itself by its full name,
    ``backbone.scale``), frozen: ``list(model.unreached)``.

    A NeuroView CNN freezes them itself when it finds its sites (``neuroview.core.reach``: its
    forward stops after the last site, so the backbone's own head gets no gradient, and DDP would
    wait for one); this reads its list. ``x`` (the first batch) finds the sites when they are not
    found yet. Other models reach every parameter.
    """
    if not isinstance(model, NeuroViewCNN):
        return []
    if model.sites is None and x is not None:
        model.discover(x)
    return list(model.unreached)
