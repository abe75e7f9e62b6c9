"""At 1,000 classes the dense [B, C, U] tensor is what makes explanations expensive (11.6 GB for a
ResNet-50 batch): repr, the pictures, faithfulness and importance code read one row, or one product
per site or layer, and never form it. Reading ``contributions`` is made to fail here."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.attribution.faithfulness import unit_scores  # noqa: E402
from neuroview.attribution.importance import layer_shares, time_weights  # noqa: E402
from neuroview.core.explanation import Explanation  # noqa: E402
from neuroview.viz import plots  # noqa: E402

CLASSES = 1000


@pytest.fixture
def no_dense(monkeypatch):
    def refuse(self):
        raise AssertionError("the dense [B, C, ...] tensor was formed")
    monkeypatch.setattr(Explanation, "contributions", property(refuse, Explanation.contributions.fset))


def test_cnn_readers_never_form_the_dense_tensor(no_dense):
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 6, 3), nn.ReLU(), nn.Conv2d(6, 8, 3), nn.ReLU()), CLASSES,
                          input_shape=(1, 8, 8)).eval()
    x, y = torch.rand(5, 1, 8, 8), torch.randint(0, CLASSES, (5,))
    for baseline in (None, "mean"):
        exp = net.explain(x, maps=True, baseline=baseline)
        assert "logits=[5, 1000]" in repr(exp)
        exp.k90(), exp.top_share(), exp.by_site(), exp.topk(3)
        shares, _ = layer_shares(exp, y=y)
        # the per-site magnitudes equal what the dense tensor would give
        dense = (exp._delta()[:, None] * exp.weight[None]).abs()
        want = torch.stack([dense[..., s].sum(-1) for s in exp.site_slices.values()], -1)
        assert torch.allclose(exp.site_magnitudes(), want, atol=1e-5)
        plots.waterfall(exp, 1)
        plots.spatial_maps(exp, x, 0)
    assert unit_scores(net, x, y, "neuroview").shape == (5, net.num_units)


def test_rnn_readers_never_form_the_dense_tensor(no_dense):
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 4, num_layers=2, batch_first=True), CLASSES, max_len=7).eval()
    x, y = torch.randn(3, 7, 2), torch.randint(0, CLASSES, (3,))
    exp = net.explain(x, baseline="mean")
    repr(exp), exp.k90(), exp.k90(level="steps")
    d = exp._delta()[:, None] * exp.weight[None]  # [B, C, L, D, T, H], formed here for the check only
    assert torch.allclose(exp.layer_time(), d.sum(dim=(3, 5)), atol=1e-6)
    assert torch.allclose(exp.direction_time(), d.sum(dim=5), atol=1e-6)
    assert torch.allclose(exp.layer_magnitudes(), d.abs().sum(dim=(3, 4, 5)), atol=1e-5)
    layer_shares(exp, y=y), time_weights(exp, sample=0)
    plots.waterfall(exp, 0)
