"""Pictures of decisions for any NeuroView network: how one logit is built from the bias and the
contributions (:func:`waterfall`), and each layer's share of each class's decision
(:func:`class_layer_summary`).

Imports: torch, :mod:`neuroview.core`, :mod:`neuroview.attribution`, :mod:`._style` and :mod:`.class_names`;
matplotlib only through :mod:`._style`, when drawing.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..attribution.gallery import decision_items, largest
from ..attribution.importance import _check_sample, check_explanation, is_cnn, layer_shares
from ..core.explanation import CNNExplanation, Explanation, RNNExplanation, step_reads
from ..core.readable_items import fold_padding
from ..core.records import series_reads
from ..core._utils import positive_int
from ._style import (NEG, POS, _classes, _figure, _finite_decision, _label_list, _label_text, _percent, _plain, _target,
                     _text_inches, _wrap)
from .class_names import drawn_names
from .gallery import check_gallery, thumbnails

__all__ = ["waterfall", "class_layer_summary"]


def _items(exp: Explanation, sample: int, target: int) -> tuple[Tensor, list[str], str, set[int], int]:
    """Per-item contributions of one sample to one class, their labels, the item's name (one row of contributions,
    never the dense ``[B, C, ...]`` tensor), the items that are padding, and how many units (steps) they are of. An RNN series' steps past its end are one
    item, their sum, last (``"padding, steps a-b"``), as ``exp.k90(level="steps")`` counts them: bars sized by k90 then
    leave at most 10% to "other steps" (drawn a bar each, the padding took one slot of k90 and several of the bars)."""
    v = decision_items(exp, sample, target)
    _finite_decision(exp, sample, target, v)  # NaN drew blank bars, the rest "adding nothing"
    if isinstance(exp, CNNExplanation):
        return v, [f"{s} #{ch}" for s, ch in exp.units], "units", set(), len(v)
    if isinstance(exp, RNNExplanation):  # a step past the series' end adds its -W baseline: no step the series had
        n = int(exp.lengths[sample]) if exp.lengths is not None else len(v)
        labels = [f"step {t}" for t in range(min(n, len(v)))]
        if n >= len(v):
            return v, labels, "steps", set(), len(v)
        folded = fold_padding(v[None], exp.lengths[sample:sample + 1].cpu(), 1)[0]
        return torch.cat([folded[:n], folded[-1:]]), labels + [_padding_label(n, len(v))], "steps", {n}, len(v)
    return v, [f"feature {i}" for i in range(len(v))], "features", set(), len(v)


def _padding_label(n: int, t: int) -> str:
    """The padding bar's label: steps ``n`` to ``t - 1`` (inclusive, as a window's samples are named)."""
    return f"padding, step {n}" if t - n == 1 else f"padding, steps {n}-{t - 1}"


def bar_units(exp: Explanation, sample: int, k: int, target: int | None = None) -> list[int]:
    """The units (steps) :func:`waterfall` draws a bar for, largest first, the padding bar left out: the rows a gallery
    beside it needs (``waterfall_units`` picks among single steps, where several padded ones can crowd out a step
    the folded padding leaves room for)."""
    v, _, _, padded, _ = _items(exp, sample, _target(exp, sample, target))
    return [u for u in largest(v, positive_int(k, "k")) if u not in padded]


def _samples_of_steps(exp: Explanation, labels: list[str], what: str, padded: set[int],
                      sample: int | None = None) -> list[str]:
    """Bars of steps that read a window of input samples name them: step 16 of a window of 3 is samples 48-50; a
    step whose window runs past the series' end (``sample``'s own, :func:`~neuroview.core.records.series_reads`;
    without ``sample``, the network's ``max_len``) names its real end and the padding it reads: "samples 6-7, then 1
    of padding" (the padding bar of a short series names its steps only; a step wholly past the end, "(padding)")."""
    window = getattr(exp, "window", 1) if what == "steps" else 1
    if window <= 1:
        return labels
    if sample is None:
        reads = [step_reads(t, window, getattr(exp, "max_len", None)) for t in range(len(labels))]
    else:
        steps = exp.weight.shape[3] if exp.weight is not None else exp.time_importance.shape[-1]
        reads = series_reads(exp, steps, [sample])[0]
    return [lab if t in padded else f"{lab} (padding)" if r is None else
            f"{lab} (samples {r[0]}-{r[1] - 1}{f', then {window - (r[1] - r[0])} of padding' if r[1] - r[0] < window else ''})"
            for t, (lab, r) in enumerate(zip(labels, reads))]


