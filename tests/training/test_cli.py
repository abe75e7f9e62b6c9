"""`neuroview fit|validate|test|predict`: recipes parse, runs save what they should, killed runs resume, DDP runs."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from neuroview.data import ArrayDataModule
from neuroview.training.cli import cli_main
from neuroview.training.module import load_model

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
# a few batches of a tiny network: what is tested is the plumbing, not the accuracy
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def metrics(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_recipes_exist():
    names = {p.stem for p in RECIPES}
    assert {"digits_nv_small_cnn", "digits_small_cnn", "mnist1d_nv_cnn1d", "mnist1d_cnn1d", "gunpoint_nv_gru", "gunpoint_gru",
            "japanesevowels_nv_lstm", "japanesevowels_lstm", "cifar10_nv_resnet18"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_parses_and_builds_its_model_and_data(recipe, tmp_path):
    cli = cli_main(["fit", "--config", str(recipe), "--trainer.default_root_dir", str(tmp_path)], run=False)
    dm, net = cli.datamodule, cli.model.model
    assert isinstance(dm, ArrayDataModule) and isinstance(net, nn.Module)
    # the data's shape was linked into the model: the recipe states it nowhere
    assert cli.model.hparams.num_classes == dm.num_classes
    assert cli.model.hparams.in_channels == dm.in_channels and cli.model.hparams.max_len == dm.max_len
    assert "num_classes" not in recipe.read_text()
    if "cifar10" in recipe.stem or "mnist1d" in recipe.stem:
        return  # no CIFAR files here; MNIST-1D generation is covered by the data tests
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    cli.model.build(batch[0])  # what setup does: a NeuroView-CNN finds its sites on the first batch
    assert cli.model.classifier.out_features == dm.num_classes
    assert cli.model.training_step(batch, 0).isfinite()


UCR_DEFAULTS = ["ucr_nv_cnn", "ucr_cnn", "ucr_nv_rnn", "ucr_rnn"]


@pytest.mark.parametrize("recipe", UCR_DEFAULTS)
@pytest.mark.parametrize("dataset", ["JapaneseVowels", "ArrowHead"])
def test_default_time_series_recipes_run_unchanged_on_any_set(recipe, dataset, tmp_path):
    # variable length (12 channels, 9 classes) and long univariate series (251 steps, 3 classes):
    # the recipe is the same file, only the set's name differs; 3 steps with the final weights tested
    cli = cli_main(["fit", "--config", str(ROOT / "recipes" / f"{recipe}.yaml"), "--data.init_args.name", dataset,
                    "--trainer.default_root_dir", str(tmp_path), "--trainer.max_steps", "3",
                    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    dm, hp = cli.datamodule, cli.model.hparams
    assert (hp.num_classes, hp.in_channels, hp.max_len) == (dm.num_classes, dm.in_channels, dm.max_len)
    assert dm.batch_size == max(4, dm.split_sizes()["train"] // 10) and "val" not in dm.split_sizes()
    assert cli.trainer.global_step == 3 and (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert 0.0 <= cli.trainer.callback_metrics["test_acc"] <= 1.0
    # variable-length series are stretched to the longest (an average over positions, and per-step
    # weights, then read the series and not its padding): batches carry no lengths
    assert not dm.variable_length and dm.max_len == (26 if dataset == "JapaneseVowels" else 251)
    net = cli.model.model
    # NeuroView LITE trains five members (chosen on validation, benchmarks/ucr_ensemble.py); LITE one
    assert len(getattr(net, "members", [net])) == (5 if recipe == "ucr_nv_cnn" else 1)
    if "rnn" in recipe:  # a step reads a window: the longest series is at most max_steps steps
        assert net.window == -(-dm.max_len // hp.model_kwargs["max_steps"])


def test_validate_without_a_validation_split_is_a_clear_error():
    # val_fraction=0 leaves no validation batch for a lazy NeuroView-CNN to find its sites on: a ValueError (the
    # command prints it in one line, exit 2), where a RuntimeError's traceback advised Python calls
    from types import SimpleNamespace

    from neuroview.training.module import NeuroViewModule

    module = NeuroViewModule("nv_small_cnn", 10, 1, {"widths": [8, 16]})
    module._trainer = SimpleNamespace(datamodule=SimpleNamespace(val_dataloader=lambda: []))
    with pytest.raises(ValueError, match="no val batch to find the network's sites on .*val_fraction=0.*neuroview test"):
        module._first_batch("validate")


@pytest.mark.parametrize("sub", ["validate", "test", "predict"])
def test_evaluating_without_a_checkpoint_or_weights_is_refused(tmp_path, sub):
    """`neuroview test --config R` with neither --ckpt_path nor --model.init_weights scored the untrained network
    (test_acc 0.100 on digits) and exited 0."""
    from neuroview import cli

    assert cli.main([sub, "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path)]) == 2
    assert not (tmp_path / "predictions.csv").exists()


def test_ckpt_path_best_reads_the_runs_best_checkpoint(tmp_path, capsys):
    """`neuroview test --ckpt_path best` (outside the fit that made it) was Lightning's ValueError traceback, exit 1,
    beside a folder holding best-*.ckpt; now that file is read, and a folder with none is named."""
    from neuroview import cli

    assert cli.main(["test", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", "best"]) == 2
    assert "'best' reads the best checkpoint" in capsys.readouterr().err


def test_print_config_shows_overrides(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        cli_main(["fit", "--config", DIGITS, "--data.batch_size", "128", "--trainer.max_epochs", "3", "--print_config"])
    assert e.value.code in (0, None)
    out = capsys.readouterr().out
    assert "arch: nv_small_cnn" in out and "batch_size: 128" in out and "max_epochs: 3" in out


def test_fit_saves_config_checkpoints_and_tests_then_test_and_predict(tmp_path):
    root = tmp_path / "run"
    cli = cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "1",
                    "--data.batch_size", "32", *QUICK])
    assert (root / "checkpoints" / "last.ckpt").is_file() and list((root / "checkpoints").glob("best-epoch000-*.ckpt"))
    log = root / "logs" / "version_0"
    config = (log / "config.yaml").read_text()
    assert "batch_size: 32" in config and "max_epochs: 1" in config  # the resolved config of this run
    assert (log / "confusion_matrix.csv").is_file() and "test_acc" in cli.trainer.callback_metrics  # tested after fit
    assert {"train_loss_epoch", "val_acc", "val_f1", "test_acc", "test_f1"} <= set(metrics(log / "metrics.csv")[0])

    best = str(next((root / "checkpoints").glob("best-*.ckpt")))
    test = cli_main(["test", "--config", DIGITS, "--trainer.default_root_dir", str(root), "--ckpt_path", best, *QUICK[2:]])
    assert 0.0 <= float(test.trainer.callback_metrics["test_acc"]) <= 1.0
    by_name = cli_main(["test", "--config", DIGITS, "--trainer.default_root_dir", str(root), "--ckpt_path", "best", *QUICK[2:]])
    assert by_name.trainer.callback_metrics["test_acc"] == test.trainer.callback_metrics["test_acc"]  # the same file
    cli_main(["predict", "--config", DIGITS, "--trainer.default_root_dir", str(root), "--ckpt_path", best, *QUICK[2:]])
    rows = metrics(next(root.glob("logs/version_*/predictions.csv")))
    assert len(rows) == 359 and {"target", "pred", "prob_9"} <= set(rows[0])
    assert isinstance(load_model(best), nn.Module)


KILLER = '''
import os, signal
import pytorch_lightning as pl

class KillAtEpoch(pl.Callback):
    """SIGKILL the process mid-epoch, before batch `batch` of epoch `epoch` (earlier batches of
    that epoch have taken their optimizer steps): nothing gets to clean up, as with a lost node."""
    def __init__(self, epoch: int, batch: int = 1):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)
'''


def test_killed_run_resumes_from_last_checkpoint(tmp_path):
    (tmp_path / "killer.py").write_text(KILLER)
    kill = tmp_path / "kill.yaml"
    kill.write_text("trainer:\n  callbacks:\n    - class_path: killer.KillAtEpoch\n      init_args: {epoch: 2, batch: 1}\n")
    root = tmp_path / "run"
    args = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "4", *QUICK]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "neuroview.cli", *args, "--config", str(kill)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    last = root / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 1  # epochs 0 and 1 done, killed one batch into epoch 2

    cli = cli_main([*args, "--ckpt_path", "last", "--test_after_fit", "false"])
    assert cli.trainer.current_epoch == 4 and cli.trainer.global_step == 4 * 3
    resumed = metrics(root / "logs" / "version_1" / "metrics.csv")
    assert sorted({int(r["epoch"]) for r in resumed if r["val_acc"]}) == [2, 3]  # continued, not restarted
    assert torch.load(last, weights_only=True)["epoch"] == 3


def test_a_resume_with_other_model_options_is_refused_by_name(tmp_path):
    """`fit --ckpt_path` with a model option the run was not trained with: Lightning rebuilt the model from the
    checkpoint's hyper-parameters and dropped the option (a path), or loaded the weights into the network the
    command line built (`last`), without a word."""
    root = tmp_path / "run"
    # no schedule that reads the budget: a resume may then train on for more epochs (a cosine's is refused:
    # tests/training/test_resume_checks.py)
    args = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "1",
            "--test_after_fit", "false", "--model.scheduler", "none", *QUICK]
    cli_main(args)
    last = root / "checkpoints" / "last.ckpt"
    for ckpt in (str(last), "last"):
        with pytest.raises(ValueError, match=r"ckpt_path: .*last.ckpt resumes a run trained with other model options "
                                             r"\(model.lr 0.0001 asked, 0.003 in the checkpoint\).*--model.init_weights"):
            cli_main([*args, "--trainer.max_epochs", "2", "--ckpt_path", ckpt, "--model.lr", "1e-4"])
    cli = cli_main([*args, "--trainer.max_epochs", "2", "--ckpt_path", str(last)])  # the same options: it resumes
    assert cli.trainer.current_epoch == 2


def test_ddp_on_two_cpu_processes_gives_a_working_checkpoint(tmp_path):
    """The recipe under Lightning's DDP on two CPU processes (gloo), in the default run (~1 min):
    tests/core/test_ddp.py checks that the ranks share statistics and folded weights. With
    PreciseBatchNorm, whose pass, averaging over ranks and rewrite of last.ckpt every rank must join, and Sparsify, whose
    refit every rank runs at the test after fit."""
    root = tmp_path / "ddp"
    args = ["fit", "--config", DIGITS, "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp",
            "--trainer.max_epochs", "3", "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
            "--trainer.callbacks+=neuroview.training.callbacks.PreciseBatchNorm",
            "--trainer.callbacks+=neuroview.training.sparse_callback.Sparsify"]
    proc = subprocess.run([sys.executable, "-m", "neuroview.cli", *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the Sparsify callback at the test after fit: rank 0 alone asked trainer.log_dir (a broadcast) and waited for ever
    assert "Sparsify: sparse head" in proc.stderr + proc.stdout and next(root.rglob("sparse.safetensors"), None)
    assert "world_size: 2" in proc.stderr or "distributed_backend=gloo" in proc.stderr + proc.stdout
    assert re.search(r"PreciseBatchNorm: recomputed the running statistics of [1-9]\d* normalization layer",
                     proc.stderr + proc.stdout)  # the head's CodeNorm: averaged over the ranks, last.ckpt rewritten
    ckpt = root / "checkpoints" / "last.ckpt"
    net = load_model(ckpt)
    from neuroview.data import DigitsDataModule

    dm = DigitsDataModule()
    dm.setup("test")
    correct = total = 0
    with torch.no_grad():
        for x, y in dm.test_dataloader():
            correct += int((net(x).argmax(-1) == y).sum())
            total += len(y)
    assert correct / total > 0.9
