"""Probe S27 P3 finding 1, part b: nv.sparsify and nv.mean_codes of a NeuroViewCNN subclass whose forward scales the
input read ``net.codes(x)`` of the unscaled input, and the sparse network's own forward then disagreed with its
explanations without a word. One batch is checked: refused by name where they differ, and a subclass whose override
changes no number is sparsified as a plain network."""

import pytest
import torch
from torch import nn

import neuroview as nv


class Scaled(nv.NeuroViewCNN):  # the input's scale folded into the wrapper
    def forward(self, x):
        return super().forward(x / 16.0 - 0.5)


class Logged(nv.NeuroViewCNN):
    def forward(self, x):
        return super().forward(x)


class Members(nv.Ensemble):  # (a plain ensemble of members whose class has a temperature)
    pass


class Temp(nv.NeuroViewCNN):
    def forward(self, x):
        return super().forward(x) / 3.0


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(60, 1, 12, generator=g) * 16
    y = (x[:, 0, 2:6].mean(1) > 8).long()
    return x, y


def _net(cls, x):
    bb = nn.Sequential(nn.Conv1d(1, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(6, 2))
    return cls(bb, 2, example_input=x[:8]).eval()


@pytest.mark.parametrize("call", ["sparsify", "mean_codes"])
def test_sparsify_and_mean_codes_of_a_subclass_whose_forward_scales_the_input_are_refused(call):
    torch.manual_seed(0)
    x, y = _data()
    net = _net(Scaled, x)
    with pytest.raises(ValueError, match=r"^net: Scaled has its own forward, whose logits on the first batch of train "
                                         r"differ from its codes' linear decision .*by up to \d"):
        nv.sparsify(net, [(x, y)], tolerance=5.0) if call == "sparsify" else nv.mean_codes(net, [(x, y)])


def test_sparsify_of_members_with_a_temperature_is_refused_by_the_member_s_class():
    torch.manual_seed(0)
    x, y = _data()
    ens = nv.Ensemble([_net(Temp, x), _net(Temp, x)]).eval()
    with pytest.raises(ValueError, match=r"^net: Temp \(members\.0\) has its own forward"):
        nv.sparsify(ens, [(x, y)], tolerance=5.0)


def test_a_subclass_whose_override_changes_nothing_is_sparsified_and_decides_as_it_explains():
    torch.manual_seed(0)
    x, y = _data()
    sp = nv.sparsify(_net(Logged, x), [(x, y)], tolerance=5.0)
    assert type(sp) is Logged
    with torch.no_grad():
        assert torch.allclose(sp(x), sp.explain(x).logits, atol=1e-5)
