"""Probe P3's findings: a non-finite training batch left out of the head's running statistics, a site of 0
positions refused by name, ``baseline="mean"`` / ``standardized=True`` flagged on statistics that never
saw a batch, and a site after a Flatten fed another image size named as x's."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.head import CodeNorm


# ------------------------------------------------------------ 1. a non-finite training batch
def test_a_nonfinite_batch_leaves_codenorm_statistics_as_they_were():
    norm = CodeNorm(2, momentum=0.5, floor=0.0).train()
    norm(torch.tensor([[0.0, 0.0], [2.0, 2.0]]))  # mean 1, unbiased var 2: lerp 0.5 from (0, 1)
    assert norm.running_mean.tolist() == [0.5, 0.5] and norm.running_var.tolist() == [1.5, 1.5]
    with pytest.warns(UserWarning, match=r"batch 2 .*NaN or Inf.*features \[0\]"):
        norm(torch.tensor([[float("inf"), 0.0], [2.0, 4.0]]))
    assert norm.running_mean.tolist() == [0.5, 0.5] and norm.running_var.tolist() == [1.5, 1.5]
    assert int(norm.num_batches_tracked) == 1  # the batch is not counted: a cumulative average stays right
    norm(torch.tensor([[1.0, 1.0], [3.0, 3.0]]))  # a finite batch after it moves them as usual (mean 2, var 2)
    assert norm.running_mean.tolist() == [1.25, 1.25] and norm.running_var.tolist() == [1.75, 1.75]
    assert int(norm.num_batches_tracked) == 2


def test_a_skipped_overflowing_step_leaves_the_network_as_it_was():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
    net = nv.NeuroViewCNN(bb, num_classes=3, input_shape=(1, 8, 8)).train()
    good = torch.randn(16, 1, 8, 8)
    net(good)
    before = copy.deepcopy(net)
    huge = torch.full((16, 1, 8, 8), 3e38) * torch.randn(16, 1, 8, 8).sign()  # finite, overflows in the backbone
    with pytest.warns(UserWarning, match="NaN or Inf"):
        loss = net(huge).sum()
    assert not torch.isfinite(loss)  # the step a gradient scaler skips
    assert torch.isfinite(net.norm.running_mean).all() and torch.isfinite(net.norm.running_var).all()
    torch.testing.assert_close(net.eval()(good), before.eval()(good), rtol=0, atol=0)


# ------------------------------------------------------------ 2. a site of 0 positions
class _Crop(nn.Module):
    def forward(self, x):
        return x[..., 3:, 3:]


@pytest.mark.parametrize("training", [False, True])
def test_a_site_with_no_positions_is_refused_by_name(training):
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 1), _Crop(), nn.ReLU())
    net = nv.NeuroViewCNN(bb, num_classes=3, input_shape=(1, 8, 8)).train(training)
    mean, var = net.norm.running_mean.clone(), net.norm.running_var.clone()
    with pytest.raises(ValueError) as e:
        net(torch.randn(4, 1, 3, 3))
    msg = str(e.value)
    assert "site '4'" in msg and "(4, 6, 0, 0)" in msg and "no positions" in msg
    assert "(1, 3, 3)" in msg and "(1, 8, 8)" in msg  # x's samples and those the sites were found on
    assert torch.equal(net.norm.running_mean, mean) and torch.equal(net.norm.running_var, var)
    assert torch.isfinite(net.eval()(torch.randn(2, 1, 8, 8))).all()


# ------------------------------------------------------------ 3. statistics that never saw a batch
def test_mean_baseline_warns_when_the_head_never_saw_a_training_batch():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    net = nv.NeuroViewCNN(bb, num_classes=3, input_shape=(1, 6, 6)).eval()
    x = torch.randn(4, 1, 6, 6)
    with pytest.warns(UserWarning, match=r"baseline: 'mean'.*never saw a training batch.*zero codes.*nv\.mean_codes"):
        exp = net.explain(x, baseline="mean")
    torch.testing.assert_close(exp.bias, net.classifier.bias)  # what it is, as the warning says: zero codes
    with pytest.warns(UserWarning, match=r"baseline: 'mean'.*never saw a training batch"):
        nv.readability(net, [(x, torch.zeros(4, dtype=torch.long))])  # readability's default
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.explain(x)  # zero codes, and a given tensor, say nothing
        net.explain(x, baseline=torch.zeros(net.num_units))


def test_mean_baseline_warns_for_an_rnn_whose_head_never_saw_a_batch():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), num_classes=3, max_len=6).eval()
    with pytest.warns(UserWarning, match=r"baseline: 'mean'.*never saw a training batch"):
        net.explain(torch.randn(5, 6, 2), baseline="mean")


def test_mean_baseline_of_a_file_without_the_counter_still_reads_its_statistics():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), num_classes=3, input_shape=(1, 6, 6)).eval()
    mean = torch.arange(4.0) / 10  # a BatchNorm-v1-style file: real statistics, no num_batches_tracked (loads as 0)
    net.norm.running_mean.copy_(mean)
    net.norm.running_var.fill_(2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exp = net.explain(torch.randn(3, 1, 6, 6), baseline="mean")
    w, b = net.effective_classifier()
    torch.testing.assert_close(exp.bias, b + w @ mean)


def test_standardized_importance_warns_when_the_statistics_never_saw_a_batch():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), num_classes=3, input_shape=(1, 6, 6))
    with pytest.warns(UserWarning, match=r"standardized=True.*never saw a training batch"):
        net.unit_importance(standardized=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.unit_importance()  # the raw weights are what was asked
        net.train()(torch.randn(8, 1, 6, 6))
        net.unit_importance(standardized=True)  # statistics seen: no warning


# ------------------------------------------------------------ 4. a site after a Flatten, another image size
def test_a_site_after_flatten_fed_another_size_names_both_shapes():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.ReLU()), num_classes=3,
                          input_shape=(1, 8, 8)).eval()
    with pytest.raises(ValueError) as e:
        net(torch.randn(2, 1, 10, 10))
    msg = str(e.value)
    assert msg.startswith("x: ") and "site '2'" in msg and "128 units" in msg and "72" in msg
    assert "(1, 10, 10)" in msg and "(1, 8, 8)" in msg
    assert "another path" not in msg


def test_on_a_device_the_batches_left_out_are_said_when_the_network_goes_to_eval(monkeypatch):
    from neuroview.core import head

    monkeypatch.setattr(head, "_SAID_AT_ONCE", ())  # as on a GPU: counted there, no host sync every step
    norm = CodeNorm(2, momentum=0.5).train()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        norm(torch.tensor([[float("nan"), 0.0], [2.0, 4.0]]))
        norm(torch.tensor([[0.0, 0.0], [2.0, 2.0]]))
        norm(torch.tensor([[0.0, float("inf")], [2.0, 4.0]]))
    assert norm.running_mean.tolist() == [0.5, 0.5] and int(norm.num_batches_tracked) == 1
    with pytest.warns(UserWarning, match="norm: 2 training batches gave NaN or Inf statistics"):
        norm.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        norm.train().eval()  # said once
