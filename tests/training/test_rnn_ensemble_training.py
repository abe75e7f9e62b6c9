"""An ensemble of recurrent members trained through the Lightning module: each member reads the batch as
the validation step and the members alone read it, [B, T, C] with its lengths."""

from __future__ import annotations

import pytest
import torch

import neuroview as nv
from neuroview.core.ensemble import Ensemble
from neuroview.training.compiled import train_forward
from neuroview.training.module import NeuroViewModule
from neuroview.zoo import registry


@pytest.fixture
def ens_arch(monkeypatch):
    def test_ens_nv_gru(*, num_classes: int = 2, in_features: int = 1, max_len: int, members: int = 2):
        return Ensemble([nv.create_model("nv_gru", num_classes=num_classes, in_features=in_features, max_len=max_len,
                                         hidden_size=6) for _ in range(members)])

    monkeypatch.setitem(registry._MODELS, "test_ens_nv_gru", test_ens_nv_gru)
    return "test_ens_nv_gru"


@pytest.mark.parametrize("channels", [3, 12])  # 12 == the steps: the transposed layout went through unnoticed
def test_the_training_step_gives_each_member_its_series_and_lengths(ens_arch, channels):
    """The training step called member_logits(x): channels-first series and no lengths, so the members trained on
    transposed series with their padding read (2.28 off their own logits), or failed naming the batch."""
    torch.manual_seed(0)
    x, lengths = torch.randn(4, channels, 12), torch.tensor([12, 5, 3, 8])
    for i, n in enumerate(lengths):
        x[i, :, n:] = 0
    module = NeuroViewModule(arch=ens_arch, num_classes=2, in_channels=channels, max_len=12).train()
    want = torch.stack([m(x.transpose(1, 2), lengths=lengths) for m in module.model.members])
    torch.testing.assert_close(train_forward(module, x, lengths, None), want)
    torch.testing.assert_close(module(x, lengths), want.mean(0))
