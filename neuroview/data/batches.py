"""Whole batches: one gather per batch from arrays in memory, and augmentation of whole batches.

Holds :class:`ArrayDataset` (one split in memory, standardized as it is read: ``__getitem__``
for one sample, ``__getitems__`` so that a DataLoader fetches a batch with one gather rather
than ``batch_size`` calls and a collate), :func:`passthrough_collate` (the collate that goes
with it), :class:`SeededLoader` (the DataLoader that seeds a per-sample ``augment`` each epoch, so that
its draws do not depend on ``num_workers``), and :func:`random_crop_flip` / :func:`crop_flip` (CIFAR's
crop of a zero-padded image and horizontal flip, independent per sample, vectorized, on the batch's
device). May import torch only; nothing from neuroview.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset


class ArrayDataset(Dataset):
    """Samples of one split; standardizes (and, for a per-sample ``augment``, augments) as it reads.

    ``x`` stays in its stored dtype (uint8 for MNIST/CIFAR keeps 50,000 images at 150 MB) and on
    its device (CIFAR's ``on_device=True`` keeps it on the GPU): only the batch read is converted.

    ``augment_seed`` (set each epoch by :class:`SeededLoader`): ``augment`` of sample ``i`` draws from torch's CPU
    generator seeded by :func:`sample_seed` of it and ``i``, and the generator is put back as it was. Unset (a plain
    DataLoader), ``augment`` draws from the generator as it stands: a worker's own, so values hung on ``num_workers``.
    """

    def __init__(self, x: Tensor, y: Tensor, lengths: Tensor | None, mean: Tensor, std: Tensor,
                 augment: Callable[[Tensor], Tensor] | None = None):
        self.x, self.y, self.lengths = x, y, lengths
        shape = (-1,) + (1,) * (x.dim() - 2)
        self.mean, self.std = mean.to(x.device).view(shape), std.to(x.device).view(shape)
        self.augment = augment
        self.augment_seed: int | None = None

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        x = (self.x[i].float() - self.mean) / self.std
        if self.augment is not None:
            x = self._augmented(x[None], [i])[0]
        if self.lengths is None:
            return x, self.y[i]
        n = self.lengths[i]
        x[..., n:] = 0.0  # padded steps stay exactly zero after standardization
        return x, n, self.y[i]

    def __getitems__(self, indices: list[int]) -> list[Tensor]:
        """The batch of ``indices``, already collated: the same values as ``__getitem__`` of each
        index stacked (the same elementwise float operations), from one gather per tensor."""
        idx = torch.as_tensor(indices, dtype=torch.long, device=self.y.device)
        x = (self.x[idx].float() - self.mean) / self.std
        if self.augment is not None:  # a subclass's per-sample transform: kept, one sample at a time
            x = self._augmented(x, indices)
        if self.lengths is None:
            return [x, self.y[idx]]
        n = self.lengths[idx]
        past_end = torch.arange(x.shape[-1], device=x.device) >= n.view(-1, *[1] * (x.dim() - 1))
        return [x.masked_fill(past_end, 0.0), n, self.y[idx]]  # padded steps exactly zero

    def _augmented(self, x: Tensor, indices) -> Tensor:
        """``augment`` of each sample of ``x`` (rows ``indices``), seeded per sample where ``augment_seed`` is set."""
        if self.augment_seed is None:
            return torch.stack([self.augment(xi) for xi in x])
        g = torch.default_generator  # not torch.manual_seed: that would reseed the GPUs' generators too
        state, out = g.get_state(), []
        try:
            for xi, i in zip(x, indices):
                g.manual_seed(sample_seed(self.augment_seed, int(i)))
                out.append(self.augment(xi))
        finally:  # the caller's stream as it was: a training step's dropout draws what it would without augmentation
            g.set_state(state)
        return torch.stack(out)

    def to(self, device: torch.device | str) -> ArrayDataset:
        """The same split with its tensors on ``device`` (a copy; this one stays where it is)."""
        out = copy.copy(self)
        for name in ("x", "y", "lengths", "mean", "std"):
            t = getattr(self, name)
            setattr(out, name, None if t is None else t.to(device))
        return out


def passthrough_collate(batch: list[Tensor]) -> list[Tensor]:
    """The collate of :meth:`ArrayDataset.__getitems__`, whose batches arrive collated already.

    (A list, as ``default_collate`` gives for tuples of samples.)"""
    return batch


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index``'s augmentation in an epoch of ``seed``: splitmix64 of the two, so that neighbouring
    indices (and the low 32 bits torch's CPU generator keeps) share nothing.

    >>> sample_seed(0, 0) != sample_seed(0, 1) != sample_seed(1, 0)
    True
    """
    z = (seed + (index + 1) * 0x9E3779B97F4A7C15) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return z ^ (z >> 31)


class SeededLoader(DataLoader):
    """A DataLoader that gives its :class:`ArrayDataset`'s per-sample ``augment`` one seed an epoch: the int64 its
    iterator is about to draw from its ``generator`` (torch's global one by default) as its base seed, which it draws
    with 0 workers or many. Read, not drawn: the order and every later draw stay as a DataLoader's. Each sample's
    draws then come from that seed and its index (:func:`sample_seed`): the same with any ``num_workers``, and the same
    whichever batch or worker reads it. Only torch's CPU generator is seeded so (``torch.rand`` and kin in
    ``augment``); numpy's and Python's ``random`` are seeded per worker by torch and still depend on ``num_workers``.
    The seed reaches workers started for the epoch only: with a per-sample ``augment``, ``persistent_workers`` is
    refused. Without one, kept workers (``persistent_workers=True``) serve what 0 workers serve: each epoch after the
    first draws the base seed a new iterator would (a kept one draws none), so every shuffle comes from the same point
    of the generator's stream as with 0 workers.

    >>> ds = ArrayDataset(torch.zeros(4, 1, 3), torch.arange(4), None, torch.zeros(1), torch.ones(1),
    ...                   augment=lambda x: x + torch.rand(()))
    >>> batch = next(iter(SeededLoader(ds, batch_size=4, collate_fn=passthrough_collate)))
    >>> batch[0].shape, ds.augment_seed is not None
    (torch.Size([4, 1, 3]), True)
    """

    def __iter__(self):
        kept = self.persistent_workers and self.num_workers > 0
        if getattr(self.dataset, "augment", None) is not None and hasattr(self.dataset, "augment_seed"):
            if kept:  # kept workers keep the first epoch's copy of the seed
                raise ValueError("persistent_workers: a per-sample augment is seeded anew each epoch in the workers' "
                                 "copies of the dataset; expected persistent_workers=False, got True")
            g = self.generator if self.generator is not None else torch.default_generator
            state = g.get_state()
            self.dataset.augment_seed = int(torch.empty((), dtype=torch.int64).random_(generator=g).item())
            g.set_state(state)  # the iterator draws this same number as its base seed
        if kept and self._iterator is not None:  # a kept iterator draws no base seed, a new one (0 workers: each epoch) does:
            # drawn here, the shuffle of every later epoch comes from the point of the stream 0 workers reach
            torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        return super().__iter__()


# --------------------------------------------------------------------- augmentation
def crop_flip(x: Tensor, offsets: Tensor, flip: Tensor, pad: int) -> Tensor:
    """Crop ``[B, C, H, W]`` images out of their ``pad``-pixel zero padding at per-sample
    ``offsets`` ``[B, 2]`` (row, column, each in ``[0, 2 * pad]``; ``(pad, pad)`` is the image
    itself), then flip horizontally where ``flip`` ``[B]`` (bool) is set.

    One pad and one gather for the whole batch, no loop over samples; exact (only copies).
    """
    if x.dim() != 4:
        raise ValueError(f"x: expected images [B, C, H, W], got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    offsets, flip = offsets.to(x.device), flip.to(x.device)
    rows = offsets[:, :1] + torch.arange(h, device=x.device)  # [B, H]
    cols = offsets[:, 1:] + torch.arange(w, device=x.device)  # [B, W]
    cols = torch.where(flip[:, None], cols.flip(-1), cols)  # a flipped crop reads its columns backwards
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    channel = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def random_crop_flip(x: Tensor, pad: int = 4, generator: torch.Generator | None = None) -> Tensor:
    """CIFAR's standard augmentation on a whole batch ``[B, C, H, W]``, on its device: each image
    is cropped out of its ``pad``-pixel zero padding at an offset uniform in ``[0, 2 * pad]`` per
    axis and flipped horizontally with probability 1/2, independently per sample.

    Random numbers come from ``generator`` (on its own device), else from torch's global
    generator of ``x``'s device, which ``seed_everything`` seeds.
    """
    b = x.shape[0]
    device = generator.device if generator is not None else x.device
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator, device=device)
    flip = torch.rand(b, generator=generator, device=device) < 0.5
    return crop_flip(x, offsets, flip, pad)
