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


@pytest.fixture
def api_ckpt(tmp_path) -> tuple[str, str]:
    train = _file(tmp_path / "three.npz", 30, 0)  # 10 series a class
    pl.seed_everything(0)
    model = NeuroViewModule(arch="small_cnn", num_classes=3, in_channels=1, model_kwargs={"widths": [4], "dims": 1})
    trainer = pl.Trainer(max_epochs=1, default_root_dir=tmp_path / "api", accelerator="cpu", logger=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, NpzDataModule(train, batch_size=8))
    return str(next((tmp_path / "api").rglob("*.ckpt"))), train


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
    assert state.pop("NpzDataModule") == {"neuroview_data_class": "neuroview.data.npz.NpzDataModule"}
    old = str(tmp_path / "old.ckpt")
    torch.save(state, old)  # as an API checkpoint of before the record
    assert checkpoint_data(old) is None and checkpoint_data(old, unnamed=True)["class_path"] is None
    new = _file(tmp_path / "new60.npz", 60, 2)
    assert _predicted_rows(tmp_path, old, new, "p_old_new") == 60  # another file: scored whole
    assert _predicted_rows(tmp_path, old, train, "p_old_own") == 6  # its own file: the test carve, 0.2 of 10 a class
