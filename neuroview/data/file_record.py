"""What a data module of the user's own file (:class:`~neuroview.data.NpzDataModule`, :class:`~neuroview.data.CsvDataModule`)
records of it in its checkpoint state: a sha256 of its training split as read (:func:`series_sha256`), 8 bytes of each
series fitted on (:func:`series_digests`), and the file's row of each sample of each split.

The fingerprint covers what decides the carve and the training series, nothing else: their values (float32 or float64
alike), shapes and lengths, their labels, in order, and whether the file gives a test or validation split of its own.
Not the file's bytes (another zip, CRLF line endings), its own test or validation arrays (new series to score), nor keys
it does not read. A module given the checkpoint's record (Lightning's ``load_state_dict`` on ``--ckpt_path``,
:func:`hold_to_checkpoint` elsewhere) and carving its file as the model's own refuses it by name where the fingerprints
differ: read again, the file is carved otherwise, and its "test" split held series the model was trained on, scored as
if unseen (10 of 12); other data holding series fitted on is warned of. May import the rest of ``neuroview.data``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from .own_splits import _same_series
from .splits import folds_of, stratified_fold, stratified_split, text_labels

__all__ = ["RECORD", "FileRecord", "changed_file", "check_recorded_file", "hold_to_checkpoint", "hold_to_spec", "read_record",
           "recorded_file", "series_digests", "series_sha256"]

#: The key of the record in the data module's checkpoint state: ``{"path", "series_sha256", "series_digests"}`` of the
#: training file (the digests, 8 bytes of each series fitted on, from s22 on, as "b64:" and their base64: text that a
#: JSON data spec holds too, and that torch.save keeps smaller than bytes; hex in a checkpoint of ee8c262).
RECORD = "neuroview_data_file"
_KEY, _DIGESTS = "series_sha256", "series_digests"
_CHUNK = 1 << 20  # values hashed at a time: a bounded float64 copy, never one of the whole array


def series_sha256(x, y, lengths=None, own: tuple[str, ...] = ()) -> str:
    """The hex sha256 of a training split as read: ``x`` (an array ``[N, ...]`` or a list of series) value for value
    (the same values in float32, float64 or ints alike: :func:`_canonical`), with its shapes, ``lengths`` (where
    given), the labels ``y`` as text, in order, and ``own``: the splits the file gives of its own (``"test"``,
    ``"val"``), which decide the carve. Hashed a block of values at a time (no copy of the whole array)."""
    h = hashlib.sha256()
    labels = np.asarray(text_labels(np.asarray(y))).astype(str)
    h.update(f"own={sorted(own)}|n={len(labels)}|".encode())
    h.update("\x1f".join(labels.tolist()).encode("utf-8", "surrogatepass"))  # a lone surrogate too
    if lengths is not None:
        h.update(b"|lengths|" + np.ascontiguousarray(np.asarray(lengths, dtype=np.int64)).tobytes())
    series = [x] if isinstance(x, np.ndarray) else [np.asarray(s) for s in x]
    if lengths is not None and isinstance(x, np.ndarray) and x.ndim >= 2:  # each series to its length: not the padding
        series = [x[i, ..., :n] for i, n in enumerate(np.asarray(lengths, dtype=np.int64).reshape(-1).tolist())]
    for s in series:
        h.update(f"|{tuple(s.shape)}|".encode())
        for i in range(0, s.size, _CHUNK):
            for part in _canonical(s.reshape(-1)[i:i + _CHUNK]):
                h.update(part)
    return h.hexdigest()


def series_digests(x, rows=None) -> bytes:
    """8 bytes of sha256 of each series of ``x`` (an array ``[N, ...]`` or a list of series; ``rows``: those rows, in
    that order), joined: its shape and values as :func:`series_sha256` reads them (float32 or float64 alike), the same
    series in any file, order or split, whatever its label. Kept for the series fitted on: 640 kB of base64 for 60,000."""
    rows = np.arange(len(x)) if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
    if not isinstance(x, np.ndarray):  # series of several shapes: each a block of its own
        return b"".join(series_digests(np.asarray(x[i])[None]) for i in rows.tolist())
    width, head, out = int(np.prod(x.shape[1:])), f"{tuple(x.shape[1:])}".encode(), []
    for a in range(0, len(rows), step := max(1, _CHUNK // max(width, 1))):  # a bounded copy at a time, each series
        block = x[rows[a:a + step]].reshape(min(step, len(rows) - a), width)  # as _canonical reads it: float32 where
        as32 = np.add(block, np.float32(0), dtype=np.float32, casting="unsafe")  # each of its values is one
        same = ((as32 == block) | (np.isnan(as32) & np.isnan(block) if block.dtype.kind in "fc" else False)).all(1)
        as64 = None if same.all() else np.add(block, 0.0, dtype=np.float64)
        out += [hashlib.sha256(b"".join((head, b"f4", as32[i]) if one else (head, b"f8", as64[i]))).digest()[:8]
                for i, one in enumerate(same.tolist())]
    return b"".join(out)


def _canonical(values: np.ndarray) -> tuple[bytes, memoryview]:
    """A block of values as bytes that depend on the values alone, and their width: float32 where each value is one
    (half the bytes to hash), else float64; ``-0.0`` as ``0.0``."""
    as32 = np.add(values, np.float32(0), dtype=np.float32, casting="unsafe")
    if values.dtype == np.float32 or np.array_equal(as32, values, equal_nan=values.dtype.kind in "fc"):
        return b"f4", memoryview(as32).cast("B")
    return b"f8", memoryview(np.add(values, 0.0, dtype=np.float64)).cast("B")


class FileRecord:
    """Mixed into an :class:`~neuroview.data.ArrayDataModule` that reads one training file at ``self.path``: its ``load``
    fingerprints the training split it read (:meth:`_fingerprint`) and records the rows of its carve (:meth:`_rows_read`)."""

    _series_sha256: str | None = None  # series_sha256 of the training split as read (None: read whole, or not yet)
    _trained_file: tuple[dict, str | None, bool, str | None] | None = None  # the record, the checkpoint, a resume, model
    _unrecorded: tuple | None = None  # (a checkpoint recording no fingerprint, its trained path): warned once, if own
    _loaded_rows: tuple[np.ndarray, np.ndarray, bool] | None = None  # load's training split: file rows, labels, own val
    _held_out: dict | None = None  # load's other splits, {option: (x, y, warn_training_again's)}, until held to a record
    _read_x, _fit_rows = None, None  # the training split as fingerprinted, its rows fitted on: until a record is written
    _digests: str | None = None  # series_digests of those rows as "b64:" text, once a record is written

    def _fingerprint(self, x, y, lengths=None, own: tuple[str, ...] = ()) -> None:
        """Record the training split's fingerprint (:func:`series_sha256`) and hold it to the checkpoint's, where one
        was given; a file read whole (new data, never the model's own) is neither fingerprinted nor held."""
        if getattr(self, "_whole_file", False):
            return
        self._series_sha256, self._read_x, self._digests = series_sha256(x, y, lengths, own), x, None
        self._check_file()
        self._warn_unrecorded()

    def _hold_out(self, splits: dict) -> None:
        """The splits ``load`` read besides the training split (``{option: (x, y)}``: ``test_path``, ``X_test``, ``X_val``,
        a file read whole), held to the checkpoint's record (now if given, else when it is): one holding series fitted on
        (a swapped ``path``/``test_path``) is warned about. Not kept by a fit (a resume holds its own file)."""
        fn = getattr(getattr(getattr(self, "trainer", None), "state", None), "fn", None)
        x, fn = self._read_x, str(getattr(fn, "value", fn))  # a split that is this file's X again: warn_training_again's
        self._read_x, self._fit_rows = (x, self._fit_rows) if fn in ("None", "fit") else (None, None)  # test: none kept
        if splits and (self._trained_file is not None or fn != "fit"):
            self._held_out = {k: (s[0], s[1], x is not None and _same_series(x, s[0])) for k, s in splits.items()}
            self._check_held_out()

    def _check_held_out(self) -> None:
        if self._trained_file is None or not self._held_out:
            return
        (record, ckpt, _, model), splits, self._held_out = self._trained_file, self._held_out, None  # hashed once
        model = model or (f"the checkpoint {ckpt}" if ckpt else "the checkpoint")
        for what, (x, y, said) in splits.items():
            if any(series_sha256(x, y, own=own) == record[_KEY] for own in ((), ("test",), ("val",), ("test", "val"))):
                swap = " (path and test_path swapped?)" if what == "test_path" else ""
                warnings.warn(f"{what}: its series are the training split {model} was trained on ({record['path']}), "
                              f"value for value{swap}: its accuracy is training accuracy, scored as if unseen; pass "
                              "series the model was not trained on", UserWarning, stacklevel=3)
            elif not said and (fitted := _fitted(record.get(_DIGESTS))):  # all or some, in any order, any labels
                _warn_seen(what, series_digests(x), fitted, f"those {model} was fitted on ({record['path']})")

    def _rows_read(self, train_rows: np.ndarray, train_y, test_rows: np.ndarray | None, own_val: bool) -> None:
        """The file rows of ``load``'s training split (labels ``train_y``) and test split (``None``: its own), and
        whether the file gives a validation split of its own (``X_val``, ``val_path``: none carved from the rows)."""
        self._loaded_rows = (np.asarray(train_rows), text_labels(np.asarray(train_y)), own_val)
        self._test_rows, self._fit_rows = test_rows, None if self._read_x is None else np.asarray(train_rows)

    def _fitted_digests(self) -> str | None:
        """:func:`series_digests` of the series fitted on (not the test carve), computed where a record is first written
        (a checkpoint's state, :func:`read_record`): never on a read that writes none (test, predict, explain)."""
        if self._digests is None and self._fit_rows is not None:
            self._digests = "b64:" + base64.b64encode(series_digests(self._read_x, self._fit_rows)).decode()
            self._read_x = self._fit_rows = None  # digested: the series are not kept
        return self._digests

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self._series_sha256 is not None:  # a module never set up reads no file to record
            state[RECORD] = {"path": str(self.path), _KEY: self._series_sha256} | (
                {_DIGESTS: d} if (d := self._fitted_digests()) is not None else {})
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Lightning restores a checkpoint's state (``--ckpt_path``, a resume): its training file is held to it."""
        super().load_state_dict(state_dict)
        trainer = getattr(self, "trainer", None)
        if (sel := getattr(getattr(trainer, "_data_connector", None), "_datahook_selector", None)) and sel.datamodule is not self:
            return  # an earlier fit's, kept on the trainer (restored by Lightning), not read by this call: given loaders
        state, ckpt = getattr(getattr(trainer, "state", None), "fn", None), getattr(trainer, "ckpt_path", None)
        record = (state_dict or {}).get(RECORD)
        if _valid(record):
            self.expect_file(record, ckpt, resume=str(getattr(state, "value", state)) == "fit")
        else:  # a checkpoint of this class written before the record: nothing to hold its file to, said once
            trained: list = []
            _data_state(ckpt, type(self), trained) if ckpt else None
            self.expect_unrecorded(ckpt, trained[0] if trained else None)

    def expect_file(self, record: dict | None, ckpt: str | None = None, resume: bool = False, model: str | None = None):
        """Hold the training split this module reads, where it carves its file as the model's own, to the one the
        model ``ckpt`` was trained on (``record``): checked now if read, else when it is read. ``resume``: the run is
        resumed, on this file whatever its path. ``model``: how the refusal names the model (default: the checkpoint)."""
        if _valid(record):
            self._trained_file = (record, None if ckpt is None else str(ckpt), resume, model)
            self._check_file()
            self._check_held_out()

    def expect_unrecorded(self, ckpt: str | None, trained=None) -> None:
        """The model's checkpoint ``ckpt`` records no fingerprint of its training split (written before one was): where
        this module carves its file as the model's own (the ``trained`` path or a copy of it; any file where that path is
        not known), one ``UserWarning`` says that a change to the file since cannot be seen (now if read, else when it
        is); a file read whole, or another file, is new data, said nothing."""
        self._unrecorded = ("the checkpoint" if ckpt is None else f"the checkpoint {ckpt}", trained)
        self._warn_unrecorded()

    def _warn_unrecorded(self) -> None:
        if self._unrecorded is None or self._series_sha256 is None or getattr(self, "_whole_file", False):
            return
        (model, trained), self._unrecorded = self._unrecorded, None  # said once
        if trained is not None and os.path.isabs(os.path.expanduser(str(trained))) and not _same_path(trained, self.path):
            # (a relative path, as checkpoints before 43f626c saved it, is of a working folder not known here: said)
            from .read_as import same_file  # noqa: PLC0415 - a copy of the trained file is carved as the model's own

            if not same_file(trained, self.path):
                return  # another file: not the model's own
        warnings.warn(_unrecorded_text(model, self.path), UserWarning, stacklevel=2)

    def _check_file(self) -> None:
        if self._trained_file is None or self._series_sha256 is None or getattr(self, "_whole_file", False):
            return
        record, ckpt, resume, model = self._trained_file
        if record[_KEY] == self._series_sha256:
            return
        from .read_as import same_file  # noqa: PLC0415 - how a command took this file for the model's own

        # a resume reads the run's own file whatever its path; another command, the file at the trained path or a copy
        # of the one there now (a command takes it for the model's own, by its bytes), carved as the model's own
        if resume or _same_path(record["path"], self.path) or same_file(record["path"], self.path):
            raise ValueError(changed_file(str(self.path), ckpt, record[_KEY], self._series_sha256, record["path"], resume, model))

    def split_rows(self, split: str) -> np.ndarray | None:
        """The file's row (its series in order) of each sample of ``split`` (``train``, ``val``, ``test``), as
        ``predictions.csv``'s ``file_index`` names it; ``None`` for a split of the file's own (``X_val``,
        ``test_path``: its rows in order) or a module that recorded none."""
        self._prepare()
        if split == "test":
            return self._test_rows
        if self._loaded_rows is None or split not in self._splits:
            return None
        rows, y, own_val = self._loaded_rows
        if own_val or self.val_fraction == 0:
            keep, held = np.arange(len(rows)), None
        else:  # the validation carve of ArrayDataModule._parts, by the same function and seed
            keep, held = (stratified_split(y.astype(str), self.val_fraction, self.seed) if self.val_fold is None else
                          stratified_fold(y.astype(str), folds_of(self.val_fraction, self.val_fold), self.val_fold, self.seed))
        if (pick := keep if split == "train" else held) is None:
            return None
        names = np.asarray(self.class_names, dtype=str)
        if not np.array_equal(names[self._splits[split][1].numpy()], y[pick].astype(str)):
            warnings.warn(f"{type(self).__name__}: the {split} split's rows of {Path(self.path).name} cannot be told "
                          "(its labels are not the file's on those rows): no file_index is given", UserWarning, stacklevel=2)
            return None
        return rows[pick]


def _fitted(digests) -> set[bytes]:
    """A record's digests of the series fitted on ("b64:" text, or hex: :data:`RECORD`) as 8-byte digests; none where it
    holds none (a checkpoint before s22) or none that can be read."""
    try:
        raw = base64.b64decode(digests[4:], validate=True) if digests[:4] == "b64:" else bytes.fromhex(digests)
    except (TypeError, ValueError):
        return set()
    return {raw[i:i + 8] for i in range(0, len(raw) - len(raw) % 8, 8)}


def _warn_seen(what: str, digests: bytes, fitted: set[bytes], whose: str) -> None:
    """Warn where some or all of a held-out split's series (their ``digests``) are among the series a model was fitted
    on (``fitted``: :func:`_fitted`), whatever their order and labels, naming how many and their rows."""
    if not (rows := [i for i in range(len(digests) // 8) if digests[8 * i:8 * i + 8] in fitted]):
        return
    shown = ", ".join(map(str, rows[:8])) + (", ..." if len(rows) > 8 else "")
    warnings.warn(f"{what}: {len(rows)} of its {len(digests) // 8} series are series of {whose}, value for value (rows "
                  f"{shown}: predictions.csv's file_index): scored as if unseen, they lift its accuracy toward training "
                  "accuracy; drop them to score held-out series only", UserWarning, stacklevel=4)


def changed_file(path: str, ckpt: str | None, then: str, now: str, trained: str | None = None,
                 resume: bool = False, model: str | None = None) -> str:
    """The refusal of a file carved as the model's own whose training split is not the one the checkpoint ``ckpt``
    recorded: at its trained path (``trained``; ``None``: ``path``), a copy of the file there now (taken for the model's
    own by its bytes), or a resume's (``resume``). ``model``: how the model is named (default: the checkpoint)."""
    model = model or (f"the checkpoint {ckpt}" if ckpt else "the checkpoint")
    trained = path if trained is None else trained
    if _same_path(trained, path):
        what = f"is the file {model} was trained on, but its training split changed since"
    elif os.path.isfile(trained):
        what = f"is a copy of {trained}, the file {model} was trained on, but that file changed since"
    else:
        what = f"is not {trained}, the file {model} was trained on, and holds another training split"
    head = (f"path: {path} {what} (its series, their labels or order, or whether it holds a test or validation split of "
            f"its own; sha256 {now[:12]}... of the training series as read, {then[:12]}... when trained)")
    if resume:
        return (f"{head}: a resume would carve the training and validation splits of the changed file otherwise, mid-run "
                "(series validated on so far trained on, and the reverse). Restore the file as it was to resume the run, "
                f"or start a new run from these weights on the new file: neuroview fit --model.init_weights {ckpt or 'CKPT'} "
                "(without --ckpt_path)")
    return (f"{head}; carved as the model's own data it is cut into other splits, and its test (validation) split may "
            "hold series the model was trained on, scored as if unseen. Restore the file as it was when the model was "
            f"trained; to score the new contents, keep them under another name, with {trained} restored (or gone), and "
            "pass that path: a file other than the model's is read as new data (its own test split, else every series, "
            "is scored; series the model was trained on among them are scored as if unseen)")


def recorded_file(ckpt, cls: type | str) -> dict | None:
    """The record (:data:`RECORD`) a Lightning checkpoint holds of the training file of its data module of class ``cls``
    (its state, under the class's name); ``None`` where it holds none (an older checkpoint). Its weights are not read."""
    record = (_data_state(ckpt, cls) or {}).get(RECORD)
    return record if _valid(record) else None


def _data_state(ckpt, cls: type | str, trained: list | None = None) -> dict | None:
    """The state a Lightning checkpoint holds of its data module of class ``cls`` (under the class's name); ``None`` where
    it holds none or cannot be read (memory-mapped: the weights are not read). ``trained`` (a list) gets the path of the
    file the model was trained on, as its data module's hyperparameters name it (or None)."""
    name = cls if isinstance(cls, str) else cls.__qualname__
    import torch  # noqa: PLC0415

    try:
        try:
            saved = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # a file of torch's legacy format cannot be mapped
            saved = torch.load(ckpt, map_location="cpu", weights_only=True)
        state = saved.get(name)
        if trained is not None:
            path = (saved.get("datamodule_hyper_parameters") or {}).get("path")
            trained.append(path if isinstance(path, (str, os.PathLike)) else None)
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is named where the model is loaded
        return None
    return state if isinstance(state, dict) else None


def _valid(record) -> bool:
    return isinstance(record, dict) and isinstance(record.get(_KEY), str) and isinstance(record.get("path"), str)


def hold_to_checkpoint(dm, ckpt) -> None:
    """Give ``dm`` (a data module a command built, not set up through Lightning's restore) the record of the training file
    the checkpoint ``ckpt`` holds: the model's own file, changed since, is refused when read. A checkpoint holding no
    record (written before it) is warned of, where the file is carved."""
    if ckpt is None or not isinstance(dm, FileRecord):
        return
    trained: list = []
    state = _data_state(ckpt, type(dm), trained)
    if _valid((state or {}).get(RECORD)):
        dm.expect_file(state[RECORD], str(ckpt))
    elif state is not None:
        dm.expect_unrecorded(str(ckpt), trained[0] if trained else None)


def read_record(dm, entry: str | None = None) -> dict | None:
    """The record of the training split ``dm`` carved from its file as the model's own (:data:`RECORD`, with the zoo
    ``entry`` it is kept for), for a zoo entry's or a weight file's data spec (JSON); ``None`` for a file read whole, or
    other data."""
    if not isinstance(dm, FileRecord) or dm._series_sha256 is None or getattr(dm, "_whole_file", False):
        return None
    digests = dm._fitted_digests()  # a later file holding some of the series fitted on is warned of, as a checkpoint's
    return {"path": str(dm.path), _KEY: dm._series_sha256} | ({"entry": str(entry)} if entry else {}) | (
        {_DIGESTS: digests} if digests else {})


def hold_to_spec(dm, spec: dict | None, model: str | None = None) -> None:
    """Hold ``dm``, built from a zoo entry's data spec, to the record the spec keeps (:func:`read_record`): the entry's
    own file, changed since it was made, is refused by name when it is read, and another file holding series fitted on
    is warned of. ``model``: what they call the model (a weight file's spec: ``"the weight file W.safetensors"``)."""
    record = spec.get(RECORD) if isinstance(spec, dict) else None
    if isinstance(dm, FileRecord) and _valid(record):
        dm.expect_file(record, model=model or "the zoo entry" + (f" {e}" if (e := record.get("entry")) else ""))


def _unrecorded_text(model: str, path) -> str:
    return (f"{model} records no fingerprint of its training split (it was written before neuroview recorded one), so a "
            f"change to {path} since it was trained (its rows reordered, series added) cannot be seen: the file is carved "
            "as it is now, and its test (validation) split would then hold series the model was trained on, scored as if "
            "unseen. A fit with this version of neuroview records the fingerprint")


def _warn_unrecorded_spec(ckpt, data: dict, cls: str) -> None:
    """:func:`check_recorded_file` of a checkpoint that records no fingerprint: warned where ``data`` reads the model's
    own file (its trained path, a relative one of an unknown folder, or a copy of the file there)."""
    trained: list = []
    if _data_state(ckpt, str(cls).rsplit(".", 1)[-1], trained) is None or not trained or trained[0] is None:
        return
    path = str(data["path"])
    from .read_as import same_file  # noqa: PLC0415

    if (not os.path.isabs(os.path.expanduser(str(trained[0]))) or _same_path(trained[0], path)
            or same_file(trained[0], path)):
        warnings.warn(_unrecorded_text(f"the checkpoint {ckpt}", path), UserWarning, stacklevel=3)


def check_recorded_file(ckpt, data: dict, cls: str | None, what: str = "model.init_weights") -> None:
    """Before the command's data module is made: refuse the file ``data`` (its ``init_args``) reads, judged the model's
    own data (the trained path, or a copy of the file there), where its training split is not the one the checkpoint
    ``ckpt`` recorded (data module class ``cls``; ``what``: the option that gave ``ckpt``). For a checkpoint no Lightning
    restore holds the data module to (``--model.init_weights``; ``--ckpt_path`` is checked by that restore)."""
    from .read_as import data_class  # noqa: PLC0415

    record = recorded_file(ckpt, str(cls).rsplit(".", 1)[-1]) if cls and data.get("path") is not None else None
    made = data_class(cls) if cls and data.get("path") is not None else None
    if not (isinstance(made, type) and issubclass(made, FileRecord)):
        return
    if record is None:  # written before the record: nothing to hold the file to, said where it is the model's own
        return _warn_unrecorded_spec(ckpt, data, cls)
    try:
        with warnings.catch_warnings():  # said again where the command's own data module reads it
            warnings.simplefilter("ignore")
            (dm := made(**data)).load()
    except Exception:  # noqa: BLE001 - a file gone or unreadable is named by the data module that reads it
        return
    if dm._series_sha256 is not None and dm._series_sha256 != record[_KEY]:
        raise ValueError(f"{what}: " + changed_file(str(dm.path), str(ckpt), record[_KEY], dm._series_sha256,
                                                    record["path"]).removeprefix("path: "))


def _same_path(a, b) -> bool:
    """Whether ``a`` and ``b`` name one path (the file itself, not a copy of its bytes)."""
    try:
        return os.path.realpath(os.path.expanduser(str(a))) == os.path.realpath(os.path.expanduser(str(b)))
    except (TypeError, ValueError):
        return False
