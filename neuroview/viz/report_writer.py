"""Writing the ``neuroview explain`` report: tables, figures, ``report.json`` and ``index.html`` in one folder.

:func:`write_report` explains a model on a batch (:mod:`.report_data`), writes the tables
(CSV) and the explanation (safetensors), draws the figures (:mod:`.plots`) and renders the page
(:mod:`.report_page`, written by :mod:`.report_text`). Every file the page names is written next to it, so it opens offline.

Imports: torch, :mod:`neuroview._io` (the staging folder), :mod:`neuroview.attribution` and the
viz modules named above; matplotlib only through :mod:`.plots`, when drawing.
"""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from .._io import staged_dir
from ..attribution.export import layer_time_records, time_records, unit_records, write_csv, write_json
from ..attribution.gallery import unit_gallery
from ..attribution.importance import class_means, is_cnn, is_rnn, layer_shares, per_step, standardizes
from ..core._utils import name_sequence, restore_modes
from ..core.cnn import NeuroViewCNN
from ..core.ensemble import Ensemble
from ..core.explanation import RNNExplanation
from ..core.explanation_checks import table_names as check_names
from ..core.rnn import NeuroViewRNN
from ..core.user_path import expand
from ..training.sparsify import mean_codes
from . import plots
from ._style import _names
from .report_data import (
    Page, batch_first, check_inputs, check_labels, check_options, check_out, drawn_classes, explain_batches, pick_examples,
    prediction_rows, progress_bar, readability_lines, report_files, report_meta, step_samples, summary_lines,
    free_names, table_names, weight_caption,
)
from .decision import bar_units
from .gallery import sample_shape
from .report_baseline import gallery_classes, unseen_mean
from .report_out import moving_in, recover_out
from .report_text import check_requirements, printable, write_page
from .units import token_sites

__all__ = ["write_report", "recover_out"]

S_GLOBAL, S_SAMPLES, S_FACES = "What the model looks for", "Single decisions", "Units with a face"
WATERFALL_BARS = 8  # the fewest units (steps) a waterfall shows, and so the ones the gallery covers
MAX_BARS = 15  # ... and the most: more where a decision needs more to reach 90% of its evidence


def waterfall_bars(exp, samples) -> dict[int, int]:
    """The bars of each sample's waterfall: its decision's k90 (so that "other units" carry at most
    10% of the sum of |contributions|), at least :data:`WATERFALL_BARS`, at most :data:`MAX_BARS`. An RNN's in steps,
    a series' padding one item, as the waterfall draws it (one bar, "padding, steps a-b")."""
    k = exp.k90(per_sample=True, level="steps" if isinstance(exp, RNNExplanation) else "features")
    return {int(i): min(MAX_BARS, max(WATERFALL_BARS, int(k[i]))) for i in samples}


class _Writer:
    """The folder being written: every file goes through here, so the page lists what exists."""

    def __init__(self, out: Path, page: Page, dpi: int, bar):
        self.out, self.page, self.dpi, self.bar = out, page, dpi, bar
        self.files: list[str] = []

    def figure(self, section: str, name: str, fig, caption: str) -> None:
        self.bar.set_description_str(f"drawing {name}")
        fig.savefig(self.out / name, dpi=self.dpi, bbox_inches="tight")  # a title wider than a small figure: not cut off
        fig.clear()  # figures hold their arrays; free them now rather than at garbage collection
        self.files.append(name)
        self.page.figures.append((section, name, caption))
        self.bar.update(1)

    def table(self, name: str, rows: list[dict], description: str, columns: list[str] | None = None) -> None:
        write_csv(self.out / name, rows, columns)  # columns: the header of a table that may have no row
        self.files.append(name)
        self.page.data.append((name, description))


