"""What ``neuroview fit --ckpt_path`` (and a ``Trainer.fit(ckpt_path=...)`` of the module: :mod:`.resume_api`)
checks in a checkpoint's callback states before it resumes a run: a run that Lightning's ``EarlyStopping`` already
ended has nothing to resume, a stop rule other than the run's (another ``patience``, ``monitor`` or ``mode``) would not
be the one that rules the resumed run, and a budget that ends before the checkpoint has nothing to continue.

May import Lightning, and :mod:`.loop_guards` (its monitor rule); nothing else of neuroview.
"""

from __future__ import annotations

import ast

from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.utilities import rank_zero_warn

from .loop_guards import monitor_mode

__all__ = ["check_budget", "check_not_finished", "check_resume", "check_resumed_stops", "early_stops", "resume_state",
           "stopped"]

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


def _ended_here(saved: dict, state: dict, trainer) -> bool:
    """Whether this ``EarlyStopping`` state ended the run at the checkpoint's save: it signalled at the saved epoch
    (``stopped_epoch`` is set again at each signal) and ``min_epochs``/``min_steps`` let Lightning stop by then (they
    keep a run going past a signal, and EarlyStopping saves the signal all the same). The run's own
    ``min_epochs``/``min_steps`` where the checkpoint records them (``neuroview_stopping``; another ``min_epochs``
    on the resume made a finished run resumable), else the resumed ``trainer``'s. A save within the epoch (a
    validation at ``val_check_interval`` 0.5, a max_time cut, a save every n steps) ended it only where it records
    that the trainer was stopping and could (``should_stop``, ``_can_stop_early``); older checkpoints, without
    that record, are not taken as ended there."""
    epoch, steps = saved.get("epoch"), saved.get("global_step") or 0
    if not stopped(state) or state.get("stopped_epoch") != epoch:
        return False
    record = saved.get("neuroview_stopping")
    record = record if isinstance(record, dict) else None
    mid = saved.get("neuroview_mid_epoch") is not None
    if mid and record is None:
        return False
    if mid and record.get("can_stop") is not None:  # Lightning's own test at the save (its epoch loop stops by it)
        return bool(record.get("should_stop") and record["can_stop"])
    if record is not None:
        min_epochs, min_steps = record.get("min_epochs"), record.get("min_steps")
    else:
        min_epochs, min_steps = getattr(trainer, "min_epochs", None), getattr(trainer.fit_loop, "min_steps", None)
    epochs = epoch if mid else epoch + 1  # epochs done by then: the saved one only at its end
    ok = (not min_epochs or epochs >= min_epochs) and (not min_steps or steps >= min_steps)
    return ok and (not mid or bool(record.get("should_stop")))


def _new_run(ckpt: str, cli: bool) -> str:
    """How to start a new run from ``ckpt``'s weights, in the caller's words: the command line's or the Python API's."""
    return f"--model.init_weights {ckpt}" if cli else f"init_weights={ckpt!r}"


def _then(ckpt: str, cli: bool) -> str:
    """The ways on from a refused resume (:func:`_new_run`'s words)."""
    test = f"neuroview test --ckpt_path {ckpt}" if cli else f"trainer.test(module, datamodule, ckpt_path={ckpt!r})"
    return f"test it with {test}, or start a new run from its weights with {_new_run(ckpt, cli)}"


