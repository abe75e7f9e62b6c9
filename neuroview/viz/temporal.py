"""Pictures of a sequence model over time: per-step importance of each class (:func:`time_importance`),
per layer and step (:func:`layer_time`), and how one sample's decision builds up (:func:`sample_time`).

Imports: torch, :mod:`neuroview.core`, :mod:`neuroview.attribution`, :mod:`._style` and :mod:`.class_names`;
matplotlib only through :mod:`._style`, when drawing.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..attribution.importance import _check_sample, layer_time_weights, time_weights
from ..core.explanation import RNNExplanation
from ..core.rnn_steps import dead_features
from ._style import (NEG, POS, _classes, _figure, _finite_decision, _index, _mpl, _plain, _scale, _text_inches, _wrap)
from .class_names import drawn_names

__all__ = ["time_importance", "layer_time", "sample_time", "step_label"]


def _series(series, num_classes: int, t: int, least: int = 0, source=None):
    """``series`` as a function class -> ``[T', F]`` array (or None): one shared series
    (``[T]`` or ``[T, F]``) or one per class (``[C, T, F]``); ``least``: the steps it must cover; ``source``: what
    the steps are of (its ``window``, for the refusal of a raw series)."""
    if series is None:
        return lambda c: None
    s = torch.as_tensor(series).detach().cpu().float()
    if s.dim() == 1:
        s = s[:, None]
    if s.dim() in (2, 3):
        _steps_of(s.shape[-2], t, source)
        _steps_first(s, t, least, "[T, F]" if s.dim() == 2 else f"[{num_classes}, T, F]")
    if s.dim() == 2:
        return lambda c: s.numpy()
    if s.dim() == 3 and s.shape[0] == num_classes:
        return lambda c: s[c].numpy()
    raise ValueError(f"series: expected [T], [T, F] (shared) or [{num_classes}, T, F] (one per class), got shape {tuple(s.shape)}")


def _steps_of(n: int, steps: int, source=None) -> None:
    """A series drawn on the steps' axis has at most one value per step: a network whose step reads a window of
    samples (``max_steps``, ``window``) has fewer steps than the input has samples, and its raw series would be
    drawn a third (a window of 3) of its length under the wrong steps. The refusal says what the ``source``
    network (or explanation) reads, and a call that folds the series it was given: ``per_step(series, window)``."""
    if n <= steps:
        return
    head = f"series: {n} values for {steps} steps"
    window = getattr(source, "window", None) if not isinstance(source, Tensor) else None
    if not isinstance(window, int) or window < 1:  # a tensor of weights: nothing says what a step reads
        raise ValueError(f"{head}: expected at most one value per step (where a step reads a window of samples, fold "
                         "the series first: neuroview.attribution.importance.per_step(series, window))")
    max_len = getattr(source, "max_len", None)
    reads = max_len if isinstance(max_len, int) and max_len <= steps * window else steps * window
    if window == 1:
        raise ValueError(f"{head}; this network reads one sample a step, {reads} in all: pass at most one value per "
                         f"step (series[:{reads}]; neuroview.attribution.importance.per_step folds a series only for a "
                         "network whose step reads a window of samples)")
    fold = "per_step(series, " if n <= reads else f"per_step(series[:{reads}], "
    raise ValueError(f"{head}; a step of this network reads a window of {window} samples, {reads} samples in all: "
                     f"pass one value per step, neuroview.attribution.importance.{fold}{window}) (the mean of each "
                     "window; [T], [T, F] or [B, T, F]), as the report does")


def _steps_first(s: Tensor, steps: int, least: int, layout: str) -> None:
    """A series handed channels-first (``[C, T]``, as the data modules give one) was read as one step of ``T``
    features and drawn as ``T`` invisible one-point lines: refused where its step axis (``-2``) is shorter than
    the steps explained (``least``), or is not the steps' count while its last axis is."""
    n, f = s.shape[-2], s.shape[-1]
    if n < least or (n != steps and f == steps):
        covers = f"at least the {least} steps explained" if least else f"{steps} steps"
        raise ValueError(f"series: expected {layout} with the steps first ({covers}), got shape {tuple(s.shape)}"
                         + ("; a channels-first [C, T] series: transpose it (series.T, or x.transpose(1, 2) for a batch)"
                            if f >= max(least, 2) else ""))


def _under(ax, s, color: str = "0.55"):
    """Draw a series on a twin axis behind ``ax``'s bars."""
    tw = ax.twinx()
    tw.plot(torch.arange(len(s)).numpy(), s, color=color, lw=1)
    tw.set_yticks([])
    ax.set_zorder(tw.get_zorder() + 1)
    ax.patch.set_visible(False)
    return tw


def _explained_steps(source, sample) -> int:
    """The steps an explanation's series reach (of ``sample``, else the longest): what a series drawn under them covers."""
    lengths = getattr(source, "lengths", None) if isinstance(source, RNNExplanation) else None
    if lengths is None or not len(lengths):
        return 0
    return int(lengths[sample]) if sample is not None else int(lengths.max())


def _padding_from(source, sample, t: int) -> int | None:
    """The first padded step of one explained ``sample`` (its length) where its series ends before the ``t`` steps
    drawn; else None (class means leave padding out by their own rule, a network or a tensor has none)."""
    n = _explained_steps(source, sample) if sample is not None else 0
    return n if 0 < n < t else None


def _mark_padding(ax, n: int, t: int) -> None:
    """Hatch the steps past the series' end: against a baseline each adds its constant -W baseline, which drawn
    plain read as evidence (the waterfall labels them "(padding)", sample_time leaves them out)."""
    ax.axvspan(n - 0.5, t - 0.5, facecolor="none", edgecolor="0.45", hatch="//", lw=0, zorder=3)


def _padding_note(n: int | None) -> str:
    return "" if n is None else f"\n(hatched: steps past the series' end, from step {n}: padding)"


def _mark_absent(ax, row: Tensor) -> None:
    """A class with no sample in ``y`` has no mean (a row of NaN): its panel says so, where zeros drew a flat, measured 0."""
    if row.numel() and bool(row.isnan().all()):
        ax.text(0.5, 0.5, "no sample of this class in y: no mean", transform=ax.transAxes, ha="center", va="center",
                fontsize=8, color="0.3")


def _position(source, sample):
    """An explanation's ``sample`` as its position in the batch (-1: the last one's number), as the tables give it."""
    return sample if sample is None or not isinstance(source, RNNExplanation) else _check_sample(sample, source.logits.shape[0])


def _what(source, sample, y, reduce: str) -> str:
    if isinstance(source, RNNExplanation):
        if sample is not None:
            return f"contributions of sample {sample}"
        return "mean contributions over the samples of each class" if y is not None else "mean contributions over the batch"
    if isinstance(source, Tensor):
        return "importance"
    return f"global weights ({reduce} over hidden features)"


def step_label(source, sample: int | None = None) -> str:
    """The steps' axis label: "time step", or, where a step reads a window of input samples (a network's or an
    explanation's ``window``), "step (3 input samples each)": step 16 is then samples 48 to 50, not sample 16. Where
    ``max_len`` is no multiple of the window, the last step reads fewer samples (then zero padding): said too. For one
    explained ``sample`` (its position) the last step is that series' own (``input_lengths``): 8 samples, "the last 2"."""
    window = getattr(source, "window", 1) if not isinstance(source, Tensor) else 1
    if not isinstance(window, int) or window <= 1:
        return "time step"
    ends = getattr(source, "input_lengths", None) if isinstance(source, RNNExplanation) else None  # None: max_len long
    end = int(ends[sample]) if sample is not None and ends is not None else getattr(source, "max_len", None)
    last = end % window if isinstance(end, int) else 0
    return f"step ({window} input samples each" + (f"; the last {last}, then padding)" if last else ")")


def _unreached(source, t: int):
    """``(first steps' mask or None, note)`` for a network's global weights: the steps no training series reached
    (reported 0: their weights never trained), hatched, and the hidden features constant over training (dead: counted
    0 in their steps, their weights never trained either); without a normalization, a word that steps few series reach
    carry near-initial weights. Nothing for an explanation or a tensor."""
    if isinstance(source, (RNNExplanation, Tensor)) or not hasattr(source, "unreached_steps"):
        return None, ""
    mask = source.unreached_steps()
    if mask is None:  # no normalization, or one that has seen no batch yet: the two are told apart
        why = ("no normalization: nothing records which steps training reached" if getattr(source, "norm", None) is None
               else "not trained yet: its normalization has seen no batch")
        return None, (f"\n({why}; a step few training series reach keeps near-initial weights: compare the "
                      "contributions measured on data)")
    note = (f"\n(hatched, shown as 0: {int(mask.sum())} steps no training series reached; their weights never "
            "trained)") if bool(mask.any()) else ""
    return (mask[:t] if note else None), note + _dead_note(source)


def _dead_note(source) -> str:
    """The hidden features constant over training (:func:`neuroview.core.rnn_steps.dead_features`), or that low
    precision statistics cannot tell them."""
    shape = getattr(source, "feature_shape", None)
    if shape is None:
        return ""
    dead = dead_features(getattr(source, "norm", None), shape)
    if dead is None:
        return "\n(its low-precision statistics cannot tell hidden features constant over training: none reported 0)"
    return (f"\n({dead} hidden features were constant over training (dead): their weights never trained, counted 0 in "
            "their steps)") if dead else ""


def _hatch_steps(ax, mask) -> None:
    """Hatch the steps of ``mask``, one span per run of them (one per step was thousands of patches on long series)."""
    edges = torch.diff(torch.cat([torch.zeros(1), mask.float(), torch.zeros(1)])).nonzero().flatten().tolist()
    for a, b in zip(edges[::2], edges[1::2]):
        ax.axvspan(a - 0.5, b - 0.5, facecolor="none", edgecolor="0.6", hatch="xx", lw=0, zorder=3)


_MAX_BARS = 400  # steps drawn as bars; past that a 9 in panel gives each bar under 2 px, and 0.16 px at 5,000 steps


def _area(ax, steps, v) -> None:
    """One class's row as a filled step line (each step a flat run from ``t - 0.5`` to ``t + 0.5``): red above 0,
    blue below, each outlined in its colour, whose strokes keep a step narrower than a pixel visible (bars that thin
    were drawn with gaps, as if those steps added nothing)."""
    for part, color in ((v.clip(min=0), POS), (v.clip(max=0), NEG)):
        ax.fill_between(steps, part, step="mid", color=color, lw=0, alpha=0.8)  # the series drawn under it shows
        ax.step(steps, part, where="mid", color=color, lw=0.6)


def time_importance(source, *, series=None, y: Tensor | None = None, sample: int | None = None,
                    classes: Sequence[int] | None = None, class_names: Sequence | None = None, reduce: str = "norm"):
    """Per-step importance of each class (one row per class), the input series drawn underneath.

    ``source``: a NeuroViewRNN (global weights, aggregated by ``reduce``), an RNNExplanation
    (signed contributions: one ``sample``, the mean over each class's samples given labels
    ``y``, or the batch mean; a class with no sample in ``y`` is marked, with no bars), or a
    ``[C, T]`` tensor. ``series``: ``[T]``/``[T, F]`` drawn under
    every row, or ``[C, T, F]`` one per class (e.g. :func:`neuroview.attribution.importance.class_means`), one value
    per step: where a step reads a window of samples, the input folded to its steps,
    ``neuroview.attribution.importance.per_step(series, net.window)`` (a raw series is refused).
    Up to 400 steps a row is one bar per step, coloured by its value; past that (bars narrower than 2 px) a filled
    step line, red above 0 and blue below, outlined so that a step narrower than a pixel still shows.

    >>> import torch
    >>> fig = time_importance(torch.randn(2, 12), series=torch.randn(12), class_names=["no", "yes"])
    >>> [ax.get_ylabel() for ax in fig.axes[:2]]
    ['no', 'yes']
    """
    w = time_weights(source, y=y, sample=sample, reduce=reduce)
    sample = _position(source, sample)
    c, t = w.shape
    names = drawn_names(c, class_names)
    sel = _classes(classes, c)
    under = _series(series, c, t, _explained_steps(source, sample), source)
    pad = _padding_from(source, sample, t)
    unreached, note = _unreached(source, t)
    norm, cmap_name = _scale(w[sel])
    matplotlib = _mpl()[0]
    cmap = matplotlib.colormaps[cmap_name]
    ylabels, size, panel = _row_labels([names[c] for c in sel])
    fig = _figure(9.0, 0.9 + panel * len(sel))
    axes = fig.subplots(len(sel), 1, sharex=True, squeeze=False)[:, 0]
    steps = torch.arange(t).numpy()
    for ax, cls, ylabel in zip(axes, sel, ylabels):
        s = under(cls)
        if s is not None:
            _under(ax, s)
        if t <= _MAX_BARS:
            bars = ax.bar(steps, w[cls].numpy(), width=0.9, color=cmap(norm(w[cls].numpy())))
            for b in list(bars)[pad:] if pad is not None else ():
                b.set_hatch("//")
        else:
            _area(ax, steps, w[cls].numpy())
        if pad is not None:
            _mark_padding(ax, pad, t)
        _mark_absent(ax, w[cls])
        if unreached is not None:
            _hatch_steps(ax, unreached)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel(ylabel, fontsize=size)
        ax.set_xlim(-0.5, t - 0.5)
    axes[-1].set_xlabel(step_label(source, sample))
    _whole_steps(axes[-1])
    shown = "" if series is None else " (grey: the input series)"
    fig.suptitle(_wrap(f"Per-step importance of each class: {_what(source, sample, y, reduce)}{shown}"
                       f"{_padding_note(pad)}{note}", 8.7, 10), fontsize=10)
    return fig


def _row_labels(names: list[str]) -> tuple[list[str], float, float]:
    """Each class name as its panel's (vertical) y label: ``(labels, font size, panel height in inches)``. A name
    taller than a panel ran over the panels beside it and off the figure: it is drawn smaller and in lines, and the
    panels grow to a line longer than that (a long word)."""
    if _text_inches(names, 10) <= _PANEL_TEXT:
        return names, 10.0, 1.3
    lines = [_wrap(n, _PANEL_TEXT, 8) for n in names]
    return lines, 8.0, max(1.3, _text_inches([x for n in lines for x in n.split("\n")], 8) + 0.35)


_PANEL_TEXT = 0.95  # inches of a 1.3 in panel a y label may span


def _whole_steps(ax) -> None:
    """Ticks at whole steps only: a one-step axis was ticked -0.06 ... 0.06, steps no series has. The multiples are
    matplotlib's own round ones (its AutoLocator's steps): any multiplier 1..10 ticked 26 steps 0, 3, 6 ... 24."""
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 - optional dependency, when drawing

    # one step: one integer in view
    ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True, min_n_ticks=1))


