"""Inputs and networks on the ``meta`` device, and an input on another device than the network's (P3 finding 1).

Before: a CPU network handed a meta ``x`` failed deep inside torch ("Tensor.item() cannot be called on meta tensors"
from the finite check, "unknown device type for autocast" from the RNN's dtype check), naming neither ``x`` nor the
devices; a meta network on a meta ``x`` (torch's shape inference) failed the same way.
"""

from __future__ import annotations

from unittest import mock

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
    with pytest.raises(ValueError, match=r"^x: on device cpu, the model's parameters on meta; move x \(x\.to\('meta'\)\) for "
                                         r"shape inference, or to run it on cpu build or load the model there"):
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


# R3 findings 5 and 6: a backbone of buffers only (fixed filters) is judged by its buffers; only the pairs that cannot
# run and that torch names badly (meta against a real device) are refused, any other pair left to torch; an ensemble
# and LITE on meta, shown here once their sites were found on a real input.
class _Fixed(nn.Module):
    """A backbone of fixed filters kept as buffers (as FixedConv1d and MiniRocket's kernels are): no parameters."""

    def __init__(self):
        super().__init__()
        self.register_buffer("weight", torch.tensor([[[1.0, -1.0, 0.0]], [[0.0, 1.0, 1.0]]]))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(nn.functional.conv1d(x, self.weight))


def test_a_backbone_of_buffers_only_handed_a_meta_input_names_x_and_both_devices():
    with pytest.raises(ValueError, match=r"^x: on device meta, the model's buffers on cpu; move x \(x\.to\('cpu'\)\) or "
                                         r"the model \(model\.to\('meta'\)\)$"):
        require_device(torch.zeros(1, 1, 5, device="meta"), _Fixed())  # before: nothing (no parameters to look at)
    net = nv.NeuroViewCNN(_Fixed(), 2, input_shape=(1, 6), quantizer="hard", unit_axis={"act": 1}).eval()
    with pytest.raises(ValueError, match=r"^x: on device meta, the model's buffers on cpu; move x"):
        net(torch.zeros(2, 1, 6, device="meta"))  # before: RuntimeError, "Tensor on device cpu is not on ... meta!"
    x = torch.tensor([[[0.0, 1.0, 0.0, 2.0, 0.0, 0.0]]])
    # by hand: filter 0 (x[t] - x[t+1]: -1, 1, -2, 2) is on at 2 of 4 positions, filter 1 (x[t+1] + x[t+2]: 1, 2, 2, 0)
    # at 3 of 4; its own device still runs
    assert net.codes(x).tolist() == [[0.5, 0.75]]


def test_require_device_refuses_only_meta_against_a_real_device():
    lin, meta = nn.Linear(3, 2), nn.Linear(3, 2).to("meta")
    with pytest.raises(ValueError, match=r"^x: on device cpu, the model's parameters on meta; move x \(x\.to\('meta'\)\) for "
                                         r"shape inference, or to run it on cpu build or load the model there \(model\."
                                         r"to_empty\(device='cpu'\), then load its weights\): model\.to\('cpu'\) cannot "
                                         r"copy out of meta, which holds no values$"):
        require_device(torch.zeros(1, 3), meta)
    require_device(torch.zeros(1, 3, device="meta"), meta)
    spread = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2).to("meta"))  # partly on meta: an x on either device passes
    require_device(torch.zeros(1, 3), spread)
    require_device(torch.zeros(1, 3, device="meta"), spread)
    # two real devices: torch's to judge, a backbone may move its input itself (x.to(self.weight.device) in forward).
    # A stand-in for a CUDA x (no GPU here): before, it was refused, "x: on device cuda:0, the model's parameters on cpu"
    cuda_x = mock.MagicMock(spec=torch.Tensor)
    cuda_x.device = torch.device("cuda", 0)
    require_device(cuda_x, lin)
    require_device(torch.zeros(1, 3), _Fixed())


