"""The normalization's own train/eval mode, not the nn.Linear classifier's (which changes nothing in PyTorch), decides
between batch statistics and the folded running ones."""

import copy

import torch
from torch import nn

import neuroview as nv


def _cnn_pair():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
    x = torch.randn(16, 1, 6, 6)
    net = nv.NeuroViewCNN(bb, num_classes=3, example_input=x[:8])
    net.train()
    for _ in range(3):
        net(x)  # running statistics away from their initial 0 / 1
    return net, copy.deepcopy(net), x


def _by_hand(net, codes):
    """The logits of ``codes`` standardized by the running statistics, written out (floor, eps) apart from the code."""
    n = net.norm
    var = n.running_var.clamp_min(n.floor * n.running_var.mean())
    z = (codes - n.running_mean) / torch.sqrt(var + n.eps)
    return z @ net.classifier.weight.T + net.classifier.bias


def test_the_linear_classifiers_mode_alone_does_not_change_the_decision():
    net, ref, x = _cnn_pair()
    net.classifier.eval()  # freezing the Linear: nothing in PyTorch
    rm = net.norm.running_mean.clone()
    got, want = net(x), ref(x)
    torch.testing.assert_close(got, want)
    assert not torch.equal(net.norm.running_mean, rm)  # the normalization in train mode moved its statistics
    torch.testing.assert_close(net.norm.running_mean, ref.norm.running_mean)
    assert net.norm.num_batches_tracked == ref.norm.num_batches_tracked


def test_the_normalizations_eval_alone_uses_its_running_statistics():
    net, _, x = _cnn_pair()
    net.norm.eval()  # frozen statistics, the rest training (as nv.finetune_sparse sets it)
    rm, n = net.norm.running_mean.clone(), int(net.norm.num_batches_tracked)
    got = net(x)
    assert torch.equal(net.norm.running_mean, rm) and int(net.norm.num_batches_tracked) == n
    with torch.no_grad():
        codes = net.codes(x)
    torch.testing.assert_close(got, _by_hand(net, codes), rtol=1e-5, atol=1e-5)
    got.sum().backward()  # the classifier still trains through the folded map
    assert net.classifier.weight.grad is not None and net.classifier.weight.grad.abs().sum() > 0


def test_explain_still_equals_the_eval_forward():
    net, _, x = _cnn_pair()
    net.eval()
    exp = net.explain(x)
    assert torch.equal(exp.logits, net(x))
    torch.testing.assert_close(exp.for_class(1).sum(-1) + exp.bias[1], net(x)[:, 1], rtol=1e-5, atol=1e-5)


def test_an_rnns_linear_classifier_in_eval_keeps_training_statistics_and_dropout():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), num_classes=2, max_len=10, dropout=0.5)
    ref = copy.deepcopy(net)
    x = torch.randn(8, 10, 1)
    net.train(), ref.train()
    net.classifier.eval()
    torch.manual_seed(1)
    got = net(x)
    torch.manual_seed(1)
    want = ref(x)
    torch.testing.assert_close(got, want)  # the same dropout mask drawn, the same batch statistics
    torch.testing.assert_close(net.norm.running_var, ref.norm.running_var)
    assert net.norm.num_batches_tracked == 1
