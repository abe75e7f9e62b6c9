"""Explanations as tables: the class columns' names, the long ("tidy") rows of an explanation, and a pandas frame.

A table holds every class's rows (B x C x features dicts: about 310 bytes a number) where ``target`` is None, as
``by_site`` and ``direction_time`` read None; given ``target`` (an int or a ``[B]`` tensor of classes, read as
``Explanation.for_class`` reads it), each sample's rows for its class only: the very rows the full table holds for it.
The classes an explanation was asked for (else the predicted ones): ``target=exp.targets()``, which always resolves to
``[B]``; ``exp.target`` is None where none were asked or the explanation was made by hand (it gave every class).

Kept apart from :mod:`neuroview.core.explanation` (which re-exports :func:`class_labels` and
:func:`records_frame`) so that the tensors' class stays short. Imports only torch and core helpers.

>>> class_labels(3)
['class_0', 'class_1', 'class_2']
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ._utils import exact_values, name_sequence
from .readable_items import padded

__all__ = ["class_labels", "records_frame", "cnn_records", "feature_records", "rnn_records", "series_reads", "step_reads"]


def class_labels(num_classes: int, class_names: Sequence | None = None) -> list[str]:
    """Column names of the per-class columns: the class names, or ``class_0, class_1, ...``."""
    if class_names is None:
        return [f"class_{c}" for c in range(num_classes)]
    names = [str(n) for n in name_sequence(class_names)]
    if len(names) != num_classes:
        raise ValueError(f"class_names: expected {num_classes} names (one per class), got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"class_names: expected distinct names, got {names}")
    return names


def records_frame(records: list[dict]):
    """A pandas DataFrame of ``records`` (pandas is optional: ``pip install pandas``)."""
    try:
        import pandas as pd  # noqa: PLC0415 - optional dependency
    except ImportError as e:
        raise ImportError(
            "to_frame needs pandas, which neuroview does not require: pip install pandas "
            "(or use to_records() / write_csv(), which need nothing)"
        ) from e
    return pd.DataFrame.from_records(records)


def class_rows(exp, target: Any, full: Callable, picked: Callable) -> list[list[tuple[int, Any]]]:
    """Per sample, the ``(class, values)`` a table holds: every class's, from ``full()`` (``[B, C, ...]``), where
    ``target`` is None; else the class ``target`` gives the sample (``exp.targets``), from ``picked(classes)``
    (``[B, ...]``: no ``[B, C, ...]`` tensor is formed)."""
    if target is None:
        return [list(enumerate(row)) for row in exact_values(full()).tolist()]
    t = exp.targets(target)
    return [[(k, v)] for k, v in zip(t.tolist(), exact_values(picked(t)).tolist())]


def feature_records(exp, names: list, target: Any = None) -> list[dict]:
    """The rows of ``Explanation.to_records``: ``sample, class, feature, contribution`` (features flattened)."""
    per = class_rows(exp, target, lambda: exp.contributions.flatten(2), lambda t: exp.for_class(t).flatten(1))
    return [{"sample": i, "class": names[k], "feature": f, "contribution": v}
            for i, pairs in enumerate(per) for k, vals in pairs for f, v in enumerate(vals)]


def cnn_records(exp, names: list, target: Any = None) -> list[dict]:
    """The rows of ``CNNExplanation.to_records``: ``sample, class, site, channel, code, contribution``, and
    ``baseline`` (the unit's baseline code) where the explanation was taken against one, so that every row reads
    ``contribution == weight[class, unit] * (code - baseline)``: without it a unit that was off (code 0) showed a
    contribution that no weight times 0 gives. A (sample, class)'s contributions plus ``bias[class]`` (against a
    baseline: the baseline's own logit) sum to its logit."""
    per = class_rows(exp, target, lambda: exp.contributions, exp.for_class)
    # made from contributions alone (no codes): the code column holds None
    codes = exact_values(exp.codes).tolist() if exp.codes is not None else [[None] * len(exp.units)] * len(per)
    base = exact_values(exp.baseline).reshape(-1).tolist() if exp.baseline is not None else None
    rows = []
    for i, pairs in enumerate(per):
        for k, contrib in pairs:
            for u, (s, ch) in enumerate(exp.units):
                row = {"sample": i, "class": names[k], "site": s, "channel": ch, "code": codes[i][u]}
                if base is not None:
                    row["baseline"] = base[u]
                row["contribution"] = contrib[u]
                rows.append(row)
    return rows


def rnn_records(exp, names: list, target: Any = None) -> list[dict]:
    """The rows of ``RNNExplanation.to_records``: ``sample, class, layer, direction, step``, ``input_samples`` where a
    step reads a window of them (``window > 1``: "48:51" for step 16 of a window of 3; a step that reads past its
    series' end, padding, cut there (:func:`series_reads`): "8:10" for step 2 of a window of 4 over 10 samples, and
    "padding" for a step wholly past it), against a baseline
    ``padding`` (True at a step past the series' end, ``exp.lengths``: no input, its contribution the constant
    ``-W baseline``, not evidence; against zero such rows add exactly 0), ``contribution`` (summed over hidden features;
    against a baseline, taken against it). A target's rows sum each class's own features (``direction_time(target)``):
    their contributions equal the full table's to float rounding; padding rows included, they sum to the logit."""
    per = class_rows(exp, target, exp.direction_time, exp.direction_time)  # [B, C, L, D, T] or [B, L, D, T]
    steps_of = exp.codes.shape[3] if exp.codes is not None else exp.time_importance.shape[-1]
    pad = padded(exp.lengths, len(per), steps_of) if exp.baseline is not None else None
    pad = None if pad is None else pad.tolist()
    reads = [["padding" if r is None else "{}:{}".format(*r) for r in rs]
             for rs in series_reads(exp, steps_of, range(len(per)))] if exp.window > 1 else None
    return [{"sample": i, "class": names[k], "layer": layer, "direction": d, "step": s}
            | ({"input_samples": reads[i][s]} if exp.window > 1 else {})
            | ({"padding": pad[i][s]} if pad is not None else {})
            | {"contribution": v}
            for i, pairs in enumerate(per) for k, dt in pairs for layer, dirs in enumerate(dt)
            for d, steps in enumerate(dirs) for s, v in enumerate(steps)]


def series_reads(exp, t: int, rows: Sequence[int]) -> list[list[tuple[int, int] | None]]:
    """Per sample of ``rows``, per step of ``t``, the ``(start, stop)`` of the input samples it reads, cut at the
    series' own end (``exp.input_lengths``, else ``max_len``; a step that runs past it reads zero padding there), or
    None for a step wholly past the series' end (past ``exp.lengths``, in steps): it reads no sample of the series.
    Without ``input_lengths`` (a file of an earlier neuroview) a series' last step is cut at ``max_len`` only."""
    b = exp.logits.shape[0]
    ends = exp.input_lengths.tolist() if getattr(exp, "input_lengths", None) is not None else [exp.max_len] * b
    pad = padded(exp.lengths, b, t)
    out = []
    for i in rows:
        past = [False] * t if pad is None else pad[i].tolist()
        out.append([None if past[s] or (r := step_reads(s, exp.window, ends[i]))[0] == r[1] else r for s in range(t)])
    return out


def step_reads(t: int, window: int, max_len: int | None = None) -> tuple[int, int]:
    """``(start, stop)`` of the input samples step ``t`` reads: ``window`` of them, the last step's cut at ``max_len``
    (the network's length in samples; past it the step reads zero padding).

    >>> step_reads(1, 4, 10), step_reads(2, 4, 10), step_reads(2, 4)
    ((4, 8), (8, 10), (8, 12))
    """
    stop = (t + 1) * window
    return t * window, stop if max_len is None else max(t * window, min(stop, int(max_len)))
