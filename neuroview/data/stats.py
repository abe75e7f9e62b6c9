"""How series are standardized: per channel with the training split's statistics, or each series by its own.

Holds :func:`channel_stats` (``normalize=True``: each channel's mean and std over the training
split) and :func:`per_series_normalize` (``normalize="series"`` / ``"sample"``). Both take a std
of 1 where there is no spread to divide by, as scikit-learn's ``StandardScaler`` does: a channel
constant over the training split (a flag, a fixed sensor reading) or a constant series is then only
shifted, so a value that differs from the constant by 1 stays 1 rather than becoming 1e8 (a floor of
1e-8 on the std did that). :func:`centered_for_float32` keeps float64 series whose float32 cast would
lose their spread. Imports numpy and torch only; nothing from neuroview.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

__all__ = ["channel_stats", "per_series_normalize", "centered_for_float32", "normalize_option", "EPS", "F64_NO_SPREAD"]

#: a std below this is no spread: taken as 1
EPS = 1e-8
#: a float64 series (channel) whose std is at most this share of its own largest |value| is constant: the rounding of
#: float64 arithmetic (2.2e-16 a step) over a long series, with room. Above it, a spread is kept whatever its size: an
#: absolute 1e-8 read 1 + 7e-10 x, the same series as 1e9 + 0.7 x scaled down, as a constant (flat zeros)
F64_NO_SPREAD = 1e-12


def _valid(x: Tensor, lengths: Tensor) -> Tensor:
    """``[N, C, *spatial]`` bool, true at the first ``lengths[i]`` steps (last axis) of every sample."""
    mask = torch.arange(x.shape[-1])[None, :] < lengths[:, None]
    return mask.view(mask.shape[0], 1, *[1] * (x.dim() - 3), x.shape[-1]).expand(x.shape)


def channel_stats(x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Each channel's mean and std (float32, ``[C]``) over ``x [N, C, *spatial]`` (the first ``lengths[i]``
    steps of each sample); std 1 for a channel with no spread: every value the same (checked exactly: the
    float64 sums may leave rounding noise in its variance), or a std below :data:`EPS` that is also below
    1e-6 of the channel's largest magnitude (rounding noise; a channel in small units, strains of 1e-21, is
    scaled as any other). Two passes, the deviations summed about the mean: ``E[x^2] - E[x]^2`` lost 0.5%
    of the std of float32 channels around 1.6e7.

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
    chunks = lambda: ((x[i:i + 2048].double(), _valid(x[i:i + 2048], lengths[i:i + 2048])) for i in range(0, x.shape[0], 2048))  # noqa: E731
    for xc, valid in chunks():
        total += (xc * valid).sum(dims)
        n += valid[:, 0].sum().item()
        lo = torch.minimum(lo, xc.masked_fill(~valid, float("inf")).amin(dims))
        hi = torch.maximum(hi, xc.masked_fill(~valid, -float("inf")).amax(dims))
    mean = total / n
    shape = (1, c) + (1,) * (x.dim() - 2)
    for xc, valid in chunks():
        sq += ((xc - mean.view(shape)) * valid).square().sum(dims)
    std = (sq / n).sqrt()
    noise = (std < EPS) & (std <= 1e-6 * torch.maximum(hi.abs(), lo.abs()))
    std = torch.where((hi == lo) | noise, torch.ones_like(std), std)
    return mean.float(), std.float()


def per_series_normalize(x: Tensor, lengths: Tensor | None = None, eps: float = EPS, joint: bool = False, *,
                         scale: Tensor | None = None) -> Tensor:
    """``x [N, C, *steps]`` with every sample's every channel z-normalized by its own mean and std
    over its steps (only the first ``lengths[i]`` along the last axis; later steps stay 0), in float32;
    ``joint``: one mean and std per sample, over all its channels and steps together. A std below
    ``eps`` that is also below 1e-6 of ``scale`` (by default the largest magnitude of the channel over all of
    ``x``; ``joint``: of all of ``x``; or one per series, ``[N, ...]``: 0 where its spread is known to be real) is
    taken as 1: a constant series, or the rounding residue of a zero among series of ordinary size, becomes zeros, and
    a set of 1e-21 strains is z-normalized as any other.

    >>> x = torch.tensor([[[1.0, 2.0, 3.0]], [[10.0, 30.0, 50.0]]])
    >>> per_series_normalize(x)[:, 0]  # the second series is the first one, times 20, minus 10
    tensor([[-1.2247,  0.0000,  1.2247],
            [-1.2247,  0.0000,  1.2247]])
    """
    if scale is None:  # the magnitude of the data the series belong to, not each one's own (a residue's is its noise)
        a = x.abs() if lengths is None else x.abs() * _valid(x, lengths)
        scale = a.amax(dim=tuple(d for d in range(x.dim()) if joint or d != 1), keepdim=True).double()
    if x.shape[0] > 2048:  # in chunks: 50,000 CIFAR images in float64 at once would take 1.2 GB
        return torch.cat([per_series_normalize(x[i:i + 2048], None if lengths is None else lengths[i:i + 2048], eps, joint,
                                               scale=scale if scale.shape[0] == 1 else scale[i:i + 2048])
                          for i in range(0, x.shape[0], 2048)])
    xd = x.double()
    dims = tuple(range(1 if joint else 2, x.dim()))
    mask = torch.ones_like(xd) if lengths is None else _valid(xd, lengths).double()
    n = mask.sum(dims, keepdim=True).clamp_min(1.0)
    mean = (xd * mask).sum(dims, keepdim=True) / n
    var = (((xd - mean) * mask) ** 2).sum(dims, keepdim=True) / n
    std = var.sqrt()
    # float64, and std 1 where there is no spread: a constant series becomes zeros, not NaN
    return ((xd - mean) / torch.where((std < eps) & (std <= 1e-6 * scale), torch.ones_like(std), std) * mask).float()


def magnitude(x, joint: bool = False) -> Tensor | None:
    """The largest ``|value|`` of each channel (``joint``: of all) over the series ``x`` (``[N, C, *steps]`` or a list
    of ``[C, T_i]``), shaped to broadcast over them: the scale :func:`per_series_normalize` judges "no spread" by, taken
    from the training split so that a series reads alike in every split. None where it cannot be taken."""
    def peak(a: np.ndarray, axes) -> np.ndarray:  # max and min in the array's own dtype: no float64 copy of a big set
        return np.maximum(np.abs(a.max(axis=axes).astype(np.float64)), np.abs(a.min(axis=axes).astype(np.float64)))

    try:
        if isinstance(x, (list, tuple)):
            m, dims = np.max(np.stack([peak(np.asarray(a), tuple(range(1, np.ndim(a)))) for a in x]), 0), 3
        else:
            a = np.asarray(x)
            m, dims = peak(a, tuple(d for d in range(a.ndim) if d != 1)), a.ndim
    except (ValueError, TypeError, IndexError):  # several channel counts, none: refused later (AxisError is both)
        return None
    m = torch.as_tensor(m.max() if joint else m, dtype=torch.float64)
    return m.reshape(*((1, 1) if joint else (1, -1)), *[1] * (dims - 2))


def normalize_option(value, name: str = "normalize"):
    """``value`` as ``normalize`` reads it (``True``, ``False``, ``"series"``, ``"sample"``), or an error naming ``name``:
    ``1`` and ``np.True_`` equal True, passed a check by ``in``, and standardized nothing (the module tests ``is True``):
    now read as True (``0`` as False)."""
    if isinstance(value, (bool, np.bool_)) or (type(value) is int and value in (0, 1)):
        return bool(value)
    if isinstance(value, str) and value in ("series", "sample"):
        return value
    raise ValueError(f"normalize: expected true, false, 'series' or 'sample', got {value!r}" if name == "normalize" else
                     f"{name}: normalize: expected true, false, 'series' or 'sample', got {value!r}")


def _readable(a):
    """``a`` in a dtype whose float32 cast :func:`centered_for_float32` can judge: integers of 32 bits or more and
    float64 tensors as float64 arrays (timestamps of 1.7e9 s kept 2 distinct values of 100, unchecked), long doubles
    as float64, other byte orders as the machine's (torch reads no big-endian array); the rest as it is."""
    if isinstance(a, torch.Tensor):
        wide = a.dtype == torch.float64 or (not a.is_floating_point() and not a.is_complex() and a.dtype.itemsize > 2)
        return a.detach().cpu().numpy().astype(np.float64) if wide else a
    dtype = getattr(a, "dtype", None)
    if not isinstance(a, np.ndarray) or dtype.kind not in "iuf":
        return a
    if (dtype.kind in "iu" and dtype.itemsize > 2) or (dtype.kind == "f" and dtype.itemsize > 8):
        return a.astype(np.float64)
    return a.astype(dtype.newbyteorder("=")) if not dtype.isnative else a


