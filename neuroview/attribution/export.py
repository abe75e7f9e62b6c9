"""Importance as data: tables (records, CSV, pandas) and explanations saved to disk.

Tables are lists of dicts (one dict a row), so they need nothing beyond the standard library;
:func:`to_frame` turns them into a pandas DataFrame when pandas is installed. Numbers are
written with Python's shortest round-trip ``repr``, so a CSV read back gives the same float32
values as the tensors it came from.

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
import hashlib
import io
import json
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import Tensor

from .._io import atomic_write
from ..core.explanation import CNNExplanation, Explanation, RNNExplanation
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

FORMAT = "neuroview.explanation"
VERSION = 1
_TYPES = {cls.__name__: cls for cls in (Explanation, CNNExplanation, RNNExplanation)}


# ------------------------------------------------------------------------- tables
def class_labels(num_classes: int, class_names: Sequence | None = None) -> list[str]:
    """Column names of the per-class columns: the class names, or ``class_0, class_1, ...``."""
    if class_names is None:
        return [f"class_{c}" for c in range(num_classes)]
    names = [str(n) for n in class_names]
    if len(names) != num_classes:
        raise ValueError(f"class_names: expected {num_classes} names (one per class), got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError(f"class_names: expected distinct names, got {names}")
    return names


def _wide(fixed: list[dict], values: Tensor, class_names: Sequence | None) -> list[dict]:
    """Rows ``fixed[i] | {class: values[c, i]}`` for ``values [C, N]``."""
    cols = class_labels(values.shape[0], class_names)
    clash = set(cols) & set(fixed[0] if fixed else ())
    if clash:
        raise ValueError(f"class_names: {sorted(clash)} clash with the table's own columns {list(fixed[0])}")
    vals = values.detach().cpu().float().T.tolist()
    return [f | dict(zip(cols, v)) for f, v in zip(fixed, vals)]


def unit_records(source, class_names: Sequence | None = None, *, standardized: bool = True) -> list[dict]:
    """One row per unit: ``site, channel, <one weight column per class>``.

    ``source`` is a NeuroView-CNN (its global weights, see
    :func:`neuroview.attribution.importance.unit_weights`) or a CNNExplanation.
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


def explanation_records(exp: Explanation, class_names: Sequence | None = None) -> list[dict]:
    """Long ("tidy") table of an explanation's contributions, one row per number.

    - CNNExplanation: ``sample, class, site, channel, code, contribution``;
    - RNNExplanation: ``sample, class, layer, direction, step, contribution`` (summed over
      hidden features);
    - any other: ``sample, class, feature, contribution`` (features flattened).

    ``class`` holds the class name when ``class_names`` is given, else the class index.
    """
    if not isinstance(exp, Explanation):
        raise TypeError(f"exp: expected an Explanation, got {type(exp).__name__}")
    b, c = exp.logits.shape
    names = class_labels(c, class_names) if class_names is not None else list(range(c))
    if isinstance(exp, CNNExplanation):
        contrib, codes = exp.contributions.detach().cpu().float().tolist(), exp.codes.detach().cpu().float().tolist()
        return [
            {"sample": i, "class": names[k], "site": s, "channel": ch, "code": codes[i][u], "contribution": contrib[i][k][u]}
            for i in range(b) for k in range(c) for u, (s, ch) in enumerate(exp.units)
        ]
    if isinstance(exp, RNNExplanation):
        dt = exp.direction_time().detach().cpu().float()  # [B, C, L, D, T]
        _, _, n_layers, n_dirs, t = dt.shape
        vals = dt.tolist()
        return [
            {"sample": i, "class": names[k], "layer": layer, "direction": d, "step": s, "contribution": vals[i][k][layer][d][s]}
            for i in range(b) for k in range(c) for layer in range(n_layers) for d in range(n_dirs) for s in range(t)
        ]
    flat = exp.contributions.detach().cpu().float().flatten(2).tolist()
    return [
        {"sample": i, "class": names[k], "feature": f, "contribution": v}
        for i in range(b) for k in range(c) for f, v in enumerate(flat[i][k])
    ]


def to_frame(records: list[dict]):
    """A pandas DataFrame of ``records`` (pandas is optional: ``pip install pandas``)."""
    try:
        import pandas as pd  # noqa: PLC0415 - optional dependency
    except ImportError as e:
        raise ImportError(
            "to_frame needs pandas, which neuroview does not require: pip install pandas "
            "(or use to_records() / write_csv(), which need nothing)"
        ) from e
    return pd.DataFrame.from_records(records)


# ----------------------------------------------------------------------- writing
def _cell(v) -> str:
    if isinstance(v, float):
        return repr(v)  # shortest string that reads back as the same float
    return str(v)


