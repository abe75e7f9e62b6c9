"""What a model was trained on travels with it: a `neuroview fit` checkpoint records its data module, and
other data given to `explain` or `sparsify` is read as the model's own was (normalize, resample)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neuroview.data import NpzDataModule, UCRDataModule, read_as_trained
from neuroview.data.read_as import checkpoint_data
from neuroview.training.cli import cli_main
from neuroview.training.sparsify_cli import _source
from neuroview.viz.report import resolve_data

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def _raw(path: Path, n: int = 60, seed: int = 0) -> Path:
    """Two classes of raw series (a scale and offset each, as recordings come), 40 steps."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.linspace(0, 2 * np.pi, 40)
    x = np.stack([np.sin((c + 1) * t) for c in y])[:, None] * rng.uniform(1, 30, (n, 1, 1)) + rng.uniform(-9, 9, (n, 1, 1))
    np.savez(path, X=x.astype(np.float32), y=y)
    return path


def test_a_fit_checkpoint_records_its_data_and_other_data_is_read_as_it_was(tmp_path):
    """The checkpoints held no data module (datamodule_hyper_parameters None): `explain --ckpt` never found what
    it was trained on, and `--data my.npz` took NpzDataModule's defaults (per-channel standardization, no
    stretching) for a network trained on series normalized one by one: 69.3% where the recipe's reading gave
    82.7% on a probe's rescaled GunPoint, unsaid."""
    path = _raw(tmp_path / "mine.npz")
    cli_main(["fit", "--config", str(ROOT / "recipes" / "ucr_nv_cnn.yaml"), "--data", "neuroview.data.NpzDataModule",
              "--data.init_args.path", str(path), "--model.model_kwargs.members", "1",
              "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.max_steps", "2", "--test_after_fit", "false",
              "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    spec = checkpoint_data(ckpt)
    assert spec["class_path"] == "neuroview.data.NpzDataModule" and spec["init_args"]["path"] == str(path)
    assert (spec["init_args"]["normalize"], spec["init_args"]["resample"], spec["init_args"]["batch_size"]) == ("sample", True, "auto")
    # other data, by a bare path: read as the model's training data was, not by NpzDataModule's defaults
    other = _raw(tmp_path / "other.npz", seed=1)
    assert (NpzDataModule(str(other)).normalize, NpzDataModule(str(other)).resample) == (True, False)
    dm, _ = resolve_data(str(other), spec, model=None)
    assert (dm.normalize, dm.resample) == ("sample", True)
    # sparsify: the checkpoint alone says its data (it asked for --data); other data is read as it was, and the
    # sparse entry's manifest keeps that reading, so that explain rebuilds it so
    net, dm, entry, _ = _source(str(ckpt), None)
    assert isinstance(dm, NpzDataModule) and dm.path == path and dm.normalize == "sample"
    net, dm, entry, _ = _source(str(ckpt), str(other))
    assert (dm.normalize, dm.resample) == ("sample", True)
    assert entry["dataset"]["data_module"]["init_args"] == {"path": str(other), "normalize": "sample", "resample": True,
                                                            "layout": "auto",  # and the file's format, its splits
                                                            "padding": "auto",
                                                            "seed": 0, "test_fraction": 0.2, "val_fraction": 0.0,
                                                            "val_fold": None}


def test_read_as_trained_takes_a_zoo_entry_s_dataset_and_leaves_unknown_options():
    dm = UCRDataModule("GunPoint")
    assert read_as_trained(dm, {"name": "gunpoint", "data_module": {"class_path": "neuroview.data.UCRDataModule",
                                                                      "init_args": {"normalize": "series", "resample": True,
                                                                                    "val_fraction": 0.0}}}) \
        == {"normalize": "series", "resample": True}
    assert dm.val_fraction == 0.2  # which series are held out is the new data's own business
    assert read_as_trained(dm, None) == {} and read_as_trained(dm, {"class_path": "x"}) == {}
    with pytest.raises(ValueError, match="normalize: expected true, false, 'series' or 'sample', got 'zscore'"):
        read_as_trained(UCRDataModule("GunPoint"), {"init_args": {"normalize": "zscore"}})


def test_a_fit_checkpoint_records_its_classes_and_other_data_must_name_them_alike(tmp_path, capsys):
    """A data module numbers the classes it reads: `explain`/`sparsify --data other.npz` of labels 'b', 'c' (or a
    training split missing 'a') scored and named the model's outputs as other classes, unsaid."""
    from neuroview.cli import main as cli
    from neuroview.data.read_as import checkpoint_classes

    def labelled(path: Path, names: list[str], seed: int) -> Path:
        x, y = np.load(_raw(path, seed=seed))["X"], np.load(path)["y"]
        np.savez(path, X=x, y=np.array(names)[y])
        return path

    path = labelled(tmp_path / "mine.npz", ["a", "b"], 0)
    cli_main(["fit", "--config", str(ROOT / "recipes" / "ucr_nv_cnn.yaml"), "--data", "neuroview.data.NpzDataModule",
              "--data.init_args.path", str(path), "--model.model_kwargs.members", "1",
              "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.max_steps", "2", "--test_after_fit", "false",
              "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert checkpoint_classes(ckpt) == ["a", "b"]
    other = labelled(tmp_path / "other.npz", ["b", "c"], 1)  # two classes, as the model: only the names tell
    with pytest.raises(ValueError, match=r"--data: .*other.npz: its classes, in order, are \['b', 'c'\]; the model's outputs are \['a', 'b'\]"):
        _source(str(ckpt), str(other))
    args = ["explain", "--ckpt", str(ckpt), "--samples", "8", "--no-progress", "--no-gallery", "--examples", "1"]
    assert cli(args + ["--data", str(other), "--out", str(tmp_path / "o1")]) == 2
    # explain reads a file of new series whole, its labels by name among the model's classes: 'c' is none of them
    err = capsys.readouterr().err
    assert "among the classes of the model the data is read for ['a', 'b'], got ['c']" in err and not (tmp_path / "o1").exists()
    same = labelled(tmp_path / "same.npz", ["a", "b"], 2)
    assert cli(args + ["--data", str(same), "--out", str(tmp_path / "o2")]) == 0


def test_a_zoo_entry_names_its_classes_and_other_data_must_name_them_alike(tmp_path, capsys):
    """The manifest records each entry's class names; other data of other classes is refused by explain and
    sparsify alike, and a sparse entry made on other data records that data's names."""
    from neuroview.cli import main as cli

    x = np.load(_raw(tmp_path / "raw.npz"))["X"]
    y = np.arange(len(x)) % 2
    np.savez(tmp_path / "ab.npz", X=x, y=np.array(["a", "b"])[y])
    np.savez(tmp_path / "gp.npz", X=x, y=np.array([1, 2])[y])  # GunPoint's own labels
    with pytest.raises(ValueError, match=r"its classes, in order, are \['a', 'b'\]; the model's outputs are \['1', '2'\]"):
        _source("nv_lite.gunpoint", str(tmp_path / "ab.npz"))
    _, dm, entry, _ = _source("nv_lite.gunpoint", str(tmp_path / "gp.npz"))
    assert entry["dataset"]["class_names"] == ["1", "2"] == dm.class_names
    args = ["explain", "--model", "nv_lite.gunpoint", "--samples", "8", "--no-progress", "--no-gallery", "--examples", "1"]
    assert cli(args + ["--data", str(tmp_path / "ab.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "among the classes of the model the data is read for ['1', '2'], got ['a', 'b']" in capsys.readouterr().err


def test_a_fit_checkpoint_records_its_data_files_as_absolute_paths(tmp_path, monkeypatch):
    """Lightning saved the config's arguments as given: a relative path was read from another folder as another file."""
    import numpy as np
    import torch

    from neuroview.training.cli import cli_main

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mine.npz", X=rng.normal(size=(40, 1, 30)).astype(np.float32), y=np.arange(40) % 2)
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", "--config", str(ROOT / "recipes" / "ucr_nv_cnn.yaml"), "--data", "neuroview.data.NpzDataModule",
              "--data.init_args.path", "mine.npz", "--trainer.default_root_dir", "run", "--trainer.max_epochs", "1",
              "--model.model_kwargs.members", "1", "--trainer.accelerator", "cpu", "--test_after_fit", "false",
              "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["datamodule_hyper_parameters"]["path"] == str(tmp_path / "mine.npz")
