"""The Lightning extras probe (s18, P4): an EarlyStopping or ModelCheckpoint whose mode is the wrong way round for its
monitor stopped a rising run without a word; a GradientAccumulationScheduler left the cosine/one-cycle schedule
unfinished; fast_dev_run's missing best checkpoint was blamed on the split; a resume that changed the steps of an epoch
blamed max_epochs/max_steps; plateau on plain loaders failed after an epoch in Lightning's words; and the closed-form
MiniRocket architectures failed in a sanity check rather than by name.

Step counts are worked out here by hand from the batches of an epoch and the accumulation factors."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, GradientAccumulationScheduler, ModelCheckpoint
from torch.utils.data import DataLoader, Subset, TensorDataset

from neuroview.data import DigitsDataModule
from neuroview.training.cli import cli_main
from neuroview.training.module import NeuroViewModule

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
TINY = {"widths": [4, 8]}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)


def _module(scheduler: str = "cosine", **kw) -> NeuroViewModule:
    return NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs=TINY, lr=3e-3,
                           scheduler=scheduler, **kw)


def _trainer(root, **kw) -> pl.Trainer:
    saves = any(isinstance(c, ModelCheckpoint) for c in kw.get("callbacks", []))
    kw = {"accelerator": "cpu", "devices": 1, "logger": False, "enable_checkpointing": saves,
          "enable_progress_bar": False, "enable_model_summary": False, **kw}
    return pl.Trainer(default_root_dir=str(root), **kw)


class LrAtSteps(pl.Callback):
    """The rate of the first group at each optimizer step (read at the batch where the step is taken)."""

    def __init__(self):
        self.lrs: list[float] = []
        self._step = -1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step != self._step:
            self._step = trainer.global_step
            self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


class StopAt(pl.Callback):
    def __init__(self, epochs: int):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


# ------------------------------------------------------------ 1: EarlyStopping / ModelCheckpoint mode against monitor
@pytest.mark.parametrize("callback,pattern", [
    (lambda: EarlyStopping(monitor="val_acc", patience=2),  # Lightning's default mode: 'min'
     r"trainer.callbacks: EarlyStopping\(monitor='val_acc', mode='min'\) stops the run when val_acc stops falling, "
     r"and val_acc rises as the model learns; pass mode='max' to that callback, its other arguments as they are: "
     r"EarlyStopping\(monitor='val_acc', mode='max', <its other arguments>\) in Python, mode: max in its entry's "
     r"init_args in a config \(or in its --trainer.callbacks\+='\{class_path: \.\.\., init_args: \{\.\.\.\}\}'\), on "
     r"the command line --trainer.callbacks.mode max right after its own --trainer.callbacks.\* options \(at the end of "
     r"the command it sets the last callback's\)$"),
    (lambda: EarlyStopping(monitor="val_loss", mode="max"),
     r"EarlyStopping\(monitor='val_loss', mode='max'\) stops the run when val_loss stops rising, and val_loss falls "
     r"as the model learns; pass mode='min'"),
    (lambda: ModelCheckpoint(monitor="val_f1"),  # default 'min' too
     r"trainer.callbacks: ModelCheckpoint\(monitor='val_f1', mode='min'\) keeps the checkpoint of the lowest val_f1, "
     r"and val_f1 rises as the model learns; pass mode='max'"),
])
def test_a_stop_or_checkpoint_of_the_wrong_mode_is_refused_when_fit_starts(tmp_path, callback, pattern):
    """Before: EarlyStopping(monitor='val_acc') stopped a 12-epoch run at epoch 3 while val_acc rose every epoch."""
    trainer = _trainer(tmp_path, max_epochs=3, limit_train_batches=2, limit_val_batches=1, callbacks=[callback()])
    with pytest.raises(ValueError, match=pattern):
        trainer.fit(_module(), datamodule=DigitsDataModule(batch_size=64))
    assert trainer.global_step == 0


def test_a_stop_of_the_right_mode_trains(tmp_path):
    stop = EarlyStopping(monitor="val_acc", mode="max", patience=5)
    trainer = _trainer(tmp_path, max_epochs=2, limit_train_batches=2, limit_val_batches=1, callbacks=[stop])
    trainer.fit(_module(), datamodule=DigitsDataModule(batch_size=64))
    assert trainer.global_step == 4


def test_the_command_refuses_an_early_stopping_of_the_wrong_mode(tmp_path):
    with pytest.raises(ValueError, match=r"EarlyStopping\(monitor='val_acc', mode='min'\) stops the run when val_acc "
                                         r"stops falling.*--trainer.callbacks.mode max right after its own"):
        cli_main(["fit", "--config", DIGITS, "--model.model_kwargs", "{widths: [4, 8]}",
                  "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
                  "--trainer.logger", "false", "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2",
                  "--trainer.callbacks+=pytorch_lightning.callbacks.EarlyStopping", "--trainer.callbacks.monitor",
                  "val_acc", "--trainer.callbacks.patience", "2"])
    assert not list(tmp_path.glob("checkpoints/*.ckpt"))


# ------------------------------------------------------------ 2: GradientAccumulationScheduler
@pytest.mark.parametrize("scheduler,warmup", [("cosine", 0.0), ("cosine", 1.5), ("onecycle", 0.0)])
def test_a_scheduled_accumulation_ends_the_schedule_at_the_run_s_last_step(tmp_path, scheduler, warmup):
    """7 batches an epoch; accumulation 1, then 4 from epoch 1: 7 + 2 + 2 = 11 optimizer steps (a partial accumulation
    at an epoch's end is a step). Before: the schedule was built for 7 * 3 = 21 steps and ended at 85% of its peak."""
    rec = LrAtSteps()
    trainer = _trainer(tmp_path, max_epochs=3, limit_train_batches=7, limit_val_batches=0, num_sanity_val_steps=0,
                       callbacks=[GradientAccumulationScheduler({0: 1, 1: 4}), rec])
    pl.seed_everything(0)
    trainer.fit(_module(scheduler, warmup_epochs=warmup), datamodule=DigitsDataModule(batch_size=64))
    assert trainer.global_step == 11 and len(rec.lrs) == 11
    sched = trainer.lr_scheduler_configs[0].scheduler
    peak = 3e-3
    if scheduler == "onecycle":
        assert sched.total_steps == 11
        assert rec.lrs[-1] < peak * 1e-3  # the cycle's end: OneCycleLR's final rate, max_lr / 1e4
        return
    # 1.5 epochs of warm-up: epoch 0's 7 steps, then half of epoch 1's 2 steps (1): 8 steps
    warm = 8 if warmup else 0
    steps = sched._milestones[0] + sched._schedulers[-1].T_max if warmup else sched.T_max
    assert steps == 11 and (not warmup or sched._milestones == [warm])
    assert sched.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)  # decayed to 0 at the last step
    if warmup:
        assert rec.lrs[:warm] == pytest.approx([peak * (s + 1) / (warm + 1) for s in range(warm)])
        assert rec.lrs[warm] == pytest.approx(peak)


