"""Advice of the commands that take a JSON ``--data`` spec (``neuroview minirocket``, ``sparsify``, ``explain``) in
their own options: a file option a data module asks for (``pass header=true``) as the JSON ``--data`` spec the command
takes, and (the fitting commands) the cross-validation folds a small training split allows as ``--folds``.

May import every layer below training; ``neuroview.data`` inside the functions (Lightning data modules import
slowly).
"""

from __future__ import annotations

import json
import os
import re
import shlex

from .data_arg import asked_option, path_kind, without_init_args

__all__ = ["entry_tag", "file_options_hint", "folds_advice", "parse_args", "plain_spec", "said"]


def file_options_hint(command: str, data: str | None, message: str, spec: dict | None = None) -> str:
    """Where ``message`` (about ``--data FILE``) asks for an option of the file's data module, how ``neuroview
    command`` takes it: a JSON data-module spec, ``spec`` (the one the command builds from the file: its reading
    options, which a JSON spec does not get otherwise) with that option added; for a JSON ``--data`` of a file, that
    spec with the option added; ``""`` otherwise. The commands refuse the ``--data.init_args.*`` options the data
    modules' messages name (a JSON ``--data`` was told to add ``(--data.init_args.header true)`` too)."""
    given = _given(data)
    if given is not None:  # a JSON --data: its file, and the spec as given
        data, spec = (given.get("init_args") or {}).get("path"), given
    kind = path_kind(data) if isinstance(data, str) and not data.lstrip().startswith("{") else None
    if given is not None and isinstance(data, str):
        kind = given["class_path"].rpartition(".")[2]  # its own module's (a CSV of another suffix is one too)
    asked = asked_option(data, message) if kind else None
    width = re.search(r"of \d+ channels, where the model reads (\d+)", message) if kind == "CsvDataModule" else None
    if asked is None and width is None:
        return ""
    key, value = asked if asked else ("channels", width.group(1))  # a CSV's channels a row: its own option
    return (f" (`neuroview {command}` takes a file's options in a JSON data-module spec: --data "
            f"{_json_spec(data, spec, {key: json.loads(value)})})")


def _given(data: str | None) -> dict | None:
    """A JSON ``--data`` of a data module, as given; None for a name, a path or JSON of no data-module spec."""
    try:
        given = json.loads(data) if isinstance(data, str) and data.lstrip().startswith("{") else None
    except (json.JSONDecodeError, RecursionError):
        return None
    ok = isinstance(given, dict) and isinstance(given.get("class_path"), str)
    return given if ok and isinstance(given.get("init_args", {}), dict) else None


def _json_spec(data: str, spec: dict | None, options: dict) -> str:
    """``spec`` (else the plain spec of the file ``data``) with ``options`` added to its init_args, as JSON,
    shell-quoted (a path may hold spaces or quotes)."""
    kind = path_kind(data) if data and not data.lstrip().startswith("{") else None
    if not (isinstance(spec, dict) and isinstance(spec.get("class_path"), str)):
        spec = {"class_path": f"neuroview.data.{kind or _PLACEHOLDER}",
                "init_args": {"path": _absolute(data)} if kind else {}}
    full = {**spec, "init_args": {**(spec.get("init_args") or {}), **options}}
    return shlex.quote(json.dumps(full))


def _absolute(path: str) -> str:
    """``path`` absolute, ``~`` expanded: the spec is read the same from another folder (explain of a zoo entry)."""
    return os.path.abspath(os.path.expanduser(path))


#: the data module a hint cannot tell (a ``--data`` the command cannot read, or none given), for the user to fill in
_PLACEHOLDER = "<DataModule>"


