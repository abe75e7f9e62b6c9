"""Runs in processes a spawn strategy starts (``ddp_spawn``) and runs resumed on another number of processes:
metric states fresh at each epoch (a spawned test counted every sample twice in confusion_matrix.csv), fit's test
after a spawned fit (skipped as if it ran no step), a caller's module whose building ran in the workers only (a bare
AttributeError), a training loader read whole under DDP (finetune_sparse) batched as one process reads it, and a
resume on other processes refused by naming the processes. One run on two CPU processes (ddp_spawn, gloo); the
rest in this process."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import RunningStage, TrainerFn

from neuroview.data import DigitsDataModule
from neuroview.data.arrays import ArrayDataModule
from neuroview.training.cli import NeuroViewCLI
from neuroview.training.module import NeuroViewModule
from neuroview.training.schedules import _check_resumed_total

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false", "--trainer.num_sanity_val_steps", "0"]


@pytest.fixture(autouse=True)
def _threads(one_thread):  # conftest's: these tensors are tiny
    yield


def _module() -> NeuroViewModule:
    return NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [8, 16]})


def _trainer(**kw) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False, **kw)


# ----------------------------------------------------------------------------- fault 1: metric states of the epoch
def test_each_test_and_validation_starts_from_fresh_metric_states(tmp_path):
    """Before: a spawned worker's test_confmat already held the other worker's samples (storage shared by the
    unpickling), and the sync summed them again: 718 of 359. Here one process: states left over before the epoch
    (the shared counts, in effect) were counted into the test's confusion matrix, its CSV and val_acc."""
    torch.manual_seed(0)
    dm = DigitsDataModule(batch_size=128)
    m = _module()
    clean = _trainer().validate(m, dm, verbose=False)[0]["val_acc"]
    junk = torch.zeros(500, 10)
    junk[:, 3] = 1  # 500 samples of class 0 predicted 3: in no real split
    m.test_confmat.update(junk, torch.zeros(500, dtype=torch.long))
    m.test_acc.update(junk, torch.zeros(500, dtype=torch.long))
    m.val_acc.update(junk, torch.zeros(500, dtype=torch.long))
    assert _trainer().validate(m, dm, verbose=False)[0]["val_acc"] == pytest.approx(clean, abs=1e-7)
    trainer = pl.Trainer(accelerator="cpu", devices=1, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, logger=pl.loggers.CSVLogger(tmp_path, name="logs"))
    acc = trainer.test(m, dm, verbose=False)[0]["test_acc"]
    assert int(m.test_confusion.sum()) == 359
    assert float(m.test_confusion.trace()) / 359 == pytest.approx(acc, abs=1e-6)
    with open(tmp_path / "logs" / "version_0" / "confusion_matrix.csv") as f:
        assert sum(int(v) for row in list(csv.reader(f))[1:] for v in row[1:]) == 359


# ------------------------------------------------------------ fault 2: a training loader read whole under DDP
class Series(ArrayDataModule):
    """43 training series: one process's loader of batch 32 drops the last 11; a rank's share (22) is one batch."""

    def load(self):
        x = torch.arange(43 * 4, dtype=torch.float32).reshape(43, 1, 4).numpy()
        return {"train": (x, np.arange(43) % 2), "test": (x[:6], np.arange(6) % 2)}


def test_a_training_loader_read_whole_under_ddp_batches_as_one_process():
    """Before: drop_last was judged on a rank's share (22 <= 32: kept) whenever the trainer had two processes, also
    where nothing shards the loader: finetune_sparse under `neuroview test` (Sparsify(finetune=N)) fine-tuned on 43
    samples in 2 batches on two processes, on 32 in 1 in one process. Now on the share only where fit's training
    loop shards it."""
    dm = Series(batch_size=32, normalize=False)
    dm.setup("fit")
    one = dm.train_dataloader()
    assert (one.drop_last, len(one)) == (True, 1)
    dm.trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", logger=False, enable_progress_bar=False)
    assert dm.trainer.distributed_sampler_kwargs == {"num_replicas": 2, "rank": 0}
    for fn, stage in ((TrainerFn.TESTING, RunningStage.TESTING), (TrainerFn.VALIDATING, RunningStage.VALIDATING),
                      (TrainerFn.FITTING, RunningStage.VALIDATING)):  # Sparsify at fit's validation
        dm.trainer.state.fn, dm.trainer.state.stage = fn, stage
        loader = dm.train_dataloader()
        assert (loader.drop_last, len(loader), type(loader.sampler)) == (True, 1, type(one.sampler)), (fn, stage)
    # fit's training loop: Lightning shards it, 22 samples a rank, one batch each (dropping it would train nothing)
    dm.trainer.state.fn, dm.trainer.state.stage = TrainerFn.FITTING, RunningStage.TRAINING
    assert dm.train_dataloader().drop_last is False
    dm.trainer._accelerator_connector.use_distributed_sampler = False  # every process reads it whole: as one does
    assert dm.train_dataloader().drop_last is True


