"""An earlier run's checkpoints in the folder a new run writes to: each kept as ``<name>-v<N>.ckpt`` once the new run
starts training (:class:`KeepEarlierRuns`: a command refused, or failing in its setup or sanity check, leaves them where
they were, the one a ``--model.init_weights`` names too: read at the setup under the name typed, saved in the run's
config by its kept name), and the log folders of a ``fit`` refused before it trained removed
(:class:`DropRefusedRun`). May import Lightning and ``neuroview._io``; nothing else of neuroview.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info

from .._io import keep_aside

__all__ = ["DropRefusedRun", "KeepEarlierRuns", "check_init_weights", "keep_earlier_checkpoints"]

# the first process's kept name of the init weights, for a process started after it with its environment. A launch
# (ddp's own, ddp_spawn, torchrun) starts its processes before training, so they take it from a broadcast instead
_KEPT = "NEUROVIEW_KEPT_INIT_WEIGHTS"
_RANKS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def keep_earlier_checkpoints(cb, model, cfg) -> str | None:
    """Keep each checkpoint of ``cb.dirpath`` that this run may write again (``last.ckpt``, a best of the same name)
    as ``<name>-v<N>.ckpt``; where ``model``'s ``init_weights`` named one, point it (and ``cfg.model.init_weights``,
    the saved config) at the kept name, and return that name (None where it named none). One process renames: the
    first of a launch; another (a rank > 0 by its environment) only takes the kept name of the init weights from
    ``NEUROVIEW_KEPT_INIT_WEIGHTS``, where the first process set it before starting it."""
    if any(int(os.environ.get(k, 0) or 0) for k in _RANKS):
        old, kept = json.loads(os.environ.get(_KEPT) or '["", ""]')  # JSON: a folder's name may hold any separator
        if old and _same(getattr(model, "hparams", {}).get("init_weights"), old):
            _point_at(model, cfg, kept)
            return kept
        return None
    os.environ.pop(_KEPT, None)  # a name kept by an earlier fit of this process is not this run's
    found = None
    for old in _earlier(cb.dirpath, cb.FILE_EXTENSION):
        init = _same(getattr(model, "hparams", {}).get("init_weights"), old)
        kept = _keep(old)
        if init:
            found = str(kept)
            _point_at(model, cfg, found)  # read at setup under the name typed; saved (config, checkpoints) as kept
            os.environ[_KEPT] = json.dumps([os.path.realpath(old), found])
    return found


class KeepEarlierRuns(Callback):
    """Keeps the earlier run's checkpoints of the checkpoint callback's folder aside (``<name>-v<N>.ckpt``) when
    training starts: after the setup (the weights loaded, the sites found) and the sanity check, before the first
    save, and before :class:`.run_config.SaveRunConfig` writes the run's config (``before_fit`` puts this callback
    ahead of it). An ``init_weights`` naming one of them (the folder's own ``last.ckpt``, as a refused resume
    advises) is read at the setup under the name typed, and the run's config and checkpoints (their hyper-parameters)
    name it as kept, in every process (broadcast from the first); the logger's ``hparams.yaml``, written at the setup,
    keeps the name typed. Renamed at the command's start, or for the init
    weights before the setup, a run refused in its setup left the only run of the folder at ``last-v1.ckpt``, where
    ``--ckpt_path runs/<recipe>/checkpoints/last.ckpt`` no longer found it, and the refusal named that file."""

    def __init__(self, checkpoint, cfg=None):
        self.checkpoint, self.cfg = checkpoint, cfg  # the ModelCheckpoint: its folder as its setup resolved it

    def on_train_start(self, trainer, pl_module) -> None:
        kept = keep_earlier_checkpoints(self.checkpoint, pl_module, self.cfg) if trainer.is_global_zero else None
        kept = trainer.strategy.broadcast(kept)  # the other ranks loaded the file under the name typed, before
        if kept and not trainer.is_global_zero:
            _point_at(pl_module, self.cfg, kept)


class DropRefusedRun(Callback):
    """A ``fit`` (a new run or a resume) refused before it trained (in its setup, its checkpoint's restore, the sanity
    check): the log folders it began (``logs/version_N``, and ``logs/`` or the run's folder where it made them)
    removed, so the earlier run's are the newest again. Only what was not there when the command built its trainer:
    a folder that was there (an empty ``logs/``, a ``--trainer.logger.version`` given) stays."""

    def __init__(self, loggers):
        self._started, self._watched = False, []
        for logger in loggers:
            if not getattr(logger, "root_dir", None):  # save_dir/name, holding its version_N (CSV, TensorBoard)
                continue
            root = Path(logger.root_dir).resolve()
            there = set(os.listdir(root)) if root.is_dir() else set()
            absent, up = [], root  # root, then each parent that is not there yet (the run's folder, runs/)
            while not up.exists() and up != up.parent:
                absent.append(up)
                up = up.parent
            self._watched.append((logger, root, there, absent))

    def on_train_start(self, trainer, pl_module) -> None:
        self._started = True

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if self._started or not trainer.is_global_zero:
            return
        for logger, root, there, absent in self._watched:
            folder = Path(logger.log_dir).resolve() if getattr(logger, "log_dir", None) else None
            if folder is not None and folder.parent == root and folder.name not in there and folder.is_dir():
                shutil.rmtree(folder)  # the refused run's own: hparams.yaml at most
            for made in absent:
                if made.is_dir() and not any(made.iterdir()):
                    made.rmdir()


def check_init_weights(cfg) -> None:
    """``--model.init_weights`` names a readable file, checked before anything is built or written: the weights are
    read at the model's setup, after a log folder was begun. Checked where a resume (``--ckpt_path``) does not replace
    them, by the first process only."""
    given = cfg.model.get("init_weights") if cfg is not None and cfg.get("model") is not None else None
    if not given or cfg.get("ckpt_path") or any(int(os.environ.get(k, 0) or 0) for k in _RANKS):
        return
    path = Path(str(given)).expanduser()
    if not path.is_file() or not os.access(path, os.R_OK):
        why = "not a file" if path.exists() and not path.is_file() else "not readable" if path.exists() else "no such file"
        raise FileNotFoundError(f"model.init_weights: expected a weight file to start from (a `neuroview fit` .ckpt, a state dict or a "
                                f".safetensors), got {str(given)!r} ({why})")


def _earlier(dirpath: str, extension: str) -> list[Path]:
    """The checkpoints of ``dirpath`` under a name this run may write again (not an earlier ``<name>-v<N>``)."""
    return [p for p in sorted(Path(dirpath).glob(f"*{extension}")) if p.is_file() and not re.search(r"-v\d+$", p.stem)]


def _keep(old: Path) -> Path:
    kept = keep_aside(old)
    rank_zero_info(f"neuroview fit: the earlier run's {old} kept as {kept.name} (this run writes its own; "
                   f"--trainer.default_root_dir gives a run a folder of its own)")
    return kept


def _same(path, other) -> bool:
    return path is not None and os.path.realpath(str(path)) == os.path.realpath(str(other))


def _point_at(model, cfg, kept: str) -> None:
    model.hparams["init_weights"] = kept
    if cfg is not None:  # the config the run saves (the CLI's; a callback built without one: the model alone)
        cfg.model.init_weights = kept