def plain_spec(data: str | None) -> dict | None:
    """The spec of a named or file ``--data`` with its module's defaults, as ``neuroview explain`` builds the module
    (the model's reading options are set on it afterwards): a file's module and absolute path, ``digits``,
    ``mnist1d``, a UCR/UEA set aeon ships by its ``name``, ``mnist:ROOT`` or ``cifar10:ROOT`` by ``root``; None for
    anything else (a JSON spec, an unknown name)."""
    if not isinstance(data, str) or not data or data.lstrip().startswith("{"):
        return None
    if kind := path_kind(data):
        return {"class_path": f"neuroview.data.{kind}", "init_args": {"path": _absolute(data)}}
    plain = {"digits": "DigitsDataModule", "mnist1d": "MNIST1DDataModule"}.get(data.lower())
    if plain:
        return {"class_path": f"neuroview.data.{plain}", "init_args": {}}
    from .. import data as datasets  # noqa: PLC0415 - Lightning data modules import slowly: only for a hint

    if data in datasets.UCR_DATASETS:
        return {"class_path": "neuroview.data.UCRDataModule", "init_args": {"name": data}}
    images, _, root = data.partition(":")
    plain = {"mnist": "MNISTDataModule", "cifar10": "CIFAR10DataModule"}.get(images)
    if plain and root:
        return {"class_path": f"neuroview.data.{plain}", "init_args": {"root": _absolute(root)}}
    return None


def said(message: str, command: str, data: str | None, spec: dict | None = None) -> str:
    """``message`` as ``neuroview command`` prints it: the ``(--data.init_args.X V)`` it does not take dropped, and
    where the message asks for a file option, the JSON spec that gives it (:func:`file_options_hint`)."""
    hint = file_options_hint(command, data, message, spec)
    return f"{without_init_args(message) if hint else message}{hint}"


def parse_args(p, argv: list[str] | None, command: str, spec_of=None):
    """``p``'s arguments, ``--folds`` checked; a ``--data.init_args.header true`` (as ``neuroview fit`` takes it, and as
    the data modules' messages name it) told how ``command`` takes a file's options: the JSON spec the command reads
    ``--data`` by (``spec_of(args)``: its reading options kept, for a file or a named set alike; without ``spec_of``,
    :func:`plain_spec`; a JSON ``--data`` as given) with the options typed added, not a bare "unrecognized arguments"
    (nor a fixed example, nor a ``<DataModule>`` for a set's name: neither ran as printed). explain's spec leaves out,
    and names, the options it sets itself (:func:`_explain_takes`); minirocket's adds ``--tag`` (:func:`_tag`): each
    runs as printed, and gives what the plain ``--data`` gives."""
    args, unknown = p.parse_known_args(argv)
    if unknown:
        typed = _typed_init_args(unknown)
        given = next((u.split("=", 1)[0] for u in unknown if u.startswith("--data.")), None)
        if given is None:
            p.error(f"unrecognized arguments: {' '.join(unknown)}")
        typed, left = _explain_takes(typed) if command == "explain" else (typed, "")
        spec = _json_spec(args.data, _spec_for_hint(args, spec_of), typed)
        fill = (f" ({_PLACEHOLDER}: the module of neuroview.data that reads your data, e.g. NpzDataModule, with its "
                "path or name in init_args)") if _PLACEHOLDER in spec else ""
        p.error(f"{given}: `neuroview {command}` takes no --data.* options{left}; give a file's options in a JSON "
                f"data-module spec: --data {spec}{_tag(command, args)}{fill}")  # explain's notes before it: their quotes
        # ("model's") broke a shell's reading of the spec after them
    if getattr(args, "folds", None) is not None and args.folds < 2:  # refused before the work (sparsify refused it
        p.error(f"--folds: expected an int >= 2, got {args.folds}")  # after minirocket's dense fit)
    return args


def _explain_takes(typed: dict) -> tuple[dict, str]:
    """The options typed that explain's spec takes, and a note naming those it sets itself, left out of the spec:
    the reading options (``READ_AS``: the model's, always) and the carve (``SAME_DATA``: the fit's, where ``--data`` is
    the model's own training data; the printed spec had them, and explain refused it as printed)."""
    from ..data.read_as import READ_AS, SAME_DATA  # noqa: PLC0415

    read, carve = ({k: v for k, v in typed.items() if k in keys} for keys in (READ_AS, SAME_DATA))
    note = (f" ({', '.join(read)}: left out of the spec below: explain reads data as the model's own was read)"
            if read else "") + (
        f" ({', '.join(carve)}: left out of the spec below: explain carves the model's own training data as fit carved "
        f"it, and refuses other values there; for other data, add {json.dumps(carve)} to its init_args)" if carve else "")
    return {k: v for k, v in typed.items() if k not in read and k not in carve}, note


