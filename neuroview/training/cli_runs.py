"""Where a ``neuroview`` command's run lives, and what it kept: the run folder with its ``~`` expanded, the run's
checkpoint callback (``--checkpoint``'s, not a user's ModelCheckpoint beside it), its best checkpoint (none where its
own ``last.ckpt`` records none), and why a fit kept no best checkpoint.

May import torch, ``neuroview.training`` and Lightning (``NeuroViewCLI`` calls these; :mod:`.cli` is near its size).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
from pathlib import Path

from .best_checkpoint import _run_state, _states, best_checkpoint
from .callbacks import Checkpoint
from .spawned import spawned

__all__ = ["data_named", "default_loggers", "expand_run_paths", "fit_best", "made_checkpoint", "no_best_reason",
           "resume_advice", "run_best", "run_checkpoint"]


def _expanded(path):
    """``path`` with a leading ``~`` expanded as a shell would (a URL, ``s3://...``, left as it is)."""
    if not isinstance(path, (str, os.PathLike)) or "://" in str(path) or not str(path).startswith("~"):
        return path
    return os.path.expanduser(str(path))


def expand_run_paths(cfg) -> None:
    """``--trainer.default_root_dir`` and ``--checkpoint.dirpath`` with their ``~`` expanded, once, before anything
    reads them: quoted or in a config no shell expanded it, and Lightning's checkpoints went to ``$HOME/...`` while the
    loggers, ``config.yaml``, ``confusion_matrix.csv`` and ``predictions.csv`` went to a folder named ``~`` in the
    working directory (``--ckpt_path last`` then found no run)."""
    trainer = cfg.get("trainer") if cfg is not None else None
    if trainer is not None and trainer.get("default_root_dir"):
        trainer.default_root_dir = _expanded(trainer.default_root_dir)
    ckpt = cfg.get("checkpoint") if cfg is not None else None
    if ckpt is not None and ckpt.get("dirpath"):
        ckpt.dirpath = _expanded(ckpt.dirpath)


def default_loggers(config: dict) -> dict:
    """The trainer's arguments ``config`` with its default loggers where ``logger`` is null or true: a CSV log (and a
    TensorBoard one, where installed) in ``<default_root_dir>/logs``. Built here, not written into the parsed config:
    the run's saved ``config.yaml`` held them with this run's folder as ``save_dir``, and a re-run of it with
    ``--trainer.default_root_dir NEW`` wrote its checkpoints to NEW, its metrics, config and confusion matrix into the
    old run's ``logs/``."""
    if config.get("logger") not in (None, True):
        return config
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger  # noqa: PLC0415 - Lightning, as the trainer

    root = config.get("default_root_dir") or os.getcwd()  # the Trainer's own default
    loggers = [CSVLogger(save_dir=root, name="logs")]
    if any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX")):
        loggers.append(TensorBoardLogger(save_dir=root, name="tensorboard"))
    return {**config, "logger": loggers}


def _recorded_none(last: Path, sub: str) -> bool:
    """Whether the run's ``last.ckpt`` holds a state of ``--checkpoint``'s callback (:func:`.best_checkpoint._run_state`:
    not a user's ModelCheckpoint's beside it, which records its own best) that records no best file (a run with no
    validation, or ``save_top_k 0``); False where it records one, holds no such state, or is no file torch reads."""
    run = _run_state(_states(last), last, sub)  # several states, none or several --checkpoint's: refused by name
    return run is not None and not run[1].get("best_model_path")


def run_checkpoint(trainer, made=None):
    """The run's ``--checkpoint`` callback among ``trainer``'s checkpoint callbacks: the one of neuroview's
    :class:`~.callbacks.Checkpoint` (of several: ``made``, the one the command built from ``--checkpoint``), or the only
    one there is (as :func:`.best_checkpoint._run_state` reads a file's states), not Lightning's first
    (``trainer.checkpoint_callback``: LightningCLI lists a user's ModelCheckpoint of ``--trainer.callbacks`` ahead of
    it, and fit tested that one's best); None where there is none (checkpointing off). Several, and none of that class,
    or several of it and ``made`` not one of them: a ValueError naming them."""
    found = getattr(trainer, "checkpoint_callbacks", None)
    if found is None:  # an object of Lightning's first alone (checkpoint_callback): that one is all there is
        found = [trainer.checkpoint_callback] if getattr(trainer, "checkpoint_callback", None) is not None else []
    ours = [c for c in found if isinstance(c, Checkpoint)]
    if made is not None and any(c is made for c in ours):
        return made
    if len(found) <= 1 or len(ours) == 1:
        return (ours or found or [None])[0]
    said = ", ".join(type(c).__name__ + (f" by {c.monitor} ({c.mode})" if c.monitor else "") for c in found)
    raise ValueError(f"checkpoint: a run keeps its checkpoints (its folder, the best that fit tests) by its --checkpoint "
                     f"callback (neuroview's Checkpoint), and the trainer has {len(found)} checkpoint callbacks ({said}), "
                     f"{'several' if ours else 'none'} of them neuroview's Checkpoint: whose is meant cannot be told; "
                     f"configure the run's with --checkpoint.*, and give one of your own as a pytorch_lightning "
                     f"ModelCheckpoint")


def made_checkpoint(cli):
    """The ``--checkpoint`` callback the command ``cli`` built (LightningCLI's ``config_init``); None where it built
    none (a command without sub-commands, an object standing in for one)."""
    made = getattr(cli, "config_init", None)
    made = made.get(cli.subcommand) if made is not None and getattr(cli, "subcommand", None) else made
    return made.get("checkpoint") if made is not None else None


def fit_best(trainer, cb) -> str:
    """The best file of the fit's ``--checkpoint`` callback ``cb`` (:func:`run_checkpoint`), "" where it kept none.
    After a spawned fit (``ddp_spawn``), whose launcher gives back the best of Lightning's first checkpoint callback
    only (a user's, listed ahead of ``cb``), the one the run's folder records (:func:`run_best`)."""
    best = cb.best_model_path if cb is not None else ""
    if best or cb is None or cb is trainer.checkpoint_callback or not spawned(trainer) or not cb.dirpath:
        return best
    try:
        return str(run_best(cb.dirpath, "test"))
    except (ValueError, FileNotFoundError):  # it kept none (no validation, save_top_k 0): the caller says why
        return ""


def run_best(folder, sub: str) -> Path:
    """``--ckpt_path best``: the best checkpoint of the run whose ``last.ckpt`` is in ``folder``
    (:func:`best_checkpoint`). A run whose ``last.ckpt`` records no best is refused by name: the best files there are an
    earlier run's (kept as ``best-...-v1.ckpt`` when this one started), and were read as this run's best."""
    last = Path(folder) / "last.ckpt"
    if last.is_file() and _recorded_none(last, sub):
        then = "resume it with --ckpt_path last" if sub == "fit" else "pass --ckpt_path last (its last weights)"
        raise ValueError(f"ckpt_path: 'best' reads the run's best checkpoint, and the run of {last} kept none (it "
                         f"records no best file: no validation ran, or save_top_k 0); the best files in {folder} are not "
                         f"its own: {then}, or name a checkpoint file")
    return best_checkpoint(folder, sub)


def _has_val_split(trainer) -> bool:
    """Whether the fit's data has validation batches (a data module's ``val_dataloader`` of none: ``[]``)."""
    make = getattr(getattr(trainer, "datamodule", None), "val_dataloader", None)
    try:
        loaders = make() if callable(make) else None
    except Exception:  # noqa: BLE001 - a loader the data cannot make: no split to rank by
        return False
    if loaders is None:
        return True  # another source of validation data (a loader given to fit): the other reasons hold
    loaders = loaders if isinstance(loaders, (list, tuple)) else [loaders]
    return any(len(dl) for dl in loaders if hasattr(dl, "__len__")) or any(not hasattr(dl, "__len__") for dl in loaders)


def no_best_reason(trainer, cb) -> str:
    """Why a fit that asked to test its best checkpoint kept none, from the trainer and its ``--checkpoint`` callback
    ``cb`` (:func:`run_checkpoint`; it blamed 'no validation split, or save_top_k 0' for every run: checkpointing off,
    validation limited to 0 batches or never reached)."""
    if trainer.fast_dev_run:
        return "fast_dev_run saves no checkpoint"
    if cb is None:
        return "the run kept no best checkpoint (checkpointing is off: enable_checkpointing false)"
    if cb.save_top_k == 0:
        return "the run kept no best checkpoint (checkpoint.save_top_k 0)"
    if trainer.limit_val_batches == 0:
        return "the run kept no best checkpoint (no validation ran: limit_val_batches 0)"
    val = trainer.fit_loop.epoch_loop.val_loop
    if not getattr(val, "_has_run", True) or (cb.monitor and cb.monitor not in trainer.callback_metrics):
        if not _has_val_split(trainer):
            return "the run kept no best checkpoint (no validation split to rank by)"
        every = trainer.check_val_every_n_epoch
        return (f"the run kept no best checkpoint (no validation ran: it stopped after {trainer.current_epoch} "
                f"epoch(s), {trainer.global_step} step(s), before the first validation (check_val_every_n_epoch "
                f"{every}, val_check_interval {trainer.val_check_interval}, max_steps {trainer.max_steps}))")
    return "the run kept no best checkpoint (no validation split to rank by, or save_top_k 0)"


def data_named(argv) -> bool:
    """Whether the command line names its data (``--data ...``): a file the user chose, whose labels are looked up by
    name among the model's classes. A recipe's own data set beside a run trained on other data is not: its refusal
    names the run's own data (read by name, a recipe set of some of the model's classes was scored without a word)."""
    return any(a == "--data" or a.startswith(("--data=", "--data.")) for a in argv or ())


def resume_advice(diff: dict, given: set[str] | None) -> str:
    """What a refused ``fit --ckpt_path`` of other model options (``diff``: option -> (asked, in the checkpoint)) should
    do: drop the options the command line gives (``given``; None: all of them), and pass the run's value of those it
    left out (a config's value, a default): "drop those options" told a user who gave none to drop nothing."""
    drop = sorted(k for k in diff if given is None or k in given)
    left = sorted(k for k in diff if k not in drop)
    said = [f"drop {', '.join(f'--model.{k}' for k in drop)}"] if drop else []
    for k in left:
        value = diff[k][1]
        try:
            text = value if isinstance(value, str) else json.dumps(value)
        except (TypeError, ValueError):
            text = str(value)
        said.append(f"pass --model.{k} {shlex.quote(str(text))} as the run did")
    return "; ".join(said)