def check_not_finished(ckpt: str, saved: dict, trainer, cli: bool = True) -> None:
    """Refuse resuming a run that an ``EarlyStopping`` of its own ended (``trainer``: the resumed one): Lightning does
    not save ``should_stop``, so the "resume" trained another epoch and rewrote ``last.ckpt``, the finished run's
    final weights (what its test and the benchmarks score), before the restored callback stopped it again. Without
    that ``EarlyStopping`` (no callback of its state key) nothing stops it again: it resumes, with a warning.
    ``saved``: the checkpoint (its ``epoch``, ``global_step``, ``neuroview_mid_epoch``, ``neuroview_stopping`` and
    ``callbacks``). ``cli``: the advice in the command line's words, else the Python API's."""
    own = {c.state_key for c in trainer.callbacks if isinstance(c, EarlyStopping)}
    for key, state in early_stops(saved.get("callbacks")).items():
        if not _ended_here(saved, state, trainer):
            continue
        how = "on its plateau " if state.get("stopping_reason") in (None, _PLATEAU) else ""
        why = state.get("stopping_reason_message") or f"patience {state.get('patience')}"
        if key not in own:
            rank_zero_warn(f"ckpt_path: {ckpt} is a run that ended {how}at epoch {state.get('stopped_epoch')} "
                           f"({key}: {why}); this {'command' if cli else 'Trainer'} has no such EarlyStopping, so the "
                           f"resumed run continues past that stop (and rewrites its last.ckpt)")
            continue
        raise ValueError(f"ckpt_path: {ckpt} is a run that already ended {how}at epoch {state.get('stopped_epoch')} "
                         f"({key}: {why}): nothing to resume; {_then(ckpt, cli)}")


def _key_options(key: str) -> str:
    """``monitor ..., mode ...`` of a state key ``EarlyStopping{'monitor': 'm', 'mode': 'min'}``."""
    try:
        opts = ast.literal_eval(key[key.index("{"):])
    except (ValueError, SyntaxError):
        return key
    return ", ".join(f"{k} {v!r}" for k, v in opts.items()) if isinstance(opts, dict) else key


def _righted(key: str, cb: EarlyStopping) -> bool:
    """Whether the saved state ``key`` is ``cb``'s rule at the mode that is wrong for its monitor (Lightning's default
    ``mode='min'`` on ``val_acc``, which a fit now refuses), ``cb`` holding the right one."""
    try:
        opts = ast.literal_eval(key[key.index("{"):])
    except (ValueError, SyntaxError):
        return False
    return (key[:key.index("{")] == type(cb).__qualname__ and isinstance(opts, dict)
            and set(opts) == {"monitor", "mode"} and opts["monitor"] == cb.monitor
            and monitor_mode(cb.monitor, opts["mode"]) == cb.mode)


def check_resumed_stops(ckpt: str, saved_callbacks: dict | None, callbacks: list, cli: bool = True) -> None:
    """Refuse resuming with an ``EarlyStopping`` other than the checkpoint's: Lightning restores the checkpoint's
    ``patience`` over the one given (the run's ``config.yaml`` recorded 1000 while 6 ruled), and a callback of another
    ``monitor`` or ``mode`` restores nothing (a fresh count: another stop rule mid-run). ``min_delta``,
    ``stopping_threshold``, ``divergence_threshold``, ``check_finite`` and ``check_on_train_epoch_end`` are not in
    the saved state: they cannot be compared. A run whose mode was the wrong way round for its monitor (started
    before fit refused it) resumes with the right one, with a warning: its count starts afresh, as it should.
    ``callbacks``: the resumed trainer's; ``cli``: as :func:`check_not_finished`."""
    saved = early_stops(saved_callbacks)
    stops = [c for c in callbacks if isinstance(c, EarlyStopping)]
    who = "command" if cli else "Trainer"
    unmatched = [k for k in saved if k not in {c.state_key for c in stops}]
    for cb in stops:
        state = saved.get(cb.state_key)
        if state is not None and state.get("patience") != cb.patience:
            raise ValueError(f"ckpt_path: {ckpt} resumes a run whose EarlyStopping ({_key_options(cb.state_key)}) had "
                             f"patience {state.get('patience')}, and this {who} gives patience {cb.patience}; "
                             f"Lightning would restore the checkpoint's {state.get('patience')} over it: resume with "
                             f"patience {state.get('patience')}, or start a new run from its weights with "
                             f"{_new_run(ckpt, cli)}")
        wrong = next((k for k in unmatched if _righted(k, cb)), None) if state is None else None
        if wrong is not None:  # the run's mode was the wrong way round for its monitor: the right one goes on
            unmatched.remove(wrong)
            rank_zero_warn(f"ckpt_path: {ckpt} resumes a run whose EarlyStopping watched {_key_options(wrong)}, the "
                           f"wrong way round for {cb.monitor}; this {who}'s mode {cb.mode!r} replaces it, and its "
                           f"patience count starts afresh at the resumed epoch", category=UserWarning)
        elif state is None and unmatched:
            raise ValueError(f"ckpt_path: {ckpt} resumes a run whose EarlyStopping watched "
                             f"{_key_options(unmatched[0])}, and this {who}'s watches {_key_options(cb.state_key)}; "
                             f"its count would start afresh under another stop rule mid-run: resume with the run's "
                             f"monitor and mode, or start a new run from its weights with {_new_run(ckpt, cli)}")


