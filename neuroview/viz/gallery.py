"""Pictures of units with a face: each unit's top training samples, and where in them it responds
(:func:`unit_gallery_plot`), and the same thumbnails beside a bar (:func:`thumbnails`, which
:func:`~neuroview.viz.decision.waterfall` and :func:`~neuroview.viz.units.top_units` draw with).

A thumbnail is one sample of a :class:`~neuroview.attribution.gallery.UnitGallery`: an image with
the unit's code map over it and its window outlined; a series with the window shaded (the code
map as a band below it); for an RNN step, the series with the step's window shaded, and the
class means with the same window in the first column.

Imports: torch, :mod:`neuroview.attribution` and :mod:`._style`; matplotlib only through
:mod:`._style`, when drawing.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..attribution.gallery import UnitGallery
from ..core._utils import name_sequence, positive_int
from ._style import _distinct, _figure, _mpl, _picture, _plain, _shorten, _text_inches, _wrap

__all__ = ["unit_gallery_plot", "thumbnails", "check_gallery", "sample_shape"]

WINDOW = "#ff7f00"  # the window a unit reads: orange, apart from the red/blue of contributions


def check_gallery(gallery, kind: str | None = None) -> UnitGallery:
    """``gallery`` when it is a UnitGallery (of ``kind``: ``"units"`` or ``"steps"``); else a clear error."""
    if not isinstance(gallery, UnitGallery):
        raise TypeError(f"gallery: expected a UnitGallery (nv.unit_gallery), got {type(gallery).__name__}")
    if kind is not None and gallery.kind != kind:
        raise ValueError(f"gallery: holds {gallery.kind}, the figure draws {kind}; make it from the same network")
    return gallery


def sample_shape(g: UnitGallery) -> tuple[int, ...]:
    """The shape of one of ``g``'s samples, ``[C, *spatial]``, read from one place: ``g.x`` of an RNN gallery is formed
    when read, ``[steps, k, C, T]`` (a gallery of every step: in the square of T)."""
    return tuple(g.sample(0, 0).shape) if len(g) and g.k else tuple(g.x.shape[2:])


def _drawable(g: UnitGallery) -> None:
    """A clear error for samples of a rank no thumbnail draws: only series and images are drawn."""
    shape = sample_shape(g)
    if len(shape) not in (2, 3):
        raise ValueError(f"gallery: expected samples with 1 (series [C, T]) or 2 (images [C, H, W]) spatial dims to draw, "
                         f"got {len(shape) - 1} (samples of shape {shape})")


def _empty(g: UnitGallery, row: int, j: int) -> bool:
    """Whether place ``j`` of ``row`` holds no sample (an RNN step that fewer than ``k`` series reach)."""
    return int(g.index[row, j]) < 0


def _box(ax, box, frame: bool = True):
    """``(x0, x1, top, bottom)`` of a thumbnail in ``ax``'s data (y runs down), a map from the unit
    square into it, and its frame (tagged, so tests and readers can count thumbnails)."""
    x0, x1, top, bot = box
    if frame:
        ax.add_patch(_mpl()[0].patches.Rectangle((x0, top), x1 - x0, bot - top, fill=False, lw=0.5,
                                                 edgecolor="0.4", gid="thumbnail"))
    return lambda u, v: (x0 + u * (x1 - x0), top + v * (bot - top))


def _span(ax, at, start: float, stop: float) -> None:
    """The window ``start:stop`` shaded, with an opaque edge: 3 samples of 150 stay visible."""
    (a, top), (b, bot) = at(start, 0.0), at(stop, 1.0)
    face = _mpl()[1].to_rgba(WINDOW, 0.3)
    ax.add_patch(_mpl()[0].patches.Rectangle((a, top), b - a, bot - top, facecolor=face, edgecolor=WINDOW, lw=0.6))


def draw_thumb(ax, g: UnitGallery, row: int, j: int, box=None) -> None:
    """Sample ``j`` of unit ``row``: the input, and where the unit responds in it, painted into
    ``box`` ``(x0, x1, top, bottom)`` of ``ax`` (whose y axis runs down), or filling ``ax``."""
    at = _box(ax, box or (0.0, 1.0, 0.0, 1.0), frame=box is not None)
    x = g.sample(row, j)  # one place: g.x of an RNN gallery is every place's series, formed when read
    heat = g.heat[row, j] if g.heat is not None else None
    # NaN off the steps a map lies on (MiniRocket's centre sites), drawn as nothing there; all NaN: no map
    peak = float(heat.nan_to_num(0.0).max()) if heat is not None else 0.0
    heat = heat / peak if peak > 0 else None
    (x0, top), (x1, bot) = at(0.0, 0.0), at(1.0, 1.0)
    if x.dim() == 3:  # an image [C, H, W]
        h, w = x.shape[1:]
        img, cmap, vmin, vmax, _ = _picture(x)  # a constant image as it is (a white page), no longer black
        ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, extent=(x0, x1, bot, top), aspect="auto", interpolation="nearest")
        if heat is not None:
            ax.imshow(heat.numpy(), cmap="Reds", alpha=0.35, vmin=0, vmax=1, extent=(x0, x1, bot, top), aspect="auto",
                      interpolation="nearest")
        (r0, r1), (c0, c1) = g.window[row, j].tolist()
        (a, b), (c, d) = at(c0 / w, r0 / h), at(c1 / w, r1 / h)
        ax.add_patch(_mpl()[0].patches.Rectangle((a, b), c - a, d - b, fill=False, edgecolor=WINDOW, lw=1.2))
    else:  # a series [C, T]
        (start, stop), = g.window[row, j].tolist()
        t_all = x.shape[-1]
        _span(ax, lambda u, v: at(u / t_all, v), start, stop)
        n = int(g.lengths[row, j]) if g.lengths is not None else t_all
        _series(ax, lambda u, v: at(u / t_all, v), x, n)
        if heat is not None:
            (_, band) = at(0.0, 0.88)
            ax.imshow(heat[None].numpy(), cmap="Reds", vmin=0, vmax=1, aspect="auto", alpha=0.6,
                      extent=(x0, x1, bot, band), interpolation="nearest")
    if box is None:
        _fill(ax)


def _series(ax, at, ys: Tensor, length: int, colors=None, labels=None) -> None:
    """Curves ``ys [n, T]`` (their first ``length`` samples) scaled into a box, the highest value on top; NaN
    (a class mean where no series of the class reaches) left as a gap, out of the scale."""
    ys = ys[:, :length].float()
    seen = ys[ys.isfinite()]
    lo, hi = (float(seen.min()), float(seen.max())) if seen.numel() else (0.0, 1.0)
    t = torch.arange(length) + 0.5
    for i, y in enumerate(ys):
        xs, vs = at(t, 0.92 - 0.84 * (y - lo) / (hi - lo if hi > lo else 1.0))
        ax.plot(xs.numpy(), vs.numpy(), lw=0.7 if colors is None else 0.8,
                color="k" if colors is None else colors[i], label=None if labels is None else labels[i])


def _fill(ax) -> None:
    """An axes that holds one thumbnail: the unit square, y down, no ticks."""
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    ax.set_xticks([])
    ax.set_yticks([])


def _title(g: UnitGallery, row: int, j: int, class_names: Sequence | None = None) -> str:
    """``#<sample index> <class>: <value it was ranked by>``, in lines of at most a thumbnail's width (the class
    name kept whole on its line): one line of a long name at 6 pt ran over the next thumbnail and off the figure."""
    names = list(class_names) if class_names is not None else None
    label = "" if g.y is None else f" {names[int(g.y[row, j])]}" if names else f" y={int(g.y[row, j])}"
    return _wrap(f"#{int(g.index[row, j])}{label}: {float(g.value[row, j]):+.2f}", CELL - 0.15, 6, whole=names or ())


CELL = 1.5  # inches of a thumbnail's column, where its title fits


def draw_means(ax, g: UnitGallery, row: int, class_names: Sequence | None = None, box=None, *,
               legend: bool = False) -> None:
    """The class means of an RNN gallery with step ``row``'s window shaded, into ``box`` or filling ``ax``; a class
    with no sample in the gallery's data (``g.class_counts`` 0) is not drawn, "(no sample)" in the legend."""
    at = _box(ax, box or (0.0, 1.0, 0.0, 1.0), frame=box is not None)
    means = g.class_means.float().mean(1)  # [classes, T]: channels averaged
    # a class with no sample has a mean of 0 (as importance.class_means): drawn as a measured flat line at 0 it
    # stretched the scale; left out, and the legend says why (a class of all-zero series is drawn: it has samples)
    counts = g.class_counts if g.class_counts is not None else torch.ones(len(means))
    absent = counts.to(means.device) == 0
    means[absent] = float("nan")
    t_all = means.shape[-1]
    scaled = lambda u, v: at(u / t_all, v)  # noqa: E731
    _span(ax, scaled, *(g.reads[row] if g.reads is not None else g.window[row, 0, 0]).tolist())
    names = list(class_names) if class_names is not None else [str(c) for c in range(len(means))]
    names = [f"{n} (no sample)" if a else n for n, a in zip(names, absent.tolist())]
    cycle = _mpl()[0].rcParams["axes.prop_cycle"].by_key()["color"]
    _series(ax, scaled, means, t_all, [cycle[c % len(cycle)] for c in range(len(means))], [str(n) for n in names])
    if box is None:
        _fill(ax)
    if legend:
        ax.legend(fontsize=5, loc="best", frameon=False, title="class means", title_fontsize=5)


