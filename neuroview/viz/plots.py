"""Pictures of importance: each function takes a network or an explanation, returns a Figure.

Nothing here computes importance (that is :mod:`neuroview.attribution.importance` and the explanations)
and nothing calls ``plt.show()``: figures are built without pyplot, so they never pile up in
pyplot's global state; save them with ``fig.savefig(path)``, or let a notebook display them.
Signed importance uses a diverging colormap centred at 0 (red adds to the logit, blue takes
from it). matplotlib is an optional extra: ``pip install 'neuroview[plots]'``.

>>> import torch, neuroview as nv
>>> from torch import nn
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU()), 3).eval()
>>> x = torch.rand(2, 1, 8, 8)
>>> from neuroview import plots
>>> fig = plots.waterfall(net.explain(x), sample=0, class_names=["a", "b", "c"])
>>> type(fig).__name__
'Figure'

CNN: :func:`unit_heatmap`, :func:`top_units`, :func:`waterfall`, :func:`spatial_maps`.
RNN: :func:`time_importance`, :func:`layer_time`, :func:`sample_time` (and :func:`waterfall`
over time steps). Both: :func:`class_layer_summary`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from ..core.explanation import CNNExplanation, Explanation, RNNExplanation
from ..attribution.importance import (
    _check_sample,
    check_explanation,
    is_cnn,
    layer_shares,
    layer_time_weights,
    time_weights,
    unit_weights,
)

__all__ = [
    "unit_heatmap",
    "top_units",
    "waterfall",
    "spatial_maps",
    "time_importance",
    "layer_time",
    "sample_time",
    "class_layer_summary",
]

CMAP = "RdBu_r"  # diverging: red adds to the logit, blue takes from it, white is 0
POS, NEG = "#b2182b", "#2166ac"


def _mpl():
    try:
        import matplotlib  # noqa: PLC0415 - optional dependency, imported only when drawing
        from matplotlib import colors  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError as e:
        raise ImportError("neuroview.viz.plots needs matplotlib: pip install 'neuroview[plots]'") from e
    return matplotlib, colors, Figure


def _figure(w: float, h: float):
    Figure = _mpl()[2]
    # cap the size so that a model with hundreds of sites still gives a picture one can open
    return Figure(figsize=(min(w, 30.0), min(h, 60.0)), layout="constrained", dpi=100)


def _names(num_classes: int, class_names: Sequence | None) -> list[str]:
    if class_names is None:
        return [f"class {c}" for c in range(num_classes)]
    names = [str(n) for n in class_names]
    if len(names) != num_classes:
        raise ValueError(f"class_names: expected {num_classes} names (one per class), got {len(names)}")
    # labels such as "1" and "2" (UCR sets, digits) would read as tick values on an axis
    return [f"class {n}" if _is_number(n) else n for n in names]


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _sym_norm(*values: Tensor):
    colors = _mpl()[1]
    m = max((float(v.abs().max()) if v.numel() else 0.0) for v in values)
    m = m if m > 0 else 1.0
    return colors.Normalize(vmin=-m, vmax=m)


def _scale(*values: Tensor):
    """``(norm, cmap)``: diverging and centred at 0 for signed values, sequential from 0 for
    values that cannot be negative (a norm of weights), so white always means 0."""
    colors = _mpl()[1]
    if all(bool((v >= 0).all()) for v in values):
        m = max((float(v.max()) if v.numel() else 0.0) for v in values)
        return colors.Normalize(vmin=0.0, vmax=m if m > 0 else 1.0), "Reds"
    return _sym_norm(*values), CMAP


def _classes(classes, num_classes: int) -> list[int]:
    if classes is None:
        return list(range(num_classes))
    out = [int(c) for c in classes]
    bad = [c for c in out if not 0 <= c < num_classes]
    if bad or not out:
        raise ValueError(f"classes: expected a non-empty list of class indices in [0, {num_classes}), got {list(classes)}")
    return out


def _grid(fig, n: int, max_cols: int, **kw):
    ncols = min(max_cols, n)
    nrows = math.ceil(n / ncols)
    axes = list(fig.subplots(nrows, ncols, squeeze=False, **kw).ravel())
    for ax in axes[n:]:
        ax.remove()  # an empty panel would read as a missing result
    return axes[:n]


def _target(exp: Explanation, sample: int, target) -> int:
    if target is None:
        return int(exp.predicted[sample])
    target = int(target)
    if not 0 <= target < exp.num_classes:
        raise ValueError(f"target: expected a class index in [0, {exp.num_classes}), got {target}")
    return target


def _label_text(label, names: list[str]) -> str:
    return names[int(label)] if label is not None else "?"


# --------------------------------------------------------------------------- CNN
def _sorted_units(w: Tensor, max_units: int | None) -> Tensor:
    """Column order for a ``[C, U]`` block: the ``max_units`` strongest units, grouped by the
    class they vote for most, strongest first, so the heatmap reads as a staircase."""
    idx = torch.arange(w.shape[1])
    if max_units is not None and w.shape[1] > max_units:
        idx = w.abs().amax(0).topk(max_units).indices
    sub = w[:, idx]
    best, top = sub.max(0)
    order = sorted(range(len(idx)), key=lambda j: (int(top[j]), -float(best[j])))
    return idx[order]


def unit_heatmap(source, *, class_names: Sequence | None = None, sites: Sequence[str] | None = None,
                 max_units: int | None = 64, standardized: bool = True):
    """Unit-class weights as one heatmap per site: classes x units, units sorted by the class
    they vote for.

    ``source`` is a NeuroViewCNN (standardized weights, comparable across sites) or a
    CNNExplanation (its effective weights). Sites with more than ``max_units`` units show their
    strongest ones. One shared, zero-centred colour scale.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3).eval()
    >>> [ax.get_title() for ax in unit_heatmap(net).axes[:1]]
    ['site 1: 4 units']
    """
    w, _, slices = unit_weights(source, standardized=standardized)
    sel = list(slices) if sites is None else list(sites)
    unknown = [s for s in sel if s not in slices]
    if unknown or not sel:
        raise ValueError(f"sites: expected names among {list(slices)}, got {list(sites) if sites is not None else sel}")
    c = w.shape[0]
    names = _names(c, class_names)
    orders = [_sorted_units(w[:, slices[s]], max_units) for s in sel]
    widest = max(len(o) for o in orders)
    fig = _figure(3.0 + 0.16 * widest, 0.8 + len(sel) * (0.9 + 0.2 * c))
    axes = fig.subplots(len(sel), 1, squeeze=False)[:, 0]
    norm = _sym_norm(*(w[:, slices[s]] for s in sel))
    channels = {s: torch.arange(slices[s].stop - slices[s].start) for s in sel}
    im = None
    for ax, site, order in zip(axes, sel, orders):
        block = w[:, slices[site]][:, order]
        im = ax.imshow(block.numpy(), cmap=CMAP, norm=norm, aspect="auto", interpolation="nearest")
        n = slices[site].stop - slices[site].start
        shown = f", the {len(order)} strongest" if len(order) < n else ""
        ax.set_title(f"site {site}: {n} units{shown}", fontsize=9)
        ax.set_yticks(range(c), names, fontsize=7)
        ax.set_ylabel("class")
        if len(order) <= 64:
            ax.set_xticks(range(len(order)), [str(int(ch)) for ch in channels[site][order]], fontsize=6, rotation=90)
        else:
            ax.set_xticks([])
    axes[-1].set_xlabel("unit (channel), grouped by the class it weighs most")
    label = "standardized weight" if standardized and not isinstance(source, CNNExplanation) else "weight"
    fig.colorbar(im, ax=list(axes), label=label, shrink=min(1.0, 4.0 / len(sel) + 0.2))
    fig.suptitle("Unit-class weights of the global classifier, per site")
    return fig


def _site_colors(sites: list[str]) -> dict[str, tuple]:
    matplotlib = _mpl()[0]
    cmap = matplotlib.colormaps["tab10" if len(sites) <= 10 else "tab20"]
    return {s: cmap(i % cmap.N) for i, s in enumerate(sites)}


def top_units(source, *, k: int = 5, class_names: Sequence | None = None, classes: Sequence[int] | None = None,
              standardized: bool = True):
    """Per class, the ``k`` units with the largest weight, labelled and coloured by their site.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3).eval()
    >>> len(top_units(net, k=2).axes)
    3
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected a positive int, got {k!r}")
    w, units, slices = unit_weights(source, standardized=standardized)
    c = w.shape[0]
    names = _names(c, class_names)
    sel = _classes(classes, c)
    k = min(k, w.shape[1])
    colors = _site_colors(list(slices))
    ncols = min(5, len(sel))
    fig = _figure(3.3 * ncols, 0.9 + math.ceil(len(sel) / ncols) * (0.5 + 0.3 * k))
    used: dict[str, tuple] = {}
    for ax, cls in zip(_grid(fig, len(sel), 5), sel):
        vals, idx = w[cls].topk(k)
        labels = [f"{units[i][0]} #{units[i][1]}" for i in idx.tolist()]
        cols = [colors[units[i][0]] for i in idx.tolist()]
        for i in idx.tolist():
            used[units[i][0]] = colors[units[i][0]]
        ax.barh(range(k), vals.numpy(), color=cols)
        ax.set_yticks(range(k), labels, fontsize=7)
        ax.invert_yaxis()  # strongest on top
        ax.axvline(0, color="k", lw=0.5)
        ax.set_title(names[cls], fontsize=9)
        ax.set_xlabel("standardized weight" if standardized and not isinstance(source, CNNExplanation) else "weight", fontsize=8)
    matplotlib = _mpl()[0]
    handles = [matplotlib.patches.Patch(color=col, label=s) for s, col in used.items()]
    fig.legend(handles=handles, title="site (layer)", loc="outside lower center", ncols=min(6, len(handles)), fontsize=7)
    fig.suptitle(f"Top {k} units of each class")
    return fig


