"""What the ``neuroview explain`` report says, computed apart from drawing and writing it.

Holds the explanation of a whole batch (:func:`explain_batches`), the samples that get their own
figures (:func:`pick_examples`), the page's outline (:class:`Page`), the rows of the predictions
table, the summary lines and the ``report.json`` facts; plus the checks the writer and the
command line share. Nothing here draws, renders HTML or writes a file.

Imports: torch, tqdm, :mod:`neuroview._batch`, :mod:`neuroview.core`, :mod:`neuroview.attribution`.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._batch import caller_stacklevel, check_lengths
from .._version import __version__
from ..attribution.importance import is_rnn
from ..core._utils import as_labels, positive_int, refuse_bools
from ..core.explanation import CNNExplanation, Explanation, RNNExplanation, step_reads
from ..core.explanation_checks import text_key
from ..core.explanation_rnn import joined_input_lengths
from ..core.rnn_steps import dead_features
from .report_out import content

__all__ = ["explain_batches", "pick_examples", "Page"]


def progress_bar(total: int, desc: str, enabled: bool) -> tqdm:
    """A tqdm bar on stderr (disabled, it counts without drawing). It stays on screen when done,
    so its last line is what happened: the count of steps done over the steps planned."""
    return tqdm(total=total, desc=desc, unit="step", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def seconds(s: float) -> str:
    """A duration as a person reads it: ``12.3 s``, ``420 ms``, ``3 ms``; never a bare ``0.0 s``."""
    if s >= 0.95:
        return f"{s:.1f} s"
    return f"{1000 * s:.0f} ms" if s >= 0.001 else "under 1 ms"


def batch_first(model: nn.Module, x: Tensor) -> Tensor:
    """An RNN's input in ``[B, T, F]`` whatever the model's own layout."""
    return x if getattr(model, "batch_first", True) else x.transpose(0, 1)


# Swapping the first two dimensions is its own inverse: the same function turns a batch-first
# input back into the model's own layout.
model_layout = batch_first


def check_out(out_dir: Path, overwrite: bool) -> None:
    """Refuse an output folder that is a file, or not empty without ``overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"out_dir (--out): expected a folder, got the file {str(out_dir)!r}")
    if out_dir.is_dir() and not overwrite and content(out_dir):  # a report's staging folder is no content
        raise FileExistsError(
            f"out_dir (--out): {str(out_dir)!r} is not empty; pick a new folder or pass overwrite=True (--overwrite) to write over it"
        )


def check_inputs(model: nn.Module, x: Tensor, lengths=None) -> None:
    """Refuse a model with no ``explain`` and an ``x`` that is no batch tensor; ``lengths``: :func:`unread_lengths`."""
    if not hasattr(model, "explain"):
        raise TypeError(f"model: expected a NeuroView network with .explain (NeuroViewCNN, NeuroViewRNN), got {type(model).__name__}")
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise TypeError(f"x: expected a batch tensor in the model's input layout, got {type(x).__name__ if not isinstance(x, Tensor) else tuple(x.shape)}")
    unread_lengths(model, x, lengths)


def unread_lengths(model: nn.Module, x: Tensor, lengths) -> None:
    """``lengths`` given for a network that reads none (a CNN reads the padded series whole): checked as readability
    checks a batch's (one integer per sample in ``[1, T]``), then one warning that the report does not use them;
    they were ignored without a word, even 2 lengths for 6 samples."""
    if lengths is None or is_rnn(model):
        return
    try:
        check_lengths(lengths, x, "lengths")
    except ValueError:
        try:
            t = torch.as_tensor(lengths)
            got = f"shape {tuple(t.shape)}, {t.dtype}"
            got += f", values {t.min().item()} to {t.max().item()}" if t.numel() else ""
        except (TypeError, ValueError, RuntimeError):
            got = type(lengths).__name__
        raise ValueError(f"lengths: expected one integer per sample of x ({len(x)}) in [1, {x.shape[-1]}] (the "
                         f"steps of x), got {got}") from None
    warnings.warn(f"lengths: a {type(model).__name__} reads each series whole, padding included; the report does not "
                  "use lengths (a NeuroView-RNN's)", UserWarning, stacklevel=caller_stacklevel())


