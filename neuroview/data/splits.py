"""How a training split is carved: a validation share held out at random, or one fold of k for
cross-validation, both stratified by class and fixed by a seed; and how its labels become class indices.

Imports only numpy.
"""

from __future__ import annotations

import contextlib
import contextvars
import numbers
import re
from decimal import Decimal

import numpy as np

from ..core.explanation_checks import apart_how, text_key  # noqa: F401 - apart_how: the labels' and the plots' import it from here

__all__ = ["check_fraction", "stratified_split", "stratified_fold", "folds_of", "encode_labels", "written_apart", "apart_how", "text_labels",
           "number", "label_number", "same_number", "same_text", "empty_held_out", "whole_files", "whole_file"]

# a file given to `neuroview test`/`predict` that is not the model's training data: every series of it is evaluated
_WHOLE_FILE = contextvars.ContextVar("neuroview_whole_file", default=False)


@contextlib.contextmanager
def whole_files(on: bool = True):
    """Data modules made inside (``NpzDataModule``, ``CsvDataModule``) carve no ``test_fraction`` from a file without a
    test split of its own: every series of it is the test split (and the training split, which only names the classes,
    channels and length). For a model scored on a file of new series, which a carve would have read a fifth of."""
    token = _WHOLE_FILE.set(bool(on))
    try:
        yield
    finally:
        _WHOLE_FILE.reset(token)


def whole_file() -> bool:
    """Whether a data module made now reads a file without a test split whole (:func:`whole_files`)."""
    return _WHOLE_FILE.get()


def check_fraction(name: str, value: float, *, zero: bool = False) -> None:
    """Raise a ValueError naming the argument ``name`` unless ``value`` is in (0, 1) ([0, 1) with ``zero``)."""
    # a number (Fraction, Decimal, a 0-dim array too), not text or None (a bare TypeError naming no argument) nor a bool
    real = isinstance(value, (numbers.Real, Decimal)) or (isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf")
    if isinstance(value, (bool, np.bool_)) or not real or not (0.0 <= value < 1.0 if zero else 0.0 < value < 1.0):
        raise ValueError(f"{name}: expected a number in {'[0' if zero else '(0'}, 1), got {value!r}")


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)``: about ``fraction`` of every class held out, at least one sample
    of each class kept, the same for the same seed."""
    # not sklearn's train_test_split(stratify=y): it picks other indices, and the zoo's accuracies were measured on these
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n = min(int(round(fraction * len(idx))), len(idx) - 1)
        held.append(idx[:n])
        keep.append(idx[n:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def _take(x, idx: np.ndarray):
    """The samples ``idx`` of ``x``: an array's rows, or the items of a list of series (variable length)."""
    return [x[i] for i in idx] if isinstance(x, (list, tuple)) else x[idx]


def stratified_fold(y: np.ndarray, k: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)`` of fold ``fold`` of ``k``: every class's samples, shuffled by
    ``seed``, are dealt to the folds in turn (each class continuing where the last stopped), so the
    ``k`` folds hold out every sample exactly once, each fold about ``1 / k`` of every class. A class
    fold ``fold`` would take whole (a class of one sample) stays in ``keep``."""
    rng = np.random.default_rng(seed)
    keep, held, start = [], [], 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        mine = (start + np.arange(len(idx))) % k == fold
        start += len(idx)
        if mine.all():
            mine[:] = False
        held.append(idx[mine])
        keep.append(idx[~mine])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def folds_of(val_fraction: float, val_fold: int | None) -> int | None:
    """The number of folds ``k`` of ``val_fold`` (``val_fraction == 1 / k``), checked; None without a fold."""
    if val_fold is None:
        return None
    k = round(1 / val_fraction) if val_fraction > 0 else 0
    if k < 2 or abs(k * val_fraction - 1) > 1e-9:
        raise ValueError(f"val_fraction: with val_fold, expected 1 / k for k folds (0.5, 0.25, 0.2, 0.1 ...), got {val_fraction!r}")
    # numpy's ints too (a fold from np.unique); a Fraction (1 / k exactly) formats with :g only from Python 3.12
    if isinstance(val_fold, (bool, np.bool_)) or not isinstance(val_fold, numbers.Integral) or not 0 <= val_fold < k:
        raise ValueError(f"val_fold: expected an int in [0, {k}) (val_fraction {float(val_fraction):g}: {k} folds), got "
                         f"{val_fold!r}")
    return k


def encode_labels(y_train: np.ndarray) -> list[str]:
    """The training split's classes as strings, in the order of their indices: as numbers where they all are."""
    # an object array's labels as text first: numpy's sort of 1.0 beside "inf" (a pandas column of mixed types) failed
    labels = [str(v) for v in np.unique(y_train.astype(str) if y_train.dtype.kind == "O" else y_train)]
    if all(exact(v) is not None for v in labels):  # UCR labels are strings such as "1", "2", "10": ordered as numbers
        return sorted(labels, key=lambda v: (float(v), exact(v)))  # exactly: ids beyond 2**53
    return sorted(labels)


