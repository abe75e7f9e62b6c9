"""A standard ``RNNClassifier`` over ``nn.RNN`` refuses a state dict of the other nonlinearity by name (F4 S24, left open).

``nn.RNN(nonlinearity='relu')`` and ``nn.RNN()`` (tanh) hold tensors of the same names and shapes: a relu classifier's
state dict loaded into a tanh one without a word, and its weights then computed another function. A NeuroView-RNN
refused it already (``rnn_steps.settings_clash``); the standard counterpart now records the RNN's class and
nonlinearity in its state dict's metadata too, and refuses a file whose record differs, ``strict=False`` too, before
anything is copied. A file without the record (a plain dict, every zoo checkpoint) loads as before.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import neuroview as nv
from neuroview.zoo.pretrained import checkpoints_dir, read_manifest


def _clf(nonlinearity: str = "tanh", seed: int = 0, kind=nn.RNN) -> nv.RNNClassifier:
    torch.manual_seed(seed)
    kw = {"nonlinearity": nonlinearity} if kind is nn.RNN else {}
    return nv.RNNClassifier(kind(3, 5, batch_first=True, **kw), num_classes=2).eval()


def _tensors(net: nn.Module) -> dict:
    return {k: v.clone() for k, v in net.state_dict().items()}


def _x() -> torch.Tensor:
    return torch.randn(4, 7, 3, generator=torch.Generator().manual_seed(3))


def test_the_same_weights_under_the_other_nonlinearity_are_another_function():
    relu, tanh = _clf("relu"), _clf("tanh", seed=1)
    tanh.load_state_dict(dict(relu.state_dict()))  # a plain dict: no record, the tensors alone
    with torch.no_grad():  # one shape, two functions: the reason the record is kept
        h = torch.zeros(4, 5)
        for t in range(7):  # relu's recurrence by hand, not the module's code
            h = torch.relu(_x()[:, t] @ relu.rnn.weight_ih_l0.T + relu.rnn.bias_ih_l0 + h @ relu.rnn.weight_hh_l0.T
                           + relu.rnn.bias_hh_l0)
        assert torch.allclose(relu(_x()), relu.classifier(h), atol=1e-6)
        assert not torch.allclose(tanh(_x()), relu(_x()), atol=1e-3)


def test_the_standard_state_dict_records_its_rnn_and_nonlinearity():
    meta = _clf("relu").state_dict()._metadata[""]
    assert (meta["rnn"], meta["nonlinearity"]) == ("RNN", "relu")
    assert _clf(kind=nn.GRU).state_dict()._metadata[""]["rnn"] == "GRU"


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("saved, into", [("relu", "tanh"), ("tanh", "relu")])
def test_a_standard_classifier_of_the_other_nonlinearity_is_refused_by_name(saved, into, strict):
    src, dst = _clf(saved), _clf(into, seed=1)
    before = _tensors(dst)
    with pytest.raises(RuntimeError, match=(
            rf"for RNNClassifier:\n\trnn\.nonlinearity: the state dict was saved from an RNNClassifier over "
            rf"nn\.RNN\(nonlinearity='{saved}'\), the model's rnn has nonlinearity='{into}'.*build the rnn with "
            rf"nonlinearity='{saved}' \(nn\.RNN\(\.\.\., nonlinearity='{saved}'\), or "
            rf"create_model\('rnn', nonlinearity='{saved}', \.\.\.\) for a zoo architecture\)")):
        dst.load_state_dict(src.state_dict(), strict=strict)
    assert all(torch.equal(v, before[k]) for k, v in dst.state_dict().items())  # nothing copied


def test_inside_another_module_the_key_names_the_prefix():
    outer = nn.ModuleDict({"clf": _clf("relu")})
    into = nn.ModuleDict({"clf": _clf("tanh", seed=1)})
    with pytest.raises(RuntimeError, match=r"clf\.rnn\.nonlinearity: .*'relu'.*'tanh'"):
        into.load_state_dict(outer.state_dict())


def test_a_zoo_standard_rnn_of_the_other_nonlinearity_is_refused():
    torch.manual_seed(0)
    relu = nv.create_model("rnn", num_classes=2, in_features=3, hidden_size=6, nonlinearity="relu")
    tanh = nv.create_model("rnn", num_classes=2, in_features=3, hidden_size=6)
    with pytest.raises(RuntimeError, match=r"rnn\.nonlinearity: .*RNNClassifier.*create_model\('rnn', nonlinearity='relu'"):
        tanh.load_state_dict(relu.state_dict())


def test_a_standard_classifier_over_another_kind_is_refused_by_name():
    with pytest.raises(RuntimeError, match=r"rnn: the state dict was saved from an RNNClassifier over nn\.GRU, the model's "
                                           r"rnn is an nn\.LSTM.*create_model\('gru', \.\.\.\)"):
        _clf(kind=nn.LSTM).load_state_dict(_clf(kind=nn.GRU).state_dict())


def test_the_same_nonlinearity_and_a_file_without_the_record_load_as_before():
    src = _clf("relu")
    same = _clf("relu", seed=1)
    same.load_state_dict(src.state_dict())
    with torch.no_grad():
        assert torch.equal(same(_x()), src(_x()))
    sd = src.state_dict()
    old = sd.copy()  # saved before the rnn was kept: the window alone
    old._metadata = {k: {kk: vv for kk, vv in v.items() if kk not in ("rnn", "nonlinearity")} for k, v in sd._metadata.items()}
    _clf("tanh", seed=1).load_state_dict(old)
    _clf("tanh", seed=1).load_state_dict(dict(sd))


def test_a_neuroview_rnn_s_refusal_still_reads_as_before():
    torch.manual_seed(0)
    relu = nv.NeuroViewRNN(nn.RNN(2, 4, batch_first=True, nonlinearity="relu"), num_classes=3, max_len=6)
    tanh = nv.NeuroViewRNN(nn.RNN(2, 4, batch_first=True), num_classes=3, max_len=6)
    with pytest.raises(RuntimeError, match=r"for NeuroViewRNN:\n\trnn\.nonlinearity: the state dict was saved from a "
                                           r"NeuroView-RNN over nn\.RNN\(nonlinearity='relu'\).*create_model\('nv_rnn', "
                                           r"nonlinearity='relu', \.\.\.\)\) to load it$"):
        tanh.load_state_dict(relu.state_dict())


_ZOO_STANDARD = sorted(n for n in read_manifest() if n.split(".")[0] in ("gru", "lstm", "rnn"))


def test_the_zoo_has_standard_recurrent_entries():
    assert {n.split(".")[0] for n in _ZOO_STANDARD} >= {"gru", "lstm"}


@pytest.mark.parametrize("name", _ZOO_STANDARD)
def test_each_standard_recurrent_zoo_checkpoint_still_loads_bit_identical(name):
    entry = read_manifest()[name]
    net = nv.create_model(name, pretrained=True)
    file = load_file(str(checkpoints_dir() / entry["file"]))
    sd = net.state_dict()
    assert sd.keys() == file.keys() and all(torch.equal(sd[k], file[k]) and sd[k].dtype == file[k].dtype for k in file)
    fresh = nv.create_model(entry["architecture"], **entry["arch_kwargs"])
    fresh.load_state_dict(sd)  # its state_dict(), now with the record, into the zoo's own build of the entry
    assert all(torch.equal(v, file[k]) for k, v in fresh.state_dict().items())
