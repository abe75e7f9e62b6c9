"""Probe S27 P3 finding 3: a backbone that builds its activation module in its first forward was warned that its
``relu()`` was an activation function called outside any activation module, whose units the classifier never reads,
though that module is a site and its units are read. Only calls that are functional on the model as built are named."""

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv


class BuildsAct(nn.Module):
    def __init__(self, functional: bool = False):
        super().__init__()
        self.functional = functional
        self.c1, self.c2, self.a2, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(), \
            nn.Linear(5, 3)

    def forward(self, x):
        if "act" not in self._modules:  # built by the first forward
            self.act = nn.ReLU()
        h = self.act(self.c1(x))
        h = torch.tanh(h) if self.functional else h  # a true functional call beside it
        return self.fc(self.a2(self.c2(h)).mean((2, 3)))


def _wrap(bb, how, x):
    return nv.wrap(bb, 3) if how == "lazy" else nv.wrap(bb, 3, example_input=x)


@pytest.mark.parametrize("how", ["lazy", "example_input"])
def test_an_activation_module_built_by_the_first_forward_is_no_functional_call(how):
    torch.manual_seed(0)
    x = torch.randn(6, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = _wrap(BuildsAct(), how, x).eval()
        for _ in range(2):
            net(x)
    assert [(s.name, s.channels) for s in net.sites] == [("act", 4), ("a2", 5)]


@pytest.mark.parametrize("how", ["lazy", "example_input"])
def test_a_true_functional_call_of_such_a_backbone_is_still_named_once(how):
    torch.manual_seed(0)
    x = torch.randn(6, 3, 8, 8)
    with pytest.warns(UserWarning, match=r"outside any activation module: tanh\(\) in the backbone's own forward\. ") as got:
        _wrap(BuildsAct(functional=True), how, x).eval()(x)
    said = [str(w.message) for w in got if "outside any activation module" in str(w.message)]
    assert len(said) == 1 and "relu" not in said[0]


class Rebuilds(nn.Module):
    """Assigns a pooling module (no activation) at every forward, and calls a true ``torch.relu`` (review R4 finding 1:
    the tree changing at every find hid the warning)."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.a2, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(), \
            nn.Linear(5, 3)

    def forward(self, x):
        self.pool = nn.AdaptiveAvgPool2d(1)
        h = torch.relu(self.c1(x))  # functional: its units are never read
        return self.fc(self.pool(self.a2(self.c2(h))).flatten(1))


@pytest.mark.parametrize("how", ["lazy", "example_input"])
def test_a_backbone_that_assigns_a_module_at_every_forward_still_has_its_functional_call_named(how):
    torch.manual_seed(0)
    x = torch.randn(6, 3, 8, 8)
    with pytest.warns(UserWarning, match=r"outside any activation module: relu\(\) in the backbone's own forward\. "):
        net = _wrap(Rebuilds(), how, x).eval()
        for _ in range(2):
            net(x)
    assert [s.name for s in net.sites] == ["a2"]
