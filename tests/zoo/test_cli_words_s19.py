"""Command-line users are told what to type on the command line (probe P5 finding 4, and FP's / FC's follow-ups):

- ``neuroview explain --model nv_small_cnn.digits --weights nosuch.safetensors`` said only "pass pretrained=True" (a
  Python keyword explain has no option for) and never that the file was missing;
- ``UCRDataModule("Coffee")`` under ``neuroview fit`` said "download=True", not ``--data.init_args.download true``;
- ``neuroview zoo --root '~/zoo'`` (quoted: no shell expanded it) was "no such folder" though every other command
  reads ``~`` as the home folder;
- ``zoo/_weights_checks.py``'s docstring named ``neuroview.zoo.pretrained._settings``, which moved.
"""

from __future__ import annotations

import ast
import importlib
import re

import pytest
import torch

import neuroview as nv
from neuroview.data import UCRDataModule
from neuroview.viz.report import main as explain_main
from neuroview.zoo import pretrained as zoo
from neuroview.zoo.cli import main as zoo_main

KW = {"widths": [8]}


def _explain(argv, capsys) -> tuple[int, str]:
    rc = explain_main(argv + ["--no-progress"])
    return rc, capsys.readouterr().err


# ------------------------------------------------------------------- explain --weights: the file first, CLI words
@pytest.mark.parametrize("model", ["nv_small_cnn.digits", "nv_small_cnn"])
@pytest.mark.parametrize("name", ["nosuch.safetensors", "nosuch.ckpt", "nosuch.pt"])
def test_a_missing_weights_file_is_said_first_by_its_option(model, name, tmp_path, capsys):
    rc, err = _explain(["--model", model, "--weights", str(tmp_path / name), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2
    assert err.strip() == f"neuroview explain: --weights: weight file {str(tmp_path / name)!r} is missing", err
    assert not (tmp_path / "o").exists()


def test_a_weights_folder_is_said_to_be_a_folder(tmp_path, capsys):
    rc, err = _explain(["--model", "nv_small_cnn", "--weights", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and f"--weights: weight file {str(tmp_path)!r} is a folder" in err, err


def test_a_trained_entry_with_weights_is_told_the_architecture_option(tmp_path, capsys):
    # a plain state dict records no architecture: the refusal came from create_model, in its Python words
    torch.manual_seed(0)
    path = tmp_path / "w.pt"
    torch.save(nv.create_model("nv_small_cnn", num_classes=10, in_channels=1).state_dict(), path)
    rc, err = _explain(["--model", "nv_small_cnn.digits", "--weights", str(path), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2
    assert err.strip() == ("neuroview explain: --model: 'nv_small_cnn.digits' is a trained entry, which brings its own "
                           "weights; with --weights give the architecture: --model nv_small_cnn"), err
    assert "pretrained=True" not in err


def test_a_file_that_records_its_architecture_still_names_it(tmp_path, capsys):
    torch.manual_seed(0)
    net = nv.create_model("small_cnn", **KW).eval()
    zoo.save_pretrained(net, "small_cnn.t", architecture="small_cnn", arch_kwargs=KW, dataset={"name": "none"},
                        recipe=None, seed=0, metrics={}, root=tmp_path / "zoo")
    path = tmp_path / "zoo" / "small_cnn.t.safetensors"
    rc, err = _explain(["--model", "nv_small_cnn.digits", "--weights", str(path), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and "holds a 'small_cnn', not a 'nv_small_cnn.digits'; pass --model small_cnn" in err, err


def test_an_unknown_dotted_model_with_weights_is_not_called_a_trained_entry(tmp_path, capsys):
    path = tmp_path / "w.pt"
    torch.save({}, path)
    rc, err = _explain(["--model", "nosuchnet.x", "--weights", str(path), "--out", str(tmp_path / "o")], capsys)
    assert rc == 2 and "no trained entry 'nosuchnet.x'" in err and "is a trained entry" not in err, err


def test_create_model_keeps_the_python_advice_and_adds_the_command_line_s():
    with pytest.raises(ValueError) as e:
        nv.create_model("nv_lite.japanesevowels")
    msg = str(e.value)
    assert msg.startswith("name: 'nv_lite.japanesevowels' names a trained entry: pass pretrained=True, or the "
                          "architecture 'nv_lite'"), msg
    assert "on the command line" in msg and "--model nv_lite (explain)" in msg and "--arch nv_lite (retrofit)" in msg


# ------------------------------------------------------------------- ucr: the option fit takes
def test_a_ucr_set_aeon_does_not_ship_names_the_command_line_option():
    with pytest.raises(ValueError) as e:
        UCRDataModule("Coffee")
    msg = str(e.value)
    assert "download=True" in msg  # the Python keyword, still
    assert "--data.init_args.download true" in msg and '"download": true' in msg, msg


# ------------------------------------------------------------------- zoo --root '~/zoo'
def test_zoo_root_with_a_tilde_lists_the_home_folder_s_zoo(home, capsys):
    torch.manual_seed(0)
    zoo.save_pretrained(nv.create_model("small_cnn", **KW), "small_cnn.t", architecture="small_cnn", arch_kwargs=KW,
                        dataset={"name": "none"}, recipe=None, seed=0, metrics={}, root=home / "zoo")
    assert zoo_main(["--root", "~/zoo"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and re.search(r"^small_cnn\.t\s+none", out, re.M), (out, err)
    assert zoo_main(["--architectures", "--root", "~/zoo"]) == 0
    assert "small_cnn" in capsys.readouterr().out.split()


def test_zoo_root_with_a_tilde_that_is_missing_names_the_folder_read(home, capsys):
    assert zoo_main(["--root", "~/nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"neuroview zoo: --root: expected a checkpoint folder, got {str(home / 'nosuch')!r} (no such folder)"


# ------------------------------------------------------------------- docstrings name what exists
def test_weights_checks_docstring_names_only_objects_that_exist():
    mod = importlib.import_module("neuroview.zoo._weights_checks")
    named = re.findall(r"``(neuroview\.(?:zoo|core)(?:\.\w+)*)``", ast.get_docstring(ast.parse(open(mod.__file__).read())))
    assert "neuroview.zoo._save_checks.settings" in named  # (``neuroview.arch_kwargs``: a file's metadata key, no object)
    for dotted in named:
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
                break
            except ImportError:
                continue
        for attr in parts[cut:]:
            assert hasattr(obj, attr), f"{dotted}: {attr!r} not found"
            obj = getattr(obj, attr)
