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
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_info

from .._io import atomic_write

__all__ = ["Checkpoint", "PredictionWriter"]


class Checkpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``last.ckpt`` follows every epoch, as ``--ckpt_path last`` needs, and
    whose files are never half written.

    Since Lightning 2.6, ``save_last=True`` writes ``last.ckpt`` only when a top-k checkpoint is
    saved at the same step, so with ``save_top_k=1`` it is a copy of the best epoch and a resumed
    run would go back to it. This also saves the latest state at the end of every training epoch
    (public hook ``on_train_epoch_end``, which Lightning calls after the epoch's validation),
    unless Lightning has just written ``last.ckpt`` at that step itself.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._written_at: dict[str, int] = {}  # file -> global step of its last write (through _save_checkpoint)

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        # The one private member overridden, and why no public one does: every file ModelCheckpoint
        # writes (top-k, last, on an exception, at the end of training) goes through this method,
        # and it has no public hook around the write. The public place to change how files are
        # written is the strategy's CheckpointIO plugin; a callback cannot install one without
        # replacing the IO a user or a strategy chose (--trainer.plugins, an async or remote IO,
        # DeepSpeed's or FSDP's own).
        # Why a temporary file at all: Lightning writes through an fsspec transaction whose temporary
        # file lies in the system temp dir; across file systems its final move is a copy, and a kill
        # mid-copy leaves half a last.ckpt. A temporary file next to the target and os.replace is
        # atomic on any local disk.
        # Not neuroview._io.atomic_write: Lightning must write the file itself (through the
        # strategy's checkpoint IO, on every rank of a sharded strategy), so there are no bytes to
        # hand over, and every rank must name the same temporary path, not a random mkstemp one.
        if "://" in str(filepath):
            return super()._save_checkpoint(trainer, filepath)
        tmp = f"{filepath}.tmp"
        super()._save_checkpoint(trainer, tmp)
        # super() recorded the temporary name; Lightning's save_last="link" and on_train_end read it
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            os.replace(tmp, filepath)
        trainer.strategy.barrier("Checkpoint._save_checkpoint")
        self._written_at[filepath] = trainer.global_step

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if (not self.save_last or trainer.sanity_checking or trainer.fast_dev_run
                or trainer.state.fn != TrainerFn.FITTING):
            return
        metrics = {**trainer.callback_metrics, "epoch": trainer.current_epoch, "step": trainer.global_step}
        path = self.format_checkpoint_name(metrics, self.CHECKPOINT_NAME_LAST)
        if self._written_at.get(path) != trainer.global_step:  # not written with a top-k checkpoint at this step
            self.last_model_path = path  # before the write: the checkpoint holds this callback's state
            self._save_checkpoint(trainer, path)


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
