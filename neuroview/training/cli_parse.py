"""What ``neuroview fit|validate|test|predict`` says of a command line its parser refuses: one short error, the fix
first where neuroview knows it, then where the options are listed (:func:`parse_refusal`). Holds the cut of
jsonargparse's long messages (:func:`short`), the advice for a missing ``--data`` (a checkpoint's own data, where
``--ckpt_path`` records it) and for a data option the recipe's data module does not take (``--data.init_args.path``
with a recipe of a named set: a file needs its file data module, named first).

May import every layer below training; ``neuroview.data`` inside the functions.
"""

from __future__ import annotations

import json
import re
import shlex

__all__ = ["parse_refusal", "short"]

_FILE_OPTIONS = ("path", "test_path", "val_path")


def parse_refusal(message: str, argv: list[str], command: str) -> str:
    """The error ``neuroview command`` prints for the parser's ``message`` about the command line ``argv``."""
    said = _not_accepted(message, argv, command)
    if said is not None:
        return said
    return short(message, argv).replace(f"required: {command}.data", "required: --data " + _data_advice(argv, command))


def _not_accepted(message: str, argv: list[str], command: str) -> str | None:
    """A data option the data module does not take, said as one line with the fix, where jsonargparse listed every
    candidate class of the ``data`` union (``Does not validate against any of the Union subtypes ... Given value:
    NestedArg(key='path', ...)``): ``--data.init_args.path my.npz`` after a recipe of ``UCRDataModule``, the README's
    command for one's own series without its ``--data neuroview.data.NpzDataModule``."""
    if not message.lstrip().startswith('Parser key "data"'):
        return None
    found = re.findall(r"Problem with given class_path '([\w.]+)':\s*Option '(\w+)' is not accepted", message)
    if len(found) != 1:
        return None
    cls, option = found[0]
    name = cls.rpartition(".")[2]
    given = next((a for a in argv if a.startswith((f"--data.init_args.{option}", f"--data.{option}"))),
                 f"--data.init_args.{option}")
    if option in _FILE_OPTIONS:
        fix = (f"for a file of your own, name its data module before {given.split('=', 1)[0]}: --data "
               f"neuroview.data.NpzDataModule (an .npz of X, y) or --data neuroview.data.CsvDataModule (a .csv, .tsv "
               f"or .txt)")
    else:
        fix = f"its options: `neuroview {command} --data.help {cls}`"
    return f"data: {name} (the data module {_where(argv)}) takes no option {option!r} ({given.split('=', 1)[0]}); {fix}"


def _where(argv: list[str]) -> str:
    named = any(a == "--data" or a.startswith("--data=") for a in argv)
    return "--data names" if named else "the --config names" if any(a in ("--config", "-c") or
                                                                     a.startswith("--config=") for a in argv) else "by default"


def _data_advice(argv: list[str], command: str) -> str:
    """What to pass for a missing ``--data``: the data module the ``--ckpt_path`` file was trained on, where it records
    one (as ``neuroview explain --ckpt`` reads it), as the JSON spec the option takes; else a recipe."""
    recipe = "(pass --config recipes/<recipe>.yaml, which names the data and the model)"
    ckpt = _value(argv, "--ckpt_path")
    if command == "fit" or not ckpt:
        return recipe
    from ..data.read_as import checkpoint_data  # noqa: PLC0415

    spec = checkpoint_data(ckpt)
    if spec is None or not str(spec.get("class_path", "")).startswith("neuroview.data."):
        return recipe
    return (f"(the data to score; {ckpt} was trained on {spec['class_path'].rpartition('.')[2]}: pass --data "
            f"{shlex.quote(json.dumps(spec))} to read its own data as it was trained, or --config "
            f"recipes/<recipe>.yaml with --data of the data you mean)")


def _value(argv: list[str], option: str) -> str | None:
    for i, a in enumerate(argv):
        if a == option and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(option + "="):
            return a.split("=", 1)[1]
    return None


def short(message: str, given: list[str], lines: int = 12) -> str:
    """``message`` cut: jsonargparse explains a refused subclass at length, one reason per candidate, so its first
    ``lines`` lines are kept. A long value given (a 400 kB --data spec was said three times whole; --data=<spec> too)
    is cut as `neuroview explain` cuts --model-args; then a line still long (the value as parsed: a dict's repr) after
    its first 100 characters: over 200 where such a value was given, else over 2,000 (a long value from a --config or
    --data file; the parser's own words, its Subtypes: [...] of what an option accepts, are shorter: said whole)."""
    long = {v for a in given for v in (a, a.partition("=")[2] if a.startswith("--") else a) if len(v) > 200}
    for a in sorted(long, key=len, reverse=True):  # a value inside another: cut with it
        message = message.replace(a, f"{a[:60]!r}... ({len(a)} characters)")
    limit = 200 if long else 2_000
    parts = [f"{p[:100]}... ({len(p)} characters)" if len(p) > limit else p for p in message.strip().splitlines()]
    parts = [p for p in parts if p.strip()]
    return "\n".join(parts[:lines] + ([f"  ... ({len(parts) - lines} more lines)"] if len(parts) > lines else []))
