"""What a run in processes a spawn strategy starts (``ddp_spawn``) needs of the module and the command line: metric
states local to each process (:class:`FreshMetrics`), a named error from a module whose building ran in those
processes only (:func:`not_built`), the optimizer steps a spawned ``fit`` ran (:func:`fit_steps`), which the main
process's trainer never counted, and a worker's process group closed before the worker exits
(:func:`close_group_at_exit`). May import Lightning and torch; nothing of neuroview.
"""

from __future__ import annotations

import atexit

import torch
import torchmetrics
from pytorch_lightning.strategies.launchers import _MultiProcessingLauncher

__all__ = ["FreshMetrics", "not_built", "fit_steps", "spawned", "close_group_at_exit"]

_METRICS = {"train": ("train_acc", "train_loss"), "val": ("val_acc", "val_f1", "val_loss"),
            "test": ("test_acc", "test_f1", "test_confmat", "test_loss")}


class FreshMetrics:
    """A LightningModule mixin (ahead of the others; each hook calls super): every metric of an epoch starts from
    fresh states of this process's own. A spawned worker unpickles the module's metric states into storage it
    shares with the other workers, so each rank's count already held every rank's samples, and the sync at compute
    summed them again (``ddp_spawn`` wrote a confusion matrix of twice the test split; ratios hid it)."""

    def _fresh(self, stage: str) -> None:
        for name in _METRICS[stage]:
            metric = getattr(self, name, None)
            if metric is not None:
                metric.reset()  # new tensors, not the shared ones

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if spawned(getattr(self, "_trainer", None)):  # every metric, a subclass's own too, in this worker's storage
            for metric in self.modules():
                if isinstance(metric, torchmetrics.Metric):
                    metric.reset()
            close_group_at_exit()

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self._fresh("train")

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._fresh("val")

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self._fresh("test")


def not_built(module) -> RuntimeError:
    """The error of a module whose network has not found its sites on a real batch yet (no head to name)."""
    if any(getattr(net, "classifier", None) is not None for net in module.deciders):  # a load built the head alone
        why = ("its head's weights were loaded (as Lightning loads them into the caller's module after a fit under a "
               "spawn strategy, ddp_spawn, whose worker processes built the module there only), the rest was not built")
    else:
        why = "builds its classifier there: setup takes that batch when a trainer runs the module in this process"
    return RuntimeError(f"{type(module).__name__}: module not built: the network finds its sites on a real batch, and "
                        f"{why}; call module.build(x) on a real batch x first")


def spawned(trainer) -> bool:
    """Whether ``trainer``'s strategy runs its stages in processes it starts (``ddp_spawn``, fork or spawn): the
    main process's trainer and module do not follow what they did."""
    return isinstance(getattr(getattr(trainer, "strategy", None), "launcher", None), _MultiProcessingLauncher)


def fit_steps(trainer) -> int | None:
    """The optimizer steps ``fit`` ran: the trainer's ``global_step``; after a spawned ``fit`` (whose main process
    counted none) the step of the best checkpoint the workers saved, the one path that comes back, or None where
    there is none (unknown)."""
    if trainer.global_step or not spawned(trainer):
        return trainer.global_step
    path = getattr(getattr(trainer, "checkpoint_callback", None), "best_model_path", "") or ""
    if not path or "://" in path:
        return None
    try:  # mmap: the step only, not the weights read into memory
        step = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step")
    except Exception:  # noqa: BLE001 - a file a user's callback filled with other objects: unknown, as without one
        return None
    return None if step is None else int(step)


_CLOSING: list = []  # the handler, once registered in this process


def _close_group() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def close_group_at_exit() -> None:
    """Destroy this process's default process group when it exits, before the interpreter tears down (once per
    process). Lightning does so for NCCL only; a ``ddp_spawn`` worker on the CPU (gloo) otherwise exits with its
    group's threads still running, and on a loaded machine one aborted in that teardown after the run had written
    all it writes ("terminate called without an active exception", SIGABRT), failing the command."""
    if not _CLOSING:
        _CLOSING.append(atexit.register(_close_group))
