"""Probe s20 faults in the head's fold and the site search.

- ``effective_classifier()`` handed back the classifier's live Parameters when the head has no normalization
  (``normalize=False``, the ``nv_gru.*`` zoo entries): editing "the effective weights" edited the network.
- A first batch that requires grad (2 samples, or copies of one) had torch warn "Converting a tensor with
  requires_grad=True to a scalar" at the site search's own line.
- An ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` running after the last activation site (a CRNN) was cut off the decision
  and frozen without a word, where a functional ``relu`` in its place is warned of.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv


def _cnn(normalize: bool) -> nv.NeuroViewCNN:
    """A 2-unit CNN whose codes are known: conv weight 1, bias 0, one ReLU site, 'none' quantizer (codes = mean ReLU
    output per channel); classifier set by hand to W = [[1, 2], [3, 4], [5, 6]], b = [0.5, -0.5, 1]."""
    conv = nn.Conv1d(1, 2, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[1.0]], [[-1.0]]]))
        conv.bias.zero_()
    bb = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(2, 3))
    net = nv.wrap(bb, 3, quantizer="none", normalize=normalize, example_input=torch.randn(4, 1, 5))
    with torch.no_grad():
        net.classifier.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
        net.classifier.bias.copy_(torch.tensor([0.5, -0.5, 1.0]))
    return net.eval()


W0 = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
B0 = torch.tensor([0.5, -0.5, 1.0])


@pytest.mark.parametrize("normalize", [False, True])
def test_effective_classifier_is_a_detached_copy_that_editing_leaves_the_network_alone(normalize):
    net = _cnn(normalize)
    x = torch.tensor([[[1.0, -2.0, 3.0, 0.0, -1.0]]])
    codes = torch.tensor([[4.0 / 5, 3.0 / 5]])  # mean relu(x), mean relu(-x): known by hand
    before = net(x).clone()
    w, b = net.effective_classifier()
    if not normalize:  # the folded map is the classifier itself: known by hand
        torch.testing.assert_close(before, codes @ W0.T + B0)
        torch.testing.assert_close((w, b), (W0, B0))
    assert not w.requires_grad and not b.requires_grad
    assert w.untyped_storage().data_ptr() != net.classifier.weight.untyped_storage().data_ptr()
    assert b.untyped_storage().data_ptr() != net.classifier.bias.untyped_storage().data_ptr()
    w[w.abs() < 4] = 0
    b.zero_()
    torch.testing.assert_close(net.classifier.weight.detach(), W0)
    torch.testing.assert_close(net.classifier.bias.detach(), B0)
    torch.testing.assert_close(net(x), before)


def test_eval_mode_decision_still_trains_the_classifier():
    """decide() at eval reads the fold with its gradient (finetune_sparse(mode="eval") trains through it)."""
    net = _cnn(False)
    x = torch.tensor([[[1.0, -2.0, 3.0, 0.0, -1.0]]])
    net(x)[0, 2].backward()  # d logit_2 / dW[2] = codes, d / db[2] = 1
    torch.testing.assert_close(net.classifier.weight.grad, torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.8, 0.6]]))
    torch.testing.assert_close(net.classifier.bias.grad, torch.tensor([0.0, 0.0, 1.0]))


def test_rnn_effective_classifier_is_a_copy_without_normalization():
    torch.manual_seed(0)
    net = nv.wrap(nn.GRU(2, 3, batch_first=True), 2, max_len=4, normalize=False)
    xs = torch.randn(3, 4, 2)
    net(xs)
    net.eval()
    with torch.no_grad():
        net.classifier.weight.copy_(torch.arange(24.0).reshape(2, 12) / 10)
        net.classifier.bias.copy_(torch.tensor([1.0, -1.0]))
    before = net(xs).clone()
    w, b = net.effective_classifier()
    torch.testing.assert_close((w, b), (torch.arange(24.0).reshape(2, 12) / 10, torch.tensor([1.0, -1.0])))
    w.mul_(0.5)
    b.zero_()
    torch.testing.assert_close(net(xs), before)
    torch.testing.assert_close(net.classifier.bias.detach(), torch.tensor([1.0, -1.0]))


@pytest.mark.parametrize("first", ["two", "one", "copies"])
def test_a_first_batch_that_requires_grad_draws_no_torch_warning(first):
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x = {"two": torch.rand(2, 1, 6, 6), "one": torch.rand(1, 1, 6, 6),
         "copies": torch.rand(1, 1, 6, 6).expand(3, 1, 6, 6).clone()}[first].requires_grad_(True)
    net = nv.wrap(bb, 3, normalize=False)
    was = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # torch warns of it once a process: every case here, whatever ran before
    try:
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            out = net(x)
    finally:
        torch.set_warn_always(was)
    assert [str(w.message) for w in got] == []
    out.sum().backward()  # the input's gradient still flows
    assert x.grad is not None and x.grad.shape == x.shape


class _CRNN(nn.Module):
    """A conv front end (one nn.ReLU site), then an RNN doing the sequence modelling, then a Linear head."""

    def __init__(self, rnn: nn.Module, before: nn.Module | None = None):
        super().__init__()
        self.pre = before  # an RNN ahead of the sites, whose states the sites do read
        self.conv, self.act, self.rnn, self.fc = nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), rnn, nn.Linear(6, 3)

    def forward(self, x):
        if self.pre is not None:
            x = self.pre(x.transpose(1, 2))[0].transpose(1, 2)
        o = self.rnn(self.act(self.conv(x)).transpose(1, 2))[0]
        return self.fc(o[:, -1])


def _wrap(model, **kw):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        net = nv.wrap(model, 3, **kw)
        net(torch.randn(4, 2, 8))
    return net, [str(w.message) for w in got]


@pytest.mark.parametrize("kind", [nn.GRU, nn.LSTM, nn.RNN])
def test_an_rnn_after_the_last_site_is_warned_of_and_the_rnn_route_named(kind):
    net, said = _wrap(_CRNN(kind(4, 6, batch_first=True)))
    cut = [s for s in said if "after its last site" in s]
    assert len(cut) == 1, said
    assert f"'rnn' ({kind.__name__})" in cut[0] and "where the decision stops (at 'rnn')" in cut[0]
    assert f"The model holds an nn.{kind.__name__} at 'rnn'" in cut[0]
    assert "nv.wrap(model.rnn, num_classes, max_len=...)" in cut[0] and "layers=[...]" in cut[0]
    # what it says is so: the RNN is frozen and its weights do not move the decision
    assert not any(p.requires_grad for p in net.backbone.rnn.parameters())
    x = torch.randn(4, 2, 8)
    before = net.eval()(x).clone()
    with torch.no_grad():
        for p in net.backbone.rnn.parameters():
            p.normal_()
    torch.testing.assert_close(net(x), before)


def test_named_sites_silence_it_and_an_rnn_before_the_sites_is_no_finding():
    _, said = _wrap(_CRNN(nn.GRU(4, 6, batch_first=True)), layers=["act"])
    assert not [s for s in said if "after its last site" in s]
    # a GRU ahead of the sites (the sites read its states) and a plain tail: nothing to say
    model = _CRNN(_First(nn.Identity()), before=nn.GRU(2, 2, batch_first=True))
    model.fc = nn.Linear(4, 3)
    _, said = _wrap(model)
    assert not [s for s in said if "after its last site" in s], said


def test_the_rnn_cut_off_is_the_one_named_not_the_first_in_the_model():
    model = _CRNN(nn.LSTM(4, 6, batch_first=True), before=nn.GRU(2, 2, batch_first=True))
    _, said = _wrap(model)
    cut = [s for s in said if "after its last site" in s]
    assert len(cut) == 1 and "The model holds an nn.LSTM at 'rnn'" in cut[0] and "'pre'" not in cut[0], said


class _First(nn.Module):
    """Returns ``(module(x),)``: a tail shaped like an RNN's output without one."""

    def __init__(self, m: nn.Module):
        super().__init__()
        self.m = m

    def forward(self, x):
        return (self.m(x),)
