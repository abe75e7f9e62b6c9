"""`neuroview test|predict` of a checkpoint on another file than it was trained on (a probe): the file is read with the
checkpoint's normalize/resample where the command line names none (the defaults changed 13 of 30 predictions, without a
word), and refused by name where it names others; every series of a file without a test split of its own is scored
(a hidden test_fraction carve scored 3 of 12), the checkpoint's own carved file names each series' row of the file
(file_index); no validation split is carved or checked for test/predict; a file of other channels is named without
pointing to `explain`, which fails on it too. Expected values come from the files and the checkpoint."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from neuroview.data.splits import stratified_split
from neuroview.training.cli import cli_main
from neuroview.training.module import load_model


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def _series(n: int, seed: int, channels: int = 1, steps: int = 20):
    """Two classes; each series scaled and shifted by its own amount (what normalize: sample takes away)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, channels, steps)).astype(np.float32)
    x[y == 1, :, 5:12] += 3.0
    return (x * rng.uniform(0.5, 20, (n, 1, 1)) + rng.uniform(-50, 50, (n, 1, 1))).astype(np.float32), y


def _config(tmp_path: Path, name: str, **data) -> str:
    """A config whose data names only ``data`` (and the batch size): what a user gives without the recipe."""
    cfg = {"seed_everything": 0, "torch_threads": 1,
           "model": {"arch": "small_cnn", "model_kwargs": {"widths": [4], "dims": 1}, "lr": 0.05, "scheduler": "none"},
           "data": {"class_path": "neuroview.data.NpzDataModule", "init_args": {"batch_size": 8, **data}},
           "trainer": {"max_epochs": 3, "accelerator": "cpu", "enable_progress_bar": False,
                       "enable_model_summary": False, "default_root_dir": str(tmp_path / name)}}
    out = tmp_path / f"{name}.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return str(out)


@pytest.fixture
def trained(tmp_path):
    """A run on `train.npz` (no X_test: its test split carved), its series normalized one by one."""
    x, y = _series(40, 1)
    np.savez(tmp_path / "train.npz", X=x, y=y)
    cfg = _config(tmp_path, "fit", path=str(tmp_path / "train.npz"), normalize="sample", val_fraction=0.0)
    cli_main(["fit", "--config", cfg, "--test_after_fit", "false"])
    return str(tmp_path / "fit" / "checkpoints" / "last.ckpt")


