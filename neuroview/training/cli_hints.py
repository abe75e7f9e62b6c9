"""Advice of the fitting commands (``neuroview minirocket``, ``neuroview sparsify``) in their own options: a file
option a data module asks for (``pass header=true``) as the JSON ``--data`` spec the command takes, and the
cross-validation folds a small training split allows as ``--folds``.

May import every layer below training; ``neuroview.data`` inside the functions (Lightning data modules import
slowly).
"""

from __future__ import annotations

import json
import re
import shlex

from .data_arg import format_options_hint

__all__ = ["file_options_hint", "folds_advice", "parse_args"]


def file_options_hint(command: str, data: str | None, message: str, spec: dict | None = None) -> str:
    """Where ``message`` (about ``--data FILE``) asks for an option of the file's data module, how ``neuroview
    command`` takes it: a JSON data-module spec, ``spec`` (the one the command builds from the file: its reading
    options, which a JSON spec does not get otherwise) with that option added; ``""`` otherwise. Both commands refused
    the ``--data.init_args.*`` options the data modules' messages name."""
    # explain's parse of the message, from its advice on: "(to_csv without header=False) ...; pass header=true" was
    # read as header=False, the first option named
    advice = message[message.find("pass "):] if "pass " in message else message
    hint = format_options_hint(data, advice) or format_options_hint(data, message)
    asked = re.search(r"--data '(\{.*\})'\)$", hint)
    if asked is None:
        return ""
    given = json.loads(asked.group(1))
    base = spec if isinstance(spec, dict) and spec.get("class_path") == given["class_path"] else given
    init = {**(base.get("init_args") or {}), **{k: v for k, v in given["init_args"].items() if k != "path"}}
    full = {**base, "init_args": init}
    return (f" (`neuroview {command}` takes a file's options in a JSON data-module spec: --data "
            f"{shlex.quote(json.dumps(full))})")


def parse_args(p, argv: list[str] | None, command: str):
    """``p``'s arguments, ``--folds`` checked; a ``--data.init_args.header true`` (as ``neuroview fit`` takes it, and as the data modules'
    messages name it) told how ``command`` takes a file's options, not a bare "unrecognized arguments"."""
    args, unknown = p.parse_known_args(argv)
    if unknown:
        given = next((u.split("=", 1)[0] for u in unknown if u.startswith("--data.")), None)
        p.error(f"{given}: `neuroview {command}` takes no --data.* options; give a file's options in a JSON "
                f"data-module spec, e.g. --data '{{\"class_path\": \"neuroview.data.NpzDataModule\", \"init_args\": "
                f"{{\"path\": \"FILE.npz\", \"layout\": \"channels_last\"}}}}'" if given
                else f"unrecognized arguments: {' '.join(unknown)}")
    if getattr(args, "folds", 2) < 2:  # refused before the work (sparsify refused it after minirocket's dense fit)
        p.error(f"--folds: expected an int >= 2, got {args.folds}")
    return args


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
