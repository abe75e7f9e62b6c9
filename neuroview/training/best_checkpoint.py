"""Which file ``--ckpt_path best`` names outside the fit that made it: the best the run's own ``last.ckpt`` records
(its ``ModelCheckpoint`` state, by file name in the checkpoint folder, wherever the folder was when it saved), not the
newest ``best-*.ckpt``: with ``--checkpoint.save_top_k 3`` that was the last top-k save, not the best one, and an
earlier run's kept ``best-...-v1.ckpt`` or a stale best of a moved folder could be newer still. Without ``last.ckpt``,
the best of the scores the files record of themselves: their times are no order (a copy without ``-p``, an unpack).

May import torch; nothing of neuroview.
"""

from __future__ import annotations

import ast
from pathlib import Path

import torch

__all__ = ["best_checkpoint"]


def _states(source: Path) -> list[tuple[str, dict]]:
    """The ``ModelCheckpoint`` states (state key, state) that the checkpoint ``source`` holds; none where it is no
    checkpoint torch reads."""
    try:
        saved = torch.load(source, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - a file of torch's legacy format, a user's file: the folder decides alone
        return []
    callbacks = saved.get("callbacks") if isinstance(saved, dict) else None
    return [(str(k), v) for k, v in (callbacks if isinstance(callbacks, dict) else {}).items()
            if isinstance(v, dict) and "best_model_path" in v]


def _recorded_best(folder: Path, source: Path) -> Path | None:
    """The best file the checkpoint ``source`` records (each ``ModelCheckpoint`` state's ``best_model_path``), by its
    name in ``folder``; None where it records none that is there, or is no checkpoint torch reads."""
    for _, state in _states(source):
        best = state.get("best_model_path")
        if isinstance(best, str) and best and (folder / Path(best).name).is_file():
            return folder / Path(best).name
    return None


def _own_score(path: Path) -> tuple[str, str, float] | None:
    """``(monitor, mode, score)`` that the best file ``path`` records of itself: its ``ModelCheckpoint`` state as saved
    with it (the score it was ranked by: ``current_score``, or its own entry of ``best_k_models``), the rule from the
    state key (``ModelCheckpoint{'monitor': ..., 'mode': ...}``); None where it records none."""
    for key, state in _states(path):
        try:
            rule = ast.literal_eval(key[key.index("{"):])
        except (ValueError, SyntaxError):
            continue
        if not isinstance(rule, dict) or rule.get("mode") not in ("min", "max") or not rule.get("monitor"):
            continue
        own = [v for k, v in (state.get("best_k_models") or {}).items() if Path(str(k)).name == path.name]
        score = own[0] if own else state.get("current_score")
        try:
            return str(rule["monitor"]), rule["mode"], float(score)
        except (TypeError, ValueError, RuntimeError):
            continue
    return None


def _best_of_records(folder: Path, found: list[Path], sub: str) -> Path:
    """The best of ``found`` (several files, no ``last.ckpt`` record) by the score each records of itself; refused by
    name where one records none or they rank by different rules (the files of different runs)."""
    scores = {p: _own_score(p) for p in found}
    lacking = [p.name for p, s in scores.items() if s is None]
    rules = {s[:2] for s in scores.values() if s is not None}
    if lacking or len(rules) > 1:
        one = len(lacking) == 1
        rules_said = "; ".join(f"{p.name} {'ranks ' if i == 0 else ''}by {s[0]} ({s[1]})"
                               for i, (p, s) in enumerate((p, s) for p, s in scores.items() if s is not None))
        why = (f"{', '.join(lacking)} record{'s' if one else ''} no score of {'its' if one else 'their'} own" if lacking
               else f"they rank by different rules, files of different runs: {rules_said}")
        raise ValueError(f"ckpt_path: 'best' reads the best checkpoint in {folder}, and no checkpoint there records which "
                         f"of its {len(found)} best files ({', '.join(p.name for p in found)}) is the best (no last.ckpt, "
                         f"or one of another run; {why}): pass --ckpt_path with the file to "
                         f"{'resume' if sub == 'fit' else sub}")
    (_, mode), = rules
    # ties: the earliest file by name (best-epoch000 before best-epoch001), as Lightning keeps the first of equal scores
    order = sorted(found, key=lambda p: p.name)
    return (min if mode == "min" else max)(order, key=lambda p: scores[p][2])


def best_checkpoint(folder, sub: str) -> Path:
    """The run's best checkpoint in the checkpoint folder ``folder``: the one its ``last.ckpt`` ranks best; without
    that record, the best of the ``best*.ckpt`` files (else of every ``*.ckpt`` but ``last*.ckpt``: a run of its own
    ``--checkpoint.filename``) by the score each records of itself. A single file is taken as it is. Several, and one
    records no score, or they rank by different monitors or modes: a ValueError naming them."""
    folder = Path(folder)
    last = folder / "last.ckpt"
    best = _recorded_best(folder, last) if last.is_file() else None  # (whatever --checkpoint.filename named it)
    if best is not None:
        return best
    found = sorted(folder.glob("best*.ckpt")) or sorted(p for p in folder.glob("*.ckpt") if not p.name.startswith("last"))
    if not found:
        then = "run without --ckpt_path to start a new run" if sub == "fit" else "name a checkpoint file"
        raise FileNotFoundError(f"ckpt_path: 'best' {'resumes' if sub == 'fit' else 'reads'} the best checkpoint "
                                f"in {folder}, and there is none (no checkpoint file but last*.ckpt); {then}")
    return found[0] if len(found) == 1 else _best_of_records(folder, found, sub)
