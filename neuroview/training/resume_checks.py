"""What ``neuroview fit --ckpt_path`` checks in a checkpoint's callback states before it resumes a run: a run that
Lightning's ``EarlyStopping`` already ended has nothing to resume, and a stop rule other than the run's (another
``patience``, ``monitor`` or ``mode``) would not be the one that rules the resumed run.

May import Lightning; nothing of neuroview.
"""

from __future__ import annotations

import ast

from pytorch_lightning.callbacks import EarlyStopping

__all__ = ["check_not_finished", "check_resumed_stops", "early_stops", "stopped"]

# EarlyStoppingReason.PATIENCE_EXHAUSTED: the monitored value stopped improving (its plateau)
_PLATEAU = 3


def early_stops(callbacks: dict | None) -> dict[str, dict]:
    """The ``EarlyStopping`` states of a checkpoint's ``callbacks`` (by state key: ``EarlyStopping{'monitor': ...,
    'mode': ...}``, or a subclass's name in place of ``EarlyStopping``)."""
    return {k: v for k, v in (callbacks or {}).items()
            if isinstance(v, dict) and "stopped_epoch" in v and "wait_count" in v and "patience" in v}


def stopped(state: dict) -> bool:
    """Whether the ``EarlyStopping`` of this saved state stopped its run."""
    # stopping_reason (Lightning >= 2.6) also says so for a stop at epoch 0; stopped_epoch alone in older files
    return bool(state.get("stopping_reason") or state.get("stopped_epoch"))


def check_not_finished(ckpt: str, saved: dict) -> None:
    """Refuse resuming a run that an ``EarlyStopping`` of its own ended: Lightning does not save ``should_stop``, so
    the "resume" trained another epoch and rewrote ``last.ckpt``, the finished run's final weights (what its test and
    the benchmarks score), before the restored callback stopped it again."""
    for key, state in early_stops(saved.get("callbacks")).items():
        if not stopped(state):
            continue
        how = "on its plateau " if state.get("stopping_reason") in (None, _PLATEAU) else ""
        why = state.get("stopping_reason_message") or f"patience {state.get('patience')}"
        raise ValueError(f"ckpt_path: {ckpt} is a run that already ended {how}at epoch {state.get('stopped_epoch')} "
                         f"({key}: {why}): nothing to resume; test it with neuroview test --ckpt_path {ckpt}, or start "
                         f"a new run from its weights with --model.init_weights {ckpt}")


def _key_options(key: str) -> str:
    """``monitor ..., mode ...`` of a state key ``EarlyStopping{'monitor': 'm', 'mode': 'min'}``."""
    try:
        opts = ast.literal_eval(key[key.index("{"):])
    except (ValueError, SyntaxError):
        return key
    return ", ".join(f"{k} {v!r}" for k, v in opts.items()) if isinstance(opts, dict) else key


def check_resumed_stops(ckpt: str, saved_callbacks: dict | None, callbacks: list) -> None:
    """Refuse resuming with an ``EarlyStopping`` other than the checkpoint's: Lightning restores the checkpoint's
    ``patience`` over the one given (the run's ``config.yaml`` recorded 1000 while 6 ruled), and a callback of another
    ``monitor`` or ``mode`` restores nothing (a fresh count: another stop rule mid-run). ``min_delta`` is not in
    the saved state: it cannot be compared. ``callbacks``: the resumed trainer's."""
    saved = early_stops(saved_callbacks)
    stops = [c for c in callbacks if isinstance(c, EarlyStopping)]
    unmatched = [k for k in saved if k not in {c.state_key for c in stops}]
    for cb in stops:
        state = saved.get(cb.state_key)
        if state is not None and state.get("patience") != cb.patience:
            raise ValueError(f"ckpt_path: {ckpt} resumes a run whose EarlyStopping ({_key_options(cb.state_key)}) had "
                             f"patience {state.get('patience')}, and this command gives patience {cb.patience}; "
                             f"Lightning would restore the checkpoint's {state.get('patience')} over it: resume with "
                             f"patience {state.get('patience')}, or start a new run from its weights with "
                             f"--model.init_weights {ckpt}")
        if state is None and unmatched:
            raise ValueError(f"ckpt_path: {ckpt} resumes a run whose EarlyStopping watched "
                             f"{_key_options(unmatched[0])}, and this command's watches {_key_options(cb.state_key)}; "
                             f"its count would start afresh under another stop rule mid-run: resume with the run's "
                             f"monitor and mode, or start a new run from its weights with --model.init_weights {ckpt}")