def write_report(
    model: nn.Module,
    x: Tensor,
    y: Tensor | None,
    out_dir,
    *,
    lengths: Tensor | None = None,
    class_names: Sequence | None = None,
    examples: int = 4,
    overwrite: bool = False,
    progress: bool = True,
    batch_size: int = 64,
    title: str | None = None,
    about: dict | None = None,
    dpi: int = 100,
    gallery_data=None,
    gallery_samples: int | None = None,
    baseline="auto",
    sample_indices=None,
) -> list[str]:
    """Explain ``model`` on ``x`` (labels ``y``) and write figures, tables and ``index.html`` to ``out_dir``.

    Args:
        model: a NeuroViewCNN or NeuroViewRNN (anything with ``explain``); explained in eval mode, its modes put back after.
        x: inputs in the model's own layout; ``lengths`` for padded RNN sequences (a CNN's: checked, warned unused).
        y: true classes ``[B]`` or ``None``; with labels the per-class views average over the
            samples of each class, and the report gives the accuracy.
        class_names: one name per class (default ``0, 1, ...``).
        examples: how many samples get per-sample figures (all of them when there are fewer; 0: none).
        batch_size: samples explained at a time (a positive int).
        overwrite: write into a non-empty ``out_dir``; refused otherwise.
        about: extra facts for the page and ``report.json`` (model name, data, split; ``baseline``: the words
            for a baseline tensor given, in place of "the baseline given").
        gallery_data: the training data (batches as the data modules give them, or a data
            module): every unit (step) of the waterfalls gets its gallery from it
            (:func:`neuroview.unit_gallery`), beside its bar and in ``unit_gallery.png``;
            ``gallery_samples`` reads at most that many of its samples. None: no galleries.
        baseline: the codes contributions are taken against (``explain``'s ``baseline``). ``"auto"``:
            the training split's mean code, computed exactly from ``gallery_data`` when given, else
            the normalization's running estimate of it, else zero codes. The page says which.
        sample_indices: each sample's index in the data ``x`` was drawn from (``neuroview explain``: in
            its ``--split``), written to ``report.json`` (``sample_indices``) and ``predictions.csv``
            (``split_index``) and named in the per-sample titles ("Sample 4 (test #22)"); default:
            the positions in ``x``, which the figures and the ``sample`` column number samples by.

    Returns the names of the files written, ``index.html`` last. Every file named in the page
    is among them; images sit next to the page, so the folder opens in a browser offline.
    What the report needs (matplotlib, jinja2) is checked before anything is written, and the
    files are written to a hidden folder beside ``out_dir`` (or in it: :func:`~neuroview._io.staged_dir`) and moved
    into place only when all are done: an error leaves ``out_dir`` as it was, and an existing one keeps its identity.
    """
    check_requirements(), gallery_classes(model, gallery_data)  # a gallery_data of other classes: before any work
    t0 = time.perf_counter()  # the work timed: finding the sites, the explanation, and its copy off the device
    if getattr(model, "sites", True) is None:  # a NeuroView-CNN loaded from weights finds its sites on real data
        model.discover(x)
    check_inputs(model, x, lengths)  # a CNN's lengths: checked, and a warning that it reads none
    recover_out(out := expand(out_dir))  # "~/rep": the home's; before check_out: a killed run's leftovers are no content
    check_out(out, overwrite)
    n = (batch_first(model, x) if is_rnn(model) else x).shape[0]
    ids = check_options(n, batch_size, examples, gallery_samples, sample_indices, tuple(x.shape))  # n == 0 too
    num_classes = int(model.num_classes)
    y = check_labels(y, n, num_classes)
    _names(num_classes, given := range(num_classes) if class_names is None else [printable(c) if isinstance(c, str) else c for c in name_sequence(class_names)])
    names = cols = check_names(num_classes, given)  # the plots' rule, then the tables' (a non-UTF-8 name as the page shows it)
    restore = restore_modes(model)  # explained in eval mode; the caller's modes given back, as explain does
    try:
        model.eval()  # inside: a hold never let go would keep the modes from coming back
        # the bar's total is the batches for now; once the examples are picked, every step (see _write_all)
        tb, (base, basis) = time.perf_counter(), _baseline(model, baseline, gallery_data)
        t0 += time.perf_counter() - tb  # a pass over the training split for the mean code: no part of explaining
        # --overwrite: the report there as this one moves in (another run's may have come since) is listed, and its
        # files that this one does not rewrite removed, under the lock of the moves (report_out.moving_in)
        moved = moving_in(overwrite, shown=out_dir, listed=report_files)
        with staged_dir(out, moved) as stage, progress_bar(-(-n // batch_size), "explaining", progress) as bar:
            files = moved.written = _write_all(stage, model, x, y, lengths, names, cols, examples, batch_size, bar, t0,
                                             title=title, about={"baseline": basis} | dict(about or {}), dpi=dpi,
                                             faces=(gallery_data, gallery_samples), baseline=base, ids=ids)
    finally:
        restore()
    return files


def _baseline(model: nn.Module, baseline, train) -> tuple:
    """``(what explain takes, words for the page)`` of ``write_report``'s ``baseline``. Statistics that never saw a
    training batch hold no mean: ``"auto"`` then takes zero codes, and either says so (:mod:`.report_baseline`)."""
    auto = isinstance(baseline, str) and baseline == "auto"
    if auto and train is not None:
        return mean_codes(model, train), "the training split's mean code"
    if auto:  # the normalization's running estimate of the mean, where there is one
        baseline = "mean" if getattr(model, "norm", None) is not None else None
    if (unseen := unseen_mean(model, baseline, auto)) is not None:  # (a linear probe's head)
        return unseen
    words = {None: "zero codes", "zero": "zero codes", "mean": "the training mean code (the normalization's running estimate of it)"}
    return baseline, words.get(baseline, "the baseline given") if isinstance(baseline, (str, type(None))) else "the baseline given"


def _write_all(out: Path, model: nn.Module, x: Tensor, y: Tensor | None, lengths: Tensor | None, names: list[str],
               cols: list[str], examples: int, batch_size: int, bar, t0: float, *, title: str | None, about: dict,
               dpi: int, faces: tuple = (None, None), baseline=None, ids: list[int] | None = None) -> list[str]:
    """Explain, then write every file into ``out`` (the staging folder), advancing ``bar`` once per step.
    ``ids``: each sample's index in the data it was drawn from (None: its position in ``x``)."""
    rnn, cnn = is_rnn(model), is_cnn(model)
    xb = per_step(_zero_padding(batch_first(model, x), lengths), getattr(model, "window", 1)) if rnn else x
    exp = explain_batches(model, x, lengths=lengths, batch_size=batch_size, bar=bar, baseline=baseline)
    for f in fields(exp):  # tables and pictures are made on the CPU, wherever the model runs
        if isinstance(getattr(exp, f.name), Tensor):
            setattr(exp, f.name, getattr(exp, f.name).detach().cpu())  # waits for the device: the work is done
    explain_s = time.perf_counter() - t0
    pred, residual = exp.predicted.cpu(), float(exp.residual().abs().max())
    picks = pick_examples(pred, y, examples)
    # now that the examples are known, the bar's total is every step below: exactly as many as its updates
    with_faces = faces[0] is not None and bool(picks) and isinstance(model, (NeuroViewCNN, NeuroViewRNN, Ensemble))
    bar.total = bar.n + 1 + _figure_count(model, xb, picks) + 1 + 2 * int(with_faces)
    bar.refresh()
    page = Page(title or f"NeuroView explanation: {about.get('model', type(model).__name__)}",
                readability_lines(model, exp, about["baseline"]) + summary_lines(len(pred), explain_s, residual, pred, y))
    w = _Writer(out, page, dpi, bar)
    bars = waterfall_bars(exp, picks)
    gallery = _gallery(w, model, exp, bars, faces, names) if with_faces else None
    # tables first: they are the numbers the figures draw
    _write_tables(w, model, exp, pred, y, names, cols, ids)
    _draw_global(w, model, exp, xb, y, names)
    split = about.get("split") or "data"  # "Sample 4 (test #22)": the position here, and the index in the split
    _draw_samples(w, model, exp, x, xb, y, pred, bars, names, gallery,
                  where=None if ids is None else {i: f"{split} #{ids[i]}" for i in bars})
    if gallery is not None:
        what = "step: the input window it reads" if gallery.kind == "steps" else "unit: the window it reads"
        w.figure(S_FACES, "unit_gallery.png", plots.unit_gallery_plot(gallery, class_names=names),
                 f"Every {gallery.kind[:-1]} of the waterfalls above, with its top {gallery.k} training samples "
                 f"(ranked by {gallery.ranked_by}); orange: for each {what}"
                 + ("; the first column: each class's mean series." if gallery.kind == "steps" else
                    " at its strongest position; red: its code over the input."))
    about.setdefault("model", type(model).__name__)
    kind = "cnn" if cnn else "rnn" if rnn else type(exp).__name__
    meta = report_meta(page, about, kind, names, pred, y, residual, picks, ids) | {"explain_seconds": explain_s}
    if rnn:  # the time tables' and plots' step t reads input samples [t * window, (t + 1) * window)
        meta["window"] = int(getattr(model, "window", 1))
    write_json(out / "report.json", meta)
    w.files.append("report.json")
    page.data.append(("report.json", "what this report is: model, data, accuracy, each sample's index in the data it was "
                      "drawn from (sample_indices), and every file with its caption"))
    bar.set_description_str("writing index.html")
    write_page(out / "index.html", page, about)  # a path of a name that is not UTF-8 shown, not a crash after the work
    w.files.append("index.html")
    bar.update(1)
    return w.files


def _figure_count(model: nn.Module, xb: Tensor, picks: list[int]) -> int:
    """How many figures :func:`_draw_global` and :func:`_draw_samples` draw."""
    cnn, rnn = is_cnn(model), is_rnn(model)
    per_sample = 1 + int(cnn and xb.dim() in (3, 4)) + int(rnn)
    return 1 + 2 * int(cnn) + 2 * int(rnn) + per_sample * len(picks)


def _write_tables(w: _Writer, model: nn.Module, exp, pred: Tensor, y: Tensor | None, names: list[str],
                  cols: list[str], ids: list[int] | None = None) -> None:
    """The CSV tables and the explanation itself (safetensors and its JSON sidecar)."""
    w.table("predictions.csv", prediction_rows(exp, pred, y, names, cols, ids),
            "one row per sample: its number in the figures (sample), its index in the data it was drawn from "
            "(split_index), true class, predicted class, and every logit")
    shares, layers = layer_shares(exp, y=y)
    # a class with no sample among the explained ones has no mean: left out, not a row of zeros
    absent = set() if y is None else {cols[c] for c in range(len(cols)) if not bool((y == c).any())}
    left = f"; classes with no sample here are left out ({', '.join(sorted(absent))})" if absent else ""
    # a class whose contributions are all 0 here (it reads no unit, or they are all off) has no share to split: its
    # row of zeros broke "rows sum to 1" unsaid; left out and named (here only: the time tables keep its true 0s)
    silent = {cols[c] for c, row in enumerate(shares.tolist()) if row and all(v == 0 for v in row)} - absent
    quiet = f"; classes that add nothing here (every contribution 0) are left out ({', '.join(sorted(silent))})" * bool(silent)
    layers = free_names(layers, ("class",), "site")  # a site named so: not over the class column, nor another site
    over = "the samples of the class" if y is not None else "all the explained samples (no labels given)"
    tn = table_names(names)  # a class "step": "step (class)", not refused
    gone = {tn[c] for c in range(len(cols)) if cols[c] in absent}
    w.table("layer_shares.csv", [{"class": c} | dict(zip(layers, row)) for c, row in zip(cols, shares.tolist()) if c not in absent | silent],
            f"each layer's share of the class's |contributions|, summed over {over} (rows sum to 1)" + left + quiet,
            ["class", *layers])  # every class silent (x[y == c] of one): no row, the header still (was refused)
    if is_cnn(model):
        what = ("its standardized weight for each class" if standardizes(model) else "its raw effective weight for "
                "each class (the network has no normalization, so units of different sites do not compare)")
        w.table("unit_importance.csv", unit_records(model, tn), f"one row per unit (site, channel): {what}, the "
                "numbers of the heatmap")
    if is_rnn(model):
        win, n = getattr(model, "window", 1), getattr(model, "max_len", None)
        drop = lambda rows: [{k: v for k, v in r.items() if k not in gone} for r in step_samples(rows, win, n)]  # noqa: E731
        step = "time step" if win <= 1 else "step"
        cut = f"; the last step reads {n % win}, then zero padding" if win > 1 and isinstance(n, int) and n % win else ""
        cols_note = f" (each reads {win} input samples{cut}: input_samples gives their start:stop)" if win > 1 else ""
        w.table("time_importance.csv", drop(time_records(exp, tn, y=y)),
                f"one row per {step}{cols_note}: the mean signed contribution to each class over {over.replace('the class', 'that class')} "
                "(padding past a series' end included, as it adds against the baseline)" + left)
        w.table("layer_time.csv", drop(layer_time_records(exp, tn, y=y)),
                f"one row per (layer, {step}){cols_note}: the mean signed contribution to each class over {over.replace('the class', 'that class')}" + left)
        w.table("time_weights.csv", step_samples(time_records(model, tn), win, n), weight_caption(model, step, cols_note))
    exp.save(w.out / "explanation.safetensors")
    w.files += ["explanation.safetensors", "explanation.json"]
    w.page.data.append(("explanation.safetensors", "every contribution of every sample (safetensors): "
                        "neuroview.Explanation.load('explanation.safetensors')"))
    w.page.data.append(("explanation.json", "the explanation's metadata (units, sites, checksum)"))
    w.bar.update(1)


def _draw_global(w: _Writer, model: nn.Module, exp, xb: Tensor, y: Tensor | None, names: list[str]) -> None:
    """The figures of what the model looks for, over all the samples."""
    c = int(model.num_classes)
    # a class with no sample among the explained ones has no mean: left out, as the tables leave it (not zeros)
    shown = None if y is None else [k for k in range(c) if bool((y == k).any())] or None
    if is_cnn(model):
        few, drawn = drawn_classes(exp, y)
        w.figure(S_GLOBAL, "unit_heatmap.png", plots.unit_heatmap(model, class_names=names, classes=few),
                 "Weight of every unit for every class, one panel per site (layer), units grouped by the class they "
                 "weigh most. Red units add to a class's logit when active, blue units take from it. Weights are "
                 + ("standardized (times the spread of the unit's code), so units of different layers compare."
                    if standardizes(model) else "the raw effective ones: the network has no normalization, so units of "
                    "different layers do not compare.") + drawn)
        w.figure(S_GLOBAL, "top_units.png", plots.top_units(model, k=5, class_names=names, classes=few),
                 "The five units with the largest weight for each class, coloured by their site (layer)." + drawn)
    if is_rnn(model):
        # the mean over the valid steps only: padding (zeros or NaN) past a series' end is no input
        steps = exp.lengths.cpu() if exp.lengths is not None else None
        labels = y if y is not None else torch.zeros(xb.shape[0], dtype=torch.long)  # no labels: one class, all
        means = class_means(xb.cpu(), labels, c if y is not None else 1, lengths=steps)
        series = means if y is not None else means[0]
        w.figure(S_GLOBAL, "time_importance.png", plots.time_importance(exp, y=y, series=series, class_names=names,
                                                                         classes=shown),
                 "For each class, how much each time step adds to (red) or takes from (blue) that class's logit, "
                 f"averaged over {'the samples of the class' if y is not None else 'all the explained samples (no labels given)'} (a step past a series' end counts too, with what its padding "
                 "adds against the baseline); grey: the class's mean input series, over the samples that reach each step.")
        w.figure(S_GLOBAL, "layer_time.png", plots.layer_time(exp, y=y, class_names=names, classes=shown),
                 "The same contributions split by layer: rows are layers, columns time steps.")
    w.figure(S_GLOBAL, "class_layer_summary.png", plots.class_layer_summary(exp, y=y, class_names=names, classes=shown),
             "How much of each class's decision each layer carries: the share of the absolute contributions to the "
             "class's logit that comes from each layer, on the samples of that class.")


def _zero_padding(xb: Tensor, lengths: Tensor | None) -> Tensor:
    """``xb [B, T, F]`` with the samples past each series' ``lengths`` set to 0 (NaN padding, which ``explain``
    accepts, made a step whose window holds some of it NaN in the series drawn under the steps)."""
    if lengths is None:
        return xb
    valid = torch.arange(xb.shape[1], device=xb.device) < torch.as_tensor(lengths, device=xb.device).reshape(-1, 1)
    return torch.where(valid[..., None], xb, torch.zeros((), dtype=xb.dtype, device=xb.device))


def _maps_like_input(exp, x: Tensor, model=None) -> bool:
    """Whether some site's code maps ``[B, C, *positions]`` lie on a grid of the input's rank. A
    transformer's token sites (``[B, C, N]``, class token included) have none: no spatial maps. Told by
    ``model``'s unit axes as well as by rank: over a series, tokens have the input's rank (see ``token_sites``)."""
    tokens = token_sites(model, exp, x)
    return any(m.dim() == x.dim() and s not in tokens for s, m in exp.code_maps.items())


def _gallery(w: _Writer, model: nn.Module, exp, bars: dict[int, int], faces: tuple, names: list[str]):
    """The gallery of every unit (step) the waterfalls show, from the training data, and its table; None (the table
    written) where its samples are neither series nor images, which no thumbnail draws."""
    w.bar.set_description_str("gallery of the waterfalls' units")
    units = []
    for i, k in bars.items():  # the picked samples, in order, and their waterfalls' bars
        units += [u for u in bar_units(exp, i, k) if u not in units]  # its bars, a series' padding as one
    g = unit_gallery(model, faces[0], units, k=4, max_samples=faces[1], baseline=exp.baseline)  # the waterfalls' baseline
    rows = [{"unit": g.names[r], "rank": j, "sample": int(g.index[r, j]), "value": float(g.value[r, j]),
             "class": names[int(g.y[r, j])] if g.y is not None else "",
             "window": " x ".join(f"{a}:{b}" for a, b in g.window[r, j].tolist())}
            for r in range(len(g)) for j in range(g.k) if int(g.index[r, j]) >= 0]  # an RNN step fewer reach: empty places
    w.table("unit_gallery.csv", rows, "the gallery: for every unit (step) of the waterfalls, its top training samples "
            f"(index in the training split), the value they were ranked by ({g.ranked_by}), their class and the "
            "window the unit reads (start:stop per input dimension)")
    w.bar.update(1)
    if len(shape := sample_shape(g)) not in (2, 3):  # only series and images are drawn (not an MLP's [F]): the table stays
        w.page.summary.append(f"The gallery's thumbnails are left out: its samples, of shape {shape}, are "
                              "neither series [C, T] nor images [C, H, W]; unit_gallery.csv lists each unit's top samples.")
        w.bar.total -= 1  # no unit_gallery.png
        return None
    return g


def _draw_samples(w: _Writer, model: nn.Module, exp, x: Tensor, xb: Tensor, y: Tensor | None, pred: Tensor,
                  bars: dict[int, int], names: list[str], gallery=None, where: dict[int, str] | None = None) -> None:
    """The figures of single decisions: one waterfall per picked sample (``bars``: the picked
    samples and their waterfalls' bars), and its maps or time course. ``where``: each picked sample's
    index in the data it was drawn from, as the titles name it (``"test #22"``)."""
    cnn, rnn = is_cnn(model), is_rnn(model)
    picks = list(bars)
    maps = None
    if cnn and picks:
        pick_t = torch.tensor(picks)
        maps = model.explain(x[pick_t], maps=True, baseline=exp.baseline)  # the waterfalls' baseline, not zero codes
    # a backbone that names its units (MiniRocket: kernel, dilation, bias) labels the bars with them
    namer = getattr(getattr(model, "backbone", None), "unit_names", None) if cnn else None
    unit_names = namer() if callable(namer) else None
    for j, i in enumerate(picks):
        truth = f", true {names[int(y[i])]}" if y is not None else ""
        at = where.get(i) if where is not None else None
        tag = i if at is None else f"{i} ({at})"  # "Sample 4 (test #22)"
        head = f"Sample {i} ({'' if at is None else at + '; '}predicted {names[int(pred[i])]}{truth})"
        label = int(y[i]) if y is not None else None
        w.figure(S_SAMPLES, f"waterfall_{i}.png",
                 plots.waterfall(exp, i, k=bars[i], class_names=names, label=label, gallery=gallery, unit_names=unit_names,
                                 sample_id=tag),
                 f"{head}: its predicted logit, built from its first bar (the baseline's logit; against zero codes, the "
                 f"bias) and the largest contributions "
                 f"({'units' if cnn else 'time steps'}); the last bar is the logit itself."
                 + (" Beside each bar, its top training samples, the window it reads in orange." if gallery is not None else ""))
        if cnn and maps is not None and xb.dim() in (3, 4) and _maps_like_input(maps, xb, model):
            w.figure(S_SAMPLES, f"spatial_maps_{i}.png",
                     plots.spatial_maps(maps, x[pick_t], j, class_names=names, label=label, sample_id=tag, net=model),
                     f"{head}: where its top units add to the logit, over the input as the network reads it (after the data "
                     "module's normalization, not in your file's units). Each map sums to the unit's contribution.")
        if rnn:
            length = int(exp.lengths[i]) if exp.lengths is not None else xb.shape[1]
            w.figure(S_SAMPLES, f"sample_time_{i}.png",
                     plots.sample_time(exp, i, label=label, series=xb[i, :length].cpu(), class_names=names, sample_id=tag),
                     f"{head}: per-step contributions to the predicted and the true class, the running logit "
                     "(bias plus the contributions so far), and the input as the network reads it (after the data module's "
                     "normalization).")
