"""What ``head.constant_features`` may read from the running statistics (review of 0d816df):

- in bfloat16 / float16 statistics the float resolution cannot tell a decayed initial variance from a real small one
  (a window of ``(4 eps mean)^2`` is 2.4e-4 at a mean of 0.5 in bfloat16): nothing is flagged there (it zeroed 14 real
  units of ``nv_small_cnn.digits.bfloat16()``, 24.5% of its importance);
- statistics set in one go (``sparsify``, ``fit_ridge_head``, ``retrofit``: one batch, the exact variance) are never
  read as a decay from 1;
- a running variance of exactly 0 (float32/64) is a constant feature whatever the momentum history: what
  ``recompute_batchnorm`` (``PreciseBatchNorm``) leaves for a dead unit, momentum put back.

Hand-built networks whose channels are dead (``relu(-1)``), always on (``relu(+1)``) or vary by a known std.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.head import CodeNorm, constant_features
from neuroview.core.rnn_steps import unreached_steps, untrained_features
from neuroview.training.callbacks import recompute_batchnorm


def _train(norm: CodeNorm, batches: int, std: float, dtype=torch.float32) -> CodeNorm:
    g = torch.Generator().manual_seed(0)
    norm.train()
    for _ in range(batches):  # dead, around 0.5 with a small std, unit variance
        f = torch.stack([torch.zeros(32), 0.5 + std * torch.randn(32, generator=g), torch.randn(32, generator=g)], 1)
        norm(f.to(dtype))
    return norm


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("batches", [10, 50, 200])
def test_low_precision_statistics_flag_nothing(dtype, batches):
    """A real feature of std 5e-3 (variance 2.5e-5) around 0.5: bfloat16's window there was 2.4e-4 (flagged)."""
    trained = _train(CodeNorm(3), batches, 5e-3)
    assert constant_features(trained).tolist() == [True, False, False]  # float32: the dead one only
    cast = copy.deepcopy(trained).to(dtype)
    assert constant_features(cast).tolist() == [False, False, False]
    low = _train(CodeNorm(3, dtype=dtype), batches, 5e-3, dtype)  # trained in low precision (bf16-true)
    assert constant_features(low).tolist() == [False, False, False]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_statistics_set_in_one_go_are_never_read_as_a_decay(dtype):
    """One batch and the exact variance: a real variance of 0.9 next to a mean of 0.5 is no decayed initial 1 (it was
    flagged in every dtype, the bfloat16 window around 0.9 being +-0.04); a variance of exactly 0 is a constant."""
    norm = CodeNorm(4, dtype=dtype)
    norm.running_mean.copy_(torch.tensor([0.5, 0.5, 0.0, 0.5]))
    norm.running_var.copy_(torch.tensor([0.9, 0.88, 0.0, 0.5]))
    norm.num_batches_tracked.fill_(1)
    exact_zero = dtype in (torch.float32, torch.float64)
    assert constant_features(norm).tolist() == [False, False, exact_zero, False]


