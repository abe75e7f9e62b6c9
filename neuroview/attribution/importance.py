"""Importance as tensors: what the plots, tables and reports draw, computed apart from drawing.

Each function takes a *source* — a trained NeuroView network (global importance from its
weights), an explanation (importance measured on a batch), or a plain tensor — and returns
tensors, so a notebook, a test and :mod:`neuroview.viz.plots` all see the same numbers.
Imports: torch and :mod:`neuroview.core` only.

>>> import torch, neuroview as nv
>>> from torch import nn
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 6, 3), nn.ReLU()), 3, input_shape=(1, 16)).eval()
>>> w, units, slices = unit_weights(net)
>>> w.shape, units[4], layer_shares(net)[0].shape
(torch.Size([3, 10]), ('3', 0), torch.Size([3, 2]))
"""

from __future__ import annotations

import inspect
import operator

import torch
from torch import Tensor, nn

from ..core._utils import as_labels, positive_int, refuse_bools
from ..core.explanation import CNNExplanation, Explanation, RNNExplanation
from ..core.rnn_backbone import fold_windows

__all__ = [
    "unit_weights",
    "time_weights",
    "layer_time_weights",
    "layer_shares",
    "class_means",
    "per_step",
    "is_cnn",
    "is_rnn",
]


def is_cnn(source) -> bool:
    """A NeuroView-CNN network or explanation (units and sites)."""
    return isinstance(source, CNNExplanation) or (_has(source, "unit_importance") and _has(source, "site_slices"))


def is_rnn(source) -> bool:
    """A NeuroView-RNN network or explanation (a time axis)."""
    return isinstance(source, RNNExplanation) or (_has(source, "time_importance") and _has(source, "feature_shape"))


def _has(source, name: str) -> bool:
    # looked up on the class, never read: a network whose sites are found on its first batch
    # raises from `site_slices` until then, and asking what it is must not fail
    return hasattr(type(source), name) or name in getattr(source, "__dict__", {})


def _describe(source) -> str:
    return f"tensor of shape {tuple(source.shape)}" if isinstance(source, Tensor) else type(source).__name__


def standardizes(net) -> bool:
    """Whether ``net.unit_importance(standardized=True)`` is standardized: a normalization keeps each code's spread
    (every member's, for an ensemble without one global head). Without one it is the raw effective weight, and
    units of different sites do not compare on it."""
    if getattr(net, "classifier", None) is None and isinstance(getattr(net, "members", None), nn.ModuleList):
        return all(getattr(m, "norm", None) is not None for m in net.members)
    return getattr(net, "norm", None) is not None


def weight_label(source, standardized: bool | None) -> str:
    """The axis label of :func:`unit_weights`'s numbers."""
    if not standardized_for(source, standardized):
        return "weight"
    return "standardized weight" if standardizes(source) else "weight (raw: no normalization)"


def standardized_for(source, standardized: bool | None) -> bool:
    """``standardized`` as :func:`unit_weights` reads it for ``source``: None (the default) is True for a network and
    the effective weight (False) for an explanation. True for an explanation is an error: it carries no code
    statistics to standardize by (it was dropped unsaid: the raw weight, 4x apart, under the same columns)."""
    if standardized is not None and not isinstance(standardized, bool):  # 0 / 1 / "no": a flag, not a guess
        raise TypeError(f"standardized: expected True, False or None, got {standardized!r}")
    if isinstance(source, CNNExplanation):
        if standardized:
            raise ValueError(f"standardized: expected None or False for a {type(source).__name__} (its effective weight: "
                             "weight * code == contribution; it carries no running statistics of the codes to "
                             "standardize by), got True; pass the network for standardized weights")
        return False
    return standardized is not False


def unit_weights(source, *, standardized: bool | None = None) -> tuple[Tensor, list[tuple[str, int]], dict[str, slice]]:
    """``(W [C, U], units, site_slices)`` of a NeuroView-CNN network or explanation.

    From a network, :meth:`~neuroview.NeuroViewCNN.unit_importance` (the one code path of every global view: 0 for a
    unit constant over training); ``standardized`` True or None (default) gives weights times each code's running
    standard deviation: the scale on which units of different layers can be ranked against each other; False the raw
    effective weights. From an explanation (``standardized`` None or False; True is refused, see
    :func:`standardized_for`), the effective weight it carries (the one with ``contributions == weight * codes``).
    """
    standardized = standardized_for(source, standardized)
    if isinstance(source, CNNExplanation):
        if source.weight is None:
            raise ValueError("source: this CNNExplanation carries no weight; use the one net.explain(x) returns")
        return source.weight.detach().cpu(), list(source.units), dict(source.site_slices)
    if is_cnn(source):
        if "standardized" in inspect.signature(source.unit_importance).parameters:
            w = source.unit_importance(standardized=standardized)
        else:
            w = source.unit_importance()
        return w.detach().cpu(), list(source.units), dict(source.site_slices)
    raise TypeError(f"source: expected a NeuroViewCNN or a CNNExplanation, got {_describe(source)}")


