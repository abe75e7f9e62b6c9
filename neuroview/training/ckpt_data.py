"""The data a ``neuroview`` command is given, held against the data its checkpoint was trained on (the
``datamodule_hyper_parameters`` Lightning saves): a resume must read the run's own splits and batches, and a
test, validation or prediction on the model's own data must cut its splits as training did.

May import every layer below training; ``neuroview.data`` inside the functions.
"""

from __future__ import annotations

import warnings

from ..data.file_record import check_recorded_file
from ..data.read_as import data_class, same_file
from ..zoo.pretrained import _plain  # arguments compared as a manifest stores them

__all__ = ["check_evaluated_data", "check_resumed_data", "saved_class"]

# data options that change neither the splits nor the training batches
_DATA_HARMLESS = ("num_workers", "eval_batch_size", "download", "root")


def check_resumed_data(ckpt: str, data, saved: dict | None) -> None:
    """Refuse resuming with data options other than the checkpoint's ``datamodule_hyper_parameters`` (a data module
    that saves its init args): another seed, val_fraction or batch size changes the splits and batches mid-run, so
    a new validation split overlaps the samples trained on. Nothing to compare in older checkpoints."""
    if not saved:
        return
    asked = data.as_dict() if hasattr(data, "as_dict") else dict(data) if data is not None else {}
    args = dict(asked.get("init_args") or {}) if "class_path" in asked else asked
    diff = {}
    if saved.get("_class_path") and asked.get("class_path") and saved["_class_path"] != asked["class_path"]:
        diff["data"] = (asked["class_path"], saved["_class_path"])
    for k, v in saved.items():
        if not k.startswith("_") and k not in _DATA_HARMLESS and k in args and _plain(args[k]) != _plain(v) and not (
                k in _DATA_NAMES and v is not None and _same_name(args[k], v)):  # 'f.npz' is the absolute path saved
            diff[f"data.init_args.{k}"] = (args[k], v)
    if diff:
        detail = "; ".join(f"--{k} {a!r} asked, {v!r} in the checkpoint" for k, (a, v) in sorted(diff.items()))
        raise ValueError(f"ckpt_path: {ckpt} resumes a run trained on other data options ({detail}); its splits and "
                         f"batches would change mid-run (a new validation split overlapping the samples trained on): "
                         f"drop those options, or start a new run from its weights with --model.init_weights {ckpt}")


# the data options that cut the splits or read the series (of every ArrayDataModule that has them)
_SPLIT_OPTIONS = ("seed", "val_fraction", "val_fold", "test_fraction", "normalize", "resample", "layout", "padding",
                  "label_column", "channels", "delimiter", "header")
# the options that name the data read: the same class with these equal reads the data the checkpoint was trained on
_DATA_NAMES = ("path", "name", "test_path", "val_path")


