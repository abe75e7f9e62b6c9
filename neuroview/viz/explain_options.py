"""The options of ``neuroview explain`` that a library function's refusal names by its own argument: create_model's
``root: ...`` is ``--zoo``, its ``kwargs: ...`` ``--model-args``, a data module's ``path: ...`` ``--data``.
:func:`as_typed` says the option typed, as sparsify's and retrofit's refusals do (``(option --zoo)``, by
:func:`neuroview.training.sparsify_cli.as_option`), and gives the command line's way where the message advises a
Python call. Which arguments are which options depends on the step that failed: :func:`model_options` while the model
is built, :func:`data_options` after (an MNIST folder's ``root: ...`` is ``--data``'s, not ``--zoo``'s).

Imports: the standard library (``as_option`` inside :func:`as_typed`: Lightning is slow to import).
"""

from __future__ import annotations

import json
import re

__all__ = ["as_typed", "data_options", "model_options"]

#: create_model's advice to a Python caller, whose call no option of explain's makes (pretrained.py's words)
_PYTHON_WAY = re.compile(r"\. Build create_model\('([^']+)', \.\.\.\) without pretrained=True to change them")


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


def as_typed(message: str, options: dict[str, str]) -> str:
    """``message`` as ``neuroview explain`` prints it: its argument's option said, and the command line's way to other
    builder arguments where create_model advised a Python caller to build without ``pretrained=True``.

    >>> as_typed("root: expected a checkpoint folder, got 'z' (no such folder)", {"root": "--zoo"})
    "root: expected a checkpoint folder, got 'z' (no such folder) (option --zoo)"
    """
    from ..training.sparsify_cli import as_option  # noqa: PLC0415 - Lightning

    message = _PYTHON_WAY.sub(lambda m: f"; drop --model-args to explain it as trained, or explain weights of your own "
                                        f"trained with them: --model {m.group(1)} --weights FILE --model-args ...", message)
    return as_option(message, options)
