"""How a model's series are read, carried from the data it was trained on to other data it is asked to read.

A network trained on series normalized one by one (a ``ucr_*`` recipe's ``normalize: sample``) or
stretched to one length (``resample: true``) reads other data right only when that data is read the
same way; a data module built from a bare name or path (``neuroview explain --data my.npz``) would
take its own defaults and feed the network numbers it never saw, with nothing said. Holds
:func:`read_as_trained` (and :func:`read_like`: the training data's channel statistics and series length) and
:func:`checkpoint_data`; and, since a data module numbers its classes from the labels it reads,
:func:`check_classes`: other data must name the classes the model's outputs index, in the same order.
Imports nothing from neuroview outside this package, and this package's modules only inside functions.
"""

from __future__ import annotations

import warnings

__all__ = ["READ_AS", "check_classes", "check_classes_of", "checkpoint_classes", "checkpoint_data", "data_class",
           "names_classes", "note_trained_on", "read_as_trained", "read_like", "read_options"]

def checkpoint_data(path, unnamed: bool = False) -> dict | None:
    """The data module a Lightning checkpoint was trained on, ``{"class_path", "init_args"}``, where the module
    saved its arguments (every :class:`~neuroview.data.ArrayDataModule` does) and its class: LightningCLI's
    ``_class_path`` (``neuroview fit``; a name only, never imported here), else the class an ``ArrayDataModule``
    records in its ``state_dict`` (a ``pl.Trainer`` of the Python API: its checkpoint was read as one of no data, and
    `neuroview predict` scored a fifth of a new file), read only where it is one of ``neuroview.data``'s own classes
    (:func:`_public`); ``None`` otherwise, or with ``unnamed`` a class path of ``None`` where only the arguments are
    known (a checkpoint of the API from before the record, or of a data module of the user's own, which neuroview
    cannot rebuild: judged by its file, as before the record)."""
    import torch  # noqa: PLC0415

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        hp = ckpt.get("datamodule_hyper_parameters") or {}
    except Exception:  # noqa: BLE001 - a hint only; the model is loaded (and its errors named) elsewhere
        return None
    # under the key Lightning stores a data module's state by, its class's name: no other entry of the file is read
    recorded = [v["neuroview_data_class"] for k, v in ckpt.items() if isinstance(v, dict)
                and isinstance(v.get("neuroview_data_class"), str) and v["neuroview_data_class"].endswith(f".{k}")]
    cls = hp.get("_class_path") or (_public(recorded[0]) if len(recorded) == 1 else None)
    if not hp or (cls is None and not unnamed):
        return None
    return {"class_path": cls, "init_args": {k: v for k, v in hp.items() if not k.startswith("_")}}


def data_class(class_path) -> type | None:
    """The class ``class_path`` names, found without importing anything: a class of a module imported already
    (``neuroview.data``'s own, or the user's, which their ``--data mymodule.MyDM`` or their script imported), else
    ``None``. A checkpoint is data, read ``weights_only``: a module it names is never imported (a record naming
    ``this.Zen`` made `neuroview predict` import ``this``, which prints the Zen of Python)."""
    import sys  # noqa: PLC0415

    if not isinstance(class_path, str):
        return None
    module, _, name = class_path.rpartition(".")
    found = getattr(sys.modules[module], name, None) if sys.modules.get(module) is not None else None
    return found if isinstance(found, type) else None


def _public(class_path: str) -> str | None:
    """``neuroview.data.npz.NpzDataModule`` as ``neuroview.data.NpzDataModule`` (how a config names it, and the only
    classes a spec's data is read again by: :func:`read_like`); ``None`` for any other class: a data module of the
    user's own, which neuroview cannot rebuild (its checkpoint is judged by its file, and explain and sparsify ask for
    ``--data``, as before the record), or a path of a hand-edited file, never imported."""
    import sys  # noqa: PLC0415

    from .arrays import ArrayDataModule  # noqa: PLC0415

    name = class_path.rpartition(".")[2]
    cls = getattr(sys.modules[__package__], name, None)
    if (isinstance(cls, type) and issubclass(cls, ArrayDataModule) and cls is not ArrayDataModule and class_path in
            (f"{__package__}.{name}", f"{cls.__module__}.{cls.__qualname__}")):
        return f"{__package__}.{name}"
    return None


