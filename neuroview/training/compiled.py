"""A training step's forward (and backward) under ``torch.compile``: ``NeuroViewModule(compile=...)``.

``"reduce-overhead"`` replays CUDA graphs, so a small step (a time-series network, five members in
one grouped pass) stops waiting on its host; ``"aot_eager"`` runs the same graphs without code
generation (what the CPU tests use). The optimizer step stays outside. How a step computes, not
what: the module, its state dict and checkpoints are the same (a site keeps 8-bit slopes for its
surrogate gradient when compiled, where eager mode keeps 4-bit ones).

A compiled network checks its input with an assert traced into its graph, where a host sync would
break it; on CUDA that assert is asynchronous and ends the process. So the batch is checked here first,
on the CPU before it moves to the device: no sync, and a NaN is a ``ValueError`` naming ``x``.

Imports torch and :mod:`neuroview` only.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .._batch import steps_first, unpack
from ..core._utils import require_finite

#: the modes ``compile`` takes: torch.compile's, and the ``aot_eager`` backend
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs", "aot_eager")
_COMPILED: dict[str, Any] = {}  # mode -> torch.compile(train_outputs): one a mode, guarding on each module


def train_outputs(module: nn.Module, x: Tensor, lengths: Tensor | None) -> Tensor:
    """What a training step computes from its batch: the members' own logits ``[k, B, C]`` of an
    ensemble, else the logits."""
    if not module.ensemble:
        return module(x, lengths)
    if module.sequence_input:  # recurrent members read [B, T, C] and the lengths, as forward gives them
        return module.model.member_logits(steps_first(x, module.model), lengths=lengths)
    return module.model.member_logits(x)


def train_forward(module: nn.Module, x: Tensor, lengths: Tensor | None, mode: str | None) -> Tensor:
    """:func:`train_outputs`, eager (``mode`` None) or compiled in ``mode``."""
    if mode is None:
        return train_outputs(module, x, lengths)
    if mode not in _COMPILED:
        _COMPILED[mode] = torch.compile(train_outputs, **({"backend": mode} if mode == "aot_eager" else {"mode": mode}))
    if mode == "reduce-overhead":
        torch.compiler.cudagraph_mark_step_begin()  # a new step: the graphs may overwrite the last one's outputs
    return _COMPILED[mode](module, x, lengths)


def check_finite(batch, module: nn.Module | None = None) -> None:
    """A clear error where the batch's ``x`` holds NaN or Inf (checked where the batch is, before it
    moves: on the CPU for a loader's batches). ``module`` (the LightningModule): none where its network's
    ``check_finite`` is off, and the padding past ``lengths`` is left out only for a network that reads
    ``lengths`` (a CNN reads every step)."""
    model = getattr(module, "model", None)
    if model is not None and not all(getattr(m, "check_finite", True) for m in [model, *getattr(model, "members", [])]):
        return
    x, lengths, _ = unpack(batch)
    reads_lengths = module is None or bool(getattr(module, "sequence_input", True))
    if reads_lengths and isinstance(x, Tensor) and isinstance(lengths, Tensor) and x.dim() == 3:  # padding may hold anything
        x = x.masked_fill(torch.arange(x.shape[-1]) >= lengths.to(x.device)[:, None, None], 0)
    if isinstance(x, Tensor):
        require_finite(x)
