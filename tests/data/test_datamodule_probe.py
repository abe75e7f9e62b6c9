"""A probe of the data modules (issue 14b, datamodules): a fixed-shape set read as a model of stretched series
carries its resample and reports the length it serves; the hyper-parameters a checkpoint records are plain Python
(weights_only loads) and only the arguments the class takes; MNIST's and CIFAR-10's ``root`` expands ``~`` and is
recorded absolute; the batch-size setters check what the constructor checks. Expected values come from the files
written here, not from the modules' code."""

from __future__ import annotations

import inspect
import io
import json
import os
import pickle
import types
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from jsonargparse import Namespace

from neuroview.data import (ArrayDataModule, CIFAR10DataModule, DigitsDataModule, MNIST1DDataModule, MNISTDataModule,
                            NpzDataModule, read_as_trained)


def _small_mnist1d(monkeypatch, n: int = 60, n_test: int = 30) -> None:
    """MNIST-1D's loader answering a small set of its shape (40 steps, labels 0 to 9), without the ~3 s generation."""
    rng = np.random.default_rng(0)
    small = {"x": rng.normal(size=(n, 40)), "y": np.arange(n) % 10,
             "x_test": rng.normal(size=(n_test, 40)), "y_test": np.arange(n_test) % 10}
    monkeypatch.setattr(MNIST1DDataModule, "_generate", lambda self: small)


def _npz_of(path: Path, steps: int, n: int = 40) -> Path:
    rng = np.random.default_rng(steps)
    np.savez(path, X=rng.normal(size=(n, 1, steps)).astype(np.float32), y=np.arange(n) % 10)
    return path


# ------------------------------------------------------------------ 1: a stretched model's length
def test_mnist1d_read_as_a_model_of_stretched_series_is_stretched_and_reports_the_served_length(tmp_path, monkeypatch):
    """dm.max_len said 40 (FIXED_SHAPE) while the batches were 60 steps (an RNN was then refused on it), and
    MNIST1DDataModule took no resample: the CLI dropped the checkpoint's and zero-padded."""
    _small_mnist1d(monkeypatch)
    spec = {"class_path": "neuroview.data.NpzDataModule",
            "init_args": {"path": str(_npz_of(tmp_path / "l60.npz", 60)), "resample": True, "normalize": "series",
                          "val_fraction": 0.0}}
    assert MNIST1DDataModule(cache=False, resample=True).resample is True  # an argument of its own now
    dm = MNIST1DDataModule(cache=False, val_fraction=0.0)
    read_as_trained(dm, spec)
    assert dm.max_len == 60 and dm.resample is True and dm.hparams["resample"] is True  # before any batch is read
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    assert len(batch) == 2 and tuple(batch[0].shape) == (30, 1, 60)  # (x, y): stretched, nothing padded to mask
    assert dm.max_len == batch[0].shape[-1] and dm.in_channels == batch[0].shape[1]
    assert bool((batch[0][:, :, 40:].abs().sum(-1) > 0).all())  # no zeros where the model read stretched steps


def test_a_padded_model_s_length_is_reported_too(tmp_path, monkeypatch):
    """A model of longer padded series: its length is what the batches (masked past 40) and dm.max_len say."""
    _small_mnist1d(monkeypatch)
    spec = {"class_path": "neuroview.data.NpzDataModule",
            "init_args": {"path": str(tmp_path / "l60.npz"), "normalize": "series", "val_fraction": 0.0}}
    x = np.zeros((50, 1, 60), np.float32)
    x[:, :, :50] = np.random.default_rng(1).normal(size=(50, 1, 50))
    np.savez(tmp_path / "l60.npz", X=x, y=np.arange(50) % 10, lengths=np.full(50, 50))  # variable length: padded
    dm = MNIST1DDataModule(cache=False, val_fraction=0.0)
    read_as_trained(dm, spec)
    dm.setup("test")
    x, lengths, _ = next(iter(dm.test_dataloader()))
    assert dm.max_len == 50 == x.shape[-1] and lengths.tolist() == [40] * len(lengths)


class NoResample(ArrayDataModule):
    """A data module of a user's that takes no resample (nor **kwargs)."""

    def __init__(self, *, batch_size: int = 8, normalize=True):
        super().__init__(batch_size=batch_size, normalize=normalize)

    def load(self):
        x = np.random.default_rng(0).normal(size=(20, 1, 40)).astype(np.float32)
        return {"train": (x, np.arange(20) % 2), "test": (x, np.arange(20) % 2)}


class StretchesItself(NoResample):
    """A user's module that stretches by itself (resample fixed in its super().__init__ call)."""

    def __init__(self, *, batch_size: int = 8):
        ArrayDataModule.__init__(self, batch_size=batch_size, resample=True)