def test_a_run_under_a_scheduled_accumulation_resumes_to_the_end_of_its_schedule(tmp_path):
    """Its checkpoint records the scheduler's {epoch: factor} (read back by a weights-only load); the resumed run takes
    the remaining 2 + 2 of its 11 steps and ends the cosine at 0; another schedule is refused by name."""
    def run(root, stop=None, ckpt=None, scheduling=None):
        callbacks = [GradientAccumulationScheduler(scheduling or {0: 1, 1: 4}), ModelCheckpoint(str(tmp_path / "ck"),
                                                                                               save_last=True)]
        trainer = _trainer(root, max_epochs=3, limit_train_batches=7, limit_val_batches=0, num_sanity_val_steps=0,
                           callbacks=callbacks + ([StopAt(stop)] if stop else []))
        trainer.fit(_module(), datamodule=DigitsDataModule(batch_size=64), ckpt_path=ckpt)
        return trainer

    assert run(tmp_path / "a", stop=1).global_step == 7
    last = str(tmp_path / "ck" / "last.ckpt")
    assert torch.load(last, weights_only=True)["neuroview_epoch_steps"]["accumulate_grad_batches"] == {0: 1, 1: 4}
    with pytest.raises(ValueError, match=r"^--trainer.accumulate_grad_batches/GradientAccumulationScheduler "
                                         r"\(trainer.callbacks\): changed since the checkpoint was saved "
                                         r"\(accumulate_grad_batches \{0: 1, 1: 4\} then, \{0: 1, 1: 2\} now\); .* "
                                         r"runs over 11 optimizer steps .* would take 15"):
        run(tmp_path / "b", ckpt=last, scheduling={0: 1, 1: 2})
    resumed = run(tmp_path / "c", ckpt=last)
    assert resumed.global_step == 11
    assert resumed.lr_scheduler_configs[0].scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------ 4: fast_dev_run's missing best checkpoint
