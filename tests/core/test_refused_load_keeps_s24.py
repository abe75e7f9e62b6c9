"""A load_state_dict that is refused leaves the network exactly as it was (probe S24 P4 finding 1).

torch copies a module's tensors as it walks the network and raises only at the end, so a refused load had already
replaced part of the network: an RNN checkpoint of another ``max_len`` (neuroview's own refusal, appended to torch's
error list) had its GRU and ``classifier.bias`` copied, a CNN checkpoint for other classes its backbone, BatchNorm
statistics and the head's normalization statistics, and a state dict with one stray key every tensor. A user who
caught the ``RuntimeError`` and kept the network explained logits 0.4 to 0.66 away from it. Each check compares with
a deepcopy taken before the call, tensor by tensor, bit for bit, and with the logits it gives.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

import neuroview as nv


def _rnn(max_len: int, seed: int):
    torch.manual_seed(seed)
    net = nv.wrap(nn.GRU(2, 6, batch_first=True), num_classes=3, max_len=max_len)
    net.train()
    net(torch.randn(8, max_len, 2))  # the norm's running statistics move off their initial values
    return net.eval()


def _cnn(num_classes: int, seed: int, quantizer: str = "hard", norm_floor: float = 0.0):
    torch.manual_seed(seed)
    body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    net = nv.wrap(body, num_classes=num_classes, quantizer=quantizer, norm_floor=norm_floor)
    net.train()
    net(torch.rand(32, 1, 8, 8))
    return net.eval()


_XS = {"rnn": torch.randn(8, 20, 2, generator=torch.Generator().manual_seed(5)),
       "cnn": torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(5))}


def _tensors(net: nn.Module) -> list:
    """Every parameter and buffer, by name, with the object itself (remove_duplicate off: a shared one each time)."""
    return [(n, t) for m_name, m in net.named_modules(remove_duplicate=False)
            for n, t in [*((f"{m_name}.{k}", v) for k, v in m._parameters.items()),
                         *((f"{m_name}.{k}", v) for k, v in m._buffers.items())] if t is not None]


def _same_as(net: nn.Module, ref: nn.Module, kind: str) -> None:
    got, want = _tensors(net), _tensors(ref)
    assert [n for n, _ in got] == [n for n, _ in want]
    changed = [n for (n, a), (_, b) in zip(got, want)
               if not (a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b) and a.requires_grad == b.requires_grad)]
    assert changed == []
    assert torch.equal(net.explain(_XS[kind]).logits, ref.explain(_XS[kind]).logits)
    if kind == "rnn":  # the GRU's own forward reads its flat weights, which assign=True had pointed at the file's
        assert torch.equal(net.rnn(_XS[kind])[0], ref.rnn(_XS[kind])[0])


def _refused(net, state_dict, **kw) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError) as e:
            net.load_state_dict(state_dict, **kw)
    return str(e.value)


@pytest.mark.parametrize("assign", [False, True])
def test_an_rnn_checkpoint_of_another_max_len_is_refused_and_copies_nothing(assign):
    net, other = _rnn(20, 0), _rnn(30, 1)
    ref = copy.deepcopy(net)
    ids = [id(t) for _, t in _tensors(net)]
    msg = _refused(net, other.state_dict(), assign=assign)
    assert msg.startswith("Error(s) in loading state_dict for NeuroViewRNN:\n\tclassifier.weight: the checkpoint reads "
                          "30 steps of 6 hidden states, this network 20 (max_len=20, window=1): build it with the max_len")
    assert "size mismatch for classifier.weight" in msg  # torch's own lines stay beside it
    _same_as(net, ref, "rnn")  # the GRU and classifier.bias were the checkpoint's (logits 0.66 off)
    assert [id(t) for _, t in _tensors(net)] == ids  # assign=True: the network's own tensor objects, back in place


@pytest.mark.parametrize("assign", [False, True])
def test_a_cnn_checkpoint_for_other_classes_is_refused_and_copies_nothing(assign):
    net, seven = _cnn(10, 0), _cnn(7, 1)
    ref = copy.deepcopy(net)
    ids = [id(t) for _, t in _tensors(net)]
    msg = _refused(net, seven.state_dict(), assign=assign)
    assert msg.startswith("Error(s) in loading state_dict for NeuroViewCNN:\n\tsize mismatch for classifier.weight: "
                          "copying a param with shape torch.Size([7, 24]) from checkpoint")
    _same_as(net, ref, "cnn")  # backbone weights, BatchNorm and norm statistics were the checkpoint's (logits 0.41 off)
    assert [id(t) for _, t in _tensors(net)] == ids


@pytest.mark.parametrize("kind", ["rnn", "cnn"])
def test_a_state_dict_with_one_stray_key_is_refused_and_copies_nothing(kind):
    net, other = (_rnn(20, 0), _rnn(20, 1)) if kind == "rnn" else (_cnn(10, 0), _cnn(10, 1, norm_floor=0.5))
    sd = other.state_dict()  # its metadata kept: the file's records (a CNN's norm floor, 0.5) go with it
    sd["stray"] = torch.zeros(1)
    ref = copy.deepcopy(net)
    msg = _refused(net, sd)
    assert msg == (f"Error(s) in loading state_dict for NeuroView{kind.upper()}:\n\t"
                   'Unexpected key(s) in state_dict: "stray". ')
    _same_as(net, ref, kind)  # every tensor, the classifier and norm included, was the file's
    assert net.norm.floor == ref.norm.floor == (0.1 if kind == "rnn" else 0.0)  # the file's 0.5 was kept


@pytest.mark.parametrize("clash", ["stray", "quantizer"])
def test_a_refused_ensemble_load_keeps_the_members_loaded_before_the_refusal(clash):
    ens = nv.Ensemble([_cnn(10, 0), _cnn(10, 2)])
    other = nv.Ensemble([_cnn(10, 1), _cnn(10, 3, quantizer="soft" if clash == "quantizer" else "hard")])
    sd = other.state_dict()
    if clash == "stray":
        sd = dict(sd) | {"stray": torch.zeros(1)}
    ref = copy.deepcopy(ens)
    msg = _refused(ens, sd)
    assert ("Unexpected key(s) in state_dict: \"stray\"" if clash == "stray" else
            "members.1.quantizer: the state dict was saved from a network with quantizer='soft'") in msg
    _same_as(ens, ref, "cnn")  # member 0, loaded before member 1 refused the file, was the file's


@pytest.mark.parametrize("kind", ["rnn", "cnn"])
def test_a_load_that_fits_still_loads_every_tensor_and_keeps_nothing_after(kind):
    net, other = (_rnn(20, 0), _rnn(20, 1)) if kind == "rnn" else (_cnn(10, 0), _cnn(10, 1))
    ids = [id(t) for _, t in _tensors(net)]
    attrs = {n: set(vars(m)) for n, m in net.named_modules()}
    net.load_state_dict(other.state_dict())
    _same_as(net, other, kind)
    assert [id(t) for _, t in _tensors(net)] == ids  # copied into, not replaced
    assert {n: set(vars(m)) for n, m in net.named_modules()} == attrs  # no record of the load left on any module
    net.load_state_dict(copy.deepcopy(other).state_dict(), assign=True)
    _same_as(net, other, kind)
