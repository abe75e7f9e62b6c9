"""Loose ends of session 22's fixes: a site with no values on the first batch, refused by the site's name (the
recorder refuses later batches); the batched ensemble's training path leaves a batch with NaN/Inf statistics out of
the members' running statistics, as :class:`~neuroview.core.head.CodeNorm` does."""

from __future__ import annotations

import copy
import re
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.batched import _normalize_in_training
from neuroview.core.head import CodeNorm


# ------------------------------------------------------------ a site with no values on the first batch
def _cropped():  # ZeroPad2d(-2) of a 4x4 map leaves 0x0: site '4' has 6 units and no positions
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ZeroPad2d(-2), nn.ReLU())


def _no_units():  # Linear(4, 0): site '3' has no units
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "Initializing zero-element tensors is a no-op"
        return nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 0), nn.ReLU())


@pytest.mark.parametrize("backbone, shape, site, found, dims", [
    (_cropped, (1, 4, 4), "4", "(2, 6, 0, 0)", "[2, 3]"),
    (_no_units, (5,), "3", "(2, 0)", "[1]"),
])
def test_a_site_with_no_values_on_the_first_batch_is_refused_by_name(backbone, shape, site, found, dims):
    torch.manual_seed(0)
    bb = backbone()
    with pytest.raises(ValueError) as e:
        nv.NeuroViewCNN(bb, num_classes=3, input_shape=shape)
    msg = str(e.value)
    assert f"site {site!r}: its input {found} holds no values (size 0 on dims {dims})" in msg
    assert f"(of shape {shape})" in msg and "layers=[...]" in msg
    assert "forward pass on this batch failed" not in msg  # not blamed on x nor on the backbone (it ran)
    net = nv.NeuroViewCNN(bb, num_classes=3).train()  # a first real batch, in training, says the same
    with pytest.raises(ValueError, match=rf"site '{site}': its input {re.escape(found)} holds no values"):
        net(torch.randn(5, *shape))


def test_a_site_with_no_values_left_out_by_layers_leaves_the_others_read():
    torch.manual_seed(0)
    bb = _cropped()
    net = nv.NeuroViewCNN(bb, num_classes=3, layers=["1"], input_shape=(1, 4, 4), quantizer="none").eval()
    assert [(s.name, s.channels) for s in net.sites] == [("1", 4)]
    x = torch.randn(2, 1, 4, 4)
    codes = torch.relu(bb[0](x)).mean((2, 3))  # the ReLU's output, averaged over its 16 positions, per channel
    torch.testing.assert_close(net.codes(x), codes)


# ------------------------------------------------------------ the batched ensemble's training statistics
def test_the_batched_training_path_leaves_a_member_s_nonfinite_batch_out_of_its_statistics():
    norms = [CodeNorm(2, momentum=0.5, floor=0.0).train() for _ in range(2)]
    # [B, k * U], member-major: member 0 reads (0, 0), (2, 2); member 1 (inf, 0), (2, 4)
    f = torch.tensor([[0.0, 0.0, float("inf"), 0.0], [2.0, 2.0, 2.0, 4.0]])
    with pytest.warns(UserWarning, match=r"batch 1 gave NaN or Inf statistics at features \[0\] of 2"):
        out = _normalize_in_training(norms, f, 2)
    # member 0: mean 1, unbiased var 2, a lerp of 0.5 from (0, 1); member 1 left as it was, and not counted
    assert norms[0].running_mean.tolist() == [0.5, 0.5] and norms[0].running_var.tolist() == [1.5, 1.5]
    assert norms[1].running_mean.tolist() == [0.0, 0.0] and norms[1].running_var.tolist() == [1.0, 1.0]
    assert [int(n.num_batches_tracked) for n in norms] == [1, 0]
    torch.testing.assert_close(out[:, 0], torch.tensor([[-1.0, -1.0], [1.0, 1.0]]) / (1 + 1e-5) ** 0.5)
    _normalize_in_training(norms, torch.tensor([[1.0, 1.0, 0.0, 0.0], [3.0, 3.0, 2.0, 2.0]]), 2)  # both finite
    assert norms[0].running_mean.tolist() == [1.25, 1.25] and norms[0].running_var.tolist() == [1.75, 1.75]
    assert norms[1].running_mean.tolist() == [0.5, 0.5] and norms[1].running_var.tolist() == [1.5, 1.5]
    assert [int(n.num_batches_tracked) for n in norms] == [2, 1]


def test_a_batched_ensemble_s_overflowing_step_leaves_the_statistics_the_members_keep_apart():
    torch.manual_seed(0)
    apart = nv.create_model("nv_lite", num_classes=3, in_channels=2, members=2)
    x = torch.randn(6, 2, 40)
    apart.eval()(x)
    batched = copy.deepcopy(apart)
    batched.batched = True
    huge = torch.full((6, 2, 40), 3e38) * torch.randn(6, 2, 40).sign()  # finite; overflows in the backbone
    for net in (apart, batched):
        net.train().member_logits(x)
        with pytest.warns(UserWarning, match="NaN or Inf statistics"):
            net.member_logits(huge)
    assert batched._pass is not None and apart._pass is None
    for a, b in zip(apart.members, batched.members):
        assert torch.isfinite(b.norm.running_mean).all() and torch.isfinite(b.norm.running_var).all()
        assert int(b.norm.num_batches_tracked) == int(a.norm.num_batches_tracked) == 1
        torch.testing.assert_close(b.norm.running_mean, a.norm.running_mean)
        torch.testing.assert_close(b.norm.running_var, a.norm.running_var)
