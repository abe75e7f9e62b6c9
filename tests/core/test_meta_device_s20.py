"""Inputs and networks on the ``meta`` device, and an input on another device than the network's (P3 finding 1).

Before: a CPU network handed a meta ``x`` failed deep inside torch ("Tensor.item() cannot be called on meta tensors"
from the finite check, "unknown device type for autocast" from the RNN's dtype check), naming neither ``x`` nor the
devices; a meta network on a meta ``x`` (torch's shape inference) failed the same way.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core._devices import autocast_enabled, autocast_off, require_device
from neuroview.core._utils import require_finite
from neuroview.core.rnn_backbone import prepare


def _rnn(layers: int = 2) -> nv.NeuroViewRNN:
    torch.manual_seed(0)
    return nv.NeuroViewRNN(nn.GRU(2, 3, num_layers=layers, batch_first=True), 4, max_len=6).eval()


def test_the_finite_check_skips_a_meta_input_and_still_reads_a_cpu_one():
    require_finite(torch.zeros(2, 3, device="meta"))  # before: RuntimeError, Tensor.item() on meta
    with pytest.raises(ValueError, match=r"^x: contains NaN or Inf \(1 of 6 values\) in samples \[1\]"):
        require_finite(torch.tensor([[0.0, 1.0, 2.0], [3.0, float("nan"), 5.0]]))


def test_autocast_on_a_device_type_without_autocast_reads_as_off():
    assert autocast_enabled("meta") is False  # torch.is_autocast_enabled("meta") raises
    with autocast_off("meta"):
        pass
    assert autocast_enabled("cpu") is False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert autocast_enabled("cpu") is True
        with autocast_off("cpu"):
            assert autocast_enabled("cpu") is False


def test_prepare_takes_a_meta_input_as_it_is():
    x = torch.zeros(3, 5, 2, device="meta")
    out, lengths = prepare(x, None, batch_first=True, input_size=2, max_len=6, check_finite=True, dtype=torch.float32)
    assert out.device.type == "meta" and tuple(out.shape) == (3, 5, 2) and lengths is None


def test_a_meta_rnn_reads_the_states_of_a_meta_input_by_shape():
    net = _rnn().to("meta")
    x, _ = prepare(torch.zeros(3, 6, 2, device="meta"), None, batch_first=True, input_size=2, max_len=6,
                   check_finite=True, dtype=torch.float32)
    h = net._backbone.states(net.rnn, x, None, False)
    assert h.device.type == "meta" and tuple(h.shape) == (3, 2, 1, 6, 3)  # [B, L, D, T, H]: 2 layers, 1 direction


@pytest.mark.parametrize("call", ["forward", "explain"])
def test_a_cpu_rnn_handed_a_meta_input_names_x_and_both_devices(call):
    net = _rnn()
    x = torch.zeros(2, 6, 2, device="meta")
    with pytest.raises(ValueError, match=r"^x: on device meta, the model's parameters on cpu; move x \(x\.to\('cpu'\)\) "
                                         r"or the model \(model\.to\('meta'\)\)$"):
        net(x) if call == "forward" else net.explain(x)


def test_a_meta_rnn_handed_a_cpu_input_names_both_devices():
    net = _rnn(layers=1).to("meta").train()  # (in eval mode rnn_reach's warn_unreached reads the meta norm's buffers first)
    with pytest.raises(ValueError, match=r"^x: on device cpu, the model's parameters on meta; move x \(x\.to\('meta'\)\)"):
        net(torch.zeros(2, 6, 2))


def test_require_device_passes_where_x_is_on_a_device_of_the_module():
    lin = nn.Linear(3, 2)
    require_device(torch.zeros(1, 3), lin)
    require_device(torch.zeros(1, 3, device="meta"), nn.ReLU())  # no parameters: nothing to compare
    with pytest.raises(ValueError, match=r"^lengths: on device meta, the model's parameters on cpu; move lengths "
                                         r"\(lengths\.to\('cpu'\)\)"):
        require_device(torch.zeros(1, 3, device="meta"), lin, "lengths")


def _cnn() -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Conv1d(4, 5, 3), nn.ReLU())
    return nv.NeuroViewCNN(backbone, num_classes=3, input_shape=(2, 12)).eval()


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_a_whole_network_on_meta_runs_a_meta_input_through_by_shape(kind):
    net = _cnn() if kind == "cnn" else _rnn()
    x = torch.zeros(5, 2, 12) if kind == "cnn" else torch.zeros(5, 6, 2)
    want = net(x).shape  # the CPU pass: [5, C]
    out = net.to("meta")(x.to("meta"))  # torch's shape inference; before: .item() / autocast on meta raised
    assert out.device.type == "meta" and out.shape == want == (5, net.num_classes)


def test_a_cpu_cnn_handed_a_meta_input_names_x_and_both_devices():
    net = _cnn()
    for call in (net, net.explain):
        with pytest.raises(ValueError, match=r"^x: on device meta, the model's parameters on cpu; move x "
                                             r"\(x\.to\('cpu'\)\) or the model \(model\.to\('meta'\)\)$"):
            call(torch.zeros(2, 2, 12, device="meta"))
    assert net(torch.zeros(2, 2, 12)).shape == (2, 3)  # its own device still runs
