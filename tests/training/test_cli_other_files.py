"""`neuroview test|predict` of a checkpoint on a user's other files (a probe): another file is read with the
training split's channel statistics (by its own it reached the network shifted), a model of other channels or
length is named before its state dict fails, a forgotten `test_path` is refused (the test split came from the
training file), `--model.init_weights` checks the classes as `--ckpt_path` does, and a resume given the same
relative path goes on. Expected values come from the files and the checkpoint, not from the commands' code."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from neuroview.training.cli import cli_main
from neuroview.training.module import load_model


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def _series(n: int, seed: int, channels: int = 1, steps: int = 20):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, channels, steps)).astype(np.float32)
    x[y == 1, :, 5:12] += 2.0
    return x, y


def _config(tmp_path: Path, path: Path, **data) -> str:
    cfg = {"seed_everything": 0, "torch_threads": 1,
           "model": {"arch": "small_cnn", "model_kwargs": {"widths": [4], "dims": 1}, "lr": 0.05, "scheduler": "none"},
           "data": {"class_path": "neuroview.data.NpzDataModule",
                    "init_args": {"path": str(path), "batch_size": 8, "val_fraction": 0.0, "normalize": True, **data}},
           "trainer": {"max_epochs": 2, "accelerator": "cpu", "enable_progress_bar": False,
                       "enable_model_summary": False, "default_root_dir": str(tmp_path / "run")}}
    out = tmp_path / "c.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return str(out)


@pytest.fixture
def trained(tmp_path):
    """A run on `train.npz` (its own X_test), and `other.npz`: the same test series, its training part x10 + 5."""
    x, y = _series(40, 1)
    xt, yt = _series(20, 2)
    np.savez(tmp_path / "train.npz", X=x, y=y, X_test=xt, y_test=yt)
    np.savez(tmp_path / "other.npz", X=x * 10 + 5, y=y, X_test=xt, y_test=yt)
    cfg = _config(tmp_path, tmp_path / "train.npz")
    cli_main(["fit", "--config", cfg, "--test_after_fit", "false"])
    return cfg, str(tmp_path / "run" / "checkpoints" / "last.ckpt")


def _test_acc(cfg: str, *args: str) -> float:
    return float(cli_main(["test", "--config", cfg, *args]).trainer.callback_metrics["test_acc"])


def test_another_file_is_read_with_the_training_splits_statistics(trained, tmp_path):
    cfg, ckpt = trained
    net = load_model(ckpt)
    x, y = _series(40, 1)
    mean, std = float(x.mean()), float(x.std())
    xt, yt = _series(20, 2)
    with torch.no_grad():  # the test series standardized by the training split's statistics, scored by hand
        want = float((net(torch.from_numpy((xt - mean) / std)).argmax(1) == torch.from_numpy(yt)).float().mean())
    other = ["--data.init_args.path", str(tmp_path / "other.npz"), "--ckpt_path", ckpt]
    assert _test_acc(cfg, "--ckpt_path", ckpt) == pytest.approx(want)
    assert _test_acc(cfg, *other) == pytest.approx(want)  # before: standardized by other.npz's training part


def test_a_file_of_other_channels_is_named_before_the_state_dict(trained, tmp_path):
    cfg, ckpt = trained
    x, y = _series(40, 1, channels=3)
    np.savez(tmp_path / "three.npz", X=x, y=y)
    with pytest.raises(ValueError, match=r"3 channels, the model's training data 1|series of 3 channels, where .* 1 channels"):
        cli_main(["test", "--config", cfg, "--data.init_args.path", str(tmp_path / "three.npz"), "--ckpt_path", ckpt])


def _csv(path: Path, n: int, seed: int) -> Path:
    x, y = _series(n, seed)
    path.write_text("".join(f"{c}," + ",".join(f"{v:.4f}" for v in row[0]) + "\n" for row, c in zip(x, y)))
    return path


def test_a_forgotten_test_path_is_refused(tmp_path):
    cfg = _config(tmp_path, _csv(tmp_path / "TRAIN.csv", 40, 1))
    text = yaml.safe_load(Path(cfg).read_text())
    text["data"] = {"class_path": "neuroview.data.CsvDataModule",
                    "init_args": {**text["data"]["init_args"], "test_path": str(_csv(tmp_path / "TEST.csv", 20, 2))}}
    Path(cfg).write_text(yaml.safe_dump(text))
    cli_main(["fit", "--config", cfg, "--test_after_fit", "false"])
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    with pytest.raises(ValueError, match=r"trained on this data with --data.init_args.test_path .*TEST.csv; without it"):
        cli_main(["test", "--config", cfg, "--data.init_args.test_path", "null", "--ckpt_path", ckpt])
    assert 0 <= _test_acc(cfg, "--ckpt_path", ckpt) <= 1  # given, it scores


def test_init_weights_checks_the_classes_as_ckpt_path_does(trained, tmp_path):
    cfg, ckpt = trained
    x, y = _series(40, 1)
    xt, yt = _series(20, 2)
    names = np.array(["a", "b"])
    np.savez(tmp_path / "named.npz", X=x, y=names[y], X_test=xt, y_test=names[yt])
    given = ["--data.init_args.path", str(tmp_path / "named.npz")]
    for how in (["--ckpt_path", ckpt], ["--model.init_weights", ckpt]):
        with pytest.raises(ValueError, match=r"expected labels among the classes of the model the data is read for "
                                             r"\['0', '1'\], got \['a', 'b'\]"):
            cli_main(["test", "--config", cfg, *given, *how])


def test_a_resume_given_the_same_relative_path_goes_on(tmp_path, monkeypatch):
    x, y = _series(40, 1)
    np.savez(tmp_path / "f.npz", X=x, y=y)
    monkeypatch.chdir(tmp_path)
    cfg = _config(tmp_path, Path("f.npz"), test_fraction=0.25)
    cli_main(["fit", "--config", cfg, "--test_after_fit", "false"])
    cli = cli_main(["fit", "--config", cfg, "--test_after_fit", "false", "--trainer.max_epochs", "3",
                    "--ckpt_path", "last"])  # before: "resumes a run trained on other data options ('f.npz' asked ...)"
    assert cli.trainer.current_epoch == 3


def test_predictions_name_their_split_rows_and_classes(trained, tmp_path):
    cfg, ckpt = trained
    cli_main(["predict", "--config", cfg, "--ckpt_path", ckpt])
    with open(next((tmp_path / "run").rglob("predictions.csv"))) as f:
        rows = list(csv.DictReader(f))
    xt, yt = _series(20, 2)  # train.npz's X_test, standardized by the training split as the model read it
    x, _ = _series(40, 1)
    with torch.no_grad():
        pred = load_model(ckpt)(torch.from_numpy((xt - x.mean()) / x.std())).argmax(1).tolist()
    assert [int(r["split_index"]) for r in rows] == list(range(20))  # the rows of X_test, in order
    assert [int(r["target"]) for r in rows] == yt.tolist() and [int(r["pred"]) for r in rows] == pred
    assert [r["pred_index"] for r in rows] == [str(p) for p in pred] and rows[0]["target_index"] == str(yt[0])


def test_a_cnn_reads_another_length_and_an_rnn_reads_it_at_its_training_length(trained, tmp_path):
    """`_check_shape` refused a CNN of global pooling 30-step series after 20 (it read them before); an RNN trained on
    variable-length series read other data padded to its training length, but was built at the data's own."""
    cfg, ckpt = trained
    x, y = _series(40, 1, steps=30)
    np.savez(tmp_path / "long.npz", X=x, y=y)
    assert 0 <= _test_acc(cfg, "--data.init_args.path", str(tmp_path / "long.npz"), "--ckpt_path", ckpt) <= 1

    def ragged(n: int, seed: int, longest: int) -> Path:
        x, y = _series(n, seed, steps=longest)
        lengths = np.random.default_rng(seed).integers(longest // 2, longest + 1, n)
        lengths[0] = longest  # one of the longest length
        for i, t in enumerate(lengths):
            x[i, :, t:] = 0.0  # padding past its end
        np.savez(tmp_path / f"r{longest}.npz", X=x, y=y, lengths=lengths)
        return tmp_path / f"r{longest}.npz"

    rnn = _config(tmp_path, ragged(40, 3, 20))
    text = yaml.safe_load(Path(rnn).read_text())
    text["model"] = {"arch": "nv_gru", "model_kwargs": {"hidden_size": 4}, "lr": 0.05, "scheduler": "none"}
    text["trainer"]["default_root_dir"] = str(tmp_path / "rnn")
    Path(rnn).write_text(yaml.safe_dump(text))
    cli_main(["fit", "--config", rnn, "--test_after_fit", "false"])
    last = str(tmp_path / "rnn" / "checkpoints" / "last.ckpt")
    short = ["--data.init_args.path", str(ragged(40, 4, 14)), "--ckpt_path", last]
    cli = cli_main(["test", "--config", rnn, *short])
    assert cli.model.hparams.max_len == 20 and 0 <= float(cli.trainer.callback_metrics["test_acc"]) <= 1


def test_init_weights_of_an_rnn_on_other_lengths_scores_the_whole_trained_model(tmp_path):
    """The second review: --model.init_weights read other data at the training length but built the model at the
    data's own, and the weights then went into the GRU alone: a random head scored (0.375 where --ckpt_path gave 0.625)."""
    def ragged(longest: int, seed: int) -> Path:
        x, y = _series(40, seed, steps=longest)
        lengths = np.random.default_rng(seed).integers(longest // 2, longest + 1, 40)
        lengths[0] = longest
        for i, t in enumerate(lengths):
            x[i, :, t:] = 0.0
        np.savez(tmp_path / f"r{longest}.npz", X=x, y=y, lengths=lengths)
        return tmp_path / f"r{longest}.npz"

    cfg = _config(tmp_path, ragged(20, 3))
    text = yaml.safe_load(Path(cfg).read_text())
    text["model"] = {"arch": "nv_gru", "model_kwargs": {"hidden_size": 4}, "lr": 0.05, "scheduler": "none"}
    Path(cfg).write_text(yaml.safe_dump(text))
    cli_main(["fit", "--config", cfg, "--test_after_fit", "false"])
    last = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    other = ["--data.init_args.path", str(ragged(14, 4))]
    by_ckpt = _test_acc(cfg, *other, "--ckpt_path", last)
    assert _test_acc(cfg, *other, "--model.init_weights", last) == pytest.approx(by_ckpt)
