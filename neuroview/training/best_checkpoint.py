"""Which file ``--ckpt_path best`` names outside the fit that made it: the best the run's own ``last.ckpt`` records
(its ``ModelCheckpoint`` state, by file name in the checkpoint folder, wherever the folder was when it saved), not the
newest ``best-*.ckpt``: with ``--checkpoint.save_top_k 3`` that was the last top-k save, not the best one, and an
earlier run's kept ``best-...-v1.ckpt`` or a stale best of a moved folder could be newer still. Without ``last.ckpt``,
the best of the scores the run's files record of themselves: their times are no order (a copy without ``-p``, an
unpack), and their names none either (a user's callback may name its files ``best-*``, ``--checkpoint.filename`` its
own otherwise): which files are the run's, the callback states they hold say.
Either way the best of ``--checkpoint``'s callback, not of a ModelCheckpoint of the user's beside it (which
``last.ckpt`` records too, first): the same file with and without ``last.ckpt``.

May import torch; nothing of neuroview.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import torch

__all__ = ["best_checkpoint"]
_KEPT = re.compile(r"-v\d+$")  # <name>-v<N>.ckpt: an earlier run's file (earlier_runs; enable_version_counter is off)
_OURS = "Checkpoint{"  # the state key of --checkpoint's callback (callbacks.Checkpoint); a user's: "ModelCheckpoint{...}"


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


def _run_state(states: list[tuple[str, dict]], source: Path, sub: str) -> tuple[str, dict] | None:
    """The state, of ``states`` (a checkpoint's), of the callback whose best ``--ckpt_path best`` means: ``--checkpoint``'s
    (:class:`~neuroview.training.callbacks.Checkpoint`, state key ``Checkpoint{...}``; a user's own ``ModelCheckpoint``
    beside it is saved in the file too, first), or the only one there is; None where there is none. Several, and not
    exactly one of them ``--checkpoint``'s: a ValueError naming them and ``--ckpt_path`` (the first was taken: the
    user's best with ``last.ckpt``, ``--checkpoint``'s best file without it)."""
    ours = [(k, s) for k, s in states if k.startswith(_OURS)]
    if len(states) <= 1 or len(ours) == 1:
        return (ours or states or [None])[0]
    said = ", ".join(k[:k.index("{")] + (f" by {r[0]} ({r[1]})" if (r := _rule(k)) else "") for k, _ in states)
    raise ValueError(f"ckpt_path: 'best' reads the best checkpoint of the run's --checkpoint callback, and {source.name} "
                     f"records {len(states)} checkpoint callbacks ({said}), {'several' if ours else 'none'} of them "
                     f"--checkpoint's (neuroview's Checkpoint): whose best is meant cannot be told; pass --ckpt_path with "
                     f"the file to {'resume' if sub == 'fit' else sub}")


def _recorded_best(folder: Path, source: Path, sub: str) -> Path | None:
    """The best file the checkpoint ``source`` records (the ``best_model_path`` of the run's callback, :func:`_run_state`),
    by its name in ``folder``; None where it records none, or is no checkpoint torch reads. One it records that is not in
    ``folder``: a FileNotFoundError naming it (the files there are other runs', an earlier run's kept ``-v1`` ones)."""
    run = _run_state(_states(source), source, sub)
    states = [run] if run is not None else []
    recorded = [Path(b).name for _, state in states if isinstance(b := state.get("best_model_path"), str) and b]
    here = [folder / name for name in recorded if (folder / name).is_file()]
    if recorded and not here:  # a run moved with part of its top-k: the best of the files the same record ranks, here
        for rule, state in ((_rule(k), s) for k, s in states if s.get("best_model_path")):
            ranked = [(float(v), folder / Path(str(k)).name) for k, v in (state.get("best_k_models") or {}).items()
                      if (folder / Path(str(k)).name).is_file() and _number(v)]
            if rule is not None and ranked:
                return (max if rule[1] == "max" else min)(ranked, key=lambda r: r[0])[1]
        raise FileNotFoundError(f"ckpt_path: 'best' reads the run's best checkpoint, which its {source.name} records as "
                                f"{recorded[0]}, and that file is not in {folder} (removed, or left behind by a move): "
                                f"name a checkpoint file")
    return here[0] if here else None


def _number(v) -> bool:
    try:
        return float(v) == float(v)  # a recorded score (a tensor or a float), not NaN
    except (TypeError, ValueError, RuntimeError):
        return False


def _rule(key: str) -> tuple[str, str] | None:
    """``(monitor, mode)`` of a state key ``ModelCheckpoint{'monitor': ..., 'mode': ...}``; None where it names none."""
    try:
        rule = ast.literal_eval(key[key.index("{"):])
    except (ValueError, SyntaxError):
        return None
    if not isinstance(rule, dict) or rule.get("mode") not in ("min", "max") or not rule.get("monitor"):
        return None
    return str(rule["monitor"]), rule["mode"]


def _names(state: dict) -> set[str]:
    """The file names a callback state names: its top-k, its best and its last file."""
    return {Path(str(p)).name for p in (*(state.get("best_k_models") or {}), state.get("best_model_path"),
                                        state.get("last_model_path")) if p}


def _own_score(path: Path, sub: str, states: list[tuple[str, dict]] | None = None) -> tuple[str, str, float] | bool | None:
    """``(monitor, mode, score)`` that the best file ``path`` records of itself: the state of the run's callback
    (:func:`_run_state`) where it names the file (in its ``best_k_models``, ``best_model_path`` or ``last_model_path``),
    its own entry of ``best_k_models`` (else that state's ``current_score``), the rule from the state key; a file of one
    state that names it nowhere: that state's ``current_score``. False where another callback's state names it and the
    run's does not (a user's ModelCheckpoint beside ``--checkpoint``'s wrote it: not the run's best, though it holds
    both states); None where it records none, or cannot tell whose it is. ``states``: the file's, read already."""
    states = _states(path) if states is None else states
    run = _run_state(states, path, sub)
    if run is None or (rule := _rule(run[0])) is None:
        return None
    (monitor, mode), state = rule, run[1]
    if path.name not in _names(state) and len(states) > 1:
        return False if any(path.name in _names(s) for _, s in states) else None  # another's file, or no one's
    mine = [v for k, v in (state.get("best_k_models") or {}).items() if Path(str(k)).name == path.name]
    try:
        return monitor, mode, float(mine[0] if mine else state.get("current_score"))
    except (TypeError, ValueError, RuntimeError):
        return None


def _the_runs(folder: Path, found: list[Path], sub: str) -> tuple[list[Path], dict, set[str]]:
    """``(files, their scores, the names the run's records give)``: the files of ``found`` that may be the run's
    (``--checkpoint``'s, whatever its filename): not another callback's (:func:`_own_score` False), nor, beside files
    that record the run's state, a file that holds no state and that no record of the run names (a ModelCheckpoint of
    the user's with ``save_weights_only``, a copy). None of them the run's: a FileNotFoundError naming them."""
    states = {p: _states(p) for p in found}
    runs = [r for p, s in states.items() if (r := _run_state(s, p, sub)) is not None]
    named = {n for _, state in runs for n in _names(state)}  # every file the run's records name
    scores = {p: _own_score(p, sub, states[p]) for p in found}
    mine = [p for p in found if scores[p] is not False and (states[p] or not named or p.name in named)]
    if not mine:
        bare = " (those holding no callback state named by no record of the run)" if any(not states[p] for p in found) else ""
        raise FileNotFoundError(f"ckpt_path: 'best' reads the best checkpoint of the run's --checkpoint callback in "
                                f"{folder}, and the files there ({', '.join(p.name for p in found)}) are another "
                                f"checkpoint callback's (a ModelCheckpoint of your own){bare}: name a checkpoint file")
    return mine, {p: scores[p] for p in mine}, named


def _best_of_records(folder: Path, found: list[Path], sub: str) -> Path:
    """The best of ``found`` (no ``last.ckpt`` record) by the score each of the run's files (:func:`_the_runs`) records
    of itself; one alone that has no score, taken where the run's records name it (a ``--checkpoint`` of no monitor
    names its latest file its best, or where no record of the run names any file: a weights-only save, the one file
    there); refused by name where one records none or they rank by different rules (the files of different runs)."""
    found, scores, named = _the_runs(folder, found, sub)
    if len(found) == 1 and (scores[found[0]] is not None or found[0].name in named or not named):
        return found[0]
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
    that record, the best of the run's files among every ``*.ckpt`` but ``last*.ckpt`` (whatever
    ``--checkpoint.filename`` named them) by the score each records of itself. Both read ``--checkpoint``'s callback,
    not a ModelCheckpoint of the user's beside it (:func:`_run_state`), whose files are never candidates, whatever their
    names (:func:`_the_runs`). A single file of the run is taken as it is (a weights-only save records no state).
    Several, and one records no score, or they rank by different monitors or modes: a ValueError naming them. An
    earlier run's file kept aside as ``<name>-v<N>.ckpt`` is never the run's best: where it is all there is, a FileNotFoundError naming it."""
    folder = Path(folder)
    last = folder / "last.ckpt"
    best = _recorded_best(folder, last, sub) if last.is_file() else None  # (whatever --checkpoint.filename named it)
    if best is not None:
        return best
    # every *.ckpt but last*.ckpt, whatever --checkpoint.filename named them (a user's ModelCheckpoint may name its
    # files best-*: whose each file is, the callback states it holds say, not its name)
    every = sorted(p for p in folder.glob("*.ckpt") if not p.name.startswith("last"))
    found = [p for p in every if not _KEPT.search(p.stem)]
    kept = [p for p in every if p not in found]  # an earlier run's, kept aside (-v<N>)
    if kept and not found:
        raise FileNotFoundError(f"ckpt_path: 'best' {'resumes' if sub == 'fit' else 'reads'} the run's best checkpoint "
                                f"in {folder}, and the best files there ({', '.join(p.name for p in kept)}) are earlier "
                                f"runs', kept aside when a later run started (the last run kept none): name a "
                                f"checkpoint file")
    if not found:
        then = "run without --ckpt_path to start a new run" if sub == "fit" else "name a checkpoint file"
        raise FileNotFoundError(f"ckpt_path: 'best' {'resumes' if sub == 'fit' else 'reads'} the best checkpoint "
                                f"in {folder}, and there is none (no checkpoint file but last*.ckpt); {then}")
    return _best_of_records(folder, found, sub)
