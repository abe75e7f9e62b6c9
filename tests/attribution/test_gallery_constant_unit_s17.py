"""A unit whose code is one value on every sample read (dead, or always on) has no face: its gallery's places are the
first samples read (ties to the lower index). `unit_gallery` says so by name (it returned them without a word, and the
plots drew them as what the unit responds to: the degenerate-data probe of session 17)."""

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv


def _net() -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    conv = nn.Conv1d(1, 3, 3)
    with torch.no_grad():
        conv.weight[0].zero_(), conv.bias[0].fill_(-1.0)  # channel 0: pre-activation -1 everywhere, code 0
        conv.weight[1].zero_(), conv.bias[1].fill_(1.0)  # channel 1: +1 everywhere, code 1
    return nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, input_shape=(1, 10))


def test_a_dead_and_an_always_on_unit_are_named_a_live_one_is_not():
    net, x = _net(), torch.randn(20, 1, 10)
    codes = net.codes(x)  # by hand: the constant channels' codes, and a live one that varies
    assert codes[:, 0].eq(0).all() and codes[:, 1].eq(1).all() and codes[:, 2].std() > 0
    with pytest.warns(UserWarning, match=r"units: 1 #0 \(code 0\), 1 #1 \(code 1\): the code was the same on every "
                                         r"sample read \(20\), so the gallery shows the first 3 samples"):
        g = nv.unit_gallery(net, [(x, torch.zeros(20, dtype=torch.long))], units=[0, 1, 2], k=3)
    assert g.index[0].tolist() == [0, 1, 2] and g.index[1].tolist() == [0, 1, 2]  # the first samples read
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nv.unit_gallery(net, [(x, torch.zeros(20, dtype=torch.long))], units=[2], k=3)  # live: no warning
