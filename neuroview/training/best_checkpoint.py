"""Which file ``--ckpt_path best`` names outside the fit that made it: the best the run's own ``last.ckpt`` records
(its ``ModelCheckpoint`` state, by file name in the checkpoint folder, wherever the folder was when it saved), not the
newest ``best-*.ckpt``: with ``--checkpoint.save_top_k 3`` that was the last top-k save, not the best one, and an
earlier run's kept ``best-...-v1.ckpt`` or a stale best of a moved folder could be newer still.

May import torch; nothing of neuroview.
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["best_checkpoint"]


def _recorded_best(folder: Path, source: Path) -> Path | None:
    """The best file the checkpoint ``source`` records (each ``ModelCheckpoint`` state's ``best_model_path``), by its
    name in ``folder``; None where it records none that is there, or is no checkpoint torch reads."""
    try:
        saved = torch.load(source, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - a file of torch's legacy format, a user's file: the folder decides alone
        return None
    states = (saved.get("callbacks") or {}).values() if isinstance(saved, dict) and isinstance(saved.get("callbacks"), dict) else ()
    for state in states:
        best = state.get("best_model_path") if isinstance(state, dict) else None
        if isinstance(best, str) and best and (folder / Path(best).name).is_file():
            return folder / Path(best).name
    return None


def best_checkpoint(folder, sub: str) -> Path:
    """The run's best checkpoint in the checkpoint folder ``folder``: the one its ``last.ckpt`` ranks best (else the
    newest best file's own record); a single ``best*.ckpt`` that no file records is taken as it is. Several and no
    record of which is best: a ValueError naming them (ranked by the time of their writing, the best was a guess)."""
    folder = Path(folder)
    last = folder / "last.ckpt"
    best = _recorded_best(folder, last) if last.is_file() else None  # (whatever --checkpoint.filename named it)
    if best is not None:
        return best
    found = sorted(folder.glob("best*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        then = "run without --ckpt_path to start a new run" if sub == "fit" else "name a checkpoint file"
        raise FileNotFoundError(f"ckpt_path: 'best' {'resumes' if sub == 'fit' else 'reads'} the best checkpoint "
                                f"in {folder}, and there is none (no best-*.ckpt); {then}")
    best = _recorded_best(folder, found[-1])  # no last.ckpt: the newest best file's record of the run's best
    if best is not None:
        return best
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in found)
    raise ValueError(f"ckpt_path: 'best' reads the best checkpoint in {folder}, and no checkpoint there records which "
                     f"of its {len(found)} best files ({names}) is the best (no last.ckpt, or one of another run): "
                     f"pass --ckpt_path with the file to {'resume' if sub == 'fit' else sub}")
