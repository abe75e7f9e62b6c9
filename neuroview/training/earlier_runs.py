"""An earlier run's checkpoints in the folder a new run writes to: each kept as ``<name>-v<N>.ckpt`` before the
new run writes its own, and a ``--model.init_weights`` that named one of them read by its new name, in every process
of a launch. May import Lightning and ``neuroview._io``; nothing else of neuroview.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from pytorch_lightning.utilities import rank_zero_info

from .._io import keep_aside

__all__ = ["keep_earlier_checkpoints"]

# rank 0 renames; the processes Lightning starts after it inherit its environment, and read the new name from here
_KEPT = "NEUROVIEW_KEPT_INIT_WEIGHTS"
_RANKS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def keep_earlier_checkpoints(cb, model, cfg) -> None:
    """Keep each checkpoint of ``cb.dirpath`` that this run may write again (``last.ckpt``, a best of the same name)
    as ``<name>-v<N>.ckpt``; where ``model``'s ``init_weights`` named one, point it (and ``cfg.model.init_weights``,
    the saved config) at the kept name. One process renames: the first of a launch (Lightning starts the others
    after it, with its environment; torchrun and SLURM start every process at once, and name each); the others
    only take the new name of the init weights (before, rank 1 looked for ``last.ckpt`` and found it missing)."""
    if any(int(os.environ.get(k, 0) or 0) for k in _RANKS):
        old, kept = json.loads(os.environ.get(_KEPT) or '["", ""]')  # JSON: a folder's name may hold any separator
        if old and _same(getattr(model, "hparams", {}).get("init_weights"), old):
            _point_at(model, cfg, kept)
        return
    os.environ.pop(_KEPT, None)  # a name kept by an earlier fit of this process is not this run's
    for old in sorted(Path(cb.dirpath).glob(f"*{cb.FILE_EXTENSION}")):
        if old.is_file() and not re.search(r"-v\d+$", old.stem):  # names this run may write again
            kept = keep_aside(old)
            rank_zero_info(f"neuroview fit: the earlier run's {old} kept as {kept.name} (this run writes its own; "
                           f"--trainer.default_root_dir gives a run a folder of its own)")
            if _same(getattr(model, "hparams", {}).get("init_weights"), old):
                _point_at(model, cfg, str(kept))  # read at setup: renamed
                os.environ[_KEPT] = json.dumps([os.path.realpath(old), str(kept)])


def _same(path, other) -> bool:
    return path is not None and os.path.realpath(str(path)) == os.path.realpath(str(other))


def _point_at(model, cfg, kept: str) -> None:
    model.hparams["init_weights"] = cfg.model.init_weights = kept