def _items(exp: Explanation, sample: int, target: int) -> tuple[Tensor, list[str], str]:
    """Per-item contributions of one sample to one class, their labels, and the item's name."""
    if isinstance(exp, CNNExplanation):
        return exp.contributions[sample, target].detach().cpu(), [f"{s} #{ch}" for s, ch in exp.units], "units"
    if isinstance(exp, RNNExplanation):
        ti = exp.time_importance if exp.time_importance is not None else exp.contributions.sum(dim=(2, 3, 5))
        v = ti[sample, target].detach().cpu()
        return v, [f"step {t}" for t in range(len(v))], "steps"
    v = exp.contributions[sample, target].detach().cpu().flatten()
    return v, [f"feature {i}" for i in range(len(v))], "features"


def waterfall(exp: Explanation, sample: int = 0, *, target: int | None = None, k: int = 8,
              class_names: Sequence | None = None, label: int | None = None):
    """How one logit is built: the bias, then the ``k`` largest contributions (units of a CNN,
    time steps of an RNN), then the sum of all the others; the last bar is the logit itself.

    ``target`` defaults to the predicted class; ``label`` (the true class) goes in the title.
    """
    exp = check_explanation(exp)
    sample = _check_sample(sample, exp.logits.shape[0])
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected a positive int, got {k!r}")
    names = _names(exp.num_classes, class_names)
    tgt = _target(exp, sample, target)
    v, labels, what = _items(exp, sample, tgt)
    k = min(k, len(v))
    top = v.abs().topk(k).indices.tolist()
    entries = [("bias", float(exp.bias[tgt]))] + [(labels[i], float(v[i])) for i in top]
    if len(v) > k:
        mask = torch.ones(len(v), dtype=torch.bool)
        mask[top] = False
        entries.append((f"{len(v) - k} other {what}", float(v[mask].sum())))
    logit = float(exp.logits[sample, tgt])
    fig = _figure(7.5, 1.3 + 0.3 * (len(entries) + 1))
    ax = fig.subplots()
    cum = 0.0
    for i, (_, val) in enumerate(entries):
        ax.barh(i, val, left=cum, color=POS if val >= 0 else NEG, height=0.7)
        ax.plot([cum + val] * 2, [i - 0.35, i + 1.35], color="0.5", lw=0.6)  # connector to the next bar
        ax.annotate(f"{val:+.3g}", (cum + val, i), xytext=(3 if val >= 0 else -3, 0), textcoords="offset points",
                    ha="left" if val >= 0 else "right", va="center", fontsize=7)
        cum += val
    n = len(entries)
    ax.barh(n, logit, color="0.25", height=0.7)
    ax.annotate(f"{logit:.3g}", (logit, n), xytext=(3 if logit >= 0 else -3, 0), textcoords="offset points",
                ha="left" if logit >= 0 else "right", va="center", fontsize=7, weight="bold")
    ax.set_yticks(range(n + 1), [e[0] for e in entries] + ["logit"], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.5)
    ends = [0.0, logit, *torch.cumsum(torch.tensor([e[1] for e in entries], dtype=torch.float64), 0).tolist()]
    lo, hi = min(ends), max(ends)
    pad = 0.15 * (hi - lo) if hi > lo else 1.0  # room for the value labels on both sides
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel(f"contribution to the logit of {names[tgt]}")
    pred = int(exp.predicted[sample])
    truth = f", true {_label_text(label, names)}" if label is not None else ""
    ax.set_title(f"sample {sample}: logit of {names[tgt]} = bias + contributions (predicted {names[pred]}{truth})", fontsize=9)
    return fig


