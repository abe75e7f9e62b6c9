"""A ``ucr_*`` recipe on a user's own ``.npz``: the same batch size, length handling and
normalization as on an aeon set, through the same command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from neuroview.data import NpzDataModule
from neuroview.data.arrays import auto_batch_size
from neuroview.training.cli import cli_main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def _my_recordings(path: Path, n: int = 130, seed: int = 0) -> Path:
    """Raw two-channel recordings of 3 classes and lengths 40 to 90 (padded, with ``lengths``), each
    with a scale and offset of its own, as a user's currents or pressures come."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(40, 91, n)
    y = np.arange(n) % 3
    x = np.zeros((n, 2, 90), np.float32)
    for i, (t, c) in enumerate(zip(lengths, y)):
        s = np.sin(np.linspace(0, (c + 1) * np.pi, t))
        x[i, :, :t] = rng.uniform(0.5, 50) * np.stack([s, s ** 2]) + rng.uniform(-20, 20) + 0.1 * rng.standard_normal((2, t))
    np.savez(path, X=x, y=np.array(["low", "mid", "high"])[y], lengths=lengths)
    return path


@pytest.mark.parametrize("recipe", ["ucr_nv_cnn", "ucr_cnn", "ucr_nv_rnn", "ucr_rnn"])
def test_ucr_recipe_on_an_npz_keeps_its_batch_size_lengths_and_normalization(recipe, tmp_path):
    path = _my_recordings(tmp_path / "my.npz")
    config = ROOT / "recipes" / f"{recipe}.yaml"
    data_args = yaml.safe_load(config.read_text())["data"]["init_args"]
    cli = cli_main(["fit", "--config", str(config), "--data", "neuroview.data.NpzDataModule", "--data.init_args.path", str(path),
                    "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.max_steps", "3",
                    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    dm, hp = cli.datamodule, cli.model.hparams
    assert isinstance(dm, NpzDataModule)
    # the recipe's own data options reach the user's file: none is replaced by NpzDataModule's default
    assert dm._batch_size == data_args["batch_size"] == "auto"
    assert dm.resample is data_args["resample"] and dm.normalize == data_args.get("normalize", True)
    assert dm.val_fraction == data_args["val_fraction"] and "val" not in dm.split_sizes()
    n_train = dm.split_sizes()["train"]
    assert n_train == 103 and dm.batch_size == auto_batch_size(n_train) == 10  # a fifth of each class held out to test
    # lengths: every series stretched to the longest training series (no padding left to mask), or,
    # where the recipe masks (the standard GRU), padded to it with each series' length carried
    longest = max(int(n) for n in np.load(path)["lengths"][np.isin(np.arange(130), _train_indices(dm, path))])
    assert dm.variable_length is (not data_args["resample"]) and dm.max_len == hp.max_len == longest
    assert (hp.num_classes, hp.in_channels) == (3, 2) and dm.class_names == ["high", "low", "mid"]
    assert cli.trainer.global_step == 3 and 0.0 <= cli.trainer.callback_metrics["test_acc"] <= 1.0


def _train_indices(dm: NpzDataModule, path: Path) -> np.ndarray:
    from neuroview.data.arrays import stratified_split

    keep, _ = stratified_split(np.load(path)["y"].astype(str), dm.test_fraction, dm.seed + 1)
    return keep


def test_print_config_keeps_the_recipe_s_auto_batch_size_on_an_npz(tmp_path, capsys):
    path = _my_recordings(tmp_path / "my.npz")
    with pytest.raises(SystemExit) as e:
        cli_main(["fit", "--config", str(ROOT / "recipes" / "ucr_nv_cnn.yaml"), "--data", "neuroview.data.NpzDataModule",
                  "--data.init_args.path", str(path), "--print_config"])
    assert e.value.code in (0, None)
    data = yaml.safe_load(capsys.readouterr().out)["data"]
    assert data["class_path"] == "neuroview.data.NpzDataModule"
    assert data["init_args"]["batch_size"] == "auto" and data["init_args"]["resample"] is True


def test_ucr_recipe_on_the_archive_s_tsv_files_of_your_own(tmp_path):
    """The same recordings as UCR-format TSV files (the label first, channels one after another, a
    shorter series padded with NaN), a training and a test file: the recipe's options hold."""
    arrays = np.load(_my_recordings(tmp_path / "my.npz"))
    for name, rows in (("TRAIN", slice(0, 100)), ("TEST", slice(100, 130))):
        with open(tmp_path / f"mine_{name}.tsv", "w") as f:
            for x, y, n in zip(arrays["X"][rows], arrays["y"][rows], arrays["lengths"][rows]):
                values = [f"{v:.7g}" for v in x[:, :n].reshape(-1)] + ["NaN"] * (2 * (90 - n))
                f.write("\t".join([str(y), *values]) + "\n")
    cli = cli_main(["fit", "--config", str(ROOT / "recipes" / "ucr_nv_cnn.yaml"), "--data", "neuroview.data.CsvDataModule",
                    "--data.init_args.path", str(tmp_path / "mine_TRAIN.tsv"), "--data.init_args.channels", "2",
                    "--data.init_args.test_path", str(tmp_path / "mine_TEST.tsv"),
                    "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.max_steps", "2",
                    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    dm, hp = cli.datamodule, cli.model.hparams
    assert dm._batch_size == "auto" and dm.batch_size == auto_batch_size(100) == 10 and dm.resample is True
    assert dm.split_sizes()["test"] == 30 and dm.max_len == hp.max_len == int(arrays["lengths"][:100].max())
    assert (hp.num_classes, hp.in_channels) == (3, 2) and dm.class_names == ["high", "low", "mid"]
    assert cli.trainer.global_step == 2 and 0.0 <= cli.trainer.callback_metrics["test_acc"] <= 1.0
