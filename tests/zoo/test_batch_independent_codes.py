"""A series' hard codes, and so its logits, do not depend on the other series of its batch. The fixed filters of
LITE and MiniRocket's kernels meet pre-activations within a float32 rounding of 0 (ItalyPowerDemand's series,
z-normalized, under LITE's alternating filters; a training series' own value at a MiniRocket bias drawn from it),
and float32's summation order, which the convolution backend picks by batch size, flipped their sign: the zoo's
nv_lite.italypowerdemand gave logits 0.083 apart for one series alone and in a batch of 64. Their convolutions
are now exact (float64, rounded once), so each code is the same alone, in any batch, in any order."""

from __future__ import annotations

import pytest
import torch

import neuroview as nv
from neuroview.zoo.architectures.timeseries import FixedConv1d, _fixed_filters


@pytest.fixture(scope="module")
def ipd():
    pytest.importorskip("aeon.datasets")
    from neuroview.data import UCRDataModule

    dm = UCRDataModule("ItalyPowerDemand", batch_size=64, val_fraction=0.0)
    dm.setup("fit")
    x, y = next(iter(dm.test_dataloader()))
    xt, yt = map(torch.cat, zip(*dm.train_dataloader()))
    return x[:64], xt, yt


def _alone(f, x):
    return torch.cat([f(x[i:i + 1]) for i in range(len(x))])


@pytest.mark.usefixtures("one_thread")
def test_lite_fixed_filters_and_logits_are_the_same_alone_and_batched(ipd):
    x, _, _ = ipd
    fixed = FixedConv1d(1, _fixed_filters())
    with torch.no_grad():
        exact = torch.nn.functional.conv1d(x.double(), fixed.weight.double(), padding="same")
        for f in (fixed, lambda b: fixed(b.flip(0)).flip(0)):  # batched, and the batch reversed
            assert torch.equal(f(x) > 0, exact > 0)
        assert torch.equal(_alone(fixed, x) > 0, exact > 0)
        net = nv.create_model("nv_lite.italypowerdemand", pretrained=True).eval()
        whole = net(x)
        # every code the same, so the logits differ only by the learned layers' float32 rounding (it was 0.083)
        torch.testing.assert_close(_alone(net, x), whole, rtol=0, atol=1e-4)
        torch.testing.assert_close(torch.cat([net(x[i:i + 7]) for i in range(0, 64, 7)]), whole, rtol=0, atol=1e-4)
        site = net.site_slices["fixed_relu"]  # the fixed filters' site
        assert torch.equal(_alone(net.codes, x)[:, site], net.codes(x)[:, site])


@pytest.mark.usefixtures("one_thread")
def test_minirocket_codes_of_its_own_training_series_are_the_same_alone_and_batched(ipd):
    _, xt, yt = ipd
    net = nv.minirocket([(xt, yt)], num_features=840)
    with torch.no_grad():
        assert torch.equal(_alone(net.codes, xt), net.codes(xt))
