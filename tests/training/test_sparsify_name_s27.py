"""`neuroview sparsify ENTRY --data <the entry's own set>` names its result as without --data (probe s27, P1 F2):
`nv_lite.gunpoint --data GunPoint` wrote `nv_lite.gunpoint_gunpoint_sparse`, though the help promises the data suffix
only "with --data other than a zoo entry's own", and the README's next command (`neuroview explain --model
nv_lite.gunpoint_sparse`) then found no such entry. Also: `neuroview demo`'s docstring no longer calls it the recipe's
network (P1 F1). No training: the names are caught where they are checked, before the work."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import neuroview.data  # noqa: F401 - Lightning, imported at collection: not counted in the first test's seconds
import neuroview.zoo.pretrained as pretrained
from neuroview.training import sparsify_cli
from neuroview.training.sparsify_cli import main as sparsify_main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def aeon_sets():
    """aeon's loader (GunPoint, ItalyPowerDemand ship inside it), imported once: its import (numba, pandas) is seconds."""
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


@pytest.mark.parametrize("source, data, expected", [
    ("nv_lite.gunpoint", "GunPoint", "nv_lite.gunpoint_sparse"),  # the probe's case
    ("nv_small_cnn.digits", "digits", "nv_small_cnn.digits_sparse"),
    ("nv_small_cnn.digits", "Digits", "nv_small_cnn.digits_sparse"),  # a built-in name in any case, as --data takes it
    # a JSON spec of the entry's own set, split and read as it records (review R3 F1: val_fraction 0.2 and resample
    # false, UCRDataModule's defaults, are another split and reading: named apart in test_sparsify_name_review_s27.py)
    ("nv_gru.italypowerdemand", '{"class_path": "UCRDataModule", "init_args": {"name": "ItalyPowerDemand", '
                                '"val_fraction": 0.0, "resample": true}}', "nv_gru.italypowerdemand_sparse"),
    ("nv_lite.gunpoint", "ItalyPowerDemand", "nv_lite.gunpoint_italypowerdemand_sparse"),  # other data: still named
])
def test_sparsify_names_the_data_only_where_it_is_not_the_entrys_own(named, source, data, expected, tmp_path, capsys):
    assert sparsify_main([source, "--data", data, "--out", str(tmp_path / "sp")]) == 2
    assert "stopped by the test before the work" in capsys.readouterr().err
    assert named == [expected]


def _ucr(name: str, **read_like) -> dict:
    spec = {"class_path": "neuroview.data.UCRDataModule", "init_args": {"name": name, "normalize": True, "seed": 0}}
    return spec | ({"read_like": read_like} if read_like else {})


@pytest.mark.parametrize("data, spec, own, expected", [
    # the entry's own set, by the recorded name in another case (a manifest written by hand, an older writer)
    ("GunPoint", _ucr("GunPoint"), {"name": "gunpoint", "data_module": _ucr("gunpoint")}, "nv_lite.gunpoint_sparse"),
    # an entry already made on other data: its own data is what it records, not its source's
    ("ItalyPowerDemand", _ucr("ItalyPowerDemand", **_ucr("GunPoint")),
     {"name": "ItalyPowerDemand", "data_module": _ucr("ItalyPowerDemand", **_ucr("GunPoint"))},
     "nv_lite.gunpoint_sparse"),
    ("GunPoint", _ucr("GunPoint", **_ucr("ItalyPowerDemand")),
     {"name": "ItalyPowerDemand", "data_module": _ucr("ItalyPowerDemand", **_ucr("GunPoint"))},
     "nv_lite.gunpoint_gunpoint_sparse"),
    # digits recorded by a checkpoint's sparse entry under its class's name: still the digits
    ("digits", {"class_path": "neuroview.data.DigitsDataModule", "init_args": {"seed": 0}},
     {"name": "DigitsDataModule", "data_module": {"class_path": "neuroview.data.DigitsDataModule", "init_args": {}}},
     "nv_lite.gunpoint_sparse"),
    ("mnist1d", {"class_path": "neuroview.data.MNIST1DDataModule", "init_args": {"seed": 0}},
     {"name": "digits", "data_module": {"class_path": "neuroview.data.DigitsDataModule", "init_args": {}}},
     "nv_lite.gunpoint_mnist1d_sparse"),
    # an entry that records no data module at all: the data cannot be told to be its own, so it is named
    ("GunPoint", _ucr("GunPoint"), None, "nv_lite.gunpoint_gunpoint_sparse"),
])
def test_entry_name_compares_data_with_the_entrys_recorded_dataset(data, spec, own, expected):
    args = SimpleNamespace(name=None, data=data, source="nv_lite.gunpoint")
    entry = {"architecture": "nv_lite", "dataset": {"name": data, "data_module": spec}}
    assert sparsify_cli._entry_name(args, entry, "gunpoint", own) == expected


def test_entry_name_of_a_file_compares_the_file(tmp_path):
    """A path is the entry's own data where it is the same file (a copy of the same bytes too); another file is named."""
    a, b, c = tmp_path / "Train A.npz", tmp_path / "copy.npz", tmp_path / "other.npz"
    a.write_bytes(b"series")
    b.write_bytes(b"series")
    c.write_bytes(b"others")
    own = {"name": str(a), "data_module": {"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": str(a)}}}
    for path, expected in ((a, "nv_lite.mine_sparse"), (b, "nv_lite.mine_sparse"), (c, "nv_lite.mine_other_sparse")):
        args = SimpleNamespace(name=None, data=str(path), source="nv_lite.mine")
        spec = {"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": str(path)}}
        assert sparsify_cli._entry_name(args, {"architecture": "nv_lite", "dataset": {"data_module": spec}}, "mine",
                                        own) == expected


def test_demo_docstring_names_what_it_trains_not_the_recipe_s_network(monkeypatch):
    """README and demo.py called the demo "the same network" as the main job's recipe: it trains the library's default
    quantizer, the recipe another. The docstring must name both, as the recipe file and the demo's parser say."""
    import argparse

    from neuroview.training import demo
    from neuroview.zoo import create_model

    doc = demo.__doc__
    recipe = yaml.safe_load((ROOT / "recipes" / "digits_nv_small_cnn.yaml").read_text())
    demo_q = create_model("nv_small_cnn", num_classes=10, in_channels=1).quantizer  # what demo.main builds by default
    recipe_q = recipe["model"]["model_kwargs"]["quantizer"]
    assert demo_q != recipe_q  # else the docstring's contrast below is moot: revisit it
    assert "The same thing as a recipe" not in doc and "the same network" not in doc.lower()
    assert f"``{demo_q}``" in doc and f"``{recipe_q}``" in doc
    assert f"{recipe['trainer']['max_epochs']} epochs" in doc
    actions = []

    def grab(self, *a, **k):  # the parser's options, taken before any data is read
        actions.extend(self._actions)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", grab)
    with pytest.raises(SystemExit):
        demo.main([])
    assert f"{next(a.default for a in actions if '--epochs' in a.option_strings)} epochs" in doc
    assert "Lightning recipes do the same" not in demo.train.__doc__


def test_demo_help_says_it_is_not_the_recipe_s_run(capsys):
    from neuroview.training.demo import main as demo

    with pytest.raises(SystemExit):
        demo(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert re.search(r"not the main job's network", out) and "digits_nv_small_cnn.yaml" in out
