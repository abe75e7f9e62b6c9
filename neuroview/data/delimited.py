"""Series of your own in delimited text (CSV, TSV: the UCR archive's own files) as a data module.

Holds :class:`CsvDataModule` and :func:`read_series`. May import the rest of ``neuroview.data``
and third-party libraries; nothing else from neuroview.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Literal

import numpy as np

from .arrays import ArrayDataModule, _take, check_fraction, stratified_split
from .file_record import FileRecord
from .labels import ONE_SHOT, check_labels_option, one_class_a_series
from .options import whole_number
from .own_splits import warn_fraction_unused, warn_training_again
from .pandas_index import check_header, check_index
from .splits import empty_held_out, label_number, number
from .text_decode import _text


def _delimiter(first_line: str) -> str:
    if "\t" in first_line:
        return "\t"
    if "," not in first_line and ";" not in first_line and len(first_line.split()) > 1:
        return " "  # the archive's older .txt files: values in runs of spaces, often a leading one
    return ";" if ";" in first_line and "," not in first_line else ","


def _label_index(label_column: int | str, names: list[str] | None, where: str) -> int:
    if isinstance(label_column, str):  # a name: the file's first row is its header (read_series)
        if label_column not in names:
            raise ValueError(f"label_column: expected a column of {where}'s header, got {label_column!r} "
                             f"(its columns: {names[:8]}{' ...' if len(names) > 8 else ''})")
        return names.index(label_column)
    return label_column


def _hint(field: str, row: int, delimiter: str, label: str = "") -> str:
    """Why ``field`` may not read as a number: a decimal comma, fields split by another delimiter, the label's column
    (``label``: :func:`_text_below`), or (on the first row, where the field looks like no number) a header."""
    def decimal(f: str) -> bool:
        return f.count(",") <= 1 and number(f.replace(",", ".")) is not None

    if "," in field and decimal(field):
        return ("; a decimal comma? expected a point (1.5, not 1,5): write the file with points (pandas: "
                "read_csv(path, sep=';', decimal=',') then to_csv(path2, index=False))")
    for d in (";", "\t", ","):
        parts = field.split(d)
        if d != delimiter and len(parts) > 1 and all(decimal(f.strip()) for f in parts):
            return (f"; its fields look separated by {d!r}, not by {delimiter!r} (sniffed from the first line unless "
                    f"given): pass delimiter={d!r} (and write decimals with points)")
    return label or ("; if the first row names the columns, pass header=true" if row == 1 else "")


def _text_below(col: int, width: int, below: list[list[str]]) -> str:
    """Where column ``col`` (0-based, of rows ``width`` fields wide) holds text on the rows ``below`` too, every one
    that has it: a hint naming it as the label's column (the labels last, read from the first column)."""
    seen = [r[col].strip() for r in below if len(r) == width]
    missing = {"na", "n/a", "nan", "null", "none", "?", "-"}  # a gap's spellings: a column of gaps holds no labels
    if not seen or any(not f or label_number(f) is not None or f.lower() in missing for f in seen):  # one class: sorted
        return ""
    at = "-1 (the last column)" if col == width - 1 else str(col)
    shown = ", ".join(map(repr, dict.fromkeys(seen[:3])))
    return (f"; column {col + 1} holds text on the rows below too ({shown}): the labels? pass label_column={at}")


def _values(fields: list[str], row: int, where: str, label_at: int, delimiter: str = ",",
            below: list[list[str]] = ()) -> list[float]:
    """The row's numbers (``fields`` without the label, which was column ``label_at``), with empty or
    NaN fields at its end cut off (a shorter series); a gap inside the series or a field that is not
    a number is an error naming its row and (1-based) column (and, where that column holds text on the rows ``below``
    too, the label's column it may be)."""
    def col0(j: int) -> int:
        return j + 1 + (j >= label_at)

    out = []
    for j, f in enumerate(fields):
        f = f.strip()
        try:
            v = float(f) if f else math.nan
        except ValueError:
            label = _text_below(col0(j) - 1, len(fields) + 1, below)
            raise ValueError(f"path: row {row} of {where}, column {col0(j)}: expected a number, got "
                             f"{f!r}{_hint(f, row, delimiter, label)}") from None
        out.append(v)
    n = len(out)
    while n and math.isnan(out[n - 1]):
        n -= 1
    if any(math.isnan(v) or math.isinf(v) for v in out[:n]):
        j = next(j for j, v in enumerate(out[:n]) if math.isnan(v) or math.isinf(v))
        raise ValueError(f"path: row {row} of {where}, column {col0(j)}: a missing or infinite value inside the series "
                         f"({fields[j].strip()!r}); only the end of a row may be empty (a shorter series)")
    return out[:n]


