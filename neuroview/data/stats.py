"""How series are standardized: per channel with the training split's statistics, or each series by its own.

Holds :func:`channel_stats` (``normalize=True``: each channel's mean and std over the training
split) and :func:`per_series_normalize` (``normalize="series"`` / ``"sample"``). Both take a std
of 1 where there is no spread to divide by, as scikit-learn's ``StandardScaler`` does: a channel
constant over the training split (a flag, a fixed sensor reading) or a constant series is then only
shifted, so a value that differs from the constant by 1 stays 1 rather than becoming 1e8 (a floor of
1e-8 on the std did that). Imports torch only; nothing from neuroview.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["channel_stats", "per_series_normalize", "EPS"]

#: a std below this is no spread: taken as 1
EPS = 1e-8


def _valid(x: Tensor, lengths: Tensor) -> Tensor:
    """``[N, C, *spatial]`` bool, true at the first ``lengths[i]`` steps (last axis) of every sample."""
    mask = torch.arange(x.shape[-1])[None, :] < lengths[:, None]
    return mask.view(mask.shape[0], 1, *[1] * (x.dim() - 3), x.shape[-1]).expand(x.shape)


def channel_stats(x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Each channel's mean and std (float32, ``[C]``) over ``x [N, C, *spatial]`` (the first ``lengths[i]``
    steps of each sample); std 1 for a channel with no spread: every value the same (checked exactly: the
    float64 sums may leave rounding noise in its variance), or a std below :data:`EPS`.

    >>> x = torch.tensor([[[1.0, 3.0], [5.0, 5.0]]])
    >>> channel_stats(x)
    (tensor([2., 5.]), tensor([1., 1.]))
    """
    c = x.shape[1]
    if lengths is None:
        lengths = torch.full((x.shape[0],), x.shape[-1], dtype=torch.long)
    # chunked float64 sums: 50,000 CIFAR images in float64 at once would take 1.2 GB
    total, sq, n = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64), 0.0
    lo, hi = torch.full((c,), float("inf"), dtype=torch.float64), torch.full((c,), -float("inf"), dtype=torch.float64)
    dims = [0] + list(range(2, x.dim()))
    for start in range(0, x.shape[0], 2048):
        xc = x[start:start + 2048].double()
        valid = _valid(xc, lengths[start:start + 2048])
        mask = valid.double()
        total += (xc * mask).sum(dims)
        sq += (xc * xc * mask).sum(dims)
        n += mask[:, 0].sum().item()
        lo = torch.minimum(lo, xc.masked_fill(~valid, float("inf")).amin(dims))
        hi = torch.maximum(hi, xc.masked_fill(~valid, -float("inf")).amax(dims))
    mean = total / n
    std = (sq / n - mean * mean).clamp_min(0.0).sqrt()
    std = torch.where((hi == lo) | (std < EPS), torch.ones_like(std), std)
    return mean.float(), std.float()


def per_series_normalize(x: Tensor, lengths: Tensor | None = None, eps: float = EPS, joint: bool = False) -> Tensor:
    """``x [N, C, *steps]`` with every sample's every channel z-normalized by its own mean and std
    over its steps (only the first ``lengths[i]`` along the last axis; later steps stay 0), in float32;
    ``joint``: one mean and std per sample, over all its channels and steps together. A std below
    ``eps`` is taken as 1 (a constant series becomes zeros).

    >>> x = torch.tensor([[[1.0, 2.0, 3.0]], [[10.0, 30.0, 50.0]]])
    >>> per_series_normalize(x)[:, 0]  # the second series is the first one, times 20, minus 10
    tensor([[-1.2247,  0.0000,  1.2247],
            [-1.2247,  0.0000,  1.2247]])
    """
    if x.shape[0] > 2048:  # in chunks: 50,000 CIFAR images in float64 at once would take 1.2 GB
        return torch.cat([per_series_normalize(x[i:i + 2048], None if lengths is None else lengths[i:i + 2048], eps, joint)
                          for i in range(0, x.shape[0], 2048)])
    xd = x.double()
    dims = tuple(range(1 if joint else 2, x.dim()))
    mask = torch.ones_like(xd) if lengths is None else _valid(xd, lengths).double()
    n = mask.sum(dims, keepdim=True).clamp_min(1.0)
    mean = (xd * mask).sum(dims, keepdim=True) / n
    var = (((xd - mean) * mask) ** 2).sum(dims, keepdim=True) / n
    std = var.sqrt()
    # float64, and std 1 where there is no spread: a constant series becomes zeros, not NaN
    return ((xd - mean) / torch.where(std < eps, torch.ones_like(std), std) * mask).float()