#: The options of a data module that say how the network sees a series (not which series, nor in what batches).
#: Carried to any data module; a file of the training file's own class (CsvDataModule, NpzDataModule) also takes its
#: ``FILE_FORMAT`` (channels, label column, header, delimiter; an .npz's layout and padding: a new file padded the
#: other way is refused where it reads it) and a ``val_fraction`` of 0.
READ_AS = ("normalize", "resample")


def read_as_trained(dm, trained_on: dict | None) -> dict:
    """Set on ``dm`` (a data module not yet set up, built with its defaults) the reading options of the data
    module the model was trained on, ``trained_on``: a data-module spec ``{"class_path", "init_args"}`` (what a
    Lightning checkpoint records) or a zoo entry's ``dataset`` (``{"name", "data_module": spec}``): its ``READ_AS``;
    where ``dm`` is of the same class and that class says how its files are written (``FILE_FORMAT``: a CSV of
    3 channels, its label last, is read so, not as one channel), those options too, and ``val_fraction=0`` where
    the model was trained without a validation split (a small file then need not carve one). Returns the
    options changed, ``{name: value}`` (empty when nothing says how the model read its data)."""
    from .lengths import resample_option  # noqa: PLC0415
    from .stats import normalize_option  # noqa: PLC0415

    spec = (trained_on or {}).get("data_module", trained_on) or {}
    args = spec.get("init_args", {}) if isinstance(spec, dict) else {}
    changed = {}
    for key in READ_AS:
        if key == "resample" and _images(dm):  # images are never stretched: a series option, not carried to them
            continue
        if key in args and hasattr(dm, key) and getattr(dm, key) != args[key]:
            value = (resample_option(args[key], "trained_on: resample") if key == "resample" else
                     normalize_option(args[key], "trained_on") if key == "normalize" else args[key])
            changed[key] = value
    changed.update(_file_format(dm, spec, args))
    if _same_data(dm, spec, args):  # the model's own file or set: carved as it was (another seed put training series in test)
        changed.update({k: args[k] for k in SAME_DATA if k in args and hasattr(dm, k) and getattr(dm, k) != args[k]})
    for key, value in changed.items():
        setattr(dm, key, value)
        if hasattr(dm, "hparams"):
            dm.hparams[key] = value
    if ("val_fold" in changed or "val_fraction" in changed) and hasattr(dm, "val_folds"):
        from .splits import folds_of  # noqa: PLC0415

        dm.val_folds = folds_of(dm.val_fraction, getattr(dm, "val_fold", None))
    read_like(dm, spec)
    return changed


#: The options that say which series of a file or set make each split: carried where ``dm`` reads the model's own data.
SAME_DATA = ("seed", "test_fraction", "val_fraction", "val_fold", "test_path", "val_path")