def _in_range(y: Tensor, num_classes: int) -> Tensor:
    """``y``, or an error where a label is no class: such samples were left out of every class's mean unsaid."""
    bad = (y < 0) | (y >= num_classes)
    if bool(bad.any()):
        raise ValueError(f"y: expected class indices in [0, {num_classes}), got {int(y[bad][0])}")
    return y


def _labels(y) -> Tensor:
    """``y`` as class indices; a bool mask refused (``y == 2``, "the class-2 samples", read as classes 1 and 0)."""
    refuse_bools(y, "y", "a mask picks samples, not classes: pass each sample's class, e.g. y=labels")
    return as_labels(y, "y")


def _per_class_mean(values: Tensor, y: Tensor | None, num_classes: int) -> Tensor:
    """``values [B, C, ...]`` -> ``[C, ...]``: row c is the mean over the samples whose label is c
    (over all samples without labels). A class with no sample has no mean: NaN (zeros read as a measured 0)."""
    if y is None:
        return values.mean(0)
    y = _in_range(_labels(y).to(values.device).reshape(-1), num_classes)
    if y.shape[0] != values.shape[0]:
        raise ValueError(f"y: expected {values.shape[0]} labels (one per sample of the explanation), got {y.shape[0]}")
    out = values.new_full(values.shape[1:], float("nan"))
    for c in range(num_classes):
        mask = y == c
        if mask.any():
            out[c] = values[mask, c].mean(0)
    return out


def time_weights(source, *, y: Tensor | None = None, sample: int | None = None, reduce: str = "norm") -> Tensor:
    """``[C, T]`` per-step importance of each class.

    - a NeuroView-RNN network: its global weights, aggregated over layers, directions and
      hidden features by ``reduce`` (see ``NeuroViewRNN.time_importance``; ``"norm"`` is unsigned);
    - an :class:`RNNExplanation`: signed contributions, of one ``sample``, or averaged over the
      samples of each class when labels ``y`` are given (row c: samples labelled c; NaN for a
      class with no sample in ``y``), or over the whole batch;
    - a ``[C, T]`` tensor: returned as is.

    ``y`` and ``sample`` apply to an explanation only, one at a time; ``reduce`` to a network only.
    """
    if isinstance(source, RNNExplanation):
        _explanation_args(y, sample, reduce)
        ti = source.time_importance if source.time_importance is not None else source.contributions.sum(dim=(2, 3, 5))
        if sample is not None:
            return ti[_check_sample(sample, ti.shape[0])].detach().cpu()
        return _per_class_mean(ti.detach().cpu(), y, source.num_classes)
    if is_rnn(source):
        _weights_args(source, y, sample)
        return source.time_importance(reduce).detach().cpu()
    if isinstance(source, Tensor) and source.dim() == 2:
        _weights_args(source, y, sample, reduce)
        return source.detach().cpu()
    raise TypeError(f"source: expected a NeuroViewRNN, an RNNExplanation or a [C, T] tensor, got {_describe(source)}")


def layer_time_weights(source, *, y: Tensor | None = None, sample: int | None = None, reduce: str = "norm") -> Tensor:
    """``[C, L, T]`` per-layer, per-step importance; sources as in :func:`time_weights`."""
    if isinstance(source, RNNExplanation):
        _explanation_args(y, sample, reduce)
        lt = source.layer_time().detach().cpu()
        if sample is not None:
            return lt[_check_sample(sample, lt.shape[0])]
        return _per_class_mean(lt, y, source.num_classes)
    if is_rnn(source):
        _weights_args(source, y, sample)
        return source.time_importance(reduce, per_layer=True).detach().cpu()
    if isinstance(source, Tensor) and source.dim() == 3:
        _weights_args(source, y, sample, reduce)
        return source.detach().cpu()
    raise TypeError(f"source: expected a NeuroViewRNN, an RNNExplanation or a [C, L, T] tensor, got {_describe(source)}")


