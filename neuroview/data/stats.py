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

__all__ = ["channel_stats", "per_series_normalize", "centered_for_float32", "warn_flat", "normalize_option", "EPS",
           "F64_ROUNDING"]

#: a std below this is no spread: taken as 1
EPS = 1e-8
#: float64 rounding of a series' own values, with room (64 steps of 2.2e-16): a series (channel) that varies by more
#: than this share of its largest |value| and is still read as no spread is named in a warning, never silently. No
#: threshold of a series' own size tells rounding from signal below :data:`EPS`: 0.5 +- 4.6e-12 (np.gradient of a
#: constant speed) is rounding, 1 + 7e-10 x may be a signal, 1e9 +- 1e-4 (1e-13 of its size) is a measurement
F64_ROUNDING = 64 * 2.0 ** -52


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
    ``x``; ``joint``: of all of ``x``; a number, or a tensor that broadcasts over ``x``: one per channel ``[C, 1]``, or
    one per series ``[N, ...]``) is taken as 1: a constant series, or the rounding residue of a zero among series of
    ordinary size, becomes zeros, and a set of 1e-21 strains is z-normalized as any other.

    >>> x = torch.tensor([[[1.0, 2.0, 3.0]], [[10.0, 30.0, 50.0]]])
    >>> per_series_normalize(x)[:, 0]  # the second series is the first one, times 20, minus 10
    tensor([[-1.2247,  0.0000,  1.2247],
            [-1.2247,  0.0000,  1.2247]])
    """
    if scale is None:  # the magnitude of the data the series belong to, not each one's own (a residue's is its noise)
        a = x.abs() if lengths is None else x.abs() * _valid(x, lengths)
        scale = a.amax(dim=tuple(d for d in range(x.dim()) if joint or d != 1), keepdim=True).double()
    scale = torch.as_tensor(scale, dtype=torch.float64)  # a number, a 0-d or [C, 1] tensor: whole to every chunk
    if x.shape[0] > 2048:  # in chunks: 50,000 CIFAR images in float64 at once would take 1.2 GB
        rows = scale.dim() == x.dim() and scale.shape[0] == x.shape[0] > 1  # one row per series: sliced with them
        return torch.cat([per_series_normalize(x[i:i + 2048], None if lengths is None else lengths[i:i + 2048], eps, joint,
                                               scale=scale[i:i + 2048] if rows else scale)
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


def centered_for_float32(x, normalize, where: str, scale: Tensor | None = None, flat: list | None = None):
    """Float64 series (``[N, C, *steps]`` or a list of ``[C, T_i]``) whose float32 cast, which every network reads,
    would lose their spread: values around 1e9 that vary by 0.7 (timestamps, absolute pressures) became one float32
    value, and normalized, flat zeros. Under ``normalize="series"``/``"sample"``, which subtract each series' mean
    anyway, such a series is centered (per channel; ``"sample"``: over all its channels) in float64 first, where the
    cast errs by more than 1e-4 of its spread and that spread is above :data:`EPS`; the others are left as they were,
    bit for bit. Read as it is or by channel statistics, a channel whose cast errs by more than 1% of its spread (above
    :data:`EPS`) over the split is an error naming it and the fix (one nearly flat series among others is not: the
    channel's spread is what the network sees); so is a value beyond float32's range (the cast's inf was reported as a
    NaN or inf in the file). Below :data:`EPS` the data cannot tell a signal (``1 + 7e-10 x``) from float64 rounding
    (``0.5 +- 4.6e-12``, a derivative): such a series or channel is read as no spread, as before, and a warning names
    it where it varies by more than :data:`F64_ROUNDING` of its own size. ``scale``: the training split's magnitude
    that :func:`per_series_normalize` judges "no spread" by (default: this split's). ``flat``: a list that takes what
    the warning would name, for :func:`warn_flat` to name every split's in one warning (else warned of here)."""
    listed = isinstance(x, (list, tuple))
    x = [_readable(a) for a in x] if listed else _readable(x)
    if not (listed and x and all(getattr(a, "dtype", None) == np.float64 for a in x)) and getattr(x, "dtype", None) != np.float64:
        return x
    out = None
    if normalize in ("series", "sample"):
        if scale is None:
            scale = magnitude(x, normalize == "sample")
        found = []
        for i, a in enumerate(x):
            if a.size == 0 or not np.isfinite(a).all():
                continue  # refused by name after the cast
            axes = tuple(range(0 if normalize == "sample" else 1, a.ndim))
            mean, spread = a.mean(axis=axes, keepdims=True), a.std(axis=axes, keepdims=True)
            peak = np.abs(a).max(axis=axes, keepdims=True)
            if (peak * 2.0 ** -24 > 1e-4 * np.where(spread > EPS, spread, np.inf)).any():  # float32's rounding, at most
                out = (list(x) if listed else x.copy()) if out is None else out  # a constant is read as one
                out[i] = a - mean
            if scale is not None:  # a channel of a centered series too: its other channels' spread centered it
                found += _read_as_no_spread(i, a if out is None else out[i], axes, mean, spread, peak, scale)
        if found:
            _note_flat(where, "series", found, len(x), "is read as no spread: a std below 1e-8 (of its float32 cast) "
                       "that is also below 1e-6 of the training split's largest value (of its channel; 'sample': of all)",
                       flat)
    else:
        _refuse_channels(x, listed, where, flat)
    for i, a in enumerate(out if out is not None else x):
        peak = float(np.abs(a[np.isfinite(a)]).max()) if a.size and np.isfinite(a).any() else 0.0
        if peak > float(np.finfo(np.float32).max):  # cast, it read as inf: "NaN or inf" named values the file lacks
            raise ValueError(f"{where}: series {i} holds values up to {peak:.3g}, beyond float32's range (3.4e38), in "
                             "which every network reads it; rescale your data")
    return x if out is None else out


def _read_as_no_spread(i: int, a: np.ndarray, axes, mean, spread, peak, scale: Tensor) -> list:
    """``[(i, level, spread)]`` where series ``i`` (``a``, as it will be cast; ``mean``, ``spread``, ``peak``: its
    float64 values') varies by more than float64 rounding yet :func:`per_series_normalize` will read its float32 cast
    as no spread (judged by the training split's ``scale``)."""
    if not ((spread <= EPS) & (spread > F64_ROUNDING * peak)).any():
        return []
    s = scale.numpy()[0] if isinstance(scale, Tensor) else np.asarray(scale)
    if s.shape[:1] not in ((1,), a.shape[:1]):  # another channel count than the training split's: refused by name
        return []
    std32 = a.astype(np.float32).astype(np.float64).std(axis=axes, keepdims=True)
    band = (spread > F64_ROUNDING * peak) & (std32 < EPS) & (std32 <= 1e-6 * s.reshape(s.shape[:1] + (1,) * (a.ndim - 1)))
    if not band.any():
        return []
    c = int(np.flatnonzero(band.reshape(-1))[0])
    return [(f"{i} (channel {c})" if band.size > 1 else i, float(mean.reshape(-1)[c]), float(spread.reshape(-1)[c]))]


def _refuse_channels(x, listed: bool, where: str, into: list | None) -> None:
    """Read as it is or by channel statistics: a channel whose float32 cast loses more than 1% of a spread above
    :data:`EPS` is refused by name; below it, one that varies by more than float64 rounding is named in a warning."""
    if listed and (any(a.ndim != 2 for a in x) or len({a.shape[0] for a in x}) != 1):
        return  # not every series [C, T_i] of one C: refused by name when it is padded
    flat = [a.reshape(a.shape[0], -1) for a in x] if listed else [np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)]
    flat = np.concatenate(flat, axis=1) if flat else flat
    good = np.isfinite(flat).all(1) if len(flat) else flat
    lost = []
    for c in np.flatnonzero(good) if len(flat) else ():
        spread, peak = float(flat[c].std()), float(np.abs(flat[c]).max())
        if spread > EPS and peak * 2.0 ** -24 > 1e-2 * spread:
            raise ValueError(f"{where}: channel {c} holds values around {float(flat[c].mean()):.6g} that vary by "
                             f"{spread:.3g}: read as float32, as every network reads it, it loses more than 1% of "
                             "that spread; subtract the offset from your data, or pass normalize='series' (each "
                             "series centered in float64 before it is read)")
        if spread > F64_ROUNDING * peak and peak * 2.0 ** -24 > 1e-2 * spread:
            lost.append((int(c), float(flat[c].mean()), spread))
    if lost:
        _note_flat(where, "channels", lost, len(flat), "its float32 cast, which every network reads, loses more than 1% "
                   "of that variation (normalize='series' does not keep it either)", into)


def _note_flat(where: str, what: str, found: list, total: int, how: str, into: list | None) -> None:
    """The series (channels) ``found`` (``(index, level, spread)``) that vary by less than :data:`EPS` but by more than
    float64 rounding, and are read as constants: kept in ``into`` for :func:`warn_flat`, or warned of now."""
    if into is None:
        _warn_flat(where, [(None, what, found, total, how)])
    else:
        into.append((what, found, total, how))


def warn_flat(owner: str, flat: dict) -> None:
    """One warning for what :func:`centered_for_float32` found flat in every split of one setup (``{split: its flat
    list}``): the same series, in the training split, the validation split carved from it and the test split, were
    named in three warnings of a paragraph each."""
    notes = [(split, *note) for split, kept in flat.items() for note in kept]
    if notes:
        _warn_flat(f"{owner}: X", notes)


def _warn_flat(where: str, notes: list) -> None:
    """One warning for ``notes``, ``(split or None, what, found, total, how)`` each (:func:`_note_flat`)."""
    split, what, found, _, how = notes[0]
    of = [f"{len(f)} of {t}{f' {w}' * (k == 0)}{f' of the {s} split' if s else ''}"
          for k, (s, w, f, t, _) in enumerate(notes)]  # "15 of 30 series of the train split, 5 of 10 of the val split"
    counts = ", ".join(of[:-1]) + f" and {of[-1]}" if len(of) > 1 else of[0]
    every = [x for *_, f, _, _ in notes for x in f]
    i, level, spread = found[0]
    spreads, levels, one = [s for _, _, s in every], [v for _, v, _ in every], "channel" if what == "channels" else what
    ranged = len({f"{s:.3g}" for s in spreads}) > 1 or len({f"{v:.6g}" for v in levels}) > 1  # not one series twice
    more = (f" (spreads {min(spreads):.3g} to {max(spreads):.3g}, around {min(levels):.6g} to {max(levels):.6g})"
            if ranged else "")
    fix = ("subtract the offset (rescaled alone, the offset still holds the spread below float32's precision), or "
           "pass normalize='series'" if what == "channels" else "subtract the offset or rescale the data (e.g. multiply "
           "by 1e9)")
    warnings.warn(f"{where}: {counts} vary by less than 1e-8 but by more than float64 rounding of their values{more}, "
                  f"and are served as flat (constant): {one} {i}{f' of the {split} split' if split else ''} holds values "
                  f"around {level:.6g} that vary by {spread:.3g}, and {how}. If that variation is signal, {fix} before "
                  "handing it over; if it is rounding noise (a "
                  "derivative, a detrending residue, a difference of clock readings), it reads as the constant it is",
                  UserWarning, stacklevel=4)


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