def check_options(n: int, batch_size, examples, gallery_samples, sample_indices, shape: tuple | None = None) -> list[int] | None:
    """Refuse ``write_report``'s counts where they are no counts (``batch_size=0`` ended in a bare ZeroDivisionError,
    ``examples=-1`` was read as 0, ``gallery_samples=0`` was named ``max_samples``); ``sample_indices`` as ``n`` ints;
    ``n == 0`` samples (``shape``: x's) by name."""
    if n == 0:
        refuse_empty(shape)
    positive_int(batch_size, "batch_size (--batch-size)")
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 0:
        raise ValueError(f"examples (--examples): expected an int >= 0, got {examples!r}")
    positive_int(gallery_samples, "gallery_samples (--gallery-samples)", none=True)
    if sample_indices is None:
        return None
    refuse_bools(sample_indices, "sample_indices", "a mask: pass np.flatnonzero(mask), the indices of its True samples",
                 "integer indices, one per sample of x")  # (as_labels' hint named classes)
    ids = as_labels(sample_indices, "sample_indices").reshape(-1).tolist()
    if len(ids) != n or any(i < 0 for i in ids):
        raise ValueError(f"sample_indices: expected {n} indices >= 0 (one per sample of x, its index in the data it was "
                         f"drawn from), got {len(ids)} values" + (", some negative" if any(i < 0 for i in ids) else ""))
    return ids


def refuse_empty(shape: tuple | None) -> None:
    """The error for an ``x`` of no sample (a filter that kept none, ``x[y == c]``): ``explain_batches`` ended in a
    bare IndexError after its loop ran zero times."""
    got = f"of shape {tuple(shape)}" if shape is not None else "(0 samples)"
    raise ValueError(f"x: expected at least one sample to explain, got an empty batch {got}")


def check_labels(y: Tensor | None, n: int, num_classes: int | None = None) -> Tensor | None:
    """``y`` as ``n`` long class labels on the CPU (None stays None), each in ``[0, num_classes)`` when given."""
    if y is None:
        return None
    y = as_labels(y, "y", num_classes).reshape(-1).cpu()  # bools: classes 0 and 1 of a 2-class network
    if y.shape[0] != n:
        raise ValueError(f"y: expected {n} labels (one per sample of x), got {y.shape[0]}")
    bad = (y < 0) | (y >= num_classes) if num_classes is not None else torch.zeros(0, dtype=torch.bool)
    if bool(bad.any()):  # before the work: a label past the last class ended in a bare IndexError after it
        raise ValueError(f"y: expected class indices in [0, {num_classes}) (the model's classes), "
                         f"got {sorted(torch.unique(y[bad]).tolist())}")
    return y


