"""The order of a ``neuroview fit|validate|test|predict`` command line: jsonargparse reads it left to right, so a
``--config`` file sets again every option it names that was given before it (a run's saved ``config.yaml`` names
all of them: ``ckpt_path: null`` among them). :func:`reset_by_config` finds such options, for the warning of
:func:`warn_reset` and the ``--ckpt_path`` refusal of :class:`~neuroview.training.cli.NeuroViewCLI`. Of several
``--config`` files, :func:`run_name` names the run after the recipe, and :func:`merged_model_kwargs` merges a later
one's ``model_kwargs`` into the earlier ones' key by key.

Imports yaml and the standard library only.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import yaml

__all__ = ["merged_model_kwargs", "reset_by_config", "reset_note", "run_name", "scheduler_named", "warn_reset"]

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


#: Options that are one dict (not a group of options), merged key by key (:func:`merged_model_kwargs`): a config sets
#: again a key of it that it names, and every key where it sets the dict to no mapping (``model_kwargs: null``).
_DICTS = ("model_kwargs",)


def _sets(path: str, key: str) -> bool:
    """Whether the YAML config ``path`` names the dotted ``key`` (``data.init_args.path``; ``data.path`` too, as
    jsonargparse reads it into ``init_args``), at its top or under a sub-command's key; or replaces it whole: a part
    of it set to a value that is no mapping (``data: neuroview.data.NpzDataModule``, its ``init_args`` made anew). A
    key of a dict option of :data:`_DICTS` is set only where the config names that key (its value replaced whole)
    or sets the dict to no mapping: ``model_kwargs: {batched: auto}`` keeps a ``members`` given before, as merged."""
    cfg = _load(path)  # a file, or a YAML string given in its place
    if cfg is None:
        return False
    for node in _nodes(cfg):
        parts = key.split(".")
        for n, part in enumerate(parts):
            if isinstance(node, dict) and part not in node and isinstance(node.get("init_args"), dict):
                node = node["init_args"]
            if not isinstance(node, dict) or part not in node:
                break
            if n and parts[n - 1] in _DICTS:
                return True  # a key of a dict option, named: its value replaced whole (merged one level deep)
            node = node[part]
            if n < len(parts) - 1 and not isinstance(node, dict):
                return True  # replaced whole: a class path (new init_args), or a dict option set to null
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


def _load(value: str | None) -> dict | None:
    """The mapping a ``--config`` value holds: its file's YAML, or the YAML string given in place of a file (as
    jsonargparse reads it); None for anything else."""
    try:
        if value is not None and os.path.isfile(value):
            with open(value, encoding="utf-8") as f:
                cfg = yaml.safe_load(f)
        else:
            cfg = yaml.safe_load(value) if value is not None else None
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    return cfg if isinstance(cfg, dict) else None


def _nodes(cfg: dict) -> tuple:
    """A config's top and its sub-command sections (``fit:`` ...): where its options are."""
    return cfg, *(v for k, v in cfg.items() if k in ("fit", "validate", "test", "predict") and isinstance(v, dict))


def run_name(argv: list[str]) -> str:
    """The run folder's name: the stem of the last ``--config`` file that sets ``model`` or ``data`` (the recipe:
    ``recipes/digits_nv_small_cnn.yaml`` -> ``digits_nv_small_cnn``; a model variant after it, ``narrow.yaml``:
    ``narrow``), else of the last ``--config``, else ``neuroview``. Named after the last one whatever it sets, an
    override file (``quick.yaml``: ``trainer: {max_steps: 12}``) given after two recipes put both runs in
    ``runs/quick/``, and ``--ckpt_path last`` of one read the other's run; named after the first that sets ``model``,
    a variant trained into the recipe's folder, and the recipe's ``--ckpt_path last`` scored the variant."""
    last, named = None, None
    for _, name, value in _options(argv):
        if name in _CONFIG and value is not None:
            last = value
            cfg = _load(value) if os.path.isfile(value) else None  # a YAML string is no recipe to name a run after
            if cfg is not None and any("model" in n or "data" in n for n in _nodes(cfg)):
                named = value
    return Path(named or last).stem if last is not None else "neuroview"


