"""Which weights a ``test`` or ``validate`` scored, recorded in the run's log folder: Lightning restores a checkpoint's
weights only, so the logger stamps the scores with the trainer's own epoch and step (after ``fit``, those of its last
step: fit's test of ``best-epoch002-step000060-*.ckpt`` was logged at epoch 4, step 80, ``last.ckpt``'s step), and
nothing in the run folder named the file. :class:`TestedCheckpoint` logs ``tested_epoch`` and ``tested_step`` beside
the scores, writes ``tested_checkpoint.json`` (the file, its epoch and step, a local path made absolute: the record is
read from the log folder, not the folder it was typed in) and prints one line to stderr. A network a callback put in the
module's place after the restore (``Sparsify`` fits a sparse head on the restored backbone) is recorded as what it is:
``sparsify``'s mark on it (``sparsity_path``), its file in the log folder (the one holding its tensors), the restored
weights as its ``backbone``, and no epoch or step of its own. After a spawned fit (``ddp_spawn``), whose steps the main
process never counted, the weights it ended with are named by the run's ``last.ckpt`` where they are that file's.
May import Lightning, torch, safetensors, ``neuroview._io`` and ``neuroview.training.outputs``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn
from safetensors.torch import load_file

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


def mark_fit_weights(trainer: pl.Trainer, module=None, checkpoint=None) -> None:
    """Tell ``trainer``'s :class:`TestedCheckpoint` that its next test, where it restores no file (``--test_ckpt last``),
    scores the weights ``fit`` ended with: their step is the trainer's, their epoch the last one started. After a
    spawned fit, whose steps the main process never counted: those ``checkpoint``'s ``last.ckpt`` records where
    ``module``'s weights are that file's (the workers' last, saved at the last epoch's end), else unknown."""
    for cb in getattr(trainer, "callbacks", ()):  # none: nothing records the test
        if isinstance(cb, TestedCheckpoint):
            step = trainer.global_step
            started = trainer.fit_loop.epoch_progress.current.started
            cb.fit_weights = (None, started - 1, step) if step and started else _as_last(module, checkpoint)


def _as_last(module, checkpoint) -> tuple[str | None, int | None, int | None]:
    """``(last.ckpt, its epoch, its step)`` where ``module``'s tensors are the ones that file holds, else unknown."""
    dirpath = getattr(checkpoint, "dirpath", None)
    last = Path(dirpath) / "last.ckpt" if dirpath and "://" not in str(dirpath) else None
    if module is None or last is None or not last.is_file():
        return None, None, None
    try:
        saved = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
        state = saved["state_dict"]
    except Exception:  # noqa: BLE001 - not a Lightning checkpoint: no evidence the weights are its, said unknown
        return None, None, None
    if not _same(module.state_dict(), state):  # other weights than the file's: its step would be another's
        return None, None, None
    return os.path.abspath(last), *ckpt_position(last)


def _same(now: dict, saved: dict) -> bool:
    """Whether the tensors of state dict ``now`` are those of ``saved``, key by key."""
    return now.keys() == saved.keys() and all(
        isinstance(v, torch.Tensor) and now[k].shape == v.shape and now[k].dtype == v.dtype
        and torch.equal(now[k].detach().cpu(), v) for k, v in saved.items())


def _local(path) -> str:
    """``path`` as the record keeps it: a local one absolute (as the test resolved it, from its working folder)."""
    return str(path) if "://" in str(path) else os.path.abspath(path)