def _others(v, mask, padded: set[int], what: str, labels: list[str]) -> str:
    """The label of the bar of the remaining contributions: how many add anything, how many add nothing (a sparse
    head's zero weights: "216 other units" held 3 that counted), and the padding item where it is among them
    ("and padding, steps 5-7"). Padding is told by index: a user's label (``unit_names``) need not say it."""
    rest = mask.nonzero().flatten().tolist()
    pad = [labels[i] for i in rest if i in padded]  # one item at most: the series' padding
    adds = [labels[i] for i in rest if i in padded and float(v[i]) != 0.0]  # against zero codes it adds exactly 0
    rest = [i for i in rest if i not in padded]
    zero = sum(1 for i in rest if float(v[i]) == 0.0)
    if zero == len(rest) and not adds:
        return f"{zero} other {what}{''.join(' and ' + p for p in pad)}, adding nothing"
    notes = ([f"{zero} more adding nothing"] if zero else []) + [f"{p} adding nothing" for p in pad if p not in adds]
    head = f"{len(rest) - zero} other {what}" + "".join(" and " + p for p in adds) if len(rest) > zero else adds[0]
    return head + (f" ({', '.join(notes)})" if notes else "")


def waterfall(exp: Explanation, sample: int = 0, *, target: int | None = None, k: int = 8,
              class_names: Sequence | None = None, label: int | None = None, gallery=None, thumbs: int = 4,
              unit_names: Sequence[str] | None = None, sample_id: int | str | None = None):
    """How one logit is built: the bias, then the ``k`` largest contributions (units of a CNN,
    time steps of an RNN), then the sum of all the others; the last bar is the logit itself.

    ``target`` defaults to the class the explanation was made for (the predicted class where
    ``explain`` was given no target); ``label`` (the true class) goes in the title.
    ``gallery`` (:func:`neuroview.unit_gallery` of the same network, e.g. over
    :func:`~neuroview.attribution.gallery.waterfall_units`) puts up to ``thumbs`` thumbnails of
    each unit (step) beside its bar: the bar reads "this unit, responding to these windows, added +2.1";
    ``thumbs`` is a positive int (for none, leave ``gallery`` out). A gallery row named otherwise than its bar (another
    network's gallery) is an error. An RNN series' steps past its end are one bar, ``"padding, steps a-b"`` (their
    sum: the ``-W baseline`` constant, no thumbnails), as ``exp.k90(level="steps")`` counts them, so that ``k`` at the
    k90 leaves at most 10% of the sum of |contributions| to the bar of the others.
    ``unit_names``: one label per unit (step) in place of ``"site #channel"`` (e.g. what
    ``MiniRocket.unit_names()`` says a NeuroView-MiniRocket unit computes). ``sample_id`` names the
    sample in the title (default ``sample``), e.g. its index in the split it was drawn from.
    """
    exp = check_explanation(exp)
    sample = _check_sample(sample, exp.logits.shape[0])
    k = positive_int(k, "k")  # k=True was read as 1
    thumbs = positive_int(thumbs, "thumbs")  # 0, -2 and True drew one thumbnail each, 2.5 a bare TypeError
    names = drawn_names(exp.num_classes, class_names)
    tgt = _target(exp, sample, target)
    v, labels, what, padded, count = _items(exp, sample, tgt)
    own = list(labels)  # the names a gallery gives its rows, whatever unit_names says
    labels = [_plain(n) for n in _samples_of_steps(exp, labels, what, padded, sample)]  # a site's "$" is no mathtext
    if unit_names is not None:
        given = _label_list(unit_names, "unit_names", what[:-1])  # one string was read a character per unit
        if len(given) != count:
            raise ValueError(f"unit_names: expected one label per {what[:-1]} ({count}), got {len(given)}")
        # the padding bar keeps its own label: it is the -W baseline constant of all those steps, not evidence
        labels = [_plain(n) for n in given[:len(v) - len(padded)]] + labels[len(v) - len(padded):]
    if gallery is not None:
        check_gallery(gallery, what)
    top = largest(v, k)
    # against a baseline the constant is the logit at the baseline itself (the average training logit, for the mean code)
    first = "bias" if getattr(exp, "baseline", None) is None else "baseline's logit"
    entries = [(first, float(exp.bias[tgt]))] + [(labels[i], float(v[i])) for i in top]
    if len(v) > len(top):
        mask = torch.ones(len(v), dtype=torch.bool)
        mask[top] = False
        entries.append((_others(v, mask, padded, what, labels), float(v[mask].sum())))
    logit = float(exp.logits[sample, tgt])
    tick = _text_inches([e[0] for e in entries], 8)
    bars = 7.5 + max(0.0, tick - 1.5)  # labels wider than the 1.5 in of "site #channel" (unit_names): a wider panel
    if gallery is None:
        fig = _figure(bars, 1.3 + 0.3 * (len(entries) + 1))
        ax = fig.subplots()
    else:
        m = min(thumbs, gallery.k + int(gallery.class_means is not None))
        fig = _figure(bars + 0.9 * m, 1.3 + 0.7 * (len(entries) + 1))
        ax, tax = fig.subplots(1, 2, sharey=True, width_ratios=[bars, 0.9 * m])
        # a padded step's bar is the -W baseline constant: other series' responses there are no face of it
        shown = [(i + 1, u) for i, u in enumerate(top) if u not in padded]
        thumbnails(tax, gallery, dict(shown), m, {y: own[u] for y, u in shown})
        tax.set_title(f"{'input window each step reads' if what == 'steps' else 'top training samples'} (gallery)", fontsize=8)
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
    ax.set_title(_wrap(_title(exp, sample, tgt, names, first, label, sample_id), min(bars, 30.0) - tick - 0.4, 9,
                       whole=names), fontsize=9)  # in lines as wide as the bars' axes, each class name on one line
    return fig