# ------------------------------------------------------------ fault 3: fit's test after a spawned fit
def _cli(trainer, tested: list) -> SimpleNamespace:
    trainer.test = lambda *a, **kw: tested.append(kw["ckpt_path"])
    return SimpleNamespace(config={"fit": {"test_after_fit": True, "test_ckpt": "best"}}, subcommand="fit",
                           trainer=trainer, model=None, datamodule=None)


def test_after_a_spawned_fit_the_test_reads_the_steps_from_the_checkpoint(tmp_path):
    """Before: under ddp_spawn the main process's trainer reads global_step 0 (its workers stepped), and fit's
    test was skipped: 'fit ran no training step ... untrained'. Now the step of the best checkpoint they saved."""
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False, enable_progress_bar=False,
                         default_root_dir=tmp_path)
    assert trainer.global_step == 0
    best = tmp_path / "best.ckpt"
    torch.save({"global_step": 6, "state_dict": {"w": torch.zeros(3)}}, best)
    trainer.checkpoint_callback.best_model_path = str(best)  # what the spawn launcher gives back
    tested = []
    NeuroViewCLI.after_fit(_cli(trainer, tested))
    assert tested == [str(best)]
    torch.save({"global_step": 0, "state_dict": {}}, best)  # a spawned fit whose workers ran no step: still skipped
    with pytest.warns(UserWarning, match=r"test_after_fit: skipped, fit ran no training step"):
        NeuroViewCLI.after_fit(_cli(trainer, tested))
    assert tested == [str(best)]


# ------------------------------------------------------------ fault 4: a module built in the workers only
def test_a_module_whose_weights_came_back_unbuilt_names_it():
    """Before: after Trainer(strategy="ddp_spawn").fit(m), m.classifier raised a bare AttributeError ('no attribute
    classifier'): Lightning loads the workers' weights into the caller's module, which was never set up here. The
    same load (strict=False, as the spawn launcher does) on an unbuilt module; build(x) then finishes it."""
    torch.manual_seed(0)
    x = torch.randn(8, 1, 8, 8)
    trained = _module().build(x)
    m = _module()
    m.load_state_dict(trained.state_dict(), strict=False)
    for name in ("classifier", "classifiers"):
        with pytest.raises(RuntimeError, match=r"NeuroViewModule: module not built: .*weights were loaded .*ddp_spawn"
                                               r".*call module.build\(x\) on a real batch"):
            getattr(m, name)
    with pytest.raises(RuntimeError, match=r"module not built: .*setup takes that batch"):
        _module().classifier  # never loaded: the plain reason
    m.build(x)
    assert m.unreached == ["backbone.fc"] and not any(p.requires_grad for p in m.model.backbone.fc.parameters())
    assert torch.equal(m.classifier.weight, trained.classifier.weight)
    torch.testing.assert_close(m.eval()(x), trained.eval()(x))


# ------------------------------------------------------------ fault 5: a resume on another number of processes
def test_a_resume_on_other_processes_names_the_processes(tmp_path):
    """Before: a one-process run resumed on two was refused as if --trainer.max_epochs/max_steps had changed (their
    values shown equal to the run's): each process reads half the split, so the schedule's 40 steps were 20."""
    m = _module().build(torch.randn(4, 1, 8, 8))
    trainer = _trainer(max_epochs=2)
    trainer.test(m, DigitsDataModule(batch_size=512), verbose=False)  # a trainer attached: what a save records
    trainer.save_checkpoint(tmp_path / "one.ckpt")
    budget = torch.load(tmp_path / "one.ckpt", weights_only=True)["neuroview_budget"]
    assert budget == {"max_epochs": 2, "max_steps": -1, "world_size": 1}
    two = SimpleNamespace(max_epochs=2, max_steps=-1, world_size=2, ckpt_path="one.ckpt")
    resumed = {"lr_schedulers": [{"T_max": 40}], "neuroview_budget": budget}
    with pytest.raises(ValueError, match=r"^--trainer.devices/--trainer.num_nodes: the checkpoint was saved by a run "
                                         r"of 1 process \(devices x num_nodes\), and this run has 2; .* over 40 "
                                         r"optimizer steps .* would take 20 here .*resume on 1 process"):
        _check_resumed_total("cosine", resumed, 20, two)
    old = {"lr_schedulers": [{"T_max": 40}], "neuroview_budget": {"max_epochs": 2, "max_steps": -1}}  # older file
    with pytest.raises(ValueError, match=r"^--trainer.max_epochs/--trainer.max_steps: the checkpoint's cosine"):
        _check_resumed_total("cosine", old, 20, two)
    same = SimpleNamespace(max_epochs=4, max_steps=-1, world_size=1, ckpt_path="one.ckpt")  # the budget did change
    with pytest.raises(ValueError, match=r"^--trainer.max_epochs/--trainer.max_steps: .* gives 80"):
        _check_resumed_total("cosine", resumed, 80, same)


