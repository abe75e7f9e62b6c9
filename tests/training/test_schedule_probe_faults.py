"""The probe's faults of the plateau runs: resuming a run that EarlyStopping already ended rewrote its final weights; a
resume's new EarlyStopping patience was replaced by the checkpoint's without a word; a min_lr_factor above 1 made
train_plateau a constant rate; the benchmarks recorded a run cut by max_time as stopped on its plateau, and a zoo
entry's training as ``max_steps`` of the steps run."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest
import torch

from neuroview.training.cli import cli_main
from neuroview.training.module import NeuroViewModule

DIGITS = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "3",
         "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
         "--test_after_fit", "false", "--trainer.logger", "false", "--model.scheduler", "train_plateau",
         "--model.warmup_epochs", "0"]  # the ucr_* recipes' schedule, which reads no budget: a resume may extend it
ES_KEY = "EarlyStopping{'monitor': 'train_loss_epoch', 'mode': 'min'}"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)


def stop_config(path: Path, patience: int, min_delta: float = 0.0, mode: str = "min") -> str:
    path.write_text("trainer:\n  callbacks:\n    - class_path: pytorch_lightning.callbacks.EarlyStopping\n"
                    f"      init_args: {{monitor: train_loss_epoch, mode: {mode}, patience: {patience}, "
                    f"min_delta: {min_delta}, check_on_train_epoch_end: true}}\n")
    return str(path)


def fit(root: Path, stop: str, *extra: str):
    args = ["fit", "--config", DIGITS, "--config", stop, "--trainer.default_root_dir", str(root), *QUICK]
    return cli_main([*args, *extra])


def test_resuming_a_run_that_early_stopping_ended_is_refused_and_its_last_ckpt_kept(tmp_path):
    """Lightning saves no should_stop: the 'resume' trained one more epoch and rewrote last.ckpt (the finished run's
    final weights, which its test and the benchmarks score) before the restored EarlyStopping stopped it again."""
    stop = stop_config(tmp_path / "stop.yaml", patience=1, min_delta=100.0)  # no epoch improves by 100: ends at epoch 1
    cli = fit(tmp_path / "run", stop, "--trainer.max_epochs", "5")
    assert cli.trainer.current_epoch == 2 and cli.trainer.global_step == 6  # ended at epoch 1 of 5
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    before = hashlib.sha256(last.read_bytes()).hexdigest()
    assert torch.load(last, weights_only=False)["callbacks"][ES_KEY]["stopped_epoch"] == 1
    with pytest.raises(ValueError, match=r"ckpt_path: .*last.ckpt is a run that already ended on its plateau at "
                                         r"epoch 1 \(EarlyStopping\{'monitor': 'train_loss_epoch', 'mode': 'min'\}: "
                                         r"Monitored metric train_loss_epoch did not improve .*\): nothing to resume; "
                                         r"test it with neuroview test --ckpt_path .*last.ckpt"):
        fit(tmp_path / "run", stop, "--trainer.max_epochs", "5", "--ckpt_path", "last")
    assert hashlib.sha256(last.read_bytes()).hexdigest() == before


def test_a_resume_with_another_early_stopping_rule_is_refused_by_name(tmp_path):
    """Lightning's EarlyStopping.load_state_dict restores the checkpoint's patience over the command's (whose
    config.yaml records the new one); another monitor or mode restores nothing (a fresh count mid-run)."""
    root = tmp_path / "run"
    stop = stop_config(tmp_path / "stop.yaml", patience=6)
    fit(root, stop, "--trainer.max_epochs", "1")
    longer = stop_config(tmp_path / "longer.yaml", patience=1000)
    with pytest.raises(ValueError, match=r"ckpt_path: .*last.ckpt resumes a run whose EarlyStopping \(monitor "
                                         r"'train_loss_epoch', mode 'min'\) had patience 6, and this command gives "
                                         r"patience 1000; Lightning would restore the checkpoint's 6 over it"):
        fit(root, longer, "--trainer.max_epochs", "2", "--ckpt_path", "last")
    other = stop_config(tmp_path / "other.yaml", patience=6, mode="max")
    with pytest.raises(ValueError, match=r"EarlyStopping watched monitor 'train_loss_epoch', mode 'min', and this "
                                         r"command's watches monitor 'train_loss_epoch', mode 'max'"):
        fit(root, other, "--trainer.max_epochs", "2", "--ckpt_path", "last")
    cli = fit(root, stop, "--trainer.max_epochs", "2", "--ckpt_path", "last")  # the run's own rule resumes
    assert cli.trainer.global_step == 6


@pytest.mark.parametrize("bad", [2.0, 1.5, -0.1, math.nan])
def test_a_min_lr_factor_outside_0_1_is_refused_by_name(bad):
    """A floor above each peak rate (ReduceLROnPlateau keeps max(lr * factor, floor)) never let train_plateau cut."""
    with pytest.raises(ValueError, match=r"min_lr_factor: expected a number in \[0, 1\] \(each rate's floor as a "
                                         rf"fraction of its peak\), got {bad}"):
        NeuroViewModule("nv_small_cnn", num_classes=3, in_channels=1, model_kwargs={"widths": [4]},
                        scheduler="train_plateau", min_lr_factor=bad)
    m = NeuroViewModule("nv_small_cnn", num_classes=3, in_channels=1, model_kwargs={"widths": [4]},
                        scheduler="train_plateau", min_lr_factor=1.0)  # a floor at the peak: a constant rate, as asked
    assert m.hparams.min_lr_factor == 1.0
    import numpy as np
    NeuroViewModule("nv_small_cnn", num_classes=3, in_channels=1, model_kwargs={"widths": [4]},
                    scheduler="train_plateau", min_lr_factor=np.float32(0.1))  # numpy's numbers are numbers


def _es(stopped_epoch: int, reason: int) -> dict:
    return {ES_KEY: {"wait_count": 3, "stopped_epoch": stopped_epoch, "best_score": torch.tensor(0.6), "patience": 6,
                     "stopping_reason": reason, "stopping_reason_message": None}}


def test_the_benchmarks_read_why_a_run_stopped_from_its_checkpoint(benchmark_script):
    """A run that --trainer.max_time cut (EarlyStopping never fired: stopped_epoch 0) was recorded as stopped on its
    plateau, and its cut epoch (last.ckpt saved after 8 of its 10 batches) counted as one more."""
    rz = benchmark_script("reproduce_zoo")
    stop = {"class_path": "pytorch_lightning.callbacks.EarlyStopping", "init_args": {"monitor": "train_loss_epoch"}}
    cfg = {"trainer": {"max_epochs": 1500, "max_steps": -1, "max_time": "00:00:00:03", "callbacks": [stop]}}
    cut = {"epoch": 18, "global_step": 188, "neuroview_mid_epoch": 8, "callbacks": _es(0, 0)}
    assert rz.stop_reason(cut, cfg) == ("time", 18)
    plateau = {"epoch": 20, "global_step": 210, "neuroview_mid_epoch": None, "callbacks": _es(20, 3)}
    assert rz.stop_reason(plateau, cfg) == ("plateau", 21)
    assert rz.stop_reason({**plateau, "callbacks": _es(20, 2)}, cfg) == ("other", 21)  # divergence: no plateau
    assert rz.stop_reason({**plateau, "epoch": 1499, "global_step": 14990}, cfg) == ("max", 1500)
    no_time = {"trainer": {**cfg["trainer"], "max_time": None}}
    assert rz.stop_reason(cut, no_time)[0] == "other"


def test_an_exported_zoo_entry_records_the_recipe_s_budget_and_why_it_stopped(monkeypatch, benchmark_script):
    """run_one(export=True) recorded {"max_steps": <steps run>, "checkpoint": "last step"} for a plateau-stopped run
    whose recipe's budget is max_epochs 1500."""
    ua = benchmark_script("ucr_accuracy")
    from neuroview.zoo import pretrained as zoo

    run = {"metrics": {"test_acc": 0.5, "test_size": 2}, "arch": "rnn", "model": None, "data": {}, "arch_kwargs": {},
           "fit": {"train_acc": 1.0, "train_loss": 0.6, "stopped": "plateau"}, "epochs": 21, "steps": 210,
           "seconds": 3.0, "budget": {"max_epochs": 1500, "max_steps": -1}}
    monkeypatch.setattr(ua, "train", lambda *a, **k: run)
    seen = {}
    monkeypatch.setattr(zoo, "make_datamodule", lambda spec: type("DM", (), {"class_names": ["a", "b"]})())
    monkeypatch.setattr(zoo, "save_pretrained", lambda model, name, **kw: seen.update(kw["extra"]["training"]))
    ua.run_one("recipes/ucr_rnn.yaml", "GunPoint", 0, export=True)
    assert seen["max_epochs"] == 1500 and "max_steps" not in seen  # the recipe's budget, not the steps run
    assert (seen["epochs"], seen["steps"], seen["stopped"], seen["checkpoint"]) == (21, 210, "plateau", "last epoch")
    assert seen["command"].startswith("neuroview fit --config recipes/ucr_rnn.yaml --data.init_args.name GunPoint")


