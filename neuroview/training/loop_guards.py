"""What :class:`~neuroview.training.module.NeuroViewModule` checks around Lightning's loops, so that a trainer option or
call order a user chooses gives the numbers it says or a named refusal.

Holds :class:`LoopGuards`, a mixin of hooks: one validation and one test loader, in a list or a dict (several were
refused by Lightning's advice to edit the module; a dict was let through, and its second loader's metrics pooled both
loaders), metric states made again outside inference mode before a fit (a ``validate`` before ``fit`` left them
inference tensors, and the fit's first update failed), Lightning's eval-mode warning silenced for a frozen backbone
during that fit's start only (it was silenced for the whole process), and unlabelled ``(x, lengths)`` batches told
from ``(x, y)`` in ``predict``; and :func:`first_loader`, the loader whose first batch finds a network's sites. May
import Lightning, torch and torchmetrics; nothing of neuroview.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["LoopGuards", "only_loader", "first_loader"]

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
        only_loader(self.trainer.val_dataloaders, "validation", _count(self.trainer, "num_val_batches"))

    def on_test_start(self) -> None:
        super().on_test_start()
        only_loader(self.trainer.test_dataloaders, "test", _count(self.trainer, "num_test_batches"))

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


def _count(trainer, attr: str) -> int:
    """The loaders the running loop holds (one count of batches each), whatever collection held them; 0 if unknown."""
    try:
        return len(getattr(trainer, attr))
    except (AttributeError, TypeError, AssertionError):
        return 0


def only_loader(loaders, split: str, count: int = 0):
    """The one loader of ``loaders`` (a loader, or a list, tuple or dict of one); several (``count``: as the loop counts
    them) are refused: their samples would be pooled into one accuracy (or refused mid-loop by Lightning). A dict was
    let through, and its second loader's metrics pooled both loaders' samples (each metric is one object)."""
    many = list(loaders.values()) if isinstance(loaders, Mapping) else loaders if isinstance(loaders, (list, tuple)) else None
    n = max(1 if many is None else len(many), count)
    if n > 1:
        named = f" (a dict: {', '.join(map(repr, loaders))})" if isinstance(loaders, Mapping) else ""
        raise ValueError(f"{split} dataloaders: NeuroViewModule scores one {split} loader, got {n}{named}; run "
                         f"trainer.{'validate' if split == 'validation' else 'test'} once per loader")
    return many[0] if many else loaders


def first_loader(loaders, name: str):
    """The loader whose first batch finds a network's sites, of a data module's ``name`` (``"train"``, ``"val"``,
    ``"test"``, ``"predict"``) loaders: for validation and test the only one (several refused by name, as the loop
    refuses them), else the first of a list or dict; None for an empty one."""
    if name in ("val", "test"):
        return only_loader(loaders, "validation" if name == "val" else "test")
    many = list(loaders.values()) if isinstance(loaders, Mapping) else loaders if isinstance(loaders, (list, tuple)) else None
    return loaders if many is None else (many[0] if many else None)