def _predict(tmp_path: Path, ckpt: str, path: Path, *args: str) -> list[dict]:
    cfg = _config(tmp_path, "pred", path=str(path))
    cli_main(["predict", "--config", cfg, "--ckpt_path", ckpt, *args])
    found = sorted((tmp_path / "pred").rglob("predictions.csv"), key=lambda p: p.stat().st_mtime)
    with open(found[-1], encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _by_hand(ckpt: str, x: np.ndarray) -> list[int]:
    """The checkpoint's predictions of ``x``, each series z-normalized over its channels and steps (normalize:
    sample)."""
    z = (x - x.mean(axis=(1, 2), keepdims=True)) / x.std(axis=(1, 2), keepdims=True)
    with torch.no_grad():
        return load_model(ckpt)(torch.from_numpy(z.astype(np.float32))).argmax(1).tolist()


def test_another_file_is_read_with_the_checkpoint_s_normalize_and_a_named_other_is_refused(trained, tmp_path):
    x, y = _series(30, 7)
    np.savez(tmp_path / "new.npz", X=x, y=y, X_test=x, y_test=y)
    rows = _predict(tmp_path, trained, tmp_path / "new.npz")  # before: read with normalize: true (its own statistics)
    assert [int(r["pred"]) for r in rows] == _by_hand(trained, x)
    with pytest.raises(ValueError, match=r"ckpt_path: .*last.ckpt was trained on data read otherwise "
                                         r"\(--data.init_args.normalize True asked, 'sample' in the checkpoint\).*"
                                         r"--data.init_args.normalize sample"):
        _predict(tmp_path, trained, tmp_path / "new.npz", "--data.init_args.normalize", "true")


def test_a_new_file_without_x_test_is_predicted_whole(trained, tmp_path, caplog):
    x, y = _series(12, 5)
    np.savez(tmp_path / "new.npz", X=x, y=y)
    with caplog.at_level("INFO"):
        # val_fraction named: the carve, not the validation split (test below), is what this holds to
        rows = _predict(tmp_path, trained, tmp_path / "new.npz", "--data.init_args.val_fraction", "0")  # before: 3 rows
    assert len(rows) == 12 and [int(r["split_index"]) for r in rows] == list(range(12))
    assert [int(r["file_index"]) for r in rows] == list(range(12))
    assert [int(r["target"]) for r in rows] == y.tolist() and [int(r["pred"]) for r in rows] == _by_hand(trained, x)
    assert "every series of new.npz (12) is scored, not a test_fraction carve" in caplog.text


def test_the_checkpoint_s_own_file_is_carved_as_in_fit_and_names_each_row_of_the_file(trained, tmp_path):
    x, y = _series(40, 1)
    _, test = stratified_split(y.astype(str), 0.2, 0 + 1)  # fit's carve: test_fraction 0.2 by seed + 1
    cfg = _config(tmp_path, "pred", path=str(tmp_path / "train.npz"), normalize="sample", val_fraction=0.0)
    cli_main(["predict", "--config", cfg, "--ckpt_path", trained])
    with open(next((tmp_path / "pred").rglob("predictions.csv")), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["split_index"]) for r in rows] == list(range(len(test)))
    assert [int(r["file_index"]) for r in rows] == test.tolist()  # before: no such column
    assert [int(r["target"]) for r in rows] == y[test].tolist()
    assert [int(r["pred"]) for r in rows] == _by_hand(trained, x[test])


def test_test_and_predict_carve_no_validation_split_of_a_small_file(trained, tmp_path):
    x, y = _series(6, 3)  # 3 series a class: 0.1 of each rounds to no validation series
    np.savez(tmp_path / "small.npz", X=x, y=y, X_test=x, y_test=y)
    rows = _predict(tmp_path, trained, tmp_path / "small.npz")  # before: "val_fraction: expected a non-empty ..."
    assert [int(r["pred"]) for r in rows] == _by_hand(trained, x)
    cfg = _config(tmp_path, "test", path=str(tmp_path / "small.npz"))
    acc = float(cli_main(["test", "--config", cfg, "--ckpt_path", trained]).trainer.callback_metrics["test_acc"])
    assert acc == pytest.approx(float(np.mean(np.array(_by_hand(trained, x)) == y)))


def test_a_file_of_other_channels_names_both_counts_and_no_explain(trained, tmp_path):
    x, y = _series(30, 4, channels=3)
    np.savez(tmp_path / "three.npz", X=x, y=y, X_test=x[:9], y_test=y[:9])
    with pytest.raises(ValueError, match=r"data: series of 3 channels, where .*last.ckpt holds a model of 1 "
                                         r"channels: `neuroview predict` builds the model from the data; pass data "
                                         r"of 1 channels$"):
        _predict(tmp_path, trained, tmp_path / "three.npz")  # before: "... or read it ... `neuroview explain --ckpt`"


