"""Importance as data: tables (records, CSV, pandas) and explanations saved to disk.

Tables are lists of dicts (one dict a row), so they need nothing beyond the standard library;
:func:`to_frame` turns them into a pandas DataFrame when pandas is installed. Numbers are
written with Python's shortest round-trip ``repr``, so a CSV read back gives the same float32
values as the tensors it came from; bools and None (an RNN record's ``padding``) read back as themselves.

Explanations are saved as safetensors (the tensors) plus a JSON sidecar (what kind of
explanation, its units and sites): no pickle, so loading one never runs code.
Imports: :mod:`neuroview._io`, :mod:`neuroview.core` and :mod:`.importance`; safetensors and
pandas (optional) inside the functions that use them.

>>> import torch, tempfile, os, neuroview as nv
>>> from torch import nn
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3).eval()
>>> exp = net.explain(torch.randn(2, 1, 16))
>>> rows = exp.to_records()
>>> len(rows), sorted(rows[0])
(24, ['channel', 'class', 'code', 'contribution', 'sample', 'site'])
>>> path = os.path.join(tempfile.mkdtemp(), "exp.safetensors")
>>> exp.save(path)
>>> torch.equal(nv.Explanation.load(path).contributions, exp.contributions)
True
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from .._io import atomic_write
from ..core import saving
from ..core._utils import exact_values
from ..core.explanation import Explanation, class_labels, records_frame
from ..core.explanation_checks import table_names
from ..core.user_path import expand, printable
from .importance import layer_time_weights, time_weights, unit_weights

__all__ = [
    "explanation_records",
    "unit_records",
    "time_records",
    "layer_time_records",
    "to_frame",
    "write_csv",
    "read_csv",
    "write_json",
    "save_explanation",
    "load_explanation",
]

FORMAT, VERSION = saving.FORMAT, saving.VERSION


# ------------------------------------------------------------------------- tables
def _wide(fixed: list[dict], values: Tensor, class_names: Sequence | None) -> list[dict]:
    """Rows ``fixed[i] | {class: values[c, i]}`` for ``values [C, N]``; names that read alike once written (``' a'`` and
    ``'a'``) refused, as ``to_records`` refuses them: one reader's two columns were another's one."""
    c = values.shape[0]
    cols = class_labels(c) if class_names is None else table_names(c, class_names)
    clash = set(cols) & set(fixed[0] if fixed else ())
    if clash:
        raise ValueError(f"class_names: {sorted(clash)} clash with the table's own columns {list(fixed[0])}")
    vals = exact_values(values).T.tolist()  # float64 kept, as to_records keeps it (a float32 cast moved sums by 1e-8)
    return [f | dict(zip(cols, v)) for f, v in zip(fixed, vals)]


def unit_records(source, class_names: Sequence | None = None, *, standardized: bool | None = None) -> list[dict]:
    """One row per unit: ``site, channel, <one weight column per class>``.

    ``source`` is a NeuroView-CNN (its global weights, standardized unless ``standardized=False``) or a
    CNNExplanation (its effective weight; ``standardized=True`` is refused there): see
    :func:`neuroview.attribution.importance.unit_weights`.
    """
    w, units, _ = unit_weights(source, standardized=standardized)
    return _wide([{"site": s, "channel": ch} for s, ch in units], w, class_names)


def time_records(source, class_names: Sequence | None = None, **kw) -> list[dict]:
    """One row per time step: ``step, <one importance column per class>`` (sources and
    keywords as in :func:`neuroview.attribution.importance.time_weights`)."""
    w = time_weights(source, **kw)
    return _wide([{"step": t} for t in range(w.shape[1])], w, class_names)


def layer_time_records(source, class_names: Sequence | None = None, **kw) -> list[dict]:
    """One row per (layer, step): ``layer, step, <one importance column per class>``."""
    w = layer_time_weights(source, **kw)
    c, n_layers, t = w.shape
    fixed = [{"layer": layer, "step": s} for layer in range(n_layers) for s in range(t)]
    return _wide(fixed, w.reshape(c, n_layers * t), class_names)


def explanation_records(exp: Explanation, class_names: Sequence | None = None, *,
                        target: Tensor | int | None = None) -> list[dict]:
    """Long ("tidy") table of an explanation's contributions, one row per number (all classes, or with ``target``,
    an int or a ``[B]`` tensor of classes, each sample's rows for its class only: ``target=exp.targets()`` for the
    explained ones; :meth:`~neuroview.core.explanation.Explanation.to_records`).

    - CNNExplanation: ``sample, class, site, channel, code, contribution``;
    - RNNExplanation: ``sample, class, layer, direction, step, contribution`` (summed over
      hidden features);
    - any other: ``sample, class, feature, contribution`` (features flattened).

    ``class`` holds the class name when ``class_names`` is given, else the class index.
    """
    if not isinstance(exp, Explanation):
        raise TypeError(f"exp: expected an Explanation, got {type(exp).__name__}")
    return exp.to_records(class_names, target=target)


def to_frame(records: list[dict]):
    """A pandas DataFrame of ``records`` (pandas is optional: ``pip install pandas``)."""
    return records_frame(records)


# ----------------------------------------------------------------------- writing
def _file(path, example: str) -> Path:
    """``path`` as a file's, or a ValueError naming it: a folder or an empty path gave the atomic write's raw OSError
    naming its temporary file. (The rule of ``core.saving.paths``, whose check is bound to the .safetensors suffix.)"""
    given = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
    if not isinstance(given, str):
        raise TypeError(f"path: expected a str or os.PathLike file name, got {type(path).__name__} {path!r:.60}")
    file = expand(given) if given.strip() else None  # "~/t.csv": the home folder's, not ./~/t.csv
    if file is None or given.endswith(("/", os.sep)) or file.is_dir():
        what = "an empty path" if not given.strip() else "a folder"
        raise ValueError(f"path: expected a file name, got {given!r}, {what}; name a file, e.g. "
                         f"{str(Path(given.strip() or '.') / example)!r}")
    return file


def _written(target: Path, data: bytes) -> Path:
    """``data`` written to ``target`` atomically. A folder that takes no new file (read-only, immutable) is said naming
    ``path``, the file asked for: the writer's bare PermissionError named its hidden temporary file beside it."""
    try:
        atomic_write(target, data)
    except PermissionError as e:
        raise PermissionError(e.errno, f"path: {e.strerror}: its folder {str(target.parent)!r} takes no new file "
                              "(read-only?)", str(target)) from e
    return target


