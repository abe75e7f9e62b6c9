"""`neuroview predict --ckpt_path` of a checkpoint trained through the Python API (`pl.Trainer.fit` on a data module:
no LightningCLI `_class_path` among its data arguments), probe P3 of session 19: a new file of 60 series was read as
the training file, carved by test_fraction, and 12 of its series scored without a word. Every series of a new file is
scored, the training file itself is carved as in training, and a checkpoint written before the data module recorded
its class is judged by its file. The expected row counts come from the files the tests write."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from neuroview.data import NpzDataModule
from neuroview.data.read_as import checkpoint_data
from neuroview.training.cli import cli_main
from neuroview.training.module import NeuroViewModule


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def _file(path: Path, n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    np.savez(path, X=rng.normal(size=(n, 1, 24)).astype(np.float32), y=np.array(["a", "b", "c"] * (n // 3)))
    return str(path)


def _fit(tmp_path, folder: str, arch: str, data_class) -> tuple[str, str]:
    """``(checkpoint, training file)`` of one epoch of ``arch`` fitted by a ``pl.Trainer`` (the Python API) on a
    ``data_class`` module of a 3-class file, 10 series a class."""
    train = _file(tmp_path / "three.npz", 30, 0)
    pl.seed_everything(0)
    model = NeuroViewModule(arch=arch, num_classes=3, in_channels=1, model_kwargs={"widths": [4], "dims": 1})
    trainer = pl.Trainer(max_epochs=1, default_root_dir=tmp_path / folder, accelerator="cpu", logger=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, data_class(train, batch_size=8))
    return str(next((tmp_path / folder).rglob("*.ckpt"))), train


@pytest.fixture
def api_ckpt(tmp_path) -> tuple[str, str]:
    return _fit(tmp_path, "api", "small_cnn", NpzDataModule)


def _predicted_rows(tmp_path: Path, ckpt: str, data: str, name: str) -> int:
    root = tmp_path / name
    cli_main(["predict", "--ckpt_path", ckpt, "--data", "neuroview.data.NpzDataModule", "--data.init_args.path", data,
              "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"])
    with open(next(root.glob("logs/version_*/predictions.csv"))) as f:
        return len(list(csv.DictReader(f)))


def test_an_api_checkpoint_records_its_data_module_class(api_ckpt):
    spec = checkpoint_data(api_ckpt[0])
    assert spec is not None and spec["class_path"] == "neuroview.data.NpzDataModule"  # was None: "no data module"
    assert spec["init_args"]["path"] == api_ckpt[1] and spec["init_args"]["batch_size"] == 8


def test_predict_of_an_api_checkpoint_scores_every_series_of_a_new_file(tmp_path, api_ckpt):
    new = _file(tmp_path / "new60.npz", 60, 2)
    assert _predicted_rows(tmp_path, api_ckpt[0], new, "p_new") == 60  # was 12: a test_fraction carve of 0.2


def test_a_checkpoint_without_the_class_record_is_judged_by_its_file(tmp_path, api_ckpt):
    ckpt, train = api_ckpt
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state.pop("NpzDataModule")["neuroview_data_class"] == "neuroview.data.npz.NpzDataModule"  # beside the file's record (s20)
    old = str(tmp_path / "old.ckpt")
    torch.save(state, old)  # as an API checkpoint of before the record
    assert checkpoint_data(old) is None and checkpoint_data(old, unnamed=True)["class_path"] is None
    new = _file(tmp_path / "new60.npz", 60, 2)
    assert _predicted_rows(tmp_path, old, new, "p_old_new") == 60  # another file: scored whole
    assert _predicted_rows(tmp_path, old, train, "p_old_own") == 6  # its own file: the test carve, 0.2 of 10 a class


class MyDM(NpzDataModule):
    """A user's own subclass of a neuroview data module: its record names this test module, not ``neuroview.data``."""


@pytest.fixture
def own_ckpt(tmp_path) -> tuple[str, str]:
    ckpt, train = _fit(tmp_path, "own", "nv_small_cnn", MyDM)
    assert torch.load(ckpt, weights_only=True)["MyDM"]["neuroview_data_class"].endswith(".MyDM")
    return ckpt, train