def unit_gallery_plot(gallery: UnitGallery, *, k: int | None = None, class_names: Sequence | None = None):
    """One row per unit (RNN: per step), ``k`` thumbnails each: the samples of highest code and
    where in them the unit responds (the window it reads outlined or shaded in orange, its code
    map in red). An RNN step's row starts with the class means, the step's window shaded. Each
    thumbnail's title: the sample's index, its class (``class_names``) and its code (RNN: the
    step's contribution). A place without a sample (a step fewer than ``k`` series reach) is left
    blank. Only series and images are drawn: samples of another rank are an error.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 2, input_shape=(1, 8, 8)).eval()
    >>> g = nv.unit_gallery(net, [torch.randn(10, 1, 8, 8)], units=[0, 2], k=3)
    >>> len(unit_gallery_plot(g).axes)   # 2 units x 3 samples
    6
    """
    g = check_gallery(gallery)
    _drawable(g)
    k = min(positive_int(g.k if k is None else k, "k"), g.k)
    class_names = _gallery_names(g, class_names)
    means = g.kind == "steps" and g.class_means is not None
    cols = k + int(means)
    titles = {(row, j): _title(g, row, j, class_names) for row in range(len(g)) for j in range(k) if not _empty(g, row, j)}
    # a column as wide as its widest title line (a word longer than a thumbnail's width stays whole)
    cell = max(CELL, _text_inches([line for t in titles.values() for line in t.split("\n")], 6) + 0.15)
    lines = max((t.count("\n") + 1 for t in titles.values()), default=1)
    fig = _figure(0.6 + cell * cols, 0.6 + (1.2 + 0.1 * lines) * len(g))
    axes = fig.subplots(len(g), cols, squeeze=False)
    for row in range(len(g)):
        if means:
            draw_means(axes[row, 0], g, row, class_names, legend=row == 0)
        for j in range(k):
            if _empty(g, row, j):  # no series reaches the step: nothing to show
                axes[row, j + int(means)].axis("off")
                continue
            draw_thumb(axes[row, j + int(means)], g, row, j)
            axes[row, j + int(means)].set_title(titles[row, j], fontsize=6, pad=2)
        axes[row, 0].set_ylabel(_plain(g.names[row]), fontsize=8)  # a site's "$" is no mathtext
    where = "the input window the step reads" if g.kind == "steps" else "the window the unit reads at its strongest position"
    fig.suptitle(_wrap(f"Top {k} training samples of each {g.kind[:-1]}, by {g.ranked_by}\norange: {where}"
                       + ("" if g.kind == "steps" else "; red: its code over the input"), min(0.6 + cell * cols, 30.0) - 0.3, 9),
                 fontsize=9)  # in lines of the figure's width: with any names, a 3-column figure was too narrow for it
    return fig