def _csv(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    """Two channels a row, one after the other, the label last."""
    path.write_text("".join(",".join(f"{v:.5f}" for v in s.reshape(-1)) + f",{c}\n" for s, c in zip(x, y)))
    return path


def test_another_csv_is_read_in_the_checkpoint_s_format_and_a_named_other_channels_is_named(tmp_path):
    x, y = _series(40, 1, channels=2)
    cfg = _config(tmp_path, "fit", path=str(_csv(tmp_path / "train.csv", x, y)), normalize="sample", val_fraction=0.0,
                  channels=2, label_column=-1)
    cfg_text = yaml.safe_load(Path(cfg).read_text())
    cfg_text["data"]["class_path"] = "neuroview.data.CsvDataModule"
    Path(cfg).write_text(yaml.safe_dump(cfg_text))
    cli_main(["fit", "--config", cfg, "--test_after_fit", "false"])
    ckpt = str(tmp_path / "fit" / "checkpoints" / "last.ckpt")
    xn, yn = _series(10, 2, channels=2)
    new = ["--data", "neuroview.data.CsvDataModule", "--data.init_args.path", str(_csv(tmp_path / "new.csv", xn, yn)),
           "--ckpt_path", ckpt, "--trainer.default_root_dir", str(tmp_path / "pred")]
    cli_main(["predict", *new])  # before: read label first, 1 channel ("label_column: expected a column of class ...")
    with open(next((tmp_path / "pred").rglob("predictions.csv")), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["file_index"]) for r in rows] == list(range(10)) and [r["target"] for r in rows] == [str(c) for c in yn]
    assert [int(r["pred"]) for r in rows] == _by_hand(ckpt, xn)
    with pytest.raises(ValueError, match=r"pass data of 2 channels \(the checkpoint's CSV held 2 channels a row, this "
                                         r"one is read as 1: drop --data.init_args.channels, or give 2\)"):
        cli_main(["predict", *new, "--data.init_args.channels", "1"])


def test_check_reads_names_both_channel_counts():
    """`neuroview explain --data` of a file of other channels: torch's "weight of size [17, 2, 97]" named neither count."""
    import torch
    from torch import nn

    from neuroview._batch import check_reads

    model = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="--data gives series of 3 channels, where the model reads 2"):
        check_reads(model, torch.randn(4, 3, 20), None, "--data")
    with pytest.raises(ValueError, match=r"--data gives samples of shape \(2, 2\)"):  # the channels right: as before
        check_reads(model, torch.randn(4, 2, 2), None, "--data")


# ---- the second review: holes of the probe's fix


def test_named_data_options_sees_a_data_file_an_init_args_dict_a_followed_config_and_a_subcommand_key(tmp_path):
    """Options named by these forms were missed, and the checkpoint's value replaced the user's without a word where
    the named value is the class default (normalize: true)."""
    from neuroview.training.evaluated_data import named_data_options

    npz = "neuroview.data.NpzDataModule"
    args = {"path": "x.npz", "normalize": True}  # normalize: the class's default, so named only by the command line
    spec = {"class_path": npz, "init_args": {"path": "x.npz", "normalize": True}}
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "inner.yaml").write_text(yaml.safe_dump({"data": "data.yaml"}))  # relative to the config's folder
    (tmp_path / "top.yaml").write_text(yaml.safe_dump({"predict": {"data": {"class_path": npz,
                                                                            "init_args": {"normalize": True}}}}))
    data = str(tmp_path / "data.yaml")
    for argv in (["--data", data], [f"--data={data}"], ["--data.init_args", '{"normalize": true}'],
                 ["--config", str(tmp_path / "inner.yaml")], ["--config", str(tmp_path / "top.yaml"), "predict"],
                 ["--data.init_args.normalize=true"]):
        assert "normalize" in named_data_options(argv, npz, args), argv  # before: missed by all but the last
    assert "normalize" not in named_data_options(["--data", npz, "--data.init_args.path", "x.npz"], npz, args)
    # a config's section of another sub-command names nothing for this one: the checkpoint's value is taken
    top = ["--config", str(tmp_path / "top.yaml"), "test"]
    assert "normalize" not in named_data_options(top, npz, args, sub="test")


