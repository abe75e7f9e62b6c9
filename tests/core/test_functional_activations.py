"""Activation functions called outside activation modules (``F.relu``) are no site: the wrapper says so.

A network with ``nn.ReLU`` in its stem and ``F.relu`` in its blocks was wrapped with its stem's units only, the
forward pass cut after the stem and every later layer frozen, without a word: the decision ignored them all."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv


class Mixed(nn.Module):
    def __init__(self, late: bool = True):
        super().__init__()
        self.late = late
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.conv2, self.conv3 = nn.Conv2d(4, 5, 3, padding=1), nn.Conv2d(5, 6, 3, padding=1)
        self.act3 = nn.ReLU()

    def forward(self, x):
        x = F.relu(self.conv2(self.stem(x)))  # before the last site (act3): its units are not read
        x = self.act3(self.conv3(x))
        if self.late:
            x = x.clamp(min=0) + torch.tanh(x)  # after it: the pass stops at act3's reader
        return x.mean((2, 3))


def _wrap(model, **kw):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        net = nv.wrap(model, 3, example_input=torch.randn(4, 3, 8, 8), **kw)
    return net, [str(w.message) for w in got if "activation functions" in str(w.message)]


def test_functional_activations_are_named_with_what_the_decision_loses():
    net, (msg,) = _wrap(Mixed())
    assert [s.name for s in net.sites] == ["stem.1", "act3"]
    # by hand: F.relu (in the backbone's forward, between the sites) and tanh after the last one; the clamp(min=0) of
    # act3's ReLU output clips nothing (no value below 0): no activation, not named
    assert "relu() in the backbone's own forward" in msg and "clamp(min=0)" not in msg and "tanh()" in msg
    assert "1 of those calls come after the last site" in msg and "layers=[...]" in msg
    net, (msg,) = _wrap(Mixed(late=False))
    assert "relu() in the backbone's own forward" in msg and "after the last site" not in msg


def test_a_functional_call_inside_a_named_module_is_placed_there():
    enc = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)  # its default activation is F.relu

    class Hybrid(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.enc = nn.Sequential(nn.Conv2d(3, 8, 4, stride=4), nn.ReLU()), enc

        def forward(self, x):
            return self.enc(self.stem(x).flatten(2).transpose(1, 2)).mean(1)

    _, (msg,) = _wrap(Hybrid().eval())
    assert "relu() in the forward of 'enc'" in msg and "1 of those calls come after the last site" in msg


def test_no_warning_for_modules_named_sites_or_calls_inside_activation_modules():
    class Gelu(nn.Module):  # timm's GELU: its own class, F.gelu inside, recognised by module name
        def forward(self, x):
            return F.gelu(x)

    Gelu.__module__ = "timm.layers.activations"

    class Safe(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1), Gelu(), nn.Conv2d(4, 4, 1), nn.Tanh())

        def forward(self, x):
            return self.body(x).clamp(min=1e-6).mean((2, 3))  # a floor, not a ReLU

    assert _wrap(Safe())[1] == []
    assert _wrap(Mixed(), layers=["stem.1", "conv2", "act3"])[1] == []  # named: the user chose the sites


def test_an_unregistered_activation_class_is_reported_once_not_twice():
    class MyAct(nn.Module):
        def forward(self, x):
            return x.clamp(min=0)

    backbone = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 1), MyAct())
    with pytest.warns(UserWarning, match="left out") as got:
        nv.wrap(backbone, 2, example_input=torch.randn(2, 3, 6, 6))
    assert not [w for w in got if "activation functions" in str(w.message)]


def test_a_call_on_a_table_without_samples_is_not_named():
    # Swin-V2's position bias: 16 * sigmoid(table), once a pass, on a table with no sample axis: no unit to read, and
    # as a module it would be no site either (the first version warned, the review)
    class Bias(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act = nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()
            self.table = nn.Parameter(torch.randn(5, 4))

        def forward(self, x):
            bias = 16 * torch.sigmoid(self.table).mean(0)  # [4], the same for any batch
            return self.act(self.conv(x) + bias[None, :, None, None]).mean((2, 3))

    assert _wrap(Bias())[1] == []
