"""What :class:`~neuroview.training.module.NeuroViewModule` checks around Lightning's loops, so that a trainer option or
call order a user chooses gives the numbers it says or a named refusal.

Holds :class:`LoopGuards`, a mixin of hooks: one validation and one test loader (several were refused by Lightning's
advice to edit the module), metric states made again outside inference mode before a fit (a ``validate`` before
``fit`` left them inference tensors, and the fit's first update failed), Lightning's eval-mode warning silenced for
a frozen backbone during that fit's start only (it was silenced for the whole process), and unlabelled ``(x,
lengths)`` batches told from ``(x, y)`` in ``predict``. May import Lightning, torch and torchmetrics; nothing of
neuroview.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["LoopGuards"]

#: Lightning's warning at the start of a fit whose modules are not all in training mode (a frozen backbone is, on purpose)
EVAL_MODE_WARNING = r".*module\(s\) in eval mode at the start of training.*"


class LoopGuards:
    """Hooks of :class:`~neuroview.training.module.NeuroViewModule` (a mixin before ``pl.LightningModule``)."""

    def on_fit_start(self) -> None:
        super().on_fit_start()
        with torch.inference_mode(False):  # states a validate/test before this fit made under inference mode
            for m in self.modules():
                if isinstance(m, Metric) and any(isinstance(v, Tensor) and v.is_inference() for v in m.metric_state.values()):
                    m.reset()
        if self.hparams.get("freeze_backbone"):  # its backbone is in eval mode on purpose: this fit's warning only
            warnings.filterwarnings("ignore", message=EVAL_MODE_WARNING)
            self._eval_filter = warnings.filters[0]

    def on_train_start(self) -> None:
        super().on_train_start()
        self._drop_eval_filter()

    def on_fit_end(self) -> None:
        super().on_fit_end()
        self._drop_eval_filter()

    def _drop_eval_filter(self) -> None:
        """Lightning warns just before ``on_train_start``; the filter goes then, leaving the user's warnings as they were."""
        f, self._eval_filter = getattr(self, "_eval_filter", None), None
        if f is not None and f in warnings.filters:
            warnings.filters.remove(f)
            getattr(warnings, "_filters_mutated", lambda: None)()

    def on_validation_start(self) -> None:
        super().on_validation_start()
        _one_loader(self.trainer.val_dataloaders, "validation")

    def on_test_start(self) -> None:
        super().on_test_start()
        _one_loader(self.trainer.test_dataloaders, "test")

    def _predict_labels(self, x: Tensor, lengths: Tensor | None, y: Tensor | None) -> None:
        """Refuse a sequence model's 2-item predict batch whose second item reads as lengths, not labels: ``(x,
        lengths)`` was read as ``(x, y)``, the padding as data and the lengths returned as targets."""
        if not self.sequence_input or lengths is not None or not isinstance(y, Tensor) or y.dtype.is_floating_point:
            return
        n = self.hparams.num_classes
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n):
            raise ValueError(f"batch: a predict batch of 2 items is read as (x, y), and its second item holds "
                             f"{int(y.max())}, no class of {n}: (x, lengths)? give unlabelled variable-length series as "
                             "(x, lengths, y) with any labels, or padded to one length as (x,)")


def _one_loader(loaders, split: str) -> None:
    """Refuse several loaders: their samples would be pooled into one accuracy (or refused mid-loop by Lightning)."""
    if isinstance(loaders, (list, tuple)) and len(loaders) > 1:
        raise ValueError(f"{split} dataloaders: NeuroViewModule scores one {split} loader, got {len(loaders)}; run "
                         f"trainer.{'validate' if split == 'validation' else 'test'} once per loader")
