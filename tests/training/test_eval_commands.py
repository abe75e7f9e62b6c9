"""`neuroview test|validate|predict` score what they say: the checkpoint's splits (other split options on its own
data are refused), the weights `--model.init_weights` names (it was loaded by `fit` only), and the network the
run's `Sparsify` callback makes (predict wrote the dense network's predictions). Expected values are computed
here from the files, not by the commands' code."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import yaml

from neuroview.data import NpzDataModule
from neuroview.training.cli import cli_main
from neuroview.training.module import load_model, load_module

SPARSIFY = "--trainer.callbacks+=neuroview.training.sparse_callback.Sparsify"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def _npz(path: Path, n: int = 90) -> Path:
    """Three classes, two channels of 16 steps, no X_test: the test split is carved by `seed`."""
    rng = np.random.default_rng(0)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 2, 16)).astype(np.float32)
    x[:, 0] += y[:, None] * 1.5
    np.savez(path, X=x, y=y)
    return path


def _config(tmp_path: Path, arch: str = "small_cnn", widths=(4,)) -> str:
    cfg = {"seed_everything": 0, "torch_threads": 1,
           "model": {"arch": arch, "model_kwargs": {"widths": list(widths), "dims": 1}, "lr": 0.05, "scheduler": "none"},
           "data": {"class_path": "neuroview.data.NpzDataModule",
                    "init_args": {"path": str(_npz(tmp_path / "d.npz")), "batch_size": 16, "val_fraction": 0.2,
                                  "test_fraction": 0.3, "normalize": False}},
           "trainer": {"max_epochs": 3, "accelerator": "cpu", "enable_progress_bar": False,
                       "enable_model_summary": False, "default_root_dir": str(tmp_path / "run")}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _fit(cfg: str, *extra: str) -> str:
    cli_main(["fit", "--config", cfg, "--test_after_fit", "false", *extra])
    return str(Path(yaml.safe_load(Path(cfg).read_text())["trainer"]["default_root_dir"]) / "checkpoints" / "last.ckpt")


def _rows(loader) -> set[tuple]:
    return {tuple(np.round(x.flatten().numpy(), 5)) for b in loader for x in b[0]}


def _scores(net, loader) -> tuple[float, float, list[int]]:
    with torch.no_grad():
        batches = [(net(b[0]), b[-1]) for b in loader]
    logits, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    return (logits.argmax(1) == y).float().mean().item(), F.cross_entropy(logits, y).item(), logits.argmax(1).tolist()


def _predictions(root: Path) -> list[int]:
    with open(next(root.rglob("predictions.csv"))) as f:
        return [int(r["pred"]) for r in csv.DictReader(f)]


def test_a_checkpoint_on_its_own_data_with_other_split_options_is_refused(tmp_path):
    """Trained with seed 3, scored with the config's seed 0: 28 of 45 "test" series of a probe were training series,
    and random labels scored 0.778. The same options, other data, or options that cut no split still run."""
    cfg = _config(tmp_path)
    last = _fit(cfg, "--data.init_args.seed", "3")
    splits = {}
    for seed in (0, 3):
        dm = NpzDataModule(str(tmp_path / "d.npz"), batch_size=16, val_fraction=0.2, test_fraction=0.3, seed=seed,
                           normalize=False)
        dm.setup()
        splits[seed] = {"train": _rows(dm.train_dataloader()), "test": _rows(dm.test_dataloader())}
    assert splits[0]["test"] & splits[3]["train"]  # why: seed 0's test split holds series seed 3 trained on
    for sub, split in (("test", "test"), ("validate", "validation"), ("predict", r"test \(predicted\)")):
        with pytest.raises(ValueError, match=rf"ckpt_path: .*last.ckpt was trained on this data with other split "
                                             rf"options \(--data.init_args.seed 0 asked, 3 in the checkpoint\); "
                                             rf"`neuroview {sub}` would cut the splits otherwise, and its {split} split "
                                             rf"may hold training series, scored as if unseen: give the checkpoint's "
                                             rf"options \(--data.init_args.seed 3\), or other data"):
            cli_main([sub, "--config", cfg, "--ckpt_path", last])
    cli = cli_main(["test", "--config", cfg, "--ckpt_path", last, "--data.init_args.seed", "3",
                    "--data.init_args.eval_batch_size", "7"])  # its own splits; batch sizes cut no split
    acc, _, _ = _scores(load_model(last), cli.datamodule.test_dataloader())
    assert cli.trainer.callback_metrics["test_acc"].item() == pytest.approx(acc)
    # a copy of the file is the same data: refused as the file itself (a probe's copy scored 12 of its 18 "test"
    # series from the training split, as unseen)
    copy = str(shutil.copy(tmp_path / "d.npz", tmp_path / "copy.npz"))
    with pytest.raises(ValueError, match=r"was trained on this data with other split options \(--data.init_args.seed 0"):
        cli_main(["test", "--config", cfg, "--ckpt_path", last, "--data.init_args.path", copy])
    with np.load(tmp_path / "d.npz") as f:  # other data may be scored with any options
        np.savez(tmp_path / "other.npz", X=f["X"] + 0.01, y=f["y"])
    cli = cli_main(["test", "--config", cfg, "--ckpt_path", last, "--data.init_args.path", str(tmp_path / "other.npz")])
    assert "test_acc" in cli.trainer.callback_metrics


def test_init_weights_is_what_test_validate_and_predict_score(tmp_path):
    """`neuroview test --model.init_weights <zoo weights>` scored the untrained network (0.100 on digits): only
    `fit` loaded it."""
    cfg = _config(tmp_path)
    last = _fit(cfg)
    dm = NpzDataModule(str(tmp_path / "d.npz"), batch_size=16, val_fraction=0.2, test_fraction=0.3, normalize=False)
    dm.setup()
    net = load_model(last)
    test_acc, test_loss, test_preds = _scores(net, dm.test_dataloader())
    val_acc, _, _ = _scores(net, dm.val_dataloader())
    named = ["--config", cfg, "--model.init_weights", last]
    got = cli_main(["test", *named]).trainer.callback_metrics
    assert test_acc > 0.5  # trained: chance is 1/3
    assert (got["test_acc"].item(), got["test_loss"].item()) == pytest.approx((test_acc, test_loss), abs=1e-6)
    assert cli_main(["validate", *named]).trainer.callback_metrics["val_acc"].item() == pytest.approx(val_acc)
    cli_main(["predict", *named, "--trainer.default_root_dir", str(tmp_path / "pred")])
    assert _predictions(tmp_path / "pred") == test_preds


def test_a_module_from_a_checkpoint_never_reloads_the_file_it_started_from(tmp_path):
    """A run started from `--model.init_weights a.ckpt` keeps that path in its hyper-parameters: its checkpoint,
    resumed, tested or read back with load_module, keeps its own weights, and needs a.ckpt no more (a resume read
    it, and failed once it was gone)."""
    cfg = _config(tmp_path)
    _fit(cfg, "--trainer.default_root_dir", str(tmp_path / "a"))
    start = (tmp_path / "a" / "checkpoints" / "last.ckpt").rename(tmp_path / "a.ckpt")
    last = _fit(cfg, "--model.init_weights", str(start), "--trainer.max_epochs", "1")
    trained = torch.load(last, weights_only=True)["state_dict"]
    module = load_module(last)
    dm = NpzDataModule(str(tmp_path / "d.npz"), batch_size=16, val_fraction=0.2, test_fraction=0.3, normalize=False)
    pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False).validate(module, dm)
    assert all(torch.equal(v, trained[k]) for k, v in module.state_dict().items())  # not a.ckpt's weights
    start.unlink()
    cli = cli_main(["test", "--config", cfg, "--ckpt_path", last])
    assert cli.model.hparams.init_weights == str(start) and "test_acc" in cli.trainer.callback_metrics
    cli = cli_main(["fit", "--config", cfg, "--model.init_weights", str(start), "--ckpt_path", last,
                    "--test_after_fit", "false"])
    assert cli.trainer.current_epoch == 3  # resumed from epoch 1 to max_epochs 3, without a.ckpt


def test_sparsify_gives_predict_the_sparse_network_and_says_validate_is_dense(tmp_path):
    """`neuroview test` scored the sparse network and `neuroview predict` (same config, checkpoint and split) wrote
    the dense network's predictions, unsaid."""
    cfg = _config(tmp_path, "nv_small_cnn", (8, 16))
    last = _fit(cfg)
    dense = load_model(last)
    cli = cli_main(["predict", "--config", cfg, SPARSIFY, "--ckpt_path", last,
                    "--trainer.default_root_dir", str(tmp_path / "pred")])
    sparse = cli.model.model
    assert sparse.sparsity_path is not None and (sparse.classifier.weight == 0).any()
    assert (dense.classifier.weight != 0).all()
    _, _, preds = _scores(sparse.eval(), cli.datamodule.test_dataloader())
    assert _predictions(tmp_path / "pred") == preds
    assert next((tmp_path / "pred").rglob("sparse.safetensors")).is_file()
    with pytest.warns(UserWarning, match=r"Sparsify: applies to test and predict, not validate: `validate` scores the "
                                         r"dense network"):
        cli = cli_main(["validate", "--config", cfg, SPARSIFY, "--ckpt_path", last])
    assert getattr(cli.model.model, "sparsity_path", None) is None


@pytest.mark.parametrize("sub", ["test", "validate", "predict"])
def test_data_whose_classes_are_not_the_checkpoint_s_is_refused_by_name(tmp_path, sub):
    """Trained on labels 0, 1, 2 and scored on the same series with class 0 renamed 7: the data module numbers 1, 2, 7
    as 0, 1, 2, so every class-1 series read as class 0 (test_acc 0.33 for a model that had them all right). Data of
    the model's own classes, in another file, still runs."""
    cfg = _config(tmp_path)
    last = _fit(cfg)
    with np.load(tmp_path / "d.npz") as f:
        x, y = f["X"], f["y"]
    np.savez(tmp_path / "renamed.npz", X=x, y=np.where(y == 0, 7, y))
    with pytest.raises(ValueError, match=r"data: its classes, in order, are \['1', '2', '7'\]; the model's outputs are "
                                         r"\['0', '1', '2'\]"):
        cli_main([sub, "--config", cfg, "--ckpt_path", last, "--data.init_args.path", str(tmp_path / "renamed.npz")])
    np.savez(tmp_path / "same.npz", X=x, y=y)
    cli_main([sub, "--config", cfg, "--ckpt_path", last, "--data.init_args.path", str(tmp_path / "same.npz")])
