"""The surrogate gradient shares the activation's own saved input where there is one, and only there.

Shared or copied in bfloat16 (``grad_state="bf16"``), the gradient is the same to the bit; an in-place activation (which overwrites
or copies ``z``) keeps the site's own copy; and an activation that lies (probed as keeping its
input, then writing into it) makes backward raise rather than use a corrupted ``z``.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
import neuroview.core.recorder as recorder
from neuroview.core.shared_input import keeps_input


def _z():
    return torch.randn(2, 4, 5, requires_grad=True) * 1


@pytest.mark.parametrize("act, kept", [
    (nn.GELU(), True), (nn.SiLU(), True), (nn.Hardswish(), True), (nn.LeakyReLU(), True), (nn.PReLU(4), True),
    (nn.ReLU(), False),  # saves its output
    (nn.Tanh(), False),
    (nn.ReLU(inplace=True), False), (nn.SiLU(inplace=True), False), (nn.Hardswish(inplace=True), False),
])
def test_probe_tells_which_activations_keep_their_own_input(act, kept):
    assert keeps_input(act, _z()) is kept
    assert keeps_input(act, _z()) is kept  # cached per module and mode


def test_an_activation_switched_to_inplace_is_probed_again():
    """The answer was cached per module and mode only: a SiLU switched to inplace=True after a training step
    (a memory-saving switch) still shared its input with the site, and the next backward failed bare."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.SiLU(), nn.Conv2d(4, 5, 3), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    net = nv.wrap(model, 3, example_input=x).train()
    nn.functional.cross_entropy(net(x), y).backward()
    assert keeps_input(model[1], _z())
    for m in (model[1], model[3]):
        m.inplace = True
    net.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()  # was: "modified by an inplace operation"
    assert not keeps_input(model[1], _z()) and net.backbone[0].weight.grad is not None


def _net(act, seed=0):
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), act(), nn.Conv2d(8, 6, 3), act(),
                             nn.Flatten(), nn.Linear(6 * 4 * 4, 5))
    return backbone


def _saved_storages(net, x, y) -> dict[int, int]:
    out: dict[int, int] = {}

    def pack(t):
        out[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(net(x), y)
    loss.backward()
    return out


@pytest.mark.parametrize("act", [nn.GELU, nn.SiLU, nn.Hardswish])
def test_shared_input_gives_the_same_gradient_to_the_bit_and_saves_no_copy(act, monkeypatch):
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    grads, saved = [], []
    for share in (True, False):
        if not share:
            monkeypatch.setattr(recorder, "keeps_input", lambda module, z: False)
        torch.manual_seed(1)
        net = nv.NeuroViewCNN(_net(act), 5, example_input=x, grad_state="bf16").train()
        saved.append(_saved_storages(net, x, y))
        grads.append({n: p.grad for n, p in net.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) >= 6
    for n in grads[0]:
        assert torch.equal(grads[0][n], grads[1][n]), n
    # the copy path keeps one bfloat16 copy per site beyond what the network saves anyway
    extra = sum(saved[1].values()) - sum(saved[0].values())
    assert extra == 2 * (4 * 8 * 6 * 6 + 4 * 6 * 4 * 4)


def test_in_place_activation_keeps_its_own_copy_and_trains():
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    net = nv.NeuroViewCNN(_net(lambda: nn.SiLU(inplace=True)), 5, example_input=x).train()
    F.cross_entropy(net(x), y).backward()  # no version-counter error: z was copied before silu_
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


class _Liar(nn.Module):
    """Keeps its input when probed on one sample, then writes into it for a whole batch."""

    def forward(self, z):
        if len(z) > 1:
            z.mul_(1.0)
        return F.gelu(z)


def test_activation_writing_into_a_shared_input_raises_in_backward():
    nv.register_activation(_Liar)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3), _Liar(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5))
    net = nv.NeuroViewCNN(backbone, 5, input_shape=(3, 8, 8)).train()
    assert keeps_input(backbone[1], torch.randn(1, 8, 6, 6, requires_grad=True) * 1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        F.cross_entropy(net(x), y).backward()


def test_probe_leaves_the_random_state_as_it_found_it():
    torch.manual_seed(0)
    want = torch.rand(3)
    torch.manual_seed(0)
    z = torch.ones(2, 4, requires_grad=True) * 1
    keeps_input(nn.RReLU().train(), z)  # RReLU draws its slopes: inside the probe only
    torch.testing.assert_close(torch.rand(3), want)


def test_a_module_the_probe_cannot_run_keeps_a_copy():
    class TwoArgs(nn.Module):
        def forward(self, z, scale):
            return F.gelu(z) * scale

    assert keeps_input(TwoArgs(), _z()) is False