def check_evaluated_data(ckpt: str, data, saved: dict | None, sub: str, what: str = "ckpt_path") -> None:
    """Refuse ``test``/``validate``/``predict`` of a checkpoint on the data it was trained on (the same data module
    class, and the same ``path``/``name`` where it has one) with split options other than its
    ``datamodule_hyper_parameters``: another seed or fraction carves other splits, whose test or validation
    split may hold training series, scored as if unseen (28 of 45 "test" series were). Other data (another
    class or file) may be scored, and options that change no split (batch sizes, workers) may differ. Refused,
    not filled in from the checkpoint: the command's options are what it reads, and the error says which. The model's
    own file whose training split is not the one the checkpoint recorded (rows reordered, series added: carved
    otherwise) is refused by name: by Lightning's restore of the data module (``--ckpt_path``), else here
    (:func:`~neuroview.data.file_record.check_recorded_file`). ``what``
    names the option that gave ``ckpt`` (``model.init_weights`` is held alike)."""
    asked = data.as_dict() if hasattr(data, "as_dict") else dict(data) if data is not None else {}
    args = dict(asked.get("init_args") or {}) if "class_path" in asked else asked
    cls = saved_class(ckpt, saved, asked) if saved else None
    if not saved or not _same_class(asked.get("class_path"), cls):
        return
    gone = [k for k in ({"validate": "val_path"}.get(sub, "test_path"),) if saved.get(k) and k in args and args[k] is None]
    if gone and all(_same_name(args[k], saved[k]) for k in ("path", "name") if k in saved and k in args):
        raise ValueError(f"{what}: {ckpt} was trained on this data with --data.init_args.{gone[0]} {saved[gone[0]]}; "
                         f"without it `neuroview {sub}` carves that split from the training file, whose series the "
                         f"model was trained on, scored as if unseen: give --data.init_args.{gone[0]} {saved[gone[0]]}")
    if any(k in saved and k in args and not _same_name(args[k], saved[k]) for k in _DATA_NAMES):
        return
    # the file first, read as the checkpoint read it (its class's FILE_FORMAT: a CSV's channels, delimiter..., an .npz's
    # padding, layout): "changed since" is said of a changed file only, before any option advice
    reading = tuple(getattr(data_class(cls), "FILE_FORMAT", _READING))
    as_read = {**args, **{k: saved[k] for k in reading if k in saved and k in args}}
    if what != "ckpt_path":  # (--ckpt_path: Lightning's restore holds the data module to the record)
        check_recorded_file(ckpt, as_read, cls, what)  # the model's own file, its training split changed: carved otherwise
    diff = {k: (args[k], saved[k]) for k in _SPLIT_OPTIONS if k in saved and k in args and _plain(args[k]) != _plain(saved[k])}
    if (fmt := [k for k in diff if k in reading]) and _reads_alike(ckpt, cls, args, as_read):  # 'auto' read as 'post'
        diff = {k: v for k, v in diff.items() if k not in fmt}  # reads, a sniffed delimiter ',' as ',' does: the same
    if diff:
        detail = "; ".join(f"--data.init_args.{k} {a!r} asked, {v!r} in the checkpoint" for k, (a, v) in sorted(diff.items()))
        split = {"validate": "validation", "predict": "test (predicted)"}.get(sub, "test")
        give = " ".join(f"--data.init_args.{k} {_as_typed(v)}" for k, (_, v) in sorted(diff.items()))
        # the test split is carved before the validation split, so it holds the same series; but they are read by the
        # training part's statistics (normalize: true, the padded length, the "no spread" scale), which it changes
        why = (f"its {split} split is the same series, read otherwise (by the statistics and series length of another "
               f"training part)" if sub != "validate" and set(diff) <= {"val_fraction", "val_fold"} else
               f"its {split} split may hold training series, scored as if unseen")
        if set(diff) <= set(reading):  # which series each split holds is unchanged: how each series is read is not
            raise ValueError(f"{what}: {ckpt} was trained on this data read otherwise ({detail}); `neuroview {sub}` "
                             f"would read its series otherwise than the model was trained on them (padding read as "
                             f"data, data dropped as padding, or channels as steps): give the checkpoint's options "
                             f"({give}), or other data")
        raise ValueError(f"{what}: {ckpt} was trained on this data with other split options ({detail}); `neuroview "
                         f"{sub}` would cut the splits otherwise, and {why}: give the checkpoint's options ({give}), or "
                         f"other data")


# the options that say how a file's series are read (not which series a split holds)
_READING = ("padding", "layout")


