"""What a data module of the user's own file (:class:`~neuroview.data.NpzDataModule`,
:class:`~neuroview.data.CsvDataModule`) records of it: the sha256 of the training file's bytes as it read them, kept
in its checkpoint state, and the file's row of each sample of each split.

The model's own file is known by its path (its hyper-parameters hold it), and is carved into the same splits again
only while its contents are what they were: the same path with its rows reordered, series added or edited is carved
otherwise, and its "test" split held series the model was trained on, scored as if unseen (10 of 12). A module
given the checkpoint's record (Lightning's ``load_state_dict`` on ``--ckpt_path``, :func:`hold_to_checkpoint`
elsewhere) refuses such a file by name. May import the rest of ``neuroview.data`` and third-party libraries.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np

from .splits import folds_of, stratified_fold, stratified_split, text_labels

__all__ = ["RECORD", "FileRecord", "changed_file", "check_recorded_file", "file_sha256", "hold_to_checkpoint", "recorded_file"]

#: The key of the record in the data module's checkpoint state: ``{"path", "sha256"}`` of the training file.
RECORD = "neuroview_data_file"


def file_sha256(raw: bytes) -> str:
    """The hex sha256 of a file's bytes."""
    return hashlib.sha256(raw).hexdigest()


def arrays_sha256(arrays: dict | bytes) -> str | None:
    """The hex sha256 of an ``.npz``'s arrays (``{name: array}``, or the file's bytes): names, dtypes, shapes and
    values, in name order; ``None`` for bytes that are no ``.npz``. The same arrays saved again (another zip
    timestamp, compressed) are other bytes, and the same data: not refused."""
    if isinstance(arrays, bytes):
        try:
            with np.load(io.BytesIO(arrays), allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except Exception:  # noqa: BLE001 - not an .npz of plain arrays: judged by its bytes alone
            return None
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class FileRecord:
    """Mixed into an :class:`~neuroview.data.ArrayDataModule` that reads one training file at ``self.path``: its
    ``load`` fingerprints the bytes it read (:meth:`_fingerprint`) and records the rows of its carve (:meth:`_rows_read`)."""

    _file_sha256: dict | None = None  # {"sha256": of its bytes, "arrays_sha256": of an .npz's arrays}
    _trained_file: tuple[dict, str | None] | None = None  # the checkpoint's record, and the checkpoint
    _loaded_rows: tuple[np.ndarray, np.ndarray, bool] | None = None  # load's training split: file rows, labels, own val

    def _fingerprint(self, raw: bytes, arrays: dict | None = None) -> None:
        """Record the training file's fingerprint (its bytes ``raw``, as read; an ``.npz``'s ``arrays``) and hold it
        to the checkpoint's, where one was given."""
        self._file_sha256 = {"sha256": file_sha256(raw)} | ({"arrays_sha256": arrays_sha256(arrays)} if arrays else {})
        self._check_file()

    def _rows_read(self, train_rows: np.ndarray, train_y, test_rows: np.ndarray | None, own_val: bool) -> None:
        """The file rows of ``load``'s training split (labels ``train_y``) and test split (``None``: its own), and
        whether the file gives a validation split of its own (``X_val``, ``val_path``: none carved from the rows)."""
        self._loaded_rows = (np.asarray(train_rows), text_labels(np.asarray(train_y)), own_val)
        self._test_rows = test_rows

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self._file_sha256 is not None:  # a module never set up reads no file to record
            state[RECORD] = {"path": str(self.path), **self._file_sha256}
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Lightning restores a checkpoint's state (``--ckpt_path``, a resume): its training file is held to it."""
        super().load_state_dict(state_dict)
        trainer = getattr(self, "trainer", None)
        self.expect_file((state_dict or {}).get(RECORD), getattr(trainer, "ckpt_path", None) if trainer else None)

    def expect_file(self, record: dict | None, ckpt: str | None = None) -> None:
        """Hold the file this module reads, where it is the one ``record`` names (the same path), to the bytes the
        model ``ckpt`` was trained on: checked now if read, else when it is read."""
        if isinstance(record, dict) and isinstance(record.get("sha256"), str) and isinstance(record.get("path"), str):
            self._trained_file = (record, None if ckpt is None else str(ckpt))
            self._check_file()

    def _check_file(self) -> None:
        if self._trained_file is None or self._file_sha256 is None or getattr(self, "_whole_file", False):
            return
        record, ckpt = self._trained_file
        if _changed(record, self._file_sha256) and _same_path(record["path"], self.path):
            raise ValueError(changed_file(str(self.path), ckpt, record["sha256"], self._file_sha256["sha256"]))

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
        pick = keep if split == "train" else held
        if pick is None:
            return None
        names = np.asarray(self.class_names, dtype=str)
        if not np.array_equal(names[self._splits[split][1].numpy()], y[pick].astype(str)):
            warnings.warn(f"{type(self).__name__}: the {split} split's rows of {Path(self.path).name} cannot be told "
                          "(its labels are not the file's on those rows): no file_index is given", UserWarning, stacklevel=2)
            return None
        return rows[pick]


def changed_file(path: str, ckpt: str | None, then: str, now: str) -> str:
    """The refusal of a training file whose bytes are not those the checkpoint ``ckpt`` recorded."""
    model = f"the checkpoint {ckpt}" if ckpt else "the checkpoint"
    return (f"path: {path} is the file {model} was trained on, but its contents changed since (sha256 {now[:12]}..., "
            f"trained on {then[:12]}...: rows reordered, series added or edited); read again it is carved into other "
            "splits, and its test (validation) split may hold series the model was trained on, scored as if unseen. "
            "Restore the file as it was when the model was trained, or save the new contents under another name and "
            "pass that path (a file other than the model's is read as new data: its own test split, else every series, "
            "is scored; series the model was trained on among them are scored as if unseen)")


def recorded_file(ckpt, cls: type | str) -> dict | None:
    """The record ``{"path", "sha256"}`` a Lightning checkpoint holds of the training file of its data module of
    class ``cls`` (its state, stored under the class's name); ``None`` where it holds none (an older checkpoint)."""
    name = cls if isinstance(cls, str) else cls.__qualname__
    try:
        import torch  # noqa: PLC0415

        state = torch.load(ckpt, map_location="cpu", weights_only=True).get(name)
    except Exception:  # noqa: BLE001 - an unreadable checkpoint is named where the model is loaded
        return None
    record = state.get(RECORD) if isinstance(state, dict) else None
    return record if isinstance(record, dict) and isinstance(record.get("sha256"), str) else None


def hold_to_checkpoint(dm, ckpt) -> None:
    """Give ``dm`` (a data module a command built, not set up through Lightning's restore) the record of the training
    file the checkpoint ``ckpt`` holds: the model's own file, changed since, is refused when it is read."""
    if ckpt is not None and isinstance(dm, FileRecord):
        dm.expect_file(recorded_file(ckpt, type(dm)), str(ckpt))


def check_recorded_file(ckpt, path, cls: str | None, what: str = "ckpt_path") -> None:
    """Before any data is read: refuse the file at ``path`` where it is the training file the checkpoint ``ckpt``
    recorded (data module class ``cls``) and its bytes are not those (``what``: the option that gave ``ckpt``)."""
    record = recorded_file(ckpt, str(cls).rsplit(".", 1)[-1]) if cls and path is not None else None
    if record is None or not _same_path(record.get("path"), path):
        return
    try:
        raw = Path(os.path.expanduser(str(path))).read_bytes()
    except OSError:  # a file gone is named by the data module that reads it
        return
    now = {"sha256": file_sha256(raw)}
    if now["sha256"] != record["sha256"] and record.get("arrays_sha256"):
        now["arrays_sha256"] = arrays_sha256(raw)
    if _changed(record, now):
        raise ValueError(f"{what}: " + changed_file(os.path.abspath(os.path.expanduser(str(path))), str(ckpt),
                                                    record["sha256"], now["sha256"]).removeprefix("path: "))


def _changed(record: dict, now: dict) -> bool:
    """Whether the file fingerprinted ``now`` is not the one ``record`` names: other bytes, and (an ``.npz``) other
    arrays."""
    if record["sha256"] == now["sha256"]:
        return False
    return not (record.get("arrays_sha256") and record["arrays_sha256"] == now.get("arrays_sha256"))


def _same_path(a, b) -> bool:
    """Whether ``a`` and ``b`` name one path (the file itself, not a copy of its bytes)."""
    try:
        return os.path.realpath(os.path.expanduser(str(a))) == os.path.realpath(os.path.expanduser(str(b)))
    except (TypeError, ValueError):
        return False
