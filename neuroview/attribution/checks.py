"""Argument checks of the faithfulness tools (:mod:`~neuroview.attribution.ablation`,
:mod:`~neuroview.attribution.faithfulness`, :mod:`~neuroview.attribution.baselines`): each refuses a bad
argument by name, with what it expected and what it got, before any work is done; and
:func:`eval_mode`, which runs them in eval mode and puts every submodule's mode back afterwards.

Imports: torch and :mod:`neuroview.core`.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn

from ..core._utils import as_labels, is_bool, positive_int, restore_modes
from .gallery_rows import check_units

__all__ = [
    "check_xy", "check_rank", "cnn_layout", "check_labels", "num_classes_of", "check_sequences", "check_lengths",
    "lengths_of", "check_baseline", "check_k", "check_counts", "check_seeds",
    "eval_mode", "unit_mask",
]


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[nn.Module]:
    """``net`` in eval mode inside the ``with``; afterwards every submodule is back in the mode it was in
    (a check run mid-training leaves dropout on and the normalization statistics updating)."""
    restore = restore_modes(net)
    try:
        net.eval()  # inside: a hold never let go would keep the modes from coming back
        yield net
    finally:
        restore()


def check_xy(x: Tensor, y: Tensor, num_classes: int | None = None, *, rank: int | None = None,
             layout: str = "") -> Tensor:
    """``y`` as long class labels on ``x``'s device, one per sample of ``x``, each in ``[0, num_classes)``
    when it is given (a label of -1 picked the last class's row silently, one past the end a bare torch error);
    bools as :func:`~neuroview.core._utils.as_labels` reads them: classes 0 and 1 of a 2-class network, else refused.
    ``x`` is checked first: its ``rank`` (with ``layout``, e.g. from :func:`cnn_layout`) when given, else that it has
    a dim 0 at all; one sample without its batch axis was read as a batch, and the error blamed ``y``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    check_rank(x, rank, layout)
    if x.dim() == 0:
        raise ValueError("x: expected a batch of samples along dim 0, got a 0-dim tensor")
    # class names refused by name (torch's bare "too many dimensions 'str'"), fractions too; whole floats read as classes
    y = as_labels(y, "y", num_classes).to(x.device)
    if y.shape != (x.shape[0],):
        raise ValueError(f"y: expected integer class labels of shape [{x.shape[0]}] (one per sample along dim 0 of x, "
                         f"shape {tuple(x.shape)}), got dtype {y.dtype} and shape {tuple(y.shape)}")
    return y if num_classes is None else check_labels(y, num_classes)


def check_rank(x: Tensor, rank: int | None, layout: str = "") -> None:
    """Refuse an ``x`` whose rank is not ``rank`` (None: any), saying how to add a forgotten batch axis."""
    if rank is not None and x.dim() != rank:
        one = "; one sample: add its batch axis (x[None])" if x.dim() == rank - 1 else ""
        raise ValueError(f"x: expected a tensor of rank {rank}{' ' + layout if layout else ''}, got shape "
                         f"{tuple(x.shape)}{one}")


def cnn_layout(net) -> tuple[int | None, str]:
    """``(rank, layout)`` of the batches a NeuroView-CNN was built on (its ``input_shape``), as its own input check
    words them; ``(None, "")`` while it has seen none (a lazy network finds them on its first batch)."""
    shape = getattr(net, "input_shape", None)
    if shape is None:
        return None, ""
    dims = ", ".join(["B", "C"] + [f"D{i}" for i in range(1, len(shape))])
    return len(shape) + 1, f"[{dims}] like (B, {', '.join(map(str, shape))})"


def check_labels(y: Tensor, num_classes: int, what: str = "the network's classes") -> Tensor:
    """``y``, where every label lies in ``[0, num_classes)``; else a ValueError listing the labels outside."""
    bad = (y < 0) | (y >= num_classes)
    if bool(bad.any()):
        raise ValueError(f"y: labels must lie in [0, {num_classes}) ({what}), got {sorted(torch.unique(y[bad]).tolist())}")
    return y


def num_classes_of(net: nn.Module) -> int | None:
    """The classes ``net`` says it has (NeuroView networks, ``RNNClassifier``), or None (a plain module:
    its logits' width is read after a forward pass instead)."""
    n = getattr(net, "num_classes", None)
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def check_sequences(x: Tensor) -> None:
    """Refuse anything but a batch-first ``[B, T, F]`` tensor."""
    if not isinstance(x, Tensor) or x.dim() != 3:
        got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
        one = "; one series [T, F]: add its batch axis (x[None])" if isinstance(x, Tensor) and x.dim() == 2 else ""
        raise ValueError(f"x: expected a batch-first tensor [B, T, F], got {got}{one}")


def check_lengths(x: Tensor, lengths) -> Tensor | None:
    """``lengths`` as a long tensor ``[B]`` on ``x``'s device, each in ``[1, T]`` (None stays None)."""
    if lengths is None:
        return None
    b, t = x.shape[:2]
    return lengths_of(lengths, b, t, x.device)


def lengths_of(lengths, b: int, t: int, device=None, rows: str = "series of x", span: str = "T of x") -> Tensor:
    """``lengths`` as a long tensor ``[b]`` on ``device``, each in ``[1, t]``; the errors say what the ``b`` ``rows``
    and the ``t`` (``span``) are."""
    try:
        lengths = torch.as_tensor(lengths, device=device)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"lengths: expected an integer tensor of shape [{b}] (one length per {rows}), got "
                        f"{type(lengths).__name__}") from e
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool or lengths.shape != (b,):
        raise ValueError(f"lengths: expected an integer tensor of shape [{b}] (one length per {rows}), "
                         f"got dtype {lengths.dtype} and shape {tuple(lengths.shape)}")
    if b and (int(lengths.min()) < 1 or int(lengths.max()) > t):
        raise ValueError(f"lengths: expected values in [1, {t}] ({span}), got min {int(lengths.min())} and max "
                         f"{int(lengths.max())}")
    return lengths.long()


