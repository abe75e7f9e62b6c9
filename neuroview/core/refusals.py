"""Calls refused by name before anything runs: a tracer that cannot take a NeuroView network, and a training batch of
one sample that a head would refuse only after the backbone ran (its BatchNorm statistics moved by a refused batch).

Imports only torch and core helpers.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

from .head import refuse_single

__all__ = ["normalizes", "refuse_fx", "refuse_packed_export", "refuse_single_batch", "refuse_single_members"]


def refuse_fx(net: nn.Module, x) -> None:
    """torch.fx's symbolic tracer passes a ``Proxy`` as ``x`` (the user passed none): refused by name, as
    ``torch.jit.script`` is (:class:`~neuroview.core.guards.Guarded`), with the routes that work."""
    if isinstance(x, torch.fx.Proxy):
        raise TypeError(f"torch.fx.symbolic_trace: a {type(net).__name__} cannot be traced symbolically (its codes are "
                        "read by hooks on real tensors, and where the pass ends depends on them); use "
                        "torch.export.export(net, (x,)) after one forward pass, or torch.compile(net)")


def refuse_packed_export(net: nn.Module, lengths: Tensor | None) -> None:
    """A bidirectional NeuroView-RNN's pass with ``lengths`` under torch.export: refused by name."""
    if lengths is not None and net.num_directions == 2 and net._backbone.builtin and torch.compiler.is_exporting():
        raise TypeError("torch.export: a bidirectional NeuroViewRNN packs its series by lengths= (its backward direction "
                        "starts at each one's last step), which no exported graph can: export it without lengths, or use "
                        "torch.compile")


def normalizes(net: nn.Module) -> bool:
    """Whether ``net``'s head (a NeuroView network's, an ensemble's global head) normalizes a batch by its own
    statistics now: its normalization in training mode, whatever the classifier's (:func:`~neuroview.core.head.decide`:
    a Linear's mode does nothing in torch)."""
    norm, fc = getattr(net, "norm", None), getattr(net, "classifier", None)
    return isinstance(norm, nn.Module) and isinstance(fc, nn.Module) and norm.training


def refuse_single_batch(heads: Iterable[nn.Module], batch: int) -> None:
    """A training batch of ``batch`` < 2 samples refused before any backbone runs where one of ``heads`` normalizes
    it (:func:`normalizes`; under DDP the all-reduced count decides): refused only after the backbone ran, the batch
    had moved its BatchNorm statistics all the same (torch's BatchNorm refuses such a batch before it moves them)."""
    if batch < 2:
        for h in heads:  # (a loop, not any() over a generator: torch.compile traces it without a break)
            if normalizes(h):
                refuse_single(batch)


def refuse_single_members(ens: nn.Module, x, training: bool = True) -> None:
    """A ``training`` batch ``x`` of one sample into an ensemble of NeuroView-CNNs, refused before any member's backbone
    runs where a head would refuse it (its global head, or a member's own): else the batched pass (every member's
    BatchNorm), or a member that normalizes nothing running before one that does, had moved their statistics.
    (Recurrent members read ``x`` in their own layout: each refuses such a batch itself, before its rnn runs.)"""
    if not training or torch.jit.is_tracing():  # (jit.trace: refused by name in the members' own pass)
        return
    if ens.neuroview and isinstance(x, Tensor) and x.dim() > 1 and x.shape[0] == 1:
        refuse_single_batch([ens, *ens.members], 1)