def test_a_data_file_naming_normalize_true_is_refused_not_read_with_the_checkpoint_s(trained, tmp_path):
    x, y = _series(30, 7)
    np.savez(tmp_path / "new.npz", X=x, y=y)
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"class_path": "neuroview.data.NpzDataModule", "init_args": {
        "path": str(tmp_path / "new.npz"), "normalize": True, "batch_size": 8}}))
    with pytest.raises(ValueError, match=r"\(--data.init_args.normalize True asked, 'sample' in the checkpoint\)"):
        cli_main(["predict", "--data", str(tmp_path / "data.yaml"), "--ckpt_path", trained,  # before: read as 'sample'
                  "--trainer.default_root_dir", str(tmp_path / "pred")])


def test_a_named_test_fraction_keeps_the_carve_of_a_new_file(trained, tmp_path, caplog):
    x, y = _series(30, 7)
    np.savez(tmp_path / "new.npz", X=x, y=y)
    _, test = stratified_split(y.astype(str), 0.5, 0 + 1)  # the carve: test_fraction 0.5 by seed + 1
    with caplog.at_level("INFO"):
        rows = _predict(tmp_path, trained, tmp_path / "new.npz", "--data.init_args.test_fraction", "0.5")
    assert [int(r["file_index"]) for r in rows] == test.tolist()  # before: all 30 rows, the 0.5 dropped
    assert [int(r["pred"]) for r in rows] == _by_hand(trained, x[test])
    assert "test_fraction 0.5 named, so a file without a test split of its own is carved" in caplog.text


def test_init_weights_on_the_training_csv_without_its_test_path_is_refused_as_ckpt_path_is(tmp_path):
    def csv_file(name: str, n: int, seed: int) -> str:
        x, y = _series(n, seed)
        (tmp_path / name).write_text("".join(f"{c}," + ",".join(f"{v:.4f}" for v in s[0]) + "\n" for s, c in zip(x, y)))
        return str(tmp_path / name)

    cfg = _config(tmp_path, "fit", path=csv_file("TRAIN.csv", 40, 1), test_path=csv_file("TEST.csv", 20, 2),
                  val_fraction=0.0)
    text = yaml.safe_load(Path(cfg).read_text())
    text["data"]["class_path"] = "neuroview.data.CsvDataModule"
    Path(cfg).write_text(yaml.safe_dump(text))
    cli_main(["fit", "--config", cfg, "--test_after_fit", "false"])
    ckpt = str(tmp_path / "fit" / "checkpoints" / "last.ckpt")
    with pytest.raises(ValueError, match=r"model.init_weights: .*last.ckpt was trained on this data with "
                                         r"--data.init_args.test_path .*TEST.csv; without it `neuroview test` carves"):
        # before: all 40 training series scored whole as the test split, without a word
        cli_main(["test", "--config", cfg, "--data.init_args.test_path", "null", "--model.init_weights", ckpt])


