"""Pictures of a NeuroView-CNN's units: their weights per class (:func:`unit_heatmap`, :func:`top_units`)
and where one sample's strongest units add to a logit over its input (:func:`spatial_maps`).

Imports: torch, :mod:`neuroview.core`, :mod:`neuroview.attribution`, :mod:`._style`, :mod:`.class_names` and
:mod:`.map_sites` (which sites' maps are drawn, in which order); matplotlib only through :mod:`._style`, when drawing.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from ..attribution.importance import _check_sample, unit_weights, weight_label
from ..core._utils import positive_int
from ..core.explanation import CNNExplanation
from ..core.map_order import in_input_order
from ..core.sites import input_span
from ._style import (CMAP, _classes, _constant_note, _figure, _finite_decision, _finite_weights, _grid, _label_text, _mpl,
                     _picture, _plain, _sym_norm, _target, _text_inches, _unit_label, _wrap)
from .class_names import drawn_names
from .gallery import check_gallery, thumbnails
from .map_sites import left_out, site_orders, token_sites  # token_sites: the report's too

__all__ = ["unit_heatmap", "top_units", "spatial_maps"]


def _sorted_units(w: Tensor, max_units: int | None) -> Tensor:
    """Column order for a ``[C, U]`` block: the ``max_units`` strongest units, grouped by the
    class they vote for most, strongest first, so the heatmap reads as a staircase. Cut to the
    strongest, a block keeps no unit that no class reads (a sparse head's zeros, ties picked at
    random), but at least one column."""
    idx = torch.arange(w.shape[1])
    if max_units is not None and w.shape[1] > max_units:
        strength = w.abs().amax(0)
        idx = strength.topk(min(max_units, max(1, int((strength > 0).sum())))).indices
    sub = w[:, idx]
    best, top = sub.max(0)
    order = sorted(range(len(idx)), key=lambda j: (int(top[j]), -float(best[j])))
    return idx[order]


def unit_heatmap(source, *, class_names: Sequence | None = None, sites: Sequence[str] | None = None,
                 max_units: int | None = 64, standardized: bool | None = None, classes: Sequence[int] | None = None):
    """Unit-class weights as one heatmap per site: classes x units, units sorted by the class
    they vote for.

    ``source`` is a NeuroViewCNN (standardized weights, comparable across sites; ``standardized=False``: raw) or a
    CNNExplanation (its effective weights; ``standardized=True`` is refused there, as by
    :func:`~neuroview.attribution.importance.unit_weights`). Sites with more than ``max_units`` units show their
    strongest ones. One shared, zero-centred colour scale. ``classes``: the rows drawn (class indices, in that
    order; default all), the units sorted and picked among them. Where the rows are too many for one label each
    (under 8 pt apart), every n-th is labelled, and the axis label says so.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 16)).eval()
    >>> [ax.get_title() for ax in unit_heatmap(net).axes[:1]]
    ['site 1: 4 units']
    """
    max_units = positive_int(max_units, "max_units", none=True)  # -1 gave torch's bare error, 0 empty panels
    if isinstance(sites, str):  # one site's name, not its characters ("11" drew site "1" twice)
        sites = [sites]
    w, units, slices = unit_weights(source, standardized=standardized)
    _finite_weights(w, units)  # a NaN weight was drawn white, which this scale says is 0
    sel = list(slices) if sites is None else list(sites)
    unknown = [s for s in sel if s not in slices]
    if unknown or not sel:
        raise ValueError(f"sites: expected names among {list(slices)}, got {list(sites) if sites is not None else sel}")
    rows = _classes(classes, w.shape[0])
    every_name = drawn_names(w.shape[0], class_names)
    names = [every_name[r] for r in rows]
    # what any class reads, counted before the rows are cut: a site only other classes read was "none read by any class"
    full = {s: int((w[:, slices[s]] != 0).any(0).sum()) for s in sel}
    drawn = ("" if set(rows) == set(range(w.shape[0])) else " the class drawn" if len(set(rows)) == 1 else
             " the classes drawn")
    w, c = w[rows], len(rows)
    orders = [_sorted_units(w[:, slices[s]], max_units) for s in sel]
    widest = max(len(o) for o in orders)
    # panels too many for one column of the figure's 60 in (150 sites: titles over one another, the layout collapsed)
    # go side by side, as many columns as 30 in hold
    # the class labels' width beyond the 0.5 in that "class 100" takes: long names ran off a plainly saved figure and
    # collapsed the layout (only their ends drawn, two rows alike)
    width, tall = 3.0 + 0.16 * widest + max(0.0, _text_inches(names, 7) - 0.5), 0.9 + 0.2 * c
    ncols = max(1, min(math.ceil(len(sel) * tall / 59.0), int(30.0 // width), len(sel)))
    nrows = math.ceil(len(sel) / ncols)
    fig = _figure(width * ncols, 0.8 + nrows * tall)
    # 7 pt labels 8 pt apart at least: at 1,000 classes each row was 1.5 px and the labels one black bar
    row_pt = (fig.get_figheight() - 0.8) / nrows * 72 * 0.8 / c
    every = max(1, math.ceil(8 / row_pt))
    axes = _grid(fig, len(sel), ncols)
    norm = _sym_norm(*(w[:, slices[s]] for s in sel))
    channels = {s: torch.arange(slices[s].stop - slices[s].start) for s in sel}
    im = None
    for ax, site, order in zip(axes, sel, orders):
        block = w[:, slices[site]][:, order]
        im = ax.imshow(block.numpy(), cmap=CMAP, norm=norm, aspect="auto", interpolation="nearest")
        n = slices[site].stop - slices[site].start
        read = int((w[:, slices[site]] != 0).any(0).sum())  # by the classes drawn
        shown = "" if len(order) == n else ", none read by any class" if not full[site] else (
            f", none read by{drawn} ({full[site]} by other classes)" if not read else
            f", the {len(order)} strongest{' for' + drawn if drawn else ''}" if read > len(order) else
            f", the {read} read by{drawn or ' a class'}")
        ax.set_title(f"site {_plain(site)}: {n} units{shown}", fontsize=9)
        ax.set_yticks(range(0, c, every), names[::every], fontsize=7)
        ax.set_ylabel("class" if every == 1 else f"class (1 in {every} named)")
        if len(order) <= 64:
            ax.set_xticks(range(len(order)), [str(int(ch)) for ch in channels[site][order]], fontsize=6, rotation=90)
        else:
            ax.set_xticks([])
    # in lines of its axes' width (a small network's 3.6 in figure cut both ends off): a panel leaves about 1.6 in to
    # its class labels and the colour bar
    what = "unit (channel), grouped by the class it weighs most"
    if ncols == 1:
        axes[-1].set_xlabel(_wrap(what, max(1.0, width - 1.6 - max(0.0, _text_inches(names, 7) - 0.5)), 10))
    else:
        fig.supxlabel(what, fontsize=10)
    fig.colorbar(im, ax=list(axes), label=weight_label(source, standardized), shrink=min(1.0, 4.0 / nrows + 0.2))
    # in lines of the figure's width: one line was wider than a small network's figure, cut off where saved plainly
    fig.suptitle(_wrap("Unit-class weights of the global classifier, per site", fig.get_figwidth() - 0.3, 12), fontsize=12)
    return fig


def _site_colors(sites: list[str], used: set[str]) -> dict[str, tuple]:
    """``{site: colour}`` for the sites a figure draws (``used``), in layer order, each coloured by its place among all
    the network's ``sites``, so that a site has one colour in every figure of the network (its place among the drawn
    ones made two sites blue in two figures): tab10 / tab20 up to 20 sites. Past 20 (a ResNet-50 has 49) a hue that
    turns by the golden ratio from place to place, light and dark in turn: adjacent sites (a figure's top units mostly
    come from the last few) are far apart on the hue circle (viridis by depth gave the last three sites three
    yellows), and no two sites share a colour (those a Fibonacci number apart, 21 or 34, only a similar one)."""
    place = {s: i for i, s in enumerate(sites)}
    drawn = [s for s in sites if s in used]
    matplotlib, colors, _ = _mpl()
    if len(sites) > 20:
        golden = (math.sqrt(5) - 1) / 2
        return {s: tuple(colors.hsv_to_rgb(((place[s] * golden) % 1.0, 0.7, (0.9, 0.6)[place[s] % 2]))) + (1.0,)
                for s in drawn}
    cmap = matplotlib.colormaps["tab10" if len(sites) <= 10 else "tab20"]
    return {s: cmap(place[s]) for s in drawn}


def top_units(source, *, k: int = 5, class_names: Sequence | None = None, classes: Sequence[int] | None = None,
              standardized: bool | None = None, gallery=None, thumbs: int = 3):
    """Per class, the ``k`` units with the largest weight, labelled and coloured by their site.
    Weights as :func:`~neuroview.attribution.importance.unit_weights` gives them: a network's standardized by
    default, an explanation's effective weight (``standardized=True`` refused there).

    Only the units the class reads are ranked: a sparse head's zero weights are none of its top units,
    and a class that reads ``n <= k`` units shows all ``n``, its negative weights too.
    ``gallery`` (:func:`neuroview.unit_gallery` of the same network) puts up to ``thumbs`` (a positive
    int; for none, leave ``gallery`` out) of each unit's top training samples beside its bar; units it
    lacks get none; a row named otherwise than its bar (another network's gallery) is an error. A class that reads no
    unit says so in its panel.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 16)).eval()
    >>> len(top_units(net, k=2).axes)
    3
    """
    k = positive_int(k, "k")  # k=True was read as 1
    thumbs = positive_int(thumbs, "thumbs")  # 0, -2 and True drew one thumbnail each
    w, units, slices = unit_weights(source, standardized=standardized)
    _finite_weights(w, units)  # topk ranked a NaN weight first, drawn as a blank bar
    c = w.shape[0]
    names = drawn_names(c, class_names)
    sel = _classes(classes, c)
    k = min(k, w.shape[1])
    # ranked among the units the class reads: topk over all of them put zero weights above negative ones
    tops = [torch.where(w[cls] != 0, w[cls], -torch.inf).topk(min(k, int((w[cls] != 0).sum()))).indices for cls in sel]
    colors = _site_colors(list(slices), {units[i][0] for idx in tops for i in idx.tolist()})
    bars = max(3.3, _text_inches([names[c] for c in sel], 9) + 1.0)  # a panel holds its title (the class name)
    if gallery is None:
        ncols = min(5, len(sel))
        fig = _figure(bars * ncols, 0.9 + math.ceil(len(sel) / ncols) * (0.5 + 0.3 * k))
        panels = [(ax, None) for ax in _grid(fig, len(sel), 5)]
    else:
        m = min(thumbs, check_gallery(gallery, "units").k)
        ncols = min(2, len(sel))
        fig = _figure((bars + 0.8 * m) * ncols, 0.9 + math.ceil(len(sel) / ncols) * (0.6 + 0.7 * k))
        panels = _paired(fig, len(sel), ncols, m, bars)
    for (ax, tax), cls, idx in zip(panels, sel, tops):
        vals = w[cls][idx]
        if tax is not None:  # a gallery's rows are named by the raw site name
            raw = {j: f"{units[i][0]} #{units[i][1]}" for j, i in enumerate(idx.tolist())}
            thumbnails(tax, gallery, dict(enumerate(idx.tolist())), m, raw)
        ax.barh(range(len(idx)), vals.numpy(), color=[colors[units[i][0]] for i in idx.tolist()])
        ax.set_yticks(range(len(idx)), [_unit_label(*units[i]) for i in idx.tolist()], fontsize=7)
        ax.invert_yaxis()  # strongest on top
        if len(idx) < k:  # fewer bars than k: the same rows as the other panels, the gap says so
            ax.set_ylim(k - 0.5, -0.5)
        ax.axvline(0, color="k", lw=0.5)
        if not len(idx):  # a sparse head's class of all-zero weights: a blank panel read as a drawing fault
            ax.text(0.5, 0.5, "reads no unit (every weight 0)", transform=ax.transAxes, ha="center", va="center",
                    fontsize=8, color="0.3")
        ax.set_title(names[cls], fontsize=9)
        ax.set_xlabel(weight_label(source, standardized), fontsize=8)
    matplotlib = _mpl()[0]
    handles = [matplotlib.patches.Patch(color=col, label=_plain(s)) for s, col in colors.items()]
    fig.legend(handles=handles, title="site (layer)", loc="outside lower center", ncols=min(6, max(1, len(handles))), fontsize=7)
    fig.suptitle(f"Top {k} units of each class")
    return fig


def _paired(fig, n: int, ncols: int, m: int, bars: float = 3.3) -> list[tuple]:
    """``n`` panels of (bars, ``bars`` in wide, thumbnails beside them sharing their y axis), ``ncols`` to a row."""
    subs = fig.subfigures(math.ceil(n / ncols), ncols, squeeze=False).ravel()
    return [tuple(sf.subplots(1, 2, sharey=True, width_ratios=[bars, 0.8 * m])) for sf in subs[:n]]


def _top_maps(exp: CNNExplanation, x: Tensor, sample: int, tgt: int, k: int,
              net=None) -> tuple[list[int], list[Tensor], list[tuple[int, int] | None]]:
    """The ``k`` units adding most to logit ``tgt`` of one sample, among sites whose maps have the
    input's dimensions, each one's contribution per input position (none where no unit adds; moved back into the
    input's order where ``net`` says how), and the input steps each map lies on (None: the whole input; see
    :func:`~neuroview.core.sites.input_span`)."""
    rank = x.dim() - 2
    orders = site_orders(net, x)
    tokens = token_sites(net, exp, x, orders)
    unsure = [] if net is not None else [s for s, m in exp.code_maps.items() if m.dim() - 2 == rank and _units_inner(m)]
    sites = [s for s, m in exp.code_maps.items() if m.dim() - 2 == rank and s not in tokens and s not in unsure]
    if not sites:
        left = [s for s, m in exp.code_maps.items() if m.dim() - 2 == rank]
        why = (f": the maps of {unsure} hold their units innermost (a units-last site's grid, ``[B, H, W, C]``, or a "
               "channels-last layout), in an order over the input that only the network tells; pass net=, the network "
               "explained") if unsure else left_out(net, left)
        raise ValueError(f"exp: no site has {rank}-D code maps like the input {tuple(x.shape)}{why}")
    eligible = torch.zeros(len(exp.units), dtype=torch.bool)
    for s in sites:
        eligible[exp.site_slices[s]] = True
    v = exp.for_class(tgt)[sample].detach().cpu()  # one row, never the dense [B, C, U]
    eligible &= v != 0  # a unit that adds nothing (a sparse head's zero weight) is none of the top units
    k = min(k, int(eligible.sum()))
    top = torch.where(eligible, v, torch.tensor(-torch.inf)).topk(k).indices.tolist()
    cache: dict[str, Tensor] = {}
    maps, spans = [], []
    xs_numel = x[sample, 0].numel()
    for u in top:
        site, ch = exp.units[u]
        if site not in cache:  # [C, *positions], the channels as in_input_order's batch: a flip, roll or .mT moved back
            cache[site] = in_input_order(exp.spatial_map(site, tgt)[sample].detach().cpu(), orders.get(site, ()))
        # a map of part of a series (MiniRocket's centre sites) is drawn on that part, not stretched over all of it
        span = input_span(net, site, x.shape[-1]) if net is not None and rank == 1 else None
        # spatial_map spreads the contribution over the site's positions; spread it over the
        # input's instead, the area each panel is drawn on
        m = cache[site][ch]
        maps.append(m * (m.numel() / (span[1] if span else xs_numel)))
        spans.append(span)
    return top, maps, spans


def _units_inner(m: Tensor) -> bool:
    """Whether the grid map ``m [B, C, *grid]`` holds its units innermost in memory, as a units-last site's map does
    (:func:`~neuroview.core.quantize.units_first`): a Swin-like grid of reshaped tokens among them, whose order over
    the input only ``net`` can follow (stretched unmoved, it sat scrambled over the image)."""
    return m.dim() > 3 and m.shape[1] > 1 and m.stride(1) == 1 and any(n > 1 for n in m.shape[2:]) and not m.is_contiguous()


def _image_panels(xs: Tensor, maps: list[Tensor], norm):
    """The image ``xs [C, H, W]`` in the first panel, each map over it in one more panel each."""
    k = len(maps)
    fig = _figure(2.6 * min(5, k + 1) + 1.0, 2.9 * math.ceil((k + 1) / 5) + 0.5)
    axes = _grid(fig, k + 1, 5)
    h, w = xs.shape[1:]
    img, gray, vmin, vmax, _ = _picture(xs)  # a constant image as it is (white, grey), no longer black
    axes[0].imshow(img, cmap=gray, vmin=vmin, vmax=vmax, extent=(0, w, h, 0))
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, m in zip(axes[1:], maps):
        if gray is None:  # colour image: the map half-transparent over it
            ax.imshow(img, extent=(0, w, h, 0))
            ax.imshow(m.numpy(), cmap=CMAP, norm=norm, alpha=0.6, extent=(0, w, h, 0), interpolation="bilinear")
        else:  # grey image: the map itself, the input as contour lines on top (blending muddies both)
            ax.imshow(m.numpy(), cmap=CMAP, norm=norm, extent=(0, w, h, 0), interpolation="bilinear")
            lo, hi = float(img.min()), float(img.max())
            if hi > lo and min(h, w) >= 2:  # contour lines need 2 rows and 2 columns: a 1 x W image is drawn without
                ax.contour(torch.arange(w).numpy() + 0.5, torch.arange(h).numpy() + 0.5, img,
                           levels=[lo + f * (hi - lo) for f in (0.3, 0.6)], colors="k", linewidths=0.6,
                           linestyles="solid")
    return fig, axes


def _signal_panels(xs: Tensor, maps: list[Tensor], norm, spans=None):
    """The signal ``xs [C, T]`` drawn in every panel, each map behind it in one more panel each, over the
    steps ``spans`` gives it (``(first, steps)``; None: the whole series)."""
    k = len(maps)
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
    for ax, m, span in zip(axes[1:], maps, spans or [None] * k):
        a, b = (span[0], span[0] + span[1]) if span else (0, t)
        ax.imshow(m[None].numpy(), cmap=CMAP, norm=norm, alpha=0.6, extent=(a, b, lo, hi), aspect="auto",
                  interpolation="nearest")
        ax.set_xlim(0, t)  # an image sets its axes' limits to its extent: the panels share the series' steps
    return fig, axes


def spatial_maps(exp: CNNExplanation, x: Tensor, sample: int = 0, *, target: int | None = None, k: int = 4,
                 class_names: Sequence | None = None, label: int | None = None, sample_id: int | str | None = None,
                 net=None):
    """Where the top ``k`` units of one sample add to a logit, over the input (images or 1-D signals).

    Each panel is a unit's contribution per *input* position: its code map times its weight
    divided by the number of input positions, stretched to the input's extent, so it sums over
    the input to the unit's contribution and maps of sites of different resolution share one
    scale. Needs ``net.explain(x, maps=True)``; ``x`` is the batch that was explained.
    ``target`` defaults to the class the explanation was asked for (``explain(x, target=...)``, by
    default the predicted one). Where no unit adds to that logit (a sparse head's zero weights), the
    input alone is drawn and the title says so.
    ``sample_id`` names the sample in the title when ``x`` is a sub-batch (default ``sample``).
    ``net``: the network explained, where its sites' maps may cover part of a series: a NeuroView-MiniRocket's
    centre sites read steps ``4d`` to ``T - 4d`` only, and their maps are drawn there (without ``net``, stretched
    over the whole series, the codes sat at the wrong steps). With ``net``, the order of each site's positions is
    followed from the input (:mod:`neuroview.core.map_order`, one pass of one sample): a map moved by ``flip``,
    ``roll``, ``rot90`` or ``.mT`` is moved back before it is drawn, and a site whose positions lie in no order of the
    input's is left out, as maps of another rank always are: a map summed with its flip, a transformer's tokens
    ``[B, N, C]`` over a series with a class token among them (at any count), units on the last dim whose order is not
    followed; a channels-last convolution over a series or an image (ConvNeXt's ``[B, H, W, C]``) is drawn. Without
    ``net`` each map is drawn as the site holds it: a flipped, rolled or transposed map mirrored, shifted or transposed
    over the input, and a series' token maps stretched over it like a convolution's; but a grid map that holds its units
    innermost (a units-last site's, a Swin-like reshape of tokens among them, or a channels-last layout) is left out,
    its order known only from ``net``: where no other site is left, the error says to pass it. Other networks' maps
    are drawn as without it.
    """
    k = positive_int(k, "k")  # 0 gave "max() arg is an empty sequence", -1 torch's bare error
    if not isinstance(exp, CNNExplanation):
        raise TypeError(f"exp: expected a CNNExplanation, got {type(exp).__name__}")
    if exp.code_maps is None:
        raise ValueError("exp: has no code maps; call net.explain(x, maps=True)")
    if not isinstance(x, Tensor) or x.dim() not in (3, 4) or x.shape[0] != exp.logits.shape[0]:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x: expected the explained batch, [{exp.logits.shape[0]}, C, T] or [{exp.logits.shape[0]}, C, H, W], got {shape}")
    sample = _check_sample(sample, x.shape[0])
    names = drawn_names(exp.num_classes, class_names)
    tgt = _target(exp, sample, target)
    _finite_decision(exp, sample, tgt, exp.for_class(tgt)[sample])  # topk ranked NaN first
    top, maps, spans = _top_maps(exp, x, sample, tgt, k, net)
    norm = _sym_norm(*maps)
    pred = int(exp.logits[sample].argmax())  # this sample's (checked finite): exp.predicted refuses a batch with a NaN
    flat = _constant_note(_picture(x[sample])[4]) if x.dim() == 4 else ""
    head = (f"input (predicted {names[pred]}" + (f", true {_label_text(label, names)}" if label is not None else "")
            + (f"; {flat})" if flat else ")"))
    xs = x[sample].detach().cpu().float()
    fig, axes = _image_panels(xs, maps, norm) if x.dim() == 4 else _signal_panels(xs, maps, norm, spans)
    axes[0].set_title(_wrap(head, 2.5 if x.dim() == 4 else 7.5, 8), fontsize=8)  # long class names: in lines
    v = exp.for_class(tgt)[sample].detach().cpu()  # one row, never the dense [B, C, U]
    for ax, u in zip(axes[1:], top):
        site, ch = exp.units[u]
        ax.set_title(f"{_unit_label(site, ch)}: {float(v[u]):+.3g}", fontsize=8)
    who = sample if sample_id is None else _plain(sample_id)  # the user's text, drawn as it is
    if not top:  # no scale to show: an empty colour bar would read as maps of zeros
        fig.suptitle(f"Sample {who}: no unit with a map over the input adds to the logit of {names[tgt]} "
                     "(each one's contribution is 0)", fontsize=10)
        return fig
    matplotlib = _mpl()[0]
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=CMAP), ax=axes, label="contribution per input position", shrink=0.8)
    fig.suptitle(f"Sample {who}: where its top {len(top)} units add to the logit of {names[tgt]}", fontsize=10)
    return fig
