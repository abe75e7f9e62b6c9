"""A gallery's running top ``k`` per unit, and its samples kept once: each distinct sample shown is held once however
many units (RNN steps) show it, and a field of one sample per place (``UnitGallery.x``) is formed from them when read.
A gallery of every step of a series of length T held one whole series per (step, place), ``[T, k, C, T]``: memory in
the square of T for the T * C numbers of each series read.

Imports: torch only.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

__all__ = ["PooledRows", "Top"]


class Top:
    """A running top ``k`` per unit over a stream of batches: the score, the sample index and the
    rows kept with it. Stable sorts, with earlier samples first, give ties to the lower index. The rows of the samples
    kept are held once each (``pool``, in the order read), ``at [n, k]`` each place's row of them."""

    def __init__(self, k: int):
        self.k, self.seen = k, 0
        self.score: Tensor | None = None  # and value, index, at: [n, k] once a batch was added
        self.value = self.index = self.at = self.class_means = self.class_counts = self.low = None
        self.pool: dict[str, Tensor] = {}

    def add(self, score: Tensor, value: Tensor, rows: dict[str, Tensor]) -> None:
        """``score`` and ``value`` ``[B, n]`` per sample and unit; ``rows`` ``[B, ...]`` per sample."""
        b, n = score.shape
        low = score.min(0).values  # [n]: a unit whose lowest score is its highest gave every sample one code
        self.low = low if self.low is None else torch.minimum(self.low, low)
        idx = torch.arange(self.seen, self.seen + b).expand(n, b)
        self.seen += b
        held = len(next(iter(self.pool.values()))) if self.pool else 0
        new = (held + torch.arange(b)).expand(n, b)  # the batch's rows after the pool's
        s = score.T if self.score is None else torch.cat([self.score, score.T], 1)
        i = idx if self.index is None else torch.cat([self.index, idx], 1)
        v = value.T if self.value is None else torch.cat([self.value, value.T], 1)
        a = new if self.at is None else torch.cat([self.at, new], 1)
        pick = torch.sort(s, dim=1, descending=True, stable=True).indices[:, : self.k]  # [n, k]
        self.score, self.index, self.value = s.gather(1, pick), i.gather(1, pick), v.gather(1, pick)
        keep, at = torch.unique(a.gather(1, pick), return_inverse=True)  # the samples still shown, each once
        self.at = at.reshape(n, -1)
        self.pool = {name: (r if name not in self.pool else torch.cat([self.pool[name], r]))[keep]
                     for name, r in rows.items()}

    def rows(self, name: str) -> Tensor | None:
        """``[n, k, ...]``: the rows ``name`` of every place (None where the batches had none)."""
        return self.pool[name][self.at] if name in self.pool else None


class PooledRows:
    """A dataclass field of one sample per place, ``[n, k, ...]``, given as that tensor or as ``(pool, at)``: ``pool
    [S, ...]`` the distinct samples, ``at [n, k]`` each place's row of it (-1: an empty place, zeros). A pair is formed
    into the tensor at the first read and kept; until then the field costs the samples once. Held in the instance's
    ``__dict__`` under the field's own name, where a plain field sat (a data descriptor is read first all the same):
    a gallery pickled before the field was pooled (its ``x`` formed) loads and reads as it did."""

    def __set_name__(self, owner, name: str) -> None:
        self.key = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return dataclasses.MISSING  # the field has no default: the dataclass still asks for it
        held = obj.__dict__[self.key]
        if isinstance(held, tuple):
            pool, at = held
            formed = pool.new_zeros((*at.shape, *pool.shape[1:]))
            formed[at >= 0] = pool[at[at >= 0]]
            obj.__dict__[self.key] = held = formed
        return held

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.key] = value

    @staticmethod
    def one(obj, name: str, row: int, j: int) -> Tensor:
        """Place ``(row, j)`` of field ``name`` of ``obj``, read without forming the whole field."""
        held = obj.__dict__[name]
        if not isinstance(held, tuple):
            return held[row, j]
        pool, at = held
        a = int(at[row, j])
        return pool[a] if a >= 0 else pool.new_zeros(pool.shape[1:])
