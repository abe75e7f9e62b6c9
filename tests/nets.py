"""Small helpers for tests that need a NeuroView network with non-trivial running statistics
(importable from any test folder: tests/ is on the path through its conftest.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn


def with_running_stats(net: nn.Module, x: torch.Tensor, **kw) -> nn.Module:
    """One train-mode pass without gradients, so the folded normalization has non-trivial running
    statistics (and a lazily wrapped network finds its sites); returns the network in eval mode."""
    net.train()
    with torch.no_grad():
        net(x, **kw)
    return net.eval()


class Tiny1D(nn.Module):
    """A 1-D patch transformer's MLP with a class token: tokens ``[B, 1 + T / p, d]``, class token first (the
    token-site tests of core, attribution and viz). Unit 0 of ``act`` is on at a patch whose mean exceeds 0.5, off
    elsewhere (the class token is 0)."""

    def __init__(self, p: int, d: int = 8):
        super().__init__()
        self.pe = nn.Conv1d(1, d, p, stride=p)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.fc1, self.act, self.fc2 = nn.Linear(d, 4), nn.GELU(), nn.Linear(4, d)
        self.head = nn.Linear(d, 2)
        with torch.no_grad():
            self.pe.weight.zero_(), self.pe.bias.zero_()
            self.pe.weight[0, 0, :] = 1 / p
            self.fc1.weight.zero_(), self.fc1.bias.fill_(-0.5)
            self.fc1.weight[0, 0] = 1.0

    def forward(self, x):
        x = self.pe(x).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], 1)
        x = x + self.fc2(self.act(self.fc1(x)))
        return self.head(x[:, 0])


def small_report_cnn():
    """``(net, x, y)``: a two-site NeuroView-CNN on 6x6 images with running statistics, 10 samples of 2 classes."""
    import neuroview as nv  # noqa: PLC0415

    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU())
    net = nv.NeuroViewCNN(backbone, 2, input_shape=(1, 6, 6))
    x = torch.rand(10, 1, 6, 6)
    return with_running_stats(net, x), x, torch.arange(10) % 2


def small_report_rnn():
    """``(net, x, y)``: a NeuroView-GRU of 8 steps with running statistics, 7 batch-first series of 2 classes."""
    import neuroview as nv  # noqa: PLC0415

    torch.manual_seed(1)
    net = nv.NeuroViewRNN(nn.GRU(2, 3, batch_first=True), num_classes=2, max_len=8)
    x = torch.randn(7, 8, 2)
    return with_running_stats(net, x), x, torch.tensor([0, 1, 0, 1, 0, 1, 0])


@pytest.fixture(scope="module")
def saved_cnn(tmp_path_factory):
    """A small NeuroView-CNN with running statistics, and its weights as a safetensors file (the report tests')."""
    import neuroview as nv  # noqa: PLC0415
    from safetensors.torch import save_file  # noqa: PLC0415

    torch.manual_seed(0)
    net = nv.create_model("nv_small_cnn", num_classes=10, in_channels=1, widths=(4, 8))
    with_running_stats(net, torch.randn(16, 1, 8, 8))
    path = tmp_path_factory.mktemp("w") / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return net, path