def test_predictions_of_another_loader_name_no_rows_of_the_trainer_s_data_module(tmp_path):
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from neuroview.data import NpzDataModule
    from neuroview.training.callbacks import PredictionWriter
    from neuroview.training.module import NeuroViewModule

    x, y = _series(40, 1)
    np.savez(tmp_path / "f.npz", X=x, y=y)
    dm = NpzDataModule(str(tmp_path / "f.npz"), batch_size=8, val_fraction=0.0)
    m = NeuroViewModule("nv_small_cnn", num_classes=2, in_channels=1, model_kwargs={"widths": [4], "dims": 1})
    tr = pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False,
                    enable_model_summary=False, enable_checkpointing=False, callbacks=[PredictionWriter(str(tmp_path))])
    tr.fit(m, datamodule=dm)

    def written(**how) -> list[dict]:
        tr.predict(m, **how)
        with open(tmp_path / "predictions.csv", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    new = TensorDataset(torch.from_numpy(_series(6, 9)[0]), torch.zeros(6, dtype=torch.long))
    rows = written(dataloaders=DataLoader(new, batch_size=3))
    assert len(rows) == 6 and "file_index" not in rows[0]  # before: rows 2, 15, 19, ... of f.npz's carve
    assert "file_index" not in written(dataloaders=dm.train_dataloader())[0]
    rows = written(datamodule=dm)  # its own test split: named by the file's rows
    assert [int(r["file_index"]) for r in rows] == dm.test_rows.tolist()


def test_predict_with_the_run_s_saved_config_scores_a_new_file_whole(trained, tmp_path, caplog):
    """A run's config.yaml lists every init arg, the class default test_fraction 0.2 too: read as named, a new file of
    30 series was carved to 6; a default named on the command line still carves, and the log says which."""
    saved = next((tmp_path / "fit").rglob("config.yaml"))
    assert yaml.safe_load(saved.read_text())["data"]["init_args"]["test_fraction"] == 0.2
    x, y = _series(30, 7)
    np.savez(tmp_path / "new.npz", X=x, y=y)
    base = ["predict", "--config", str(saved), "--ckpt_path", trained,
            "--data.init_args.path", str(tmp_path / "new.npz")]

    def rows(root: str, *extra: str) -> list[dict]:
        cli_main([*base, "--trainer.default_root_dir", str(tmp_path / root), *extra])
        # the newest: the saved config's logger writes into the run's folder, whatever default_root_dir says
        with open(max(tmp_path.rglob("predictions.csv"), key=lambda p: p.stat().st_mtime), encoding="utf-8") as f:
            return list(csv.DictReader(f))

    whole = rows("p1")
    assert [int(r["file_index"]) for r in whole] == list(range(30))  # before: 6 rows
    assert [int(r["pred"]) for r in whole] == _by_hand(trained, x)
    with caplog.at_level("INFO"):
        assert len(rows("p2", "--data.init_args.test_fraction", "0.2")) == 6
    assert "test_fraction 0.2 named, so a file without a test split" in caplog.text
    assert "not every series of it (on the command line): drop test_fraction" in caplog.text


def test_fine_tuning_from_the_run_s_own_last_ckpt_in_its_folder_reads_it_by_its_kept_name(trained, tmp_path):
    """A new run into the folder keeps the earlier last.ckpt aside as last-v1.ckpt before the weights load: its
    --model.init_weights last.ckpt was "missing"; it is read from the name it was kept as."""
    cfg = _config(tmp_path, "fit", path=str(tmp_path / "train.npz"), normalize="sample", val_fraction=0.0)
    cli = cli_main(["fit", "--config", cfg, "--test_after_fit", "false", "--trainer.max_epochs", "1",
                    "--model.init_weights", trained])  # before: "init_weights: weight file ... last.ckpt is missing"
    kept = tmp_path / "fit" / "checkpoints" / "last-v1.ckpt"
    assert cli.model.hparams.init_weights == str(kept) and kept.is_file()
    saved = max((tmp_path / "fit").rglob("config.yaml"), key=lambda f: f.stat().st_mtime)  # this run's own record
    assert f"init_weights: {kept}" in saved.read_text()  # names the file it read (the review: the moved path)


def test_another_val_fraction_on_test_names_what_it_changes_not_training_series_in_the_test_split(trained, tmp_path):
    """The test split is carved before the validation split (by seed + 1, of the whole file): another val_fraction
    leaves its series as they were, but the training part's statistics (normalize: true, the padded length) read them
    otherwise, so `test` is still refused; the error said the test split "may hold training series"."""
    cfg = _config(tmp_path, "t", path=str(tmp_path / "train.npz"), normalize="sample", val_fraction=0.25)
    with pytest.raises(ValueError, match=r"\(--data.init_args.val_fraction 0.25 asked, 0.0 in the checkpoint\); "
                                         r"`neuroview test` would cut the splits otherwise, and its test split is the "
                                         r"same series, read otherwise \(by the statistics and series length of another "
                                         r"training part\): give the checkpoint's options "
                                         r"\(--data.init_args.val_fraction 0.0\)"):
        cli_main(["test", "--config", cfg, "--ckpt_path", trained])