def _background(x: Tensor):
    """An input sample ``[C, H, W]`` as an image: RGB for 3 channels, else the channel mean."""
    x = x.detach().cpu().float()
    if x.shape[0] == 3:
        lo, hi = x.amin(), x.amax()
        return ((x - lo) / (hi - lo if hi > lo else 1.0)).permute(1, 2, 0).numpy(), None
    return x.mean(0).numpy(), "gray"


def spatial_maps(exp: CNNExplanation, x: Tensor, sample: int = 0, *, target: int | None = None, k: int = 4,
                 class_names: Sequence | None = None, label: int | None = None, sample_id: int | None = None):
    """Where the top ``k`` units of one sample add to a logit, over the input (images or 1-D signals).

    Each panel is a unit's contribution per *input* position: its code map times its weight
    divided by the number of input positions, stretched to the input's extent, so it sums over
    the input to the unit's contribution and maps of sites of different resolution share one
    scale. Needs ``net.explain(x, maps=True)``; ``x`` is the batch that was explained.
    ``sample_id`` names the sample in the title when ``x`` is a sub-batch (default ``sample``).
    """
    if not isinstance(exp, CNNExplanation):
        raise TypeError(f"exp: expected a CNNExplanation, got {type(exp).__name__}")
    if exp.code_maps is None:
        raise ValueError("exp: has no code maps; call net.explain(x, maps=True)")
    if not isinstance(x, Tensor) or x.dim() not in (3, 4) or x.shape[0] != exp.logits.shape[0]:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x: expected the explained batch, [{exp.logits.shape[0]}, C, T] or [{exp.logits.shape[0]}, C, H, W], got {shape}")
    sample = _check_sample(sample, x.shape[0])
    names = _names(exp.num_classes, class_names)
    tgt = _target(exp, sample, target)
    rank = x.dim() - 2
    sites = [s for s, m in exp.code_maps.items() if m.dim() - 2 == rank]
    if not sites:
        raise ValueError(f"exp: no site has {rank}-D code maps like the input {tuple(x.shape)}")
    eligible = torch.zeros(len(exp.units), dtype=torch.bool)
    for s in sites:
        eligible[exp.site_slices[s]] = True
    v = exp.contributions[sample, tgt].detach().cpu()
    k = min(k, int(eligible.sum()))
    top = torch.where(eligible, v, torch.tensor(-torch.inf)).topk(k).indices.tolist()
    cache: dict[str, Tensor] = {}
    maps = []
    xs_numel = x[sample, 0].numel()
    for u in top:
        site, ch = exp.units[u]
        if site not in cache:
            cache[site] = exp.spatial_map(site, tgt)[sample].detach().cpu()
        # spatial_map spreads the contribution over the site's positions; spread it over the
        # input's instead, the area each panel is drawn on
        m = cache[site][ch]
        maps.append(m * (m.numel() / xs_numel))
    norm = _sym_norm(*maps)
    pred = int(exp.predicted[sample])
    head = f"input (predicted {names[pred]}" + (f", true {_label_text(label, names)})" if label is not None else ")")
    xs = x[sample].detach().cpu().float()
    if rank == 2:
        fig = _figure(2.6 * min(5, k + 1) + 1.0, 2.9 * math.ceil((k + 1) / 5) + 0.5)
        axes = _grid(fig, k + 1, 5)
        h, w = xs.shape[1:]
        img, gray = _background(xs)
        axes[0].imshow(img, cmap=gray, extent=(0, w, h, 0))
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
    else:
        fig = _figure(8.0, 1.6 * (k + 1) + 0.6)
        axes = list(fig.subplots(k + 1, 1, sharex=True, squeeze=False)[:, 0])
        t = xs.shape[1]
        lo, hi = float(xs.min()), float(xs.max())
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        lo, hi = lo - pad, hi + pad
        for ax in axes:
            ax.plot(torch.arange(t).numpy() + 0.5, xs.T.numpy(), color="k", lw=1)
            ax.set_xlim(0, t)
            ax.set_ylim(lo, hi)
        axes[-1].set_xlabel("time step")
    axes[0].set_title(head, fontsize=8)
    for ax, u, m in zip(axes[1:], top, maps):
        site, ch = exp.units[u]
        if rank == 2 and gray is None:  # colour image: the map half-transparent over it
            ax.imshow(img, extent=(0, w, h, 0))
            ax.imshow(m.numpy(), cmap=CMAP, norm=norm, alpha=0.6, extent=(0, w, h, 0), interpolation="bilinear")
        elif rank == 2:  # grey image: the map itself, the input as contour lines on top (blending muddies both)
            ax.imshow(m.numpy(), cmap=CMAP, norm=norm, extent=(0, w, h, 0), interpolation="bilinear")
            lo, hi = float(img.min()), float(img.max())
            if hi > lo:
                ax.contour(torch.arange(w).numpy() + 0.5, torch.arange(h).numpy() + 0.5, img,
                           levels=[lo + f * (hi - lo) for f in (0.3, 0.6)], colors="k", linewidths=0.6,
                           linestyles="solid")
        else:
            ax.imshow(m[None].numpy(), cmap=CMAP, norm=norm, alpha=0.6, extent=(0, t, lo, hi), aspect="auto",
                      interpolation="nearest")
        ax.set_title(f"{site} #{ch}: {float(v[u]):+.3g}", fontsize=8)
    matplotlib = _mpl()[0]
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=CMAP), ax=axes, label="contribution per input position", shrink=0.8)
    fig.suptitle(f"Sample {sample if sample_id is None else sample_id}: where its top {k} units add to the logit of {names[tgt]}", fontsize=10)
    return fig


