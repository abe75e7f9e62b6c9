"""Zoo exports and weight reads that stay in their folder and say what is wrong (faults of probes P1 and P6, session 18).

- ``save_pretrained`` replaced an existing entry (the installed zoo's too) without a word: now ``overwrite=True`` asks for it.
- ``save_pretrained`` of a sparsified ``shared_steps`` RNN said "1 tensors missing from the file"; ``in_channels``, which
  ``create_model`` takes for an RNN, was "not an argument".
- ``save_pretrained`` took entry names with ``/``, ``..`` or an absolute path and wrote outside ``root``.
- A weight file with NaN/Inf, or with its float tensors stored as int32, was loaded (NaN then blamed on the data).
- ``neuroview sparsify CKPT`` without ``--data`` answered an unreadable checkpoint with "does not say what data".
- A manifest entry's ``file`` could name a file outside the folder (``../x``, ``/x``, a link out of it).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import neuroview as nv
from neuroview.zoo import pretrained as zoo
from neuroview.zoo.weights import ArchitectureError, load_weights

KW = {"in_channels": 1, "num_classes": 3, "widths": [4]}


def _save(net, name, root, **kw):
    return zoo.save_pretrained(net, name, architecture=name.split(".")[0], arch_kwargs=kw.pop("arch_kwargs", KW),
                               dataset={"name": "toy"}, recipe=None, seed=0, metrics={}, root=root, **kw)


def _net(seed: int):
    torch.manual_seed(seed)
    return nv.create_model("small_cnn", **KW).eval()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".manifest.lock"}


# ------------------------------------------------------------------ P1 #1: an existing entry is not replaced unasked
def test_save_pretrained_refuses_an_existing_entry_unless_overwrite(tmp_path):
    first, second = _net(0), _net(1)
    _save(first, "small_cnn.a", tmp_path)
    before = _files(tmp_path)
    with pytest.raises(ValueError, match=r"name: .* already holds the entry 'small_cnn.a'; pass overwrite=True"):
        _save(second, "small_cnn.a", tmp_path)
    assert _files(tmp_path) == before  # neither the weights nor the manifest touched
    loaded = nv.create_model("small_cnn.a", pretrained=True, root=tmp_path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in first.state_dict().items())
    _save(second, "small_cnn.a", tmp_path, overwrite=True)  # asked for: replaced
    loaded = nv.create_model("small_cnn.a", pretrained=True, root=tmp_path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in second.state_dict().items())
    assert list(zoo.read_manifest(tmp_path)) == ["small_cnn.a"]


def test_save_pretrained_into_the_default_zoo_keeps_its_entries(tmp_path, monkeypatch):
    """root=None is the installed zoo: a notebook's untrained network saved under a shipped entry's name replaced it."""
    src = Path(zoo.checkpoints_dir(None))
    copy = tmp_path / "zoo"
    copy.mkdir()
    name = "small_cnn.digits"
    entry = json.loads((src / "manifest.json").read_text())["entries"][name]
    shutil.copy(src / entry["file"], copy / entry["file"])
    (copy / "manifest.json").write_text(json.dumps({"format": 1, "entries": {name: entry}}))
    monkeypatch.setenv("NEUROVIEW_CHECKPOINTS", str(copy))
    before = _files(copy)
    net = nv.create_model("small_cnn", **entry["arch_kwargs"])
    with pytest.raises(ValueError, match="already holds the entry 'small_cnn.digits'"):
        zoo.save_pretrained(net, name, architecture="small_cnn", arch_kwargs=entry["arch_kwargs"], dataset={},
                            recipe=None, seed=0, metrics={})
    assert _files(copy) == before


# ------------------------------------------------------------------ P1 #4: shared_steps and in_channels of an RNN
RNN = {"num_classes": 2, "in_features": 2, "max_len": 5, "hidden_size": 3}


def test_save_pretrained_of_a_merged_shared_steps_rnn_names_shared_steps(tmp_path):
    torch.manual_seed(0)
    net = nv.create_model("nv_gru", **RNN, shared_steps=True).eval()
    with torch.no_grad():
        net.step_shared.weight.normal_()  # a shared part that matters: the merged weight differs from the classifier's own
    x = torch.randn(4, 5, 2)
    want = net(x).detach()
    net.merge_shared()  # what nv.sparsify does to a shared_steps head
    assert net.step_shared is None and torch.allclose(net(x), want, atol=1e-5)
    with pytest.raises(ValueError, match=r"arch_kwargs: shared_steps=True, but the network has no shared part .*"
                                         r"save it with shared_steps=False"):
        _save(net, "nv_gru.t", tmp_path, arch_kwargs={**RNN, "shared_steps": True})
    assert not tmp_path.joinpath("nv_gru.t.safetensors").exists()
    _save(net, "nv_gru.t", tmp_path, arch_kwargs={**RNN, "shared_steps": False})
    back = nv.create_model("nv_gru.t", pretrained=True, root=tmp_path)
    assert torch.allclose(back(x), want, atol=1e-5)


def test_save_pretrained_takes_in_channels_for_an_rnn_as_create_model_does(tmp_path):
    kw = {k: v for k, v in RNN.items() if k != "in_features"} | {"in_channels": 2}
    torch.manual_seed(0)
    net = nv.create_model("nv_gru", **kw).eval()  # create_model routes in_channels to in_features
    x = torch.randn(3, 5, 2)
    entry = _save(net, "nv_gru.c", tmp_path, arch_kwargs=kw)
    assert entry["arch_kwargs"] == RNN  # recorded under the name the builder takes
    assert torch.equal(nv.create_model("nv_gru.c", pretrained=True, root=tmp_path)(x), net(x))
    with pytest.raises(ValueError, match=r"arch_kwargs: in_channels is an RNN's in_features .* in_features=3"):
        _save(net, "nv_gru.d", tmp_path, arch_kwargs={**kw, "in_features": 3})


# ------------------------------------------------------------------ P6 #3: entry names are file names in root
@pytest.mark.parametrize("name", ["small_cnn.x/../../../escaped", "small_cnn./abs_escape", "small_cnn.a/b", "small_cnn.a b",
                                  "small_cnn.", "small_cnn", "other.x"])
def test_save_pretrained_refuses_names_that_are_no_file_name_in_root(tmp_path, name):
    root = tmp_path / "a" / "b" / "zoo"
    with pytest.raises(ValueError, match=r"name: expected 'small_cnn.<tag>' \(the architecture, a dot, then letters"):
        _save(_net(0), name, root) if name != "other.x" else zoo.save_pretrained(
            _net(0), name, architecture="small_cnn", arch_kwargs=KW, dataset={}, recipe=None, seed=0, metrics={}, root=root)
    assert not list(tmp_path.rglob("*.safetensors")) and not list(tmp_path.rglob("manifest.json"))  # nothing written


def test_sparsify_name_is_the_rule_save_pretrained_keeps(tmp_path, capsys):
    from neuroview.training.sparsify_cli import main as sparsify_main

    out = tmp_path / "sp"
    assert sparsify_main(["nv_lite.gunpoint", "--name", "nv_lite.x/../../esc", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--name: expected 'nv_lite.<tag>' (the architecture, a dot, then letters" in err and "no path" in err
    assert not out.exists() and not list(tmp_path.rglob("*.safetensors"))


# ------------------------------------------------------------------ P6 #4: NaN/Inf and other kinds of number
def _weights(tmp_path, change) -> Path:
    net = _net(0)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    path = tmp_path / "w.safetensors"
    save_file(change(state), str(path))
    return path


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_weight_file_with_nan_or_inf_is_refused_naming_the_tensor(tmp_path, value):
    def poison(state):
        state["features.0.0.weight"].view(-1)[3] = value
        return state
    path = _weights(tmp_path, poison)
    net = nv.create_model("small_cnn", **KW)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match=r"--weights: '.*w.safetensors' holds NaN or Inf in 1 tensor "
                                         r"\(first: \['features.0.0.weight: 1 of 36'\]\)"):
        load_weights(net, path, what="--weights")
    assert all(torch.equal(net.state_dict()[k], v) for k, v in before.items())  # nothing copied


def test_save_pretrained_refuses_a_network_holding_nan(tmp_path):
    net = _net(0)
    with torch.no_grad():
        net.state_dict()["features.0.0.weight"].view(-1)[0] = float("nan")
    with pytest.raises(ValueError, match=r"model: the network holds NaN or Inf in 1 tensor \(first: \['features.0.0.weight"):
        _save(net, "small_cnn.nan", tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_weight_file_of_float_tensors_stored_as_integers_is_refused(tmp_path):
    path = _weights(tmp_path, lambda s: {k: (v * 100).to(torch.int32) if v.is_floating_point() else v for k, v in s.items()})
    with pytest.raises(ArchitectureError, match=r"path: the weights do not fit a SmallCNN: \d+ tensors of another kind of number "
                                                r"\(first: \['.*: file torch.int32, model torch.float32'"):
        load_weights(nv.create_model("small_cnn", **KW), path)


def test_a_float16_weight_file_still_loads_into_a_float32_network(tmp_path):
    path = _weights(tmp_path, lambda s: {k: v.half() if v.is_floating_point() else v for k, v in s.items()})
    net = load_weights(nv.create_model("small_cnn", **KW), path)
    want = {k: v.float() for k, v in load_file(str(path)).items() if v.is_floating_point()}
    assert all(torch.equal(net.state_dict()[k], v) for k, v in want.items())


# ------------------------------------------------------------------ P6 #5: an unreadable checkpoint named before --data
@pytest.mark.parametrize("kind", ["empty", "truncated", "pickle"])
def test_sparsify_names_an_unreadable_checkpoint_without_data(tmp_path, capsys, kind):
    from neuroview.training.sparsify_cli import main as sparsify_main

    whole = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {"model.w": torch.zeros(1000)}, "hyper_parameters": {"arch": "nv_small_cnn"}}, whole)
    path = tmp_path / f"{kind}.ckpt"
    if kind == "pickle":  # an object weights_only=True refuses (a pickle that would run code needs no more than this)
        torch.save({"state_dict": {}, "other": Path("x")}, path)
    else:
        path.write_bytes(b"" if kind == "empty" else whole.read_bytes()[:2000])
    assert sparsify_main([str(path), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert f"source: '{path}' is not a readable checkpoint: empty, truncated" in err and "--data" not in err, err
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------ P6 #6: an entry's file is a file of the folder
def _received(tmp_path, files: dict[str, str]) -> Path:
    src = Path(zoo.checkpoints_dir(None))
    entry = json.loads((src / "manifest.json").read_text())["entries"]["small_cnn.digits"]
    zoo_dir = tmp_path / "recv"
    zoo_dir.mkdir()
    shutil.copy(src / entry["file"], tmp_path / "outside.safetensors")
    (zoo_dir / "manifest.json").write_text(json.dumps({"format": 1, "entries": {n: {**entry, "file": f} for n, f in files.items()}}))
    return zoo_dir


@pytest.mark.parametrize("file", ["../outside.safetensors", "ABS", "sub/small_cnn.up.safetensors", "small_cnn.up.pt"])
def test_a_manifest_file_outside_the_folder_is_refused(tmp_path, file):
    file = str(tmp_path / "outside.safetensors") if file == "ABS" else file
    root = _received(tmp_path, {"small_cnn.up": file})
    with pytest.raises(ValueError, match=r"root: the entry 'small_cnn.up' of .*manifest.json: expected 'file' to name a "
                                         r"\.safetensors file in .*recv \(a file name: no folder, no path\), got"):
        zoo.load_pretrained("small_cnn.up", root=root)


def test_a_manifest_file_linked_out_of_the_folder_is_refused_and_verify_says_so(tmp_path, capsys):
    root = _received(tmp_path, {"small_cnn.link": "small_cnn.link.safetensors", "small_cnn.inside": "small_cnn.inside.safetensors"})
    os.symlink(tmp_path / "outside.safetensors", root / "small_cnn.link.safetensors")
    shutil.copy(tmp_path / "outside.safetensors", root / "real.safetensors")
    os.symlink("real.safetensors", root / "small_cnn.inside.safetensors")  # a link within the folder: its own file
    with pytest.raises(ValueError, match=r"its file 'small_cnn.link.safetensors' is a link to '.*outside.safetensors', "
                                         "outside the folder"):
        zoo.verify_entry("small_cnn.link", root=root)
    assert isinstance(zoo.verify_entry("small_cnn.inside", root=root), torch.nn.Module)
    from neuroview import cli

    assert cli.main(["zoo", "--root", str(root), "--verify"]) != 0
    out = capsys.readouterr()
    assert "outside the folder" in out.out + out.err