def _gallery_names(g: UnitGallery, class_names: Sequence | None) -> list[str] | None:
    """``class_names`` as strings, one per class the gallery draws: every row of its class means (RNN), one per class
    of the network where the gallery records their count (``num_classes``), else at least one per label of its
    samples; distinct. Too few gave a bare IndexError while drawing; a CNN's gallery that records no class count
    cannot tell a list of another task's names (too many) from its own."""
    if class_names is None:
        return None
    names = [str(n) for n in name_sequence(class_names)]  # a tensor's elements as their values ('1', not 'tensor(1)')
    if g.class_means is not None and g.kind == "steps" and len(names) != len(g.class_means):
        raise ValueError(f"class_names: expected {len(g.class_means)} names (one per class of the gallery's "
                         f"class means), got {len(names)}")
    known = g.num_classes  # as waterfall, top_units and to_records refuse a list of another length
    if known is not None and len(names) != known:
        raise ValueError(f"class_names: expected {known} names (one per class), got {len(names)}")
    need = int(g.y.max()) + 1 if g.y is not None and g.y.numel() else 0
    if len(names) < need:
        raise ValueError(f"class_names: expected a name for every class of the gallery's samples (at least {need}: "
                         f"its labels go up to {need - 1}), got {len(names)}")
    _distinct(names, names)  # drawn as given (no "class " prefix): what it refuses covers the tables' rule too
    return [_plain(n) for n in _shorten(names)]  # a "$" in a name is no mathtext; a long one cut in the middle