def test_a_checkpoint_s_resample_that_the_data_module_does_not_read_so_is_refused_by_name(tmp_path):
    """evaluated_data filled only the options the asked class takes: resample: true was dropped without a word. Judged
    on the module as made (the review): a subclass that stretches by itself is read as it reads, and its record keeps
    its resample (the first fix dropped what its signature lacked, and other files were then read unstretched)."""
    from neuroview.training.data_arg import read_evaluated_like

    ckpt = tmp_path / "m.ckpt"
    saved = {"_class_path": "neuroview.data.NpzDataModule", "path": str(tmp_path / "l60.npz"), "resample": True,
             "normalize": True}
    torch.save({"datamodule_hyper_parameters": saved}, ckpt)
    with pytest.raises(ValueError, match=r"ckpt_path: .*m\.ckpt was trained on data read with resample true, and "
                                         r"NoResample reads it unstretched"):
        read_evaluated_like(str(ckpt), NoResample())
    read_evaluated_like(str(ckpt), StretchesItself())  # stretches as the model's data was: read as it reads
    assert StretchesItself().hparams["resample"] is True  # kept in its record, though its signature lacks it
    saved["resample"] = False  # read as any data module reads: nothing to carry
    torch.save({"datamodule_hyper_parameters": saved}, ckpt)
    read_evaluated_like(str(ckpt), NoResample())


# ------------------------------------------------------------------ 2: plain numbers in the checkpoint
@pytest.mark.parametrize("kw, key, want", [
    (dict(normalize=np.True_), "normalize", True), (dict(resample=np.False_), "resample", False),
    (dict(normalize=1), "normalize", 1), (dict(val_fraction=np.float64(0.2)), "val_fraction", 0.2),
    (dict(test_fraction=Fraction(1, 5)), "test_fraction", 0.2),
    (dict(val_fraction=Decimal("0.2")), "val_fraction", 0.2),
    (dict(val_fraction=np.array(0.2)), "val_fraction", 0.2)])
def test_numbers_the_constructor_accepts_are_recorded_plain_and_load_with_weights_only(tmp_path, kw, key, want):
    """Kept as given (np.True_, a Fraction ...), they made every weights_only load of the checkpoint fail (Lightning's
    load_from_checkpoint; checkpoint_data and checkpoint_classes then answered None)."""
    _npz_of(tmp_path / "f.npz", 10)
    dm = NpzDataModule(str(tmp_path / "f.npz"), **kw)
    for hp in (dm.hparams, dm.hparams_initial):  # the checkpoint's record, and the one loggers write
        assert hp[key] == want and type(hp[key]) is type(want)
        buf = io.BytesIO()
        torch.save({"datamodule_hyper_parameters": dict(hp)}, buf)
        buf.seek(0)
        assert torch.load(buf, weights_only=True)["datamodule_hyper_parameters"][key] == want


# ------------------------------------------------------------------ 3: the recorded arguments rebuild the module
@pytest.mark.parametrize("cls", [DigitsDataModule, MNIST1DDataModule, MNISTDataModule, CIFAR10DataModule])
def test_the_recorded_arguments_rebuild_the_module(cls):
    """save_hyperparameters collected the base class's resample, which the class did not take: Cls(**dm.hparams)
    was a bare TypeError. The built-in modules take every base argument now (a user's subclass keeps its whole
    record, rebuilt as Lightning's load_from_checkpoint rebuilds it: by the arguments its class takes)."""
    dm = cls(**({"cache": False} if cls is MNIST1DDataModule else {}))
    assert set(dm.hparams) <= set(inspect.signature(cls.__init__).parameters)
    assert dict(type(dm)(**dm.hparams).hparams) == dict(dm.hparams)


def test_the_data_a_sparsify_callback_records_is_rebuilt():
    from neuroview.training.sparse_callback import _built
    from neuroview.zoo.evaluate import make_datamodule

    dm = DigitsDataModule(batch_size=32, seed=3)
    spec = json.loads(_built(types.SimpleNamespace(hparams={}), dm)["neuroview.data"])
    built = make_datamodule(spec)
    assert type(built) is DigitsDataModule and built.seed == 3 and built.batch_size == 32


# ------------------------------------------------------------------ 4: root
def _cifar_batches(folder: Path) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": list(range(10))}
        (folder / name).write_bytes(pickle.dumps(batch))


