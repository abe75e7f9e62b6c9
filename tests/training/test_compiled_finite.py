"""The NaN / Inf check of a compiled network: kept inside a user's own torch.compile, and the Lightning
option's batch check reading the network's own switch and what it reads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.training.compiled import train_forward
from neuroview.training.module import NeuroViewModule


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_a_network_the_user_compiles_still_refuses_inf_and_nan():
    """It returned finite logits for an Inf input (the hard code clamps it to 0 or 1), and NaN rows."""
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2)), 2).eval()
    x = torch.randn(4, 3)
    net(x)
    compiled = torch.compile(net, backend="aot_eager")
    assert torch.allclose(compiled(x), net(x))
    for bad in (float("inf"), float("nan")):
        xb = x.clone()
        xb[1, 2] = bad
        with pytest.raises(RuntimeError, match="x: contains NaN or Inf"):
            compiled(xb)
    net.check_finite = False  # the documented switch still turns it off
    torch._dynamo.reset()
    xb = x.clone()
    xb[1, 2] = float("inf")
    assert torch.compile(net, backend="aot_eager")(xb).shape == (4, 2)


def test_a_compiled_rnn_refuses_nan_and_inf_in_its_valid_steps():
    """It skipped its check under torch.compile: a saturated GRU returned finite logits for an Inf input."""
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), num_classes=2, max_len=6).eval()
    x = torch.randn(3, 6, 2)
    net(x)
    compiled = torch.compile(net, backend="aot_eager")
    assert torch.allclose(compiled(x), net(x), atol=1e-6)
    for bad in (float("inf"), float("nan")):
        xb = x.clone()
        xb[0, 2, 1] = bad
        with pytest.raises(RuntimeError, match="x: contains NaN or Inf"):
            compiled(xb)
    lengths = torch.tensor([6, 2, 6])  # NaN in the padding past a length is not read, compiled as in eager mode
    xp = x.clone()
    xp[1, 4] = float("nan")
    torch.testing.assert_close(compiled(xp, lengths), net(xp, lengths))
    net.check_finite = False
    torch._dynamo.reset()
    xb = x.clone()
    xb[0, 2, 1] = float("inf")
    assert torch.isfinite(torch.compile(net, backend="aot_eager")(xb)).all()  # the switch turns it off: Inf saturates


def _module(compile):
    torch.manual_seed(0)
    m = NeuroViewModule("nv_lite", num_classes=2, in_channels=2, model_kwargs=dict(filters=3), compile=compile)
    m.build(torch.randn(4, 2, 12))
    return m.train()


def test_the_compiled_modules_batch_check_follows_the_network():
    x, y = torch.randn(4, 2, 12), torch.tensor([0, 1, 0, 1])
    # the network's check turned off: the compiled module let it be, as eager does (it refused the batch)
    xn = x.clone()
    xn[1, 0, 3] = float("nan")
    m = _module("aot_eager")
    m.model.check_finite = False
    m.on_before_batch_transfer((xn, y), 0)
    # a CNN reads every step, padding included: NaN past a length is refused, as eager refuses it (it trained on)
    lengths, xp = torch.tensor([12, 8, 12, 12]), x.clone()
    xp[1, :, 10] = float("nan")
    with pytest.raises(ValueError, match=r"x: contains NaN or Inf"):
        train_forward(_module(None), xp, lengths, None)  # eager: the network's own check
    with pytest.raises(ValueError, match=r"x: contains NaN or Inf \(2 of 96 values\)"):
        _module("aot_eager").on_before_batch_transfer((xp, lengths, y), 0)
