"""The life of the objects a user holds (a probe of 2026-12-06): hooks a user puts on the network or its head, a
load torch refuses, copies and lazily built heads. Each expected value is computed here from the network's own
tensors, not by the code under test."""

from __future__ import annotations

import copy
import gc
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv
from nets import with_running_stats


def _cnn(width: int = 4, classes: int = 3, **kw):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, width, 3), nn.ReLU(), nn.Conv2d(width, 5, 3), nn.ReLU())
    return nv.wrap(backbone, num_classes=classes, **kw)


X = torch.randn(6, 1, 8, 8)


def test_explain_refuses_a_forward_hook_on_the_network_and_runs_the_backbones():
    # explain computes the decision without calling the network: a pre-hook on it (an input transform) was skipped,
    # and the explanation's logits were 0.16 off net(x) without a word
    net = with_running_stats(_cnn(input_shape=(1, 8, 8)), X)
    handle = net.register_forward_pre_hook(lambda m, a: (a[0] * 3 - 1,))
    with pytest.raises(ValueError, match=r"explain: the NeuroViewCNN carries forward hooks of its own \(.*<lambda>\), "
                                         r"which explain does not run"):
        net.explain(X)
    handle.remove()
    handle = net.backbone.register_forward_pre_hook(lambda m, a: (a[0] * 3 - 1,))  # on the backbone: run, exact
    exp = net.explain(X)
    assert torch.allclose(exp.logits, net(X), atol=1e-5)
    handle.remove()
    rnn = with_running_stats(nv.wrap(nn.GRU(2, 3, batch_first=True), num_classes=2, max_len=5), torch.randn(4, 5, 2))
    rnn.register_forward_hook(lambda m, a, out: out / 2)
    with pytest.raises(ValueError, match=r"explain: the NeuroViewRNN carries forward hooks of its own"):
        rnn.explain(torch.randn(4, 5, 2))
    ens = nv.create_model("nv_lite", num_classes=2, in_channels=1, members=2).eval()
    ens(torch.randn(3, 1, 20))
    ens.register_forward_pre_hook(lambda m, a: None)
    with pytest.raises(ValueError, match=r"explain: the Ensemble carries forward hooks of its own"):
        ens.explain(torch.randn(3, 1, 20))


def test_hooks_on_the_head_are_refused_and_a_parametrization_trains():
    # the head is read with F.linear, never called: a user's hook on it never ran, and the old hook-based
    # spectral_norm left the head untrained (weight_orig got no gradient) without a word
    net = _cnn(input_shape=(1, 8, 8))
    handle = net.classifier.register_forward_hook(lambda m, a, out: out)
    for mode in (True, False):
        net.train(mode)
        with pytest.raises(ValueError, match=r"classifier: the network's head \(Linear\) carries hooks .*torch.nn.utils."
                                             r"parametrize"):
            net(X)
    handle.remove()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own deprecation of the hook-based one
        nn.utils.spectral_norm(net.classifier)
    with pytest.raises(ValueError, match=r"carries hooks \(SpectralNorm\)"):
        net.train()(X)
    net = _cnn(input_shape=(1, 8, 8))
    torch.nn.utils.parametrizations.weight_norm(net.classifier)  # the supported route: a property, read as is
    before = net.classifier.parametrizations.weight.original1.detach().clone()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    net.train()(X).logsumexp(1).sum().backward()
    opt.step()
    assert not torch.equal(before, net.classifier.parametrizations.weight.original1)
    net.eval()
    exp = net.explain(X)
    assert torch.allclose(exp.for_class().sum(-1) + exp.bias[exp.target], net(X).gather(1, exp.target[:, None])[:, 0],
                          atol=1e-5)


def test_a_load_torch_refuses_changes_nothing():
    # a refused load built a head of the checkpoint's width (every later batch then failed), adopted a
    # normalization (logits moved by 0.06), or merged a shared-step weight away
    wide = with_running_stats(_cnn(width=8, input_shape=(1, 8, 8)), X).state_dict()
    lazy = _cnn(width=4)
    for strict in (True, False):
        with pytest.raises(RuntimeError, match="size mismatch"):
            lazy.load_state_dict(wide, strict=strict)
    assert lazy.classifier is None and lazy.norm is None
    assert lazy(X).shape == (6, 3)  # its first batch builds its own head
    five = with_running_stats(_cnn(classes=5, input_shape=(1, 8, 8)), X).state_dict()
    plain = _cnn(input_shape=(1, 8, 8), normalize=False).eval()
    ref = plain(X)
    with pytest.raises(RuntimeError):
        plain.load_state_dict(five)
    assert plain.norm is None and torch.equal(plain(X), ref)
    torch.manual_seed(0)
    shared = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), num_classes=3, max_len=5, shared_steps=True)
    other = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), num_classes=2, max_len=5).state_dict()
    with pytest.raises(RuntimeError):
        shared.load_state_dict(other)
    assert shared.step_shared is not None and "step_shared.weight" in shared.state_dict()