def test_a_run_min_epochs_kept_going_is_resumed_not_refused_as_finished(tmp_path):
    """EarlyStopping saves its signal (stopped_epoch, stopping_reason) though min_epochs kept Lightning from
    stopping: a run ended by max_epochs under min_epochs was refused as "already ended on its plateau"."""
    stop = stop_config(tmp_path / "stop.yaml", patience=1, min_delta=100.0)  # signals from epoch 1 on
    root = tmp_path / "run"
    cli = fit(root, stop, "--trainer.max_epochs", "3", "--trainer.min_epochs", "10")
    assert cli.trainer.global_step == 9  # all 3 epochs: min_epochs kept it going
    saved = torch.load(root / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["callbacks"][ES_KEY]["stopped_epoch"] == saved["epoch"] == 2  # the signal, saved all the same
    cli = fit(root, stop, "--trainer.max_epochs", "4", "--trainer.min_epochs", "10", "--ckpt_path", "last")
    assert cli.trainer.global_step == 12  # resumed: one more epoch


def test_a_finished_run_resumed_without_its_early_stopping_continues_with_a_warning(tmp_path):
    """With its EarlyStopping removed nothing stops the resumed run again (check_resumed_stops allows removing it):
    it was refused as finished all the same."""
    stop = stop_config(tmp_path / "stop.yaml", patience=1, min_delta=100.0)
    root = tmp_path / "run"
    fit(root, stop, "--trainer.max_epochs", "5")  # ends at epoch 1
    args = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK]
    with pytest.warns(UserWarning, match=r"ended on its plateau at epoch 1 .*no such EarlyStopping, so the resumed "
                                         r"run continues past that stop"):
        cli = cli_main([*args, "--trainer.max_epochs", "3", "--ckpt_path", "last"])
    assert cli.trainer.global_step == 9


