"""An empty batch among a loader's batches is skipped by every reader of a split, as ``unit_gallery`` skips it:
``readability`` and ``mean_codes`` stopped there with an error naming ``x``, an argument neither takes."""

import pytest
import torch
from torch import nn

import neuroview as nv


def _net_and_batches():
    torch.manual_seed(3)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2, input_shape=(1, 12)).eval()
    x = torch.randn(10, 1, 12)
    y = torch.arange(10) % 2
    return net, x, y, [(x[:5], y[:5]), (x[:0], y[:0]), (x[5:], y[5:])]


def test_mean_codes_skips_an_empty_batch():
    net, x, y, batches = _net_and_batches()
    with torch.no_grad():
        want = net.codes(x).mean(0)
    torch.testing.assert_close(nv.mean_codes(net, batches), want)


def test_readability_skips_an_empty_batch():
    net, x, y, batches = _net_and_batches()
    got = nv.readability(net, batches, baseline=None)
    whole = nv.readability(net, [(x, y)], baseline=None)
    assert got["samples"] == 10 and got == whole


def test_only_empty_batches_are_still_refused_by_name():
    net, x, y, _ = _net_and_batches()
    with pytest.raises(ValueError, match="train: expected at least one batch"):
        nv.mean_codes(net, [(x[:0], y[:0])])
    with pytest.raises(ValueError, match="batches: expected at least one batch"):
        nv.readability(net, [(x[:0], y[:0]), (x[:0], y[:0])], baseline=None)
