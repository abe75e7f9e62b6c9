"""Probe S27 P3 finding 4: ``nv.register_activation(NewClass)`` called after wrapping, for a class whose modules run
before the stop, left the wrapped network reading its old sites without a word (a fresh wrap reads the new ones, and
refused the saved state dict). As an activation added by an edit, it is refused by name by the first pass that runs it
before the stop; one that runs after the stop changes nothing."""

import copy

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.hooks import PathChanged


def _sine():
    class Sine(nn.Module):  # SIREN's activation, in no table; a fresh class per test: the registry is global
        def forward(self, x):
            return torch.sin(x)
    return Sine


def _net(bb, x):
    return nv.wrap(bb, 3, example_input=x).eval()


def test_a_class_registered_first_after_wrapping_that_runs_before_the_stop_is_refused_by_name():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 8, 8)
    Sine = _sine()
    bb = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Sine(), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3))
    net = _net(bb, x)
    assert [s.name for s in net.sites] == ["3"]
    nv.register_activation(Sine, breakpoints=(0.0,))
    twin = copy.deepcopy(net)
    for n in (net, twin):
        for call in (lambda: n(x), lambda: n.explain(x), lambda: n.codes(x)):
            with pytest.raises(PathChanged, match=r"^backbone: '1' \(Sine\) became an activation by "
                                                  r"nv\.register_activation after the sites were found, and runs before "
                                                  r"the pass stops \(at '4'\), so its units would be left out of the "
                                                  r"decision; wrap the model again"):
                call()
    fresh = _net(bb, x)  # the fix the error gives: a new wrap reads its units
    assert [s.name for s in fresh.sites] == ["1", "3"]


def test_a_class_registered_after_wrapping_that_runs_after_the_stop_changes_nothing():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 8, 8)
    Sine = _sine()
    bb = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                       nn.Linear(4, 4), Sine(), nn.Linear(4, 3))
    with pytest.warns(UserWarning, match=r"\['5'\] \(Sine\) runs after the last site"):  # (before it is registered)
        net = _net(bb, x)
    before = net(x)
    nv.register_activation(Sine, breakpoints=(0.0,))
    assert torch.equal(net(x), before)


def test_registering_an_activation_class_again_after_wrapping_is_still_followed():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 8, 8)
    Sine = _sine()
    nv.register_activation(Sine, breakpoints=(0.0,))
    bb = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Sine(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    net = _net(bb, x)
    nv.register_activation(Sine, breakpoints=(-0.5, 0.5))
    z = bb[0](x)
    assert torch.equal(net.codes(x), ((z > -0.5).float() + (z > 0.5).float()).mean((2, 3)))