# --------------------------------------------------------------------------- RNN
def _series(series, num_classes: int, t: int):
    """``series`` as a function class -> ``[T', F]`` array (or None): one shared series
    (``[T]`` or ``[T, F]``) or one per class (``[C, T, F]``)."""
    if series is None:
        return lambda c: None
    s = torch.as_tensor(series).detach().cpu().float()
    if s.dim() == 1:
        s = s[:, None]
    if s.dim() == 2:
        return lambda c: s.numpy()
    if s.dim() == 3 and s.shape[0] == num_classes:
        return lambda c: s[c].numpy()
    raise ValueError(f"series: expected [T], [T, F] (shared) or [{num_classes}, T, F] (one per class), got shape {tuple(s.shape)}")


def _under(ax, s, color: str = "0.55"):
    """Draw a series on a twin axis behind ``ax``'s bars."""
    tw = ax.twinx()
    tw.plot(torch.arange(len(s)).numpy(), s, color=color, lw=1)
    tw.set_yticks([])
    ax.set_zorder(tw.get_zorder() + 1)
    ax.patch.set_visible(False)
    return tw


def _what(source, sample, y, reduce: str) -> str:
    if isinstance(source, RNNExplanation):
        if sample is not None:
            return f"contributions of sample {sample}"
        return "mean contributions over the samples of each class" if y is not None else "mean contributions over the batch"
    if isinstance(source, Tensor):
        return "importance"
    return f"global weights ({reduce} over hidden features)"


