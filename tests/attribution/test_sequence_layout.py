"""A NeuroViewRNN over an RNN with ``batch_first=False`` (PyTorch's default) reads ``[T, B, C]``.

The functions that take a loader of channels-first series (``[B, C, T]``, the data modules' layout)
handed every RNN ``[B, T, C]``: such a network read samples as steps and steps as samples, and
gave numbers that only looked right (when B == T) or a bare broadcast error. Checked here against
the same weights in a ``batch_first=True`` RNN, which reads ``[B, T, C]`` as it is given.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv


def _pair(batch: int, steps: int = 12):
    torch.manual_seed(0)
    gru = nn.GRU(2, 4)  # batch_first=False
    twin = nn.GRU(2, 4, batch_first=True)
    twin.load_state_dict(gru.state_dict())
    net = nv.wrap(gru, num_classes=2, max_len=steps).eval()
    ref = nv.wrap(twin, num_classes=2, max_len=steps).eval()
    ref.load_state_dict(net.state_dict())
    x = torch.randn(batch, 2, steps)  # [B, C, T]
    return net, ref, [(x, torch.arange(batch) % 2)]


@pytest.mark.parametrize("batch", [12, 8])  # B == T (was silently transposed) and B != T (was a bare error)
def test_loader_functions_read_a_steps_first_rnn_as_its_batch_first_twin(batch):
    net, ref, loader = _pair(batch)
    x = loader[0][0]
    assert torch.allclose(net(x.permute(2, 0, 1)), ref(x.transpose(1, 2)), atol=1e-6)  # the twin is the same network
    assert torch.allclose(nv.mean_codes(net, loader), nv.mean_codes(ref, loader), atol=1e-6)
    got, want = nv.readability(net, loader), nv.readability(ref, loader)
    assert got == pytest.approx(want)
    g, h = nv.unit_gallery(net, loader, units=[0, 5], k=3), nv.unit_gallery(ref, loader, units=[0, 5], k=3)
    assert torch.equal(g.index, h.index) and torch.allclose(g.value, h.value, atol=1e-6) and torch.equal(g.window, h.window)


def test_a_loader_of_steps_last_series_is_refused_by_name():
    net, _, loader = _pair(8)
    x, y = loader[0]
    with pytest.raises(ValueError, match=r"batches: expected channels-first series \[B, 2, T\] as the data modules give them, got shape \(8, 12, 2\)"):
        nv.readability(net, [(x.transpose(1, 2), y)])
    with pytest.raises(ValueError, match=r"train: expected channels-first series \[B, 2, T\]"):
        nv.sparsify(net, [(x.transpose(1, 2), y)] * 4)
