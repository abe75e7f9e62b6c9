"""The rows of the user's data file that ``neuroview explain``'s samples are: ``file_index`` beside ``split_index`` in
``predictions.csv`` and ``sample_indices`` in ``report.json``, and beside ``sample`` in ``unit_gallery.csv``, as
``neuroview predict`` writes it. A carve's index 0, 1, 2 of a split read as the file's first rows, which they are not
(116 of 164 gallery rows named a row of the file of another class).

Imports: the attribution layer's writers (atomic), and nothing of the data layer: a data module is asked for its rows.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

__all__ = ["add_file_rows", "file_rows"]


def split_rows(dm, split: str):
    """The file's row of each sample of ``split`` of ``dm``: its ``split_rows`` (a module reading a file of the
    user's: every split carved from it or read whole), else its ``test_rows`` for the test split; None where it
    names none (a split of the file's own: its rows in order, ``split_index``)."""
    if hasattr(dm, "split_rows"):
        return dm.split_rows(split)
    return getattr(dm, "test_rows", None) if split == "test" else None


def file_rows(dm, split: str, index) -> list[int] | None:
    """The file's row of each explained sample (``index``: its index in ``split``), or None."""
    rows = split_rows(dm, split)
    return None if rows is None else [int(rows[int(i)]) for i in index]


def add_file_rows(out: Path, dm, split: str, index, gallery: bool = True) -> None:
    """``file_index`` beside ``split_index`` in ``out``'s ``predictions.csv`` and beside ``sample_indices`` in its
    ``report.json`` (the explained samples of ``split``), and, with ``gallery``, beside ``sample`` in its
    ``unit_gallery.csv`` (the training split's samples the galleries show), where ``dm`` names the file's rows."""
    from ..attribution.export import write_csv, write_json  # noqa: PLC0415

    rows = file_rows(dm, split, index)
    if rows is not None:
        table = _read(out / "predictions.csv")
        write_csv(out / "predictions.csv", [_after(r, "split_index", "file_index", rows[i]) for i, r in enumerate(table)])
        meta = json.loads((out / "report.json").read_text(encoding="utf-8"))
        write_json(out / "report.json", _after(meta, "sample_indices", "file_index", rows))
    train = split_rows(dm, "train") if gallery and (out / "unit_gallery.csv").is_file() else None
    table = _read(out / "unit_gallery.csv") if train is not None else []
    if table and "sample" in table[0]:
        write_csv(out / "unit_gallery.csv", [_after(r, "sample", "file_index", int(train[int(r["sample"])])) for r in table])


def _read(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _after(d: dict, after: str, key: str, value) -> dict:
    """``d`` with ``key: value`` placed right after ``after`` (predict's column order: split_index, file_index)."""
    out = {}
    for k, v in d.items():
        out[k] = v
        if k == after:
            out[key] = value
    return out