def _column_numbers(fields: list[str]) -> bool:
    """Whether a row is exactly 0, 1, ..., n - 1 (n >= 3): the header pandas gives an array's columns."""
    return len(fields) >= 3 and [f.strip() for f in fields] == [str(i) for i in range(len(fields))]


def _ramp(fields: list[str], any_start: bool = False) -> bool:
    """Whether fields count up in even steps (n >= 3) from 0 or from one step: 0, 1, ..., n - 1, or 1, ..., n, or times
    0.0, 0.1, 0.2: the column names of a header, not a series; ``any_start``: from any number (wavelengths 400, 402,
    404 ...; times 12.5, 13.0, 13.5 ...)."""
    v = _numbers(fields)
    if v is None or not v[1] > v[0]:
        return False
    step, tol = v[1] - v[0], 4 * np.finfo(float).eps * max(map(abs, v))  # the rounding of numbers as large as these
    return (any_start or math.isclose(v[0], 0, abs_tol=1e-9) or math.isclose(v[0], step)) and all(
        math.isclose(b - a, step, rel_tol=1e-6, abs_tol=tol) for a, b in zip(v, v[1:]))


def _numbers(fields: list[str]) -> list[float] | None:
    """The fields as n >= 3 finite numbers, or None: what column names counting up are made of."""
    v = [number(f.strip()) for f in fields]
    return v if len(v) >= 3 and None not in v and all(map(math.isfinite, v)) else None


def _rising(fields: list[str]) -> bool:
    """Whether fields are n >= 3 finite numbers, each above the one before: wavelengths of a spectrometer (their steps
    uneven: rounding, dispersion), times, indices."""
    v = _numbers(fields)
    return v is not None and all(b > a for a, b in zip(v, v[1:]))


def _header_of(fields: list[str], label_column: int, others: set[str]) -> str | None:
    """What makes a first row a header that was not declared (None: nothing): column numbers 0, 1, ..., n - 1
    (pandas' to_csv of an array), or a label field that is no number (``label``; empty: pandas' index) before fields
    that count up evenly (:func:`_ramp`) from 0 or from one step, or, where that label names no other row's class
    (``others``: the label column of the rows below), that only rise (:func:`_rising`: wavelengths, evenly spaced or
    not; times). A first series of a class named in words (``cat,0.1,0.5,...``) is data, and so is one counting up from
    elsewhere (``cat,5,6,7``) of a class other rows share; one of a class of its own whose values do not only rise is data
    too (a class of one series; one whose values only rise is refused, naming header=false)."""
    if _column_numbers(named := _filled(fields)):
        return f"0, 1, ..., {len(named) - 1}: the column numbers pandas writes as a header (to_csv without header=False)"
    if not -len(fields) <= label_column < len(fields):
        return None
    k = label_column % len(fields)
    label, rest = fields[k].strip(), _filled(fields[:k] + fields[k + 1:])
    if number(label) is not None or not (_ramp(rest) or (label not in others and _rising(rest))):
        return None
    shown = ", ".join(f.strip() for f in fields[:4]) + (", ..." if len(fields) > 4 else "")
    return (f"{shown}: a name in the label's column {k + 1} ({label!r}{', the class of no other row' * (label not in others)}) "
            "and column names counting up, the header pandas writes (to_csv without header=False)")


def _labels_at(rows: list[tuple[int, list[str]]], at: int) -> set[str]:
    """The label fields (column ``at``) of ``rows`` ``(line, fields)`` that have one."""
    return {fields[at].strip() for _, fields in rows if -len(fields) <= at < len(fields)}


def _filled(fields: list[str]) -> list[str]:
    """``fields`` without the empty fields at their end: a delimiter ending every line (many exporters write one) names
    no column and holds no value, and read as a name it would make every row a header of names (or a ragged one)."""
    n = len(fields)
    while n and not fields[n - 1].strip():
        n -= 1
    return fields[:n]