def _title(exp: Explanation, sample: int, tgt: int, names: list[str], first: str, label, sample_id) -> str:
    pred = int(exp.logits[sample].argmax())  # finite (_items checked); exp.predicted refuses a batch with a NaN
    truth = f", true {_label_text(label, names)}" if label is not None else ""
    who = sample if sample_id is None else _plain(sample_id)  # the user's text, drawn as it is
    return f"sample {who}: logit of {names[tgt]} = {first} + contributions (predicted {names[pred]}{truth})"


def class_layer_summary(source, *, y: Tensor | None = None, classes: Sequence[int] | None = None,
                        class_names: Sequence | None = None):
    """How much of each class's decision each layer carries: a classes x layers table of shares
    (each row sums to 100%); see :func:`neuroview.attribution.importance.layer_shares`.
    ``classes``: the rows drawn (default all; the report leaves out a class with no sample, which has no share).

    >>> import torch
    >>> fig = class_layer_summary(torch.tensor([[1.0, 3.0], [2.0, 2.0]]))
    >>> fig.axes[0].get_xlabel()
    'layer'
    """
    shares, layers = layer_shares(source, y=y)
    _finite_shares(source, shares)
    all_names = drawn_names(shares.shape[0], class_names)
    sel = _classes(classes, shares.shape[0])
    shares, names = shares[sel], [all_names[i] for i in sel]
    absent = shares.isnan().all(1)  # a class with no sample in y: no share to draw, said so rather than "nan"
    # a class whose weights (or contributions, on these samples) are all 0 has no share either: a row of '0' under
    # "each row sums to 100%"; "adds nothing" is true of both (a unit it reads may be off on every sample)
    silent = (shares == 0).all(1) & (shares.shape[1] > 0)
    shares = shares.masked_fill(silent[:, None], float("nan"))
    names = [f"{nm} (no sample)" if a else f"{nm} (adds nothing)" if z else nm
             for nm, a, z in zip(names, absent.tolist(), silent.tolist())]
    c, n = shares.shape
    fig = _figure(4.5 + 0.5 * n, 1.6 + 0.3 * c)
    ax = fig.subplots()
    vmax = float(shares.nan_to_num(0.0).max()) if shares.numel() and shares.nan_to_num(0.0).max() > 0 else 1.0
    im = ax.imshow(shares.numpy(), cmap="Blues", vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
    if c * n <= 400:
        for i in range(c):
            for j in range(n):
                val = float(shares[i, j])
                ax.text(j, i, "–" if val != val else f"{100 * val:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if val > 0.6 * vmax else "black")
    ax.set_xticks(range(n), [_plain(s) for s in layers], rotation=60 if n > 4 else 0, ha="right" if n > 4 else "center", fontsize=7)
    ax.set_yticks(range(c), names, fontsize=7)
    ax.set_xlabel("site (layer)" if is_cnn(source) else "layer")
    ax.set_ylabel("class")
    fig.colorbar(im, ax=ax, label="share of the class's |importance|", format=_percent())
    basis = "|contributions| on the data" if isinstance(source, Explanation) else "|weights|"
    fig.suptitle(f"Share of each class's decision carried by each layer\n(% of {basis})", fontsize=10)
    return fig


def _finite_shares(source, shares: Tensor) -> None:
    """A clear error for a non-finite decision or weight: its row of NaN shares was drawn as "(no sample)", which only a
    class absent from ``y`` is (a head weight NaN after a diverged training run)."""
    if isinstance(source, Explanation):
        bad = (~torch.isfinite(source.logits.detach())).any(1).nonzero().flatten().tolist()
        if bad:
            raise ValueError(f"source: samples {bad[:10]} have NaN or Inf logits: a non-finite decision has no share of "
                             "any layer (a head weight NaN after a diverged training run); check the network's weights")
    elif bool(shares.isnan().any()):
        rows = shares.isnan().any(1).nonzero().flatten().tolist()
        raise ValueError(f"source: the weights of classes {rows[:10]} hold NaN or Inf, which no share can be read from "
                         "(a head weight NaN after a diverged training run); check the network's weights")