def test_fast_dev_run_gives_itself_as_the_reason_there_is_no_best_checkpoint(tmp_path):
    with pytest.warns(UserWarning, match=r"test_ckpt: 'best', but fast_dev_run saves no checkpoint: the last weights "
                                         r"are tested") as caught:
        cli_main(["fit", "--config", DIGITS, "--model.model_kwargs", "{widths: [4, 8]}",
                  "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
                  "--trainer.fast_dev_run", "true"])
    assert not any("no validation split to rank by" in str(w.message) for w in caught)


# ------------------------------------------------------------ 5: a resume that changes the steps of an epoch
@pytest.fixture(scope="module")
def half_run(tmp_path_factory) -> str:
    """A 4-epoch cosine run on 5 batches of 256 an epoch (20 steps), stopped after epoch 2 (10 steps)."""
    root = tmp_path_factory.mktemp("half")
    pl.seed_everything(0)
    trainer = _trainer(root, max_epochs=4, limit_val_batches=0, num_sanity_val_steps=0,
                       callbacks=[ModelCheckpoint(str(root / "ck"), save_last=True), StopAt(2)])
    trainer.fit(_module(), datamodule=DigitsDataModule(batch_size=256))
    assert trainer.global_step == 10
    return str(root / "ck" / "last.ckpt")


@pytest.mark.parametrize("batch_size,kw,pattern", [
    (256, {"accumulate_grad_batches": 2}, r"^--trainer.accumulate_grad_batches: changed since the checkpoint was saved "
                                          r"\(accumulate_grad_batches 1 then, 2 now\); the checkpoint's cosine schedule "
                                          r"runs over 20 optimizer steps .* and this run's would take 12"),
    (256, {"limit_train_batches": 2}, r"^--trainer.limit_train_batches: changed since the checkpoint was saved "
                                      r"\(limit_train_batches 1.0 then, 2 now\); .* would take 8"),
    (512, {}, r"^the training loader's batch_size \(--data.batch_size\): changed since the checkpoint was saved "
              r"\(batch_size 256 then, 512 now\); .* would take 8"),
    (256, {"accumulate_grad_batches": 2, "max_epochs": 8},
     r"^--trainer.max_epochs, --trainer.accumulate_grad_batches: changed since the checkpoint was saved \(max_epochs 4 "
     r"then, 8 now; accumulate_grad_batches 1 then, 2 now\); .* would take 24"),
])
def test_a_resume_that_changes_the_steps_of_an_epoch_names_the_option(tmp_path, half_run, batch_size, kw, pattern):
    """Before: each was refused as '--trainer.max_epochs/--trainer.max_steps: ... this run's budget (max_epochs 4,
    max_steps -1)', the run's own budget. Steps: 5 batches of 256 (2 of 512) an epoch, times 4 epochs."""
    trainer = _trainer(tmp_path, **{"max_epochs": 4, "limit_val_batches": 0, "num_sanity_val_steps": 0, **kw})
    with pytest.raises(ValueError, match=pattern) as e:
        trainer.fit(_module(), datamodule=DigitsDataModule(batch_size=batch_size), ckpt_path=half_run)
    assert "or start a new run from its weights with --model.init_weights" in str(e.value)
    assert trainer.global_step == 0  # refused when the optimizer is built: before the loops are restored or step