def _reads_alike(ckpt: str, cls: str | None, args: dict, as_read: dict) -> bool:
    """Whether the file ``args`` names reads the same series with the file-format options asked (``args``) as with the
    checkpoint's (``as_read``): ``'auto'`` reads a file as ``'post'`` does, or refuses it; a sniffed delimiter finds the
    one trained with. Judged by the training split's fingerprint against the checkpoint's record (one read), and where
    the data gives a test or validation split of its own (an .npz's ``X_test``, a ``test_path``), or the checkpoint has
    no record, by a read as trained: each split alike. A file either refuses (or none can read) is not alike."""
    from ..data.file_record import FileRecord, recorded_file, series_sha256  # noqa: PLC0415

    made = data_class(cls) if cls else None
    if not (isinstance(made, type) and issubclass(made, FileRecord)) or args.get("path") is None:
        return False
    asked = _read(made, args)
    if asked is None or asked[0]._series_sha256 is None:
        return False
    dm, out = asked
    own_val = (getattr(dm, "_loaded_rows", None) or (None, None, True))[2]  # (not known: compared)
    own = [s for s in ("test", "val") if s in out and (getattr(dm, "_test_rows", None) is None if s == "test" else own_val)]
    record = recorded_file(ckpt, str(cls).rsplit(".", 1)[-1])
    if record is not None and (dm._series_sha256 != record["series_sha256"] or not own):
        return dm._series_sha256 == record["series_sha256"]
    trained = _read(made, as_read)  # the splits of the file's own, or no record: read as the checkpoint read it
    return trained is not None and trained[0]._series_sha256 == dm._series_sha256 and all(
        s in trained[1] and series_sha256(*out[s]) == series_sha256(*trained[1][s]) for s in own)


def _read(made: type, init: dict):
    """``(data module, its splits)`` of ``made(**init)`` loaded, its warnings left to the command's own data module;
    ``None`` where it refuses the file (a pre-padded file under ``'auto'``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dm = made(**init)
            return dm, dm.load()
    except Exception:  # noqa: BLE001 - refused one way: not read alike
        return None


def saved_class(ckpt: str | None, saved: dict, asked: dict) -> str | None:
    """The class of the data module ``ckpt`` was trained on (``saved``: its ``datamodule_hyper_parameters``):
    LightningCLI's ``_class_path``, else the class an ``ArrayDataModule`` of ``neuroview.data`` records (a ``pl.Trainer``
    run of the Python API), where it is the class ``asked`` (the command's ``data``) or, both known, one that neither
    is a subclass of (other data). Else (no class: a checkpoint from before that record, or of a data module of the
    user's own; a class whose module is not imported, never imported from a file's name; the user's subclass of the
    one asked, or its base) judged by the file: the class ``asked`` where it reads the file or set the checkpoint names
    (``path``, ``name``): the model's own data, so carved as in training and held to its options; ``None`` otherwise
    (other data: a new file is scored whole)."""
    from ..data.read_as import checkpoint_data  # noqa: PLC0415

    found = saved.get("_class_path") or ((checkpoint_data(ckpt) or {}).get("class_path") if ckpt else None)
    ours, theirs = data_class(found), data_class(asked.get("class_path"))
    if found and (_same_class(asked.get("class_path"), found) or (
            ours is not None and theirs is not None and not issubclass(ours, theirs) and not issubclass(theirs, ours))):
        return found
    args = dict(asked.get("init_args") or {})
    named = [k for k in ("path", "name") if saved.get(k) is not None and args.get(k) is not None]
    return asked.get("class_path") if named and all(_same_name(args[k], saved[k]) for k in named) else None


def _as_typed(value) -> str:
    """``value`` as a command line gives it: ``null``, ``true``/``false``, else as printed."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _same_class(asked: str | None, saved: str | None) -> bool:
    """Whether two ``class_path`` name one class (``neuroview.data.NpzDataModule``, ``neuroview.data.npz.NpzDataModule``);
    a path whose module is not imported is compared as text (:func:`~neuroview.data.read_as.data_class`: a checkpoint
    naming ``this.Zen`` made neuroview import ``this``)."""
    if not asked or not saved:
        return False
    if asked == saved:
        return True
    found = data_class(asked), data_class(saved)
    return found[0] is not None and found[0] is found[1]


def _same_name(asked, saved) -> bool:
    """Whether two ``path``/``name`` values name the same data: one name, one file, or a copy of its bytes."""
    if asked is None or saved is None:
        return asked is saved
    return str(asked) == str(saved) or same_file(asked, saved)
