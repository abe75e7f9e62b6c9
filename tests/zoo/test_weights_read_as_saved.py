"""Weight files and explanations read as they were saved (issue 14, the saving probe).

A Lightning checkpoint's head floor (its state dict's metadata) was dropped with its "model." prefix, and its
hyper-parameters' quantizer was not compared as a safetensors file's metadata is; a MiniRocket of another series
length loaded by shape; a manifest entry naming another entry's file loaded it; ``Explanation.save`` overwrote a
file saved over an old explanation's name; ``~`` made a folder of that name; ``None`` failed in pathlib, bare.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import neuroview as nv
from neuroview.core import saving
from neuroview.zoo import pretrained as zoo
from neuroview.zoo import weights as zw
from neuroview.zoo.architectures.rocket import MiniRocket


def _cnn(**kw) -> nn.Module:
    net = nv.create_model("nv_small_cnn", num_classes=3, in_channels=1, widths=(4, 8), **kw)
    net(torch.zeros(2, 1, 8, 8))  # its sites and head are found on a first batch
    return net.eval()


def _checkpoint(path, net: nn.Module, model_kwargs: dict) -> None:
    """The layout `neuroview fit` writes: NeuroViewModule's state dict (keys "model.*", with its metadata) and hparams."""
    holder = nn.Module()
    holder.model = net
    torch.save({"state_dict": holder.state_dict(), "pytorch-lightning_version": "2.6.6",
                "hyper_parameters": {"arch": "nv_small_cnn", "num_classes": 3, "in_channels": 1,
                                     "model_kwargs": model_kwargs}}, path)


def test_lightning_checkpoint_loads_the_head_floor_it_carries(tmp_path):
    torch.manual_seed(0)
    net = _cnn(norm_floor=0.0)
    with torch.no_grad():  # statistics spread enough that the default floor (0.1 x mean) changes the function
        net.norm.running_var.copy_(torch.linspace(1e-3, 2.0, net.norm.running_var.numel()))
    _checkpoint(tmp_path / "last.ckpt", net, {"widths": [4, 8], "norm_floor": 0.0})
    x = torch.randn(6, 1, 8, 8)
    m = zw.load_weights(_cnn(), tmp_path / "last.ckpt", what="init_weights", pickles=True)  # built with floor 0.1
    assert m.norm.floor == 0.0
    torch.testing.assert_close(m(x), net(x))


def test_lightning_checkpoint_of_another_quantizer_is_refused(tmp_path):
    torch.manual_seed(0)
    _checkpoint(tmp_path / "last.ckpt", _cnn(quantizer="soft"), {"widths": [4, 8], "quantizer": "soft"})
    hard = _cnn()
    before = {k: v.clone() for k, v in hard.state_dict().items()}
    with pytest.raises(zw.ArchitectureError, match=r"init_weights: .*last\.ckpt.*quantizer: file 'soft', model 'hard'"):
        zw.load_weights(hard, tmp_path / "last.ckpt", what="init_weights", pickles=True)
    assert all(torch.equal(v, hard.state_dict()[k]) for k, v in before.items())  # the model unchanged
    assert zw.load_weights(_cnn(quantizer="soft"), tmp_path / "last.ckpt", pickles=True).quantizer == "soft"


def test_minirocket_of_another_series_length_is_refused(tmp_path):
    fitted = MiniRocket(input_length=30, num_features=168).fit(torch.randn(8, 1, 30))
    state = fitted.state_dict()
    assert MiniRocket(input_length=40, num_features=168).dilations != fitted.dilations  # the shapes are the same
    with pytest.raises(RuntimeError, match=r"input_length: .* 30 steps .* reads 40 .* max_len=30"):
        MiniRocket(input_length=40, num_features=168).load_state_dict(state)
    MiniRocket(input_length=30, num_features=168).load_state_dict(state)
    MiniRocket(input_length=40, num_features=168).load_state_dict(dict(state))  # no record (older files): as before
    # a safetensors file (no state-dict metadata) by its arch_kwargs, the NeuroView wrap's by its backbone's length
    meta = {"neuroview.architecture": "minirocket", "neuroview.arch_kwargs": json.dumps({"max_len": 30})}
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"), metadata=meta)
    with pytest.raises(zw.ArchitectureError, match=r"max_len: file 30, model 40"):
        zw.load_weights(nv.create_model("minirocket", max_len=40, num_features=168), tmp_path / "w.safetensors")
    zw.load_weights(nv.create_model("minirocket", max_len=30, num_features=168), tmp_path / "w.safetensors")
    assert zw.exposed(nv.create_model("nv_minirocket", max_len=40, num_features=168), "input_length") == 40


