"""A state dict loads as the function it was saved as, whichever way ``normalize`` differs.

A file with a normalization (``norm.*``) loads into a ``normalize=False`` network by building it
(``tests/attribution/test_given_batches.py::test_a_sparsified_normalize_false_network_loads_into_the_constructor_it_came_from``).
The mirror case, a ``normalize=False`` network's file (a head and no ``norm.*``) loaded into a default wrap, failed
with torch's bare "Missing key(s) ... norm.running_mean" (strict) or kept the new wrap's normalization (strict=False:
logits 0.02 off, without a word). Known answers: hand-set backbones and heads, logits computed here by hand."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import neuroview as nv

W = torch.tensor([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
B = torch.tensor([0.1, -0.2, 0.3])


def _cnn_backbone() -> nn.Module:
    """Unit 0's hard code is the fraction of positive samples of x, unit 1's the fraction of negative ones."""
    conv = nn.Conv1d(1, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[1.0]], [[-1.0]]]))
    return nn.Sequential(conv, nn.ReLU())


def _cnn_case():
    x = torch.tensor([[[1.0, 2.0, -1.0, 3.0]], [[-1.0, -2.0, -3.0, 4.0]]])
    codes = torch.tensor([[0.75, 0.25], [0.25, 0.75]])  # by hand, from the signs of x
    return x, codes @ W.T + B


def _set_head(net, w, b):
    with torch.no_grad():
        net.classifier.weight.copy_(w)
        net.classifier.bias.copy_(b)


def _saved_cnn():
    x, want = _cnn_case()
    torch.manual_seed(0)
    plain = nv.wrap(_cnn_backbone(), num_classes=3, normalize=False, input_shape=(1, 4))
    _set_head(plain, W, B)
    assert plain.norm is None
    torch.testing.assert_close(plain.eval()(x), want, rtol=0, atol=1e-6)  # the saved function, by hand
    return plain.state_dict(), x, want


@pytest.mark.parametrize("strict", [True, False])
def test_a_normalize_false_cnn_file_loads_into_a_default_wrap_as_it_was_saved(strict):
    sd, x, want = _saved_cnn()
    torch.manual_seed(1)
    fresh = nv.wrap(_cnn_backbone(), num_classes=3, input_shape=(1, 4))
    fresh(torch.randn(8, 1, 4))  # training batches moved its normalization's statistics off (0, 1)
    assert fresh.norm is not None
    fresh.load_state_dict(sd, strict=strict)
    assert fresh.norm is None and not any(k.startswith("norm.") for k in fresh.state_dict())
    torch.testing.assert_close(fresh.eval()(x), want, rtol=0, atol=1e-6)
    exp = fresh.explain(x)
    torch.testing.assert_close(exp.contributions.flatten(2).sum(-1) + exp.bias, want, rtol=0, atol=1e-6)


def test_a_lazy_default_cnn_wrap_loads_a_normalize_false_file_as_it_was_saved():
    sd, x, want = _saved_cnn()
    lazy = nv.wrap(_cnn_backbone(), num_classes=3)  # sites found on its first batch, after the load
    lazy.load_state_dict(sd)
    assert lazy.norm is None
    torch.testing.assert_close(lazy.eval()(x), want, rtol=0, atol=1e-6)


def test_a_refused_load_keeps_the_normalization():
    sd, _, _ = _saved_cnn()
    fresh = nv.wrap(_cnn_backbone(), num_classes=3, input_shape=(1, 4))
    fresh(torch.randn(8, 1, 4))
    norm, stats = fresh.norm, fresh.norm.running_var.clone()
    del sd["backbone.0.weight"]
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*backbone\.0\.weight"):
        fresh.load_state_dict(sd)
    # (the tensors torch copied before it refused stay copied, as for any module: the head's)
    assert fresh.norm is norm and "norm.running_var" in fresh.state_dict() and torch.equal(norm.running_var, stats)


def _rnn():
    """h_t = relu(x_t): an nn.RNN of one unit, input weight 1, recurrent weight 0, no bias."""
    rnn = nn.RNN(1, 1, nonlinearity="relu", bias=False, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.fill_(1.0)
        rnn.weight_hh_l0.zero_()
    return rnn


@pytest.mark.parametrize("strict", [True, False])
def test_a_normalize_false_rnn_file_loads_into_a_default_wrap_as_it_was_saved(strict):
    x = torch.tensor([[1.0, -2.0, 3.0], [-1.0, 2.0, 0.5]])[..., None]  # [B, T, 1]
    h = torch.tensor([[1.0, 0.0, 3.0], [0.0, 2.0, 0.5]])  # relu(x), every step
    w = torch.tensor([[1.0, -1.0, 2.0], [0.5, 0.25, -1.0]])
    b = torch.tensor([0.5, -0.5])
    want = h @ w.T + b
    plain = nv.wrap(_rnn(), num_classes=2, max_len=3, normalize=False)
    _set_head(plain, w, b)
    torch.testing.assert_close(plain.eval()(x), want, rtol=0, atol=1e-6)
    fresh = nv.wrap(_rnn(), num_classes=2, max_len=3)
    fresh(torch.randn(6, 3, 1))  # its statistics moved off (0, 1)
    fresh.load_state_dict(copy.deepcopy(plain.state_dict()), strict=strict)
    assert fresh.norm is None
    torch.testing.assert_close(fresh.eval()(x), want, rtol=0, atol=1e-6)
    torch.testing.assert_close(fresh.explain(x).time_importance.sum(-1) + b, want, rtol=0, atol=1e-6)
