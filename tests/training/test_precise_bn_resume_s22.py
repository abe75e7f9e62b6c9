"""With ``PreciseBatchNorm``, a run lengthened by a resume is the uninterrupted run: the statistics it recomputed into
``last.ckpt`` at the first end are not what the resumed epochs go on from (the training-time ones are, kept beside them),
and a best file it rewrote then, no longer at the last step, holds the training-time statistics again, as the
uninterrupted run's does. Before, the resumed epochs validated with other statistics (other ``val_loss``, and with a
closer plateau decision other rate cuts and another best) and fit's test scored a file the uninterrupted run never had.

The checkpoints rank by ``epoch`` with mode ``min``: the best is the epoch-0 file in both runs (a known answer)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neuroview.training.cli import cli_main
from neuroview.training.resume_state import NORM_STATS

DIGITS = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def fit(root: Path, epochs: int, *extra: str):
    return cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", str(epochs),
                     "--model.model_kwargs", "{widths: [8, 16]}", "--model.scheduler", "none",
                     "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "2", "--trainer.accelerator", "cpu",
                     "--trainer.deterministic", "true", "--trainer.enable_progress_bar", "false",
                     "--trainer.enable_model_summary", "false", "--test_after_fit", "false",
                     "--checkpoint.monitor", "epoch", "--checkpoint.mode", "min",
                     "--trainer.callbacks+=neuroview.training.callbacks.PreciseBatchNorm", *extra])


def state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_a_resumed_precise_bn_run_is_the_uninterrupted_run(tmp_path):
    whole = fit(tmp_path / "whole", 3)
    fit(tmp_path / "cut", 1)
    first = state(tmp_path / "cut" / "checkpoints" / "last.ckpt")
    key = "model.backbone.features.0.1.num_batches_tracked"
    assert first["state_dict"][key] == 20  # recomputed over the whole training loader (20 batches)
    assert first[NORM_STATS][key] == 3  # what training left: its 3 steps
    resumed = fit(tmp_path / "cut", 3, "--ckpt_path", "last")
    # the resumed epochs validated as the uninterrupted ones did (training-time statistics, 9 batches tracked by then)
    assert resumed.trainer.callback_metrics["val_loss"].item() == whole.trainer.callback_metrics["val_loss"].item()
    for name in ("last.ckpt", next((tmp_path / "whole" / "checkpoints").glob("best*.ckpt")).name):
        a, b = (state(tmp_path / run / "checkpoints" / name) for run in ("whole", "cut"))
        assert a["global_step"] == b["global_step"]
        assert a["state_dict"].keys() == b["state_dict"].keys()
        for k in a["state_dict"]:
            assert torch.equal(a["state_dict"][k], b["state_dict"][k]), (name, k)
        assert (NORM_STATS in a) == (NORM_STATS in b) == (name == "last.ckpt")
