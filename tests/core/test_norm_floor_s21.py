"""``norm_floor`` (NeuroViewCNN) and ``floor`` (CodeNorm) are refused by name unless a finite number >= 0: inf trained
every weight to NaN without a word and the next forward blamed x; NaN and negatives were kept and acted as no floor."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.head import CodeNorm


def _body():
    return nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten())


@pytest.mark.parametrize("floor", [math.inf, -math.inf, "0.1", True, np.bool_(True), torch.tensor(True),
                                   torch.tensor([0.1]), torch.tensor(math.inf), None])
def test_a_floor_that_is_no_finite_real_number_is_refused_by_name(floor):
    with pytest.raises(ValueError, match=r"^norm_floor: expected a finite real number >= 0 .*got"):
        nv.NeuroViewCNN(_body(), num_classes=2, norm_floor=floor)
    with pytest.raises(ValueError, match=r"^floor: expected a finite real number >= 0"):
        CodeNorm(3, floor=floor)


@pytest.mark.parametrize("floor, want", [(0, 0.0), (0.0, 0.0), (0.1, 0.1), (2, 2.0), (np.float32(0.5), 0.5),
                                         (np.int64(0), 0.0), (np.float64(0.25), 0.25), (torch.tensor(0.5), 0.5),
                                         (torch.tensor(3), 3.0), (Fraction(1, 4), 0.25)])
def test_finite_floors_at_least_0_are_taken_as_floats(floor, want):
    # a numpy grid's np.float32, a pandas integer column's np.int64, a 0-dim tensor, a Fraction (were refused)
    net = nv.NeuroViewCNN(_body(), num_classes=2, norm_floor=floor)
    net(torch.randn(4, 1, 12))
    assert net.norm.floor == want and type(net.norm.floor) is float
    assert CodeNorm(3, floor=floor).floor == want and type(CodeNorm(3, floor=floor).floor) is float


def test_a_negative_floor_acts_as_none_taken_as_0_with_a_warning_naming_norm_floor():
    # before 5d1cd65 a negative floor acted as none, and runs trained so: they build (and load) as that function
    with pytest.warns(UserWarning, match=r"^norm_floor: a negative or NaN floor \(-1\.0\) acts as none; taken as norm_floor=0"):
        net = nv.NeuroViewCNN(_body(), num_classes=2, norm_floor=-1.0)
    net(torch.randn(4, 1, 12))
    assert net.norm.floor == 0.0
    norm = CodeNorm(2, floor=0.0).train()
    f = torch.tensor([[0.0, 1.0], [0.0, 3.0]])  # feature 0 constant: by hand, standardized to 0 (no floor), feature 1 to -1, 1
    torch.testing.assert_close(norm(f), torch.tensor([[0.0, -1.0], [0.0, 1.0]]), rtol=0, atol=1e-4)
    with pytest.warns(UserWarning, match=r"^floor: a negative or NaN floor"):
        assert CodeNorm(2, floor=-0.5).floor == 0.0
    with pytest.warns(UserWarning, match=r"^norm_floor: a negative or NaN floor \(nan\)"):  # NaN acted as none too
        assert nv.NeuroViewCNN(_body(), num_classes=2, norm_floor=math.nan)._floor == 0.0


def _recorded(floor, nested=False):
    """A state dict of a CodeNorm whose record (its _metadata) holds ``floor``, as a file of a run built with it."""
    norm = CodeNorm(2)
    norm.floor = floor  # what a run built before the check (or a file edited) recorded
    return (nn.Sequential(norm) if nested else norm).state_dict()


@pytest.mark.parametrize("nested", [False, True])
def test_a_recorded_floor_that_is_not_finite_is_refused_on_load_naming_its_key(nested):
    for bad in (math.inf, -math.inf):
        target = nn.Sequential(CodeNorm(2)) if nested else CodeNorm(2)
        key = "0.floor" if nested else "floor"
        with pytest.raises(ValueError, match=rf"^{key} \(the floor the state dict records\): expected a finite real number"):
            target.load_state_dict(_recorded(bad, nested))
        assert (target[0] if nested else target).floor == 0.1  # was: inf set, every standardized code 0


def test_a_recorded_negative_floor_loads_as_0_with_a_warning_and_a_finite_one_as_recorded():
    target = CodeNorm(2)
    with pytest.warns(UserWarning, match=r"^floor \(the floor the state dict records\): a negative or NaN floor \(-1\.0\) acts "
                                         r"as none; taken as norm_floor=0"):
        target.load_state_dict(_recorded(-1.0))
    assert target.floor == 0.0  # was: -1.0 kept
    target.load_state_dict(_recorded(0.25))
    assert target.floor == 0.25


def test_a_run_trained_with_a_negative_norm_floor_loads_from_its_checkpoint(tmp_path):
    from neuroview.training.module import NeuroViewModule
    with pytest.warns(UserWarning, match="norm_floor: a negative or NaN floor"):
        m = NeuroViewModule("nv_small_cnn", num_classes=3, in_channels=1, model_kwargs={"widths": [4], "norm_floor": -1.0})
    m.build(torch.randn(4, 1, 8, 8))
    head = [n for n in m.modules() if isinstance(n, CodeNorm)]
    assert [n.floor for n in head] == [0.0]


def test_a_weight_file_of_a_network_built_with_a_negative_floor_loads(tmp_path):
    # the file records norm_floor=-1.0 (which acted as none); a network built with it now holds 0: the same function
    from neuroview.zoo.api import create_model
    from neuroview.zoo.pretrained import save_pretrained
    from neuroview.zoo.weights import load_weights

    with pytest.warns(UserWarning, match="norm_floor: a negative or NaN floor"):
        torch.manual_seed(0)
        net = create_model("nv_small_cnn", num_classes=10, norm_floor=-1.0).eval()
        net(torch.randn(4, 1, 8, 8))
        save_pretrained(net, "nv_small_cnn.neg", architecture="nv_small_cnn", arch_kwargs={"num_classes": 10, "norm_floor": -1.0},
                        dataset={"name": "x"}, recipe=None, seed=0, metrics={}, root=tmp_path)
        again = create_model("nv_small_cnn", num_classes=10, norm_floor=-1.0).eval()
    load_weights(again, tmp_path / "nv_small_cnn.neg.safetensors")
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(again(x), net(x), rtol=0, atol=0)