def test_image_roots_expand_the_home_folder_and_are_recorded_absolute(tmp_path, monkeypatch):
    """root="~/cif" was read literally: files there were called missing ("pass download=True", which would have
    written into ./~/cif), and a relative root was recorded relative to the working folder."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    _cifar_batches(home / "cif" / "cifar-10-batches-py")
    dm = CIFAR10DataModule(root="~/cif", val_fraction=0.2)
    assert dm.root == home / "cif" and dm.hparams["root"] == str(home / "cif")
    dm.setup("fit")
    assert dm.split_sizes() == {"train": 40, "val": 10, "test": 10}
    assert MNISTDataModule(root="~/data").root == home / "data"
    monkeypatch.chdir(tmp_path)
    assert MNISTDataModule(root="data").hparams["root"] == str(tmp_path / "data")
    assert CIFAR10DataModule(root=Path("data")).hparams["root"] == os.path.join(str(tmp_path), "data")
    with pytest.raises(ValueError, match=r"root: expected a folder path, got None"):
        MNISTDataModule(root=None)


# ------------------------------------------------------------------ 5: the batch-size setters
@pytest.mark.parametrize("name, value", [("batch_size", 0), ("batch_size", True), ("batch_size", 2.5),
                                         ("batch_size", None), ("eval_batch_size", 0), ("eval_batch_size", -2),
                                         ("eval_batch_size", False), ("eval_batch_size", "auto")])
def test_the_batch_size_setters_check_what_the_constructor_checks(name, value):
    """dm.eval_batch_size = 0 was read as unset (4 x batch_size); dm.batch_size = 0, True or 2.5 failed later in
    torch's DataLoader, naming no argument."""
    dm = DigitsDataModule(batch_size=16)
    with pytest.raises(ValueError, match=rf"{name}: expected"):
        setattr(dm, name, value)
    assert dm.batch_size == 16 and dm.eval_batch_size == 64  # unchanged


def test_the_batch_size_setters_take_what_the_constructor_takes():
    dm = DigitsDataModule(batch_size=16)
    dm.batch_size, dm.eval_batch_size = 32, 10
    assert dm.batch_size == 32 and dm.eval_batch_size == 10 and dm.test_dataloader().batch_size == 10
    dm.batch_size, dm.eval_batch_size = "auto", None
    assert dm.batch_size == 64 and dm.eval_batch_size == 256  # a tenth of 1,293 training images, within [4, 64]


def test_lightning_s_batch_size_tuner_still_sets_the_batch_size(tmp_path):
    import pytorch_lightning as pl
    from pytorch_lightning.tuner import Tuner

    class M(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(64, 10)

        def training_step(self, b, i):
            return torch.nn.functional.cross_entropy(self.lin(b[0].flatten(1)), b[-1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), 0.1)

    dm = DigitsDataModule(batch_size=4)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=str(tmp_path), accelerator="cpu")
    found = Tuner(trainer).scale_batch_size(M(), datamodule=dm, mode="power", init_val=4, max_trials=2,
                                            steps_per_trial=1)
    assert found == dm.batch_size == 8 and dm._batch_size == 8  # 4, then 8: each set through the setter


def test_neuroview_test_of_mnist1d_on_a_stretched_rnn_carries_resample_and_builds_it_at_its_length(
        tmp_path, monkeypatch, caplog):
    """`neuroview test --ckpt_path <nv_gru of 60 stretched steps> --data neuroview.data.MNIST1DDataModule` refused the
    model (`data: series of 40 steps ...`: dm.max_len said 40), and the log named no resample (it was dropped)."""
    import logging

    import yaml

    from neuroview.training.cli import cli_main

    _small_mnist1d(monkeypatch)
    cfg = {"seed_everything": 0, "torch_threads": 1,
           "model": {"arch": "nv_gru", "model_kwargs": {"hidden_size": 4}, "lr": 0.05, "scheduler": "none"},
           "data": {"class_path": "neuroview.data.NpzDataModule",
                    "init_args": {"path": str(_npz_of(tmp_path / "l60.npz", 60, n=50)), "batch_size": 16,
                                  "val_fraction": 0.0, "normalize": "series", "resample": True}},
           "trainer": {"max_epochs": 1, "accelerator": "cpu", "enable_progress_bar": False,
                       "enable_model_summary": False, "default_root_dir": str(tmp_path / "run")}}
    (tmp_path / "fit.yaml").write_text(yaml.safe_dump(cfg))
    cli_main(["fit", "--config", str(tmp_path / "fit.yaml"), "--test_after_fit", "false"])
    last = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    with caplog.at_level(logging.INFO):
        cli = cli_main(["test", "--ckpt_path", last, "--model.arch", "nv_gru",
                        "--data", "neuroview.data.MNIST1DDataModule", "--data.init_args.cache", "false", "--trainer.accelerator", "cpu",
                        "--trainer.default_root_dir", str(tmp_path / "t"), "--trainer.enable_progress_bar", "false"])
    assert "resample true" in caplog.text
    assert cli.datamodule.resample is True and cli.datamodule.max_len == 60 == cli.model.hparams.max_len
    assert 0 <= float(cli.trainer.callback_metrics["test_acc"]) <= 1
