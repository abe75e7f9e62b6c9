"""Review R3 of 139ee76 (sparsify result naming). F1: a JSON --data of the entry's own set carved or read otherwise
(test_fraction 0.3: 163 of its 539 "test" digits were the source's training digits) took the entry's own name
``<entry>_sparse``. F2: a JSON spec of exactly the entry's data that leaves an argument at its default was named as
other data, and other data was named by its mangled JSON text. F4: ``--data gunpoint`` was refused as ``data:`` with
no word of GunPoint. F5: a held name made from other data was answered "pass --overwrite to replace it". No training:
names are caught where they are checked, and the refusal stops before the work."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import numpy as np
import pytest

import neuroview.data  # noqa: F401 - Lightning, imported at collection: not counted in the first test's seconds
import neuroview.zoo.pretrained as pretrained
from neuroview.training import sparsify_cli
from neuroview.training.sparsify_cli import main as sparsify_main


@pytest.fixture(scope="module")
def aeon_sets():
    return pytest.importorskip("aeon.datasets")


@pytest.fixture
def named(monkeypatch, aeon_sets):
    """The entry names `neuroview sparsify` would write, taken where it checks them against --out; the work stops there."""
    names = []

    def caught(root, entry_names, *a, **k):
        names.extend(entry_names)
        raise ValueError("stopped by the test before the work")

    monkeypatch.setattr(pretrained, "refuse_existing", caught)
    monkeypatch.setattr(sparsify_cli, "sparsify", lambda *a, **k: pytest.fail("the work began"))
    return names


def _name(named, source, data, tmp_path, capsys) -> str:
    assert sparsify_main([source, "--data", data, "--out", str(tmp_path / "sp")]) == 2
    assert "stopped by the test before the work" in capsys.readouterr().err
    assert len(named) == 1
    return named.pop()


# F1: the entry's own set, split or read otherwise: never the entry's own name, and a readable suffix with a hash
@pytest.mark.parametrize("source, init_args, label", [
    ("nv_small_cnn.digits", {"test_fraction": 0.3}, "digits"),  # the probe's case (163 training digits in "test")
    ("nv_small_cnn.digits", {"seed": 5}, "digits"),
    ("nv_small_cnn.digits", {"val_fraction": 0.5}, "digits"),
    ("nv_small_cnn.digits", {"normalize": False}, "digits"),
    ("nv_lite.gunpoint", {"name": "GunPoint", "normalize": False, "resample": False}, "gunpoint"),  # the probe's second
    ("nv_lite.gunpoint", {"val_fraction": 0.0, "resample": True, "seed": 1}, "gunpoint"),
])
def test_a_json_spec_of_the_entrys_set_carved_otherwise_is_named_apart(named, source, init_args, label, tmp_path, capsys):
    data = json.dumps({"class_path": "UCRDataModule" if "gunpoint" in source else "DigitsDataModule",
                       "init_args": init_args})
    name = _name(named, source, data, tmp_path, capsys)
    assert name != f"{source}_sparse"
    assert re.fullmatch(rf"{re.escape(source)}_{label}_[0-9a-f]{{8}}_sparse", name), name


# F1/F2: a JSON spec that reads exactly the entry's recorded data (defaults filled in) is its own
@pytest.mark.parametrize("source, data", [
    ("nv_lite.gunpoint", '{"class_path": "UCRDataModule", "init_args": {"val_fraction": 0.0, "resample": true}}'),
    ("nv_lite.gunpoint", '{"class_path": "neuroview.data.UCRDataModule", "init_args": {"name": "GunPoint", '
                         '"val_fraction": 0, "resample": true, "seed": 0, "normalize": true}}'),
    ("nv_small_cnn.digits", '{"class_path": "DigitsDataModule"}'),
    ("nv_small_cnn.digits", '{"class_path": "DigitsDataModule", "init_args": {"batch_size": 32, "num_workers": 0}}'),
    ("nv_fcn1d.gunpoint", "GunPoint"),  # the entry records batch_size 8: loading, not data
])
def test_a_spec_reading_exactly_the_entrys_data_is_its_own(named, source, data, tmp_path, capsys):
    assert _name(named, source, data, tmp_path, capsys) == f"{source}_sparse"


def test_other_data_as_json_is_named_by_its_set_and_a_stable_hash_not_its_text(named, tmp_path, capsys):
    """``{"class_path": "UCRDataModule"}`` reads GunPoint by UCRDataModule's defaults (val_fraction 0.2, resample
    false), which nv_lite.gunpoint was not (0.0, true): other data, named readably, the same spec always alike."""
    short = _name(named, "nv_lite.gunpoint", '{"class_path": "UCRDataModule"}', tmp_path, capsys)
    full = _name(named, "nv_lite.gunpoint", '{"class_path": "neuroview.data.UCRDataModule", "init_args": '
                                            '{"name": "GunPoint", "seed": 0}}', tmp_path, capsys)
    other = _name(named, "nv_lite.gunpoint", '{"class_path": "UCRDataModule", "init_args": {"seed": 1}}', tmp_path, capsys)
    assert "class_path" not in short and "init_args" not in short
    assert re.fullmatch(r"nv_lite\.gunpoint_gunpoint_[0-9a-f]{8}_sparse", short), short
    assert full == short  # the same data written two ways: one name
    assert other != short and other.startswith("nv_lite.gunpoint_gunpoint_")


def test_an_entry_recording_default_arguments_left_out_is_the_same_data():
    """A hand-written or older manifest that leaves UCRDataModule's default name out (``init_args: {}``) records
    GunPoint: ``--data GunPoint`` (as _data_spec records it) is that entry's own data."""
    recorded = {"class_path": "neuroview.data.UCRDataModule", "init_args": {}}
    given = {"class_path": "neuroview.data.UCRDataModule",
             "init_args": {"name": "GunPoint", "seed": 0, "val_fraction": 0.2, "val_fold": None, "normalize": True,
                           "resample": False}, "read_like": recorded}
    args = SimpleNamespace(name=None, data="GunPoint", source="nv_lite.gunpoint")
    entry = {"architecture": "nv_lite", "dataset": {"name": "GunPoint", "data_module": given}}
    assert sparsify_cli._entry_name(args, entry, "gunpoint", {"name": "gunpoint", "data_module": recorded}) == \
        "nv_lite.gunpoint_sparse"
    carved = {**given, "init_args": {**given["init_args"], "seed": 4}}
    assert sparsify_cli._entry_name(args, {**entry, "dataset": {"data_module": carved}}, "gunpoint",
                                    {"name": "gunpoint", "data_module": recorded}) == "nv_lite.gunpoint_gunpoint_sparse"


