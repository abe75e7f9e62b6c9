"""Scoring a network on a data module without Lightning: what the manifest's metrics are.

:func:`make_datamodule` builds the data module a manifest entry names (only classes of
:mod:`neuroview.data`), :func:`evaluate` counts correct predictions on a loader, and
:func:`score_test_split` gives the accuracies a manifest entry records. May import
``neuroview._batch`` and, deferred because Lightning imports slowly, ``neuroview.data``.
"""

from __future__ import annotations

import inspect

import torch
from torch import Tensor, nn

from .._batch import call_model, check_lengths, takes_lengths, unpack
from ..core._utils import factory

__all__ = ["SLICE_SIZE", "make_datamodule", "predict", "evaluate", "score_test_split"]

#: Test samples of the quick check: the first ``SLICE_SIZE`` of the (unshuffled) test split.
SLICE_SIZE = 128


def make_datamodule(spec: dict):
    """The data module of a manifest entry: ``{"class_path": "neuroview.data.X", "init_args": {...}}``, and
    ``"read_like"``: the spec of the data the model was trained on, where it is other data read as that was
    (:func:`neuroview.data.read_as.read_like`: its channel statistics and series length), and ``"neuroview_data_file"``:
    the fingerprint of the file's training split the entry was made on, the file changed since refused by name
    (:func:`neuroview.data.file_record.hold_to_spec`).

    Only data modules of :mod:`neuroview.data` are built: a manifest is data, and must not make
    the loader import arbitrary code.
    """
    from .. import data as data_mod  # noqa: PLC0415 - Lightning data modules import slowly

    path = spec.get("class_path", "")
    module, _, cls_name = path.rpartition(".")
    cls = getattr(data_mod, cls_name, None)
    if module != "neuroview.data" or not (inspect.isclass(cls) and issubclass(cls, data_mod.ArrayDataModule)):
        raise ValueError(f"dataset: expected a data module of neuroview.data (e.g. 'neuroview.data.DigitsDataModule'), got {path!r}")
    dm = cls(**spec.get("init_args", {}))
    if isinstance(spec.get("read_like"), dict):  # other data a model was fitted or scored on, read as its own data was
        from ..data.read_as import read_like  # noqa: PLC0415

        read_like(dm, spec["read_like"])
    from ..data.file_record import hold_to_spec  # noqa: PLC0415

    hold_to_spec(dm, spec)  # the entry's own file, changed since it was made (carved otherwise), refused when read
    return dm


def predict(model: nn.Module, batch) -> tuple[Tensor, Tensor]:
    """``(logits, y)`` of one data-module batch; RNNs get ``[B, T, F]`` and the lengths, like the Lightning module."""
    x, lengths, y = unpack(batch, factory(model).get("device"))  # a loader's CPU batch, for a model anywhere
    if not takes_lengths(model):  # (x, y, other) is read as (x, lengths, y): scored against `other`, without a word
        check_lengths(lengths, x, "batch")
    return call_model(model, x, lengths), y


@torch.no_grad()
def evaluate(model: nn.Module, loader, limit: int | None = None) -> tuple[int, int]:
    """``(correct, total)`` of ``model`` in eval mode on ``loader``, on its first ``limit`` samples when given."""
    was = model.training
    model.eval()
    correct = total = 0
    try:
        for batch in loader:
            logits, y = predict(model, batch)
            if limit is not None and total + len(y) > limit:
                keep = limit - total
                logits, y = logits[:keep], y[:keep]
            correct += int((logits.argmax(-1) == y).sum())
            total += len(y)
            if limit is not None and total >= limit:
                break
    finally:
        model.train(was)
    return correct, total


def score_test_split(model: nn.Module, datamodule, slice_size: int = SLICE_SIZE) -> dict:
    """Accuracy on the full test split and on its first ``slice_size`` samples (what the manifest records)."""
    datamodule.setup("test")
    loader = datamodule.test_dataloader()
    c, n = evaluate(model, loader)
    cs, ns = evaluate(model, loader, limit=slice_size)
    return {"test_acc": c / n, "test_size": n, "slice_acc": cs / ns, "slice_size": ns}