def layer_time(source, *, y: Tensor | None = None, sample: int | None = None, classes: Sequence[int] | None = None,
               class_names: Sequence | None = None, reduce: str = "norm"):
    """Layer x time heatmap of each class's importance (sources as in :func:`time_importance`).

    >>> import torch
    >>> len(layer_time(torch.randn(3, 2, 10)).axes)   # 3 classes, and the colour bar
    4
    """
    w = layer_time_weights(source, y=y, sample=sample, reduce=reduce)
    sample = _position(source, sample)
    c, n_layers, t = w.shape
    names = drawn_names(c, class_names)
    sel = _classes(classes, c)
    pad = _padding_from(source, sample, t)
    unreached, note = _unreached(source, t)
    norm, cmap = _scale(w[sel])
    fig = _figure(9.0, 0.9 + len(sel) * (0.45 + 0.3 * n_layers))
    axes = fig.subplots(len(sel), 1, sharex=True, squeeze=False)[:, 0]
    im = None
    for ax, cls in zip(axes, sel):
        im = ax.imshow(w[cls].numpy(), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(n_layers), [f"layer {i}" for i in range(n_layers)], fontsize=7)
        ax.set_title(names[cls], fontsize=8)
        if pad is not None:
            _mark_padding(ax, pad, t)
        if unreached is not None:
            _hatch_steps(ax, unreached)
        _mark_absent(ax, w[cls])
    axes[-1].set_xlabel(step_label(source, sample))
    _whole_steps(axes[-1])
    fig.colorbar(im, ax=list(axes), label="importance", shrink=0.8)
    # in lines of the figure's width: plain, the note of unreached steps lost both its ends off a saved figure
    fig.suptitle(_wrap(f"Layer x time importance of each class: {_what(source, sample, y, reduce)}{_padding_note(pad)}"
                       f"{note}", 8.7, 10), fontsize=10)
    return fig


