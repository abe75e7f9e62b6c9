"""Lightning callbacks of the ``neuroview`` runs: ``Checkpoint`` and ``PredictionWriter``.

``Checkpoint`` keeps ``last.ckpt`` at the latest epoch and never leaves half of one;
``PredictionWriter`` writes ``predictions.csv``. May import Lightning, torch and
``neuroview._io``; nothing else of neuroview.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter, ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_info

from .._io import atomic_write

__all__ = ["Checkpoint", "PredictionWriter"]


class Checkpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``last.ckpt`` follows every epoch, as ``--ckpt_path last`` needs.

    Since Lightning 2.6, ``save_last=True`` writes ``last.ckpt`` only when a top-k checkpoint is
    saved at the same step, so with ``save_top_k=1`` it is a copy of the best epoch and a resumed
    run would go back to it. This saves the latest state after each epoch as well.
    """

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        # Lightning writes through an fsspec transaction whose temporary file lies in the system
        # temp dir; across file systems its final move is a copy, and a kill mid-copy leaves half a
        # last.ckpt. A temporary file next to the target and os.replace is atomic on any local disk.
        # Not neuroview._io.atomic_write: Lightning must write the file itself (through the
        # strategy's checkpoint IO, on every rank of a sharded strategy), so there are no bytes to
        # hand over, and every rank must name the same temporary path, not a random mkstemp one.
        if "://" in str(filepath):
            return super()._save_checkpoint(trainer, filepath)
        tmp = f"{filepath}.tmp"
        super()._save_checkpoint(trainer, tmp)
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            os.replace(tmp, filepath)
        trainer.strategy.barrier("Checkpoint._save_checkpoint")

    def _save_last_anyway(self, trainer: pl.Trainer, at_train_epoch_end: bool) -> None:
        if (self.save_last and not self._should_skip_saving_checkpoint(trainer)
                and self._should_save_on_train_epoch_end(trainer) == at_train_epoch_end):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._save_last_anyway(trainer, True)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._save_last_anyway(trainer, False)


class PredictionWriter(BasePredictionWriter):
    """Writes ``predictions.csv`` (index, target, prediction, class probabilities) next to the logs."""

    def __init__(self, output_dir: str | None = None):
        super().__init__(write_interval="epoch")
        self.output_dir = output_dir

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        if not predictions or not isinstance(predictions[0], dict):
            return
        out = Path(self.output_dir or trainer.log_dir or ".")
        out.mkdir(parents=True, exist_ok=True)
        name = "predictions.csv" if trainer.world_size == 1 else f"predictions_rank{trainer.global_rank}.csv"
        preds = torch.cat([p["preds"] for p in predictions]).tolist()
        probs = torch.cat([p["probs"] for p in predictions]).tolist()
        target = torch.cat([p["target"] for p in predictions]).tolist() if "target" in predictions[0] else [""] * len(preds)
        index = [i for b in (batch_indices[0] if batch_indices and batch_indices[0] else []) for i in b] or list(range(len(preds)))
        f = io.StringIO(newline="")
        w = csv.writer(f)
        w.writerow(["index", "target", "pred", *[f"prob_{c}" for c in range(len(probs[0]))]])
        for row in zip(index, target, preds, probs):
            w.writerow([*row[:3], *[f"{p:.6g}" for p in row[3]]])
        atomic_write(out / name, f.getvalue().encode())  # a crash leaves the previous predictions.csv whole
        rank_zero_info(f"predictions written to {out / name}")
