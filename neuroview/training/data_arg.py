"""The ``--data`` option of the training commands (``retrofit``, ``sparsify``): a data module from a name, a path
or a JSON spec, read as the model was trained (:func:`neuroview.data.read_as.read_as_trained`); a JSON spec's keys
checked (:func:`check_spec_args`, ``minirocket``'s and ``explain``'s too).

May import every layer below training; ``neuroview.data`` inside the functions (Lightning data modules import
slowly, and ``import neuroview`` imports this module through ``.retrofit``).
"""

from __future__ import annotations

import ast
import difflib
import inspect
import json
import os
import re
from pathlib import Path

from ..zoo.evaluate import make_datamodule

__all__ = ["absolute_paths", "asked_option", "check_spec_args", "datamodule_for", "path_kind", "data_module",
           "explained_data", "read_evaluated_like", "without_init_args"]

_DATA = {"digits": "DigitsDataModule", "mnist1d": "MNIST1DDataModule"}
_PATHS = {".npz": "NpzDataModule", ".csv": "CsvDataModule", ".tsv": "CsvDataModule"}


def path_kind(data: str) -> str | None:
    """The data module of a ``.npz``, ``.csv`` or ``.tsv`` path, its suffix in any case (``FILE.NPZ``: a copy from
    another system is that file); None for any other ``--data``."""
    return _PATHS.get(Path(data).suffix.lower())


def datamodule_for(name: str):
    """``digits``, ``mnist1d``, a UCR/UEA set aeon ships (``GunPoint`` ...), or a JSON data-module spec."""
    from .. import data  # noqa: PLC0415 - Lightning data modules import slowly; `import neuroview` must not wait

    if name.lstrip().startswith("{"):
        try:
            spec = json.loads(name)
        except (json.JSONDecodeError, RecursionError) as e:  # the parser's message alone named no option
            raise ValueError(f"--data: expected a JSON data-module spec, got {name!r} ({e})") from None
        return make_datamodule(check_spec_args(spec) if isinstance(spec, dict) else spec)
    if name.lower() in _DATA:
        return getattr(data, _DATA[name.lower()])()
    if name in data.UCR_DATASETS:
        return data.UCRDataModule(name)
    raise ValueError(f"data: expected 'digits', 'mnist1d', one of {data.UCR_DATASETS}, an .npz, .csv or .tsv path or "
                     f"a JSON {{'class_path': 'neuroview.data.X', 'init_args': {{...}}}}, got {name!r}")


#: a JSON ``--data`` spec's own keys beside the module's file record (``file_record.RECORD``): the module, its arguments,
#: the data a model was trained on, read like it (:func:`~neuroview.zoo.evaluate.make_datamodule`)
_SPEC_KEYS = ("class_path", "init_args", "read_like")
_SPEC_FORM = '{"class_path": "neuroview.data.<X>", "init_args": {...}}'


def check_spec_args(spec: str | dict | None, head: str = "--data: ") -> dict | None:
    """A JSON ``--data`` spec (as typed, or parsed) holds its own keys only, names a data module of
    :mod:`neuroview.data` as ``neuroview fit --data`` takes it (its short name, ``DigitsDataModule``, or a full path that
    imports it, ``neuroview.data.digits.DigitsDataModule``: a parsed spec's ``class_path`` set to ``neuroview.data.X``,
    which the commands build and record), and ``init_args`` the arguments that module takes; a ``read_like`` spec in it
    is checked the same (``head``: ``--data: read_like: ``). Each refusal names ``--data``, the key, what was given and
    what is taken (an init_args key was the module's bare ``__init__() got an unexpected keyword argument``; a spec key
    misspelt, ``"init_arg"``, built the module by its defaults, without a word; a missing or short ``class_path`` was
    "dataset: expected ...", a key never typed). The spec, parsed; None for a name or a path (or no ``--data``).

    >>> check_spec_args('{"class_path": "neuroview.data.DigitsDataModule", "init_args": {"sed": 1}}')
    Traceback (most recent call last):
    ...
    ValueError: --data: init_args: unexpected argument 'sed' of DigitsDataModule (its arguments: ..., seed, ...); did you mean 'seed'?
    """
    if spec is None or isinstance(spec, str) and not spec.lstrip().startswith("{"):  # a name or a path
        return None
    try:
        given = json.loads(spec) if isinstance(spec, str) else spec
    except (ValueError, RecursionError):
        return None  # refused by name where it is parsed to be built
    return _check_spec(given, head)