def centered_for_float32(x, normalize, where: str, scale: Tensor | None = None):
    """``(x, scale)``: float64 series (``[N, C, *steps]`` or a list of ``[C, T_i]``) whose float32 cast, which every
    network reads, would lose their spread: values around 1e9 that vary by 0.7 (timestamps, absolute pressures) became
    one float32 value, and normalized, flat zeros. Under ``normalize="series"``/``"sample"``, which subtract each series'
    mean anyway, such a series is centered (per channel; ``"sample"``: over all its channels) in float64 first, where
    the cast errs by more than 1e-4 of its spread and that spread is one (above :data:`F64_NO_SPREAD` of its own
    magnitude: ``1 + 7e-10 x`` is centered as ``1e9 + 0.7 x`` is); the others are left as they were, bit for bit.
    ``scale`` (:func:`per_series_normalize`'s "no spread" scale) comes back one per series, 0 where a series was
    centered: its spread was judged here, in float64 against its own magnitude, and the training split's magnitude,
    which judges float32 rounding, read those series' std of 7e-10 around 1 as none. Read as it is or by channel
    statistics, a channel whose cast errs by more than 1% of its spread over the split (a spread above
    :data:`F64_NO_SPREAD` of its magnitude) is an error naming it and the fix (one nearly flat series among others is
    not: the channel's spread is what the network sees); so is a value beyond float32's range (the cast's inf was
    reported as a NaN or inf in the file)."""
    listed = isinstance(x, (list, tuple))
    x = [_readable(a) for a in x] if listed else _readable(x)
    if not (listed and x and all(getattr(a, "dtype", None) == np.float64 for a in x)) and getattr(x, "dtype", None) != np.float64:
        return x, scale
    out, centered = None, {}
    if normalize in ("series", "sample"):
        for i, a in enumerate(x):
            if a.size == 0 or not np.isfinite(a).all():
                continue  # refused by name after the cast
            axes = tuple(range(0 if normalize == "sample" else 1, a.ndim))
            mean, spread = a.mean(axis=axes, keepdims=True), a.std(axis=axes, keepdims=True)
            peak = np.abs(a).max(axis=axes, keepdims=True)
            need = (peak * 2.0 ** -24 > 1e-4 * spread) & (spread > F64_NO_SPREAD * peak)  # float32's rounding, at most
            if need.any():  # a constant is read as one; a channel the cast keeps stays bit for bit
                out = (list(x) if listed else x.copy()) if out is None else out
                out[i], centered[i] = np.where(need, a - mean, a), need
    else:
        if listed and (any(a.ndim != 2 for a in x) or len({a.shape[0] for a in x}) != 1):
            return x, scale  # not every series [C, T_i] of one C: refused by name when it is padded
        flat = [a.reshape(a.shape[0], -1) for a in x] if listed else [np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)]
        flat = np.concatenate(flat, axis=1) if flat else flat
        good = np.isfinite(flat).all(1) if len(flat) else flat
        for c in np.flatnonzero(good) if len(flat) else ():
            spread, peak = float(flat[c].std()), float(np.abs(flat[c]).max())
            if spread > F64_NO_SPREAD * peak and peak * 2.0 ** -24 > 1e-2 * spread:
                raise ValueError(f"{where}: channel {c} holds values around {float(flat[c].mean()):.6g} that vary by "
                                 f"{spread:.3g}: read as float32, as every network reads it, it loses more than 1% of "
                                 "that spread; subtract the offset from your data, or pass normalize='series' (each "
                                 "series centered in float64 before it is read)")
    for i, a in enumerate(out if out is not None else x):
        peak = float(np.abs(a[np.isfinite(a)]).max()) if a.size and np.isfinite(a).any() else 0.0
        if peak > float(np.finfo(np.float32).max):  # cast, it read as inf: "NaN or inf" named values the file lacks
            raise ValueError(f"{where}: series {i} holds values up to {peak:.3g}, beyond float32's range (3.4e38), in "
                             "which every network reads it; rescale your data")
    if scale is not None and centered:
        scale = scale.expand(len(x), *scale.shape[1:]).clone()
        for i, need in centered.items():
            scale[i][torch.as_tensor(need).expand(scale[i].shape)] = 0.0
    return (x if out is None else out), scale