def test_manifest_entry_naming_another_entrys_file_is_refused(tmp_path):
    for name in ("small_cnn.a", "small_cnn.b"):
        zoo.save_pretrained(nv.create_model("small_cnn", num_classes=3, in_channels=1, widths=(4,)), name,
                            architecture="small_cnn", arch_kwargs={"num_classes": 3, "in_channels": 1, "widths": [4]},
                            dataset={}, recipe=None, seed=0, metrics={}, root=tmp_path)
    doc = json.loads((tmp_path / "manifest.json").read_text())
    doc["entries"]["small_cnn.b"].update(file="small_cnn.a.safetensors", sha256=doc["entries"]["small_cnn.a"]["sha256"])
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(zw.ArchitectureError, match=r"small_cnn\.b: .*weights of the entry 'small_cnn\.a', not of 'small_cnn\.b'"):
        zoo.load_pretrained("small_cnn.b", root=tmp_path)
    assert zoo.load_pretrained("small_cnn.a", root=tmp_path).pretrained_cfg["name"] == "small_cnn.a"


def test_save_does_not_overwrite_a_file_saved_over_an_explanation(tmp_path):
    net = _cnn()
    x = torch.randn(2, 1, 8, 8)
    net.explain(x).save(tmp_path / "model")
    net.explain(x).save(tmp_path / "model")  # an earlier explanation is replaced
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "model.safetensors"))
    with pytest.raises(FileExistsError, match=r"model\.safetensors exists and is no neuroview explanation's .*SHA-256"):
        net.explain(x).save(tmp_path / "model")
    assert "classifier.weight" in load_file(str(tmp_path / "model.safetensors"))  # the user's weights kept


def test_tilde_is_the_home_folder(tmp_path, monkeypatch):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    net = _cnn()
    net.explain(torch.randn(2, 1, 8, 8)).save("~/exp")
    assert (home / "exp.safetensors").is_file() and not (cwd / "~").exists()
    assert saving.paths("~/exp")[0] == home / "exp.safetensors"
    torch.save(net.state_dict(), home / "w.pt")
    zw.load_weights(_cnn(), "~/w.pt", pickles=True)
    _checkpoint(home / "last.ckpt", net, {"widths": [4, 8]})
    assert "state_dict" in zw.read_checkpoint("~/last.ckpt")


@pytest.mark.parametrize("bad", [None, b"out"])
def test_a_path_that_is_no_path_is_named(bad):
    shown = f"{type(bad).__name__} {bad!r}"
    with pytest.raises(TypeError, match=rf"^path: expected a str or os.PathLike file name, got {shown}"):
        saving.paths(bad)
    with pytest.raises(TypeError, match=rf"^path: expected a str or os.PathLike file name, got {shown}"):
        zw.load_weights(_cnn(), bad, pickles=True)
    with pytest.raises(TypeError, match=rf"^init_weights: expected a str or os.PathLike file name, got {shown}"):
        zw.read_weights(bad, "init_weights")
    with pytest.raises(TypeError, match=rf"^ckpt_path: expected a str or os.PathLike file name, got {shown}"):
        zw.read_checkpoint(bad)


def test_an_annealed_soft_run_s_checkpoint_loads_into_a_model_built_with_the_tau_it_reached(tmp_path):
    """The review: the run's model_kwargs hold the tau it began with (1.0), its state dict the tau it reached (0.5);
    a model built with 0.5 was refused ("build the model with tau=1.0"), and one built with 1.0 loaded and took 0.5."""
    torch.manual_seed(0)
    net = _cnn(quantizer="soft")
    net.tau = 0.5  # annealed
    _checkpoint(tmp_path / "last.ckpt", net, {"widths": [4, 8], "quantizer": "soft"})
    x = torch.randn(4, 1, 8, 8)
    m = zw.load_weights(_cnn(quantizer="soft", tau=0.5), tmp_path / "last.ckpt", pickles=True)
    assert m.tau == 0.5
    torch.testing.assert_close(m(x), net(x))


def test_a_minirocket_checkpoint_of_another_series_length_is_named_as_its_safetensors_is(tmp_path):
    """The review: NeuroViewModule keeps max_len beside model_kwargs in the hyper-parameters, so a .ckpt met torch's
    bare "Error(s) in loading state_dict" (no init_weights, no file) where its .safetensors met the named check."""
    net = nv.create_model("nv_minirocket", num_classes=2, max_len=30, num_features=168)
    torch.save({"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}, "pytorch-lightning_version": "2.6.6",
                "hyper_parameters": {"arch": "nv_minirocket", "num_classes": 2, "in_channels": 1, "max_len": 30,
                                     "model_kwargs": {"num_features": 168}}}, tmp_path / "r.ckpt")
    with pytest.raises(zw.ArchitectureError, match=r"init_weights: .*r\.ckpt.*max_len: file 30, model 40"):
        zw.load_weights(nv.create_model("nv_minirocket", num_classes=2, max_len=40, num_features=168),
                        tmp_path / "r.ckpt", what="init_weights", pickles=True)
