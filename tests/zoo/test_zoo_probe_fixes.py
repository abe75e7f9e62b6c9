"""Zoo defects found by probing, each a test that failed before its fix.

A tagged name built a random network of the default shape; ``save_pretrained`` recorded arguments that
rebuild another function; ``num_classes``, an RNN's ``in_channels`` and ``window`` gave torch's bare errors;
a manifest entry with ``"file": null`` a bare TypeError; pretrained loading refused arguments equal to the
entry's defaults; a mistyped ``$NEUROVIEW_CHECKPOINTS`` read as an empty zoo.
"""

from __future__ import annotations

import json

import pytest
import torch

import neuroview as nv
from neuroview.cli import main
from neuroview.zoo import files
from neuroview.zoo import pretrained as zoo
from neuroview.zoo.build import build_model

DS = {"name": "none"}


def _save(net, name, kw, root):
    arch = name.split(".", 1)[0]
    return zoo.save_pretrained(net, name, architecture=arch, arch_kwargs=kw, dataset=DS, recipe=None, seed=0,
                               metrics={}, root=root)


# 1 ---------------------------------------------------------------- a tag without its weights
@pytest.mark.parametrize("name", ["nv_lite.japanesevowels", "nv_lite.nosuchtag", "small_cnn.digits"])
def test_a_tagged_name_without_pretrained_is_refused(name):
    # it built a random network of the architecture's default shape (1 channel, 2 classes), without a word
    arch = name.split(".")[0]
    with pytest.raises(ValueError, match=rf"name: '{name}' names a trained entry: pass pretrained=True, or the "
                                         rf"architecture '{arch}'"):
        nv.create_model(name)
    with pytest.raises(ValueError, match=rf"arch: '{name}' names a trained entry: expected an architecture, e.g. '{arch}'"):
        build_model(name, num_classes=9, in_channels=12)
    assert type(nv.create_model(arch)).__name__ in ("NeuroViewCNN", "SmallCNN")  # the architecture itself builds


def test_the_lightning_module_refuses_a_tagged_arch():
    from neuroview.training.module import NeuroViewModule

    with pytest.raises(ValueError, match=r"arch: 'nv_lite.japanesevowels_sparse' names a trained entry"):
        NeuroViewModule(arch="nv_lite.japanesevowels_sparse", num_classes=9, in_channels=12)


# 2 -------------------------------------------------- arch_kwargs that rebuild another function
def test_save_pretrained_refuses_arch_kwargs_that_rebuild_other_layer_settings(tmp_path):
    # the tensors fit, and the entry reloaded as another function (max |dlogit| 0.03 and 0.3)
    torch.manual_seed(0)
    vit = nv.create_model("vit_tiny", num_classes=3, heads=2).eval()
    with pytest.raises(zoo.ArchitectureError, match=r"arch_kwargs: \{'num_classes': 3\} rebuild a network with other "
                       r"settings than the model's \(blocks.0.attn.num_heads: model 2, arch_kwargs build 4"):
        _save(vit, "vit_tiny.toy", {"num_classes": 3}, tmp_path)
    rnn = nv.create_model("nv_rnn", num_classes=3, in_features=2, max_len=10, hidden_size=4, nonlinearity="relu").eval()
    kw = {"num_classes": 3, "in_features": 2, "max_len": 10, "hidden_size": 4}
    with pytest.raises(zoo.ArchitectureError, match=r"rnn.nonlinearity: model 'relu', arch_kwargs build 'tanh'"):
        _save(rnn, "nv_rnn.toy", kw, tmp_path)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
    # with the arguments it was built with, each reloads as the same function
    _save(vit, "vit_tiny.toy", {"num_classes": 3, "heads": 2}, tmp_path)
    _save(rnn, "nv_rnn.toy", kw | {"nonlinearity": "relu"}, tmp_path)
    x, xs = torch.randn(4, 1, 8, 8), torch.randn(4, 10, 2)
    with torch.no_grad():
        assert torch.allclose(nv.create_model("vit_tiny.toy", pretrained=True, root=tmp_path)(x), vit(x), atol=1e-6)
        assert torch.allclose(nv.create_model("nv_rnn.toy", pretrained=True, root=tmp_path)(xs), rnn(xs), atol=1e-6)


def test_save_pretrained_ignores_the_mode_and_the_finite_check(tmp_path):
    torch.manual_seed(0)
    net = nv.create_model("nv_gru", num_classes=3, in_features=2, max_len=6, hidden_size=3).train()
    net.check_finite = False  # a switch of checks, not a setting of the function
    _save(net, "nv_gru.toy", {"num_classes": 3, "in_features": 2, "max_len": 6, "hidden_size": 3}, tmp_path)
    assert zoo.list_pretrained(root=tmp_path) == ["nv_gru.toy"]