def test_a_resume_with_another_budget_keeps_its_message_and_the_run_s_own_resumes(tmp_path, half_run):
    longer = _trainer(tmp_path / "a", max_epochs=6, limit_val_batches=0, num_sanity_val_steps=0)
    with pytest.raises(ValueError, match=r"^--trainer.max_epochs/--trainer.max_steps: the checkpoint's cosine schedule "
                                         r"runs over 20 optimizer steps .* gives 30"):
        longer.fit(_module(), datamodule=DigitsDataModule(batch_size=256), ckpt_path=half_run)
    same = _trainer(tmp_path / "b", max_epochs=4, limit_val_batches=0, num_sanity_val_steps=0)
    same.fit(_module(), datamodule=DigitsDataModule(batch_size=256), ckpt_path=half_run)
    assert same.global_step == 20
    assert same.lr_scheduler_configs[0].scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------ 6: plateau on plain loaders without a validation loader
def test_plateau_on_plain_loaders_without_a_validation_loader_is_refused_before_the_first_step(tmp_path):
    x, y = torch.randn(64, 1, 8, 8), torch.arange(64) % 10
    train = DataLoader(TensorDataset(x, y), batch_size=16)
    module = _module("plateau").build(x[:16])
    trainer = _trainer(tmp_path, max_epochs=2)
    with pytest.raises(ValueError, match=r"^scheduler: 'plateau' cuts the rate when val_acc stalls, and no validation "
                                         r"loader was given to fit .*; use scheduler 'train_plateau' \(the same rule on "
                                         r"the training loss\), or pass a validation loader"):
        trainer.fit(module, train)
    assert trainer.global_step == 0
    given = _trainer(tmp_path, max_epochs=2)  # with one: runs, and cuts on val_acc
    given.fit(_module("plateau").build(x[:16]), train, DataLoader(TensorDataset(x[:32], y[:32]), batch_size=16))
    assert given.global_step == 8


# ------------------------------------------------------------ 7: the closed-form MiniRocket architectures
@pytest.mark.parametrize("arch", ["minirocket", "nv_minirocket"])
def test_the_minirocket_architectures_are_refused_by_name(arch):
    with pytest.raises(ValueError, match=rf"^arch: {arch!r} is fitted in closed form \(its biases from training "
                                         r"series, its head by ridge\), not by gradient steps; use `neuroview "
                                         r"minirocket --data \.\.\.` or nv.minirocket\(train_loader\)"):
        NeuroViewModule(arch, num_classes=2, in_channels=1, max_len=40)


def test_the_command_refuses_minirocket_before_it_reads_any_data(tmp_path):
    with pytest.raises(ValueError, match=r"arch: 'minirocket' is fitted in closed form"):
        cli_main(["fit", "--config", str(ROOT / "recipes" / "mnist1d_nv_cnn1d.yaml"), "--model.arch", "minirocket",
                  "--model.model_kwargs", "{}", "--trainer.max_epochs", "1", "--trainer.default_root_dir",
                  str(tmp_path), "--trainer.enable_progress_bar", "false"])
    assert not (tmp_path / "checkpoints").exists()


# ------------------------------------------------------------ review R3 of 812da79
# R3 §1: plateau with an empty val_dataloaders, a loader of 0 batches, a data module without val_dataloader
class _TrainOnly(pl.LightningDataModule):
    def __init__(self, data):
        super().__init__()
        self.data = data

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=16)