def check_baseline(x: Tensor, baseline: Tensor) -> Tensor:
    """A baseline tensor that broadcasts to ``x [B, T, F]`` (one of 3 features for 2 failed in torch's expand)."""
    try:
        fits = torch.broadcast_shapes(baseline.shape, x.shape) == x.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"baseline: expected 'zero', 'mean' or a tensor broadcastable to x's shape {tuple(x.shape)} "
                         f"[B, T, F], got a tensor of shape {tuple(baseline.shape)}")
    return baseline


def check_k(k, t: int) -> int:
    """``k`` (steps to replace) as an int in ``[0, t]``: -2 replaced nothing, 1.5 replaced 2 steps."""
    try:
        n = None if isinstance(k, bool) else operator.index(k)
    except TypeError:
        n = None
    if n is None or not 0 <= n <= t:
        raise ValueError(f"k: expected an int in [0, {t}] (how many of the T={t} steps to replace), got {k!r}")
    return n


def check_counts(**counts) -> tuple[int, ...]:
    """Each of ``counts`` (``batch_size``, ``n_steps``, ``repeats``, ``steps``) as a positive Python int, in the order
    given: 0 gave torch's bare split error, all-zero Captum scores or NaN scores that sort first; a numpy int passed
    the check and then failed in torch's split, so callers use what this returns."""
    return tuple(positive_int(value, name) for name, value in counts.items())


def check_seeds(seeds, methods) -> list[int]:
    """``seeds`` (one random order each) as distinct Python ints, at least one when ``methods`` holds "random" (none
    gave no curve and nothing in ``.skipped``): a seed twice collapsed into one curve unsaid, a numpy int, a float,
    a bool or a string reached torch's bare errors."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable) or getattr(seeds, "ndim", 1) == 0:
        raise TypeError(f"seeds: expected a sequence of int seeds, got {type(seeds).__name__} {seeds!r:.60}"
                        + ("; pass [seed] for one" if hasattr(seeds, "__index__") else ""))
    out = []
    for v in seeds:
        try:
            n = None if is_bool(v) else operator.index(v)
        except TypeError:
            n = None
        if n is None:
            raise TypeError(f"seeds: expected int seeds, got {v!r:.60} ({type(v).__name__}) in {seeds!r:.60}")
        out.append(n)
    twice = sorted({n for n in out if out.count(n) > 1})
    if twice:
        raise ValueError(f"seeds: expected distinct seeds (each one random order), got {twice} more than once")
    if not out and "random" in methods:
        raise ValueError("seeds: expected at least one seed for method 'random' (one curve per seed), got none; "
                         "pass seeds=[0] or leave 'random' out of methods")
    return out


def unit_mask(net, units) -> Tensor:
    """``units`` as a bool mask ``[U]`` (or ``[B, U]``) of ``net``'s code vector: a bool mask (tensor, numpy
    array or list of bools), or distinct units (code-vector indices, numpy or tensor ints, ``(site, channel)``
    pairs, lists from JSON too: read as :func:`~neuroview.attribution.gallery.unit_gallery` reads them)."""
    u = net.num_units
    if not isinstance(units, Tensor) and getattr(getattr(units, "dtype", None), "kind", None) == "b":
        units = torch.as_tensor(units)  # a numpy bool mask
    elif isinstance(units, list) and units and all(isinstance(v, bool) for v in units):
        units = torch.tensor(units)
    if isinstance(units, Tensor) and units.dtype == torch.bool:
        if units.dim() not in (1, 2) or units.shape[-1] != u:
            raise ValueError(f"units: expected a bool mask [{u}] or [B, {u}], got shape {tuple(units.shape)}")
        return units
    if isinstance(units, Tensor) and units.dtype == torch.uint8:  # torch's old mask dtype, or indices?
        raise ValueError(f"units: a uint8 tensor is ambiguous (torch's old mask dtype, or indices), got {units.tolist()!r:.80}; "
                         "pass units.bool() for a mask or units.long() for indices")
    mask = torch.zeros(u, dtype=torch.bool)
    if isinstance(units, (list, tuple)) and not units:  # none removed: the network as it is
        return mask
    cols = check_units(net, units)
    _refuse_duplicates(net, units, cols)
    mask[cols] = True
    return mask


def _refuse_duplicates(net, units, cols: list[int]) -> None:
    """A unit named twice (check_units keeps it once): most likely a 0/1 mask read as indices."""
    items = units.tolist() if hasattr(units, "ndim") and hasattr(units, "tolist") else units
    if not isinstance(items, (list, tuple)) or (len(items) == 2 and isinstance(items[0], str)) or len(items) == len(cols):
        return
    lookup = {pair: i for i, pair in enumerate(net.units)}
    idx = [lookup[(v[0], v[1])] if isinstance(v, (list, tuple)) else operator.index(v) for v in items]
    twice = sorted({i for i in idx if idx.count(i) > 1})
    hint = ("; a 0/1 mask is read as indices: pass a bool mask (e.g. torch.tensor(units).bool())"
            if set(idx) <= {0, 1} else "; each unit once (an index and its (site, channel) pair name the same unit)")
    raise ValueError(f"units: expected distinct units, got {twice} more than once{hint}")