# ------------------------------------------------------------ one real run on two spawned processes
def test_ddp_spawn_fit_tests_its_run_and_counts_each_sample_once(tmp_path):
    """`neuroview fit --trainer.strategy ddp_spawn` on two CPU processes: the test after fit runs (before: skipped,
    'fit ran no training step'), and its confusion_matrix.csv counts the 359 test samples once (before: 718)."""
    for attempt in ("spawn", "again"):
        root = tmp_path / attempt
        args = ["fit", "--config", DIGITS, "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy",
                "ddp_spawn", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                "--trainer.default_root_dir", str(root), *QUICK]
        proc = subprocess.run([sys.executable, "-m", "neuroview.cli", *args], capture_output=True, text=True, timeout=300)
        # once, on a loaded machine, a spawned worker aborted in torch's teardown after the run had written all it
        # writes ("terminate called without an active exception"): run again then, on that message only
        if proc.returncode == 0 or "terminate called without an active exception" not in proc.stderr:
            break
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test_after_fit: skipped" not in proc.stderr + proc.stdout
    (written,) = (root / "logs").glob("version_*/confusion_matrix.csv")
    with open(written) as f:
        assert sum(int(v) for row in list(csv.reader(f))[1:] for v in row[1:]) == 359


def test_under_a_spawn_strategy_every_metric_starts_in_the_worker_s_own_storage():
    """The review: only the module's nine named metrics were reset, so a subclass's own metric (a SumMetric counting
    validation samples) still counted 286 of a 143-sample split under ddp_spawn. Every Metric is reset at setup."""
    import torchmetrics

    from neuroview.training.spawned import FreshMetrics

    class Counting(FreshMetrics, pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.seen = torchmetrics.SumMetric()

    m = Counting()
    m.seen.update(torch.tensor(143.0))  # what the other worker's share left in the storage they shared
    m._trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False,
                            enable_checkpointing=False, enable_progress_bar=False)
    m.setup("validate")
    assert float(m.seen.sum_value) == 0.0
    one = Counting()
    one.seen.update(torch.tensor(5.0))
    one._trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                              enable_progress_bar=False)
    one.setup("validate")
    assert float(one.seen.sum_value) == 5.0  # one process: nothing is shared, nothing reset


def test_a_spawned_worker_closes_its_process_group_before_it_exits(tmp_path, monkeypatch):
    """A ddp_spawn worker on the CPU exited with its gloo group's threads running, and on a loaded machine one aborted
    in that teardown after its run ("terminate called without an active exception"): the module's setup in a
    spawned worker registers, once, an exit handler that destroys the group (Lightning does so for NCCL only)."""
    import torch.distributed as dist

    from neuroview.training import spawned

    registered = []
    monkeypatch.setattr(spawned.atexit, "register", lambda fn: registered.append(fn) or fn)
    monkeypatch.setattr(spawned, "_CLOSING", [])
    class Plain(spawned.FreshMetrics, pl.LightningModule):
        pass

    one = Plain()
    one._trainer = _trainer()
    one.setup("fit")
    assert registered == []  # one process: the group (if any) is the user's own
    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        for stage in ("fit", "test"):
            m = Plain()
            m._trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False,
                                    enable_checkpointing=False, enable_progress_bar=False)
            m.setup(stage)
        assert len(registered) == 1  # once per process, whatever the stages
        registered[0]()
        assert not dist.is_initialized()
        registered[0]()  # a second call (Lightning's own handler beside it) does nothing
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
