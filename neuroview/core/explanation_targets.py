"""Which class each sample's contributions are read for: ``Explanation.targets`` reads its ``target`` argument
(an int, a ``[B]`` tensor or array, a numpy or 0-dim integer) into a ``[B]`` tensor of classes, or names what is
wrong with it (kept apart from :mod:`neuroview.core.explanation` for room).

Imports only torch and :mod:`neuroview.core._utils`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._utils import as_labels, refuse_bools

__all__ = ["resolve_targets"]


def resolve_targets(target, b: int, num_classes: int, device: torch.device) -> Tensor:
    """``[b]`` classes on ``device`` from ``target`` (not None), each checked to lie in ``[0, num_classes)``."""
    refuse_bools(target, "target", "a mask's samples are exp.for_class(c)[mask]")
    if not isinstance(target, (int, float, Tensor)) and (hasattr(target, "__array__") or hasattr(target, "__index__")):
        target = as_labels(target, "target") if hasattr(target, "__array__") else int(target)  # numpy: int() cut [1.7] to 1
    if isinstance(target, Tensor) and target.dim() == 0:
        target = as_labels(target, "target").item()  # a 0-dim tensor: one class too
    if isinstance(target, float) and target.is_integer():
        target = int(target)  # 1.0: whole, as as_labels takes labels read from a CSV
    if isinstance(target, int):
        if not 0 <= target < num_classes:
            raise ValueError(f"target: expected a class index in [0, {num_classes}), got {target}")
        return torch.full((b,), target, dtype=torch.long, device=device)
    target = as_labels(target, "target").to(device, copy=True)  # not the caller's tensor or array
    if target.shape != (b,):
        raise ValueError(f"target: expected an int or a tensor of shape [{b}], got shape {tuple(target.shape)}")
    if len(target) and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target: classes must lie in [0, {num_classes}), got {target.tolist()}")
    return target