def _tag(command: str, args) -> str:
    """``--tag`` beside minirocket's advice where none was given: a JSON ``--data`` names its entries ``data`` (the
    advice for ``--data ArrowHead`` wrote ``nv_minirocket.data``, not ``nv_minirocket.arrowhead``)."""
    data = getattr(args, "data", None)
    if command != "minirocket" or getattr(args, "tag", "") is not None or not isinstance(data, str):
        return ""
    return "" if data.lstrip().startswith("{") else f" --tag {shlex.quote(entry_tag(data))}"


def entry_tag(data: str) -> str:
    """minirocket's entries' tag of ``--data``: its file stem or name, lower case, each run of characters other than
    letters, digits, ``_``, ``.`` or ``-`` made one ``_`` (``"tiny data.npz"``: ``tiny_data``); ``data`` for a JSON
    spec. Here, not in minirocket_cli (which imports this module): its advice names the tag."""
    from pathlib import Path  # noqa: PLC0415

    if data.lstrip().startswith("{"):
        return "data"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(data).stem.lower()).strip("_") or "data"


def _typed_init_args(unknown: list[str]) -> dict:
    """``{key: value}`` of the ``--data.init_args.key value`` (or ``=value``) among ``unknown``, each value read as
    the command line's YAML reads it (``true``, ``3``, ``channels_last``)."""
    import yaml  # noqa: PLC0415

    typed = {}
    for i, u in enumerate(unknown):
        if not u.startswith("--data.init_args."):
            continue
        key, eq, value = u.removeprefix("--data.init_args.").partition("=")
        if not eq:
            value = unknown[i + 1] if i + 1 < len(unknown) and not unknown[i + 1].startswith("--") else None
        try:
            typed[key] = yaml.safe_load(value) if value is not None else None
        except yaml.YAMLError:
            typed[key] = value
    return typed


def _spec_for_hint(args, spec_of) -> dict | None:
    """The spec ``--data`` is read by, for the hint: a JSON ``--data`` as given, else ``spec_of(args)`` (any name or
    path: a set's name got a ``<DataModule>`` without its name or reading options, asked for files only), without
    ``spec_of`` :func:`plain_spec`; None where none tells (the hint names the module to fill in)."""
    data = getattr(args, "data", None)
    if not isinstance(data, str):
        return None
    if data.lstrip().startswith("{"):
        try:
            return json.loads(data)
        except (json.JSONDecodeError, RecursionError):
            return None
    try:
        return spec_of(args) if spec_of is not None else plain_spec(data)
    except (ValueError, TypeError, KeyError, OSError, ImportError):
        return None


#: :func:`.sparsify.sparsify`'s refusal of a training split too small for its cross-validation folds
_TOO_FEW = re.compile(r"train: (\d+) samples \((\[[\d, ]*\]) per class\) are too few to carve (\d+)-fold validation "
                      r"from \(at least 2 per class and 2 per fold\); pass val= or fewer folds=$")


def folds_advice(message: str, option: str = "") -> str:
    """``message`` with the library's "pass val= or fewer folds=" (arguments no command has) said in the command's
    ``--folds``: the most folds the split allows, or that no number of folds does (a class of one sample, fewer than 4
    samples). ``option``: the command's option that asked for the folds (``--max-k90``), named where given."""
    m = _TOO_FEW.match(message)
    if m is None:
        return message
    n, held = int(m.group(1)), [c for c in json.loads(m.group(2)) if c > 0]
    why = f" for {option}" if option else ""
    if n >= 4 and min(held) >= 2:
        fix = f"pass --folds {n // 2} or fewer (at least 2)"
    else:
        fix = "no number of folds can: cross-validation needs at least 2 training samples of each class (4 in all)"
    return f"{message[:message.index('; pass val=')]}{why}; {fix}"