@pytest.mark.parametrize("val,why,fix", [
    (lambda x, y: [], "val_dataloaders is empty", "pass a validation loader that has batches"),
    (lambda x, y: DataLoader(TensorDataset(x[:0], y[:0]), batch_size=16), "the validation loader has no batches",
     "pass a validation loader that has batches"),
    (lambda x, y: [DataLoader(TensorDataset(x[:0], y[:0]), batch_size=16)], "the validation loader has no batches",
     "pass a validation loader that has batches"),
    (None, r"the data module \(_TrainOnly\) has no val_dataloader", "give the data module a val_dataloader"),
])
def test_plateau_with_no_validation_batches_is_refused_before_the_first_step(tmp_path, val, why, fix):
    """Before: [] and a loader of 0 batches trained a whole epoch (4 steps here), then failed with Lightning's
    MisconfigurationException advising a `monitor` key; the data module was told to pass a loader to fit."""
    x, y = torch.randn(64, 1, 8, 8), torch.arange(64) % 10
    trainer = _trainer(tmp_path, max_epochs=2)
    with pytest.raises(ValueError, match=rf"^scheduler: 'plateau' cuts the rate when val_acc stalls, and {why}; use "
                                         rf"scheduler 'train_plateau' \(the same rule on the training loss\), or {fix}$"):
        if val is None:
            trainer.fit(_module("plateau").build(x[:16]), datamodule=_TrainOnly(TensorDataset(x, y)))
        else:
            trainer.fit(_module("plateau").build(x[:16]), DataLoader(TensorDataset(x, y), batch_size=16), val(x, y))
    assert trainer.global_step == 0


# R10 §4: a data module whose validation split has a val_fraction > 0 and no batches is not told "a val_fraction > 0"
class _EmptyVal(_TrainOnly):
    def __init__(self, data, val_fraction, val):
        super().__init__(data)
        self.val_fraction, self.val = val_fraction, val

    def val_dataloader(self):
        return self.val(self.data)


@pytest.mark.parametrize("frac,val,why,fix", [
    (0.2, lambda d: DataLoader(Subset(d, range(10)), batch_size=64, drop_last=True),
     r"the data module's validation loader has no batches \(val_fraction=0.2: its 10 samples are fewer than a batch of "
     r"64 with drop_last=True\)", r"a batch_size of at most 10, or drop_last=False for validation"),
    (0.01, lambda d: DataLoader(Subset(d, []), batch_size=16),
     r"the data module's validation split is empty \(val_fraction=0.01: too few samples for the fraction\)",
     r"more samples or a larger val_fraction"),
    (0.2, lambda d: [], r"the data module's validation loader has no batches \(val_fraction=0.2: too few samples for "
     r"the fraction, or fewer than a batch with drop_last\)", r"give the data module's validation loader batches"),
    (0.0, lambda d: [], r"the data module has no validation split \(val_fraction=0.0\)", r"a val_fraction > 0"),
])
def test_plateau_with_a_data_module_s_empty_validation_split_names_its_cause(tmp_path, frac, val, why, fix):
    """Before: "the data module has no validation split (val_fraction=0.2); ... or a val_fraction > 0", which it has."""
    x, y = torch.randn(64, 1, 8, 8), torch.arange(64) % 10
    trainer = _trainer(tmp_path, max_epochs=2)
    with pytest.raises(ValueError, match=rf"^scheduler: 'plateau' cuts the rate when val_acc stalls, and {why}; use "
                                         rf"scheduler 'train_plateau' \(the same rule on the training loss\), or {fix}$"):
        trainer.fit(_module("plateau").build(x[:16]), datamodule=_EmptyVal(TensorDataset(x, y), frac, val))
    assert trainer.global_step == 0


@pytest.mark.parametrize("kw,fix", [
    ({"limit_val_batches": 0}, r"limit_val_batches > 0"),
    ({"check_val_every_n_epoch": None, "val_check_interval": 2}, r"check_val_every_n_epoch=1 \(a validation at each "
                                                                 r"epoch's end\)"),
])
def test_plateau_without_validation_by_a_trainer_option_is_told_that_option(tmp_path, kw, fix):
    """The near case: these were told "or a val_fraction > 0", which changes neither."""
    x, y = torch.randn(64, 1, 8, 8), torch.arange(64) % 10
    trainer = _trainer(tmp_path, max_epochs=2, **kw)
    with pytest.raises(ValueError, match=rf"^scheduler: 'plateau' .*; use scheduler 'train_plateau' \(the same rule "
                                         rf"on the training loss\), or {fix}$"):
        trainer.fit(_module("plateau").build(x[:16]), DataLoader(TensorDataset(x, y), batch_size=16),
                    DataLoader(TensorDataset(x, y), batch_size=16))
    assert trainer.global_step == 0