def time_importance(source, *, series=None, y: Tensor | None = None, sample: int | None = None,
                    classes: Sequence[int] | None = None, class_names: Sequence | None = None, reduce: str = "norm"):
    """Per-step importance of each class (one row per class), the input series drawn underneath.

    ``source``: a NeuroViewRNN (global weights, aggregated by ``reduce``), an RNNExplanation
    (signed contributions: one ``sample``, the mean over each class's samples given labels
    ``y``, or the batch mean), or a ``[C, T]`` tensor. ``series``: ``[T]``/``[T, F]`` drawn under
    every row, or ``[C, T, F]`` one per class (e.g. :func:`neuroview.attribution.importance.class_means`).

    >>> import torch
    >>> fig = time_importance(torch.randn(2, 12), series=torch.randn(12), class_names=["no", "yes"])
    >>> [ax.get_ylabel() for ax in fig.axes[:2]]
    ['no', 'yes']
    """
    w = time_weights(source, y=y, sample=sample, reduce=reduce)
    c, t = w.shape
    names = _names(c, class_names)
    sel = _classes(classes, c)
    under = _series(series, c, t)
    norm, cmap_name = _scale(w[sel])
    matplotlib = _mpl()[0]
    cmap = matplotlib.colormaps[cmap_name]
    fig = _figure(9.0, 0.9 + 1.3 * len(sel))
    axes = fig.subplots(len(sel), 1, sharex=True, squeeze=False)[:, 0]
    steps = torch.arange(t).numpy()
    for ax, cls in zip(axes, sel):
        s = under(cls)
        if s is not None:
            _under(ax, s)
        ax.bar(steps, w[cls].numpy(), width=0.9, color=cmap(norm(w[cls].numpy())))
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel(names[cls])
        ax.set_xlim(-0.5, t - 0.5)
    axes[-1].set_xlabel("time step")
    shown = "" if series is None else " (grey: the input series)"
    fig.suptitle(f"Per-step importance of each class: {_what(source, sample, y, reduce)}{shown}", fontsize=10)
    return fig


