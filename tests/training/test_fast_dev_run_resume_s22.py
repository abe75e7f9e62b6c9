"""A smoke test of a resume, ``fit --ckpt_path last --trainer.fast_dev_run true`` (s22, P1 finding 4).

Lightning's ``fast_dev_run`` sets ``max_epochs`` 1, ``max_steps`` 1 and ``limit_*_batches`` 1 itself and saves nothing.
The cosine schedule's resume check compared those overrides with the checkpoint's budget and refused the smoke test,
"--trainer.max_epochs, --trainer.max_steps, --trainer.limit_train_batches: changed since the checkpoint was saved",
advice the user cannot follow; and every ``fast_dev_run`` of a recipe with a warm-up warned that its warm-up lasts the
whole run, "expected fewer than 0 steps of warm-up". Step counts below are worked out by hand: the digits training split
gives 5 batches of 256 an epoch."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

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


def _module(**kw) -> NeuroViewModule:
    return NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs=TINY, lr=3e-3,
                           scheduler="cosine", **kw)


def _trainer(root, **kw) -> pl.Trainer:
    kw = {"accelerator": "cpu", "devices": 1, "logger": False, "enable_checkpointing": "callbacks" in kw,
          "enable_progress_bar": False, "enable_model_summary": False, "limit_val_batches": 0,
          "num_sanity_val_steps": 0, **kw}
    return pl.Trainer(default_root_dir=str(root), **kw)


def _warmup_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if str(w.message).startswith("warmup_epochs:")]


def test_a_fast_dev_run_does_not_warn_that_its_one_step_is_all_warm_up(tmp_path):
    pl.seed_everything(0)
    trainer = _trainer(tmp_path, fast_dev_run=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_module(warmup_epochs=1.0), datamodule=DigitsDataModule(batch_size=256))
    assert trainer.global_step == 1
    assert _warmup_warnings(caught) == []


@pytest.mark.parametrize("max_steps, said", [
    (1, "expected no warm-up (warmup_epochs 0) in a run of 1 step"),  # before: "expected fewer than 0 steps"
    (2, "expected no warm-up (warmup_epochs 0) in a run of 2 steps"),  # before: "fewer than 1 steps"
    (4, "expected fewer than 3 steps of warm-up"),  # 1 epoch = 5 steps of warm-up in a run of 4
])
def test_a_warm_up_as_long_as_the_run_asks_for_what_can_be_given(tmp_path, max_steps, said):
    trainer = _trainer(tmp_path, max_steps=max_steps)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_module(warmup_epochs=1.0), datamodule=DigitsDataModule(batch_size=256))
    [message] = _warmup_warnings(caught)
    assert f"(5 optimizer steps) last the whole run ({max_steps} steps)" in message and said in message, message
    assert "fewer than 0" not in message and "fewer than 1 " not in message


@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory) -> str:
    """A 2-epoch cosine run on 5 batches of 256 an epoch: its schedule runs over 10 steps, all taken."""
    root = tmp_path_factory.mktemp("run")
    pl.seed_everything(0)
    trainer = _trainer(root, max_epochs=2, callbacks=[ModelCheckpoint(str(root / "ck"), save_last=True)])
    trainer.fit(_module(), datamodule=DigitsDataModule(batch_size=256))
    assert trainer.global_step == 10
    return str(root / "ck" / "last.ckpt")


def _as_resumed(path: str) -> NeuroViewModule:
    """The module as a resume of ``path`` holds it when its optimizer is built (``_resumed``: what its
    ``on_load_checkpoint`` keeps of the checkpoint), without the restore's other checks (their own module's)."""
    saved = torch.load(path, weights_only=True)
    module = _module()
    module._resumed = {k: saved.get(k) for k in ("lr_schedulers", "neuroview_budget", "neuroview_epoch_steps")}
    return module


def test_the_schedule_of_a_fast_dev_run_resume_is_not_compared_with_its_one_step(tmp_path, two_epoch_run):
    assert torch.load(two_epoch_run, weights_only=True)["lr_schedulers"][0]["T_max"] == 10
    smoke = _trainer(tmp_path / "smoke", fast_dev_run=True)
    smoke.fit(_as_resumed(two_epoch_run), datamodule=DigitsDataModule(batch_size=256))
    assert smoke.global_step == 1
    # the check itself still holds outside a smoke test: 2 batches an epoch over 2 epochs is 4 steps, not 10
    other = _trainer(tmp_path / "other", max_epochs=2, limit_train_batches=2)
    with pytest.raises(ValueError, match=r"^--trainer.limit_train_batches: changed since the checkpoint was saved "
                                         r"\(limit_train_batches 1.0 then, 2 now\); .* over 10 optimizer steps .* "
                                         r"would take 4"):
        other.fit(_as_resumed(two_epoch_run), datamodule=DigitsDataModule(batch_size=256))


def test_the_command_runs_a_smoke_test_of_a_resume(tmp_path):
    """End to end, the finding's command; it needs resume_checks.check_budget's fast_dev_run exception as well (its
    max_epochs 1 / max_steps 1 were refused there first, as ending before the checkpoint)."""
    args = ["fit", "--config", DIGITS, "--model.model_kwargs", "{widths: [4, 8]}", "--trainer.max_epochs", "2",
            "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
            "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--test_after_fit", "false"]
    cli_main(args)
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    cli_main([*args, "--ckpt_path", "last", "--trainer.fast_dev_run", "true"])
    assert last.read_bytes() == before  # a smoke test saves nothing