def _check_spec(given, head: str) -> dict:
    """:func:`check_spec_args` of the parsed spec ``given``."""
    from ..data.file_record import RECORD  # noqa: PLC0415

    if not isinstance(given, dict):
        raise ValueError(f"{head}expected a JSON data-module spec {_SPEC_FORM}, got {json.dumps(given)}")
    keys = (*_SPEC_KEYS, RECORD)
    _refuse_unknown([str(k) for k in given if k not in keys], keys, head, "key", "a JSON data-module spec",
                    "its keys", f"; a data module's arguments go in its init_args: {_SPEC_FORM}")
    cls, init = _spec_class(given, head), given.get("init_args", {})
    params = inspect.signature(cls).parameters.values()
    takes = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not isinstance(init, dict):
        raise ValueError(f"{head}init_args: expected a JSON object of {cls.__name__}'s arguments (its arguments: "
                         f"{', '.join(takes)}), got {json.dumps(init)}")
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        _refuse_unknown([str(k) for k in init if k not in takes], takes, f"{head}init_args: ", "argument", cls.__name__,
                        "its arguments")
    if "read_like" in given:  # the data a model was trained on, read again: its keys ignored or warned of, unchecked
        _check_spec(given["read_like"], f"{head}read_like: ")
    return given


def _spec_class(given: dict, head: str) -> type:
    """The data module of neuroview.data that the spec ``given`` names, as jsonargparse resolves ``neuroview fit
    --data``'s ``class_path``: its name (``DigitsDataModule``) or an import path that gives it (the package's, or the
    module defining it); ``given["class_path"]`` set to the package's name, which the commands build and record. Any
    other (none, a path of another package, a class none of them has): a ValueError naming ``class_path``, what was
    given, the modules taken and a near one."""
    import importlib  # noqa: PLC0415

    from .. import data as D  # noqa: PLC0415 - Lightning

    classes = {n: c for n in D.__all__ if inspect.isclass(c := getattr(D, n)) and issubclass(c, D.ArrayDataModule)}
    path = given.get("class_path")
    module, _, name = path.rpartition(".") if isinstance(path, str) else ("", "", "")
    ours = module in ("", "neuroview.data") or module.startswith("neuroview.data.")  # else another package's
    cls = classes.get(name) if ours else None
    if cls is not None and module.startswith("neuroview.data."):
        try:  # a full path jsonargparse imports: the class must be that module's (neuroview.data.arrays has no Npz...)
            cls = cls if getattr(importlib.import_module(module), name, None) is cls else None
        except ImportError:
            cls = None
    if cls is not None:
        given["class_path"] = f"neuroview.data.{name}"
        return cls
    shown = [f"neuroview.data.{n}" for n in classes if n != "ArrayDataModule"]  # (the base: no data of its own)
    key = name.lower() if ours else ""
    near = ([n for n in classes if n.lower() in (key, f"{key}datamodule", _DATA.get(key, "").lower())] or
            difflib.get_close_matches(name, classes, n=1)) if key else []
    got = "no class_path" if "class_path" not in given else repr(path) if isinstance(path, str) else json.dumps(path)
    other = (" (a data module of another package: `neuroview fit --data` imports it; this command builds only "
             "neuroview.data's, a spec being data, not code)" if not ours else "")
    raise ValueError(f"{head}class_path: expected a data module of neuroview.data ({', '.join(shown)}; its short name "
                     f"as well), got {got}{other}" + (f"; did you mean 'neuroview.data.{near[0]}'?" if near else
                     "" if other else f": {_SPEC_FORM}"))


