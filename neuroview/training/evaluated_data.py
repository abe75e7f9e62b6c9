"""``neuroview test``/``validate``/``predict`` of a checkpoint on another file than it was trained on: the file is
read as the checkpoint's data was (its ``READ_AS`` options, and, for a file of the same data module, its format),
not by the data module's defaults, and ``test``/``predict`` score every series of it (no ``test_fraction`` carve,
no validation split). The checkpoint's own data is held to its options by :func:`.ckpt_data.check_evaluated_data`.

May import every layer below training; ``neuroview.data`` inside the functions.
"""

from __future__ import annotations

import importlib
import inspect

import yaml
from pytorch_lightning.utilities import rank_zero_info

from ..zoo.pretrained import _plain  # arguments compared as a manifest stores them
from .ckpt_data import _DATA_NAMES, _as_typed, _same_class, _same_name

__all__ = ["evaluated_data", "format_hint", "named_data_options"]


def evaluated_data(cfg, sub: str, source: str | None, argv: list[str] | None) -> bool:
    """Before the data module is made: where ``cfg.data`` reads other data than the checkpoint ``source`` (its
    ``datamodule_hyper_parameters``) was trained on, set the checkpoint's ``READ_AS`` options (and ``FILE_FORMAT``,
    for the same data module class) that the command line (``argv``, its ``--config`` files) did not name; one it
    named otherwise is refused by name (read with ``normalize: true`` where the model learned ``sample``, 13 of 30
    predictions changed, without a word). ``test``/``predict`` carve no validation split, which they never read
    (a small file was refused for one). Returns whether the file is scored whole (``test``/``predict`` of other data:
    :func:`neuroview.data.splits.whole_files`)."""
    from ..data.read_as import READ_AS, checkpoint_data  # noqa: PLC0415

    data = cfg.get("data")
    spec = checkpoint_data(source) if source else None
    asked = (data.as_dict() if hasattr(data, "as_dict") else dict(data)) if data is not None else {}
    args, saved = dict(asked.get("init_args") or {}), (spec or {}).get("init_args", {})
    if spec is None or not asked.get("class_path") or not hasattr(data, "init_args"):
        return False
    same_class = _same_class(asked["class_path"], spec["class_path"])
    if same_class and not any(k in saved and k in args and not _same_name(args[k], saved[k]) for k in _DATA_NAMES):
        return False  # the model's own data: its options are checked, not filled (check_evaluated_data)
    named = named_data_options(argv, asked["class_path"], args)
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
    return sub in ("test", "predict")


def named_data_options(argv: list[str] | None, class_path: str, args: dict) -> set[str] | None:
    """The data options a command line names: ``--data.init_args.X`` (``--data.X``), a ``--data`` given as a dict, the
    ``data`` of its ``--config`` files, and any whose value is not the class's default; None (all of them) for a
    command given as a dict."""
    if argv is None:
        return None
    named = set()
    for i, a in enumerate(argv):
        value = argv[i + 1] if i + 1 < len(argv) and "=" not in a else a.partition("=")[2]
        for pre in ("--data.init_args.", "--data."):
            if a.startswith(pre):
                named.add(a[len(pre):].split("=", 1)[0].split(".", 1)[0])
                break
        if a.split("=", 1)[0] in ("--config", "-c"):
            named |= _data_keys(_yaml(value, file=True).get("data"))
        elif a.split("=", 1)[0] == "--data" and value.lstrip().startswith("{"):
            named |= _data_keys(_yaml(value))
    defaults = _defaults(class_path)
    return named | {k for k, v in args.items() if k in defaults and _plain(v) != _plain(defaults[k])}


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