def test_nv_small_cnn_digits_in_bfloat16_keeps_its_unit_importance():
    """The reviewer's case: the float32 network flags nothing; cast to bfloat16 it flagged 14 real units (std of their
    codes over the training split 0.005 to 0.01) and read them 0. Its importance is now the float32 one, rounded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = nv.create_model("nv_small_cnn.digits", pretrained=True).eval()
    low = copy.deepcopy(net).bfloat16().eval()
    assert not bool(constant_features(net.norm).any())
    assert not bool(constant_features(low.norm).any())
    w32, wlo = net.unit_importance(), low.unit_importance().float()
    assert int((wlo == 0).sum()) == int((w32 == 0).sum())
    assert torch.allclose(wlo, w32, rtol=0.05, atol=1e-3)
    assert torch.allclose(low.site_importance().float(), net.site_importance(), rtol=0.02)


def _cnn_after_recompute(batches: int = 30):
    conv = nn.Conv2d(1, 4, 1)
    with torch.no_grad():  # channel 0 dead, 1 always on, 2 and 3 alive
        conv.weight.copy_(torch.tensor([0.0, 0.0, 1.0, 1.0]).view(4, 1, 1, 1))
        conv.bias.copy_(torch.tensor([-1.0, 1.0, 0.5, 0.2]))
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 3).train()
    g = torch.Generator().manual_seed(0)
    data = [torch.randn(16, 1, 1, 1, generator=g) for _ in range(batches)]
    with torch.no_grad():
        for x in data:
            net(x)
        net.classifier.weight.copy_(torch.tensor([[0.5, -0.7, 0.3, 0.2], [0.4, 0.6, -0.2, 0.1], [-0.3, 0.9, 0.1, -0.4]]))
    recompute_batchnorm(net, data)  # PreciseBatchNorm's recompute: a cumulative average, momentum put back
    return net.eval()


def test_a_variance_of_exactly_zero_after_recompute_batchnorm_is_flagged():
    net = _cnn_after_recompute()
    assert net.norm.momentum == 0.1 and int(net.norm.num_batches_tracked) == 30
    assert net.norm.running_var[:2].tolist() == [0.0, 0.0]  # recomputed exactly: no decay to trace
    assert constant_features(net.norm).tolist() == [True, True, False, False]
    ui = net.unit_importance()
    assert torch.equal(ui[:, :2], torch.zeros(3, 2))  # it read the untrained weights (3.7, 0.7, -1.4 in the review)
    assert all(ch not in (0, 1) for row in net.top_units(4) for (_, ch, _) in row)
    x = torch.randn(5, 1, 1, 1)  # explain keeps the exact function
    exp = net.explain(x)
    assert torch.allclose(exp.contributions.flatten(2).sum(-1) + exp.bias, net(x), atol=1e-5)


def _rnn(batches: int, lengths: int = 3):
    rnn = nn.RNN(1, 3, nonlinearity="relu", batch_first=True)
    with torch.no_grad():  # hidden feature 0 dead, 1 = relu(1 + 5e-3 x_t) (std 5e-3), 2 = relu(x_t)
        rnn.weight_ih_l0.copy_(torch.tensor([[0.0], [5e-3], [1.0]]))
        rnn.weight_hh_l0.zero_()
        rnn.bias_ih_l0.copy_(torch.tensor([-1.0, 1.0, 0.0]))
        rnn.bias_hh_l0.zero_()
    net = nv.NeuroViewRNN(rnn, 2, max_len=4).train()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(batches):  # step 3 never reached
            net(torch.randn(16, 4, 1, generator=g), lengths=torch.full((16,), lengths))
    return net.eval()


@pytest.mark.parametrize("batches", [1, 10, 30])
def test_rnn_in_bfloat16_keeps_real_features_and_still_finds_unreached_steps(batches):
    net = _rnn(batches)
    untrained = untrained_features(net.norm, net.feature_shape)[0, 0]  # [steps, H]
    if batches > 1:  # float32: the dead feature at reached steps, every feature of step 3
        assert untrained.tolist() == [[True, False, False]] * 3 + [[True, True, True]]
    low = copy.deepcopy(net).bfloat16()
    assert low.unreached_steps().tolist() == [False, False, False, True]
    untrained = untrained_features(low.norm, low.feature_shape)[0, 0]
    assert untrained.tolist() == [[False, False, False]] * 3 + [[True, True, True]]  # feature 1 was flagged
    ti = low.time_importance("abs").float()
    assert torch.equal(ti[:, 3], torch.zeros(2)) and bool((ti[:, :3] > 0).all())


def test_unreached_steps_of_statistics_set_in_one_go_and_in_low_precision():
    """Padding in statistics set in one go: mean and variance exactly 0; a step reached has neither."""
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        norm = CodeNorm(2 * 2, dtype=dtype)
        norm.running_mean.copy_(torch.tensor([0.3, 0.0, 0.0, 0.0]))
        norm.running_var.copy_(torch.tensor([0.9, 0.2, 0.0, 0.0]))
        norm.num_batches_tracked.fill_(1)
        assert unreached_steps(norm, (1, 1, 2, 2)).tolist() == [False, True]
