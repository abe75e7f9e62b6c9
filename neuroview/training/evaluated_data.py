"""``neuroview test``/``validate``/``predict`` of a checkpoint on another file than it was trained on: the file is
read as the checkpoint's data was (its ``READ_AS`` options, and, for a file of the same data module, its format),
not by the data module's defaults, and ``test``/``predict`` score every series of it (no ``test_fraction`` carve
unless one is named, no validation split). The checkpoint's own data is held to its options by
:func:`.ckpt_data.check_evaluated_data` (here for a ``--model.init_weights`` checkpoint).

May import every layer below training; ``neuroview.data`` inside the functions.
"""

from __future__ import annotations

import importlib
import inspect
import os

import yaml
from pytorch_lightning.utilities import rank_zero_info

from ..zoo.pretrained import _plain  # arguments compared as a manifest stores them
from .ckpt_data import _DATA_NAMES, _as_typed, _same_class, _same_name, check_evaluated_data, saved_class

__all__ = ["evaluated_data", "format_hint", "named_data_options", "refuse_uncarried"]


def evaluated_data(cfg, sub: str, source: str | None, argv: list[str] | None) -> bool:
    """Before the data module is made: where ``cfg.data`` reads other data than the checkpoint ``source`` (its
    ``datamodule_hyper_parameters``) was trained on, set the checkpoint's ``READ_AS`` options (and ``FILE_FORMAT``,
    for the same data module class) that the command line (``argv``, its ``--config`` files) did not name; one it
    named otherwise is refused by name (read with ``normalize: true`` where the model learned ``sample``, 13 of 30
    predictions changed, without a word). ``test``/``predict`` carve no validation split, which they never read
    (a small file was refused for one). Returns whether the file is scored whole (``test``/``predict`` of other data
    with no ``test_fraction`` named: :func:`neuroview.data.splits.whole_files`)."""
    from ..data.read_as import READ_AS, checkpoint_data  # noqa: PLC0415

    data = cfg.get("data")
    spec = checkpoint_data(source, unnamed=True) if source else None
    asked = (data.as_dict() if hasattr(data, "as_dict") else dict(data)) if data is not None else {}
    args, saved = dict(asked.get("init_args") or {}), (spec or {}).get("init_args", {})
    if spec is None or not asked.get("class_path") or not hasattr(data, "init_args"):
        return False
    # judged as check_evaluated_data judges it: by its file where no class is known (a Python API checkpoint of before
    # the record, a data module of the user's own), its module is not imported, or one class subclasses the other
    spec["class_path"] = saved_class(None, {**saved, "_class_path": spec["class_path"]}, asked) or ""  # "": other data
    if not cfg.get("ckpt_path"):  # --model.init_weights: held to its data as --ckpt_path is (cli's _check_resume);
        # unchecked, the training file without its test_path was scored whole, its 40 training series as "test"
        check_evaluated_data(source, data, {"_class_path": spec["class_path"], **saved}, sub, "model.init_weights")
    same_class = _same_class(asked["class_path"], spec["class_path"])
    if same_class and not any(k in saved and k in args and not _same_name(args[k], saved[k]) for k in _DATA_NAMES):
        return False  # the model's own data: its options are checked, not filled (check_evaluated_data)
    named = named_data_options(argv, asked["class_path"], args, sub)
    keys = (*READ_AS, *(_class_attr(asked["class_path"], "FILE_FORMAT") if same_class else ()))
    other = {k: (args[k], saved[k]) for k in keys if k in saved and k in args and _plain(args[k]) != _plain(saved[k])}
    refused = {k: v for k, v in other.items() if k in READ_AS and (named is None or k in named)}
    what = "ckpt_path" if cfg.get("ckpt_path") else "model.init_weights"
    if refused:  # a file written otherwise may name its own format; the network reads its series one way only
        detail = "; ".join(f"--data.init_args.{k} {a!r} asked, {v!r} in the checkpoint"
                           for k, (a, v) in sorted(refused.items()))
        give = " ".join(f"--data.init_args.{k} {_as_typed(v)}" for k, (_, v) in sorted(refused.items()))
        raise ValueError(f"{what}: {source} was trained on data read otherwise ({detail}); `neuroview {sub}` would "
                         f"feed the network this data read as it never saw (other numbers, without a word): drop "
                         f"those options (the checkpoint's are taken) or give the checkpoint's ({give})")
    filled = {k: v for k, (_, v) in other.items() if named is not None and k not in named}
    for k, v in filled.items():
        data.init_args[k] = v
    if filled:
        taken = ", ".join(f"{k} {_as_typed(v)}" for k, v in sorted(filled.items()))
        rank_zero_info(f"neuroview {sub}: {args.get('path') or args.get('name') or 'the data'} read as {source}'s "
                       f"training data was: {taken} (from the checkpoint, for the options the command line does not "
                       "name: the data module's defaults read it otherwise)")
    if sub in ("test", "predict"):  # a validation split of the file is never read: none carved, none checked
        for k, v in (("val_fraction", 0.0), ("val_fold", None)):
            if k in args and args[k] != v:
                data.init_args[k] = v
    return sub in ("test", "predict") and not _carve_named(sub, argv, asked["class_path"], args)


