"""Gradient checkpointing inside the backbone is refused by name. With use_reentrant=True a checkpointed block's
sites were recorded without gradient and its weights looked unreached, so the wrapper froze them (their gradients
None, the conv before them 0.255 where the same network without checkpointing gives 0.282), without a word; with
use_reentrant=False backward failed in torch's CheckpointError."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

import neuroview as nv


class Net(nn.Module):
    def __init__(self, reentrant: bool | None):
        super().__init__()
        self.reentrant = reentrant
        self.c1, self.a1 = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()
        self.blk = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())

    def forward(self, x):
        x = self.a1(self.c1(x))
        return self.blk(x) if self.reentrant is None else checkpoint(self.blk, x, use_reentrant=self.reentrant)


@pytest.mark.parametrize("reentrant", [True, False])
def test_a_checkpointed_block_is_refused_by_name(reentrant):
    with pytest.raises(ValueError, match=r"backbone: \['blk'\] run inside torch.utils.checkpoint .*turn checkpointing off"):
        nv.wrap(Net(reentrant), 3, example_input=torch.randn(2, 3, 6, 6))


def test_without_checkpointing_every_block_trains():
    net = nv.wrap(Net(None), 3, example_input=torch.randn(2, 3, 6, 6)).train()
    nn.functional.cross_entropy(net(torch.randn(4, 3, 6, 6)), torch.tensor([0, 1, 2, 0])).backward()
    assert net.unreached == [] and all(p.grad is not None for p in net.backbone.parameters())
