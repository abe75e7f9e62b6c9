"""Review R4 finding 8: `neuroview sparsify CKPT` without --data told every checkpoint it could not rebuild the data of
that it was "written before data modules saved their arguments", also one that records them (path, batch size, ...)
but not a data module neuroview can rebuild: a pl.Trainer checkpoint from before neuroview recorded the class, or a
data module of the user's own (a pl.Trainer record, or LightningCLI's ``_class_path``, which said "dataset: expected a
data module of neuroview.data", a key the user never typed). The words are kept for a checkpoint without data
arguments; the others say what they record. Each checkpoint is the one API checkpoint edited as the case needs."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from neuroview import cli
from neuroview.data import NpzDataModule
from neuroview.training.module import NeuroViewModule

OLD = "written before data modules saved their arguments"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def state(tmp_path) -> dict:
    rng = np.random.default_rng(0)
    train = tmp_path / "three.npz"
    np.savez(train, X=rng.normal(size=(30, 1, 24)).astype(np.float32), y=np.array(["a", "b", "c"] * 10))
    pl.seed_everything(0)
    model = NeuroViewModule(arch="nv_small_cnn", num_classes=3, in_channels=1, model_kwargs={"widths": [4], "dims": 1})
    trainer = pl.Trainer(max_epochs=1, default_root_dir=tmp_path / "api", accelerator="cpu", logger=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, NpzDataModule(str(train), batch_size=8))
    saved = torch.load(next((tmp_path / "api").rglob("*.ckpt")), map_location="cpu", weights_only=True)
    assert saved.pop("NpzDataModule")["neuroview_data_class"] == "neuroview.data.npz.NpzDataModule"  # beside the file's record (s20)
    assert saved["datamodule_hyper_parameters"]["path"] == str(train)
    return saved  # the class record taken out: an API checkpoint of before it


def _refusal(tmp_path, capsys, saved: dict, name: str) -> str:
    path = tmp_path / f"{name}.ckpt"
    torch.save(saved, path)
    assert cli.main(["sparsify", str(path), "--out", str(tmp_path / f"out_{name}")]) == 2
    return capsys.readouterr().err


def test_a_checkpoint_without_data_arguments_keeps_its_words(tmp_path, capsys, state):
    state.pop("datamodule_hyper_parameters")
    err = _refusal(tmp_path, capsys, state, "bare")
    assert "--data: " in err and OLD in err and "pass --data" in err, err


def test_a_checkpoint_with_data_arguments_but_no_class_says_so(tmp_path, capsys, state):
    err = _refusal(tmp_path, capsys, state, "pre_record")
    assert OLD not in err, err  # it saved them: path, batch size
    assert "--data: this checkpoint records its data arguments but no data module neuroview can rebuild" in err, err
    assert "pass --data" in err


@pytest.mark.parametrize("how", ["record", "class_path"])
def test_a_users_own_data_module_is_named_and_asked_for_data(tmp_path, capsys, state, how):
    if how == "record":  # pl.Trainer on the user's subclass: the record names it, outside neuroview.data
        state["MyDM"] = {"neuroview_data_class": "mydata.MyDM"}
    else:  # LightningCLI on it: its _class_path among the data arguments
        state["datamodule_hyper_parameters"]["_class_path"] = "mydata.MyDM"
    err = _refusal(tmp_path, capsys, state, how)
    assert OLD not in err and "dataset:" not in err, err  # a manifest key the user never typed
    assert "--data: this checkpoint records its data arguments but no data module neuroview can rebuild" in err, err
    if how == "class_path":
        assert "'mydata.MyDM'" in err, err
    assert "pass --data" in err