def sample_time(exp: RNNExplanation, sample: int = 0, *, label: int | None = None, series=None,
                class_names: Sequence | None = None, sample_id: int | str | None = None):
    """One sample's per-step contributions to its predicted class and its true class (``label``),
    the running logit (bias plus contributions so far, ending at the logit), and the series.

    ``series`` is the sample's input, ``[T]`` or ``[T, F]``, steps first, covering its valid steps, one value per
    step: where a step reads a window of samples (``exp.window > 1``), the input folded to its steps,
    ``neuroview.attribution.importance.per_step(series, exp.window)`` (a raw series is refused).
    ``sample_id`` names the sample in the title (default ``sample``).
    """
    if not isinstance(exp, RNNExplanation):
        raise TypeError(f"exp: expected an RNNExplanation, got {type(exp).__name__}")
    sample = _check_sample(sample, exp.logits.shape[0])
    names = drawn_names(exp.num_classes, class_names)
    ti = (exp.time_importance if exp.time_importance is not None else exp.contributions.sum(dim=(2, 3, 5)))[sample]
    ti = ti.detach().cpu()
    t = int(exp.lengths[sample]) if exp.lengths is not None else ti.shape[1]
    pred = int(exp.logits[sample].argmax())  # this sample's: exp.predicted refuses a batch that holds a NaN decision
    _finite_decision(exp, sample, pred, ti[pred])  # NaN drew an empty line, "predicted" argmax's reading of it
    shown = [(pred, "predicted", "C0")]
    if label is not None:
        label = _index(label, exp.num_classes, "label")
        if label != pred:
            shown.append((label, "true", "C1"))
    rows = 3 if series is not None else 2
    fig = _figure(9.0, 1.0 + 1.8 * rows)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    steps = torch.arange(t).numpy()
    for cls, role, color in shown:
        tag = f"{role}{' = true' if role == 'predicted' and label == pred else ''}: {names[cls]} (logit {float(exp.logits[sample, cls]):.3g})"
        axes[0].plot(steps, ti[cls, :t].numpy(), marker="o", ms=2.5, lw=1, color=color, label=tag)
        # steps past the series' end add their constant -W baseline (against a baseline): it starts the line, with the
        # bias, so that the line ends at the logit as the waterfall's bars do
        pad = float(ti[cls, t:].double().sum())
        running = float(exp.bias[cls]) + pad + torch.cumsum(ti[cls, :t].double(), 0)
        start = "bias" if exp.baseline is None else "baseline's logit"  # against a baseline, exp.bias is its logit
        axes[1].plot(steps, running.numpy(), lw=1.2, color=color, marker="o" if t == 1 else None, ms=2.5,
                     label=f"starts at the {start} {float(exp.bias[cls]):+.3g} and the padded steps' {pad:+.3g}" if pad else None)
        axes[1].axhline(float(exp.logits[sample, cls]), color=color, lw=0.6, ls="--")
    axes[0].axhline(0, color="k", lw=0.5)
    axes[0].set_ylabel("contribution")
    axes[0].legend(fontsize=7, loc="best")
    axes[1].set_ylabel("running logit")
    if axes[1].get_legend_handles_labels()[1]:
        axes[1].legend(fontsize=7, loc="best")
    if series is not None:
        s = torch.as_tensor(series).detach().cpu().float()
        s = s[:, None] if s.dim() == 1 else s
        if s.dim() != 2:
            raise ValueError(f"series: expected the sample's input, [T] or [T, F], got shape {tuple(s.shape)}")
        _steps_of(s.shape[0], ti.shape[1], exp)
        _steps_first(s, ti.shape[1], t, "the sample's input [T, F]")
        # one step: a line of one point draws nothing, a marker does
        axes[2].plot(torch.arange(min(t, s.shape[0])).numpy(), s[:t].numpy(), color="0.3", lw=1,
                     marker="o" if min(t, s.shape[0]) == 1 else None, ms=2.5)
        axes[2].set_ylabel("input")
    axes[-1].set_xlabel(step_label(exp, sample))
    _whole_steps(axes[-1])
    truth = f", true {names[label]}" if label is not None else ""
    who = sample if sample_id is None else _plain(sample_id)  # the user's text, drawn as it is
    fig.suptitle(_wrap(f"Sample {who}: how the decision builds up over time (predicted {names[pred]}{truth})", 8.7, 10,
                       whole=names), fontsize=10)  # two long class names were wider than the figure
    return fig