def test_a_checkpoint_of_another_rnn_is_named_so_not_as_other_steps():
    # a 2-layer checkpoint into a 1-layer network was blamed on max_len, whose advice then loaded layer 2's
    # states as the steps 8 to 14
    torch.manual_seed(0)
    two = nv.NeuroViewRNN(nn.GRU(2, 5, num_layers=2, batch_first=True), num_classes=2, max_len=7).state_dict()
    one = nv.NeuroViewRNN(nn.GRU(2, 5, batch_first=True), num_classes=2, max_len=7)
    with pytest.raises(RuntimeError, match=r"rnn: the checkpoint's GRU is not this network's \(only in the checkpoint: "
                                           r"\['bias_hh_l1', .*build the network with the checkpoint's num_layers") as e:
        one.load_state_dict(two, strict=False)
    assert "max_len" not in str(e.value)
    standard = {"rnn." + k: v for k, v in nn.GRU(2, 5, batch_first=True).state_dict().items()}
    standard |= {"classifier.weight": torch.zeros(2, 5), "classifier.bias": torch.zeros(2)}
    with pytest.raises(RuntimeError, match=r"reads 1 steps of 5 hidden states.*one step: a standard RNN classifier's"):
        one.load_state_dict(standard, strict=False)


def test_copies_and_module_wide_calls_of_a_lazy_network():
    lazy = _cnn()
    with pytest.raises(TypeError, match=r"copy.copy: the network's head is built on its first batch.*copy.deepcopy"):
        copy.copy(lazy)
    with pytest.warns(UserWarning, match=r"requires_grad_\(False\): the network's head is built on its first batch"):
        lazy.requires_grad_(False)
    with pytest.warns(UserWarning, match=r"apply\(fn\): the network's head is built on its first batch"):
        lazy.apply(lambda m: None)
    built = _cnn(input_shape=(1, 8, 8)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        built.requires_grad_(True)
        shallow = copy.copy(built)  # a built network's shallow copy shares its head, as torch's does
    assert shallow.classifier is built.classifier and torch.equal(shallow(X), built(X))


def test_a_garbage_collected_copy_gives_its_backbones_frozen_head_back():
    # a deepcopy (or a torch.load) of a network kept its backbone's unreached head frozen for good once collected
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    net = nv.wrap(model, num_classes=3, input_shape=(1, 8, 8))
    assert net.frozen == ("4.weight", "4.bias")
    best = copy.deepcopy(net)
    kept = best.backbone
    assert not kept[4].weight.requires_grad
    del best
    gc.collect()
    assert kept[4].weight.requires_grad and kept[4].bias.requires_grad
    assert not model[4].weight.requires_grad  # the original, alive, still holds its own


def test_a_neuroview_network_read_as_a_layer_of_an_outer_wrap_still_wraps():
    # (the review) the head's hook check refused the outer wrap's own site-finding hooks on the inner head
    x = torch.randn(6, 1, 8, 8)
    inner = with_running_stats(_cnn(input_shape=(1, 8, 8)), x)
    outer = nv.wrap(nn.Sequential(inner, nn.ReLU(), nn.Linear(3, 2)), 2, example_input=x).eval()
    assert outer.num_units == 12 and torch.allclose(outer.explain(x).logits, outer(x), atol=1e-5)
    ens = nv.Ensemble([_cnn(input_shape=(1, 8, 8)) for _ in range(2)]).eval()
    whole = nv.wrap(ens, 3, example_input=x).eval()
    assert torch.allclose(whole.explain(x).logits, whole(x), atol=1e-5)


def test_hooks_the_decision_does_not_read_are_left_alone_and_those_it_skips_refused():
    x, y = torch.randn(12, 1, 8, 8), torch.arange(12) % 3
    ens = nv.Ensemble([with_running_stats(_cnn(input_shape=(1, 8, 8)), x) for _ in range(2)]).eval()
    sparse = nv.sparsify(ens, [(x, y)], val=[(x, y)], tolerance=100.0, points=4)  # one global head
    sparse.members[0].register_forward_hook(lambda m, a, out: out * 0)  # a member's own logits: not read
    sparse.members[0].classifier.register_forward_hook(lambda m, a, out: out)
    exp = sparse.explain(x)
    assert torch.allclose(exp.for_class().sum(-1) + exp.bias[exp.target], sparse(x).gather(1, exp.target[:, None])[:, 0],
                          atol=1e-5)
    torch.manual_seed(0)
    rnn = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), num_classes=3, max_len=5, shared_steps=True)
    rnn.step_shared.register_forward_hook(lambda m, a, out: out)  # part of the head, read as a tensor
    with pytest.raises(ValueError, match=r"classifier: the network's head \(Linear\) carries hooks"):
        rnn(torch.randn(2, 5, 2))


def test_a_checkpoint_of_another_window_names_the_input_size():
    torch.manual_seed(0)
    two = nv.NeuroViewRNN(nn.GRU(6, 8, batch_first=True), num_classes=2, max_len=12, window=2).state_dict()
    one = nv.NeuroViewRNN(nn.GRU(3, 8, batch_first=True), num_classes=2, max_len=12)  # windows of 2 samples of 3
    with pytest.raises(RuntimeError, match=r"rnn: the checkpoint's GRU reads inputs of 6 features per step, this "
                                           r"network's 3: build it with the checkpoint's input channels and window"):
        one.load_state_dict(two)
