"""Arrays of your own, from an ``.npz`` file, as a data module: what a user's recordings go through.

Holds :class:`NpzDataModule`. May import the rest of ``neuroview.data`` and third-party
libraries; nothing else from neuroview.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from .arrays import ArrayDataModule, _take, check_fraction, stratified_split
from .file_record import FileRecord
from .labels import ONE_SHOT, _first_not_finite, check_labels_option, one_class_a_series
from .lengths import check_values
from .npz_padding import _flat_runs, nan_padded, object_arrays, warn_unread_padding
from .own_splits import warn_fraction_unused, warn_training_again
from .splits import empty_held_out, text_labels

#: The keys :class:`NpzDataModule` reads; one that looks like them is refused (``X_Test``, ``length``), others warned about.
KEYS = ("X", "y", "X_test", "y_test", "X_val", "y_val", "lengths", "lengths_test", "lengths_val")


class NpzDataModule(FileRecord, ArrayDataModule):
    """Your own arrays: an ``.npz`` with ``X`` ``[N, C, *spatial]`` and ``y`` ``[N]``.

    Optional keys: ``X_test``/``y_test`` and ``X_val``/``y_val`` (splits of your own), ``lengths``
    (and ``lengths_test``/``lengths_val``) for variable-length sequences padded along the last
    axis (``resample=True`` stretches them to the longest instead): ``padding="post"`` reads each series' first
    ``lengths`` steps (torch's ``pad_sequence``), ``"pre"`` its last (Keras' ``pad_sequences`` default); the default
    ``"auto"`` reads the first and refuses a file whose series padded by 2 steps or more read as padded at the start
    (every one flat there, one padding value or one a channel, and some not at the end; else more than half of them,
    and more than read as padded at the end), until ``padding`` says which it is; ``"pre"`` refuses a file whose series
    so read as padded at the end (``padding`` is carried from a checkpoint to another file it reads), and warns where
    the file has no ``lengths`` (nothing to read by) and most of its series begin flat, as padding leaves them;
    ``y_test`` or ``lengths_test`` without ``X_test`` is refused, as is ``val_fold`` with an ``X_val``, and a key that looks like one of these (``X_Test``,
    ``length``), named with the key it may stand for (other keys are warned about, unread). An ``X_test`` (``X_val``) equal to ``X`` is warned about, as is a ``test_fraction``
    (``val_fraction``) the file's own split leaves unused. Without a test split,
    ``test_fraction`` of ``X`` is held out, then ``val_fraction`` of the rest, stratified, by
    ``seed``. ``X`` of shape ``[N, T]`` is read as one channel. ``layout="channels_last"`` reads
    ``X`` as ``[N, *spatial, C]`` (Keras' ``[N, T, C]``, images ``[N, H, W, C]``); the default
    ``"auto"`` reads ``[N, C, *spatial]`` (aeon's and torch's order) and refuses an ``X`` with more
    channels than the length of its last axis (or as many: ``[N, 6, 6]``), the telltale of the other
    order, until ``layout`` says which it is. An empty, 0-d or text ``X``/``y`` (or split) is refused by name, as is
    a ``y`` of nearly one class a series (10 series or more, classes for 90% of them: measurements, row numbers)
    unless an ``X_test`` of 4 series or more repeats its classes, none other, with fewer classes than half its series
    (a test file numbered by rows, 0 to 9, repeats nothing), or ``labels="classes"`` says they are classes (a one-shot set:
    one series a class, tested on one a class); a file read whole for a trained model is not judged so (its labels are
    held to the model's classes) (see :class:`~neuroview.data.CsvDataModule`).
    ``path`` may start with ``~``. A sha256 of the training split as read (``X``, ``y``, ``lengths`` values in order;
    not ``X_test``/``X_val`` nor other keys) is kept in a checkpoint's state: the model's own file whose training split
    changed since (rows reordered, series added) is refused where that state is given (``--ckpt_path``); so are 16 hex
    digits of each series fitted on, and a test (validation) split or a file read whole that holds the training split,
    or some of its series (counted, with their rows), is warned about.
    ``batch_size="auto"`` takes a
    tenth of the training series, within [4, 64], as the ``ucr_*`` recipes do on an aeon set:
    ``neuroview fit --config recipes/ucr_nv_cnn.yaml --data neuroview.data.NpzDataModule
    --data.init_args.path my.npz`` keeps the recipe's ``auto``, ``resample`` and ``normalize``.
    """

    #: How the file is written (see :attr:`CsvDataModule.FILE_FORMAT`).
    FILE_FORMAT = ("layout", "padding")
    #: What gives the validation split of one's own (named where ``val_fraction`` is then unused).
    OWN_VAL = "X_val"

    def __init__(self, path: str, *, test_fraction: float = 0.2, batch_size: int | Literal["auto"] = 64,
                 val_fraction: float = 0.1, seed: int = 0,
                 val_fold: int | None = None, normalize: bool | Literal["series", "sample"] = True,
                 num_workers: int = 0, eval_batch_size: int | None = None, resample: bool = False,
                 layout: Literal["auto", "channels_first", "channels_last"] = "auto",
                 padding: Literal["auto", "post", "pre"] = "auto", labels: Literal["auto", "classes"] = "auto"):
        # absolute, as the saved hyper-parameters hold it: the same file from any folder ("~/x" expanded, not <cwd>/~/x)
        path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed,
                         val_fold=val_fold, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size, resample=resample)
        check_fraction("test_fraction", test_fraction)
        self.path = Path(path)
        self.test_fraction = test_fraction
        if layout not in ("auto", "channels_first", "channels_last"):
            raise ValueError(f"layout: expected 'auto', 'channels_first' (X [N, C, *spatial]) or 'channels_last' "
                             f"(X [N, *spatial, C]), got {layout!r}")
        self.layout = layout
        if padding not in ("auto", "post", "pre"):
            raise ValueError(f"padding: expected 'auto', 'post' (each series' valid steps first, as lengths count them) or "
                             f"'pre' (its valid steps last: Keras' pad_sequences default), got {padding!r}")
        self.padding, self.labels = padding, check_labels_option(labels)

    def load(self) -> dict[str, tuple]:
        if not self.path.is_file():
            raise FileNotFoundError(f"path: expected an .npz file with arrays X and y, got {str(self.path)!r} (no such file)")
        # allow_pickle=False: an .npz of plain arrays never needs it, and it would run code
        try:
            with np.load(self.path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except Exception as e:  # BadZipFile, a pickled object array, a truncated member, a .npy rather than an .npz
            if what := object_arrays(self.path, self.path.name):  # pandas' labels, ragged series: named, with the fix
                raise ValueError(what) from e
            raise ValueError(f"path: expected an .npz file of plain arrays X and y, got {str(self.path)!r}, which is not one "
                             f"({type(e).__name__}: {str(e).splitlines()[0]})") from e
        if "X" not in arrays or "y" not in arrays:
            raise ValueError(f"path: expected arrays 'X' and 'y' in {self.path.name}, found {sorted(arrays)}")
        _check_keys(arrays, self.path.name)

        for s in ("_test", "_val"):  # a split of one's own missing its X would be carved from X, its labels unread
            stray = [k for k in ("y" + s, "lengths" + s) if k in arrays and "X" + s not in arrays]
            if stray:
                raise ValueError(f"path: expected X{s} in {self.path.name} along with {' and '.join(stray)}, found "
                                 f"{sorted(arrays)}; add X{s} or drop {' and '.join(stray)}")

        def split(suffix: str):
            if "y" + suffix not in arrays:
                raise ValueError(f"path: expected y{suffix} (the labels of X{suffix}) in {self.path.name}, found "
                                 f"{sorted(arrays)}")
            x, y = arrays["X" + suffix], arrays["y" + suffix]
            _check_arrays(x, y, suffix, self.path.name)
            x = _channels_first_of(x, self.layout, suffix, self.path.name)
            if "lengths" + suffix in arrays:
                x = _cut(x, _lengths(arrays["lengths" + suffix], len(x), x.shape[-1], suffix), self.padding, suffix,
                         self.path.name)
            elif suffix and "lengths" in arrays:  # the file is padded: this split's padding would be read as data
                raise ValueError(f"path: {self.path.name} has lengths for X (padded series) but none for X{suffix}; add "
                                 f"lengths{suffix} (each series' own length; the full width for a series that is not padded)")
            else:  # NaN past a series' valid steps (a frame of rows of several lengths): shorter series, as a CSV's
                x = nan_padded(x, self.padding, suffix, self.path.name)
            _finite(x, y, suffix)
            return x, y

        out = {"train": split("")}
        if "lengths" not in arrays:  # padded series saved without their lengths?
            warn_unread_padding(out["train"][0], self.path.name, self.padding)
        # the training split as read, and whether the file carves it (the training file changed since refused)
        self._fingerprint(*out["train"], own=tuple(s for s in ("test", "val") if f"X_{s}" in arrays))  # channels first, cut
        rows = np.arange(len(out["train"][1]))  # the file rows of the training split, as read (before any carve)
        if "X_test" in arrays:
            out["test"] = split("_test")
            warn_fraction_unused(self, "test_fraction", "test", "X_test")
        test_y = text_labels(out["test"][1]) if "test" in out else None
        if self.labels == "auto" and not self._whole_file and (what := one_class_a_series(text_labels(out["train"][1]), test_y)):
            raise ValueError(f"path: y of {self.path.name}: expected class labels (several series a class), got {what}: "
                             "measurements or row numbers rather than classes? store each series' class in y" + ONE_SHOT)
        if "test" not in out and self._whole_file:  # a file of new series, not the model's: scored whole
            out["train"], out["test"] = self._whole_test(*out["train"], self.path.name)
        elif "test" not in out:
            x, y = out["train"]
            keep, test = stratified_split(text_labels(np.asarray(y)).astype(str), self.test_fraction, self.seed + 1)
            if not len(test):  # nothing would be tested, without a word
                raise ValueError(empty_held_out(text_labels(np.asarray(y)).astype(str), "test_fraction", self.test_fraction, "test",
                                                f"add a test split of your own to {self.path.name} (X_test, y_test)"))
            out["train"], out["test"] = (_take(x, keep), y[keep]), (_take(x, test), y[test])
            rows, self._test_rows = keep, test  # the rows of X each split's series are (predictions.csv's file_index)
        self._rows_read(rows, out["train"][1], self._test_rows, "X_val" in arrays)
        if "X_val" in arrays:
            out["val"] = split("_val")
        for s in ("_test", "_val"):  # X given again as its own test split: test_acc would be training accuracy
            if "X" + s in arrays and not self._whole_file:
                warn_training_again(arrays["X"], arrays["X" + s], f"path: X{s}", f"{self.path.name} (X)")
        own = {f"path: X_{k}": out[k] for k in ("test", "val") if f"X_{k}" in arrays}  # the model's training split again?
        self._hold_out(own if "X_test" in arrays or not self._whole_file else own | {"path": out["test"]})
        return out


def _check_keys(arrays: dict, name: str) -> None:
    """A key that is a key the module reads but for case, underscores or a plural's ``s`` (``X_Test``, ``Xtest``,
    ``length``) refused by name, with that key: such a file left a fifth of ``X`` carved as the test split, or read
    the zero padding as steps, without a word. Other keys (``classes``, ``y_names``, ``X_std``: a user's own record)
    are warned about as unread."""
    def plain(k: str) -> str:
        return re.sub("[^a-z]", "", k.lower()).replace("lengths", "length")

    known = {plain(k): k for k in KEYS}
    unknown = sorted(k for k in arrays if k not in KEYS)
    typos = [f"{k!r} (did you mean {known[plain(k)]!r}?)" for k in unknown if plain(k) in known]
    if typos:
        raise ValueError(f"path: {name} holds keys NpzDataModule does not read: {', '.join(typos)}; it reads "
                         f"{', '.join(KEYS)} (found {sorted(arrays)}); rename each key to the one it stands for")
    if unknown:
        warnings.warn(f"path: {name} holds arrays NpzDataModule does not read: {', '.join(map(repr, unknown))} (it "
                      f"reads {', '.join(KEYS)})", UserWarning, stacklevel=2)


def _check_arrays(x: np.ndarray, y: np.ndarray, suffix: str, name: str) -> None:
    """``X{suffix}`` and ``y{suffix}`` of the file ``name`` checked before any is read: numbers ``[N, ...]`` and one
    label a series, at least one series of at least one value (empty, a 0-d or text array failed deep in numpy or torch,
    naming neither)."""
    if x.ndim < 2:
        raise ValueError(f"path: X{suffix} of {name} must be [N, C, *spatial] or [N, T], got shape {x.shape}")
    if x.dtype.kind not in "biuf":  # text ("0.5" stored as a string), complex, dates
        what = "text" if x.dtype.kind in "US" else "values that are no real numbers"
        raise ValueError(f"path: X{suffix} of {name}: expected numbers (a float or int array), got {what} (dtype "
                         f"{x.dtype}); store X{suffix} as numbers (X{suffix}.astype(np.float32))")
    if y.ndim != 1:
        raise ValueError(f"path: y{suffix} must hold one label per sample, shape [{len(x)}], got shape {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"path: X{suffix} has {len(x)} samples but y{suffix} has {len(y)}")
    if not len(x):
        fix = "; drop X_test and y_test to hold out test_fraction of X instead" if suffix == "_test" else (
            "; drop X_val and y_val to hold out val_fraction of X instead" if suffix == "_val" else "")
        raise ValueError(f"path: X{suffix} and y{suffix} of {name}: expected at least one series, got none (X{suffix} of "
                         f"shape {x.shape}, y{suffix} of shape {y.shape}){fix}")
    check_values(x.shape, f"path: X{suffix} of {name}", f"store X{suffix} with at least one channel and one step")


def _channels_first_of(x: np.ndarray, layout: str, suffix: str, name: str) -> np.ndarray:
    """``X{suffix}`` as ``[N, C, *spatial]``: a 2-D ``X`` is one channel; ``channels_last`` moves the
    last axis to the channels'. Under ``auto``, more channels than the last axis is long (``[N, 500, 3]``:
    500 channels of 3 steps, or 3 channels of 500 steps?) is refused: read the wrong way, every
    step would be a channel and the network would train on it without a word; so is a tie (``[N, 6, 6]``), which
    tells neither way."""
    if x.ndim == 2:
        return x[:, None]
    if x.ndim < 2:
        raise ValueError(f"path: X{suffix} must be [N, C, *spatial] or [N, T], got shape {x.shape}")
    if layout == "channels_last":
        return np.moveaxis(x, -1, 1)
    if layout == "auto" and (x.shape[1] > x.shape[-1] or x.shape[1] == x.shape[-1] > 1):  # a tie tells neither way
        shape = list(x.shape)
        more = "more channels than steps" if shape[1] > shape[-1] else "as many channels as steps"
        raise ValueError(f"path: X{suffix} of {name} has shape {shape}: read as [N, C, *spatial] it holds {shape[1]} "
                         f"channels of {shape[-1]} along its last axis, {more}, as an [N, *spatial, C] "
                         f"array would; pass layout='channels_last' (--data.init_args.layout channels_last) if its channels "
                         f"are last, or layout='channels_first' if they are {shape[1]}"
                         + (f"; images of one channel ([N, H, W]) need their channel axis: store X{suffix}[:, None]"
                            if x.ndim == 3 else ""))
    return x


def _finite(x, y: np.ndarray, suffix: str) -> None:
    """A NaN in a series (within its length) spreads over its whole channel through normalization, and a
    NaN label reads as a class "nan": both refused by name, with the series' index in the file."""
    at = _first_not_finite(text_labels(np.asarray(y)))  # a float, or text that reads as one ("nan"): its row in the
    if at is not None:  # file, before a test split is carved (the split's own row numbers named another series)
        raise ValueError(f"path: y{suffix} holds NaN or inf at series {at} ({str(y[at])!r}); "
                         "every series needs a class label (drop those series)")
    if isinstance(x, list):  # cut to their lengths
        bad = [i for i, s in enumerate(x) if s.dtype.kind == "f" and not np.isfinite(s).all()]
    else:
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(1)).tolist() if x.dtype.kind == "f" else []
    if bad:
        raise ValueError(f"path: X{suffix} holds NaN or inf in {len(bad)} series (the first: series {bad[0]}); fill or drop "
                         "them (only the padding past a series' length may hold NaN)")


