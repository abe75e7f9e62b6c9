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


def _bb(act):
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), act, nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3))


_MEMBER_FIX = (r"nv\.wrap\(ens\.members\[1\]\.unwrap\(\), .*ens\.members\[1\]\.state_dict\(\).*; then build the "
               r"Ensemble again with the new member in its place$")


def test_an_ensemble_member_s_module_that_became_an_activation_is_named_with_the_member_s_fix():
    """Review R4 finding 4: the error of an Ensemble's pass said ``backbone: '1' (Sine) ...`` and advised
    ``net.unwrap()``, naming neither the member nor the Ensemble's own fix (as README promises for edits)."""
    torch.manual_seed(0)
    x = torch.randn(6, 3, 8, 8)
    Sine = _sine()
    ens = nv.Ensemble([_net(_bb(nn.ReLU()), x), _net(_bb(Sine()), x)]).eval()
    nv.register_activation(Sine, breakpoints=(0.0,))
    for call in (lambda: ens(x), lambda: ens.explain(x), lambda: ens.codes(x)):
        with pytest.raises(PathChanged, match=r"^members\.1\.backbone: '1' \(Sine\) became an activation by "
                                              r"nv\.register_activation after the sites were found.*" + _MEMBER_FIX):
            call()


def test_an_activation_added_to_an_ensemble_member_is_named_with_the_member_s_fix():
    torch.manual_seed(0)
    x = torch.randn(6, 3, 8, 8)
    ens = nv.Ensemble([_net(_bb(nn.ReLU()), x) for _ in range(2)]).eval()
    ens.members[1].backbone[0] = nn.Sequential(ens.members[1].backbone[0], nn.Tanh())
    for call in (lambda: ens(x), lambda: ens.explain(x), lambda: ens.codes(x)):
        with pytest.raises(PathChanged, match=r"^members\.1\.backbone: its modules were edited after the sites were "
                                              r"found: '0\.1' \(Tanh\) was added.*" + _MEMBER_FIX):
            call()
