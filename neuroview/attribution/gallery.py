"""Units with a face: what each unit (each time step of an RNN) responds to in the training data.

A bar of a waterfall reads "features.0.2 #9: +2.1"; :func:`unit_gallery` says who unit 9 is: the
``k`` training samples where its code is highest, and where in them it fired. For a
NeuroView-CNN, per sample, the unit's code map stretched over the input (``heat``) and the
window of input the unit reads at its strongest position (``window``). For a NeuroView-RNN a
"unit" is a time step: the window of input samples that step reads, the samples where the step
weighed most in the decision, and each class's mean series to draw the window on.

>>> import torch, neuroview as nv
>>> from torch import nn
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2, input_shape=(1, 16)).eval()
>>> x, y = torch.randn(20, 1, 16), torch.arange(20) % 2
>>> g = nv.unit_gallery(net, [(x, y)], units=[0, ("1", 3)], k=5)
>>> g.names, g.index.shape, g.window.shape       # window: [units, k, spatial dims, (start, stop)]
(['1 #0', '1 #3'], torch.Size([2, 5]), torch.Size([2, 5, 1, 2]))
>>> int((g.window[..., 1] - g.window[..., 0]).max())   # a 3-tap convolution reads 3 samples
3

Imports: torch, :mod:`neuroview._batch`, :mod:`neuroview.core`, :mod:`.gallery_rows`, :mod:`.gallery_top` (the running
top k, each sample kept once), :mod:`.gallery_windows` and
:mod:`.waterfall_items` (what a waterfall shows, which a gallery gives faces to).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .._batch import check_lengths, in_order, kept_generators, refuse_lengths, series_input, split_batches, unpack
from ..core._utils import (batch_labels, extension, named_samples, own_rng, positive_int, register_extension, restore_modes,
                           wrapped_hint)
from ..core.cnn import NeuroViewCNN
from ..core.edits import require_members_unedited
from ..core.ensemble import Ensemble
from ..core.rnn import NeuroViewRNN
from ..core.sites import input_span
from .gallery_asked import repeat_rows
from ..core.map_order import in_input_order, position_orders
from .gallery_rows import check_units, row_of
from .gallery_top import PooledRows, Top
from .gallery_windows import windows
from .waterfall_items import decision_items, largest, waterfall_units  # kept apart for room; public here

__all__ = ["UnitGallery", "unit_gallery", "decision_items", "largest", "waterfall_units"]


@dataclass(eq=False)  # by identity, as Explanation: tensors of many values gave torch's bare error
class UnitGallery:
    """The top ``k`` training samples of each unit (or RNN step) and where in them it responds.

    Row ``i`` belongs to ``units[i]`` (a code-vector index of a CNN, a step of an RNN), named
    ``names[i]`` as the waterfall names it; column ``j`` is its ``j``-th strongest sample.
    """

    kind: str  # "units" (NeuroView-CNN) or "steps" (NeuroView-RNN)
    units: list[int]
    names: list[str]
    index: Tensor  # [n, k] the samples' positions in the loader's order (RNN: -1 at an empty place, see unit_gallery)
    value: Tensor  # [n, k] what they were ranked by (``ranked_by``)
    # [n, k, C, *spatial]: the samples, channels-first as the data modules give them (an RNN's: each series held once
    # however many steps show it, formed at the first read: a gallery of every step is T x k whole series)
    x: Tensor = PooledRows()
    y: Tensor | None  # [n, k] their labels (None when the loader has none)
    window: Tensor  # [n, k, D, 2] start and stop (exclusive) of the window in each spatial dim
    ranked_by: str
    heat: Tensor | None = None  # CNN [n, k, *spatial]: the code map over the input (its span); NaN off it, or no map
    position: Tensor | None = None  # CNN [n, k]: flat index of the strongest position in the site's map
    lengths: Tensor | None = None  # RNN [n, k]: valid samples of each series (0 at a place no series was left for)
    class_means: Tensor | None = None  # RNN [num_classes, C, T]: each class's mean series (labels needed)
    reads: Tensor | None = None  # RNN [n, 2]: start and stop of the samples each step reads (cut at max_len)
    class_counts: Tensor | None = None  # RNN [num_classes]: the series of each class the means are of (0: no mean)
    num_classes: int | None = None  # the network's classes (what ``class_names`` of its plot must count)

    @property
    def k(self) -> int:
        return self.index.shape[1]

    def __len__(self) -> int:
        return len(self.units)

    def row(self, unit) -> int | None:
        """The row of ``unit``, given as ``units=`` takes it (code-vector index or step, a CNN's ``(site, channel)``
        pair) or by its name in ``names``; None when the gallery lacks it. Anything else is an error."""
        return row_of(self, unit)

    def sample(self, row: int, j: int) -> Tensor:
        """``x[row, j]``, without forming ``x`` (all of an RNN gallery's places) where it is not formed yet."""
        return PooledRows.one(self, "x", row, j)


def unit_gallery(net, loader, units, k: int = 6, *, max_samples: int | None = None, baseline=None) -> UnitGallery:
    """What each of ``units`` responds to in ``loader``'s samples: its top ``k`` and where.

    Args:
        net: a NeuroViewCNN, NeuroViewRNN or Ensemble of NeuroView-CNNs (its sites found).
        loader: batches as the data modules give them (``(x, y)``, ``(x, lengths, y)`` or ``x``, channels-first: an
            RNN's series are ``[B, C, T]``), one such batch, or a data module, whose training split is read in order,
            unshuffled and unaugmented (its ``_loader("train")``, else its ``train_dataloader()``). A DataLoader that
            shuffles or drops its last batch is read over its dataset in order and whole (same batch size and collate),
            so ``index`` names a sample of it; one with a sampler of its own is an error. CNN inputs must be
            floating-point (the window is measured by a gradient on them).
        units: CNN: indices into the code vector or ``(site, channel)`` pairs of ``net.units``;
            RNN: time steps, ``0 <= t < net.steps``. One row per unit given, in the order given, repeats too (as
            ``x[[3, 0, 3]]``; an index and its pair are one unit; ``row(u)``: its first). CNN cost: a rerun of each
            sample shown (32 at a time), a backward per distinct unit x k (each distinct unit is scanned once).
        k: samples per unit; where fewer samples are read, as many as there are: ``g.k == min(k, samples
            read)``, for a CNN and an RNN alike. ``max_samples``: read at most this many samples (empty
            batches are skipped).
        baseline: an RNN's step contributions are taken against it (``explain``'s ``baseline``): pass the one of
            the waterfall the gallery is drawn beside (``"mean"``, as the report's), so that both rank and
            show the same numbers. A CNN's ranking by code does not depend on it.

    Ranking. CNN: by the unit's code averaged over positions (what the classifier reads), highest first, ties to the
    lower sample index. Where: the unit's *strongest position* in a sample is where its pre-activation is largest (codes
    tie at 1 wherever a ReLU unit is on); ``window`` is the bounding box of the input positions on which that
    pre-activation's gradient is non-zero: the receptive field the sample actually uses (paths through units that are
    off are cut), measured rather than derived from kernel sizes, so strides, dilations, padding, pooling and attention
    are all honest. A window of the whole input means the unit sees all of it, or (gradient 0 everywhere) that nothing
    local moves it; a window that wraps around the input's end (its gradient passes through a circular convolution's
    padding) is an error; a dilated layer's gaps are no wrap. Under the caller's ``no_grad`` or ``inference_mode`` the
    windows are the same (measured with grad on, on a copy). ``heat`` is the unit's code map stretched (nearest) over
    the input, for sites whose maps have the input's rank (units last where their order is followed: a channels-last
    conv's, ConvNeXt's ``[B, H, W, C]``, not tokens with a class token ``cat`` among them, NaN at any count); over the
    steps it covers where the backbone says it covers part of the input (MiniRocket's centre sites), NaN elsewhere;
    moved back where swapped (``.mT``), flipped or rolled (a series too), NaN where ``flip``/``rot90``/``roll`` left no
    order (``core.map_order``). RNN: step ``t`` reads input samples ``t * window`` to ``(t + 1) * window`` (``reads``,
    cut at ``max_len``; ``window``: cut at each series' length too); its samples are those where its contribution to the
    *predicted* class's logit is largest in absolute value (``value`` keeps the sign): a step's hidden state is a
    vector, and its contribution is the one number the decision reads from it. Only series that reach the step
    (``lengths > t * window``) are ranked: a step of padding is no reading of the series (against a non-zero baseline it
    even "contributes" ``-W @ baseline``). Where fewer than ``g.k`` series reach it, its last places are empty: index
    -1, value NaN, x 0, y -1, lengths 0 and window ``(start, start)``. ``class_means``: over the samples of each class
    that reach each position (padding, NaN too, never read); NaN where none does, 0 for a class without samples, as
    :func:`~neuroview.attribution.importance.class_means`. All samples of a CNN's loader must have one shape (the
    gallery keeps them in one tensor); an RNN's series are padded to ``max_len``.
    """
    if not isinstance(net, (NeuroViewCNN, NeuroViewRNN, Ensemble)) or (isinstance(net, Ensemble) and not net.neuroview):
        raise TypeError("net: expected a NeuroViewCNN, a NeuroViewRNN or an Ensemble of NeuroView-CNNs" + (wrapped_hint(
            net, lambda m: isinstance(m, (NeuroViewCNN, NeuroViewRNN, Ensemble))) or f", got {type(net).__name__}"))
    k, max_samples = positive_int(k, "k"), positive_int(max_samples, "max_samples", none=True)
    if not (baseline is None or isinstance(baseline, Tensor) or (isinstance(baseline, str) and baseline in ("zero", "mean"))):
        raise ValueError(f"baseline: expected None, 'zero', 'mean' or a tensor (explain's baseline), got {baseline!r}")
    rnn = isinstance(net, NeuroViewRNN)
    with own_rng(next(net.parameters()).device), kept_generators(loader):  # a loader's base seed: no RNG of the caller's
        # a data module of other classes than net records (its y, class_means named as net's): the command line's error
        batches = iter(_batches(extension("data_classes")(net, loader, "loader")))  # (neuroview.training.classes_checked)
        first = next(batches, None)
        while first is not None and not len(unpack(first, what="loader", net=net)[0]):  # empty batches: samples later
            first = next(batches, None)
        if first is None:
            raise ValueError("loader: gave no samples")
        x0 = _samples(unpack(first, what="loader", net=net)[0])
        if not rnn and isinstance(x0, Tensor) and not (x0.is_floating_point() or x0.is_complex()):
            raise ValueError(f"loader: expected floating-point inputs (a unit's window is where its gradient on the input is "
                             f"non-zero), got dtype {x0.dtype}; pass x.float() where the network reads that (uint8 images "
                             "scaled inside it do): token ids have no such window")
        if not rnn and net.sites is None:  # a network wrapped lazily finds its units on the first batch
            net.discover(x0.to(next(net.parameters()).device))
        require_members_unedited(net)  # an Ensemble's edited member: its error names it (members.<m>.backbone)
        cols, restore = check_units(net, units), restore_modes(net)  # each distinct unit once: scanned once
        try:
            net.eval()  # inside: a hold never let go would keep the modes from coming back
            top = _scan(net, itertools.chain([first], batches), cols, k, rnn, max_samples, baseline)
            based = baseline is not None and not (isinstance(baseline, str) and baseline == "zero")
            if not rnn:
                _say_constant(net, cols, top)
            return repeat_rows(net, units, _rnn_gallery(net, cols, top, based) if rnn else _cnn_gallery(net, cols, top))
        finally:
            restore()


def _batches(loader):
    """The iterable of batches ``loader`` stands for (see :func:`unit_gallery`): the training split in order and
    without augmentation, so that an index names a sample."""
    return in_order(split_batches(loader, "train", "loader", subsets=False), strict="so that an index names a sample",
                    subsets=False)


def _samples(x):
    """``x``, a batch's samples, where it is a tensor; any other type refused by its name (a numpy batch was a bare
    AttributeError, or for an RNN an error that blamed the layout), as ``readability`` and ``sparsify`` refuse it."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__} (the samples of a batch of loader; convert "
                        "them, torch.as_tensor(x), as the data modules give tensors)")
    return x


# ----------------------------------------------------------------------------- scan
def _say_constant(net, cols: list[int], top: Top) -> None:
    """Warn of the units whose code was one value on every sample read (dead, or always on): their places are the
    first samples read (ties to the lower index), no face of what they respond to."""
    same = (top.score[:, 0] == top.low).tolist()
    names = [f"{net.units[c][0]} #{net.units[c][1]} (code {v:g})" for c, s, v in zip(cols, same, top.score[:, 0].tolist()) if s]
    if names:
        warnings.warn(f"units: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}: the code was the same on every "
                      f"sample read ({top.seen}), so the gallery shows the first {top.k} samples, not what the unit "
                      "responds to (a dead or always-on unit)", stacklevel=3)


def _scan(net, batches, cols: list[int], k: int, rnn: bool, max_samples: int | None, baseline=None) -> Top:
    top, device = Top(k), next(net.parameters()).device
    sums = counts = shape = labelled = None
    with torch.no_grad():
        for j, batch in enumerate(batches):
            if max_samples is not None and top.seen >= max_samples:
                break
            x, lengths, y = unpack(batch, what="loader", net=net)  # single samples named as such (x of the net's rank)
            if not len(_samples(x)):  # an empty batch is no end of the data
                continue
            if rnn:  # the layout first: a steps-last batch is named as such, not by its lengths
                series_input(x, net, "loader")
            # (x, y, other) is read as (x, lengths, y), `other` taken for y: named as readability names it (an RNN's
            # own check named `lengths`, an argument the user never passed)
            check_lengths(lengths, x, "loader", y)
            refuse_lengths(net, lengths, "loader", x)  # a MiniRocket's codes count padding as data: sparsify refuses it
            lengths = None if lengths is None else torch.as_tensor(lengths)  # a list too, as explain takes it
            if labelled is not None and labelled != (y is not None):  # g.y kept stale labels, or a bare KeyError('y')
                was, now = ("with", "without") if labelled else ("without", "with")
                raise ValueError(f"loader: expected every batch to carry labels or none, got batches {was} labels, "
                                 f"then one {now} them at sample {top.seen}")
            labelled = y is not None
            if y is not None:  # one class index of the network's per sample, as readability reads them
                y = batch_labels(y, len(x), net.num_classes, "loader")
            if max_samples is not None:
                x, y = x[: max_samples - top.seen], None if y is None else y[: max_samples - top.seen]
                lengths = None if lengths is None else lengths[: len(x)]
            if not rnn and shape is not None and tuple(x.shape[1:]) != shape:  # one tensor holds the samples kept
                raise ValueError(f"loader: expected samples of one shape, got {shape} in the first batch and "
                                 f"{tuple(x.shape[1:])} from sample {top.seen} on; a gallery keeps its samples in one "
                                 "tensor: pad or crop them to one size (a collate_fn), or make one gallery per size")
            shape = tuple(x.shape[1:])
            rows = {"x": x.detach().cpu()}
            if y is not None:
                rows["y"] = y.cpu()
            if rnn:
                with named_samples("loader", j, top.seen):  # a NaN named as a sample of the data, not in `x`
                    exp = net.explain(series_input(x.to(device), net, "loader"),
                                      None if lengths is None else lengths.to(device), baseline=baseline)
                value = exp.time_importance[torch.arange(len(x)), exp.predicted][:, cols].cpu()
                rows["x"] = F.pad(rows["x"], (0, net.max_len - x.shape[-1]))
                n = torch.full((len(x),), x.shape[-1]) if lengths is None else lengths.long().cpu()
                rows["lengths"] = n
                # a step past a series' end is padding: ranked below every series that reaches it
                score = torch.where(n[:, None] > torch.tensor(cols) * net.window, value.abs(), value.new_tensor(-1.0))
                if y is not None:
                    sums, counts = _class_sums(rows["x"], rows["lengths"], rows["y"], net.num_classes, sums, counts)
            else:
                with named_samples("loader", j, top.seen):
                    value = score = net.codes(x.to(device))[:, cols].float().cpu()
            top.add(score, value, rows)
    if top.index is None:
        raise ValueError("loader: gave no samples")
    if sums is not None:  # as importance.class_means: NaN where no series of the class reaches, 0 for a class without one
        unreached = (counts == 0) & (counts > 0).any(1, keepdim=True)
        top.class_means = (sums / counts.clamp_min(1)[:, None]).masked_fill(unreached[:, None], float("nan"))
        top.class_counts = counts[:, 0]  # every series reaches its first step
    return top


def _class_sums(x: Tensor, lengths: Tensor, y: Tensor, c: int, sums, counts):
    """Running per-class sums of the valid samples of each series, and their counts per position; the
    padding is never read (NaN padding times 0 is NaN)."""
    valid = torch.arange(x.shape[-1]) < lengths[:, None]  # [B, T]
    # float32 whatever torch's default dtype is (a float64 default failed index_add_ bare)
    s = torch.zeros(c, *x.shape[1:], dtype=torch.float32).index_add_(0, y, torch.where(valid[:, None], x.float(), 0.0))
    n = torch.zeros(c, x.shape[-1], dtype=torch.float32).index_add_(0, y, valid.float())
    return (s, n) if sums is None else (sums + s, counts + n)


# --------------------------------------------------------------------------- where
def _rnn_gallery(net: NeuroViewRNN, steps: list[int], top: Top, based: bool = False) -> UnitGallery:
    n, k = top.index.shape
    starts = torch.tensor(steps)[:, None] * net.window
    reads = torch.cat([starts, (starts + net.window).clamp_max(net.max_len)], 1)  # [n, 2]
    empty = top.score < 0  # places no series that reaches the step was left for
    lengths = top.rows("lengths").masked_fill(empty, 0)
    stop = torch.minimum(reads[:, 1:], lengths).clamp_min(starts)  # each series' window ends with it
    y = top.rows("y")
    return UnitGallery(
        kind="steps", units=steps, names=[f"step {t}" for t in steps], index=top.index.masked_fill(empty, -1),
        value=top.value.masked_fill(empty, float("nan")), x=(top.pool["x"], top.at.masked_fill(empty, -1)),
        y=None if y is None else y.masked_fill(empty, -1), window=torch.stack([starts.expand(n, k), stop], -1)[:, :, None],
        ranked_by="|contribution to the predicted class|" + (" against the baseline" if based else ""),  # value: signed
        lengths=lengths, class_means=top.class_means, reads=reads, class_counts=top.class_counts, num_classes=net.num_classes,
    )


_CHUNK = 32  # distinct samples per pass: what a gallery holds at once, whatever the units asked


def _cnn_gallery(net: NeuroViewCNN | Ensemble, cols: list[int], top: Top) -> UnitGallery:
    """The windows, positions and heat of every (unit, place) of ``top``. Each distinct sample runs once per chunk
    of ``_CHUNK`` of them (per site for the windows), however many units list it: the ``n * k`` places, each run
    whole, cost memory and time in the square of the units asked at one site (18.8 GB for 1,000 units of a
    1,000-channel site, to show 6 MB of thumbnails)."""
    xs = top.rows("x")  # [n, k, C, *spatial]
    n, k, spatial = xs.shape[0], xs.shape[1], xs.shape[3:]
    window = torch.zeros(n * k, len(spatial), 2, dtype=torch.long)
    position = torch.zeros(n * k, dtype=torch.long)
    heat = torch.full((n * k, *spatial), float("nan"), dtype=xs.dtype if xs.is_floating_point() else torch.float32)
    uniq, inv, count = torch.unique(top.index.flatten(), return_inverse=True, return_counts=True)
    first = torch.full((len(uniq),), n * k).scatter_reduce_(0, inv, torch.arange(n * k), "amin")
    samples = xs.flatten(0, 1)[first]  # each distinct sample once, as the first place that shows it keeps it
    # samples of as many units share a chunk: a backward round of windows() then has a row of most of them
    order = torch.sort(count, descending=True, stable=True).indices
    chunk = torch.empty_like(order)
    chunk[order] = torch.arange(len(order)) // _CHUNK
    every = net.units  # a property that builds its list on each read
    units = [every[u] for u in cols]
    names = list(dict.fromkeys(site for site, _ in units))
    site_of = torch.tensor([names.index(site) for site, _ in units]).repeat_interleave(k)  # [n * k]
    chs = torch.tensor([ch for _, ch in units]).repeat_interleave(k)  # [n * k]
    sites, device = {s.name: s for s in net.sites}, next(net.parameters()).device
    local = torch.empty_like(order)  # per site below: its positions' order over the input's (an .mT swaps them)
    orders = position_orders(net, [sites[name] for name in names], samples[:1].to(device))
    for c in range(-(-len(uniq) // _CHUNK)):
        ids = order[c * _CHUNK:(c + 1) * _CHUNK]
        local[ids] = torch.arange(len(ids))
        places = (chunk[inv] == c).nonzero().flatten()
        with torch.no_grad():  # the maps of these samples only
            maps = net.explain(samples[ids].to(device), maps=True).code_maps
        for j in site_of[places].unique().tolist():  # the sites in the order of their first unit
            name, at = names[j], places[site_of[places] == j]
            for part in _parts(li := local[inv[at]]):  # li: each place's sample in the chunk
                need, sub = torch.unique(li[part], return_inverse=True)
                window[at[part]], position[at[part]] = windows(net, sites[name], chs[at[part]], samples[ids][need], sub)
            cmap = maps[name][li.to(device), chs[at].to(device)]
            cmap = in_input_order(cmap, _order_of(sites[name], orders, spatial, cmap.shape[1:]))
            h = None if cmap is None else _heat(net, sites[name], cmap, spatial)  # moved back, or in no order: NaN
            if h is not None:
                heat[at] = h.to(heat.dtype)
    return UnitGallery(
        kind="units", units=cols, names=[f"{site} #{ch}" for site, ch in units], index=top.index,
        value=top.value, x=xs, y=top.rows("y"), window=window.unflatten(0, (n, k)),
        ranked_by="code (mean over positions)", heat=heat.unflatten(0, (n, k)), position=position.unflatten(0, (n, k)),
        num_classes=net.num_classes,
    )


def _parts(li: Tensor) -> list[Tensor]:
    """``li``'s rows (each row's sample) in parts run by ``windows`` apart: a backward round runs through all of a
    call's samples (one shown by 78 units beside 31 shown by few made 78 rounds of 32); the samples shown most run alone
    while that saves (rounds x samples; a round costs 4 more, a call 8)."""
    ids, count = torch.unique(li, return_counts=True)
    c, order = torch.sort(count, descending=True, stable=True)
    k = next((i for i in range(len(c) - 1) if (c[i] - c[i + 1]) * (len(c) - i - 1) <= 4 * c[i + 1] + 8), len(c) - 1)
    return [(li == ids[i]).nonzero().flatten() for i in order[:k]] + [torch.isin(li, ids[order[k:]]).nonzero()[:, 0]]


def _order_of(site, orders: dict, spatial: tuple, positions: tuple = ()):
    """The order of ``site``'s positions over the input (:func:`~neuroview.core.map_order.position_orders`; ``()``: not
    followed, stretched as they are). Units last, not followed: None (no heat), as a transformer's tokens may be (a class
    token among them, not told by their count: 4 tokens of T=12, patch 4, were drawn one patch late; a grid of tokens
    reshaped on an image), except one token per step of a series (``positions`` ``(T,)``: an einsum projection lost it,
    review R4 finding 2). A channels-last map whose order is followed (ConvNeXt's ``[B, H, W, C]``) is drawn."""
    tokens = site.axis == -1 and not (len(spatial) == 1 and tuple(positions) == tuple(spatial))
    return orders.get(site.name, None if tokens else ())


def _heat(net: NeuroViewCNN | Ensemble, site, cmap: Tensor, spatial: tuple) -> Tensor | None:
    """``[B, *spatial]``: code maps ``cmap [B, *positions]`` of ``site`` (in the input's order) stretched over the input
    where they have the input's rank, NaN off the part of the input the site reads; None: no such map."""
    # an MLP's [B, F] input has no positions to stretch a map over
    if not spatial or cmap.dim() - 1 != len(spatial):
        return None
    # a map of part of the input (MiniRocket's centre sites) lies on that part, NaN elsewhere: stretched over the
    # whole input, it marked steps the unit never reads
    span = input_span(net, site.name, spatial[-1]) if len(spatial) == 1 else None
    at, size = (slice(span[0], sum(span)), (span[1],)) if span else (slice(None), tuple(spatial))
    heat = torch.full((len(cmap), *spatial), float("nan"))
    heat[..., at] = F.interpolate(cmap.float()[:, None], size=size, mode="nearest")[:, 0].cpu()
    return heat


def _method(net, loader, units, k: int = 6, **kw) -> UnitGallery:
    return unit_gallery(net, loader, units, k, **kw)


register_extension("unit_gallery", _method)
