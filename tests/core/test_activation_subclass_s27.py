"""Probe S27 P3 finding 2: a subclass of a registered activation with a forward of its own (``class ShiftedReLU(
nn.ReLU)`` whose forward is ``F.relu(x - 1)``) was coded at its parent's breakpoints without a word. The wrap now
warns, once per class, naming the class, the parent whose breakpoints are read and the registration that fixes it;
torch's own subclasses that compute their parent's function (``nn.ReLU6`` of ``nn.Hardtanh``) stay silent."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.core import activations
from neuroview.core.activations import breakpoints


def _net(act, x):
    bb = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), act, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    return nv.wrap(bb, num_classes=3, example_input=x)


def test_an_activation_subclass_with_its_own_forward_is_named_once_with_the_fix():
    class ShiftedReLU(nn.ReLU):  # a fresh class per test: the warning is once per class
        def forward(self, x):
            return F.relu(x - 1.0)

    x = torch.randn(4, 3, 8, 8)
    with pytest.warns(UserWarning, match=r"ShiftedReLU subclasses ReLU but has its own forward.*ReLU's breakpoints "
                                         r"\(0\.0,\).*nv\.register_activation\(ShiftedReLU, breakpoints=") as got:
        _net(ShiftedReLU(), x)
    assert sum("ShiftedReLU" in str(w.message) for w in got) == 1
    assert got[0].filename == __file__  # at the user's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _net(ShiftedReLU(), x)  # once per class
        nv.register_activation(ShiftedReLU, breakpoints=(1.0,))
        net = _net(ShiftedReLU(), x).eval()
    assert breakpoints(ShiftedReLU()) == (1.0,)
    z = net.backbone[0](x)
    assert torch.equal(net.codes(x), (z > 1.0).float().mean((2, 3)))  # its own region, by hand


def test_a_registered_subclass_with_its_own_forward_is_silent():
    class ClippedReLU(nn.ReLU):
        def forward(self, x):
            return x.clamp(0.0, 1.0)

    nv.register_activation(ClippedReLU, breakpoints=(0.0, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _net(ClippedReLU(), torch.randn(4, 3, 8, 8))


def test_subclasses_that_keep_their_parent_s_forward_are_silent():
    class MyReLU(nn.ReLU):  # a subclass with a name of its own, its parent's function
        pass

    class Hardtanh2(nn.Hardtanh):
        def __init__(self):
            super().__init__(-2.0, 2.0)

    x = torch.randn(4, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for act in (MyReLU(), nn.ReLU6(), Hardtanh2(), nn.GELU(), nn.Hardswish(), nn.Mish()):
            _net(act, x)
    assert breakpoints(nn.ReLU6()) == (0.0, 6.0) and breakpoints(Hardtanh2()) == (-2.0, 2.0)


def test_no_activation_class_of_torch_nn_gets_the_warning():
    acts = [c for c in vars(nn).values() if isinstance(c, type) and issubclass(c, nn.Module)
            and c.__module__ == "torch.nn.modules.activation"]
    assert nn.ReLU6 in acts and len(acts) > 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cls in acts:
            try:
                m = cls()
            except TypeError:  # (MultiheadAttention, Threshold: arguments of their own)
                continue
            breakpoints(m)


def test_torch_quantized_activations_are_silent_and_quantized_relu6_is_named():
    """Review R4 finding 6: torch's quantized ELU, Hardswish, LeakyReLU and Sigmoid have forwards of their own that
    compute their parents' functions (kept silent by name); a quantized ReLU6 subclasses nn.ReLU but clips at 6 too,
    so reading it at ReLU's breakpoint (0,) alone is worth the warning."""
    q = pytest.importorskip("torch.ao.nn.quantized")
    same = [q.ELU(0.1, 0), q.Hardswish(0.1, 0), q.LeakyReLU(0.1, 0), q.Sigmoid(0.1, 0)]
    for m in [*same, q.ReLU6()]:
        activations._NAMED.discard(type(m))  # once a class: another test may have named it already
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [breakpoints(m) for m in same] == [(0.0,), (-3.0, 3.0), (0.0,), (0.0,)]
    with pytest.warns(UserWarning, match=r"^wrap: ReLU6 subclasses ReLU but has its own forward.* "
                                         r"nv\.register_activation\(ReLU6, breakpoints="):
        assert breakpoints(q.ReLU6()) == (0.0,)