def _lengths(n: np.ndarray, count: int, steps: int, suffix: str) -> np.ndarray:
    """``lengths{suffix}`` as ints, one in [1, steps] per series: a length that does not fit its
    series is an error (``s[:, :n]`` would cut -1 from the end, read 2.5 as 2 and 6 as the 5 there are)."""
    numeric = np.issubdtype(n.dtype, np.number) and n.size > 0
    if not (numeric and n.shape == (count,)) or bool(np.any(n != np.round(n))) or n.min() < 1 or n.max() > steps:
        got = f"shape {n.shape}" + (f", values {n.min():g} to {n.max():g}" if numeric else "")
        raise ValueError(f"path: lengths{suffix} must hold one whole number in [1, {steps}] (the steps of X{suffix}) "
                         f"per series, shape [{count}]; got {got}")
    return n.astype(int)


def _cut(x: np.ndarray, n: np.ndarray, padding: str, suffix: str, name: str) -> list[np.ndarray]:
    """Each series of ``X{suffix}`` (``[N, C, T]``) cut to its length: its first ``n`` steps (``padding`` "post" or
    "auto"), or its last (``"pre"``). Under ``"auto"``, a file padded at the start (Keras' ``pad_sequences`` default)
    is refused: read by its first steps, each series kept its padding and the start of its data, and the rest, often
    all of its data, was dropped as padding, without a word. Under ``"pre"`` (given, or carried from a checkpoint to
    another file), a file padded at the end is refused the same way, mirrored: its padding was read as the series."""
    steps = x.shape[-1]
    if padding == "pre":
        if at_end := _padded_at_start(x[..., ::-1], n):
            raise ValueError(f"path: X{suffix} of {name} is read with padding='pre' (each series' last lengths steps) "
                             f"but looks padded at the end: {at_end[0]} of its {at_end[1]} series shorter than {steps - 1} "
                             f"steps end with one padding value (a value per channel) for as many steps as "
                             f"lengths{suffix} leaves ({steps} - length), and hold data before, which would be dropped "
                             "(the padding read as the series); pass padding='post' (--data.init_args.padding post) to "
                             "read each series' first lengths steps, as torch's pad_sequence lays them")
        return [s[..., steps - k:] for s, k in zip(x, n)]
    if padding == "auto" and (at_start := _padded_at_start(x, n)):
        raise ValueError(f"path: X{suffix} of {name} looks padded at the start: {at_start[0]} of its {at_start[1]} "
                         f"series shorter than {steps - 1} steps begin with one padding value (a value per channel) for as "
                         f"many steps as lengths{suffix} leaves ({steps} - length), and hold data past their lengths, "
                         "which would be dropped as padding (the padding read as the series); pass padding='pre' "
                         "(--data.init_args.padding pre) to read each series' last lengths steps, as Keras' "
                         "pad_sequences(padding='pre') lays them, or padding='post' if the valid steps do come first")
    return [s[..., :k] for s, k in zip(x, n)]