# F4: an unknown name is refused as --data, with the set meant
@pytest.mark.parametrize("data, meant", [("gunpoint", "GunPoint"), ("GunPont", "GunPoint"),
                                         ("italypowerdemand", "ItalyPowerDemand")])
def test_an_unknown_data_name_is_refused_as_data_with_the_set_meant(data, meant, tmp_path, capsys, aeon_sets):
    assert sparsify_main(["nv_lite.gunpoint", "--data", data, "--out", str(tmp_path / "sp")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuroview sparsify: --data: expected"), err
    assert f"did you mean {meant!r}" in err and repr(data) in err


def test_sparsify_help_does_not_promise_names_in_any_case(capsys):
    with pytest.raises(SystemExit):
        sparsify_main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "in any case" not in out


# F5: a held name made from other data: said, --name first, --overwrite not offered as the fix unqualified
def _held(out, name: str, data_module: dict) -> None:
    out.mkdir()
    entry = {"architecture": name.split(".")[0], "file": f"{name}.safetensors",
             "dataset": {"name": "x", "split": "test", "data_module": data_module}}
    (out / "manifest.json").write_text(json.dumps({"format": 1, "entries": {name: entry}}))


def _refusal(argv, capsys, monkeypatch) -> str:
    monkeypatch.setattr(sparsify_cli, "sparsify", lambda *a, **k: pytest.fail("the work began"))
    assert sparsify_main(argv) == 2
    return " ".join(capsys.readouterr().err.split())


def test_a_held_name_made_from_another_file_of_the_same_stem_is_said_and_name_offered_first(tmp_path, capsys,
                                                                                             monkeypatch, aeon_sets):
    out = tmp_path / "o4"
    _held(out, "nv_lite.gunpoint_italypowerdemand_sparse",
          {"class_path": "neuroview.data.UCRDataModule", "init_args": {"name": "ItalyPowerDemand", "resample": True}})
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ItalyPowerDemand.npz", X=rng.normal(size=(40, 1, 24)), y=np.repeat([1, 2], 20))
    err = _refusal(["nv_lite.gunpoint", "--data", str(tmp_path / "ItalyPowerDemand.npz"), "--out", str(out)],
                   capsys, monkeypatch)
    assert "already holds nv_lite.gunpoint_italypowerdemand_sparse" in err
    assert "other data" in err and "UCRDataModule" in err and "NpzDataModule" in err, err
    assert err.index("--name") < err.index("--overwrite")
    assert "pass --overwrite to replace it" not in err
    assert re.search(r"--overwrite would replace (the|that) other data's", err), err


def test_a_held_name_of_the_same_set_carved_otherwise_says_what_differs(tmp_path, capsys, monkeypatch, aeon_sets):
    out = tmp_path / "o5"
    recorded = pretrained.get_entry("nv_lite.gunpoint")[1]["dataset"]["data_module"]
    _held(out, "nv_lite.gunpoint_sparse", {**recorded, "init_args": {**recorded["init_args"], "seed": 3}})
    err = _refusal(["nv_lite.gunpoint", "--out", str(out)], capsys, monkeypatch)
    assert "other data" in err and "seed 3" in err and "pass --overwrite to replace it" not in err, err


def test_a_held_name_of_the_same_data_keeps_the_overwrite_advice(tmp_path, capsys, monkeypatch, aeon_sets):
    out = tmp_path / "o6"
    _held(out, "nv_lite.gunpoint_sparse", pretrained.get_entry("nv_lite.gunpoint")[1]["dataset"]["data_module"])
    err = _refusal(["nv_lite.gunpoint", "--out", str(out)], capsys, monkeypatch)
    assert "pass --overwrite to replace it" in err and "other data" not in err, err