def layer_shares(source, *, y: Tensor | None = None) -> tuple[Tensor, list[str]]:
    """``([C, L] shares, layer names)``: how much of each class's decision each layer carries.

    Row c sums to 1, except where class c has nothing to share (all its weights, or all its contributions on these
    samples, are 0: a sparse head's class that reads no unit, or whose units are all off): that row is all zeros,
    which ``class_layer_summary`` marks "(adds nothing)" and the report leaves out of ``layer_shares.csv``, naming it.
    From a network: the share of class c's absolute (CNN: standardized)
    weights that sits in each layer (CNN: each site). From an explanation: each layer's share of
    the mean absolute contributions to class c's logit, the mean taken over the samples labelled c
    when ``y`` is given (a row of NaN for a class with no sample in ``y``), else over the batch:
    the share of the class's mean, not the mean of each sample's shares.
    """
    if isinstance(source, CNNExplanation):
        mags = source.site_magnitudes()  # [B, C, S], one product per site: never the dense [B, C, U]
        raw, names = _per_class_mean(mags.detach().cpu(), y, source.num_classes), list(source.site_slices)
    elif isinstance(source, RNNExplanation):
        mags = source.layer_magnitudes()  # [B, C, L]
        raw, names = _per_class_mean(mags.detach().cpu(), y, source.num_classes), _layer_names(mags.shape[2])
    elif is_cnn(source):
        w, _, slices = unit_weights(source)
        raw, names = torch.stack([w[:, s].abs().sum(-1) for s in slices.values()], -1), list(slices)
    elif is_rnn(source):
        raw = source.time_importance("abs", per_layer=True).detach().cpu().sum(-1)
        names = _layer_names(raw.shape[1])
    elif isinstance(source, Tensor) and source.dim() == 2:
        raw, names = source.detach().cpu().abs(), _layer_names(source.shape[1])
    else:
        raise TypeError(f"source: expected a NeuroView network, an explanation or a [C, L] tensor, got {_describe(source)}")
    if not isinstance(source, Explanation):
        _weights_args(source, y, None)
    total = raw.sum(-1, keepdim=True)  # NaN for a class with no sample: it stays NaN, no row of zeros
    keep = (total > 0) | total.isnan()
    return torch.where(keep, raw / total.clamp_min(torch.finfo(raw.dtype).tiny), torch.zeros_like(raw)), names


def _explanation_args(y, sample, reduce: str) -> None:
    """An explanation gives one ``sample``'s contributions or the means over ``y``'s classes, and
    ``reduce`` aggregates a network's weights: where one of them could not be used it was dropped unsaid."""
    if sample is not None and y is not None:
        raise ValueError(f"y: expected None with sample={sample!r} (that sample's own contributions, not a class "
                         "mean): pass y or sample, got both")
    if reduce != "norm":
        raise ValueError(f"reduce: expected 'norm' (the default) for an explanation, whose signed contributions are "
                         f"averaged as they are (reduce aggregates a network's weights), got {reduce!r}")


def _weights_args(source, y, sample, reduce: str = "norm") -> None:
    """Global weights (a network's, or a tensor of them) have no samples: ``y`` and ``sample`` pick among an
    explanation's, and a tensor is drawn as given, with no ``reduce``; each was dropped unsaid."""
    for name, value in (("y", y), ("sample", sample)):
        if value is not None:
            got = repr(value) if name == "sample" else "labels"
            raise ValueError(f"{name}: expected None for a {_describe(source)} (global importance, no samples; {name} "
                             f"applies to an explanation, net.explain(x)), got {got}")
    if reduce != "norm":
        raise ValueError(f"reduce: expected 'norm' (the default) for a {_describe(source)}, which is used as given "
                         f"(reduce aggregates a network's weights), got {reduce!r}")


def _layer_names(n: int) -> list[str]:
    return [f"layer {i}" for i in range(n)]


def class_means(x: Tensor, y: Tensor, num_classes: int, *, lengths: Tensor | None = None) -> Tensor:
    """``[C, *x.shape[1:]]``: the mean input of each class (zeros for a class with no sample),
    e.g. the series drawn under a class's per-step importance. ``x``: a tensor or a numpy array; integer inputs
    (uint8 images, integer series) are averaged as float32, as the gallery's class means are.

    ``lengths [B]``: the valid positions of each row along dim 1 (the steps of a ``[B, T, F]`` batch);
    the padding past them (zeros or NaN) is left out of the means, which average over the samples of
    the class that reach each position (as the gallery's class means do); NaN where none does.
    They count rows of ``x`` as given: input samples for the series ``explain(x, lengths=)`` took, but a
    windowed RNN explanation's ``exp.lengths`` counts its *steps* (``ceil(lengths / window)``: ``[12, 10, 7, 4]``
    at ``window=3`` is ``[4, 4, 3, 2]``), so pass ``exp.lengths`` only with ``per_step(x, exp.window)``; with
    ``x`` itself it averages the first ``1 / window`` of each series, with no error.
    """
    x = torch.as_tensor(x)  # a numpy batch was an AttributeError on x.new_zeros
    if not (x.is_floating_point() or x.is_complex()):  # uint8 images: torch's mean() refused them bare
        x = x.float()  # float32 whatever the default dtype, as gallery._class_sums
    y = _in_range(_labels(y).reshape(-1), num_classes)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y: expected {x.shape[0]} labels (one per row of x), got {y.shape[0]}")
    if lengths is not None:
        return _valid_means(x, y, num_classes, lengths)
    out = x.new_zeros((num_classes, *x.shape[1:]))
    for c in range(num_classes):
        if (y == c).any():
            out[c] = x[y == c].mean(0)
    return out