# R3 §2: a resume names limit_train_batches / the batch size only where the steps of an epoch changed
@pytest.mark.parametrize("batch_size,kw", [
    (256, {"limit_train_batches": 5}),  # all 5 batches of 256, as an int: 5 steps an epoch, as before
    (240, {}),  # floor(1295 / 240) = 5 batches (the training loader drops its last): 5 steps an epoch, as before
])
def test_a_resume_with_another_budget_and_the_same_steps_an_epoch_blames_the_budget_only(tmp_path, half_run, batch_size,
                                                                                         kw):
    """6 epochs of the same 5 steps: 30 where the checkpoint's cosine runs over 20. Before: the limit (1.0 then, 5 now)
    or the batch size (256 then, 240 now) was named as a cause beside max_epochs, and the user told to restore it."""
    trainer = _trainer(tmp_path, max_epochs=6, limit_val_batches=0, num_sanity_val_steps=0, **kw)
    with pytest.raises(ValueError, match=r"^--trainer.max_epochs/--trainer.max_steps: the checkpoint's cosine schedule "
                                         r"runs over 20 optimizer steps .* gives 30; .*resume with the run's own "
                                         r"budget") as e:
        trainer.fit(_module(), datamodule=DigitsDataModule(batch_size=batch_size), ckpt_path=half_run)
    assert "limit_train_batches" not in str(e.value) and "batch_size" not in str(e.value)


def test_a_resume_on_another_training_split_is_told_to_resume_on_the_same_split(tmp_path, half_run):
    """test_fraction and val_fraction 0.05: 1622 training samples, 6 batches of 256 an epoch, 24 steps. Before: "resume
    with the run's own train_batches", which is no option."""
    trainer = _trainer(tmp_path, max_epochs=4, limit_val_batches=0, num_sanity_val_steps=0)
    with pytest.raises(ValueError, match=r"^the training split \(its batches an epoch\): changed since the checkpoint "
                                         r"was saved \(train_batches 5 then, 6 now\); .* would take 24; .*: resume on "
                                         r"the same training split, or start a new run from its weights") as e:
        trainer.fit(_module(), datamodule=DigitsDataModule(batch_size=256, test_fraction=0.05, val_fraction=0.05),
                    ckpt_path=half_run)
    assert "own train_batches" not in str(e.value)