def warn_stored_apart(parts: dict, owner: str, normalize=True) -> None:
    """Warn where a split is stored as integers of a range far above another's floats (uint8 images 0..255 beside a
    test split of floats 0..1): standardized by the training split's statistics, every test image came out all but
    black (mean -1.7, std 0.004), without a word; unnormalized, the network reads them at another scale. Each series
    normalized by itself (``series``, ``sample``) is indifferent to it; splits of one kind, of like ranges, or floats
    far above integers (a float training split beside a test split of -1, 0, 1) pass."""
    if normalize in ("series", "sample"):
        return
    arrays = {n: x for n, (x, _) in parts.items() if isinstance(x, np.ndarray) and x.size and x.dtype.kind in "uif"}
    top = {n: max(abs(float(np.nanmin(x))), abs(float(np.nanmax(x)))) for n, x in arrays.items()}  # no float64 copy
    ints = [n for n, x in arrays.items() if x.dtype.kind in "ui"]
    floats = [n for n, x in arrays.items() if x.dtype.kind == "f"]
    for i in ints:
        for f in floats:
            if "train" in (i, f) and top[i] > 20 * max(top[f], 1e-12):
                how = "standardized by the training split's statistics" if normalize else "read as stored"
                warnings.warn(f"{owner}: X: the {i} split is stored as {arrays[i].dtype} (up to {top[i]:.3g}), the {f} "
                              f"split as {arrays[f].dtype} (up to {top[f]:.3g}): {how}, one of them reaches the network "
                              "at another scale; store both alike (e.g. uint8 0..255, or floats 0..1)", UserWarning,
                              stacklevel=3)
