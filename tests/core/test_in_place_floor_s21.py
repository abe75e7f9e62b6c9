"""An in-place floor at 0 is judged on its input, copied before the call (discovery's ``before``): a variance kept >= 0
in place (an exact 0 of a dead channel, no negative) clips nothing and is not named; a real ``x.clamp_(min=0)`` of a
pre-activation is named, as before."""

import warnings

import torch
from torch import nn

import neuroview as nv


class Net(nn.Module):
    def __init__(self, floor_of_variance: bool):
        super().__init__()
        self.c1, self.act, self.c2, self.fc, self.var = nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 1), nn.Linear(4, 2), floor_of_variance

    def forward(self, x):
        h = self.act(self.c1(x))
        if self.var:
            v = (h - h.mean(-1, keepdim=True)).pow(2).mean(-1, keepdim=True)
            v[:, :1] = 0.0  # a dead channel's variance: an exact 0, nothing below
            h = h / (v.clamp_(min=0) + 1).sqrt()
        else:
            h = self.c2(h).clamp_(min=0)  # a ReLU written in place on a pre-activation of both signs
        return self.fc(h.mean(-1))


def _named(net) -> list[str]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        nv.NeuroViewCNN(net, num_classes=2, example_input=torch.randn(4, 1, 12))
    return [str(x.message) for x in w if "clamp" in str(x.message)]


def test_an_in_place_floor_of_a_variance_is_not_named():
    torch.manual_seed(0)
    assert _named(Net(True)) == []


def test_an_in_place_relu_of_a_pre_activation_is_named():
    torch.manual_seed(0)
    assert len(_named(Net(False))) == 1


class FunctionalInPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.act, self.c2, self.fc = nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 1), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(torch.nn.functional.relu(self.c2(self.act(self.c1(x))), inplace=True).mean(-1))


def test_an_in_place_functional_relu_of_a_pre_activation_is_named():
    # F.relu(x, inplace=True) reaches the mode as relu: judged on what it left (one sign), it went unnamed
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        nv.NeuroViewCNN(FunctionalInPlace(), num_classes=2, example_input=torch.randn(4, 1, 12))
    assert any("relu()" in str(x.message) for x in w)


def test_a_floor_beside_one_large_value_still_clips_and_is_named():
    from neuroview.core.unseen import activation_call

    x = torch.randn(1000)
    x[0] = 1e4  # one outlier: a scale by the largest value hid the half of x below 0
    assert activation_call("clamp", (x,), {"min": 0}) == "clamp(min=0)"
    d = torch.rand(1000) * 10
    d[:3] = -2e-6  # a squared distance's rounding below 0: no activation
    assert activation_call("clamp", (d,), {"min": 0}) == ""