def _refuse_unknown(bad: list[str], takes, head: str, what: str, of: str, listing: str, advice: str = "") -> None:
    """``head`` unexpected ``what`` (each of ``bad``) of ``of`` (``listing``: ``takes``), and the near names meant."""
    if not bad:
        return
    near = {b: m[0] for b in bad if (m := difflib.get_close_matches(b, takes, n=1))}
    meant = (f"; did you mean {next(iter(near.values()))!r}?" if len(bad) == 1 and near else
             f"; did you mean {', '.join(f'{m!r} for {b!r}' for b, m in near.items())}?" if near else "")
    raise ValueError(f"{head}unexpected {what}{'s' * (len(bad) > 1)} {', '.join(map(repr, bad))} of {of} ({listing}: "
                     f"{', '.join(takes)}){meant}{advice if not near else ''}")


def data_module(data: str, trained_on: dict | None = None):
    """``--data``'s data module: a ``.npz``, ``.csv`` or ``.tsv`` path, or a name or spec (:func:`datamodule_for`); a
    name or path is read as the model's own training data was (``trained_on``: a data-module spec or a zoo entry's
    ``dataset``; its ``normalize`` and ``resample``, and a file of its own module in its format:
    :func:`~neuroview.data.read_as.read_as_trained`). A JSON spec says how itself."""
    from ..data.read_as import read_as_trained  # noqa: PLC0415

    kind = path_kind(data)
    dm = datamodule_for(data) if kind is None else make_datamodule({"class_path": f"neuroview.data.{kind}",
                                                                     "init_args": {"path": data}})
    if not data.lstrip().startswith("{"):
        read_as_trained(dm, trained_on)
    return dm


def explained_data(make, data: str, trained_on: dict | None, split: str = "test", classes: list | None = None):
    """``neuroview explain --data``'s data module, read as ``neuroview test``/``predict`` read a file (``make``: the
    module of a name, path or JSON spec, built with its defaults): a file that is not the model's training data
    (``trained_on``) is read whole (:func:`~neuroview.data.splits.whole_files`), with no validation split unless
    ``split`` is ``val`` (explain reads none otherwise; a 9-series file was refused for one it could not carve);
    the training file is carved as ``fit`` carved it, and data of a model that names none by the module's defaults. A JSON spec's own options stand, except a reading option
    (``READ_AS``; for the training file, its carve) other than the model's, which is refused by name. ``classes``: the
    model's class names in output order (a zoo entry's, a checkpoint's): a file of new series read whole looks its
    labels up among them by name (:func:`~neuroview.data.labels.model_classes`), so it may hold some of them, or one."""
    from ..data.read_as import READ_AS, SAME_DATA, _same_data, read_as_trained  # noqa: PLC0415
    from ..data.splits import folds_of, whole_files  # noqa: PLC0415

    spec = (trained_on or {}).get("data_module", trained_on) if isinstance(trained_on, dict) else None
    dm = make(data)
    given = json.loads(data) if data.lstrip().startswith("{") else None  # make() refused a malformed one by name
    named = set(given.get("init_args") or {}) if isinstance(given, dict) else set()
    known = isinstance(spec, dict) and "class_path" in spec
    own = known and _same_data(dm, spec, spec.get("init_args") or {})
    if known and not own and not named & {"test_fraction", "test_path"}:  # a file of new series: every one explained
        from ..data.labels import model_classes  # noqa: PLC0415

        with whole_files(), model_classes(classes):
            dm = make(data)
    before = {k: getattr(dm, k) for k in named if hasattr(dm, k)}
    changed = read_as_trained(dm, trained_on)
    kept = {k: before[k] for k in changed if k in before}  # the spec's own: its file's format, its validation split
    clash = {k: v for k, v in kept.items() if k in READ_AS or (own and k in SAME_DATA)}
    if clash:  # the network reads its series one way only, and its training file carved otherwise tests training series
        detail = "; ".join(f"{k} {v!r} given, {changed[k]!r} in the model's training data"
                           for k, v in sorted(clash.items()))
        raise ValueError(f"--data: {detail}: `neuroview explain` reads data as the model's own was (other numbers, or "
                         "training series explained as unseen, otherwise); drop those options from the spec")
    if known and not own and split != "val" and not named & {"val_fraction", "val_fold"}:
        # explain reads no validation split: none carved (where the data may be the model's own, its training split
        # stays as fit carved it: its statistics normalize the series)
        kept |= {"val_fraction": 0.0, "val_fold": None}
    for k, v in kept.items():
        if hasattr(dm, k):
            setattr(dm, k, v)
            if hasattr(dm, "hparams") and k in dm.hparams:  # what report.json and a later spec of it read
                dm.hparams[k] = v
    if hasattr(dm, "val_folds"):
        dm.val_folds = folds_of(dm.val_fraction, getattr(dm, "val_fold", None))
    return dm


