"""The order of a ``neuroview fit|validate|test|predict`` command line: jsonargparse reads it left to right, so a
``--config`` file sets again every option it names that was given before it (a run's saved ``config.yaml`` names
all of them: ``ckpt_path: null`` among them). :func:`reset_by_config` finds such options, for the warning of
:func:`warn_reset` and the ``--ckpt_path`` refusal of :class:`~neuroview.training.cli.NeuroViewCLI`.

Imports yaml and the standard library only.
"""

from __future__ import annotations

import warnings

import yaml

__all__ = ["reset_by_config", "reset_note", "warn_reset"]

_CONFIG = ("--config", "-c")


def _options(argv: list[str]) -> list[tuple[int, str, str | None]]:
    """``(position, name, value)`` of each ``--name value`` / ``--name=value`` of ``argv`` (a flag: value None)."""
    out = []
    for i, a in enumerate(argv):
        if not a.startswith("-"):
            continue
        name, eq, inline = a.partition("=")
        nxt = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else None
        out.append((i, name, inline if eq else nxt))
    return out


#: Options that are one dict (not a group of options): a config naming them replaces the whole dict, given keys too.
_DICTS = ("model_kwargs",)


def _sets(path: str, key: str) -> bool:
    """Whether the YAML config ``path`` names the dotted ``key`` (``data.init_args.path``; ``data.path`` too, as
    jsonargparse reads it into ``init_args``), at its top or under a sub-command's key; or replaces it whole: a part
    of it set to a value that is no mapping (``data: neuroview.data.NpzDataModule``, its ``init_args`` made anew), or a
    dict option of :data:`_DICTS` set at all (``model_kwargs: {batched: auto}`` drops a ``members`` given before)."""
    try:
        with open(path, encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    if not isinstance(cfg, dict):
        return False
    for node in (cfg, *(v for k, v in cfg.items() if k in ("fit", "validate", "test", "predict"))):
        parts = key.split(".")
        for n, part in enumerate(parts):
            if isinstance(node, dict) and part not in node and isinstance(node.get("init_args"), dict):
                node = node["init_args"]
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
            if n < len(parts) - 1 and (not isinstance(node, dict) or part in _DICTS):
                return True  # replaced whole: a class path (new init_args), or a dict option
        else:  # named: replaced where it is a value, a class (class_path: init_args anew) or a dict option
            if not isinstance(node, dict) or "class_path" in node or parts[-1] in _DICTS:
                return True  # else only its sub-keys: the next section (fit:, test: ...) may still replace it
    return False


def reset_by_config(argv: list[str] | None, key: str) -> str | None:
    """The ``--config`` file that, given after ``--key`` on ``argv``, names ``key`` and so set it again (the last
    such); None where there is none, or where ``--key`` is given again after it (that value stands)."""
    if not argv:
        return None
    opts, last, config = _options(argv), None, None
    for i, name, value in opts:
        if name == f"--{key}":
            last, config = i, None
        elif name in _CONFIG and last is not None and value is not None and _sets(value, key):
            config = value
    return config


def reset_note(argv: list[str] | None, keys: tuple[str, ...]) -> str:
    """For a refusal of a missing option: ``" (...)"`` where one of ``keys`` was given before a ``--config`` that set
    it again; ``""`` otherwise."""
    for key in keys:
        config = reset_by_config(argv, key)
        if config is not None:
            return (f" (--{key} was given before --config {config}, which sets {key} again: options are read in "
                    f"order, a later --config replacing what it names, as jsonargparse reads them; put --{key} after "
                    "--config)")
    return ""


def warn_reset(argv: list[str] | None) -> None:
    """One warning for each option given before a ``--config`` that sets it again: the value given was replaced
    without a word (``--data.init_args.path new.npz --config RUN/config.yaml`` read the training file)."""
    names = {name[2:] for _, name, _ in _options(argv or []) if name.startswith("--") and name not in _CONFIG}
    for key in sorted(names):
        config = reset_by_config(argv, key)
        if config is not None:
            warnings.warn(f"{key}: the --{key} given before --config {config} is replaced by that file's {key} "
                          f"(options are read in order, a later --config setting again what it names, as jsonargparse "
                          f"reads them); put --{key} after --config to have yours", UserWarning, stacklevel=3)