def _reads_as_series(fields: list[str], at: int, others: set[str], delimiter: str,
                     known: set[str] = frozenset()) -> str | None:
    """Why a row declared a header (``header=True``) reads as a series (None: it does not): only numbers beside its label
    field that do not count up as column names do (:func:`_ramp`, :func:`_column_numbers`), and that label a class of
    other rows (``others``) or of the training file (``known``: a test or validation file's first series of a class it
    holds once), or a number where every other label is one. A file without a header, its first series about to be
    dropped. A label of no row is a header's column name, whatever its numbers (unsorted ids, FFT bins, hours across
    midnight): such a first series of a file without a header cannot be told from one (the limit of header=true)."""
    if not -len(fields) <= at < len(fields) or _column_numbers(_filled(fields)):
        return None
    k = at % len(fields)
    label, rest = fields[k].strip(), _filled(fields[:k] + fields[k + 1:])
    if not label or _ramp(rest, any_start=True):
        return None
    try:
        v = _values(rest, 1, "", k, delimiter)
    except ValueError:  # a name among the fields: a header
        return None
    labels = others | known
    numeric = number(label) is not None and labels and all(number(o) is not None for o in labels)
    if not v or not (label in labels or numeric):
        return None
    why = "a class of other rows" if label in others else "a class of the training file" if label in known else (
        "a number as every label is")
    return f"the label {label!r}, {why}, and {len(v)} numbers"


