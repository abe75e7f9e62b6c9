"""Small helpers for tests that need a NeuroView network with non-trivial running statistics
(importable from any test folder: tests/ is on the path through its conftest.py)."""

from __future__ import annotations

import torch
from torch import nn


def with_running_stats(net: nn.Module, x: torch.Tensor, **kw) -> nn.Module:
    """One train-mode pass without gradients, so the folded normalization has non-trivial running
    statistics (and a lazily wrapped network finds its sites); returns the network in eval mode."""
    net.train()
    with torch.no_grad():
        net(x, **kw)
    return net.eval()
