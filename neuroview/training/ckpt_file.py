"""The checkpoint file a command names: ``--ckpt_path`` of ``neuroview fit|validate|test|predict`` (``last``, ``best``
or a path; moved out of :mod:`.cli`, at its size) and the words for a path that is no file, which ``neuroview explain
--ckpt`` says too: an existing folder (a run's, or its ``checkpoints/``) said as one, with the files it holds, not
"no such file".

May import ``neuroview.training`` and Lightning (:func:`checkpoint_file` reads the runs' folders; :func:`not_a_file`
imports nothing of them: ``neuroview explain`` calls it; it lives in :mod:`.folder_words`, which
:mod:`.earlier_runs` imports without a circle).
"""

from __future__ import annotations

import os
from pathlib import Path

from .folder_words import not_a_file  # its home: fit's --model.init_weights check (earlier_runs) says it too

__all__ = ["checkpoint_file", "not_a_file"]


def checkpoint_file(cfg, sub: str) -> str | None:
    """The file ``--ckpt_path`` names (``last``: the checkpoint folder's ``last.ckpt``, set as ``cfg.ckpt_path`` outside
    ``fit``, as ``best`` is), or None for
    none and Lightning's other special values; a file that is not there is refused by name (Lightning printed a
    traceback for a path, and for ``last`` only warned and started afresh or ran untrained weights)."""
    from .cli_runs import run_best  # noqa: PLC0415 - torch; not_a_file's callers need none of it
    from .earlier_runs import last_checkpoint  # noqa: PLC0415 - Lightning

    ckpt = cfg.get("ckpt_path")
    if not ckpt or str(ckpt) == "hpc" or "://" in str(ckpt) or str(ckpt).startswith("registry"):
        return None
    if ckpt in ("last", "best"):  # best, outside the fit that made it: the run's best-*.ckpt (Lightning's traceback; a
        folder = cfg.checkpoint.get("dirpath") or os.path.join(cfg.trainer.default_root_dir, "checkpoints")  # fit too)
        if ckpt == "last":  # last.ckpt only: Lightning read the newest last*.ckpt, an earlier run's kept last-v1 too
            last = str(last_checkpoint(folder, sub))
            if sub != "fit":  # a file before Lightning's _parse_ckpt_path, as best: it rebuilds the checkpoint's model
                cfg.ckpt_path = last  # from its hyper-parameters only for a file ('last': the recipe's, a load error)
            return last
        best = run_best(folder, sub)  # the one its last.ckpt ranks best, not the newest of them
        cfg.ckpt_path = str(best)  # Lightning reads 'best' only in the process that fitted
        return str(best)
    path = Path(str(ckpt)).expanduser()  # quoted or in a config, no shell expanded it; Lightning does not
    if not path.is_file():  # a run's folder was "no such file"
        raise FileNotFoundError(f"ckpt_path: expected a checkpoint file, got {str(ckpt)!r} {not_a_file(path)}")
    if str(path) != str(ckpt):
        cfg.ckpt_path = str(path)
    return str(path)