def _valid_means(x: Tensor, y: Tensor, num_classes: int, lengths: Tensor) -> Tensor:
    """:func:`class_means` over each row's first ``lengths`` positions along dim 1."""
    refuse_bools(lengths, "lengths", "a mask is no lengths: pass one integer length per row of x",
                 "integer lengths, one per row of x")  # (the class hint of as_labels misled here)
    n = as_labels(lengths, "lengths").reshape(-1).cpu()
    if x.dim() < 2 or n.shape[0] != x.shape[0] or bool((n < 0).any()):
        raise ValueError(f"lengths: expected {x.shape[0]} non-negative lengths (one per row of x), "
                         f"got {n.shape[0]} values{', some negative' if bool((n < 0).any()) else ''}")
    if len(n) and int(n.max()) > x.shape[1]:  # a channels-first [B, C, T] batch averaged its padding, silently
        raise ValueError(f"lengths: expected at most {x.shape[1]} (lengths run along dim 1 of x, the steps of a "
                         f"[B, T, ...] batch), got {int(n.max())}; transpose a channels-first [B, C, T] batch first, "
                         "x.transpose(1, 2)")
    valid = torch.arange(x.shape[1]) < n[:, None]  # [B, T]
    mask = valid.reshape(*valid.shape, *[1] * (x.dim() - 2)).to(x.device)
    kept = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))  # not x * mask: NaN padding times 0 is NaN
    out = x.new_zeros((num_classes, *x.shape[1:]))
    for c in range(num_classes):
        rows = y.to(x.device) == c
        if rows.any():
            count = mask[rows].sum(0).to(x.dtype)
            out[c] = torch.where(count > 0, kept[rows].sum(0) / count.clamp_min(1), torch.full_like(count, float("nan")))
    return out


def per_step(xb: Tensor, window: int) -> Tensor:
    """``xb`` as the RNN's steps read it: the mean of each window of ``window`` samples (the last window's zero
    padding counted), the series drawn under per-step importance. ``xb``: a batch ``[B, T, F]`` (-> ``[B,
    ceil(T / window), F]``), or one series ``[T, F]`` or ``[T]`` (-> ``[ceil(T / window), F]`` or ``[ceil(T /
    window)]``), the series the plots take; a tensor or a numpy array, integers averaged as float32. Its valid rows
    are counted in steps, as a windowed explanation's ``exp.lengths`` counts them.

    >>> per_step(torch.arange(7.), 3).tolist()   # (0+1+2)/3, (3+4+5)/3, (6+0+0)/3
    [1.0, 4.0, 2.0]
    """
    window = positive_int(window, "window")  # 0 was a ZeroDivisionError, 1.5 a bare reshape error
    x = torch.as_tensor(xb)
    if not 1 <= x.dim() <= 3:  # the [T] / [T, F] series the plots take were a bare "not enough values to unpack"
        raise ValueError(f"xb: expected [T], [T, F] or [B, T, F] (one series, or a batch of them, steps first), "
                         f"got shape {tuple(x.shape)}")
    if window == 1:
        return x
    if not (x.is_floating_point() or x.is_complex()):  # an integer series: torch's mean() refused it bare
        x = x.float()
    batch = x if x.dim() == 3 else x[None] if x.dim() == 2 else x[None, :, None]
    out = fold_windows(batch, None, window)[0].unflatten(-1, (window, -1)).mean(2)
    return out if x.dim() == 3 else out[0] if x.dim() == 2 else out[0, :, 0]


def _check_sample(sample: int, b: int, what: str = "sample") -> int:
    """``sample`` as a Python int index into a batch of ``b``, in ``[0, b)``: a numpy or 0-dim integer tensor int (what
    ``np.where``, ``argmax`` give) is one; a bool, a float or a string is not. A negative index counts from the end
    (-1 is the last sample) and comes back as its position, the number the tables and titles give that sample."""
    try:
        i = None if isinstance(sample, bool) else operator.index(sample)
    except TypeError:
        i = None
    if i is None or not -b <= i < b:
        raise IndexError(f"{what}: expected an int index into a batch of {b}, got {sample!r}")
    return i % b  # -1 is row b - 1: a title that said "sample -1" named a sample no table numbers so


def check_explanation(exp) -> Explanation:
    if not isinstance(exp, Explanation):
        raise TypeError(f"exp: expected an Explanation (net.explain(x)), got {_describe(exp)}")
    return exp