def test_a_run_is_finished_only_where_its_early_stopping_ended_it_at_that_save(benchmark_script):
    """The rule itself: the signal at the saved epoch, saved at that epoch's end, min_epochs/min_steps reached."""
    from types import SimpleNamespace

    from pytorch_lightning.callbacks import EarlyStopping

    from neuroview.training.resume_checks import check_not_finished

    def trainer(min_epochs=None, min_steps=None, stops=True):
        cbs = [EarlyStopping(monitor="train_loss_epoch", mode="min", patience=6)] if stops else []
        return SimpleNamespace(callbacks=cbs, min_epochs=min_epochs, fit_loop=SimpleNamespace(min_steps=min_steps))

    ended = {"epoch": 20, "global_step": 210, "neuroview_mid_epoch": None, "callbacks": _es(20, 3)}
    with pytest.raises(ValueError, match="already ended on its plateau at epoch 20"):
        check_not_finished("x.ckpt", ended, trainer())
    # a save within epoch 20: of an older checkpoint (no record of the stop) not taken as the end
    check_not_finished("x.ckpt", {**ended, "neuroview_mid_epoch": 4}, trainer())
    rec = {"should_stop": True, "can_stop": True, "min_epochs": None, "min_steps": None}
    with pytest.raises(ValueError, match="already ended"):  # the trainer stopping there (val_check_interval 0.5)
        check_not_finished("x.ckpt", {**ended, "neuroview_mid_epoch": 4, "neuroview_stopping": rec}, trainer())
    for other in ({"should_stop": False}, {"can_stop": False}):  # a max_time cut, a stop min_epochs held off
        check_not_finished("x.ckpt", {**ended, "neuroview_mid_epoch": 4, "neuroview_stopping": {**rec, **other}},
                           trainer())
    check_not_finished("x.ckpt", {**ended, "epoch": 22, "global_step": 230}, trainer())  # an earlier signal
    check_not_finished("x.ckpt", ended, trainer(min_epochs=22))  # min_epochs kept it going
    check_not_finished("x.ckpt", ended, trainer(min_steps=211))
    with pytest.raises(ValueError):
        check_not_finished("x.ckpt", ended, trainer(min_epochs=21, min_steps=210))  # both reached
    with pytest.warns(UserWarning, match="continues past that stop"):
        check_not_finished("x.ckpt", ended, trainer(stops=False))


def test_a_max_time_cut_within_the_last_epoch_is_no_max(benchmark_script):
    """Saved within epoch 1499 of 1500 (a max_time cut): recorded as ended by its max_epochs."""
    rz = benchmark_script("reproduce_zoo")
    cfg = {"trainer": {"max_epochs": 1500, "max_steps": -1, "max_time": "00:00:00:03", "callbacks": []}}
    cut = {"epoch": 1499, "global_step": 14988, "neuroview_mid_epoch": 8, "callbacks": _es(0, 0)}
    assert rz.stop_reason(cut, cfg) == ("time", 1499)
    assert rz.stop_reason({**cut, "neuroview_mid_epoch": None, "global_step": 15000}, cfg) == ("max", 1500)