def text_labels(y: np.ndarray) -> np.ndarray:
    """Labels as their classes read them: bytes (numpy's ``S`` dtype, as ``np.savez`` keeps ``np.array([b"cat"])``, or
    in an object array) as text (``str(b"cat")`` is ``"b'cat'"``, the name a class would otherwise carry into
    reports); float ``-0.0`` as ``0.0`` (one class to numpy, two names to ``str``). Text is kept as written (a class
    numbering a model was trained on stays); labels equal but for the whitespace around them or their Unicode form
    (NFC, NFD) are refused (:func:`same_text`)."""
    try:
        if y.dtype.kind == "S":
            return np.char.decode(y, "utf-8")
        if y.dtype.kind == "O":
            return np.array([v.decode("utf-8") if isinstance(v, bytes) else v + 0.0 if isinstance(v, float) else v
                             for v in y.tolist()], dtype=object)
    except UnicodeDecodeError as e:  # a bare codec error named no argument
        bad = next(v for v in y.tolist() if isinstance(v, bytes) and not _utf8(v))
        raise ValueError(f"y: expected labels as UTF-8 text, got the bytes {bad!r} ({e.reason}); decode them as they were "
                         "written (e.g. [v.decode('latin-1') for v in y]) and store the text") from None
    return y + 0.0 if y.dtype.kind == "f" else y


def _utf8(v: bytes) -> bool:
    try:
        v.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def same_text(labels: list[str]) -> tuple[str, str] | None:
    """The first two of ``labels`` (distinct strings) that differ only in the whitespace around them (``"cat"`` and
    ``"cat "``: two classes in an .npz, one in a CSV, whose reader strips them) or in their Unicode form (``"café"``
    with one code point for the ``é`` (NFC) and with ``e`` and a combining accent (NFD): two classes that print alike),
    or ``None``; :func:`apart_how` says which."""
    seen: dict[str, str] = {}
    for label in labels:
        key = text_key(label)
        if key in seen:
            return seen[key], label
        seen[key] = label
    return None


# a label reads as a number only where it is written as one: no underscores (float("1_0") is 10, PEP 515: "1_0" and
# "10" were one number), no "inf" or "infinity" (an abbreviation such as "inf", infected, is a class name), no digits
# of other scripts (float("١") is 1.0)
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
# the spellings of a missing value, which no label may be (a spreadsheet's empty cell as pandas writes it)
_MISSING = {"nan", "+nan", "-nan"}


def number(v: str) -> float | None:
    """``v`` read as a number (``"1.0"``: 1.0), or ``None`` where it is not one (Python's ``float``: a CSV's field)."""
    try:
        return float(v)
    except ValueError:
        return None


def label_number(v: str) -> float | None:
    """The label ``v`` read as a number where it is written as one (``"1.0"``: 1.0; ``"nan"``, a missing value: NaN),
    else ``None``: ``"1_0"`` (subject 1, session 0), ``"inf"`` and ``"١"`` are text."""
    text = str(v).strip()
    if text.lower() in _MISSING:
        return float("nan")
    return float(text) if _NUMBER.fullmatch(text) else None


def exact(v: str) -> Decimal | None:
    """``v`` read as an exact number (``"1.0"`` and ``"1"`` are one; ``"100000000000000003"`` and
    ``"100000000000000007"``, one float, are two), or ``None`` where it is not one (written otherwise than as a number:
    :func:`label_number`). Labels are compared by it."""
    text = str(v).strip()
    return Decimal(text) if _NUMBER.fullmatch(text) else None


def written_apart(unknown: list[str], classes: list[str], who: str = "the training split") -> str:
    """A hint where labels differ only in how a number is written ("1.0" in one split, "1" in another), in the
    whitespace around them or in their Unicode form; ``who`` names what writes them as ``classes``."""
    known = {exact(c): c for c in classes if exact(c) is not None}
    same = [(u, known[exact(u)]) for u in unknown if exact(u) in known]
    fix = "store the labels one way" if who == "the training split" else f"store the labels as {who} names them"
    if not same:  # text written with other whitespace around it ("cat " for "cat"), or in another Unicode form
        known = {text_key(c): c for c in classes}
        same = [(u, known[text_key(u)]) for u in unknown if text_key(u) in known]
        return (f" ({who} writes {same[0][0]!r} as {same[0][1]!r}: {apart_how(*same[0])}; {fix})") if same else ""
    return (f" ({who} writes {same[0][0]!r} as {same[0][1]!r}: the same number written apart, e.g. float "
            f"and int labels; {fix})")


def same_number(labels: list[str]) -> tuple[str, str] | None:
    """The first two of ``labels`` (distinct strings) that are one number written two ways ("1" and "1.0"), or ``None``.

    >>> same_number(["1", "2", "1.0"]), same_number(["1", "10", "a"])
    (('1', '1.0'), None)
    """
    seen: dict[Decimal, str] = {}
    for label in labels:
        v = exact(label)
        if v is None:  # not a number, or NaN (never equal to itself)
            continue
        if v in seen:
            return seen[v], label
        seen[v] = label
    return None


def empty_held_out(y: np.ndarray, name: str, fraction: float, split: str, fix: str) -> str:
    """The error where ``fraction`` (the argument ``name``) of each class of ``y`` held out no series at all:
    the series per class, the smallest ``fraction`` that would hold one out, and ``fix`` (what else to do)."""
    labels, counts = np.unique(y, return_counts=True)
    per_class = ", ".join(f"{label}: {n}" for label, n in zip(labels[:8], counts[:8])) + (", ..." if len(labels) > 8 else "")
    most = int(counts.max())
    # round(fraction * n) >= 1 takes fraction * n > 0.5 (0.5 rounds to 0), and a class keeps at least one series
    need = (f"a {name} above {0.5 / most:.3g} holds out one series of the largest class" if most > 1
            else "every class has one series, so none can be held out")
    return (f"{name}: expected a non-empty {split} split, got none: {float(fraction):g} of each class rounds to 0 series "
            f"(series per class: {per_class}); {need}, or {fix}")
