"""Faults the review R8 of ad22d13 found in the zoo's export and weight checks (session 18).

- A float8 weight file crashed in the NaN/Inf check (torch has no ``isfinite`` for ``float8_e4m3fn``).
- A ``shared_steps=True`` RNN saved with ``shared_steps`` left out (or False) got "unexpected tensors in the file".
- ``save_pretrained``'s NaN refusal said "restore the file" where there is no file.
- ``load_pretrained(name, in_channels=2)`` refused what ``create_model`` takes.
- ``architecture=None`` was a bare TypeError; ``overwrite='no'`` replaced the entry.
- The ``--verify`` summary left out the checks it makes.
- A ``normalize=False`` NeuroView-CNN without its head yet, saved with ``normalize`` left out, was recorded as True.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import neuroview as nv
from neuroview.zoo import pretrained as zoo
from neuroview.zoo.weights import check_finite, load_weights

KW = {"in_channels": 1, "num_classes": 3, "widths": [4]}
RNN = {"num_classes": 2, "in_features": 2, "max_len": 5, "hidden_size": 3}


def _save(net, name, root, **kw):
    return zoo.save_pretrained(net, name, architecture=kw.pop("architecture", name.split(".")[0]),
                               arch_kwargs=kw.pop("arch_kwargs", KW), dataset={"name": "toy"}, recipe=None, seed=0,
                               metrics={}, root=root, **kw)


def _net(seed: int = 0):
    torch.manual_seed(seed)
    return nv.create_model("small_cnn", **KW).eval()


# ------------------------------------------------------------------ 1: float8 files are checked, not crashed on
@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2])
def test_a_float8_weight_file_loads_into_a_float32_network(tmp_path, dtype):
    path = tmp_path / "w8.safetensors"
    save_file({k: v.to(dtype) if v.is_floating_point() else v for k, v in _net().state_dict().items()}, str(path))
    net = load_weights(nv.create_model("small_cnn", **KW), path)
    want = {k: v.float() for k, v in load_file(str(path)).items() if v.dtype == dtype}  # the file's values, cast by hand
    assert want and all(torch.equal(net.state_dict()[k], v) for k, v in want.items())


def test_a_float8_tensor_holding_nan_is_refused_naming_it():
    bad = torch.tensor([0.5, float("nan"), 1.0]).to(torch.float8_e4m3fn)  # e4m3fn has NaN (and no Inf)
    with pytest.raises(ValueError, match=r"path: 'w8' holds NaN or Inf in 1 tensor \(first: \['w: 1 of 3'\]\)"):
        check_finite({"w": bad, "ok": torch.ones(2, dtype=torch.float8_e4m3fn)}, "path", "'w8'")
    check_finite({"ok": torch.ones(2, dtype=torch.float8_e5m2)}, "path", "'w8'")  # finite: passes


# ------------------------------------------------------------------ 2: shared_steps, the other direction
@pytest.mark.parametrize("given", [{}, {"shared_steps": False}])
def test_save_pretrained_of_a_shared_steps_rnn_without_shared_steps_names_it(tmp_path, given):
    torch.manual_seed(0)
    net = nv.create_model("nv_gru", **RNN, shared_steps=True).eval()
    assert net.step_shared is not None
    default = "" if given else " (the default)"
    with pytest.raises(ValueError, match=rf"arch_kwargs: shared_steps is False{re.escape(default)}, but the network has "
                                         r"a shared part \(step_shared.weight\); save it with shared_steps=True"):
        _save(net, "nv_gru.s", tmp_path, arch_kwargs={**RNN, **given})
    assert not list(tmp_path.iterdir())
    x = torch.randn(3, 5, 2)
    _save(net, "nv_gru.s", tmp_path, arch_kwargs={**RNN, "shared_steps": True})
    assert torch.equal(nv.create_model("nv_gru.s", pretrained=True, root=tmp_path)(x), net(x))


# ------------------------------------------------------------------ 3: the save refusal speaks of the network
def test_save_pretrained_of_a_network_holding_nan_speaks_of_the_network(tmp_path):
    net = _net()
    with torch.no_grad():
        net.state_dict()["features.0.0.weight"].view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match=r"model: the network holds NaN or Inf in 1 tensor \(first: \['features.0.0.weight: "
                                         r"1 of 36'\]\); .*training diverged") as e:
        _save(net, "small_cnn.nan", tmp_path)
    assert "restore the file" not in str(e.value)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ 4: load_pretrained routes in_channels as create_model
def test_load_pretrained_takes_in_channels_for_an_rnn(tmp_path):
    torch.manual_seed(0)
    net = nv.create_model("nv_gru", **RNN).eval()
    _save(net, "nv_gru.c", tmp_path, arch_kwargs=RNN)
    x = torch.randn(3, 5, 2)
    back = zoo.load_pretrained("nv_gru.c", root=tmp_path, in_channels=2)
    assert torch.equal(back(x), net(x))
    with pytest.raises(ValueError, match=r"got in_channels=3 \(an RNN's in_features; checkpoint: 2\)\. Build") as e:
        zoo.load_pretrained("nv_gru.c", root=tmp_path, in_channels=3)  # named as the caller passed it
    assert "in_features=3" not in str(e.value)
    with pytest.raises(ValueError, match=r"got in_features=3 \(checkpoint: 2\)\. Build"):
        zoo.load_pretrained("nv_gru.c", root=tmp_path, in_features=3)


# ------------------------------------------------------------------ 5: architecture and overwrite of the wrong type
def test_save_pretrained_names_an_architecture_that_is_no_string(tmp_path):
    with pytest.raises(TypeError, match=r"architecture: expected a registered architecture name \(str\), got None"):
        _save(_net(), "small_cnn.x", tmp_path, architecture=None)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("flag", ["no", 0, None])
def test_save_pretrained_takes_only_a_bool_overwrite(tmp_path, flag):
    _save(_net(0), "small_cnn.d", tmp_path)
    before = (tmp_path / "small_cnn.d.safetensors").read_bytes()
    with pytest.raises(TypeError, match=rf"overwrite: expected True or False, got {re.escape(repr(flag))}"):
        _save(_net(1), "small_cnn.d", tmp_path, overwrite=flag)
    assert (tmp_path / "small_cnn.d.safetensors").read_bytes() == before


@pytest.mark.parametrize("flag", [np.True_, torch.tensor(True), np.bool_(False), torch.tensor(False)],
                         ids=["np.True_", "tensor(True)", "np.False_", "tensor(False)"])
def test_save_pretrained_takes_numpy_and_torch_bools_as_overwrite(tmp_path, flag):
    """The project's bools (core._utils.is_bool): a true one replaces the entry, a false one refuses it, as True and False."""
    _save(_net(0), "small_cnn.d", tmp_path)
    before = (tmp_path / "small_cnn.d.safetensors").read_bytes()
    if bool(flag):
        entry = _save(_net(1), "small_cnn.d", tmp_path, overwrite=flag)
        after = (tmp_path / "small_cnn.d.safetensors").read_bytes()
        assert after != before and entry["sha256"] == hashlib.sha256(after).hexdigest()
    else:
        with pytest.raises(ValueError, match=r"already holds the entry 'small_cnn.d'; pass overwrite=True"):
            _save(_net(1), "small_cnn.d", tmp_path, overwrite=flag)
        assert (tmp_path / "small_cnn.d.safetensors").read_bytes() == before