def layer_time(source, *, y: Tensor | None = None, sample: int | None = None, classes: Sequence[int] | None = None,
               class_names: Sequence | None = None, reduce: str = "norm"):
    """Layer x time heatmap of each class's importance (sources as in :func:`time_importance`).

    >>> import torch
    >>> len(layer_time(torch.randn(3, 2, 10)).axes)   # 3 classes, and the colour bar
    4
    """
    w = layer_time_weights(source, y=y, sample=sample, reduce=reduce)
    c, n_layers, t = w.shape
    names = _names(c, class_names)
    sel = _classes(classes, c)
    norm, cmap = _scale(w[sel])
    fig = _figure(9.0, 0.9 + len(sel) * (0.45 + 0.3 * n_layers))
    axes = fig.subplots(len(sel), 1, sharex=True, squeeze=False)[:, 0]
    im = None
    for ax, cls in zip(axes, sel):
        im = ax.imshow(w[cls].numpy(), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(n_layers), [f"layer {i}" for i in range(n_layers)], fontsize=7)
        ax.set_title(names[cls], fontsize=8)
    axes[-1].set_xlabel("time step")
    fig.colorbar(im, ax=list(axes), label="importance", shrink=0.8)
    fig.suptitle(f"Layer x time importance of each class: {_what(source, sample, y, reduce)}", fontsize=10)
    return fig


