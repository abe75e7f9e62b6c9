"""A resumed run's plateau schedule is the uninterrupted run's: every epoch-end checkpoint held the schedule as it was
before its epoch's check (Lightning steps plateau schedules after the checkpoint callbacks, and cannot replay the
step: the metric is not saved), so a resumed ``train_plateau`` run cut its rate an epoch late."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neuroview.training.cli import cli_main

DIGITS = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")

CUTTER = '''
import pytorch_lightning as pl

class Cut(Exception):
    pass

class CutAt(pl.Callback):
    def __init__(self, cut_at: int = -1):
        self.cut_at = cut_at

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.cut_at:
            raise Cut(trainer.current_epoch)
'''


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("every", ["1", "2"])  # 2: Lightning writes last.ckpt at validation, before the epoch's end
def test_a_resumed_train_plateau_run_keeps_the_uninterrupted_schedule(tmp_path, monkeypatch, every):
    (tmp_path / "nvcut.py").write_text(CUTTER)
    monkeypatch.syspath_prepend(str(tmp_path))

    def run(name: str, *extra: str):
        return cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path / name),
                         "--trainer.max_epochs", "5", "--model.model_kwargs", "{widths: [8, 16]}",
                         "--model.scheduler", "train_plateau", "--model.warmup_epochs", "0", "--model.plateau_patience", "0",
                         "--model.lr", "0.05", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
                         "--trainer.check_val_every_n_epoch", every,
                         "--trainer.accelerator", "cpu", "--trainer.deterministic", "true",
                         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                         "--test_after_fit", "false", "--trainer.callbacks+=nvcut.CutAt", *extra])

    run("whole")
    with pytest.raises(Exception, match="2") as e:
        run("cut", "--trainer.callbacks.cut_at", "2")  # epochs 0 and 1 done (1 validated), cut as epoch 2 starts
    assert type(e.value).__name__ == "Cut"
    run("cut", "--ckpt_path", "last")
    a, b = (torch.load(tmp_path / n / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
            for n in ("whole", "cut"))
    sa, sb = a["lr_schedulers"][0], b["lr_schedulers"][0]
    assert sa["last_epoch"] == 5  # one check per epoch
    for key in ("last_epoch", "best", "num_bad_epochs", "_last_lr"):
        assert sb[key] == sa[key], (key, sa[key], sb[key])
    assert [g["lr"] for g in b["optimizer_states"][0]["param_groups"]] == [g["lr"] for g in a["optimizer_states"][0]["param_groups"]]