def refuse_uncarried(dm, spec: dict | None, source: str, sub: str, what: str) -> None:
    """A clear error where the checkpoint stretched its series (``resample: true``, its ``spec``) and the data module
    made for the command does not (``dm.resample`` false: a class that takes no ``resample`` to carry it, which the
    command could not set): the option was dropped without a word, and the series zero-padded where the model had them
    stretched. Judged on the module as made: a user's subclass that stretches by itself is read as it reads."""
    saved = (spec or {}).get("init_args") or {}
    if _plain(saved.get("resample")) is True and getattr(dm, "resample", None) is False:
        raise ValueError(f"{what}: {source} was trained on data read with resample true, and {type(dm).__name__} "
                         f"reads it unstretched (it takes no resample argument to read this data so): `neuroview "
                         f"{sub}` would feed the network series read as it never saw; pass a data module that takes "
                         f"resample (neuroview.data.NpzDataModule, CsvDataModule)")


def _carve_named(sub: str, argv: list[str] | None, class_path: str, args: dict) -> bool:
    """Whether the command names a ``test_fraction``: on the command line or in ``--data``, or (in a ``--config``
    file, or a command given as a dict) one other than the class's default; then a file without a test split of its
    own is carved as asked, not scored whole (a named 0.5 was dropped without a word, 30 series scored for 15), and
    the log says which. A config's default value is no ask: a run's own saved config.yaml lists every init arg, and
    predicting with it carved 6 of 30 new rows."""
    if "test_fraction" not in args or args.get("test_path") is not None:  # a test file of its own: no carve
        return False
    default = _defaults(class_path).get("test_fraction")
    if argv is not None and "test_fraction" in named_data_options(argv, class_path, {}, sub, configs=False):
        why = "on the command line"
    elif _plain(args["test_fraction"]) != _plain(default):
        why = f"other than the class default {default}"
    else:
        return False
    rank_zero_info(f"neuroview {sub}: --data.init_args.test_fraction {args['test_fraction']} named, so a file "
                   f"without a test split of its own is carved by it and that test split scored, not every series of "
                   f"it ({why}): drop test_fraction to score the whole file")
    return True


