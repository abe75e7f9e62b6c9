"""A JSON ``--data`` spec's ``class_path`` (review R3, F5) and its ``read_like`` (F6), checked where the spec is read.

F5: a spec with no ``class_path``, a short one (``DigitsDataModule``) or a dotted one was refused as ``dataset:
expected ...``, a key the user never typed, in sparsify, minirocket and retrofit. ``neuroview fit --data`` (jsonargparse)
takes a data module's short name and its full import path (``neuroview.data.digits.DigitsDataModule``), and refuses a
path that does not import it (``neuroview.data.arrays.NpzDataModule``): these commands take and refuse the same.
F6: a ``read_like`` spec inside ``--data`` was not checked: a misspelt key there ignored (the model's training data rebuilt
from the module's defaults), an unknown init_args key only warned."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

from neuroview.training.data_arg import check_spec_args, datamodule_for
from neuroview.training.minirocket_cli import main as minirocket_main
from neuroview.training.sparsify_cli import main as sparsify_main

#: neuroview.data's data modules, written out by hand
MODULES = {"DigitsDataModule", "MNIST1DDataModule", "UCRDataModule", "MNISTDataModule", "CIFAR10DataModule",
           "NpzDataModule", "CsvDataModule"}


def _err_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "dataset:" not in err and "Traceback" not in err, err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("class_path", ["DigitsDataModule", "neuroview.data.digits.DigitsDataModule",
                                        "neuroview.data.DigitsDataModule"])
def test_a_short_name_or_the_full_import_path_fit_takes_builds_the_module(class_path):
    spec = {"class_path": class_path, "init_args": {"seed": 3}}
    dm = datamodule_for(json.dumps(spec))
    assert type(dm).__name__ == "DigitsDataModule" and type(dm).__module__ == "neuroview.data.digits" and dm.seed == 3


def test_minirocket_takes_a_short_class_path_and_records_neuroview_datas_name(tmp_path):
    """minirocket's manifest keeps the spec: explain rebuilds the data from it (make_datamodule takes neuroview.data.X)."""
    out, path, rng = tmp_path / "out", tmp_path / "s.npz", np.random.default_rng(0)
    y = np.arange(40) % 2
    np.savez(path, X=(rng.normal(size=(40, 1, 30)) + 2 * y[:, None, None]).astype(np.float32), y=y)
    spec = json.dumps({"class_path": "NpzDataModule", "init_args": {"path": str(path), "val_fraction": 0.0}})
    assert minirocket_main(["--data", spec, "--num-features", "84", "--out", str(out)]) == 0
    recorded = re.findall(r'"class_path": "([^"]+)"', (out / "manifest.json").read_text())
    assert recorded and set(recorded) == {"neuroview.data.NpzDataModule"}, recorded


def _class_path_refusal(given) -> str:
    with pytest.raises(ValueError) as e:
        check_spec_args(json.dumps(given))
    said = str(e.value)
    assert said.startswith("--data: class_path: "), said
    assert not said.startswith("dataset"), said
    listed = said.split("(", 1)[1].split(")", 1)[0]
    assert MODULES <= set(re.findall(r"neuroview\.data\.(\w+)", listed)), said  # the classes taken
    return said


@pytest.mark.parametrize("given, shown, meant", [
    ({"init_args": {"name": "GunPoint"}}, "got no class_path", None),
    ({"class_path": "neuroview.data.arrays.NpzDataModule", "init_args": {"path": "/x.npz"}},
     "got 'neuroview.data.arrays.NpzDataModule'", "neuroview.data.NpzDataModule"),  # fit refuses it too
    ({"class_path": "digits"}, "got 'digits'", "neuroview.data.DigitsDataModule"),
    ({"class_path": "my_pkg.MyDataModule"}, "got 'my_pkg.MyDataModule' (a data module of another package", None),
    ({"class_path": 3}, "got 3", None),
])
def test_a_missing_or_unknown_class_path_is_refused_naming_data_class_path_and_the_classes(given, shown, meant):
    said = _class_path_refusal(given)
    assert shown in said, said
    if meant:
        assert said.endswith(f"did you mean {meant!r}?"), said


@pytest.mark.parametrize("command", ["sparsify", "minirocket"])
def test_the_commands_print_the_class_path_refusal(tmp_path, capsys, command):
    spec = json.dumps({"init_args": {"name": "GunPoint"}})
    out = str(tmp_path / "out")
    argv = ["nv_lite.gunpoint", "--data", spec, "--out", out] if command == "sparsify" else ["--data", spec, "--out", out]
    assert (sparsify_main if command == "sparsify" else minirocket_main)(argv) == 2
    line = _err_line(capsys)
    assert line.startswith(f"neuroview {command}: --data: class_path: "), line
    assert "got no class_path" in line, line


def test_retrofit_prints_the_class_path_refusal(tmp_path, capsys):
    from neuroview.cli import main as cli

    spec = json.dumps({"class_path": "neuroview.data.arrays.NpzDataModule", "init_args": {"path": "/x.npz"}})
    assert cli(["retrofit", "lite.gunpoint", "--data", spec, "--out", str(tmp_path / "r.safetensors")]) == 2
    line = _err_line(capsys)
    assert line.startswith("neuroview retrofit: --data: class_path: "), line


def _digits(**top) -> dict:
    return {"class_path": "neuroview.data.DigitsDataModule", "init_args": {}, **top}


@pytest.mark.parametrize("like, starts", [
    ({"class_path": "neuroview.data.DigitsDataModule", "init_arg": {"normalize": True}},
     "--data: read_like: unexpected key 'init_arg' of a JSON data-module spec (its keys: "),
    ({"class_path": "neuroview.data.DigitsDataModule", "sed": 3}, "--data: read_like: unexpected key 'sed' "),
    ({"class_path": "neuroview.data.DigitsDataModule", "init_args": {"sed": 3}},
     "--data: read_like: init_args: unexpected argument 'sed' of DigitsDataModule (its arguments: "),
    ({"init_args": {"seed": 3}}, "--data: read_like: class_path: "),
    ("digits", "--data: read_like: expected a JSON data-module spec"),
])
def test_a_read_like_spec_is_checked_as_the_spec_itself(like, starts):
    spec = json.dumps(_digits(read_like=like))
    with pytest.raises(ValueError) as e:
        check_spec_args(spec)
    assert str(e.value).startswith(starts), str(e.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # built with the module's defaults, or a warning alone, before
        with pytest.raises(ValueError, match="^--data: read_like: "):
            datamodule_for(spec)


def test_a_read_like_of_known_keys_still_builds_and_a_nested_one_is_checked_too():
    record = {"class_path": "DigitsDataModule", "init_args": {"seed": 1}}
    assert datamodule_for(json.dumps(_digits(read_like=record))).seed == 0
    deeper = _digits(read_like=_digits(read_like={"class_path": "neuroview.data.DigitsDataModule", "sed": 1}))
    with pytest.raises(ValueError, match=r"^--data: read_like: read_like: unexpected key 'sed' "):
        check_spec_args(deeper)


def test_no_data_and_names_are_no_spec_to_check():
    assert check_spec_args(None) is None and check_spec_args("digits") is None and check_spec_args("x.npz") is None
