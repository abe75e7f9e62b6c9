"""A unit (CNN) or hidden feature (RNN) whose code was the same for every sample of each training batch (dead, or
always on) gets no gradient: training standardizes it to exactly 0. Its classifier weight stays at its random
initial value, which ``unit_importance`` / ``top_units`` / ``time_importance()`` read as importance. They now read 0
for it, found from the normalization's running statistics (``head.constant_features``); ``explain`` is unchanged.

Hand-built networks: 1x1 convolutions on 1x1 images whose channels are dead (``relu(-1)``), always on
(``relu(+1)``), alive (``relu(x)``) and barely varying (``relu(1 + 1e-3 x)``), with classifier weights set by hand.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.head import CodeNorm, constant_features

BATCHES = 50


def _cnn(quantizer: str = "none", normalize: bool = True, batches: int = BATCHES) -> nv.NeuroViewCNN:
    conv = nn.Conv2d(1, 4, 1)
    with torch.no_grad():  # channel 0 dead, 1 always on, 2 alive, 3 alive with a std of 1e-3
        conv.weight.copy_(torch.tensor([0.0, 0.0, 1.0, 1e-3]).view(4, 1, 1, 1))
        conv.bias.copy_(torch.tensor([-1.0, 1.0, 0.0, 1.0]))
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 3, quantizer=quantizer, normalize=normalize)
    g = torch.Generator().manual_seed(0)
    net.train()
    with torch.no_grad():
        net(torch.randn(16, 1, 1, 1, generator=g))  # builds the head (and counts as a training batch)
        for _ in range(batches - 1):
            net(torch.randn(16, 1, 1, 1, generator=g))
        net.classifier.weight.copy_(torch.tensor([[0.5, -0.7, 0.3, 0.2], [0.4, 0.6, -0.2, 0.1], [-0.3, 0.9, 0.1, -0.4]]))
    return net.eval()


def test_codenorm_flags_constant_features_not_small_variance():
    torch.manual_seed(0)
    norm = CodeNorm(4).train()
    for _ in range(BATCHES):  # dead, always on, std 1e-3 around 1, std 1e-3 around 0
        norm(torch.stack([torch.zeros(8), torch.ones(8), 1 + 1e-3 * torch.randn(8), 1e-3 * torch.randn(8)], 1))
    assert constant_features(norm).tolist() == [True, True, False, False]
    # what the rule reads: the initial 1 decayed by 0.9 a batch, nothing added
    assert torch.allclose(norm.running_var[:2].double(), torch.tensor(0.9 ** BATCHES, dtype=torch.float64), rtol=1e-5)


def test_codenorm_cumulative_momentum_and_no_batches():
    norm = CodeNorm(2, momentum=None)
    assert constant_features(norm) is None  # never trained: no record
    assert constant_features(None) is None
    norm.train()
    for _ in range(3):
        norm(torch.stack([torch.full((8,), 0.5), torch.randn(8)], 1))
    assert constant_features(norm).tolist() == [True, False]


def test_statistics_set_at_once_flag_only_a_variance_of_exactly_0():
    """nv.sparsify / fit_ridge_head set the exact variance and one batch: a constant feature reads exactly 0 there (no
    decay; flagged, its refitted weight is 0 anyway), and features of variance 0.5 or 0.9 are no decayed 1 either."""
    norm = CodeNorm(3)
    norm.running_var.copy_(torch.tensor([0.0, 0.5, 0.9]))
    norm.num_batches_tracked.fill_(1)
    assert constant_features(norm).tolist() == [True, False, False]


@pytest.mark.parametrize("quantizer", ["none", "hard"])
def test_unit_importance_reads_zero_for_dead_and_always_on_units(quantizer):
    net = _cnn(quantizer)
    w = net.classifier.weight.detach()
    for standardized in (True, False):
        ui = net.unit_importance(standardized=standardized)
        assert torch.equal(ui[:, :2], torch.zeros(3, 2))  # dead, always on: their weights never trained
    # standardized: the classifier's own (hand-set) weight of the units that vary
    ui = net.unit_importance(standardized=True)
    assert torch.allclose(ui[:, 2], w[:, 2])
    if quantizer == "none":  # relu(1 + 1e-3 x): a std of 1e-3 is no constant
        assert torch.allclose(ui[:, 3], w[:, 3])
    # top_units lists only units read: never the dead or the always-on one
    tops = net.top_units(k=4)
    assert all(ch not in (0, 1) for row in tops for (_, ch, _) in row)
    assert tops[0][0][1] == 2 and tops[0][0][2] == pytest.approx(0.3)  # class 0: 0.3 (unit 2) > 0.2 (unit 3)
    site = net.site_importance()
    assert torch.allclose(site[:, 0], ui.abs().sum(1))


def test_explain_is_unchanged_for_constant_units():
    """explain keeps the network's exact function: the always-on unit contributes its (untrained) weight times 1."""
    net = _cnn("none")
    x = torch.randn(5, 1, 1, 1)
    exp = net.explain(x, target=0)
    w_eff = net.effective_classifier()[0].detach()
    assert torch.allclose(exp.for_class(0)[:, 1], w_eff[0, 1].expand(5))
    assert float(w_eff[0, 1].abs()) > 0
    assert torch.allclose(exp.for_class(0).sum(-1) + exp.bias[0], net(x)[:, 0], atol=1e-5)


