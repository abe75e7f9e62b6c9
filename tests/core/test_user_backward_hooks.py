"""A backbone whose layers carry the user's own full backward hooks (``register_full_backward_hook``, as Captum's
layer attributions and gradient-logging tools add them): each such hook hands the layer's input and output on
through ``x.view_as(x)``, a new tensor, so the wrapper lost which layer produced a site's input and refused with
a ``unit_axis=`` error. Wrapped now as without the hooks: the same units and logits, and the user's hooks still fire."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv


def _cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def test_layers_with_full_backward_hooks_wrap_as_without_them():
    plain, hooked = _cnn(), _cnn()
    fired = []
    for i in (0, 1, 2):  # a conv, the ReLU site after it, the next conv
        hooked[i].register_full_backward_hook(lambda mod, gin, gout, i=i: fired.append(i))
    x = torch.randn(3, 1, 9, 9)
    ref, net = nv.NeuroViewCNN(plain, num_classes=3), nv.NeuroViewCNN(hooked, num_classes=3)
    ref(x), net(x)
    assert net.units == ref.units and len(net.units) == 4 + 8
    net.load_state_dict(ref.state_dict())
    net.eval(), ref.eval()
    torch.testing.assert_close(net(x), ref(x), rtol=0, atol=0)
    exp = net.explain(x)
    torch.testing.assert_close(exp.contributions.sum(-1) + exp.bias, exp.logits, rtol=0, atol=1e-5)
    net.train()
    net(x.requires_grad_()).sum().backward()
    assert sorted(set(fired)) == [0, 1, 2]  # the user's hooks are left in place and run


def test_a_reshaping_view_as_does_not_pass_on_the_layout():
    """``view_as`` to another shape is a reshape: the conv's layout is not inherited, so the wrapper asks for
    ``unit_axis=`` as for any reshape it cannot follow, rather than reading a [B, 7, 7, 4] map along axis 1."""
    class Flip(nn.Module):
        def forward(self, x):
            return x.view_as(torch.empty(x.shape[0], x.shape[2], x.shape[3], x.shape[1]))

    m = nn.Sequential(nn.Conv2d(1, 4, 3), Flip(), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 7 * 7, 2))
    with pytest.raises(ValueError, match=r"unit_axis: cannot tell where the units of site '2' lie: its input has "
                                         r"shape \(2, 7, 7, 4\)"):
        nv.NeuroViewCNN(m, num_classes=2)(torch.randn(2, 1, 9, 9))