def sample_time(exp: RNNExplanation, sample: int = 0, *, label: int | None = None, series=None,
                class_names: Sequence | None = None):
    """One sample's per-step contributions to its predicted class and its true class (``label``),
    the running logit (bias plus contributions so far, ending at the logit), and the series.

    ``series`` is the sample's input, ``[T]`` or ``[T, F]``.
    """
    if not isinstance(exp, RNNExplanation):
        raise TypeError(f"exp: expected an RNNExplanation, got {type(exp).__name__}")
    sample = _check_sample(sample, exp.logits.shape[0])
    names = _names(exp.num_classes, class_names)
    ti = (exp.time_importance if exp.time_importance is not None else exp.contributions.sum(dim=(2, 3, 5)))[sample]
    ti = ti.detach().cpu()
    t = int(exp.lengths[sample]) if exp.lengths is not None else ti.shape[1]
    pred = int(exp.predicted[sample])
    shown = [(pred, "predicted", "C0")]
    if label is not None:
        label = int(label)
        if not 0 <= label < exp.num_classes:
            raise ValueError(f"label: expected a class index in [0, {exp.num_classes}), got {label}")
        if label != pred:
            shown.append((label, "true", "C1"))
    rows = 3 if series is not None else 2
    fig = _figure(9.0, 1.0 + 1.8 * rows)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    steps = torch.arange(t).numpy()
    for cls, role, color in shown:
        tag = f"{role}{' = true' if role == 'predicted' and label == pred else ''}: {names[cls]} (logit {float(exp.logits[sample, cls]):.3g})"
        axes[0].plot(steps, ti[cls, :t].numpy(), marker="o", ms=2.5, lw=1, color=color, label=tag)
        running = float(exp.bias[cls]) + torch.cumsum(ti[cls, :t].double(), 0)
        axes[1].plot(steps, running.numpy(), lw=1.2, color=color)
        axes[1].axhline(float(exp.logits[sample, cls]), color=color, lw=0.6, ls="--")
    axes[0].axhline(0, color="k", lw=0.5)
    axes[0].set_ylabel("contribution")
    axes[0].legend(fontsize=7, loc="best")
    axes[1].set_ylabel("running logit")
    if series is not None:
        s = torch.as_tensor(series).detach().cpu().float()
        s = s[:, None] if s.dim() == 1 else s
        if s.dim() != 2:
            raise ValueError(f"series: expected the sample's input, [T] or [T, F], got shape {tuple(s.shape)}")
        axes[2].plot(torch.arange(min(t, s.shape[0])).numpy(), s[:t].numpy(), color="0.3", lw=1)
        axes[2].set_ylabel("input")
    axes[-1].set_xlabel("time step")
    truth = f", true {names[label]}" if label is not None else ""
    fig.suptitle(f"Sample {sample}: how the decision builds up over time (predicted {names[pred]}{truth})", fontsize=10)
    return fig


# ------------------------------------------------------------------------- both
def class_layer_summary(source, *, y: Tensor | None = None, class_names: Sequence | None = None):
    """How much of each class's decision each layer carries: a classes x layers table of shares
    (each row sums to 100%); see :func:`neuroview.attribution.importance.layer_shares`.

    >>> import torch
    >>> fig = class_layer_summary(torch.tensor([[1.0, 3.0], [2.0, 2.0]]))
    >>> fig.axes[0].get_xlabel()
    'layer'
    """
    shares, layers = layer_shares(source, y=y)
    c, n = shares.shape
    names = _names(c, class_names)
    fig = _figure(4.5 + 0.5 * n, 1.6 + 0.3 * c)
    ax = fig.subplots()
    vmax = float(shares.max()) if shares.numel() and shares.max() > 0 else 1.0
    im = ax.imshow(shares.numpy(), cmap="Blues", vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
    if c * n <= 400:
        for i in range(c):
            for j in range(n):
                val = float(shares[i, j])
                ax.text(j, i, f"{100 * val:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if val > 0.6 * vmax else "black")
    ax.set_xticks(range(n), layers, rotation=60 if n > 4 else 0, ha="right" if n > 4 else "center", fontsize=7)
    ax.set_yticks(range(c), names, fontsize=7)
    ax.set_xlabel("site (layer)" if is_cnn(source) else "layer")
    ax.set_ylabel("class")
    fig.colorbar(im, ax=ax, label="share of the class's |importance|", format=_percent())
    basis = "|contributions| on the data" if isinstance(source, Explanation) else "|weights|"
    fig.suptitle(f"Share of each class's decision carried by each layer\n(% of {basis})", fontsize=10)
    return fig


def _percent():
    from matplotlib.ticker import PercentFormatter  # noqa: PLC0415

    return PercentFormatter(1.0)