def test_without_statistics_unit_importance_keeps_the_weight():
    net = _cnn("none", normalize=False)
    assert torch.equal(net.unit_importance(), net.classifier.weight.detach())
    fresh = _cnn("none", batches=1)
    fresh.norm.num_batches_tracked.zero_()  # statistics of no batch: nothing recorded, nothing zeroed
    assert torch.equal(fresh.unit_importance(standardized=True), fresh.classifier.weight.detach())


def _rnn(normalize: bool = True) -> nv.NeuroViewRNN:
    rnn = nn.RNN(1, 2, nonlinearity="relu", batch_first=True)
    with torch.no_grad():  # hidden feature 0 dead (relu(-1)), feature 1 = relu(x_t)
        rnn.weight_ih_l0.copy_(torch.tensor([[0.0], [1.0]]))
        rnn.weight_hh_l0.zero_()
        rnn.bias_ih_l0.copy_(torch.tensor([-1.0, 0.0]))
        rnn.bias_hh_l0.zero_()
    net = nv.NeuroViewRNN(rnn, 2, max_len=4, normalize=normalize).train()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(BATCHES):
            net(torch.randn(16, 4, 1, generator=g))
        net.classifier.weight.fill_(1.0)  # every feature of every step: weight 1 (the dead one's untrained)
    return net.eval()


def test_rnn_time_importance_reads_zero_for_a_dead_hidden_feature():
    net = _rnn()
    w = net.effective_classifier()[0].detach().reshape(2, 1, 1, 4, 2)  # [C, L, D, T, H]
    assert float(w[..., 0].abs().min()) > 0  # the dead feature's effective weight: nonzero, and untrained
    assert torch.allclose(net.time_importance("abs"), w[..., 1].abs().flatten(1))
    assert torch.allclose(net.time_importance("norm"), w[..., 1].abs().flatten(1))
    assert torch.allclose(net.time_importance("sum", per_layer=True), w[..., 1].flatten(1)[:, None, :])
    x = torch.randn(3, 4, 1)
    exp = net.explain(x)  # unchanged: the contributions are the network's function
    assert torch.allclose(exp.contributions.flatten(2).sum(-1) + exp.bias, net(x), atol=1e-5)


def test_rnn_without_normalization_keeps_every_weight():
    net = _rnn(normalize=False)
    w = net.classifier.weight.detach().reshape(2, 4, 2)
    assert torch.allclose(net.time_importance("abs"), w.abs().sum(-1))