def _config_kwargs(cfg: dict | None):
    """``model.model_kwargs`` as the config ``cfg`` sets it (``model.init_args.model_kwargs`` too); ``...`` where it
    does not set it."""
    for node in _nodes(cfg) if cfg is not None else ():
        model = node.get("model")
        if isinstance(model, dict) and isinstance(model.get("init_args"), dict) and "model_kwargs" not in model:
            model = model["init_args"]
        if isinstance(model, dict) and "model_kwargs" in model:
            return model["model_kwargs"]
    return ...


def merged_model_kwargs(argv: list[str] | None, parsed, load=yaml.safe_load):
    """``model_kwargs`` with a later ``--config``'s merged into the earlier configs' key by key, as
    ``--model.model_kwargs.KEY`` sets one key: jsonargparse reads the option as one value, and a second config
    setting ``{batched: false}`` dropped ucr_nv_cnn's ``members: 5`` without a word. ``parsed``: the value as
    jsonargparse gave it; the keys the configs and the command line set and a later config dropped are added to it
    (their values: the configs', and the command line's read by ``load``, jsonargparse's loader in the CLI: ``1e-3`` a
    float). A key set to null stays, as null; ``model_kwargs: null`` drops every key set before it; the whole dict
    given on the command line (``--model.model_kwargs '{...}'``, or ``--model``) replaces theirs. A
    ``--model.model_kwargs.KEY`` given before a later config is merged as a config's key is: that config resets it
    only where it sets KEY too (then its value stands, and :func:`warn_reset` says so); it went back to the recipe's."""
    state, dropped, prefix = None, False, "--model.model_kwargs."
    for _, name, value in _options(argv or []):
        if name in ("--model.model_kwargs", "--model"):  # the dict the configs set, replaced whole
            state = None
        elif name.startswith(prefix) and value is not None:  # one key, as jsonargparse sets it (a.b: {a: {b: ...}})
            top, *rest = name[len(prefix):].split(".")
            try:
                given = load(value)
            except (ValueError, yaml.YAMLError):  # no YAML: a string, as jsonargparse keeps it
                given = value
            for part in reversed(rest):
                given = {part: given}
            old = (state or {}).get(top)
            state = {**(state or {}), top: {**old, **given} if rest and isinstance(old, dict) else given}
        elif name in _CONFIG:
            found = _config_kwargs(_load(value))
            if found is ...:
                continue
            if isinstance(found, dict) and isinstance(state, dict):
                dropped = dropped or bool(set(state) - set(found))
                state = {**state, **found}
            else:
                state = dict(found) if isinstance(found, dict) else None  # null: none of the keys before
    if not dropped or not isinstance(state, dict) or not isinstance(parsed, dict):
        return parsed
    return {**{k: parsed.get(k, v) for k, v in state.items()}, **parsed}


def scheduler_named(argv: list[str] | None, named: set[str] | None, keys) -> tuple[set[str] | None, str]:
    """``named`` (the model options ``argv`` names, for :func:`~.schedules.drop_unused_options`) as a scheduler set by a
    later ``--config`` makes it: with ``scheduler``, and with each schedule option of ``keys`` set by that config or a
    later one (those stay); one an earlier config sets, the recipe's, is not: a second ``--config`` of
    ``{model: {scheduler: none}}`` was refused for the recipe's ``warmup_epochs``, where ``--model.scheduler none``
    runs. Also where the scheduler came from, for the warning."""
    if named is None or "scheduler" in named or not argv:
        return named, "--model.scheduler"
    last = {}
    for i, name, value in _options(argv):
        if name in _CONFIG and value is not None:
            for key in ("scheduler", *keys):
                if _sets(value, f"model.{key}"):
                    last[key] = (i, value)
    if "scheduler" not in last:
        return named, "--model.scheduler"
    at, config = last["scheduler"]
    return named | {"scheduler"} | {k for k in keys if k in last and last[k][0] >= at}, f"--config {config}'s scheduler"
