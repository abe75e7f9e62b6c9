"""Evaluation and training batches under DDP (several processes): every validation and test sample counted once
(Lightning's DistributedSampler pads the ranks' shares with repeated samples), a batch larger than a rank's share
kept rather than dropped, no test of an untrained network after a fit that ran no step, and the log line of
``predict`` naming every rank's file, and one training loss (and so one learning rate) on every rank. Two runs on two
CPU processes (gloo, ~15 s each); the rest without processes."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, DistributedSampler

from neuroview.data.arrays import ArrayDataModule
from neuroview.training.callbacks import PredictionWriter
from neuroview.training.cli import NeuroViewCLI
from neuroview.training.module import load_model

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false", "--trainer.num_sanity_val_steps", "0"]


@pytest.fixture(autouse=True)
def _threads(one_thread):  # conftest's: these tensors are tiny
    yield


class Ramp(ArrayDataModule):
    """Sample ``i`` of each split is the constant ``i`` (no normalization): a batch names its samples."""

    def __init__(self, n_train: int = 10, n_eval: int = 7, **kw):
        super().__init__(normalize=False, **kw)
        self.n_train, self.n_eval = n_train, n_eval

    def load(self):
        def split(n):
            return np.arange(n, dtype=np.float32)[:, None, None].repeat(4, 2), np.arange(n) % 2
        return {"train": split(self.n_train), "val": split(self.n_eval), "test": split(self.n_eval)}


def _ranks(rank: int, world: int = 2) -> SimpleNamespace:
    """What the data module reads of a DDP trainer (Trainer.distributed_sampler_kwargs)."""
    return SimpleNamespace(distributed_sampler_kwargs={"num_replicas": world, "rank": rank}, strategy=None)


def _seen(loader) -> list[int]:
    return [int(v) for x, _ in loader for v in x[:, 0, 0]]


@pytest.mark.parametrize("hook", ["val_dataloader", "test_dataloader", "predict_dataloader"])
def test_two_ranks_evaluate_every_sample_once(hook):
    """Before: a sequential loader, which Lightning replaced by a DistributedSampler that pads the last rank with
    sample 0 (359 test samples counted as 360); here each rank read the whole split."""
    dm = Ramp(eval_batch_size=2)
    dm.setup("fit")
    seen = []
    for rank in (0, 1):
        dm.trainer = _ranks(rank)
        seen += _seen(getattr(dm, hook)())
    assert sorted(seen) == list(range(7))  # 4 + 3, none twice
    dm.trainer = None
    assert _seen(getattr(dm, hook)()) == list(range(7))  # one process: the whole split, in order


def test_a_split_smaller_than_the_ranks_is_refused_by_name():
    dm = Ramp(n_eval=1)
    dm.setup("fit")
    dm.trainer = _ranks(0)
    with pytest.raises(ValueError, match=r"Ramp: trainer.devices: expected at most 1 processes .* for the 1 samples "
                                         r"of the test split .*got 2"):
        dm.test_dataloader()


def test_a_ranks_share_no_larger_than_a_batch_is_trained():
    """10 training samples on 2 ranks: 5 each. Before: drop_last judged on the 10, so a batch of 6 dropped each
    rank's only batch and fit trained 0 steps. A last batch of 1 (5 = 4 + 1) is still dropped."""
    # batch_size -> each rank's batches
    for batch_size, sizes in [(6, [5]), (12, [5]), (5, [5]), (4, [4]), (3, [3]), (2, [2, 2])]:
        dm = Ramp(batch_size=batch_size)
        dm.setup("fit")
        dm.trainer = _ranks(0)
        loader = dm.train_dataloader()
        # what Lightning makes of it under DDP: its DistributedSampler (padded shares), batched with the loader's
        # drop_last
        shares = [BatchSampler(DistributedSampler(loader.dataset, 2, r, shuffle=False), batch_size, loader.drop_last)
                  for r in (0, 1)]
        assert [[len(b) for b in s] for s in shares] == [sizes, sizes], batch_size


def test_fit_that_ran_no_step_skips_the_test_after_it():
    """Before: the untrained network was tested and its confusion matrix written as the run's (a DDP fit whose
    ranks had no training batch exited 0 after 0 steps). `fit` refuses max_epochs, max_steps and
    limit_train_batches 0 up front, so the trainer here is a stub that ran no step."""
    tested = []

    def cli(step):
        trainer = SimpleNamespace(interrupted=False, global_step=step, num_training_batches=0, limit_train_batches=1.0,
                                  max_steps=-1, checkpoint_callback=SimpleNamespace(best_model_path="best.ckpt"),
                                  test=lambda *a, **kw: tested.append(kw["ckpt_path"]))
        return SimpleNamespace(config={"fit": {"test_after_fit": True, "test_ckpt": "best"}}, subcommand="fit",
                               trainer=trainer, model=None, datamodule=None)

    with pytest.warns(UserWarning, match=r"test_after_fit: skipped, fit ran no training step \(training batches an "
                                         r"epoch: 0, .*the network is untrained"):
        NeuroViewCLI.after_fit(cli(0))
    assert tested == []
    NeuroViewCLI.after_fit(cli(3))  # a run that trained is tested, from its best checkpoint
    assert tested == ["best.ckpt"]