def named_data_options(argv: list[str] | None, class_path: str, args: dict, sub: str | None = None,
                       configs: bool = True) -> set[str] | None:
    """The data options a command line names: ``--data.init_args.X`` (``--data.X``), the keys of a ``--data`` given
    as a dict or a YAML file and of a ``--data.init_args`` dict, the ``data`` of its ``--config`` files (at their top
    or under the ``sub`` command's key, a ``data`` string followed to its file; not with ``configs`` False), and any
    whose value is not the class's default; None (all of them) for a command given as a dict. One missed was replaced
    by the checkpoint's value without a word (``normalize: true`` in a ``--data`` file read as ``sample``)."""
    if argv is None:
        return None
    named = set()
    for i, a in enumerate(argv):
        key, eq, inline = a.partition("=")
        value = inline if eq else argv[i + 1] if i + 1 < len(argv) else ""
        if key in ("--config", "-c"):
            named |= _config_keys(value, sub) if configs else set()
        elif key == "--data":  # a class name, a dict, or a YAML file of one (jsonargparse reads each)
            named |= _data_keys(_spec(value))
        elif key == "--data.init_args":  # the init args themselves, as a dict
            spec = _spec(value)
            named |= _data_keys({"init_args": spec}) if spec else set()
        elif key.startswith("--data."):
            rest = key[len("--data."):]
            named.add((rest[len("init_args."):] if rest.startswith("init_args.") else rest).split(".", 1)[0])
    defaults = _defaults(class_path)
    return named | {k for k, v in args.items() if k in defaults and _plain(v) != _plain(defaults[k])}


def _spec(value: str, base: str | None = None) -> dict:
    """A ``data`` value as jsonargparse reads it: a YAML file it names (relative to ``base``, a config's folder, or
    the working folder), or inline YAML/JSON; ``{}`` for a class name."""
    for folder in (base, None):
        path = os.path.join(folder, value) if folder else value
        if isinstance(value, str) and value and os.path.isfile(path):
            return _yaml(path, file=True)
    return _yaml(value) if isinstance(value, str) else {}


def _config_keys(path: str, sub: str | None) -> set[str]:
    """The data options a ``--config`` file names: its ``data`` entry, at its top or under a sub-command's key (a
    config given before the sub-command), followed to its file where it is a path."""
    cfg, base = _yaml(path, file=True), os.path.dirname(os.path.abspath(path))
    named = set()
    for entry in (cfg, *(cfg[s] for s in ((sub,) if sub else ("fit", "validate", "test", "predict"))
                         if isinstance(cfg.get(s), dict))):
        data = entry.get("data")
        named |= _data_keys(_spec(data, base) if isinstance(data, str) else data)
    return named


def _yaml(text: str, file: bool = False) -> dict:
    """``text`` (or the file it names) read as YAML, ``{}`` where it is none (the parser names that error itself)."""
    try:
        if file:
            with open(text, encoding="utf-8") as f:
                text = f.read()
        out = yaml.safe_load(text)
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    return out if isinstance(out, dict) else {}


def _data_keys(data) -> set[str]:
    """The options a ``data`` entry of a config names: its ``init_args``, or its keys beside ``class_path``."""
    if not isinstance(data, dict):
        return set()
    inner = data.get("init_args")
    return set(inner if isinstance(inner, dict) else ()) | (set(data) - {"class_path", "init_args", "dict_kwargs"})


def _resolve(class_path: str):
    try:
        module, _, name = class_path.rpartition(".")
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _defaults(class_path: str) -> dict:
    """The class's ``__init__`` defaults (its base classes' too, where it passes ``**kwargs`` on), ``{}`` if unknown."""
    cls, out = _resolve(class_path), {}
    for c in reversed(getattr(cls, "__mro__", ())):
        try:
            params = inspect.signature(c.__init__).parameters.values()
        except (TypeError, ValueError):
            continue
        out |= {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return out


def _class_attr(class_path: str, name: str) -> tuple:
    return tuple(getattr(_resolve(class_path), name, ()) or ())


def format_hint(ckpt: str, dm, key: str) -> str:
    """Where a CSV's ``channels`` named on the command line are not the checkpoint's (unnamed, they are taken from
    it), the refusal of a file of other channels says so; ``""`` otherwise (an .npz: its channels are its own)."""
    from ..data.read_as import checkpoint_data  # noqa: PLC0415

    args = (checkpoint_data(ckpt) or {}).get("init_args", {})
    if key != "in_channels" or "channels" not in args or getattr(dm, "channels", None) in (None, args["channels"]):
        return ""
    return (f" (the checkpoint's CSV held {args['channels']} channels a row, this one is read as {dm.channels}: drop "
            f"--data.init_args.channels, or give {args['channels']})")
