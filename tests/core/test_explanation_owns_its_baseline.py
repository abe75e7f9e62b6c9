"""An explanation already returned stays exact whatever happens to its network afterwards.

``explain(x, baseline="mean")`` kept the network's live ``norm.running_mean`` as ``exp.baseline``
(the dense contributions are built from it when read), so one train-mode forward or a
``load_state_dict`` after ``explain`` moved an explanation already returned off its own logits
(a CNN's residual 1.5e-8 -> 1.2e-2). A baseline tensor the user passes, changed in place later, did
the same.
"""

import torch
from torch import nn

import neuroview as nv


def _trained_cnn(seed, scale=1.0):
    torch.manual_seed(seed)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU()), 3, input_shape=(1, 16), quantizer="none")
    net.train()
    net(torch.randn(32, 1, 16) * scale)
    return net.eval()


def _exact(exp):
    # each class's contributions against the baseline, plus the baseline's logit (the bias)
    return all(torch.allclose(exp.for_class(c).flatten(1).sum(-1) + exp.bias[c], exp.logits[:, c], atol=1e-5)
               for c in range(exp.logits.shape[1]))


def test_a_mean_baseline_is_the_explanation_s_own_copy_through_training():
    x = torch.randn(4, 1, 16)
    for net in (_trained_cnn(0), nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=10)):
        xs = x if isinstance(net, nv.NeuroViewCNN) else torch.randn(4, 10, 2)
        if not isinstance(net, nv.NeuroViewCNN):
            net.train()
            net(torch.randn(32, 10, 2))
            net.eval()
        exp = net.explain(xs, baseline="mean")
        before = exp.for_class(0).clone()
        assert _exact(exp)
        net.train()
        net(xs.repeat(8, *[1] * (xs.dim() - 1)) + 1.0)  # the running mean moves
        net.eval()
        assert _exact(exp), type(net).__name__
        assert torch.equal(exp.for_class(0), before)


def test_loading_other_weights_leaves_an_earlier_explanation_alone():
    a, b = _trained_cnn(1), _trained_cnn(2, scale=2.0)
    exp = a.explain(torch.randn(4, 1, 16), baseline="mean")
    a.load_state_dict(b.state_dict())
    assert _exact(exp)


def test_a_given_baseline_changed_in_place_later_leaves_the_explanation_alone():
    net = _trained_cnn(3)
    base = nv.mean_codes(net, [(torch.randn(16, 1, 16), torch.randint(0, 3, (16,)))])
    exp = net.explain(torch.randn(4, 1, 16), baseline=base)
    before = exp.for_class(1).clone()
    base += 5.0
    assert torch.equal(exp.for_class(1), before)
    assert _exact(exp)