def test_prediction_log_names_every_ranks_file(tmp_path, caplog):
    """Before: 'predictions written to .../predictions_rank0.csv', rank 1's file unnamed."""
    trainer = SimpleNamespace(world_size=2, global_rank=0, log_dir=str(tmp_path))
    batch = {"preds": torch.tensor([1, 0]), "probs": torch.tensor([[0.2, 0.8], [0.6, 0.4]])}
    with caplog.at_level(logging.INFO):
        PredictionWriter().write_on_epoch_end(trainer, None, [batch], [[[0, 2]]])
    assert f"predictions written to {tmp_path / 'predictions_rank*.csv'} (one file a rank, 2 ranks)" in caplog.text
    assert (tmp_path / "predictions_rank0.csv").is_file()


def _one_process(ckpt: Path, loader) -> tuple[np.ndarray, int, float]:
    """The confusion matrix of ``ckpt`` over a loader, counted here in one process, and its mean cross-entropy."""
    net = load_model(ckpt)
    cm, loss = np.zeros((10, 10), int), 0.0
    with torch.no_grad():
        for x, y in loader:
            logits = net(x)
            np.add.at(cm, (y.numpy(), logits.argmax(-1).numpy()), 1)
            loss += float(torch.nn.functional.cross_entropy(logits.double(), y, reduction="sum"))
    return cm, int(np.trace(cm)), loss / cm.sum()


def test_ddp_metrics_and_confusion_count_each_sample_once(tmp_path):
    """`neuroview fit` on two CPU processes: val_acc, test_acc, F1 and confusion_matrix.csv as one process counts them
    with the same weights. Before: sample 0 counted twice (143 -> 144 validation, 359 -> 360 test samples)."""
    from neuroview.data import DigitsDataModule

    root = tmp_path / "ddp"
    args = ["fit", "--config", DIGITS, "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy",
            "ddp", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.default_root_dir",
            str(root), *QUICK]
    proc = subprocess.run([sys.executable, "-m", "neuroview.cli", *args], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stderr + proc.stdout
    (best,) = (root / "checkpoints").glob("best-*.ckpt")  # one epoch: the weights validated and tested
    logs = root / "logs" / "version_0"
    dm = DigitsDataModule()
    dm.setup("fit")
    val_cm, val_correct, val_loss = _one_process(best, dm.val_dataloader())
    test_cm, test_correct, test_loss = _one_process(best, dm.test_dataloader())
    assert (val_cm.sum(), test_cm.sum()) == (143, 359)
    with open(logs / "confusion_matrix.csv") as f:
        written = np.array([[int(v) for v in row[1:]] for row in list(csv.reader(f))[1:]])
    np.testing.assert_array_equal(written, test_cm)
    with open(logs / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    val_acc = [float(r["val_acc"]) for r in rows if r.get("val_acc")]
    test_acc = [float(r["test_acc"]) for r in rows if r.get("test_acc")]
    assert val_acc == pytest.approx([val_correct / 143], abs=1e-6)
    assert test_acc == pytest.approx([test_correct / 359], abs=1e-6)
    for split, cm in (("val", val_cm), ("test", test_cm)):  # macro F1 from the one-process confusion matrix
        tp = np.diag(cm).astype(float)
        f1 = np.mean(2 * tp / np.maximum(2 * tp + (cm.sum(0) - tp) + (cm.sum(1) - tp), 1))
        assert [float(r[f"{split}_f1"]) for r in rows if r.get(f"{split}_f1")] == pytest.approx([f1], abs=1e-6)
    # the losses, a mean over every sample of both processes (180 and 179 of them), not a mean of their two means
    assert [float(r["val_loss"]) for r in rows if r.get("val_loss")] == pytest.approx([val_loss], rel=1e-5)
    assert [float(r["test_loss"]) for r in rows if r.get("test_loss")] == pytest.approx([test_loss], rel=1e-5)


_RANKS_SCRIPT = '''
import json, sys, torch
import pytorch_lightning as pl
from neuroview.training.module import NeuroViewModule
from neuroview.data import DigitsDataModule

out = sys.argv[1]

class Record(pl.Callback):
    def on_train_epoch_end(self, trainer, m):
        with open(f"{out}/rank{trainer.global_rank}.jsonl", "a") as f:
            f.write(json.dumps({"lr": trainer.optimizers[0].param_groups[0]["lr"],
                                "loss": float(trainer.callback_metrics["train_loss_epoch"])}) + "\\n")

    def on_fit_end(self, trainer, m):
        torch.save(torch.cat([p.detach().flatten() for p in m.parameters()]), f"{out}/w{trainer.global_rank}.pt")

torch.set_num_threads(1)
pl.seed_everything(0)
m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [8, 16]}, lr=3e-2,
                    scheduler="train_plateau", plateau_patience=0)
pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=3, logger=False, enable_checkpointing=False,
           enable_progress_bar=False, enable_model_summary=False, callbacks=[Record()],
           num_sanity_val_steps=0).fit(m, DigitsDataModule(batch_size=64))
'''


def test_two_ranks_read_one_training_loss_and_keep_one_rate(tmp_path):
    """train_loss_epoch, which the plateau schedules (and their stop) read, is the mean over both ranks' samples:
    each rank read its own share's, so one rank halved its rates where the other did not (0.015 against 0.03 at
    the 6th epoch of this run) and the two trained apart (weights 0.11 apart)."""
    script = tmp_path / "ranks.py"
    script.write_text(_RANKS_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=240,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = ([json.loads(line) for line in (tmp_path / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1))
    assert len(r0) == len(r1) == 3
    assert r0 == r1  # the same loss and the same rate on both ranks, every epoch
    assert torch.equal(torch.load(tmp_path / "w0.pt"), torch.load(tmp_path / "w1.pt"))
