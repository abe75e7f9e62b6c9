"""The deep time-series classifiers of the zoo: ResNet1D, InceptionTime and LITE.

- Each reads ``[B, C, T]`` for any ``C`` and ``T`` and returns ``[B, num_classes]``.
- Its NeuroView wrap finds one site per ReLU call, with that call's channels as units, counted
  here from the network's own modules, and its explanation is exact at two lengths.
- Parameter counts are those of the papers' networks (to within the biases left out), and LITE's
  hand-crafted filters are buffers that no optimizer step changes.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.zoo.architectures.timeseries import LITE, InceptionTime
from nets import with_running_stats

ARCHS = ("resnet1d", "inception_time", "lite")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()  # a busy shared CPU: intra-op threads only wait on each other
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _relu_calls(net: nn.Module, x: torch.Tensor) -> list[tuple[str, int]]:
    """(module name, channels of its input) for every nn.ReLU call of ``net`` on ``x``, in order."""
    calls: list[tuple[str, int]] = []
    handles = [m.register_forward_pre_hook(lambda mod, args, name=name: calls.append((name, args[0].shape[1])))
               for name, m in net.named_modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return calls


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("in_channels", [1, 3])
def test_output_shape_for_any_channels_and_length(name, in_channels):
    torch.manual_seed(0)
    net = nv.create_model(name, num_classes=5, in_channels=in_channels).eval()
    for t in (64, 37):
        assert net(torch.randn(4, in_channels, t)).shape == (4, 5)


@pytest.mark.parametrize("name", ARCHS)
def test_sites_are_the_relu_calls_and_explanations_are_exact(name):
    torch.manual_seed(0)
    x = torch.randn(4, 2, 64)
    net = with_running_stats(nv.create_model(f"nv_{name}", num_classes=3, in_channels=2), x)
    calls = _relu_calls(net.backbone, x)
    assert len({n for n, _ in calls}) == len(calls)  # every activation is its own module, called once
    assert [(s.module, s.channels, s.axis) for s in net.sites] == [(n, c, 1) for n, c in calls]
    assert net.num_units == sum(c for _, c in calls)
    for t in (64, 41):  # a second length: the same units, still exact
        xs = torch.randn(4, 2, t)
        exp = net.explain(xs)
        assert len(exp.units) == net.num_units
        with torch.no_grad():
            logits = net(xs)
        torch.testing.assert_close(exp.logits, logits, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(exp.contributions.flatten(2).sum(-1) + exp.bias, logits, rtol=1e-4, atol=1e-4)


def test_unit_counts_follow_the_papers_layouts():
    x = torch.randn(2, 1, 64)
    # InceptionTime: 6 modules + 2 shortcuts, 4 x 32 channels each
    assert [c for _, c in _relu_calls(InceptionTime(depth=6), x)] == [128] * 8
    assert [c for _, c in _relu_calls(InceptionTime(depth=4, filters=8, residual=False), x)] == [32] * 4
    # LITE: 17 hand-crafted filters; 3 x 32 multiplexed + those 17; two separable layers of 32
    assert [c for _, c in _relu_calls(LITE(), x)] == [17, 113, 32, 32]
    assert [c for _, c in _relu_calls(LITE(fixed=False, filters=16), x)] == [48, 16, 16]
    # ResNet1D: 3 blocks x 3 ReLUs of 64-128-128 channels
    assert [c for _, c in _relu_calls(nv.create_model("resnet1d"), x)] == [64] * 3 + [128] * 6


@pytest.mark.parametrize("name,low,high", [("lite", 5_000, 20_000), ("inception_time", 300_000, 500_000),
                                           ("resnet1d", 400_000, 600_000)])
def test_parameter_counts(name, low, high):
    n = sum(p.numel() for p in nv.create_model(name).parameters())
    assert low < n < high, n


def test_lite_fixed_filters_never_train():
    torch.manual_seed(0)
    net = LITE(in_channels=2, num_classes=3)
    before = net.fixed.weight.clone()
    assert not net.fixed.weight.requires_grad and "fixed.weight" not in dict(net.named_parameters())
    assert "fixed.weight" in net.state_dict()
    net.requires_grad_(True)  # what unfreezing a whole network does: cannot reach a buffer
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    nn.functional.cross_entropy(net(torch.randn(4, 2, 64)), torch.tensor([0, 1, 2, 0])).backward()
    opt.step()
    torch.testing.assert_close(net.fixed.weight, before, rtol=0, atol=0)
    assert net.convs[0].weight.grad is not None
    # increasing detection of length 2 is [-1, 1], its decreasing twin [1, -1], on every channel
    k = net.fixed.weight.shape[-1]
    assert k % 2 == 1 and before[0, :, k // 2:k // 2 + 2].tolist() == [[-1.0, 1.0]] * 2
    assert before[6, 1, k // 2:k // 2 + 2].tolist() == [1.0, -1.0] and before[:, :, k // 2 + 2:].abs().sum() > 0


def test_rnn_window_from_max_steps():
    from neuroview.zoo.architectures import rnn_window

    assert [rnn_window(n, None, 50) for n in (24, 50, 51, 150, 1460)] == [1, 1, 2, 3, 30]
    net = nv.create_model("nv_gru", num_classes=3, in_features=2, max_len=150, max_steps=50, hidden_size=4)
    assert (net.window, net.steps, net.input_size, net.rnn.input_size) == (3, 50, 2, 6)
    std = nv.create_model("gru", num_classes=3, in_features=2, max_len=150, max_steps=50, hidden_size=4)
    assert (std.window, std.rnn.input_size) == (3, 6)
    with pytest.raises(ValueError, match="max_steps: needs max_len"):
        nv.create_model("gru", num_classes=3, in_features=2, max_steps=50)
    # both: the window wins, and says so where it makes more steps than max_steps (it was dropped without a word)
    with pytest.warns(UserWarning, match=r"window: 2 samples a step reads 100 samples in 50 steps, more than max_steps=10"):
        net = nv.create_model("nv_gru", num_classes=3, in_features=2, max_len=100, max_steps=10, window=2, hidden_size=4)
    assert net.steps == 50