class TestedCheckpoint(pl.Callback):
    """Records which weights ``trainer.test`` / ``trainer.validate`` (not fit's validation) scored: the checkpoint
    Lightning restored (``ckpt_path``), the weights ``fit`` ended with (:func:`mark_fit_weights`), or the module's
    ``init_weights`` file; with their epoch and step as the file records them (:func:`ckpt_position`). A network
    that replaced the module's after the restore (Sparsify's) is recorded as that network, the restored one as its
    backbone."""

    def __init__(self) -> None:
        self.fit_weights: tuple[str | None, int | None, int | None] | None = None
        self._net = None  # the module's network at setup: the one Lightning restores a checkpoint into

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage in ("test", "validate"):  # after Sparsify's setup (listed ahead), which puts its dense network back
            self._net = getattr(pl_module, "model", None)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._record(trainer, pl_module, "test")
        self.fit_weights = None  # one test: a later call of the trainer's restores its own

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:  # fit's own validations score the weights being trained
            self._record(trainer, pl_module, "validate")

    def _weights(self, trainer, pl_module) -> tuple[str | None, str, int | None, int | None]:
        """``(file, what it is, epoch, step)`` of the weights scored."""
        if trainer.ckpt_path:
            path = _local(trainer.ckpt_path)
            return path, path, *ckpt_position(trainer.ckpt_path)
        if self.fit_weights is not None:
            last, epoch, step = self.fit_weights
            same = f", the same as {last}'s" if last else ""  # a spawned fit's: its last.ckpt's epoch and step
            return last, f"the weights fit ended with (in memory{same})", epoch, step
        init = (getattr(pl_module, "hparams", None) or {}).get("init_weights")
        if init:
            return _local(init), f"{_local(init)} (model.init_weights)", *ckpt_position(init)
        return None, "the module's weights as built (no checkpoint)", None, None

    def _record(self, trainer, pl_module, stage: str) -> None:
        path, what, epoch, step = self._weights(trainer, pl_module)
        log_dir = trainer.log_dir  # a broadcast under DDP: every rank asks
        net, backbone = getattr(pl_module, "model", None), None
        if self._net is not None and net is not self._net:  # replaced after the restore: not the restored weights
            backbone = {"ckpt_path": path, "weights": what, "epoch": epoch, "global_step": step}
            path, what = _replaced(net, what, log_dir or trainer.default_root_dir)
            epoch = step = None  # a head fitted after training has no step of its own (the backbone's: its record)
        if epoch is not None and step is not None and step < _EXACT:  # beside the scores (the row keeps the trainer's step)
            pl_module.log("tested_epoch", float(epoch), sync_dist=True, batch_size=1)
            pl_module.log("tested_step", float(step), sync_dist=True, batch_size=1)
        if not trainer.is_global_zero:
            return
        where = ""
        if log_dir and getattr(trainer, "loggers", None) != []:  # no logger: the working folder is no run's
            record = {"stage": stage, "ckpt_path": path, "weights": what, "epoch": epoch, "global_step": step,
                      "scores": _SCORES[stage][1]} | ({"backbone": backbone} if backbone else {})
            out, kept = newest_at(Path(log_dir) / RECORD)  # a second test of one run keeps the first's record
            out.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(out, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
            where = f"; recorded in {out}{kept}"
        at = "epoch and step unknown" if epoch is None or step is None else f"epoch {epoch}, step {step}"
        if backbone:
            b_epoch, b_step = backbone["epoch"], backbone["global_step"]
            at = "no epoch or step of its own" + (
                "" if b_epoch is None or b_step is None else f"; the backbone's: epoch {b_epoch}, step {b_step}")
        print(f"neuroview: {_SCORES[stage][0]} {what} ({at}){where}", file=sys.stderr)


def _replaced(net, restored: str, folder) -> tuple[str | None, str]:
    """``(file, what it is)`` of ``net``, which a callback put in place of ``restored`` after the restore: a network
    :func:`.sparsify.sparsify` returned (it keeps ``sparsity_path``), saved in ``folder`` by ``Sparsify`` (the
    ``sparse*.safetensors`` there holding its tensors: none under fast_dev_run), or another, named as such."""
    if getattr(net, "sparsity_path", None) is None:
        return None, f"a network a callback put in place of {restored} after its restore (not its weights)"
    what = f"the sparse head Sparsify fitted on the backbone of {restored}"
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    for file in sorted(Path(folder).glob("sparse*.safetensors")) if folder else ():
        try:
            saved = load_file(file)
        except Exception:  # noqa: BLE001 - being written, or not a tensor file: not the one
            continue
        if _same(state, saved):
            return os.path.abspath(file), f"{os.path.abspath(file)} ({what})"
    return None, f"{what} (not saved)"
