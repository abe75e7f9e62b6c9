"""An unknown key in a JSON ``--data`` spec is refused by name in ``neuroview sparsify`` and ``minirocket`` as explain
refuses it (s24, F2): both printed the data module's bare ``UCRDataModule.__init__() got an unexpected keyword
argument 'sed'``, naming neither --data nor what the module takes; a spec's own keys misspelt (``"init_arg"``) built
the module with its defaults, without a word. The arguments each module takes are written out by hand."""

from __future__ import annotations

import json
import re

import pytest

from neuroview.training.data_arg import datamodule_for
from neuroview.training.minirocket_cli import main as minirocket_main
from neuroview.training.sparsify_cli import main as sparsify_main

UCR_TAKES = ["name", "batch_size", "val_fraction", "seed", "val_fold", "normalize", "num_workers", "eval_batch_size",
             "download", "resample"]
DIGITS_TAKES = ["test_fraction", "batch_size", "val_fraction", "seed", "val_fold", "normalize", "num_workers",
                "eval_batch_size", "resample"]


def _spec(cls: str, init_args, **top) -> str:
    return json.dumps({"class_path": f"neuroview.data.{cls}", "init_args": init_args, **top})


def _listed(line: str) -> set[str]:
    """The names in the message's ``(its arguments: ...)``."""
    assert "(its arguments: " in line, line
    return set(re.findall(r"\w+", line.split("(its arguments: ", 1)[1].split(")", 1)[0]))


def _last_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "unexpected keyword argument" not in err and "__init__" not in err, err
    return err.strip().splitlines()[-1]


def test_sparsify_refuses_an_unknown_init_args_key_naming_data_the_key_and_the_module_s_arguments(tmp_path, capsys):
    out = tmp_path / "out"
    spec = _spec("UCRDataModule", {"name": "GunPoint", "sed": 1})
    assert sparsify_main(["nv_lite.gunpoint", "--data", spec, "--out", str(out)]) == 2
    line = _last_line(capsys)
    assert line.startswith("neuroview sparsify: --data: init_args: unexpected argument 'sed' of UCRDataModule "
                           "(its arguments: "), line
    assert _listed(line) == set(UCR_TAKES), line
    assert line.endswith("; did you mean 'seed'?"), line
    assert not out.exists()  # refused before any work


def test_minirocket_refuses_every_unknown_init_args_key_by_name(tmp_path, capsys):
    out = tmp_path / "out"
    spec = _spec("DigitsDataModule", {"batch_sizee": 8, "seed": 0, "flip": True})
    assert minirocket_main(["--data", spec, "--num-features", "84", "--out", str(out)]) == 2
    line = _last_line(capsys)
    assert line.startswith("neuroview minirocket: --data: init_args: unexpected arguments 'batch_sizee', 'flip' of "
                           "DigitsDataModule (its arguments: "), line
    assert _listed(line) == set(DIGITS_TAKES), line
    assert "did you mean 'batch_size' for 'batch_sizee'" in line, line
    assert not out.exists()


@pytest.mark.parametrize("given, bad", [
    ({"class_path": "neuroview.data.DigitsDataModule", "init_arg": {"seed": 3}}, "'init_arg'"),  # was built with seed 0
    ({"root": "/data", "sed": 1}, "'root', 'sed'"),  # was "dataset: expected a data module ..., got ''"
])
def test_an_unknown_key_of_the_spec_itself_is_refused_naming_data(given, bad, capsys):
    assert sparsify_main(["nv_lite.gunpoint", "--data", json.dumps(given), "--out", "never-written"]) == 2
    line = _last_line(capsys)
    assert line.startswith(f"neuroview sparsify: --data: unexpected key{'s' if ',' in bad else ''} {bad} of a JSON "
                           "data-module spec (its keys: class_path, init_args"), line
    assert "init_args" in line.split(")", 1)[1] and "dataset:" not in line, line  # where a module's arguments go


def test_init_args_that_is_no_object_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^--data: init_args: expected a JSON object of DigitsDataModule's arguments "
                                         r'\(its arguments: test_fraction, .*\), got \["seed"\]$'):
        datamodule_for(_spec("DigitsDataModule", ["seed"]))


def test_a_spec_of_known_keys_still_builds():
    dm = datamodule_for(_spec("DigitsDataModule", {"seed": 3, "batch_size": 16, "val_fraction": 0.25}))
    assert (dm.seed, dm.batch_size, dm.val_fraction) == (3, 16, 0.25)
    record = {"class_path": "neuroview.data.DigitsDataModule", "init_args": {}}  # the keys a zoo entry's spec records
    assert datamodule_for(_spec("DigitsDataModule", {}, read_like=record)).seed == 0


def test_retrofit_shares_the_refusal(tmp_path, capsys):
    from neuroview.cli import main as cli

    out = tmp_path / "r.safetensors"
    spec = _spec("UCRDataModule", {"name": "GunPoint", "sed": 1})
    assert cli(["retrofit", "lite.gunpoint", "--data", spec, "--out", str(out)]) == 2
    line = _last_line(capsys)
    assert line.startswith("neuroview retrofit: --data: init_args: unexpected argument 'sed' of UCRDataModule "), line
    assert _listed(line) == set(UCR_TAKES) and not out.exists(), line