def read_series(path: str | Path, *, label_column: int | str = 0, channels: int = 1, delimiter: str | None = None,
                header: bool | Literal["auto"] = "auto", known=()) -> tuple[list[np.ndarray], np.ndarray]:
    """``(series, labels)`` of a delimited file with one series a row: ``series`` a list of
    ``[channels, T_i]`` float32 arrays, ``labels`` the label column's strings. See
    :class:`CsvDataModule` for the format. ``known``: the training file's labels, where this is a test or validation
    file (a first row declared a header that carries one of them is a series)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: expected a CSV or TSV file of series, one a row, got {str(path)!r} (no such file)")
    where = path.name
    with io.StringIO(_text(path), newline="") as f:
        first = next((line for line in f if line.strip()), "")
        f.seek(0)
        d = delimiter or _delimiter(first)
        rows = [line.split() for line in f] if d == " " else list(csv.reader(f, delimiter=d))  # " ": any run of blanks
    detect = header == "auto"
    if header is False and isinstance(label_column, str):
        raise ValueError(f"header: label_column={label_column!r} names a column of the header, but header=false says "
                         f"{where} has none; pass header=true (or \"auto\"), or the label's column index")
    header = header is True or isinstance(label_column, str)
    rows = [(i + 1, r) for i, r in enumerate(rows) if any(c.strip() for c in r)]  # (line, fields), blank lines out
    names = [n.strip() for n in rows[0][1]] if header and rows else None
    if rows and detect and not header and (what := _header_of(rows[0][1], label_column, _labels_at(rows[1:], label_column))):
        check_header([n.strip() for n in rows[0][1]], where)
        raise ValueError(f"header: row {rows[0][0]} of {where} reads {what}, not a series; pass header=true "
                         "(--data.init_args.header true) to skip it, or header=false if it is a series")
    if names is not None:
        check_header(names, where)
    body = rows[1:] if header else rows
    if not body:
        raise ValueError(f"path: {where} holds no series (one a row: a label and the values)")
    at = _label_index(label_column, names, where)
    # a label_column named by the first row's label field: that row is the header it names, never refused
    if header and not isinstance(label_column, str) and (
            what := _reads_as_series(rows[0][1], at, _labels_at(body, at), d, set(known))):  # a file without a header
        raise ValueError(f"header: row {rows[0][0]} of {where} reads as a series, not a header ({what}), yet header=true "
                         f"skips it as a header; give {where} a header row (header=true reads every file of the data module "
                         "with one), or pass header=false if no file has one")
    rows = body
    if names is not None:
        check_index(names, rows, at, where)
    series, labels = [], []
    for i, (row, fields) in enumerate(rows):
        if not -len(fields) <= at < len(fields):
            raise ValueError(f"path: row {row} of {where} has {len(fields)} fields, no label column {label_column!r}")
        k = at % len(fields)
        label, rest = fields[k].strip(), fields[:k] + fields[k + 1:]
        v = _values(rest, row, where, k, d, [f for _, f in rows[i + 1:i + 6]])
        if not label or not v:
            raise ValueError(f"path: row {row} of {where}: expected a label and at least one value, got {fields[:4]}")
        if (n := label_number(label)) is not None and not math.isfinite(n):  # str "NaN" would be a class; "inf" is one
            raise ValueError(f"path: row {row} of {where}, column {k + 1}: expected a class label, got {label!r} ("
                             f"{'a missing label' if math.isnan(n) else 'an infinite number'}); drop the row or give its class")
        if len(v) % channels:
            raise ValueError(f"channels: expected each row's values to split into {channels} channels of equal length, "
                             f"but row {row} of {where} has {len(v)} values")
        series.append(np.asarray(v, np.float64).reshape(channels, -1))  # float32 after centering (stats.centered_for_float32)
        labels.append(label)
    return series, np.asarray(labels)


class CsvDataModule(FileRecord, ArrayDataModule):
    """Your own series in delimited text: one series a row, its label in one column.

    The UCR archive's own ``*_TRAIN.tsv`` files read as they are (the label first, tab-separated).
    ``label_column``: the label's column index (0, the first, by default; -1 the last), or a
    header's column name (then the first row is a header). ``header=True`` skips a first row of
    column names in every file (``path``, ``test_path``, ``val_path``), and refuses a file whose first row reads as a
    series (a label other rows or the training file carry, or a number where every label is one, and numbers beside it
    that do not count up evenly): a file without a header, whose first series would be dropped. Its limit: a first row
    whose label no other row nor the training file carries is a header, whatever its numbers (unsorted ids, FFT bins,
    hours across midnight), so a file without a header whose first series is of a class of its own loses that series
    (read such a file with ``header=False``); a string ``label_column`` names the header's column, never refused.
    Empty fields ending every line (a trailing delimiter) are no columns. ``"auto"`` (the default) reads the
    first row as a series unless it looks like the header pandas writes, which is refused, naming both options:
    column numbers 0, 1, 2, ... (an array's), or a word in the label's column and numbers counting up evenly beside
    it from 0 or one step (``label,0,1,2``), or, where that word labels no other row, numbers that only rise
    (wavelengths ``label,400,402,...`` evenly spaced or not, times, indices). A first row counting up from elsewhere of
    a class other rows carry is a series, and so is a first row of a class of its own whose numbers do not only rise;
    ``header=False`` reads every row as a series, a first series that rises too. A header with an unnamed first column,
    pandas' index (``df.to_csv(path)``), is refused, and so is a named one (``id``) counting the rows 0, 1, ... (or 1,
    2, ...) beside the label's column. Text is UTF-8, or UTF-16 / UTF-32 with a byte-order mark
    (Excel's "Unicode Text"). ``delimiter``: tab if the first line has one, else ``;`` where there is no comma, else comma;
    with none of them, blanks (``" "``: any run of spaces, as in the archive's older
    ``*_TRAIN.txt`` files; a shorter series then ends in ``NaN`` fields). ``channels=C``: each row holds C channels one after another, T values each.
    A row may end early (empty or NaN fields at its end, as the archive pads its variable-length
    sets): that series is shorter, padded (or, with ``resample=True``, stretched) as an ``.npz``'s
    ``lengths`` are. A value that is not a number, or a gap inside a series, is an error naming its row
    and column. A label column of nearly one class a series (10 series or more, classes for 90% of them:
    measurements, row numbers) is refused, asking whether ``label_column`` is right, unless a test file of 4 series
    or more repeats training classes (fewer classes than half its series, none other), or ``labels="classes"`` says
    they are classes (a one-shot set); a file read whole for a trained model is held to its classes instead. ``test_path`` / ``val_path``:
    splits of your own in the same format (paths may start with ``~``; the training file's series again are warned
    about, as is a ``test_fraction``/``val_fraction`` they leave unused); without a
    test file ``test_fraction`` of ``path`` is held out, stratified, by ``seed + 1`` (as
    :class:`~neuroview.data.NpzDataModule` does). ``batch_size="auto"`` as the ``ucr_*`` recipes set it:
    ``neuroview fit --config recipes/ucr_nv_cnn.yaml --data neuroview.data.CsvDataModule
    --data.init_args.path mine_TRAIN.tsv --data.init_args.test_path mine_TEST.tsv``.
    """

    #: How the files are written (not which series, nor how they are normalized): other files of this format read
    #: as the model's training file was (:func:`~neuroview.data.read_as.read_as_trained`).
    FILE_FORMAT = ("label_column", "channels", "delimiter", "header")
    #: What gives the validation split of one's own (named where ``val_fraction`` is then unused).
    OWN_VAL = "val_path"

    def __init__(self, path: str, *, test_path: str | None = None, val_path: str | None = None,
                 label_column: int | str = 0, channels: int = 1, delimiter: str | None = None,
                 header: bool | Literal["auto"] = "auto", test_fraction: float = 0.2, batch_size: int | Literal["auto"] = 64, val_fraction: float = 0.1,
                 seed: int = 0, val_fold: int | None = None, normalize: bool | Literal["series", "sample"] = True,
                 num_workers: int = 0, eval_batch_size: int | None = None, resample: bool = False,
                 labels: Literal["auto", "classes"] = "auto"):
        # absolute, as the saved hyper-parameters hold them: a later command run from another folder reads the same files
        # ("~/x" too, as a YAML config or --opt=~/x leaves it: made <cwd>/~/x, a file that is not there)
        path, test_path, val_path = (None if q is None else os.path.abspath(os.path.expanduser(os.fspath(q)))
                                     for q in (path, test_path, val_path))
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed, val_fold=val_fold,
                         normalize=normalize, num_workers=num_workers, eval_batch_size=eval_batch_size, resample=resample)
        check_fraction("test_fraction", test_fraction)
        channels = whole_number(channels, "channels", "an int >= 1", low=1)  # numpy's ints too, as batch_size takes
        if not isinstance(label_column, str):
            label_column = whole_number(label_column, "label_column", "a column index or a header's column name", None)
        if header not in (True, False, "auto"):
            raise ValueError(f"header: expected true, false or \"auto\" (the first row read as a series unless it looks "
                             f"like pandas' header), got {header!r}")
        if delimiter is not None and len(delimiter) != 1:
            raise ValueError(f"delimiter: expected one character (or None: sniffed), got {delimiter!r}")
        self.path, self.test_path, self.val_path = Path(path), test_path, val_path
        self.test_fraction = test_fraction
        self.label_column, self.channels, self.delimiter, self.header = label_column, channels, delimiter, header
        self.labels = check_labels_option(labels)

    def load(self) -> dict[str, tuple]:
        def read(p, known=()):  # known: the training file's labels (a first series of a test file, no header)
            x, y = read_series(p, known=known, **{k: getattr(self, k) for k in self.FILE_FORMAT})
            same = len({s.shape for s in x}) == 1
            return (np.stack(x) if same else x), y  # one length: an array; rows of several: padded later

        out = {"train": read(self.path)}
        own = tuple(s for s in ("test", "val") if getattr(self, f"{s}_path") is not None)
        self._fingerprint(*out["train"], own=own)  # the series as parsed, in the checkpoint: changed since, refused
        train_x, rows = out["train"][0], np.arange(len(out["train"][1]))  # before a test split is carved from it
        classes = set(out["train"][1].tolist())
        if self.test_path is not None:
            out["test"] = read(self.test_path, classes)
            warn_fraction_unused(self, "test_fraction", "test", "test_path")
        if self.labels == "auto" and not self._whole_file and (
                what := one_class_a_series(out["train"][1], out["test"][1] if "test" in out else None)):
            raise ValueError(f"label_column: expected a column of class labels (several series a class), got {what} in "
                             f"{self.path.name}: a column of measurements or row numbers? check label_column (now "
                             f"{self.label_column!r}; 0 is the first column, -1 the last)" + ONE_SHOT)
        if self.test_path is None and self._whole_file:  # a file of new series, not the model's: scored whole
            out["train"], out["test"] = self._whole_test(*out["train"], self.path.name)
        elif self.test_path is None:
            x, y = out["train"]
            keep, test = stratified_split(y, self.test_fraction, self.seed + 1)
            if not len(test):  # nothing would be tested, without a word
                raise ValueError(empty_held_out(y, "test_fraction", self.test_fraction, "test",
                                                "pass a test file of your own (test_path)"))
            out["train"], out["test"] = (_take(x, keep), y[keep]), (_take(x, test), y[test])
            rows, self._test_rows = keep, test  # the file's series (rows, blank lines and a header aside) of each split
        self._rows_read(rows, out["train"][1], self._test_rows, self.val_path is not None)
        if self.val_path is not None:
            out["val"] = read(self.val_path, classes)
        for key, name in (("test", "test_path"), ("val", "val_path")):  # the training file again (a copy too), by content
            if getattr(self, name) is not None and not self._whole_file:
                warn_training_again(train_x, out[key][0], name, self.path.name)
        own = {name: out[key] for key, name in (("test", "test_path"), ("val", "val_path")) if getattr(self, name)}
        self._hold_out(own if self.test_path is not None or not self._whole_file else own | {"path": out["test"]})
        return out