def test_a_users_own_subclass_checkpoint_is_judged_by_its_file(tmp_path, own_ckpt):
    """Review R4 finding 1: the record of a class neuroview cannot rebuild (``MyDM``) made its own training file
    'another class', scored whole (30 rows, the log saying it was not the data the model was trained on)."""
    ckpt, train = own_ckpt
    assert checkpoint_data(ckpt) is None and checkpoint_data(ckpt, unnamed=True)["class_path"] is None
    assert _predicted_rows(tmp_path, ckpt, train, "own_file") == 6  # the test carve of training: 0.2 of 10 a class
    assert _predicted_rows(tmp_path, ckpt, _file(tmp_path / "new60.npz", 60, 2), "new_file") == 60  # another: whole
    with pytest.raises(ValueError, match=r"ckpt_path: .* was trained on this data with other split options "
                                         r"\(--data.init_args.seed 3 asked, 0 in the checkpoint\)"):
        cli_main(["predict", "--ckpt_path", ckpt, "--data", "neuroview.data.NpzDataModule", "--data.init_args.path",
                  train, "--data.init_args.seed", "3", "--trainer.default_root_dir", str(tmp_path / "seed3")])


def test_a_subclass_named_by_lightningcli_is_its_own_file_read_by_the_base_class(tmp_path, own_ckpt):
    """A ``_class_path`` of the user's subclass (``neuroview fit --data mymodule.MyDM``), its module imported: the base
    class reading the same file reads the model's own data (it was 'another class', scored whole)."""
    ckpt, train = own_ckpt
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    state["datamodule_hyper_parameters"]["_class_path"] = f"{MyDM.__module__}.MyDM"
    torch.save(state, tmp_path / "cli.ckpt")
    assert _predicted_rows(tmp_path, str(tmp_path / "cli.ckpt"), train, "cli_own") == 6


@pytest.mark.parametrize("command", ["sparsify", "explain"])
def test_explain_and_sparsify_of_a_users_subclass_checkpoint_ask_for_data(tmp_path, own_ckpt, command, capsys):
    """Review R4 finding 2: without --data they said 'dataset: expected a data module of neuroview.data ..., got
    'test_api_ckpt_data_s19.MyDM'', naming a manifest key the user never typed, with no way forward."""
    from neuroview import cli

    argv = {"sparsify": ["sparsify", own_ckpt[0], "--out", str(tmp_path / "s")],
            "explain": ["explain", "--ckpt", own_ckpt[0], "--no-gallery", "--samples", "4", "--out", str(tmp_path / "e")]}
    assert cli.main(argv[command]) == 2
    err = capsys.readouterr().err
    assert "--data: " in err and "pass --data" in err and "dataset:" not in err, err


def _forged(tmp_path, monkeypatch) -> tuple[str, Path]:
    """A module that, imported, leaves a file behind (as `this` prints the Zen of Python), on the import path."""
    marker = tmp_path / "imported"
    (tmp_path / "nv_forged_probe.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Zen: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "nv_forged_probe.Zen", marker


def test_a_checkpoint_naming_a_module_is_never_made_to_import_it(tmp_path, api_ckpt, monkeypatch):
    """Review R4 finding 3: a checkpoint's class record ('this.Zen'), or the older ``_class_path``, made `neuroview
    predict` import the module it names. Neither is imported; the record of a class outside neuroview.data is not
    read, and the new file is scored whole."""
    import sys

    forged, marker = _forged(tmp_path, monkeypatch)
    state = torch.load(api_ckpt[0], map_location="cpu", weights_only=True)
    record = dict(state, NpzDataModule={"neuroview_data_class": forged})
    torch.save(record, tmp_path / "record.ckpt")
    cp = {k: v for k, v in state.items() if k != "NpzDataModule"}
    cp["datamodule_hyper_parameters"] = {**state["datamodule_hyper_parameters"], "_class_path": forged}
    torch.save(cp, tmp_path / "cp.ckpt")
    elsewhere = dict(state, Other={"neuroview_data_class": "neuroview.data.npz.NpzDataModule"})  # not under its own key
    elsewhere.pop("NpzDataModule")
    torch.save(elsewhere, tmp_path / "elsewhere.ckpt")
    new = _file(tmp_path / "new60.npz", 60, 2)
    assert checkpoint_data(str(tmp_path / "record.ckpt")) is None
    assert checkpoint_data(str(tmp_path / "elsewhere.ckpt")) is None
    assert checkpoint_data(str(tmp_path / "cp.ckpt"))["class_path"] == forged  # as recorded: a name, not imported
    for name in ("record", "cp"):
        assert _predicted_rows(tmp_path, str(tmp_path / f"{name}.ckpt"), new, f"p_{name}") == 60
    assert not marker.exists() and "nv_forged_probe" not in sys.modules