def explain_batches(model: nn.Module, x: Tensor, *, lengths: Tensor | None = None, batch_size: int = 64,
                    bar=None, baseline: Tensor | str | None = None) -> Explanation:
    """``model.explain`` over ``x`` in batches, concatenated into one explanation (no code maps, and
    no dense ``[B, C, ...]`` tensor: the codes and one weight matrix).

    ``x`` is in the model's own layout (an RNN's ``[T, B, F]`` when it is not batch-first);
    ``baseline`` is passed to ``explain`` (the codes the contributions are taken against).
    """
    rnn = is_rnn(model)
    xb = batch_first(model, x) if rnn else x
    kw = {} if baseline is None else {"baseline": baseline}
    if xb.shape[0] == 0:
        refuse_empty(x.shape)
    parts = []
    for start in range(0, xb.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        if rnn:
            exp = model.explain(model_layout(model, xb[sl]), lengths=None if lengths is None else lengths[sl], **kw)
        else:
            exp = model.explain(xb[sl], **kw)
        parts.append(exp)
        if bar is not None:
            bar.update(1)
    first = parts[0]
    cat = {k: torch.cat([getattr(p, k) for p in parts]) for k in ("logits", "codes", "target")}
    common = cat | {"bias": first.bias, "weight": first.weight, "baseline": first.baseline}
    if isinstance(first, CNNExplanation):
        return CNNExplanation(**common, units=first.units, site_slices=first.site_slices)
    if isinstance(first, RNNExplanation):
        # batches may stop at different lengths; the classifier's max_len is the same for all. No time_importance=:
        # one passed in counts as given (saved, and carried stale by dataclasses.replace); formed from codes and weight
        return RNNExplanation(**common, lengths=torch.cat([p.lengths for p in parts]), window=first.window,
                              max_len=first.max_len, input_lengths=joined_input_lengths(parts))
    return Explanation(**common)


def readability_lines(model: nn.Module, exp: Explanation, basis: str) -> list[str]:
    """The page's first sentences: how many contributions a decision leans on (k90, the top-10
    share) and how many units each class reads, against which baseline."""
    rnn = is_rnn(model)
    what = "hidden states" if rnn else "units"
    n = exp.codes[0].numel()
    upc = float((model.effective_classifier()[0] != 0).sum(1).float().mean())
    line = (f"Readability: 90% of a decision's evidence (|contributions| to the predicted logit) comes from "
            f"{exp.k90():g} {what} (median k90, of {n:,}); the 10 largest carry {100 * exp.top_share(10):.0f}% (median)")
    if rnn:
        line += f"; counted in time steps, k90 is {exp.k90(level='steps'):g} of {exp.weight.shape[3]}"
    return [line + ".", f"Each class reads {upc:,.1f} {what} on average (nonzero weights of the global classifier). "
            f"Contributions are taken against {basis}, so the first bar of a waterfall is that reference's logit."]


def pick_examples(predicted: Tensor, y: Tensor | None, n: int) -> list[int]:
    """``min(n, len(predicted))`` sample indices worth a per-sample figure: correct ones of distinct
    classes and the first mistake when there is one (the most instructive picture of all); when the
    classes run out before ``n``, further samples in order (mistakes first) make up the number."""
    if n <= 0:
        return []
    if y is None:
        seen, first = set(), []
        for i, p in enumerate(predicted.tolist()):
            if p not in seen:
                seen.add(p)
                first.append(i)
        return _fill(first[:n], list(range(len(predicted))), n)
    wrong = (predicted != y).nonzero().flatten().tolist()
    right, seen = [], set()
    for i in (predicted == y).nonzero().flatten().tolist():
        if int(y[i]) not in seen:
            seen.add(int(y[i]))
            right.append(i)
    picks = right[: n - 1] + wrong[:1] if wrong else right[:n]
    return _fill(picks, wrong + list(range(len(predicted))), n)


def _fill(picks: list[int], more: list[int], n: int) -> list[int]:
    """``picks`` made up to ``n`` from ``more`` (in its order, without repeats), sorted."""
    out = list(dict.fromkeys(picks))
    for i in more:
        if len(out) >= n:
            break
        if i not in out:
            out.append(i)
    return sorted(out)


@dataclass
class Page:
    """What index.html lists: sections of captioned figures, and the data files."""

    title: str
    summary: list[str]
    figures: list[tuple[str, str, str]] = field(default_factory=list)  # (section, file, caption)
    data: list[tuple[str, str]] = field(default_factory=list)  # (file, description)


def summary_lines(n: int, explain_s: float, residual: float, pred: Tensor, y: Tensor | None) -> list[str]:
    """The page's opening sentences: accuracy (with labels), time taken, and how exact the sums are."""
    lines = [f"{n} samples explained in {seconds(explain_s)}; prediction = bias + contributions, "
             f"largest gap {residual:.2g} (float rounding)."]
    if y is not None:
        acc = float((pred == y).float().mean())
        lines.insert(0, f"Accuracy on these samples: {100 * acc:.1f}% ({int((pred == y).sum())}/{n}).")
    return lines


def prediction_rows(exp: Explanation, pred: Tensor, y: Tensor | None, names: list[str], cols: list[str],
                    ids: list[int] | None = None) -> list[dict]:
    """One row per sample: its position in the batch (``sample``, as the figures number it), its index in
    the data it was drawn from (``split_index``: ``ids``, default the position), its true and predicted
    class, and every logit (columns ``logit <class>``)."""
    rows = []
    logits = exp.logits.detach().cpu().tolist()
    for i in range(len(logits)):
        row = {"sample": i, "split_index": i if ids is None else int(ids[i]),
               "true": names[int(y[i])] if y is not None else "", "predicted": names[int(pred[i])]}
        rows.append(row | {f"logit {c}": v for c, v in zip(cols, logits[i])})
    return rows


def report_meta(page: Page, about: dict, kind: str, names: list[str], pred: Tensor, y: Tensor | None,
                residual: float, picks: list[int], ids: list[int] | None = None) -> dict:
    """What ``report.json`` holds: the model and data (``about``), accuracy, the samples' indices in the data
    they were drawn from (``ids``, default their positions), and every file with its caption."""
    return {
        "neuroview": __version__,
        "kind": kind,
        **about,
        "samples": len(pred),
        "class_names": names,
        "accuracy": float((pred == y).float().mean()) if y is not None else None,
        "max_abs_residual": residual,
        "examples": picks,
        "sample_indices": list(range(len(pred))) if ids is None else ids,  # each sample's index in the data it came from
        "figures": [{"file": f, "section": s, "caption": c} for s, f, c in page.figures],
        "tables": [{"file": f, "description": d} for f, d in page.data],
    }


#: every name :func:`~neuroview.viz.report_writer.write_report` writes: all an earlier report's files may be
_REPORT_NAMES = re.compile(
    r"(unit_heatmap|top_units|time_importance|layer_time|class_layer_summary|unit_gallery"
    r"|(waterfall|spatial_maps|sample_time)_\d+)\.png"
    r"|(predictions|layer_shares|unit_importance|time_importance|layer_time|time_weights|unit_gallery)\.csv"
    r"|explanation\.(safetensors|json)|report\.json|index\.html")


def report_files(out: Path) -> set[str]:
    """The files an earlier neuroview report in ``out`` lists in its ``report.json`` (its figures and tables);
    empty where there is none, it cannot be read, or it is not a neuroview report's (another tool's report.json
    listed the user's own files, which went). Only names a report writes: never a file of the user's."""
    try:
        meta = json.loads((out / "report.json").read_text(encoding="utf-8"))
        ours = isinstance(meta.get("neuroview"), str) and isinstance(meta.get("kind"), str) and "sample_indices" in meta
        listed = [d.get("file") for d in meta.get("figures", []) + meta.get("tables", [])] if ours else []
    except (OSError, ValueError, AttributeError, TypeError):
        return set()
    return {f for f in listed if isinstance(f, str) and _REPORT_NAMES.fullmatch(f)}


#: the fixed columns of the report's wide tables (unit_importance: site, channel; time tables: layer, step, and with a
#: window the steps' input samples)
_TABLE_COLUMNS = ("site", "channel", "step", "layer", "input_samples")


def step_samples(rows: list[dict], window: int, max_len: int | None = None) -> list[dict]:
    """``rows`` of a time table with ``input_samples`` ("48:51": start:stop of the input samples the step reads)
    after ``step`` where a step reads a window of samples: "step 16" read as sample 16 was samples 48 to 50. The last
    step stops at ``max_len`` (the network's samples), where its window runs on into zero padding."""
    if window <= 1:
        return rows
    out = []
    for r in rows:
        t = r["step"]
        out.append({k: v for k, v in r.items() if k in ("layer", "step")} | {"input_samples": "{}:{}".format(*step_reads(t, window, max_len))}
                   | {k: v for k, v in r.items() if k not in ("layer", "step")})
    return out


def weight_caption(model: nn.Module, step: str, cols_note: str) -> str:
    """The caption of ``time_weights.csv``: what a global weight is, and which weights are no importance, reported as 0
    (steps no training series reached, hidden features constant over training; without a normalization nothing
    tells, which the caption says)."""
    mask = model.unreached_steps() if hasattr(model, "unreached_steps") else None
    gone = [] if mask is None else mask.nonzero().flatten().tolist()
    why = ("the network has no normalization" if getattr(model, "norm", None) is None else
           "its normalization has seen no training batch") if hasattr(model, "unreached_steps") else "the network does not say"
    reach = (f"{why}, so nothing records which steps training reached: a step few training series reach keeps "
             "near-initial weights, compare time_importance.csv" if mask is None else
             f"steps {_ranges(gone)}: no training series reached them, their weights never trained, reported as 0"
             if gone else "every step was reached by training series")
    shape = getattr(model, "feature_shape", None)
    dead = dead_features(model.norm, shape) if mask is not None and shape is not None else 0
    reach += ("; the statistics are in low precision, which cannot tell hidden features constant over training (none "
              "left out)" if dead is None else f"; {dead} hidden features were constant over training (dead): their "
              "weights never trained either, left out of their steps' norms (0)" if dead else "")
    return (f"one row per {step}{cols_note}: the global weight of each class (Euclidean norm over the step's hidden "
            f"features), what the step can move a logit by, not what moved it (time_importance.csv); {reach}")


def _ranges(steps: list[int]) -> str:
    """``[6, 7, 8, 12]`` as ``"6-8, 12"``."""
    runs: list[list[int]] = []
    for t in steps:
        if runs and t == runs[-1][1] + 1:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


def table_names(names: list[str]) -> list[str]:
    """The class columns of the wide tables: a class named like a fixed column ("step") as ``"step (class)"``,
    as a site named "class" is renamed in layer_shares.csv (the tables refused it, after the explanation); where
    that name is another class's, ``"step (class) 2"`` (:func:`free_names`)."""
    return free_names(names, _TABLE_COLUMNS, "class")


def free_names(names: list[str], fixed: tuple[str, ...], kind: str) -> list[str]:
    """``names`` with each that is one of the table's ``fixed`` columns renamed ``"<name> (<kind>)"``, else the first
    of ``"<name> (<kind>) 2"``, ``3``, ... that is free of every other name and column (as they read once written:
    :func:`~neuroview.core.explanation_checks.text_key`). Sites "class" and "class (site)" were both written
    "class (site)": one's share lost, the other's written twice; classes "step" and "step (class)" refused.

    >>> free_names(["class", "class (site)", "act"], ("class",), "site")
    ['class (site) 2', 'class (site)', 'act']
    """
    taken = {text_key(n) for n in (*names, *fixed)}
    out = []
    for n in names:
        if n in fixed:
            n = next(c for k in itertools.count(1) if text_key(c := f"{n} ({kind})" + (f" {k}" if k > 1 else "")) not in taken)
            taken.add(text_key(n))
        out.append(n)
    return out


def drawn_classes(exp: Explanation, y: Tensor | None, cap: int = 30) -> tuple[list[int], str]:
    """``(classes, note)``: the classes a figure of every class's units (the model's weights) draws: every class up to
    ``cap`` classes (the note empty); past ``cap`` the classes present (with a sample in ``y``, else predicted), at most
    ``cap`` of them (the most frequent), in index order, and ``note`` says so on the page. At 1,000 classes
    ``top_units`` ran past 400 s and the heatmap's labels made a black bar; at 10, the weights of a class missing from
    a small batch are still worth drawing (they cost nothing)."""
    c = exp.num_classes
    if c <= cap:
        return list(range(c)), ""
    seen = torch.bincount((y if y is not None else exp.predicted).reshape(-1).long().cpu(), minlength=c)
    present = seen.nonzero().flatten()
    keep = sorted(present[torch.sort(-seen[present], stable=True).indices[:cap]].tolist())
    if len(present) > cap:
        what = (f"with the most samples here ({len(present)} have one)" if y is not None else
                f"predicted most often here ({len(present)} are predicted)")
    else:
        what = "with a sample here" if y is not None else "predicted for a sample here"
    return keep, f" Drawn: the {len(keep)} {'class' if len(keep) == 1 else 'classes'} {what}, of {c}."
