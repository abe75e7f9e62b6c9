"""The global head: CodeNorm is its own module (SyncBatchNorm conversion leaves it alone, old
checkpoints load), and the logits of the folded head have one home and one dtype rule."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.core.head import CodeNorm, folded_logits


def _cnn(**kw) -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 3), nn.ReLU())
    return nv.NeuroViewCNN(bb, 3, example_input=torch.zeros(2, 1, 7, 7), **kw)


def test_convert_sync_batchnorm_leaves_the_head_alone():
    net = _cnn()
    net.train()
    x = torch.randn(8, 1, 7, 7)
    net(x)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert isinstance(converted.backbone[1], nn.SyncBatchNorm)  # the backbone's own BatchNorm is converted
    assert type(converted.norm) is CodeNorm  # the head's normalization is not
    assert not isinstance(converted.norm, nn.modules.batchnorm._NormBase)
    converted.eval()
    exp = converted.explain(x)  # eval folds the head: this raised AttributeError 'scale'
    torch.testing.assert_close(exp.logits, converted(x))


def test_codenorm_keeps_batchnorm_state_dict_keys_and_loads_bn1d_checkpoints():
    norm = CodeNorm(5)
    assert list(norm.state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]
    assert list(norm.parameters()) == []
    bn = nn.BatchNorm1d(5, affine=False)  # what CodeNorm was: its checkpoints carry these keys
    bn.train()
    bn(torch.randn(16, 5) * 3 + 1)
    norm.load_state_dict(bn.state_dict())
    for k, v in bn.state_dict().items():
        assert torch.equal(norm.state_dict()[k], v), k
    old = bn.state_dict()
    del old["num_batches_tracked"]  # BatchNorm checkpoints of version 1 had none
    CodeNorm(5).load_state_dict(old)


def test_codenorm_training_matches_two_pass_statistics_and_floor():
    torch.manual_seed(0)
    f = torch.randn(32, 6) * 0.1 + 50.0
    f[:, 0] = 50.0  # a constant feature: floored, not scaled by 1/sqrt(eps)
    norm = CodeNorm(6, momentum=1.0).train()
    out = norm(f)
    var, mean = torch.var_mean(f.double(), 0, unbiased=False)
    floor = 0.1 * var.mean()
    want = (f.double() - mean) * torch.rsqrt(var.clamp_min(floor) + norm.eps)
    torch.testing.assert_close(out.double(), want, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(norm.running_var.double(), var * 32 / 31, rtol=1e-3, atol=1e-7)


def test_folded_logits_one_dtype_rule_in_forward_and_explain():
    # a float64 head over float32 codes: the forward decides in float64, and explain must too
    net = _cnn()
    net.classifier.double()
    net.norm.double()
    x = torch.randn(4, 1, 7, 7)
    net.train()(x)
    net.eval()
    logits = net(x)
    exp = net.explain(x)
    assert logits.dtype == exp.logits.dtype == torch.float64
    torch.testing.assert_close(exp.logits, logits, rtol=0, atol=0)
    w, b = net.effective_classifier()
    torch.testing.assert_close(folded_logits(exp.codes, w, b), logits, rtol=0, atol=0)


def test_folded_logits_rnn_one_dtype_rule():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=6)
    net.classifier.double()
    net.norm.double()
    x = torch.randn(5, 6, 2)
    net.train()(x)
    net.eval()
    logits, exp = net(x), net.explain(x)
    assert logits.dtype == exp.logits.dtype == torch.float64
    torch.testing.assert_close(exp.logits, logits, rtol=0, atol=0)


def test_folded_logits_float32_at_least_autocast_off():
    f = torch.randn(3, 8).bfloat16()
    w, b = torch.randn(2, 8).bfloat16(), torch.randn(2).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = folded_logits(f, w, b)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, F.linear(f.float(), w.float(), b.float()), rtol=0, atol=0)


def test_a_bfloat16_network_folds_its_head_in_float32():
    """net.bfloat16(): the fold (w * scale, b - w @ mean) ran in bfloat16, its eval logits up to 0.107 off the same
    fold in float32 (nv_small_cnn.digits), though the head never runs in half precision."""
    torch.manual_seed(0)
    net = _cnn()
    x = torch.randn(16, 1, 7, 7)
    net.train()(x)
    with torch.no_grad():
        net.norm.running_mean.uniform_(20, 40)  # large means: w @ mu in bfloat16 rounds the bias by whole units
        net.classifier.weight.mul_(7)
    net = net.bfloat16().eval()
    codes = net.codes(x.bfloat16()).double()
    w, b = net.classifier.weight.double(), net.classifier.bias.double()
    var, mean = net.norm.running_var.double(), net.norm.running_mean.double()
    floor = net.norm.floor * var.mean()  # CodeNorm's floor: a share of the mean variance
    scale = 1 / torch.sqrt(torch.maximum(var, floor) + net.norm.eps)
    want = codes @ (w * scale).T + (b - (w * scale) @ mean)
    torch.testing.assert_close(net(x.bfloat16()).double(), want, rtol=0, atol=2e-3)
