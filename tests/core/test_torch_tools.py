"""A NeuroView network handed to the tools of PyTorch that transform or capture a model (a probe of 2026-12-06): a
quantizer set after the sites were found, torch.export, a temperature annealed under torch.compile, torch.func,
TorchScript and torch.ao's quantization. Each either gives the eager network's numbers or is refused by name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from nets import with_running_stats


def _backbone():
    torch.manual_seed(0)  # ReLU(inplace=True), as torchvision's: the code must be read before it runs
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 5, 3), nn.ReLU(inplace=True))


X = torch.randn(6, 1, 8, 8)


def _codes_by_hand(backbone: nn.Module, x: torch.Tensor, quantizer: str, tau: float = 1.0) -> torch.Tensor:
    """Each ReLU site's code averaged over positions, from hooks of this test's own."""
    got = []

    def pre(m, args):
        z = args[0].detach().clone()
        got.append({"hard": (z > 0).float(), "soft": torch.sigmoid(z / tau)}.get(quantizer, torch.relu(z)).mean((2, 3)))
    handles = [m.register_forward_pre_hook(pre) for m in backbone if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        backbone(x)
    for h in handles:
        h.remove()
    return torch.cat(got, 1)


@pytest.mark.parametrize("first, then", [("none", "soft"), ("hard", "none"), ("none", "hard")])
def test_a_quantizer_set_after_the_sites_were_found_reads_its_own_side(first, then):
    # the hooks' side was fixed when they were installed: "none" -> "soft" read sigmoid(relu(z)) (codes 0.1 off),
    # "hard" -> "none" failed with a bare AttributeError
    net = nv.wrap(_backbone(), num_classes=3, input_shape=(1, 8, 8), quantizer=first).eval()
    net(X)
    net.quantizer = then
    assert torch.allclose(net.codes(X), _codes_by_hand(net.backbone, X, then), atol=1e-6)
    exp = net.explain(X)
    assert torch.allclose(exp.logits, net(X), atol=1e-6)


def test_torch_export_takes_the_network_with_a_dynamic_batch():
    # non-strict export failed with a bare AssertionError (the StopForward of the last site skipped its module-stack
    # pop), and a dynamic batch was specialized to the example's
    net = with_running_stats(nv.wrap(_backbone(), num_classes=3, input_shape=(1, 8, 8)), X)
    batch = torch.export.Dim("batch", min=2, max=64)
    exported = torch.export.export(net, (X,), dynamic_shapes=({0: batch},), strict=False)
    x = torch.randn(11, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(exported.module()(x), net(x), atol=1e-5)


def test_a_temperature_annealed_under_torch_compile_recompiles():
    # a tau changed between compiled training steps became a symbolic float, which crashed inside Dynamo
    net = nv.wrap(_backbone(), num_classes=3, input_shape=(1, 8, 8), quantizer="soft").train()
    compiled = torch.compile(net, backend="eager")
    for tau in (1.0, 0.8):
        net.tau = tau
        out = compiled(X)
        out.logsumexp(1).sum().backward()
        net.zero_grad()
        with torch.no_grad():
            assert torch.allclose(out, net(X), atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(net.eval().codes(X), _codes_by_hand(net.backbone, X, "soft", tau=0.8), atol=1e-6)


def test_torch_func_is_refused_by_name_where_it_cannot_run():
    net = with_running_stats(nv.wrap(_backbone(), num_classes=3, input_shape=(1, 8, 8), quantizer="soft"), X)
    with pytest.raises(TypeError, match=r"quantizer: the 'soft' code's surrogate gradient .* torch.func's grad / "
                                        r"jacrev / jvp; take the gradient with torch.autograd.grad"):
        torch.func.grad(lambda x: net(x).sum())(X)
    single = lambda x: net(x[None])[0]  # noqa: E731
    with pytest.raises(ValueError, match=r"x: the network checks its input for NaN and Inf, which cannot be done inside "
                                         r"torch.func.vmap; set net.check_finite = False"):
        torch.func.vmap(single)(X)
    net.check_finite = False
    assert torch.allclose(torch.func.vmap(single)(X), net(X), atol=1e-6)
    x = X.clone().requires_grad_(True)  # plain autograd, as captum takes it
    (g,) = torch.autograd.grad(net(x)[:, 0].sum(), x)
    assert g.abs().sum() > 0


def test_torchscript_and_a_quantized_head_are_refused_by_name():
    net = with_running_stats(nv.wrap(_backbone(), num_classes=3, input_shape=(1, 8, 8)), X)
    with pytest.raises(TypeError, match=r"torch.jit.script: a NeuroViewCNN cannot be scripted .* torch.export"):
        torch.jit.script(net)
    rnn = nv.wrap(nn.GRU(2, 3, batch_first=True), num_classes=2, max_len=5).eval()
    s = torch.randn(3, 5, 2)
    with pytest.raises(TypeError, match=r"torch.jit.trace: a NeuroViewRNN runs its layers through "
                                        r"torch.func.functional_call"):
        torch.jit.trace(rnn, (s,))
    quantized = torch.ao.quantization.quantize_dynamic(net, {nn.Linear}, dtype=torch.qint8)
    with pytest.raises(TypeError, match=r"classifier: the network's head is a torch.ao.* whose weight is no tensor"):
        quantized.explain(X)
    q_rnn = torch.ao.quantization.quantize_dynamic(rnn, {nn.GRU}, dtype=torch.qint8)
    with pytest.raises(TypeError, match=r"rnn: a torch.ao.*GRU keeps no weight tensors"):
        q_rnn(s)