# 3 ------------------------------------------------------------------------------ num_classes
@pytest.mark.parametrize("bad", [2.0, "10", -3, 0, 1, True])
@pytest.mark.parametrize("arch", ["small_cnn", "nv_lite"])
def test_num_classes_that_is_no_int_of_at_least_two_is_refused_by_name(arch, bad):
    # torch.empty's TypeError, a negative-dimension RuntimeError, or (0) logits of shape (2, 0)
    with pytest.raises(ValueError, match=rf"num_classes: expected an int >= 2, got {bad!r}"):
        nv.create_model(arch, num_classes=bad)


# 4 ----------------------------------------------------------------- RNN shape arguments
@pytest.mark.parametrize("arch", ["gru", "nv_gru", "lstm", "nv_rnn"])
def test_an_rnn_takes_in_channels_as_its_in_features(arch):
    # RNNBase.__init__() got an unexpected keyword argument 'in_channels' (build_model routes it; create_model did not)
    net = nv.create_model(arch, num_classes=2, in_channels=3, max_len=10, hidden_size=4).eval()
    assert net.rnn.input_size == 3
    assert net(torch.randn(2, 10, 3)).shape == (2, 2)
    assert nv.create_model(arch, in_channels=3, in_features=3, max_len=10).rnn.input_size == 3
    with pytest.raises(ValueError, match=r"in_channels: .* expected it alone or equal to in_features=2, got 3"):
        nv.create_model(arch, in_channels=3, in_features=2, max_len=10)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_a_window_below_one_is_refused_by_name(bad):
    # ValueError: input_size must be greater than zero (an argument never passed)
    for arch in ("gru", "nv_gru"):
        with pytest.raises(ValueError, match=rf"window: expected an int >= 1 \(samples per step\), got {bad!r}"):
            nv.create_model(arch, max_len=10, window=bad)


# 5 ------------------------------------------------------------------ a manifest's file
@pytest.mark.parametrize("bad", [None, "", 3])
def test_an_entry_whose_file_is_no_string_is_named(tmp_path, capsys, bad):
    torch.manual_seed(0)
    _save(nv.create_model("small_cnn", widths=[8]), "small_cnn.tiny", {"widths": [8]}, tmp_path)
    path = tmp_path / "manifest.json"
    data = json.loads(path.read_text())
    data["entries"]["small_cnn.tiny"]["file"] = bad
    path.write_text(json.dumps(data))
    want = (f"root: the entry 'small_cnn.tiny' of {path}: expected a non-empty string 'file' (its weight file, in "
            f"{tmp_path}), got {bad!r}")
    with pytest.raises(ValueError) as e:
        nv.create_model("small_cnn.tiny", pretrained=True, root=tmp_path)
    assert str(e.value).startswith(want)
    assert main(["zoo", "--verify", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"FAILED small_cnn.tiny: {want}") and "Traceback" not in err


# 6 ---------------------------------------------- arguments equal to what the entry was built with
def test_pretrained_accepts_arguments_equal_to_the_entrys_defaults(tmp_path):
    # refused: "quantizer='hard' (checkpoint: '<default>')", though the entry was built with the default 'hard'
    torch.manual_seed(0)
    net = nv.create_model("nv_small_cnn", num_classes=3, widths=[4, 8]).eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        ref = net(x)
    _save(net, "nv_small_cnn.toy", {"num_classes": 3, "widths": [4, 8]}, tmp_path)
    got = nv.create_model("nv_small_cnn.toy", pretrained=True, root=tmp_path, quantizer="hard", layers=None, members=1,
                          norm_floor=0.1, widths=(4, 8))
    with torch.no_grad():
        assert torch.allclose(got(x), ref, atol=1e-6)
    with pytest.raises(ValueError, match=r"got quantizer='soft' \(checkpoint: 'hard', the default\)"):
        nv.create_model("nv_small_cnn.toy", pretrained=True, root=tmp_path, quantizer="soft")
    with pytest.raises(ValueError, match=r"got widths=\[4, 16\] \(checkpoint: \[4, 8\]\)"):
        nv.create_model("nv_small_cnn.toy", pretrained=True, root=tmp_path, widths=[4, 16])
    with pytest.raises(ValueError, match=r"got batched=True \(checkpoint: False, the default\)"):  # not applied: refused
        nv.create_model("nv_small_cnn.toy", pretrained=True, root=tmp_path, batched=True)


# 7 ------------------------------------------------------------- a mistyped $NEUROVIEW_CHECKPOINTS
def test_a_checkpoints_variable_naming_no_folder_is_an_error(tmp_path, monkeypatch, capsys):
    typo = tmp_path / "typo"
    monkeypatch.setenv(files.ENV, str(typo))
    want = f"NEUROVIEW_CHECKPOINTS: expected a checkpoint folder, got {str(typo)!r} (no such folder)"
    with pytest.raises(ValueError) as e:
        nv.list_models(pretrained=True)
    assert str(e.value) == want
    assert main(["zoo"]) == 2
    assert capsys.readouterr().err.strip() == f"neuroview zoo: {want}"
    typo.mkdir()  # a folder with no manifest yet is an empty zoo, which save_pretrained may fill
    assert nv.list_models(pretrained=True) == []