def thumbnails(host, g: UnitGallery, rows: dict[float, int], m: int = 4, names: dict[float, str] | None = None) -> int:
    """Up to ``m`` thumbnails of each unit in ``rows`` (``{y of its bar: unit}``), painted into
    ``host``, an axes sharing the bars' (downward) y axis; units the gallery lacks get none, and so do
    its empty places (a step that fewer than ``k`` series reach). An RNN
    step's first thumbnail is the class means. Returns how many thumbnails were drawn.
    ``names`` (``{y of its bar: the bar's own unit name}``, ``"site #channel"`` or ``"step t"``): the gallery's row
    of each bar must carry that name, else a ValueError before anything is drawn."""
    _drawable(g)
    found = {y: _row(g, unit, None if names is None else names.get(y)) for y, unit in rows.items()}
    host.set_xlim(0, m)
    host.set_autoscaley_on(False)  # an image sets its axes' limits to its extent; the bars set these
    host.axis("off")
    drawn = 0
    for y, row in found.items():
        if row is None:
            continue
        means = g.kind == "steps" and g.class_means is not None
        for j in range(min(m, g.k + int(means))):
            box = (j + 0.05, j + 0.95, y - 0.42, y + 0.42)
            if means and j == 0:
                draw_means(host, g, row, box=box)
            elif _empty(g, row, j - int(means)):
                continue
            else:
                draw_thumb(host, g, row, j - int(means), box)
            drawn += 1
    return drawn


def _row(g: UnitGallery, unit: int, name: str | None) -> int | None:
    """The gallery's row of the bar of ``unit`` named ``name``. By index alone, another network's gallery (an
    ensemble member's, a network of other sites) put its unit '3 #0' beside the bar '1 #3' without a word. By name
    only: another network of the same unit names (a second seed of one architecture) is not told apart."""
    row = g.row(unit)
    if row is not None and name is not None and g.names[row] != name:
        raise ValueError(f"gallery: row '{g.names[row]}' for bar '{name}'; make it from the same network")
    return row