@pytest.mark.parametrize("flag", [np.array([True]), torch.tensor([True]), [True], (True,)], ids=["array", "tensor", "list", "tuple"])
def test_save_pretrained_refuses_a_bool_array_as_overwrite(tmp_path, flag):
    _save(_net(0), "small_cnn.d", tmp_path)
    before = (tmp_path / "small_cnn.d.safetensors").read_bytes()
    with pytest.raises(TypeError, match=r"^overwrite: expected True or False, got "):
        _save(_net(1), "small_cnn.d", tmp_path, overwrite=flag)
    assert (tmp_path / "small_cnn.d.safetensors").read_bytes() == before


# ------------------------------------------------------------------ 6: the --verify summary names its checks
def test_verify_summary_names_the_checks_it_makes(tmp_path, capsys):
    from neuroview.zoo.cli import main

    _save(_net(), "small_cnn.v", tmp_path)
    assert main(["--verify", "--root", str(tmp_path)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("verified 1/1 entries")
    for check in ("sha256", "kinds of number", "finite values", "file in the folder", "parameter count"):
        assert check in line


# ------------------------------------------------------------------ the headless normalize=False CNN
def test_a_headless_normalize_false_cnn_saved_without_normalize_is_refused(tmp_path):
    cnn = nv.create_model("nv_small_cnn", **KW, normalize=False).eval()
    assert cnn.classifier is None and cnn._normalize is False  # its head is built on the first batch
    with pytest.raises(ValueError, match=r"normalize: model False, arch_kwargs build True"):
        _save(cnn, "nv_small_cnn.n", tmp_path)
    assert not list(tmp_path.iterdir())
    entry = _save(cnn, "nv_small_cnn.n", tmp_path, arch_kwargs={**KW, "normalize": False})
    assert entry["arch_kwargs"]["normalize"] is False
    assert nv.create_model("nv_small_cnn.n", pretrained=True, root=tmp_path)._normalize is False


def test_a_headless_normalize_true_cnn_still_saves_without_normalize(tmp_path):
    cnn = nv.create_model("nv_small_cnn", **KW).eval()
    _save(cnn, "nv_small_cnn.t", tmp_path)
    assert nv.create_model("nv_small_cnn.t", pretrained=True, root=tmp_path)._normalize is True
