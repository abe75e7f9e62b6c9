"""Exactness checked against independent paths, in every precision.

The sum identity is only worth something when its two sides are computed differently: here the
codes come from running the backbone's own layers by hand, the folded classifier from the
normalization's buffers by hand, and a unit's (or a step's) contribution is the logit change when
its code (state) is replaced by zero and the network is run again.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.attribution.faithfulness import ablate_units


def _trained_cnn(quantizer="hard"):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 3), nn.ReLU6())
    net = nv.NeuroViewCNN(backbone, 3, quantizer=quantizer, example_input=torch.randn(2, 1, 7, 7))
    opt = torch.optim.SGD(net.parameters(), lr=0.2)
    x = torch.randn(16, 1, 7, 7) * 2
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(net.train()(x), torch.arange(16) % 3).backward()
        opt.step()
    return net.eval(), backbone, x


def _fold_by_hand(net) -> tuple[torch.Tensor, torch.Tensor]:
    var, mu = net.norm.running_var, net.norm.running_mean
    var = torch.maximum(var, net.norm.floor * var.mean())  # the documented floor
    w = net.classifier.weight / torch.sqrt(var + net.norm.eps)
    return w, net.classifier.bias - w @ mu


def test_cnn_logits_equal_a_hand_computed_path():
    net, bb, x = _trained_cnn()
    z1 = bb[1](bb[0](x))
    z2 = bb[3](F.relu(z1))
    codes = torch.cat([(z1 > 0).float().mean((2, 3)), ((z2 > 0).float() + (z2 > 6).float()).mean((2, 3))], 1)
    w, b = _fold_by_hand(net)
    want = codes @ w.T + b
    exp = net.explain(x)
    torch.testing.assert_close(exp.codes, codes)
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)
    torch.testing.assert_close(exp.for_class(1).sum(-1) + exp.bias[1], want[:, 1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("quantizer", ["hard", "soft", "none"])
def test_a_units_contribution_is_the_logit_change_when_its_code_is_zeroed(quantizer):
    net, _, x = _trained_cnn(quantizer)
    exp = net.explain(x[:4])
    base = net(x[:4])
    for u in range(net.num_units):
        def zero_u(codes, maps, u=u):
            codes = codes.clone()
            codes[:, u] = 0
            return codes, maps
        net._codes_hook = zero_u  # the backbone runs again; only unit u's code is replaced by 0
        try:
            drop = base - net(x[:4])
        finally:
            net._codes_hook = None
        torch.testing.assert_close(drop, exp.contributions[:, :, u], rtol=0, atol=1e-5)
    last = net.site_slices[net.sites[-1].name]
    with ablate_units(net, torch.arange(last.start, last.stop)):  # removing the last site's units, downstream of nothing
        torch.testing.assert_close(base - net(x[:4]), exp.by_site()[..., -1], rtol=0, atol=1e-5)


def test_rnn_logits_equal_a_hand_computed_path():
    torch.manual_seed(0)
    gru = nn.GRU(2, 5, batch_first=True)
    net = nv.NeuroViewRNN(gru, 3, max_len=6)
    x, lengths = torch.randn(8, 6, 2), torch.tensor([6, 3, 5, 6, 2, 6, 4, 1])
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(net.train()(x, lengths), torch.arange(8) % 3).backward()
        opt.step()
    net.eval()
    h = gru(x)[0]  # the plain nn.GRU: a causal RNN's step t does not see the padding after it
    h = h * (torch.arange(6) < lengths[:, None])[..., None]
    w, b = _fold_by_hand(net)
    want = h.flatten(1) @ w.T + b
    torch.testing.assert_close(net(x, lengths), want, rtol=0, atol=1e-5)
    exp = net.explain(x, lengths)
    torch.testing.assert_close(exp.time_importance.sum(-1) + exp.bias, want, rtol=0, atol=1e-5)
    # a step's share is the logit change when its state is replaced by zero
    for t in (0, 2, 5):
        hz = h.clone()
        hz[:, t] = 0
        drop = want - (hz.flatten(1) @ w.T + b)
        torch.testing.assert_close(drop, exp.time_importance[..., t], rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_exact_under_autocast(dtype):
    net, _, x = _trained_cnn()
    with torch.autocast("cpu", dtype=dtype):
        exp = net.explain(x)
        out = net(x)
    assert exp.logits.dtype == torch.float32 and out.dtype == torch.float32  # the head runs in float32
    tol = 1e-5 * exp.logits.abs().max()
    for target in (None, 0, 2):
        t = exp.targets(target)
        gap = exp.for_class(target).sum(-1) + exp.bias[t] - exp.logits[torch.arange(len(t)), t]
        assert gap.abs().max() <= tol
    torch.testing.assert_close(out, exp.logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64, torch.float32])
def test_hard_code_backward_twice(dtype):
    net, _, x = _trained_cnn()
    net = net.to(dtype).train()
    loss = net(x.to(dtype)).sum()
    g1 = torch.autograd.grad(loss, net.backbone[0].weight, retain_graph=True)[0]
    g2 = torch.autograd.grad(loss, net.backbone[0].weight)[0]  # its saved tensor was not overwritten
    torch.testing.assert_close(g1, g2)


def test_bf16_hard_codes_are_counted_in_float32():
    z = torch.full((1, 1, 3001), 1.0, dtype=torch.bfloat16)
    z[..., 0] = -1.0
    from neuroview.core.quantize import mean_code

    code = mean_code(z, (0.0,), "hard", 1.0)
    assert code.dtype == torch.float32 and code.item() == pytest.approx(3000 / 3001, abs=1e-7)


def test_a_training_batch_of_one_is_a_clear_error():
    net, _, x = _trained_cnn()
    with pytest.raises(ValueError, match=r"x: a training batch of 1 sample"):
        net.train()(x[:1])
    net.eval()(x[:1])  # at eval a single sample is fine


def test_rarely_varying_features_get_no_inflated_weights():
    """Steps that one training series reaches barely vary: their weights must not come from 1/sqrt(eps)."""
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 2, max_len=10)
    x = torch.randn(32, 10, 1)
    lengths = torch.full((32,), 6)
    lengths[0] = 10  # only one series reaches steps 6..9
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        F.cross_entropy(net.train()(x, lengths), torch.arange(32) % 2).backward()
        opt.step()
    imp = net.eval().time_importance()  # [C, T]
    assert imp[:, 6:].max() <= 3 * imp[:, :6].max(), imp


def test_a_head_built_on_the_first_batch_takes_the_networks_mode():
    # wrapped without an example, put in eval mode, then run: the head built on that first batch
    # must be in eval mode too (the folded linear map, running statistics untouched), or the
    # logits of forward() would be batch-normalized and differ from explain()'s
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 3, 3), nn.ReLU())
    net = nv.NeuroViewCNN(backbone, 3).eval()
    x = torch.randn(5, 1, 12)
    with torch.no_grad():
        logits = net(x)
        assert not net.classifier.training and not net.norm.training
        assert net.norm.num_batches_tracked == 0  # eval: no statistics were taken from x
        w, b = net.effective_classifier()
        torch.testing.assert_close(logits, net.codes(x) @ w.T + b, rtol=0, atol=1e-6)
        torch.testing.assert_close(logits, net.explain(x).logits, rtol=0, atol=1e-6)
        torch.testing.assert_close(net(x[:1]), logits[:1], rtol=0, atol=1e-6)  # a sample's logits never depend on its batch
    # and a network in training mode builds a head in training mode
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3)
    net(x)
    assert net.classifier.training and net.norm.training and net.norm.num_batches_tracked == 1
