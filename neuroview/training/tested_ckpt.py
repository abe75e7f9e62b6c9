"""Which weights a ``test`` or ``validate`` scored, recorded in the run's log folder: Lightning restores a checkpoint's
weights only, so the logger stamps the scores with the trainer's own epoch and step (after ``fit``, those of its last
step: fit's test of ``best-epoch002-step000060-*.ckpt`` was logged at epoch 4, step 80, ``last.ckpt``'s step), and
nothing in the run folder named the file. :class:`TestedCheckpoint` logs ``tested_epoch`` and ``tested_step`` beside
the scores, writes ``tested_checkpoint.json`` (the file, its epoch and step) and prints one line to stderr.
May import Lightning, torch and ``neuroview.training.outputs``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn

from .._io import atomic_write
from .outputs import newest_at

__all__ = ["TestedCheckpoint", "ckpt_position", "mark_fit_weights"]

RECORD = "tested_checkpoint.json"
_SCORES = {"test": ("tested", "test_*"), "validate": ("validated", "val_*")}  # the verb, the metrics it scored
_EXACT = 2 ** 24  # a logged metric is a float32: a step above it would be logged rounded (the record keeps it whole)


def ckpt_position(path) -> tuple[int | None, int | None]:
    """``(epoch, global_step)`` that a Lightning checkpoint at ``path`` records, read without loading its weights into
    memory (mmap); ``(None, None)`` where it records none, is remote or is no file torch reads (a ``.safetensors``)."""
    if not path or "://" in str(path) or not Path(path).is_file():
        return None, None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not a torch checkpoint: no epoch or step to record, said so in the record
        return None, None
    if not isinstance(saved, dict):
        return None, None
    epoch, step = saved.get("epoch"), saved.get("global_step")
    return (None if epoch is None else int(epoch)), (None if step is None else int(step))


def mark_fit_weights(trainer: pl.Trainer) -> None:
    """Tell ``trainer``'s :class:`TestedCheckpoint` that its next test, where it restores no file (``--test_ckpt last``),
    scores the weights ``fit`` ended with: their step is the trainer's, their epoch the last one started (after a
    spawned fit, whose steps the main process never counted, both unknown)."""
    for cb in getattr(trainer, "callbacks", ()):  # none: nothing records the test
        if isinstance(cb, TestedCheckpoint):
            step = trainer.global_step
            started = trainer.fit_loop.epoch_progress.current.started
            cb.fit_weights = (started - 1, step) if step and started else (None, None)


class TestedCheckpoint(pl.Callback):
    """Records which weights ``trainer.test`` / ``trainer.validate`` (not fit's validation) scored: the checkpoint
    Lightning restored (``ckpt_path``), the weights ``fit`` ended with (:func:`mark_fit_weights`), or the module's
    ``init_weights`` file; with their epoch and step as the file records them (:func:`ckpt_position`)."""

    def __init__(self) -> None:
        self.fit_weights: tuple[int | None, int | None] | None = None

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._record(trainer, pl_module, "test")
        self.fit_weights = None  # one test: a later call of the trainer's restores its own

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:  # fit's own validations score the weights being trained
            self._record(trainer, pl_module, "validate")

    def _weights(self, trainer, pl_module) -> tuple[str | None, str, int | None, int | None]:
        """``(file, what it is, epoch, step)`` of the weights scored."""
        if trainer.ckpt_path:
            return str(trainer.ckpt_path), str(trainer.ckpt_path), *ckpt_position(trainer.ckpt_path)
        if self.fit_weights is not None:
            return None, "the weights fit ended with (in memory)", *self.fit_weights
        init = (getattr(pl_module, "hparams", None) or {}).get("init_weights")
        if init:
            return str(init), f"{init} (model.init_weights)", *ckpt_position(init)
        return None, "the module's weights as built (no checkpoint)", None, None

    def _record(self, trainer, pl_module, stage: str) -> None:
        path, what, epoch, step = self._weights(trainer, pl_module)
        if epoch is not None and step is not None and step < _EXACT:  # beside the scores (the row keeps the trainer's step)
            pl_module.log("tested_epoch", float(epoch), sync_dist=True, batch_size=1)
            pl_module.log("tested_step", float(step), sync_dist=True, batch_size=1)
        log_dir = trainer.log_dir  # a broadcast under DDP: every rank asks
        if not trainer.is_global_zero:
            return
        where = ""
        if log_dir and getattr(trainer, "loggers", None) != []:  # no logger: the working folder is no run's
            record = {"stage": stage, "ckpt_path": path, "weights": what, "epoch": epoch, "global_step": step,
                      "scores": _SCORES[stage][1]}
            out, kept = newest_at(Path(log_dir) / RECORD)  # a second test of one run keeps the first's record
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(out, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
            where = f"; recorded in {out}{kept}"
        at = "epoch and step unknown" if epoch is None or step is None else f"epoch {epoch}, step {step}"
        print(f"neuroview: {_SCORES[stage][0]} {what} ({at}){where}", file=sys.stderr)
