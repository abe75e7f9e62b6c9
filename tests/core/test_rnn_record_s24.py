"""What a NeuroView-RNN's state dict records of how it reads a series, refused by name at load (probe S24 F4).

A network built for 4-channel series read one sample a step (``window=1``, ``max_len=8``) and one built for 2-channel
series read two samples a step (``window=2``, ``max_len=16``) run a GRU of the same ``input_size`` (channels x window
= 4) over the same 8 steps: every tensor has the same shape, and a state dict of one loaded into the other without a
word, ``strict=False`` or not. Its weights then read each input of a step as another sample's other channel: the
logits on the user's series are another function's. The state dict now records ``window`` and the input channels (as
the RNN's class and an ``nn.RNN``'s nonlinearity); a record that differs is refused naming the option, the file's
value and the model's. ``RNNClassifier``, the standard counterpart, reads a window alike and is refused alike. A file
without the record (every zoo checkpoint, a plain dict of tensors) loads as before.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import neuroview as nv
from neuroview.zoo.pretrained import checkpoints_dir, read_manifest


def _four_by_one(seed: int = 0):
    torch.manual_seed(seed)
    return nv.create_model("nv_gru", num_classes=3, in_features=4, window=1, max_len=8, hidden_size=6).eval()


def _two_by_two(seed: int = 1):
    torch.manual_seed(seed)
    return nv.create_model("nv_gru", num_classes=3, in_features=2, window=2, max_len=16, hidden_size=6).eval()


def _tensors(net: nn.Module) -> dict:
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_the_two_networks_hold_tensors_of_the_same_shapes():
    a, b = _four_by_one().state_dict(), _two_by_two().state_dict()
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)  # no shape can tell them apart
    assert a["rnn.weight_ih_l0"].shape == (18, 4)


def test_the_state_dict_records_the_window_and_the_input_channels():
    meta = _two_by_two().state_dict()._metadata[""]
    assert (meta["window"], meta["input_size"], meta["max_len"]) == (2, 2, 16)
    assert meta["rnn"] == "GRU"  # the record kept before stays


@pytest.mark.parametrize("strict", [True, False])
def test_a_state_dict_of_another_window_of_the_same_shapes_is_refused_by_name(strict):
    sd = _four_by_one().state_dict()
    net = _two_by_two()
    before = _tensors(net)
    with pytest.raises(RuntimeError) as e:
        net.load_state_dict(sd, strict=strict)
    msg = str(e.value)
    assert msg.startswith("Error(s) in loading state_dict for NeuroViewRNN:\n\twindow: ")
    assert "window=1" in msg and "window=2" in msg  # the file's value and the model's
    assert "4 channels" in msg and "2 channels" in msg
    assert "build it with window=1" in msg and "in_features=4" in msg and "max_len=8" in msg
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # nothing copied


def test_the_reverse_and_a_nested_network_are_refused_with_the_prefix():
    with pytest.raises(RuntimeError, match=r"\twindow: .*window=2.*window=1.*build it with window=2"):
        _four_by_one().load_state_dict(_two_by_two().state_dict())
    outer = nn.ModuleDict({"net": _four_by_one()})
    other = nn.ModuleDict({"net": _two_by_two()})
    before = _tensors(other)
    with pytest.raises(RuntimeError, match=r"\tnet\.window: .*build it with window=1"):
        other.load_state_dict(outer.state_dict(), strict=False)
    assert all(torch.equal(v, before[k]) for k, v in other.state_dict().items())


def test_a_user_module_of_another_window_is_refused_too():
    class Steps(nn.Module):  # the user-module protocol: batch-first x, per-step states
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(6, 5, batch_first=True)

        def forward(self, x):
            return self.gru(x)[0]

    torch.manual_seed(0)
    three = nv.NeuroViewRNN(Steps(), 2, max_len=12, input_size=6, window=3)  # 2 channels, 3 samples a step
    two = nv.NeuroViewRNN(Steps(), 2, max_len=8, input_size=6, window=2)  # 3 channels, 2 samples a step: 4 steps each
    with pytest.raises(RuntimeError, match=r"window: .*window=3 .*2 channels.*window=2 .*3 channels"):
        two.load_state_dict(three.state_dict())


def test_the_same_reading_loads_and_gives_the_same_logits():
    src, x = _two_by_two(seed=0), torch.randn(5, 16, 2, generator=torch.Generator().manual_seed(2))
    dst = _two_by_two(seed=3)
    dst.load_state_dict(src.state_dict())
    with torch.no_grad():
        assert torch.equal(dst(x), src(x))
    torch.manual_seed(0)  # another max_len of the same steps and window: every series the file read is read alike
    longer = nv.create_model("nv_gru", num_classes=3, in_features=2, window=2, max_len=15, hidden_size=6).eval()
    longer.load_state_dict(src.state_dict())
    with torch.no_grad():
        assert torch.equal(longer(x[:, :15]), src(x[:, :15]))


def test_a_state_dict_without_the_record_loads_as_before():
    sd = _four_by_one().state_dict()
    net = _two_by_two()
    net.load_state_dict(dict(sd))  # a plain dict of tensors (safetensors.save_file writes one): nothing recorded
    assert all(torch.equal(v, sd[k]) for k, v in net.state_dict().items())
    old = sd.copy()  # saved before the window was kept
    old._metadata = {k: {kk: vv for kk, vv in v.items() if kk not in ("window", "input_size", "max_len")}
                     for k, v in sd._metadata.items()}
    _two_by_two().load_state_dict(old)


def test_a_standard_rnn_classifier_of_another_window_is_refused():
    torch.manual_seed(0)
    one = nv.create_model("gru", num_classes=3, in_features=4, window=1, hidden_size=6)
    two = nv.create_model("gru", num_classes=3, in_features=2, window=2, hidden_size=6)
    assert one.state_dict()._metadata[""]["window"] == 1
    before = _tensors(two)
    with pytest.raises(RuntimeError, match=r"for RNNClassifier:\n\twindow: .*window=1.*window=2.*build it with "
                                           r"window=1.*create_model\('gru'"):
        two.load_state_dict(one.state_dict(), strict=False)
    assert all(torch.equal(v, before[k]) for k, v in two.state_dict().items())
    same = nv.create_model("gru", num_classes=3, in_features=2, window=2, hidden_size=6)
    same.load_state_dict(two.state_dict())
    nv.create_model("gru", num_classes=3, in_features=2, window=2, hidden_size=6).load_state_dict(dict(one.state_dict()))


_ZOO_RNNS = sorted(n for n in read_manifest() if n.split(".")[0] in ("nv_gru", "nv_lstm"))


def test_the_zoo_has_recurrent_entries():
    assert len(_ZOO_RNNS) >= 12


@pytest.mark.parametrize("name", _ZOO_RNNS)
def test_each_recurrent_zoo_checkpoint_still_loads_bit_identical(name):
    entry = read_manifest()[name]
    net = nv.create_model(name, pretrained=True)
    file = load_file(str(checkpoints_dir() / entry["file"]))
    sd = net.state_dict()
    assert sd.keys() == file.keys() and all(torch.equal(sd[k], file[k]) and sd[k].dtype == file[k].dtype for k in file)
    fresh = nv.create_model(entry["architecture"], **entry["arch_kwargs"])  # its state_dict() (now with the record)
    fresh.load_state_dict(sd)  # loads into the zoo's own build of the entry
    assert all(torch.equal(v, file[k]) for k, v in fresh.state_dict().items())


def test_a_recurrent_zoo_entry_s_state_dict_records_how_it_reads():
    net = nv.create_model("nv_gru.basicmotions", pretrained=True)  # 6 channels, 100 samples in 50 steps of 2
    meta = net.state_dict()._metadata[""]
    assert (meta["window"], meta["input_size"], meta["max_len"]) == (2, 6, 100)


def test_a_plain_dict_is_the_named_override_for_series_folded_by_hand():
    torch.manual_seed(0)
    gru = nn.GRU(6, 5, batch_first=True)
    win = nv.NeuroViewRNN(gru, 3, max_len=12, window=3).eval()  # 2 channels, 3 samples a step
    plain = nv.NeuroViewRNN(gru, 3, max_len=4).eval()  # 6 channels, one sample a step: the same 4 steps
    with pytest.raises(RuntimeError, match=r"load_state_dict\(dict\(state_dict\)\)"):
        plain.load_state_dict(win.state_dict())
    plain.load_state_dict(dict(win.state_dict()))  # on purpose: the windowed weights over series folded by hand
    x = torch.randn(4, 12, 2, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(win(x), plain(x.reshape(4, 4, 6)), atol=1e-6)  # 3 samples of 2 channels as 6 inputs