def test_an_ensemble_and_lite_on_meta_run_a_meta_input_through_by_shape_once_their_sites_are_found():
    torch.manual_seed(0)
    members = [nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU()), 3, input_shape=(2, 12)) for _ in range(2)]
    lite = nv.create_model("nv_lite", in_channels=2, num_classes=3).eval()
    x = torch.randn(5, 2, 12)
    for net in (nv.Ensemble(members).eval(), lite):
        want = net(x).shape  # a pass on a real input finds the sites (the ensemble's members: input_shape did)
        out = net.to("meta")(x.to("meta"))
        assert out.device.type == "meta" and out.shape == want == (5, 3)


_MODEL_ON_META = (r"^backbone: expected its parameters on a real device to find its sites \(the search compares the "
                  r"samples' values\), got them on meta \('0\.weight', '0\.bias', '2\.weight', \.\.\.\), which holds none; "
                  r"build or load the model on a real device \(a meta model has no weights: "
                  r"model\.to_empty\(device='cpu'\), then load them\), find its sites there, then net\.to\('meta'\)$")


def _body() -> nn.Module:
    return nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 3), nn.ReLU())


def test_a_network_that_has_not_found_its_sites_is_told_to_find_them_on_a_real_model_first():
    lazy = nv.NeuroViewCNN(_body(), num_classes=3).to("meta")
    with pytest.raises(ValueError, match=_MODEL_ON_META):
        lazy(torch.zeros(2, 1, 16, device="meta"))  # before: Tensor.item() cannot be called on meta tensors
    found = nv.NeuroViewCNN(_body(), num_classes=3, input_shape=(1, 16))
    assert found.to("meta")(torch.zeros(2, 1, 16, device="meta")).shape == (2, 3)  # the advice runs


def test_a_model_built_on_meta_is_named_whatever_input_the_sites_were_to_be_found_on():
    """Review R8-3: built under torch.device('meta') with input_shape (no x given), the refusal named x and advised
    input_shape=...; given a real example_input, the search compared meta "values" and blamed site '1' as mixing
    samples. Each way now names the backbone, and advice that runs (torch's to_empty(), not .to('cpu'))."""
    with torch.device("meta"):
        made = [_body() for _ in range(3)]
    for model, kw in zip(made, [{"input_shape": (1, 16)}, {"example_input": torch.randn(5, 1, 16)},
                                {"example_input": torch.randn(5, 1, 16, device="meta")}]):
        with pytest.raises(ValueError, match=_MODEL_ON_META):
            nv.NeuroViewCNN(model, 3, **kw)
    with pytest.raises(NotImplementedError, match="to_empty"):  # why the advice is not "one pass on the CPU"
        made[0].to("cpu")
    # followed: storage on the CPU, the weights loaded, the sites found there, then the network moved to meta
    weights = _body().state_dict()
    model = made[0].to_empty(device="cpu")
    model.load_state_dict(weights)
    net = nv.NeuroViewCNN(model, 3, input_shape=(1, 16))
    assert [s.name for s in net.sites] == ["1", "3"]
    out = net.to("meta")(torch.zeros(5, 1, 16, device="meta"))
    assert out.device.type == "meta" and out.shape == (5, 3)


def test_a_model_partly_on_meta_names_the_tensors_there_and_buffers_alone_are_buffers():
    model = _body()
    model[2].to("meta")
    with pytest.raises(ValueError, match=r"^backbone: expected its parameters .* got them on meta \('2\.weight', "
                                         r"'2\.bias'\), which holds none"):
        nv.NeuroViewCNN(model, 3, example_input=torch.randn(5, 1, 16))
    with pytest.raises(ValueError, match=r"^backbone: expected its buffers on a real device .* got them on meta "
                                         r"\('weight'\), which holds none"):
        nv.NeuroViewCNN(_Fixed().to("meta"), 3, input_shape=(1, 12))


def test_a_meta_input_to_a_model_without_tensors_still_names_x():
    """A model of no parameters or buffers runs anywhere: there the input is what is on meta, and it is named."""
    with pytest.raises(ValueError, match=r"^x: on device meta, where a network cannot find its sites"):
        nv.NeuroViewCNN(nn.Sequential(nn.ReLU(), nn.Flatten()), 3, example_input=torch.randn(4, 2, 5, device="meta"))