def test_a_zoo_entry_records_the_checkpoint_kept_the_budget_given_and_the_command_run(monkeypatch,
                                                                                     benchmark_script):
    """A max_steps stop keeps the last step's weights (mid-epoch), not the last epoch's; a max_steps-only recipe
    has no max_epochs -1; the recorded command left out the val/fold overrides and extra options."""
    rz, ua = benchmark_script("reproduce_zoo"), benchmark_script("ucr_accuracy")
    run = {"fit": {"stopped": "max"}, "epochs": 3, "steps": 100, "seconds": 2.0, "mid_epoch": True,
           "budget": {"max_epochs": -1, "max_steps": 100}}
    rec = rz.training_record(run, "cmd")
    assert rec["checkpoint"] == "last step" and "max_epochs" not in rec and rec["max_steps"] == 100
    assert rz.training_record({**run, "mid_epoch": False}, "cmd")["checkpoint"] == "last epoch"
    from neuroview.zoo import pretrained as zoo

    full = {**run, "metrics": {"val_acc": 0.5, "val_size": 2}, "arch": "rnn", "model": None, "data": {},
            "arch_kwargs": {}, "fit": {"train_acc": 1.0, "train_loss": 0.6, "stopped": "max"}}
    monkeypatch.setattr(ua, "train", lambda *a, **k: full)
    seen = {}
    monkeypatch.setattr(zoo, "make_datamodule", lambda spec: type("DM", (), {"class_names": ["a", "b"]})())
    monkeypatch.setattr(zoo, "save_pretrained", lambda model, name, **kw: seen.update(kw["extra"]["training"]))
    ua.run_one("recipes/ucr_rnn.yaml", "GunPoint", 1, export=True, extra=("--model.lr", "0.01"), val=0.2, cv=True)
    assert seen["command"] == ("neuroview fit --config recipes/ucr_rnn.yaml --data.init_args.name GunPoint "
                               "--data.init_args.val_fraction 0.2 --data.init_args.val_fold 1 --model.lr 0.01 "
                               "--seed_everything 1")


@pytest.mark.parametrize("bad", ["0.5", None, True])
def test_a_plateau_factor_of_another_type_is_refused_by_name(bad):
    """A string or None gave a bare TypeError of the comparison ('<' not supported ...)."""
    from neuroview.training.schedules import check_plateau_args

    with pytest.raises(ValueError, match=rf"plateau_factor: expected a number in \(0, 1\), got {bad!r}"):
        check_plateau_args(bad, 0.1)
    check_plateau_args(0.5, 0.1)


def test_a_run_early_stopping_ended_at_a_mid_epoch_validation_is_refused_as_finished(tmp_path):
    """val_check_interval 0.5: EarlyStopping ends the run within its epoch, and last.ckpt is that mid-epoch save; it
    was exempt from the check (any save within an epoch taken as a cut), so the "resume" rewrote last.ckpt."""
    stop = tmp_path / "stop.yaml"
    stop.write_text("trainer:\n  callbacks:\n    - class_path: pytorch_lightning.callbacks.EarlyStopping\n"
                    "      init_args: {monitor: val_loss, mode: min, patience: 1, min_delta: 100.0}\n")
    root, mid = tmp_path / "run", ["--trainer.max_epochs", "5", "--trainer.val_check_interval", "0.5"]
    fit(root, str(stop), *mid)
    last = root / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=False)
    assert saved["neuroview_mid_epoch"] is not None and saved["epoch"] == 0  # ended within its first epoch
    before = hashlib.sha256(last.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match=r"ckpt_path: .*last.ckpt is a run that already ended .*nothing to resume"):
        fit(root, str(stop), *mid, "--ckpt_path", "last")  # before: resumed, last.ckpt rewritten
    assert hashlib.sha256(last.read_bytes()).hexdigest() == before


def test_a_finished_run_is_held_to_its_own_min_epochs_not_the_resume_s(tmp_path):
    """--trainer.min_epochs 10 on the resume made a run that ended at epoch 1 resumable (the resumed trainer's
    min_epochs read as the run's): its own, recorded in the checkpoint, rule."""
    stop = stop_config(tmp_path / "stop.yaml", patience=1, min_delta=100.0)  # ends at epoch 1 of 5
    fit(tmp_path / "run", stop, "--trainer.max_epochs", "5")
    with pytest.raises(ValueError, match=r"already ended on its plateau at epoch 1"):  # before: resumed
        fit(tmp_path / "run", stop, "--trainer.max_epochs", "5", "--trainer.min_epochs", "10", "--ckpt_path", "last")