def _padded_at_start(x: np.ndarray, n: np.ndarray) -> tuple[int, int] | None:
    """``(series that read as padded at the start, series padded by 2 steps or more)``, where the file reads so; else
    None. A series of length ``k`` is flat at the start where each channel holds its own value over its first ``T - k``
    steps (the padding: 0, NaN, or one value a channel, as a per-feature scaler leaves zero padding, or a held first
    value), and flat at the end likewise over its last ``T - k`` (0, NaN, a held last value, a channel's mean). A series
    padded by one step is flat at both ends (any one step is), so it is judged by nothing and not counted. One-value
    padding leaves every padded series flat where it is: every series flat at the start and some not at the end is
    padded at the start (all counted), unless fewer are not flat at the end than end runs stop exactly where the
    padding would (one odd length among series at rest); the mirror is padded at the end. Otherwise each series votes: flat at the start and not at the
    end for the start; flat at both ends for the end whose flat run stops exactly where the padding would (``T - k``
    steps); flat at neither, for nothing. Padded at the start where more than half of the series so vote, and more than
    for the end (a few series at rest do not tip a file of undecided ones)."""
    steps = x.shape[-1]
    short = np.flatnonzero(n < steps - 1)  # padded by 2 steps or more
    if not len(short) or x.dtype.kind not in "biuf":
        return None
    head, tail = _flat_runs(x, short, steps - n[short])
    pad = steps - n[short]
    lead, trail = head >= pad, tail >= pad
    both = lead & trail
    exact_start, exact_end = both & (head == pad) & (tail != pad), both & (tail == pad) & (head != pad)
    if lead.all() and not trail.all() and (~trail).sum() >= exact_end.sum():  # no one-value padding at the end leaves
        return len(short), len(short)  # a series unflat there (unless outnumbered by end runs that stop at the padding)
    if trail.all() and not lead.all() and (~lead).sum() >= exact_start.sum():
        return None
    pre = int(((lead & ~trail) | exact_start).sum())
    post = int(((trail & ~lead) | exact_end).sum())
    return (pre, len(short)) if pre > post and 2 * pre > len(short) else None
