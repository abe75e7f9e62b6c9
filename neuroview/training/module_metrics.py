"""The metrics of :class:`~neuroview.training.module.NeuroViewModule`, the evaluation steps that update them, and the
optimizer's check of the weights' dtype.

Holds :class:`ModuleMetrics`, a mixin ahead of ``pl.LightningModule``: it makes the metrics, keeps their floating
states in float32 (float64 stays) whatever the trainer's precision, and scores a validation or test batch. Lightning's
``bf16-true`` and ``16-true`` cast the whole module, the loss means' states with it: a bfloat16 running sum stops
counting samples past 256, and ``test_loss`` read 2.05 at evaluation batch 1 for a mean of 1.42 (1.42 at batch 359).
:func:`check_optimizer_dtype` refuses Adam/AdamW over float16 weights, as ``nv.finetune_sparse`` does. May import
torch and torchmetrics; nothing of neuroview.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import MeanMetric, Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

__all__ = ["ModuleMetrics", "wide", "check_optimizer_dtype", "Float16WeightsError"]


def wide(t):
    """``t`` in float32 where it is a float16 or bfloat16 tensor; anything else (float32, float64, ints) as it is."""
    return t.float() if isinstance(t, Tensor) and t.is_floating_point() and t.element_size() < 4 else t


def _narrow(metric: Metric) -> bool:
    states = [*metric._defaults.values(), *(getattr(metric, k) for k in metric._defaults)]
    flat = [t for s in states for t in (s if isinstance(s, (list, tuple)) else [s])]
    return metric.dtype in (torch.float16, torch.bfloat16) or any(wide(t) is not t for t in flat)


def keep_wide(module: torch.nn.Module) -> None:
    """Every metric of ``module`` with float16/bfloat16 states (or dtype) back to float32, its defaults too (a reset
    keeps them); integer counts untouched (torchmetrics' own ``set_dtype`` would cast them as well)."""
    for m in module.modules():
        if isinstance(m, Metric) and _narrow(m):
            m._apply(wide)  # a plain function: torchmetrics applies it to the states, their defaults and its dtype


class ModuleMetrics:
    """A mixin of :class:`~neuroview.training.module.NeuroViewModule` (before ``pl.LightningModule``)."""

    def _make_metrics(self, num_classes: int) -> None:
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_f1 = MulticlassF1Score(num_classes, average="macro")
        self.test_confmat = MulticlassConfusionMatrix(num_classes)
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()  # all ranks' samples
        keep_wide(self)  # made under a reduced default dtype (a trainer's init_module())

    def _apply(self, fn, *args, **kwargs):
        # every cast of the module (.to(dtype), .half(), a precision plugin's) casts the metric states too: not theirs.
        # A metric's own move (Lightning's logging moves it to the logged value's device) under bf16-true's default
        # dtype sets its dtype to bfloat16, to which update casts each value: the updates re-widen it first
        out = super()._apply(fn, *args, **kwargs)
        keep_wide(self)
        return out

    def _score_train(self, logits: Tensor, y: Tensor, loss: Tensor) -> None:
        """Update and log the training metrics with a step's ``logits`` and (unpenalized) ``loss``."""
        keep_wide(self.train_loss)
        self.train_acc(logits, y), self.train_loss(loss.detach(), len(y))
        self.log("train_loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))

    def _score(self, split: str, logits: Tensor, y: Tensor) -> None:
        """Update and log ``split``'s (``"val"``, ``"test"``) metrics with a batch's ``logits``; the loss from float32
        logits (a bfloat16 batch mean rounds to 3 digits)."""
        getattr(self, f"{split}_acc")(logits, y)
        getattr(self, f"{split}_f1")(logits, y)
        if split == "test":
            self.test_confmat.update(logits, y)
        loss = getattr(self, f"{split}_loss")
        keep_wide(loss)
        loss.update(self._loss(wide(logits), y), weight=len(y))
        val = split == "val"
        self.log(f"{split}_loss", loss, prog_bar=val, batch_size=len(y))
        self.log(f"{split}_acc", getattr(self, f"{split}_acc"), prog_bar=val, batch_size=len(y))
        self.log(f"{split}_f1", getattr(self, f"{split}_f1"), batch_size=len(y))


class Float16WeightsError(TypeError, ValueError):
    """A TypeError, as ``nv.finetune_sparse`` raises for the same weights, that is also a ValueError: the command line
    prints it as the refusal of an option (``--trainer.precision``), in one line, rather than with a traceback."""


def check_optimizer_dtype(module: torch.nn.Module, optimizer: str) -> None:
    """Refuse Adam/AdamW over trainable float16 weights (``--trainer.precision 16-true``): their eps 1e-8 rounds to 0 in
    float16, the first step divided by zero and the weights became NaN (the error came later and blamed x)."""
    if optimizer in ("adam", "adamw") and any(p.dtype == torch.float16 for p in module.parameters() if p.requires_grad):
        name = "AdamW" if optimizer == "adamw" else "Adam"
        raise Float16WeightsError(f"optimizer: float16 weights to train (precision 16-true), which {name} cannot train "
                                  "(its eps 1e-8 rounds to 0 in float16: the weights became NaN); train with "
                                  "--trainer.precision bf16-true or bf16-mixed (16-mixed on a GPU), or with "
                                  "--model.optimizer sgd")