def _cell(v, i: int, k) -> str:
    """Row ``i``'s cell ``k`` as text: a number (Python, numpy, a 0-dim tensor) as a plain int or float,
    the float as Python's shortest round-trip ``repr`` (``str`` gave ``np.float64(0.5)``, ``tensor(0.1235)``)."""
    if hasattr(v, "item") and getattr(v, "ndim", None) == 0:  # a numpy scalar, a 0-dim tensor or array
        v = v.item()
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return str(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        return repr(float(v))  # shortest string that reads back as the same float
    if isinstance(v, Iterable) or hasattr(v, "shape"):  # str(v) of a list or tensor reads back as text, not numbers
        got = type(v).__name__ + (f" of shape {tuple(v.shape)}" if hasattr(v, "shape") else
                                  f" of {len(v)} items" if hasattr(v, "__len__") else "")
        raise ValueError(f"records: expected one number or string per cell, got a {got} in row {i}, column {k!r}")
    return str(v)


def _rows(records) -> list[Mapping]:
    """``records`` as a list of rows, each checked to be a mapping (a dict gave a bare TypeError, lists an IndexError)."""
    if isinstance(records, Mapping):
        raise TypeError(f"records: expected rows (an iterable of dicts, one a row), got a {type(records).__name__}; "
                        "pass [records] for one row")
    records = list(records)
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise TypeError(f"records: expected each row to be a dict (column -> value), got a {type(r).__name__} in row {i}")
    return records


def write_csv(path, records: Iterable[Mapping], columns: Sequence[str] | None = None) -> Path:
    """Write ``records`` as UTF-8 CSV (header = ``columns`` or the first row's keys), atomically; text that is not
    UTF-8 (a lone surrogate) as :func:`~neuroview.core.user_path.printable` writes it, ``caf\\xe9``, as the report's page shows it.

    Without ``columns`` every row must have the first row's keys, no fewer and no more (a later row's
    extra key was dropped without a word); with them, other keys are left out."""
    target = _file(path, "table.csv")
    records = _rows(records)
    given = columns is not None
    if isinstance(columns, (str, bytes)):  # its letters were read as the column names
        raise TypeError(f"columns: expected a sequence of column names, got the string {columns!r:.60}; pass "
                        f"[{columns!r:.60}] for one column")
    if given:
        columns = list(columns)  # an iterator would be spent by the header
    else:
        if not records:
            raise ValueError("records: expected at least one row (or pass columns=) to know the header")
        columns = list(records[0])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([printable(k) if isinstance(k, str) else k for k in columns])
    for i, r in enumerate(records):
        missing = [k for k in columns if k not in r]
        if missing:
            raise ValueError(f"records: row {i} lacks the columns {missing} (the header: {list(columns)}); give every "
                             "row the same keys, or pass columns=")
        extra = [] if given else [k for k in r if k not in columns]
        if extra:
            raise ValueError(f"records: expected the keys of row 0 {list(columns)} in every row, got the extra keys "
                             f"{extra} in row {i}; give every row the same keys, or pass columns=")
        writer.writerow([printable(_cell(r[k], i, k)) for k in columns])
    return _written(target, buf.getvalue().encode("utf-8"))


#: Columns that hold names, kept as text even when a name looks like a number (a site "3") or a word of
#: :data:`_WORDS` (a class "True"): those of the report's tables and of Lightning's ``predictions.csv`` and
#: ``confusion_matrix.csv``. Not ``target`` / ``pred``: they hold numbers in most files (a ``predictions.csv`` of a
#: data module naming no classes or of an earlier version, a user's own table): :func:`read_csv` keeps them text only
#: in a ``predictions.csv`` of named classes, told by its ``target_index`` and ``pred_index`` columns.
TEXT_COLUMNS = ("site", "class", "true", "predicted", "target_name", "pred_name", "true\\predicted")


#: The cells :func:`_cell` writes for ``True``, ``False`` and ``None``, read back as those values (the strings were
#: truthy: an RNN record's ``padding``, a sparsity path's ``chosen``, a ``code`` of None all read as true).
_WORDS = {"True": True, "False": False, "None": None}


def read_csv(path, text_columns: Sequence[str] = TEXT_COLUMNS) -> list[dict]:
    """Rows of a CSV written by :func:`write_csv`: numbers parsed back to int or float where a cell is spelled as
    ``write_csv`` writes one (``str`` of an int, ``repr`` of a float: ``-0.0``, ``1e-08``, ``inf``, ``nan``), the
    text Python's ``int()`` and ``float()`` also read kept as written (``"1_0"``, ``"007"``, ``" 7"``, ``"Infinity"``,
    digits of other scripts: one reading of them made ids ``"1_0"`` and ``"10"`` one number); the cells ``True``,
    ``False`` and ``None`` (as ``write_csv`` writes bools and None) to those values in a column where every non-empty
    cell is one of them; beside other text or numbers they stay text (a name "True" beside a name "cat"). Nothing
    is parsed in ``text_columns``. A column of names that are all such words (classes "False" / "True", a "None"
    class) reads as bools and None: keep it text with ``text_columns=(*export.TEXT_COLUMNS, "label")``. In a
    ``predictions.csv`` of named classes (one with ``target_index`` and ``pred_index`` columns) ``target`` and ``pred``
    are names and stay text too, whatever ``text_columns``; elsewhere they are parsed as any other column is."""
    def number(s: str):  # only as _cell writes one: "1_0", "\u0661", " 7", "Infinity", "007" are text int() read
        for kind, spelled in ((int, str), (float, repr)):
            try:
                v = kind(s)
            except ValueError:
                continue
            if spelled(v) == s:
                return v
        return s

    if isinstance(text_columns, (str, bytes)):  # its letters were read as the column names
        raise TypeError(f"text_columns: expected a sequence of column names, got the string {text_columns!r:.60}; "
                        f"pass [{text_columns!r:.60}] for one column")
    path = expand(path) if isinstance(path, (str, os.PathLike)) else path  # "~/t.csv": as write_csv wrote it
    with open(path, newline="", encoding="utf-8") as f:  # write_csv writes UTF-8, whatever the locale
        reader = csv.DictReader(f)
        rows = list(reader)
        header = set(reader.fieldnames or ())
    # target/pred are names only beside the output numbers; always text, they read the numbers of an unnamed or older
    # predictions.csv and of a user's own table as text
    text_columns = {*text_columns, *({"target", "pred"} if {"target_index", "pred_index"} <= header else ())}
    # a name column's "True" beside "cat" read as the bool True, a column of str and bool: only whole columns of words
    words = {k for k in (rows[0] if rows else ()) if k not in text_columns
             and all(r[k] in _WORDS or r[k] == "" for r in rows) and any(r[k] in _WORDS for r in rows)}
    return [{k: v if k in text_columns else _WORDS.get(v, v) if k in words else number(v) for k, v in row.items()}
            for row in rows]


def _finite(obj, at: str = ""):
    """``obj`` with every number as a plain Python one (a numpy scalar, a 0-dim tensor: as :func:`_cell` writes them)
    and every non-finite float (NaN, inf) as None, through dicts, lists and tuples; an array or tensor with
    dimensions is refused by where it sits (``at``), as ``write_csv`` refuses it by column."""
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # a numpy scalar, a 0-dim tensor or array
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {_json_key(k, at, seen): _finite(v, f"{at}[{k!r}]") for seen in [{}] for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v, f"{at}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "shape") and hasattr(obj, "tolist"):  # json's own error named neither the key nor the fix
        raise ValueError(f"obj: expected numbers, strings, lists and dicts, got a {type(obj).__name__} of shape "
                         f"{tuple(obj.shape)} at {at or 'the top'}; pass its .tolist() to write it as nested lists")
    return obj


def _json_key(key, at: str, seen: dict):
    """``key`` as json writes it (a numpy or 0-dim tensor number made plain), where it is one json takes and no other
    key of its dict (``seen``: text -> key) is written alike. A NaN, inf or None key were each written "null", over
    one another's entry; a tuple one failed bare; ``7`` and ``"7"`` gave a file with the key "7" twice."""
    plain = key.item() if hasattr(key, "item") and getattr(key, "ndim", None) == 0 else key
    where = at or "the top"
    if not (plain is None or isinstance(plain, (str, int)) or isinstance(plain, float) and math.isfinite(plain)):
        raise ValueError(f"obj: expected str, int, finite float, bool or None keys, got {key!r:.60} at {where}")
    text = plain if isinstance(plain, str) else json.dumps(plain)  # what json writes: True -> "true", 1.5 -> "1.5"
    if text in seen:
        raise ValueError(f"obj: two keys are both written as {text!r} at {where}: {seen[text]!r:.60} and {key!r:.60}; "
                         "give each entry its own key")
    seen[text] = key
    return plain


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented UTF-8 JSON, atomically. Numbers as :func:`write_csv` takes them (numpy scalars and
    0-dim tensors as plain numbers; an array with dimensions refused by key). Non-finite floats (the NaN of a class
    with no sample in :func:`time_records`) are written as ``null``: ``NaN`` is no JSON, and strict parsers refuse it."""
    target = _file(path, "data.json")
    text = json.dumps(_finite(obj), indent=2, allow_nan=False)
    return _written(target, (text + "\n").encode("utf-8"))


# ------------------------------------------------------------ save / load explanations
def save_explanation(exp: Explanation, path) -> tuple[Path, Path]:
    """Save ``exp`` as ``path`` (safetensors: the tensors) and ``path`` with ``.json`` (the rest),
    both atomically, the JSON holding the SHA-256 of the tensor file (see :meth:`Explanation.save`)."""
    if not isinstance(exp, Explanation):
        raise TypeError(f"exp: expected an Explanation, got {type(exp).__name__}")
    exp.save(path)
    return saving.paths(path)


def load_explanation(path, *, device: str | torch.device = "cpu", window: int | None = None) -> Explanation:
    """Load what :func:`save_explanation` wrote; returns the same kind of explanation. ``window``: an RNN explanation's
    input samples per step, where a file of an earlier neuroview does not record it (``Explanation.load``'s)."""
    return Explanation.load(path, device=device, window=window)