def same_file(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name one file, or two files of the same bytes: a copy of the training file is
    the training data (carved by other options, its "test" split held training series, scored as unseen)."""
    import filecmp  # noqa: PLC0415
    import os  # noqa: PLC0415

    try:
        if os.path.realpath(str(a)) == os.path.realpath(str(b)):
            return True
        if not (os.path.isfile(str(a)) and os.path.isfile(str(b))):
            return False
        return filecmp.cmp(str(a), str(b), shallow=False) or _same_npz_series(str(a), str(b))
    except (OSError, TypeError, ValueError):
        return False


def _same_npz_series(a: str, b: str) -> bool:
    """Whether two ``.npz`` files hold the same training series and labels (``X``, ``y``), value for value: the
    training file saved again (``np.savez_compressed``, other keys beside) is the training data, as its copy is."""
    if not (a.endswith(".npz") and b.endswith(".npz")):
        return False
    import numpy as np  # noqa: PLC0415

    from .own_splits import _same_series  # noqa: PLC0415 - the held-out splits' test of the same series

    with np.load(a, allow_pickle=False) as fa, np.load(b, allow_pickle=False) as fb:
        return all(k in fa and k in fb and _same_series(fa[k], fb[k]) for k in ("X", "y"))


def _same_data(dm, spec: dict, args: dict) -> bool:
    """Whether ``dm`` reads the data the model was trained on: the same class, and the same file, set name or root
    where the class reads one (a class that reads neither, such as the digits, is its data)."""
    cls = spec.get("class_path") if isinstance(spec, dict) else None
    if not isinstance(cls, str) or cls.rsplit(".", 1)[-1] != type(dm).__name__:
        return False
    if "path" in args and getattr(dm, "path", None) is not None:
        return same_file(args["path"], dm.path)
    if "root" in args and getattr(dm, "root", None) is not None:
        from pathlib import Path  # noqa: PLC0415

        try:
            return Path(args["root"]).resolve() == Path(dm.root).resolve()
        except (OSError, TypeError):
            return False
    if "name" in args:
        return getattr(dm, "name", None) == args["name"]
    return not any(getattr(dm, k, None) is not None for k in ("path", "root", "name"))


def read_like(dm, spec: dict) -> None:
    """Give ``dm`` the channel statistics (``normalize: true``) and the length of variable-length series (padded or
    stretched) of the data the model was trained on, which it reads in their place: standardized by its own
    statistics, another file reached the network shifted (a mean of 2.7 for the model's 1.5), and stretched to its own
    longest series, read at another time scale. The training data is read again from ``spec`` (the spec it names as
    ``read_like``, where it has one); where it cannot be, a warning says so."""
    while isinstance(spec, dict) and isinstance(spec.get("read_like"), dict):
        spec = spec["read_like"]  # data itself read like the model's (a sparse entry made on other data): the model's
    if not hasattr(dm, "_read_like") or not isinstance(spec, dict) or not isinstance(spec.get("class_path"), str):
        return
    import sys  # noqa: PLC0415

    from .arrays import ArrayDataModule  # noqa: PLC0415 - this package's own classes only: a spec is data, not code

    module, _, name = spec["class_path"].rpartition(".")
    cls = getattr(sys.modules[__package__], name, None)
    if module != "neuroview.data" or not (isinstance(cls, type) and issubclass(cls, ArrayDataModule)):
        return
    try:
        trained = cls(**spec.get("init_args", {}))
        trained.setup("fit")
        train_x, _, lengths = trained._prepared_splits()["train"]
    except Exception as e:  # noqa: BLE001 - a file moved, a set that cannot be read here: said, not raised
        warnings.warn(f"data: the model's training data cannot be read again ({type(e).__name__}: {e}), so this data is "
                      "read by its own statistics and length" + (", not the training split's channel statistics the model "
                      "standardized by (normalize: true)" if dm.normalize is True else "") + "; restore that data to read "
                      "this as the model saw its own", UserWarning, stacklevel=3)
        return
    like = {}
    if dm.normalize is True and trained.normalize is True:
        like |= {"mean": trained._mean, "std": trained._std}
    if train_x.dim() == 3 and (trained._variable or trained.resample) and not _images(dm):  # padded or stretched to it
        # (images read at a series' length were cut into rows and refused as "not [C, T] series", advice to reshape
        # them included, before the check that names --data and the samples' shape)
        like["max_len"] = int(train_x.shape[-1])
    dm._read_like = like


def _images(dm) -> bool:
    """Whether ``dm`` serves images (a set of a fixed shape without a length: digits, MNIST, CIFAR-10), which no
    series option (a length to pad or stretch to) applies to."""
    shape = getattr(type(dm), "FIXED_SHAPE", None)
    return isinstance(shape, tuple) and len(shape) == 3 and shape[2] is None


def read_options(dm) -> dict:
    """How ``dm`` reads its series, ``{name: value}``: its ``READ_AS`` options and its class's ``FILE_FORMAT``
    (what a spec of the data needs besides the file, so that a later command reads it the same way)."""
    return {k: getattr(dm, k) for k in (*READ_AS, *getattr(type(dm), "FILE_FORMAT", ())) if hasattr(dm, k)}


def _file_format(dm, spec: dict, args: dict) -> dict:
    """The ``FILE_FORMAT`` options (and ``val_fraction=0``) of ``args`` that differ on ``dm``, where ``spec`` names
    ``dm``'s own class; checked as the class checks them (a hand-edited spec's ``channels: 0``)."""
    keys = getattr(type(dm), "FILE_FORMAT", ())
    cls = spec.get("class_path") if isinstance(spec, dict) else None
    if not keys or not isinstance(cls, str) or cls.rsplit(".", 1)[-1] != type(dm).__name__:
        return {}  # another class: its options mean other things (an .npz has no label column)
    out = {k: args[k] for k in keys if k in args and getattr(dm, k) != args[k]}
    if args.get("val_fraction") == 0 and dm.val_fraction != 0 and getattr(dm, "val_fold", None) is None:
        out["val_fraction"] = 0.0
    if out:
        try:
            type(dm)(str(dm.path), **out)
        except ValueError as e:
            raise ValueError(f"trained_on: {e}") from None
    return out


def checkpoint_classes(path) -> list[str] | None:
    """The class names a Lightning checkpoint of ``neuroview fit`` records (its data module's ``class_names``, in
    the order of the model's outputs), or a ``.safetensors`` file (``neuroview retrofit --out``, a sparse entry:
    ``neuroview.classes``); ``None`` where it records none."""
    import json  # noqa: PLC0415

    import torch  # noqa: PLC0415

    try:
        if str(path).endswith(".safetensors"):
            from safetensors import safe_open  # noqa: PLC0415

            with safe_open(str(path), "pt") as f:
                names = json.loads((f.metadata() or {}).get("neuroview.classes", "null"))
        else:
            names = torch.load(path, map_location="cpu", weights_only=True).get("neuroview_classes")
    except Exception:  # noqa: BLE001 - a hint only, as checkpoint_data
        return None
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else None


def check_classes_of(dm, path, what: str) -> None:
    """:func:`check_classes` of ``dm`` against the classes the weight file ``path`` records, where ``dm`` (set up)
    names its classes (a data module of the user's may not)."""
    if names_classes(dm):
        check_classes(dm, checkpoint_classes(path), what)


def names_classes(dm) -> bool:
    """Whether ``dm`` names the classes it numbers (``class_names``, a sequence): a data module of neuroview's, or a
    user's that has them; not a loader or a list of batches (integer labels, read as the model's: nothing to compare)."""
    try:
        names = dm.class_names
    except Exception:  # noqa: BLE001 - a data module of the user's that names none (a property that fails) is not checked
        return False
    return names is not None and not isinstance(names, (str, bytes)) and hasattr(names, "__len__")


def check_classes(dm, trained: list[str] | None, what: str) -> None:
    """A clear error where ``dm`` (set up) numbers other classes than ``trained``, the names of the model's outputs
    in order: its class ``i`` would be scored and named as the model's class ``i`` (a set missing a class of the
    training data, labels of another meaning, another order)."""
    if trained is None:
        return
    from .splits import written_apart  # noqa: PLC0415

    names = [str(c) for c in dm.class_names]
    if names != list(trained):
        # the model's classes written otherwise ("1.0" for "1": np.loadtxt of a UCR file) get the hint a split gets
        hint = written_apart([n for n in names if n not in trained], list(trained), "the model")
        raise ValueError(f"{what}: its classes, in order, are {names[:8]}{' ...' if len(names) > 8 else ''}; the model's "
                         f"outputs are {list(trained)[:8]}{' ...' if len(trained) > 8 else ''}{_difference(names, list(trained))}"
                         f"{hint}: a data module "
                         "numbers the classes it reads, so its class i would be scored and named as the model's class i. "
                         "Pass data of the classes the model was trained on (every one of them in its training split)"
                         + _trained_on_note(dm))


def _difference(names: list[str], trained: list[str]) -> str:
    """Where the data's classes ``names`` and the model's ``trained`` differ, said where a list is cut at 8 names: two
    lists of 10 and 11 digits (or '0'..'8', 'ten' beside '0'..'9') were shown as the same 8 names."""
    if len(names) <= 8 and len(trained) <= 8:
        return ""  # both shown whole
    i = next((i for i, (a, b) in enumerate(zip(names, trained)) if a != b), None)
    parts = [] if len(names) == len(trained) else [f"{len(names)} classes here, {len(trained)} in the model"]
    if i is not None:
        parts.append(f"class {i} is {names[i]!r} here, {trained[i]!r} in the model")
    else:  # one list is the other's start: the classes past it
        more, where = (names, "here only") if len(names) > len(trained) else (trained, "in the model only")
        rest = more[min(len(names), len(trained)):]
        parts.append(f"{', '.join(map(repr, rest[:3]))}{', ...' if len(rest) > 3 else ''} {where}")
    return f" ({'; '.join(parts)})"


# the options that say which files or set a data module reads: all given, or the advice named a run's TRAIN file
# alone, and `neuroview test` refused it (without its test_path it carves the test split from the training file)
_IDS = ("path", "test_path", "val_path", "name", "root")


def note_trained_on(dm, source, argv: list[str] | None = None) -> None:
    """Record on ``dm`` (the data of ``neuroview test``/``validate``/``predict``) the weight file ``source`` it is read
    for and the data module that file was trained on, where it records one, so that :func:`check_classes`'s refusal
    names both and the options that read the latter: ``--config recipes/ucr_nv_cnn.yaml --ckpt_path`` of a run on the
    user's own file read the recipe's GunPoint, and the refusal named neither. ``argv``: the command line (whether
    ``--data`` named the data, or the ``--config``). Nothing is read here: the checkpoint is read again (whole) only
    where the refusal is said, which is seldom, not on every evaluation."""
    if not source:
        return
    named = argv is not None and any(a == "--data" or a.startswith(("--data=", "--data.")) for a in argv)
    try:
        dm._neuroview_trained_on = (str(source), "" if named or argv is None else ", the --config's data")
    except AttributeError:  # a data module of the user's that takes no attribute: its refusal says less
        pass


def _trained_on_note(dm) -> str:
    """`` (read: UCRDataModule name='GunPoint'; run.ckpt was trained on NpzDataModule path='my.npz': pass --data ...)``
    where :func:`note_trained_on` recorded the checkpoint on ``dm``; ``""`` otherwise (the message as it was)."""
    held = getattr(dm, "_neuroview_trained_on", None)
    if not isinstance(held, tuple) or len(held) != 2:
        return ""
    import shlex  # noqa: PLC0415

    source, given = held
    spec = checkpoint_data(source, unnamed=True)
    if spec is None:
        return ""
    args = spec.get("init_args") or {}
    cls = spec.get("class_path")
    read = _describe(type(dm).__name__, {k: getattr(dm, k, None) for k in _IDS})
    if _same_data(dm, spec, args):
        return f" (read: {read}{given}, the data {source} was trained on)"
    trained = _describe(cls.rpartition(".")[2] if isinstance(cls, str) else "a data module of its own", args)
    note = f" (read: {read}{given}; {source} was trained on {trained}"
    if not (isinstance(cls, str) and cls.startswith(f"{__package__}.")):
        return note + ": pass that data)"
    ids = "".join(f" --data.init_args.{k} {shlex.quote(str(args[k]))}" for k in _IDS if args.get(k) is not None)
    return note + f": pass --data {cls}{ids} to score it on that data)"


def _describe(name: str, args: dict) -> str:
    ids = ", ".join(f"{k}={args[k]!r}" for k in _IDS if args.get(k) is not None)
    return f"{name} {ids}" if ids else name

