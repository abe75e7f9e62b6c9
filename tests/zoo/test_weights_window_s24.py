"""A weight file of another window (samples a step) and channels a sample, whose RNN takes as many inputs a step, is
refused by load_weights: through the backbone (``init_weights``) by the state dict's record, and through a
safetensors header's builder arguments (in_features, max_len, max_steps / window), with or without ``arch_kwargs=``."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import neuroview as nv
from neuroview.training.module import load_weights as init_load
from neuroview.zoo.pretrained import checkpoints_dir, read_manifest
from neuroview.zoo.weights import ArchitectureError, load_weights


def _nv(in_features, window, max_len, **kw):
    torch.manual_seed(1)
    return nv.create_model("nv_gru", num_classes=3, in_features=in_features, window=window, max_len=max_len,
                           hidden_size=8, **kw)


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("arch", ["gru", "nv_gru"])
def test_backbone_pt_of_another_window_refused(tmp_path, arch):
    torch.manual_seed(0)  # 2 channels read 2 samples a step: 4 inputs a step, as 4 channels one sample a step
    kw = dict(max_len=16) if arch == "nv_gru" else {}
    src = nv.create_model(arch, num_classes=3, in_features=2, window=2, hidden_size=8, **kw)
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    dst = _nv(4, 1, 10)  # 10 steps: the whole network does not fit, its rnn does
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(ArchitectureError, match=r"init_weights: .*window=2 \(2 samples of 2 channels a step.*"
                                                r"window=1 \(1 sample of 4 channels a step") as e:
        init_load(dst, path)
    assert e.value.fits and "in_features=2, window=2" in str(e.value)
    assert _same(before, dst.state_dict())  # nothing copied


def test_backbone_pt_of_the_same_window_loads(tmp_path):
    src = _nv(2, 2, 16)
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    dst = _nv(2, 2, 20)  # another max_len: 10 steps, its head is not loaded
    with pytest.warns(UserWarning, match="only its rnn was loaded"):
        part = init_load(dst, path)
    assert part is dst.rnn and _same(src.rnn.state_dict(), dst.rnn.state_dict())


def _header_file(tmp_path, kwargs, src=None):
    src = src or _nv(2, 2, 16)
    path = tmp_path / "w.safetensors"
    save_file(src.state_dict(), str(path), metadata={"neuroview.architecture": "nv_gru",
                                                     "neuroview.arch_kwargs": json.dumps(kwargs)})
    return path


@pytest.mark.parametrize("said", [{"window": 2}, {"max_steps": 8}])
def test_safetensors_header_of_another_window_refused(tmp_path, said):
    path = _header_file(tmp_path, {"num_classes": 3, "in_features": 2, "max_len": 16, "hidden_size": 8, **said})
    dst = _nv(4, 1, 8)  # the same 8 steps of 4 inputs: every tensor of the same shape
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(ArchitectureError, match=r"path: .*window=2 \(2 samples of 2 channels a step, max_len=16\)") as e:
        load_weights(dst, path)
    assert e.value.fits and "create_model('nv_gru', in_features=2, window=2, max_len=16" in str(e.value)
    assert _same(before, dst.state_dict())
    with pytest.raises(ArchitectureError, match="window=2"):  # the backbone's way too
        init_load(_nv(4, 1, 8), path)


def test_safetensors_header_without_the_reading_loads(tmp_path):
    src = _nv(2, 2, 16)
    path = _header_file(tmp_path, {"num_classes": 3, "hidden_size": 8}, src)  # no in_features, window, max_len
    dst = _nv(4, 1, 8)
    load_weights(dst, path)
    assert _same(src.state_dict(), dst.state_dict())


def test_zoo_file_into_another_reading_refused():
    entry = read_manifest()["nv_gru.basicmotions"]  # 6 channels, 100 samples in 50 steps of 2
    kw = {k: v for k, v in entry["arch_kwargs"].items() if k != "max_steps"} | dict(in_features=12, window=1, max_len=50)
    with pytest.raises(ArchitectureError, match=r"window=2 \(2 samples of 6 channels a step, max_len=100\)"):
        load_weights(nv.create_model("nv_gru", **kw), checkpoints_dir() / entry["file"])
    with pytest.raises(ArchitectureError, match="window=2"):
        init_load(nv.create_model("nv_gru", **kw), checkpoints_dir() / entry["file"])


_RECURRENT = sorted(n for n, e in read_manifest().items() if e["architecture"] in ("gru", "nv_gru", "lstm", "nv_lstm"))


@pytest.mark.parametrize("name", _RECURRENT)
def test_recurrent_zoo_entries_load_bit_identical(name):
    entry = read_manifest()[name]
    path = checkpoints_dir() / entry["file"]
    net = nv.create_model(entry["architecture"], **entry["arch_kwargs"])
    load_weights(net, path, sha256=entry.get("sha256"))
    file = load_file(str(path))
    assert file.keys() == net.state_dict().keys() and _same(file, net.state_dict())
