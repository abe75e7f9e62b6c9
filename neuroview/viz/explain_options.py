"""The options of ``neuroview explain`` that a library function's refusal names by its own argument: create_model's
``root: ...`` is ``--zoo``, its ``kwargs: ...`` ``--model-args``, a data module's ``path: ...`` ``--data``.
:func:`as_typed` says the option typed, as sparsify's and retrofit's refusals do (``(option --zoo)``, by
:func:`neuroview.training.sparsify_cli.as_option`), and gives the command line's way where the message advises a
Python call. Which arguments are which options depends on the step that failed: :func:`model_options` while the model
is built, :func:`data_options` after (an MNIST folder's ``root: ...`` is ``--data``'s, not ``--zoo``'s).

Where no such argument heads the message, the option is checked before the library is called:
:func:`check_model_args` (create_model's own arguments in ``--model-args``), which said a bare Python ``TypeError``. A
JSON ``--data`` spec's keys are checked where it is built, by the training commands' own check
(:func:`neuroview.training.data_arg.check_spec_args`, in ``datamodule_for``).

Imports: the standard library (``as_option`` inside :func:`as_typed`: Lightning is slow to import).
"""

from __future__ import annotations

import json
import re
import shlex

__all__ = ["as_typed", "check_model_args", "data_options", "model_options"]

#: create_model's advice to a Python caller, whose call no option of explain's makes (pretrained.py's words)
_PYTHON_WAY = re.compile(r"\. Build create_model\('([^']+)', \.\.\.\) without pretrained=True to change them")
#: unknown_entry's listing: the installed zoo's, and in Python (pretrained.py's words), where --zoo named another
_LISTING = re.compile(r"`neuroview zoo` lists the (\d+) trained checkpoints \(nv\.list_models\(pretrained=True\)\)")
#: create_model's own arguments, which explain sets from its options ("got multiple values for keyword argument")
_OWN = {"name": "which --model gives", "root": "the zoo's folder, which --zoo gives",
        "pretrained": "which explain sets itself (--model ARCH.TAG: the entry's trained weights; --model ARCH --weights "
                      "FILE: yours)"}


def _keys(text: str | None, inner: str | None = None) -> list[str]:
    """The keys of a JSON object typed (its ``inner`` object's); none where it is no object (refused by name elsewhere)."""
    try:
        obj = json.loads(text) if text and text.lstrip().startswith("{") else {}
    except (ValueError, RecursionError):
        return []
    obj = obj.get(inner) if inner and isinstance(obj, dict) else obj
    return [str(k) for k in obj] if isinstance(obj, dict) else []


def model_options(args) -> dict[str, str]:
    """create_model's arguments as ``explain --model`` takes them: ``name`` (``--model``), ``kwargs`` and each builder
    argument of ``--model-args`` (a typo's ``quantizr: unexpected keyword argument``), ``root`` where ``--zoo`` gave it
    (without, the installed zoo's ``root:`` is no option's)."""
    if not args.model:
        return {}
    return (dict.fromkeys(_keys(args.model_args), "--model-args") | {"name": "--model", "kwargs": "--model-args"}
            | ({"root": "--zoo"} if args.zoo else {}))


def data_options(args) -> dict[str, str]:
    """A data module's arguments where ``--data`` built it: its file (``path``), folder (``root``), set (``name``) and
    what a JSON spec's ``init_args`` set; none where the data is the model's record (no option named it)."""
    if not args.data:
        return {}
    return dict.fromkeys([*_keys(args.data, "init_args"), "path", "root", "name"], "--data")


def check_model_args(kwargs: dict, zoo: str | None) -> None:
    """``--model-args`` holds builder arguments only: create_model's own (``name``, ``pretrained``, ``root``) are
    explain's options, and were Python's "create_model() got multiple values for keyword argument" (``root`` without
    ``--zoo`` read as one: two ways to one folder).

    >>> check_model_args({"root": "z"}, None)
    Traceback (most recent call last):
    ...
    ValueError: --model-args: expected the network's builder arguments, got 'root', the zoo's folder, which --zoo gives; pass --zoo z
    """
    own = next((k for k in kwargs if k in _OWN), None)
    if own is not None:
        fix = f"pass --zoo {shlex.quote(str(kwargs[own]))}" if own == "root" and not zoo else "drop it"
        raise ValueError(f"--model-args: expected the network's builder arguments, got {own!r}, {_OWN[own]}; {fix}")


def as_typed(message: str, options: dict[str, str], zoo: str | None = None) -> str:
    """``message`` as ``neuroview explain`` prints it: its argument's option said, the command line's way to other
    builder arguments where create_model advised a Python caller to build without ``pretrained=True``, and the listing
    of ``--zoo`` (``zoo``) where it advised the installed zoo's and ``nv.list_models``.

    >>> as_typed("root: expected a checkpoint folder, got 'z' (no such folder)", {"root": "--zoo"})
    "root: expected a checkpoint folder, got 'z' (no such folder) (option --zoo)"
    """
    from ..training.sparsify_cli import as_option  # noqa: PLC0415 - Lightning

    message = _PYTHON_WAY.sub(lambda m: f"; drop --model-args to explain it as trained, or explain weights of your own "
                                        f"trained with them: --model {m.group(1)} --weights FILE --model-args ...", message)
    message = _LISTING.sub(lambda m: f"`neuroview zoo --root {shlex.quote(zoo)}` lists its {m.group(1)} trained "
                                     "checkpoints" if zoo else f"`neuroview zoo` lists the {m.group(1)} trained "
                                     "checkpoints", message)
    return as_option(message, options)