#: the data modules' file options an error may ask for, and a value as Python wrote it (a quoted one: delimiter=';',
#: '\\t', ','), else a bare one (header=true, channels=2)
_ASKED = (r"\b(header|channels|label_column|delimiter|layout|padding|test_fraction|test_path)="
          r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,;)]+)")


def asked_option(data: str | None, message: str) -> tuple[str, str] | None:
    """``(option, value as JSON)`` that ``message`` (about ``--data FILE``) asks for: the one after "pass " (the
    message's advice), else the first named. The file's own name is no part of the message's words: "compass
    readings.csv" held a "pass ", and "(to_csv without header=False)" came before "pass header=true" (both were read
    as the option asked for: "header": "False")."""
    for name in sorted({str(data), os.path.abspath(os.path.expanduser(str(data))), Path(str(data)).name}, key=len,
                       reverse=True) if data else ():
        message = message.replace(name, "FILE")
    asked = re.search(r"\bpass " + _ASKED, message) or re.search(_ASKED, message)
    if asked is None:
        return None
    key, value = asked.groups()
    if value[:1] in "'\"":
        try:
            value = json.dumps(ast.literal_eval(value))  # '\t' is a tab, not a backslash and a t
        except (ValueError, SyntaxError):
            value = json.dumps(value[1:-1])
    elif not re.fullmatch(r"true|false|null|-?[0-9.]+", value):
        value = json.dumps(value)
    return key, value


def without_init_args(message: str) -> str:
    """``message`` without the data modules' ``(--data.init_args.header true)``: what ``neuroview fit`` takes, which
    the commands that take a JSON ``--data`` spec refuse (one message gave both)."""
    return re.sub(r"\s*\(--data\.init_args\.[^)]*\)", "", message)


def absolute_paths(data) -> None:
    """The data module's files as absolute paths in the config: Lightning saves the config's arguments as given into
    the checkpoint (``datamodule_hyper_parameters``), so a relative ``path`` was read from another folder as another
    file, or none (``explain --ckpt`` from elsewhere, and other data read as it, without its training statistics)."""
    args = getattr(data, "init_args", None)
    for key in ("path", "test_path", "val_path", "root"):
        value = args.get(key) if args is not None else None
        if isinstance(value, str) and value and "://" not in value and not value.startswith("~"):
            args[key] = os.path.abspath(value)


def read_evaluated_like(ckpt, dm, what: str = "ckpt_path", sub: str = "test") -> None:
    """``neuroview test``/``validate``/``predict`` of the checkpoint ``ckpt`` on other data than it was trained on
    (another file, set or class): ``dm`` reads its series with the training split's channel statistics and length
    (:func:`~neuroview.data.read_as.read_like`), as ``explain --data`` does; by its own training part's, a file
    whose series were scaled x10 reached the network shifted (test accuracy 0.50 where the same test series read
    as trained gave 0.95), and one of other channels failed in a bare state-dict error. The model's own data (the
    same class and file) is read as it is: its statistics are the training split's already. The checkpoint's
    ``READ_AS`` options (normalize, resample) and file format were set on the command's data before it was made
    (:func:`.evaluated_data.evaluated_data`), where the command line did not name them."""
    from ..data.read_as import _same_data, checkpoint_data, read_like  # noqa: PLC0415

    spec = checkpoint_data(ckpt) if ckpt else None
    if spec is not None:
        from .evaluated_data import refuse_uncarried  # noqa: PLC0415

        refuse_uncarried(dm, spec, ckpt, sub, what)
    if spec is not None and hasattr(dm, "_read_like") and not _same_data(dm, spec, spec["init_args"]):
        read_like(dm, spec)
        dm._splits = None  # prepared already (the command line's links read num_classes): again, read like the model's
