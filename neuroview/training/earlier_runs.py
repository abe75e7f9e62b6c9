"""An earlier run's checkpoints in the folder a new run writes to: each kept as ``<name>-v<N>.ckpt`` once the new run
has started (:class:`KeepEarlierRuns`: a command refused, or failing in its setup, leaves them where they were), and a
``--model.init_weights`` that named one of them read by its new name, in every process of a launch. May import
Lightning and ``neuroview._io``; nothing else of neuroview.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info

from .._io import keep_aside

__all__ = ["KeepEarlierRuns", "check_init_weights", "keep_earlier_checkpoints"]

# rank 0 renames; the processes Lightning starts after it inherit its environment, and read the new name from here
_KEPT = "NEUROVIEW_KEPT_INIT_WEIGHTS"
_RANKS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def keep_earlier_checkpoints(cb, model, cfg, *, init_only: bool = False) -> None:
    """Keep each checkpoint of ``cb.dirpath`` that this run may write again (``last.ckpt``, a best of the same name)
    as ``<name>-v<N>.ckpt``; where ``model``'s ``init_weights`` named one, point it (and ``cfg.model.init_weights``,
    the saved config) at the kept name. One process renames: the first of a launch (Lightning starts the others
    after it, with its environment; torchrun and SLURM start every process at once, and name each); the others
    only take the new name of the init weights (before, rank 1 looked for ``last.ckpt`` and found it missing).
    ``init_only``: only the file ``init_weights`` names (its new name must be in the config the run saves at its
    setup); :class:`KeepEarlierRuns` keeps the others once the run starts."""
    if any(int(os.environ.get(k, 0) or 0) for k in _RANKS):
        old, kept = json.loads(os.environ.get(_KEPT) or '["", ""]')  # JSON: a folder's name may hold any separator
        if old and _same(getattr(model, "hparams", {}).get("init_weights"), old):
            _point_at(model, cfg, kept)
        return
    os.environ.pop(_KEPT, None)  # a name kept by an earlier fit of this process is not this run's
    for old in _earlier(cb.dirpath, cb.FILE_EXTENSION):
        init = _same(getattr(model, "hparams", {}).get("init_weights"), old)
        if init or not init_only:
            kept = _keep(old)
            if init:
                _point_at(model, cfg, str(kept))  # read at setup: renamed
                os.environ[_KEPT] = json.dumps([os.path.realpath(old), str(kept)])


class KeepEarlierRuns(Callback):
    """Keeps the earlier run's checkpoints of ``dirpath`` aside (``<name>-v<N>.ckpt``) when training starts: after
    the setup (the weights loaded, the sites found) and the sanity check, before the first save. Renamed at the
    command's start, a run refused in its setup (an ``init_weights`` it could not load, data it could not read) left
    the only run of the folder at ``last-v1.ckpt``, where ``--ckpt_path runs/<recipe>/checkpoints/last.ckpt`` no
    longer found it."""

    def __init__(self, dirpath: str, extension: str = ".ckpt"):
        self.dirpath, self.extension = str(dirpath), extension

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:  # one process renames; no rank has saved anything yet
            for old in _earlier(self.dirpath, self.extension):
                _keep(old)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """A run that failed in its setup: the log folders Lightning began for it (``logs/version_N``) removed where
        they are still empty, so the earlier run's is the newest again."""
        if not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            folder = getattr(logger, "log_dir", None)  # the logger's own: trainer.log_dir is a broadcast
            if folder and os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)


def check_init_weights(cfg) -> None:
    """``--model.init_weights`` names a readable file, checked before anything is built or moved: the weights are read
    at the model's setup, after the earlier run's checkpoints were kept aside and a log folder begun. Checked where a
    resume (``--ckpt_path``) does not replace them, by the first process only (the others may read a kept name)."""
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
    model.hparams["init_weights"] = cfg.model.init_weights = kept