def write_csv(path, records: Iterable[dict], columns: Sequence[str] | None = None) -> Path:
    """Write ``records`` as CSV (header = ``columns`` or the first row's keys), atomically."""
    records = list(records)
    if columns is None:
        if not records:
            raise ValueError("records: expected at least one row (or pass columns=) to know the header")
        columns = list(records[0])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in records:
        writer.writerow([_cell(r[k]) for k in columns])
    atomic_write(Path(path), buf.getvalue().encode())
    return Path(path)


#: Columns that hold names, kept as text even when a name looks like a number (a site "3").
TEXT_COLUMNS = ("site", "class", "true", "predicted")


def read_csv(path, text_columns: Sequence[str] = TEXT_COLUMNS) -> list[dict]:
    """Rows of a CSV written by :func:`write_csv`: numbers parsed back to int or float, except
    in ``text_columns``."""
    def parse(s: str):
        for kind in (int, float):
            try:
                return kind(s)
            except ValueError:
                pass
        return s

    with open(path, newline="") as f:
        return [{k: v if k in text_columns else parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write(Path(path), (json.dumps(obj, indent=2) + "\n").encode())
    return Path(path)


# ------------------------------------------------------------ save / load explanations
def _paths(path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix(".safetensors")
    elif path.suffix != ".safetensors":
        raise ValueError(f"path: expected a file name ending in .safetensors (or no suffix), got {str(path)!r}")
    return path, path.with_suffix(".json")


def save_explanation(exp: Explanation, path) -> tuple[Path, Path]:
    """Save ``exp`` as ``path`` (safetensors: the tensors) and ``path`` with ``.json`` (the rest).

    Both files are written atomically; the JSON records the SHA-256 of the tensor file, so
    :func:`load_explanation` notices a pair that does not belong together.
    """
    from safetensors.torch import save as st_save  # noqa: PLC0415

    if type(exp).__name__ not in _TYPES:
        raise TypeError(f"exp: expected one of {list(_TYPES)}, got {type(exp).__name__}")
    tensors_path, meta_path = _paths(path)
    tensors = {"logits": exp.logits, "bias": exp.bias, "contributions": exp.contributions, "codes": exp.codes}
    meta: dict = {"format": FORMAT, "version": VERSION, "type": type(exp).__name__}
    if isinstance(exp, CNNExplanation):
        meta["units"] = [[s, int(ch)] for s, ch in exp.units]
        meta["site_slices"] = {k: [s.start, s.stop] for k, s in exp.site_slices.items()}
        if exp.weight is not None:
            tensors["weight"] = exp.weight
        if exp.code_maps is not None:
            # site names can hold any character; keys by position keep the file format plain
            meta["code_maps"] = list(exp.code_maps)
            tensors.update({f"code_maps.{i}": m for i, m in enumerate(exp.code_maps.values())})
    if isinstance(exp, RNNExplanation):
        if exp.time_importance is not None:
            tensors["time_importance"] = exp.time_importance
        if exp.lengths is not None:
            tensors["lengths"] = exp.lengths
    # safetensors refuses views and shared storage: give it plain, contiguous CPU copies
    data = st_save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()})
    meta["tensors"] = sorted(tensors)
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    atomic_write(tensors_path, data)
    write_json(meta_path, meta)
    return tensors_path, meta_path


def load_explanation(path, *, device: str | torch.device = "cpu") -> Explanation:
    """Load what :func:`save_explanation` wrote; returns the same kind of explanation."""
    from safetensors.torch import load as st_load  # noqa: PLC0415

    tensors_path, meta_path = _paths(path)
    for p in (tensors_path, meta_path):
        if not p.is_file():
            raise FileNotFoundError(f"path: expected {p} (an explanation is a .safetensors file and its .json sidecar)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT or meta.get("type") not in _TYPES:
        raise ValueError(f"path: {meta_path} is not a neuroview explanation (format {meta.get('format')!r}, type {meta.get('type')!r})")
    if meta.get("version", 0) > VERSION:
        raise ValueError(f"path: {meta_path} has format version {meta['version']}; this neuroview reads up to {VERSION}, upgrade it")
    data = tensors_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise ValueError(f"path: {tensors_path} does not match its sidecar {meta_path.name} (SHA-256 differs); save the explanation again")
    t = {k: v.to(device) for k, v in st_load(data).items()}
    kw = {k: t[k] for k in ("logits", "bias", "contributions", "codes")}
    kind = _TYPES[meta["type"]]
    if kind is CNNExplanation:
        kw["units"] = [(s, ch) for s, ch in meta["units"]]
        kw["site_slices"] = {k: slice(a, b) for k, (a, b) in meta["site_slices"].items()}
        kw["weight"] = t.get("weight")
        if "code_maps" in meta:
            kw["code_maps"] = {name: t[f"code_maps.{i}"] for i, name in enumerate(meta["code_maps"])}
    elif kind is RNNExplanation:
        kw["time_importance"] = t.get("time_importance")
        kw["lengths"] = t.get("lengths")
    return kind(**kw)
