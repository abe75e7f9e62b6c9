"""Series of several lengths made one batch: zero-padded with their ``lengths``, or stretched to one length; and the
reading options that say which (``resample``).

Holds :func:`pad` (cut at the training split's longest series, the cut reported by :func:`warn_truncated`),
:func:`stretch` (linear interpolation), :func:`resample_option` and the checks of series' shapes
(:func:`check_series`, :func:`check_values`). Imports numpy and torch only; nothing from
neuroview.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["pad", "stretch", "warn_truncated", "resample_option", "check_series", "check_values"]


def resample_option(value, name: str = "resample") -> bool:
    """``value`` as a bool (``0`` and ``1`` too), or an error naming ``name``: ``bool("false")`` is True, and a string
    read so stretched series the user asked to pad. A string is named as one (``"false"``: a config's quoted value), not
    as the word it spells."""
    if isinstance(value, str):
        raise ValueError(f"{name}: expected a bool (true or false, not a string), got the str {str(value)!r}; write it "
                         "without quotes")
    if not isinstance(value, (bool, np.bool_)) and not (type(value) is int and value in (0, 1)):
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    return bool(value)


def check_values(shape: tuple[int, ...], where: str, fix: str) -> None:
    """An error naming ``where`` where samples of ``shape`` ``[N, ...]`` (N >= 1) hold no values: a channel or step
    axis of length 0 (``X[:, mask]`` of an all-False mask), which failed deep in the statistics (a bare IndexError)."""
    axis = next((j for j, n in enumerate(shape[1:], 1) if not n), None)
    if axis is not None:
        raise ValueError(f"{where}: expected values in every series, got shape {tuple(shape)}, whose axis {axis} has "
                         f"length 0; {fix}")


def check_series(arrays: Sequence[np.ndarray], where: str) -> int:
    """The channels of every ``[C, T]`` series, or an error naming ``where`` and the first series that is not one
    (of ``T >= 1`` steps: a series of none was padded into a sample of zeros and trained on as labelled data)."""
    c = np.shape(arrays[0])[0] if np.ndim(arrays[0]) == 2 else None
    for i, a in enumerate(arrays):
        shape = np.shape(a)
        if len(shape) != 2:  # a univariate series as [T] (its length was read as a channel count)
            raise ValueError(f"{where}: expected every sequence of shape [C, T] (channels, steps), got {tuple(shape)} at "
                             f"index {i}; give a univariate series one channel ([1, T]: x[None])")
        if shape[0] != c or shape[1] < 1:
            raise ValueError(f"{where}: expected every sequence of shape [{c}, T] with T >= 1, got {tuple(shape)} at "
                             f"index {i}")
    return c


def pad(arrays: Sequence[np.ndarray], max_len: int, where: str = "X") -> tuple[Tensor, Tensor, Tensor]:
    """``(x [N, C, max_len], lengths, full_lengths)``: zero-padded, and cut at ``max_len`` steps
    (``lengths`` clamped to it; ``full_lengths`` are the lengths before the cut)."""
    c = check_series(arrays, where)
    out = torch.zeros(len(arrays), c, max_len)
    lengths = torch.empty(len(arrays), dtype=torch.long)
    full = torch.empty(len(arrays), dtype=torch.long)
    for i, a in enumerate(arrays):
        n = min(a.shape[1], max_len)
        out[i, :, :n] = torch.as_tensor(np.asarray(a[:, :n], dtype=np.float32))
        lengths[i], full[i] = n, a.shape[1]
    return out, lengths, full


def stretch(arrays: Sequence[np.ndarray], max_len: int, where: str = "X") -> Tensor:
    """``x [N, C, max_len]``: every ``[C, T_i]`` series linearly interpolated to ``max_len`` steps,
    its first and last samples kept (a series of one step becomes constant)."""
    c = check_series(arrays, where)
    out = torch.empty(len(arrays), c, max_len)
    for i, a in enumerate(arrays):
        t = torch.as_tensor(np.asarray(a, dtype=np.float32))[None]
        out[i] = F.interpolate(t, size=max_len, mode="linear", align_corners=True)[0] if a.shape[1] > 1 else t[0, :, :1]
    return out


def warn_truncated(owner: str, truncated: dict[str, Tensor], max_len: int) -> None:
    """One warning for all splits: how many series of which split were cut, and from what length."""
    parts = [f"{len(v)} {split} series of up to {int(v.max())} steps" for split, v in truncated.items()]
    warnings.warn(f"{owner}: {' and '.join(parts)} truncated to {max_len} steps, the longest training series "
                  "(max_len: the classifier has no trained weights for later steps)", UserWarning, stacklevel=4)