# R3 §3: the wrong-mode advice works with several callbacks; R10 §3: and keeps the callback's other arguments
@pytest.mark.parametrize("given", [
    ["--trainer.callbacks+=pytorch_lightning.callbacks.EarlyStopping", "--trainer.callbacks.monitor", "val_acc",
     "--trainer.callbacks.patience", "4", "--trainer.callbacks.min_delta", "0.25"],
    ["--trainer.callbacks+={class_path: pytorch_lightning.callbacks.EarlyStopping, init_args: {monitor: val_acc, "
     "patience: 4, min_delta: 0.25}}"],
])
def test_the_wrong_mode_advice_gives_an_entry_that_trains_with_another_callback_after_it(tmp_path, given):
    """The refused EarlyStopping is followed by a LearningRateMonitor. Before: the advice `--trainer.callbacks.mode max`
    set the LearningRateMonitor's mode, which jsonargparse refused ("Option 'mode' is not accepted"); then "its whole
    entry", written from monitor, mode and patience, dropped its min_delta."""
    base = ["fit", "--config", DIGITS, "--model.model_kwargs", "{widths: [4, 8]}", "--trainer.default_root_dir",
            str(tmp_path), "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
            "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]
    after = ["--trainer.callbacks+=pytorch_lightning.callbacks.LearningRateMonitor"]
    with pytest.raises(ValueError) as e:
        cli_main([*base, *given, *after])
    advice = str(e.value).split("on the command line ")[1].split(" right after its own --trainer.callbacks.* options")[0]
    assert advice == "--trainer.callbacks.mode max"
    cli = cli_main([*base, *given, *advice.split(), *after], run=False)  # placed as the advice says
    stops = [c for c in cli.trainer.callbacks if isinstance(c, EarlyStopping)]
    assert [(s.monitor, s.mode, s.patience, s.min_delta) for s in stops] == [("val_acc", "max", 4, 0.25)]


def test_the_wrong_mode_advice_names_no_entry_that_drops_the_callback_s_other_arguments(tmp_path):
    """R10 §3: the advised "whole entry" held only monitor and mode (and a patience): a user who swapped theirs for it
    lost the ModelCheckpoint's dirpath, save_top_k and filename, the EarlyStopping's min_delta and stopping_threshold."""
    from neuroview.training.loop_guards import check_monitor_modes
    for cb in (ModelCheckpoint(monitor="val_acc", dirpath=str(tmp_path / "ck"), save_top_k=3, filename="best-{epoch}"),
               EarlyStopping(monitor="val_acc", min_delta=0.01, patience=5, stopping_threshold=0.99)):
        with pytest.raises(ValueError, match=rf"pass mode='max' to that callback, its other arguments as they are: "
                                             rf"{type(cb).__name__}\(monitor='val_acc', mode='max', <its other "
                                             r"arguments>\) in Python") as e:
            check_monitor_modes([cb])
        assert "whole entry" not in str(e.value) and "init_args: {monitor" not in str(e.value)


# R3 §4: a run started with EarlyStopping(monitor='val_acc') at mode 'min' (before the check) stays resumable
@pytest.fixture()
def min_mode_run(tmp_path, monkeypatch) -> str:
    """One epoch under EarlyStopping(monitor='val_acc') at Lightning's default mode 'min', saved as the code before
    the check saved it (check_monitor_modes switched off for this run only)."""
    import neuroview.training.loop_guards as guards
    with monkeypatch.context() as m:
        m.setattr(guards, "check_monitor_modes", lambda *a, **k: None)
        trainer = _trainer(tmp_path / "run", max_epochs=1, limit_train_batches=2, limit_val_batches=1,
                           callbacks=[EarlyStopping(monitor="val_acc", patience=50),
                                      ModelCheckpoint(str(tmp_path / "ck"), save_last=True)])
        trainer.fit(_module("none"), datamodule=DigitsDataModule(batch_size=64))
    last = str(tmp_path / "ck" / "last.ckpt")
    assert "EarlyStopping{'monitor': 'val_acc', 'mode': 'min'}" in torch.load(last, weights_only=False)["callbacks"]
    return last


def test_a_run_started_with_the_wrong_mode_resumes_under_it_with_a_warning(tmp_path, min_mode_run):
    """Before: refused as a fresh fit ("pass mode='max'"), and mode 'max' then refused by the resume check."""
    trainer = _trainer(tmp_path / "resumed", max_epochs=2, limit_train_batches=2, limit_val_batches=1,
                       callbacks=[EarlyStopping(monitor="val_acc", patience=50)])
    with pytest.warns(UserWarning, match=r"EarlyStopping\(monitor='val_acc', mode='min'\) stops the run when val_acc "
                                         r"stops falling, .*; the run resumed from .*last.ckpt was started with it, and goes "
                                         r"on under it: resume with mode='max' in its place \(its patience count starts "
                                         r"afresh: .*\), or start a new run from its weights with --model.init_weights"):
        trainer.fit(_module("none"), datamodule=DigitsDataModule(batch_size=64), ckpt_path=min_mode_run)
    assert trainer.global_step == 4  # its 2 steps, and 2 more


def test_a_run_started_with_the_wrong_mode_resumes_with_the_right_one(tmp_path, min_mode_run):
    """The command's resume check takes mode 'max' in place of the run's 'min' on the same monitor, with a warning; it
    still refuses another monitor. Before: "resume with the run's monitor and mode", which fit then refused."""
    from neuroview.training.resume_checks import check_resumed_stops
    saved = torch.load(min_mode_run, weights_only=False)["callbacks"]
    with pytest.warns(UserWarning, match=r"watched monitor 'val_acc', mode 'min', the wrong way round for val_acc; this "
                                         r"command's mode 'max' replaces it, and its patience count starts afresh"):
        check_resumed_stops(min_mode_run, saved, [EarlyStopping(monitor="val_acc", mode="max", patience=50)])
    with pytest.raises(ValueError, match=r"resumes a run whose EarlyStopping watched monitor 'val_acc', mode 'min', "
                                         r"and this command's watches monitor 'val_loss', mode 'min'"):
        check_resumed_stops(min_mode_run, saved, [EarlyStopping(monitor="val_loss", mode="min", patience=50)])
    trainer = _trainer(tmp_path / "resumed", max_epochs=2, limit_train_batches=2, limit_val_batches=1,
                       callbacks=[EarlyStopping(monitor="val_acc", mode="max", patience=50)])
    trainer.fit(_module("none"), datamodule=DigitsDataModule(batch_size=64), ckpt_path=min_mode_run)
    assert trainer.global_step == 4


def test_a_resume_adding_a_stop_of_the_wrong_mode_is_still_refused(tmp_path, min_mode_run):
    """The checkpoint holds no ModelCheckpoint on val_acc at mode 'min': the advice (mode='max') works, so it is refused."""
    trainer = _trainer(tmp_path / "resumed", max_epochs=2, limit_train_batches=2, limit_val_batches=1,
                       callbacks=[EarlyStopping(monitor="val_acc", patience=50),
                                  ModelCheckpoint(str(tmp_path / "ck2"), monitor="val_acc")])
    with pytest.raises(ValueError, match=r"^trainer.callbacks: ModelCheckpoint\(monitor='val_acc', mode='min'\) keeps "
                                         r"the checkpoint of the lowest val_acc, .*; pass mode='max' to that callback"):
        trainer.fit(_module("none"), datamodule=DigitsDataModule(batch_size=64), ckpt_path=min_mode_run)
    assert trainer.global_step == 0  # refused when the fit starts, before its loops are restored


# R3 §5: run_steps under a GradientAccumulationScheduler walks the schedule's stretches, not every epoch
class _CountingScheduler(GradientAccumulationScheduler):
    def __init__(self, scheduling):
        super().__init__(scheduling)
        self.calls = 0

    def get_accumulate_grad_batches(self, epoch: int) -> int:
        self.calls += 1
        return super().get_accumulate_grad_batches(epoch)


@pytest.mark.parametrize("max_epochs,max_steps,expected", [
    (7, -1, 10 + 10 + 3 * 4 + 2 * 5),  # factor 1 at epochs 0-1, 3 at 2-4 (ceil(10/3) = 4 steps), 2 at 5-6 (5 steps)
    (7, 25, 25),
    (4, -1, 10 + 10 + 2 * 4),  # the scheduler's key at epoch 5 lies past the run
    (10**9, 1000, 1000),
    (10**9, -1, 20 + 3 * 4 + (10**9 - 5) * 5),
])
def test_run_steps_under_a_scheduled_accumulation_adds_up_its_stretches(max_epochs, max_steps, expected):
    """10 batches an epoch, schedule {0: 1, 2: 3, 5: 2}. Before: one call per epoch up to max_epochs (10**7 epochs:
    4 s in configure_optimizers, though max_steps ended the run after 1000 steps)."""
    from types import SimpleNamespace
    from neuroview.training.schedules import run_steps
    acc = _CountingScheduler({0: 1, 2: 3, 5: 2})
    trainer = SimpleNamespace(estimated_stepping_batches=12345, callbacks=[acc], max_epochs=max_epochs,
                              max_steps=max_steps, num_training_batches=10)
    assert run_steps(trainer) == expected
    assert acc.calls <= 3