def resume_state(saved: dict) -> dict:
    """What :func:`check_resume` reads of a checkpoint (not its weights, kept for the whole run otherwise)."""
    out = {k: saved.get(k) for k in ("epoch", "global_step", "neuroview_mid_epoch", "neuroview_stopping", "callbacks")}
    try:  # the epochs the run had begun: its epoch loop's count (a save after the loop ended records the next epoch)
        out["epochs_started"] = int(saved["loops"]["fit_loop"]["epoch_progress"]["current"]["started"])
    except (KeyError, TypeError, ValueError):
        out["epochs_started"] = None
    return out


def check_budget(ckpt: str, saved: dict, trainer, cli: bool = True) -> None:
    """Refuse a ``max_epochs`` that ends before the checkpoint's epoch (an epoch it ran, whole or in part, would be past
    the budget), or a ``max_steps`` below its ``global_step``: Lightning died in a bare traceback ("You restored a
    checkpoint with current_epoch=3, but you have set Trainer(max_epochs=1)"), or trained nothing and wrote the run
    down as shorter than it was. The run's own budget is fine: nothing left to train, its test goes ahead. A smoke test
    (``fast_dev_run``: Lightning's own max_epochs 1 / max_steps 1, nothing saved) is no budget of the run's. ``cli``:
    the budget and the advice in the command line's words, else the Python API's (``Trainer(max_epochs=...)``)."""
    if getattr(trainer, "fast_dev_run", False):
        return
    epoch, steps, started = saved.get("epoch"), saved.get("global_step"), saved.get("epochs_started")
    started = started if isinstance(started, int) else epoch + 1 if isinstance(epoch, int) else None
    max_epochs, max_steps = getattr(trainer, "max_epochs", None), getattr(trainer, "max_steps", -1)
    over = []
    if started is not None and max_epochs not in (None, -1) and max_epochs < started:
        said = f"--trainer.max_epochs {max_epochs}" if cli else f"Trainer(max_epochs={max_epochs})"
        over.append(f"{said}, and it has run {started} epochs (saved in its epoch {epoch})")
    if isinstance(steps, int) and max_steps not in (None, -1) and max_steps < steps:
        said = f"--trainer.max_steps {max_steps}" if cli else f"Trainer(max_steps={max_steps})"
        over.append(f"{said}, and it has run {steps} steps")
    if over:
        raise ValueError(f"ckpt_path: {ckpt} resumes a run up to {'; '.join(over)}: a resume continues that run, and "
                         f"this budget ended before its checkpoint; resume with its budget or a larger one, "
                         f"{_then(ckpt, cli)}")


def check_resume(ckpt: str, saved: dict, trainer, cli: bool = True) -> None:
    """The checks of a resume, once the resumed ``trainer`` is built (its callbacks, ``min_epochs``/``min_steps``, its
    budget): the run is not finished, its stop rule is the checkpoint's, and its budget does not end before the
    checkpoint (:func:`check_budget`). ``saved``: :func:`resume_state`; ``cli``: whether ``neuroview fit`` asks (its
    refusals name its options and commands), else a ``Trainer.fit(ckpt_path=...)`` (:mod:`.resume_api`)."""
    check_budget(ckpt, saved, trainer, cli)
    check_not_finished(ckpt, saved, trainer, cli)
    check_resumed_stops(ckpt, saved.get("callbacks"), trainer.callbacks, cli)
