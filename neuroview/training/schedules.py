"""Learning-rate schedules of :class:`~neuroview.training.module.NeuroViewModule`, built from its options.

Holds :func:`warmup_cosine` and :func:`make_scheduler` (what ``configure_optimizers`` returns
besides the optimizer), the run's optimizer steps (:func:`run_steps`, under a ``GradientAccumulationScheduler`` too)
and what sets those of an epoch (:func:`epoch_record`, which a checkpoint keeps for a resume), and
:class:`PlateauAtEpochEnd`, which steps the plateau schedules before an epoch's checkpoint. May import torch and
Lightning, :mod:`.loop_guards` (its ``check_validation``, which plateau reads) and :mod:`.outputs` (the data module of
the current call); nothing else of neuroview.
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch
from pytorch_lightning.callbacks import GradientAccumulationScheduler

from .loop_guards import check_validation
from .outputs import this_calls_datamodule

__all__ = ["warmup_cosine", "make_scheduler", "check_options", "check_plateau_args", "drop_unused_options",
           "steps_per_epoch", "run_steps", "warmup_steps", "epoch_record", "schedule_steps", "PlateauAtEpochEnd",
           "SCHEDULE_ONLY"]

_PLATEAUS = ("plateau", "train_plateau")
# the options only some schedulers read: option -> (the schedulers that read it, the module's default, what it is); an
# option at its default is not used (NeuroViewModule's defaults: a test compares them)
SCHEDULE_ONLY = {"warmup_epochs": (("cosine",), 0.0, "only 'cosine' warms up"),
                 "min_lr_factor": (_PLATEAUS, 0.0, "the floor of the plateau schedules"),
                 "plateau_patience": (_PLATEAUS, 5, "the patience of the plateau schedules"),
                 "plateau_factor": (_PLATEAUS, 0.5, "the cut of the plateau schedules")}


def warmup_cosine(opt: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LRScheduler:
    """``warmup`` steps of linear warm-up to the peak (``lr * (s + 1) / (warmup + 1)`` at step ``s``),
    then a cosine from the peak to 0 over the remaining ``total - warmup`` steps; stepped once per
    optimizer step. torch's own LinearLR and CosineAnnealingLR in a SequentialLR.
    """
    lr = torch.optim.lr_scheduler
    cosine = lr.CosineAnnealingLR(opt, T_max=max(total - warmup, 1), eta_min=0.0)
    if warmup <= 0:
        return cosine
    ramp = lr.LinearLR(opt, start_factor=1 / (warmup + 1), end_factor=warmup / (warmup + 1), total_iters=max(warmup - 1, 1))
    return lr.SequentialLR(opt, [ramp, cosine], milestones=[warmup])


def make_scheduler(opt: torch.optim.Optimizer, hp, trainer, resumed: dict | None = None) -> dict | None:
    """The ``lr_scheduler`` entry of ``configure_optimizers`` for the module's hyper-parameters ``hp``
    (``None`` for ``scheduler="none"``).

    - ``"plateau"``: each group's rate times ``plateau_factor`` once ``val_acc`` has not risen for more
      than ``plateau_patience`` epochs in a row (torch's ``ReduceLROnPlateau``: the cut comes at the
      ``plateau_patience + 1``-th, and a new best must beat the last by 0.01%, relative; Keras'
      rule cuts at the ``plateau_patience``-th) (a run without a validation split is refused: nothing to read); with
      ``check_val_every_n_epoch`` n, read after each validation (patience then counts validations);
    - ``"train_plateau"``: the same on the epoch's mean training loss (``train_loss_epoch``: over every
      process's samples under DDP, so that every rank cuts its rates at the same epoch), the
      rule of the published LITE and InceptionTime (factor 0.5, patience 50 epochs, down to a
      tenth of the peak): a budget read from the data, as long as the loss keeps falling. Pair it
      with a stop on the same plateau (Lightning's ``EarlyStopping`` on ``train_loss_epoch``, as
      the ``ucr_*`` recipes do) and a maximum of epochs;
    - ``"cosine"`` (per step, after ``warmup_epochs``, an epoch being the optimizer steps of one
      pass over the training loader) and ``"onecycle"`` over the run's steps (:func:`run_steps`: epoch by epoch
      under a ``GradientAccumulationScheduler``).

    ``resumed``: the checkpoint a run resumes (its ``lr_schedulers``, and the ``max_epochs`` and
    ``max_steps`` it was started with, and its processes, ``world_size``, under ``neuroview_budget``, and what set the
    steps of its epochs under ``neuroview_epoch_steps``); a cosine or onecycle schedule over another number of steps
    (another ``max_epochs``/``max_steps``/processes/accumulation/batches) is refused, naming what changed, since
    Lightning restores the checkpoint's schedule as it was. Options the schedule would ignore are refused first
    (:func:`check_options`). A ``fast_dev_run`` (a smoke test: Lightning's own ``max_steps`` n, nothing saved) is held
    to neither the warm-up's length nor the resumed schedule's steps.
    """
    check_options(hp, trainer)
    if hp.scheduler == "none":
        return None
    if hp.scheduler in ("plateau", "train_plateau"):
        train = hp.scheduler == "train_plateau"
        if not train:
            check_validation(trainer)
        floor = [hp.get("min_lr_factor", 0.0) * g["lr"] for g in opt.param_groups]
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min" if train else "max", factor=hp.get("plateau_factor", 0.5),
            patience=hp.get("plateau_patience", 5), min_lr=floor)
        # val_acc exists after the epochs that validate (check_val_every_n_epoch): step after those only, so
        # plateau_patience counts validations; Lightning raised after the first epoch without one
        every = 1 if train or trainer is None else int(getattr(trainer, "check_val_every_n_epoch", None) or 1)
        return {"scheduler": sched, "monitor": "train_loss_epoch" if train else "val_acc", "interval": "epoch",
                "frequency": every}
    steps = run_steps(trainer)
    if not math.isfinite(steps):  # max_epochs -1 with max_time only: int(inf) was a bare OverflowError
        raise ValueError(f"scheduler: {hp.scheduler!r} runs over the run's steps, and this run has no bound on them "
                         f"(max_epochs={trainer.max_epochs}, max_steps={trainer.max_steps}, max_time alone ends it at no "
                         "known step); give --trainer.max_epochs or --trainer.max_steps, or use scheduler "
                         "'train_plateau' or 'none'")
    total = max(int(steps), 1)
    # fast_dev_run's max_steps/max_epochs/limit_train_batches (its own, not the user's) are not the run's budget, and it
    # saves nothing: its warm-up is not weighed against them, nor is a resumed checkpoint's schedule (restored as it was)
    smoke = bool(getattr(trainer, "fast_dev_run", False))
    if hp.scheduler == "onecycle":
        # the rate only: torch's default also cycled momentum (SGD's, Adam's beta1) 0.95 -> 0.85, over the one asked for
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=total,
                                                    cycle_momentum=False)
    else:
        warm = 0 if hp.warmup_epochs == 0 else warmup_steps(trainer, hp.warmup_epochs)
        if warm and warm >= total - 1 and not smoke:
            expected = (f"fewer than {total - 1} steps of warm-up" if total > 2 else
                        f"no warm-up (warmup_epochs 0) in a run of {total} step{'s' if total > 1 else ''}")
            warnings.warn(f"warmup_epochs: {hp.warmup_epochs} epochs of warm-up ({warm} optimizer steps) last the whole "
                          f"run ({total} steps): the rate climbs until the last step and never decays; expected "
                          f"{expected}: use fewer warmup_epochs or a longer run", UserWarning, stacklevel=2)
        sched = warmup_cosine(opt, min(warm, total - 1), total)
    if resumed and resumed.get("lr_schedulers") and not smoke:
        _check_resumed_total(hp.scheduler, resumed, total, trainer)
    return {"scheduler": sched, "interval": "step"}


def check_options(hp, trainer) -> None:
    """Refuse, when ``fit`` builds its optimizer (before the first step), a run that trains nothing
    (``max_epochs``, ``max_steps`` or ``limit_train_batches`` 0: it ended at once, and its test scored the
    untrained network) and options the chosen schedule ignores: ``warmup_epochs`` (only ``"cosine"`` warms up)
    and ``min_lr_factor``, ``plateau_patience`` and ``plateau_factor`` (the plateau schedules'; the last two compared
    with their defaults). Warn of ``momentum`` with Adam or AdamW, which
    have none. The command line drops a recipe's value of these when the scheduler it names does not use it."""
    if trainer is not None:
        for name, v, expected in (("max_epochs", trainer.max_epochs, "an int >= 1 (or -1: no limit)"),
                                  ("max_steps", trainer.max_steps, "an int >= 1 (or -1: no limit)"),
                                  ("limit_train_batches", trainer.limit_train_batches, "> 0 (batches, or a fraction)")):
            if v == 0:
                raise ValueError(f"--trainer.{name}: expected {expected} for fit, got {v!r}: the run would train "
                                 f"nothing and its test would score the untrained network")
    sched = hp.scheduler
    if hp.get("warmup_epochs", 0.0) and sched != "cosine":
        raise ValueError(f"warmup_epochs: only scheduler 'cosine' warms up; expected 0 with scheduler {sched!r}, got "
                         f"{hp.warmup_epochs}: drop warmup_epochs, or use scheduler "
                         f"'cosine'")
    if hp.get("min_lr_factor", 0.0) and sched not in _PLATEAUS:
        raise ValueError(f"min_lr_factor: the floor of the plateau schedules ('plateau', 'train_plateau'); expected 0 "
                         f"with scheduler {sched!r}, got {hp.min_lr_factor}: drop "
                         f"min_lr_factor, or use a plateau schedule")
    for key in ("plateau_patience", "plateau_factor"):  # silently unused, and config.yaml recorded them as applied
        _, default, what = SCHEDULE_ONLY[key]
        if sched not in _PLATEAUS and hp.get(key, default) != default:
            raise ValueError(f"{key}: {what} ('plateau', 'train_plateau'); expected its default {default} with "
                             f"scheduler {sched!r}, got {hp[key]}: drop {key}, or use a plateau schedule")
    if hp.get("optimizer") in ("adam", "adamw") and hp.get("momentum", 0.9) != 0.9:
        warnings.warn(f"momentum: {hp.momentum} is ignored with optimizer {hp.optimizer!r}, which has no momentum option "
                      f"(its betas stay (0.9, 0.999)); it is SGD's (optimizer 'sgd')", UserWarning, stacklevel=2)


def drop_unused_options(model, named: set[str] | None, by: str = "--model.scheduler") -> None:
    """A config's schedule option (:data:`SCHEDULE_ONLY`: a recipe's 1 epoch of warm-up before a cosine, its
    ``min_lr_factor`` 0.1 and ``plateau_patience`` 50 under train_plateau) that the scheduler named on the command line
    (or by a later config: ``by``, :func:`.cli_order.scheduler_named`) does not read is set to its default, with a
    warning: ``--model.scheduler none`` on such a recipe runs. One the command line names too (``named``: the model
    options it names; None: all), or that the same config sets beside its scheduler, stays, and ``fit`` refuses it
    (:func:`check_options`)."""
    if named is None or "scheduler" not in named or model is None:
        return
    for key, (readers, default, what) in SCHEDULE_ONLY.items():
        value = model.get(key)
        if key not in named and value is not None and value != default and model.get("scheduler") not in readers:
            warnings.warn(f"{key}: the config's {value} is not used by {by} {model.scheduler} ({what}): "
                          f"set to {default:g}", UserWarning, stacklevel=2)
            model[key] = default


def check_plateau_args(plateau_factor: float, min_lr_factor: float) -> None:
    """The plateau schedules' ``plateau_factor`` in (0, 1) and ``min_lr_factor`` in [0, 1], when the module is built: a
    floor above a rate's peak (``ReduceLROnPlateau`` keeps ``max(lr * factor, floor)``) never let it be cut, and
    train_plateau ran as a constant rate without a word."""
    # a string or None (a config's "0.5", null) named as min_lr_factor is, not a bare TypeError of the comparison
    if isinstance(plateau_factor, bool) or not (isinstance(plateau_factor, numbers.Real) and 0.0 < plateau_factor < 1.0):
        raise ValueError(f"plateau_factor: expected a number in (0, 1), got {plateau_factor!r}")
    if isinstance(min_lr_factor, bool) or not (isinstance(min_lr_factor, numbers.Real) and 0.0 <= min_lr_factor <= 1.0):
        raise ValueError(f"min_lr_factor: expected a number in [0, 1] (each rate's floor as a fraction of its peak), "
                         f"got {min_lr_factor!r}")


def accumulation_scheduler(trainer) -> GradientAccumulationScheduler | None:
    """The trainer's ``GradientAccumulationScheduler``, which sets ``accumulate_grad_batches`` at each epoch's start."""
    return next((c for c in getattr(trainer, "callbacks", None) or [] if isinstance(c, GradientAccumulationScheduler)),
                None)


def run_steps(trainer) -> float:
    """The run's optimizer steps: Lightning's ``estimated_stepping_batches``, which counts every epoch at the
    ``accumulate_grad_batches`` the trainer holds when the optimizer is built. A ``GradientAccumulationScheduler``
    changes it at each epoch's start, so with one the epochs' steps are added up at its factors (``{0: 1, 1: 4}``: a
    cosine built for 60 steps stopped at 85% of its peak after the 30 the run took)."""
    steps = trainer.estimated_stepping_batches
    acc = accumulation_scheduler(trainer)
    if acc is None or trainer.max_epochs == -1 or not math.isfinite(steps):
        return steps
    batches = trainer.num_training_batches
    if not math.isfinite(batches):  # an iterable dataset: Lightning's max_steps
        return steps
    # between two of the scheduler's epochs the factor holds: one product a stretch (epoch by epoch, 10^7 epochs took
    # 4 s), and none once max_steps is reached
    epochs, cap = max(trainer.max_epochs, 1), trainer.max_steps
    starts = sorted({0, *(e for e in acc.scheduling if 0 < e < epochs)})
    total = 0
    for start, end in zip(starts, [*starts[1:], epochs]):
        total += math.ceil(batches / acc.get_accumulate_grad_batches(start)) * (end - start)
        if cap != -1 and total >= cap:
            return cap
    return total


def warmup_steps(trainer, epochs: float) -> int:
    """``epochs`` of warm-up in optimizer steps. Any warm-up asked is a step at least (0.19 epochs of 5 steps was
    truncated to none); the 1e-9: 2.0000000001 steps of float error stay 2. Under a ``GradientAccumulationScheduler``
    each epoch counts its own steps (1.5 epochs of 7 then 2 steps: 8)."""
    if accumulation_scheduler(trainer) is None:
        return math.ceil(epochs * steps_per_epoch(trainer) - 1e-9)
    whole = int(epochs)
    return (sum(steps_per_epoch(trainer, e) for e in range(whole))
            + math.ceil((epochs - whole) * steps_per_epoch(trainer, whole) - 1e-9))


def steps_per_epoch(trainer, epoch: int = 0) -> int:
    """Optimizer steps in one epoch: the training batches of an epoch (``num_training_batches``, after
    ``limit_train_batches``) over ``accumulate_grad_batches`` (a ``GradientAccumulationScheduler``'s factor of
    ``epoch``), a partial accumulation at the end of an epoch being a step. Not the run's steps over ``max_epochs``:
    a run that ``max_steps`` ends early would count a fraction of an epoch as one."""
    if trainer.train_dataloader is not None:  # set up by estimated_stepping_batches (max_epochs given)
        batches = trainer.num_training_batches
    else:  # max_epochs -1: not set up yet, and setting it up here would draw its order before the sanity check
        dm = this_calls_datamodule(trainer)  # a fit on loaders: theirs, not those of a data module an earlier fit left
        loader = dm.train_dataloader() if dm is not None else trainer.fit_loop._data_source.dataloader()
        try:
            batches, limit = len(loader), trainer.limit_train_batches
        except TypeError:
            batches, limit = math.inf, 1.0
        batches = min(batches, limit) if isinstance(limit, int) else batches if not math.isfinite(batches) \
            else int(batches * limit)  # Lightning's reading of limit_train_batches
    if not math.isfinite(batches):
        raise ValueError("warmup_epochs: counts epochs of the training loader, which has no length (an iterable "
                         "dataset); use warmup_epochs 0, or a loader with a length")
    acc = accumulation_scheduler(trainer)
    return math.ceil(batches / (trainer.accumulate_grad_batches if acc is None else acc.get_accumulate_grad_batches(epoch)))


def schedule_steps(state: dict) -> int | None:
    """The optimizer steps a cosine (:func:`warmup_cosine`) or onecycle schedule runs over, read from its
    ``state_dict`` (a checkpoint's), or None for another kind."""
    if "total_steps" in state:  # OneCycleLR
        return int(state["total_steps"])
    if "T_max" in state:  # CosineAnnealingLR
        return int(state["T_max"])
    if state.get("_schedulers") and state.get("_milestones"):  # SequentialLR: warm-up, then the cosine
        rest = schedule_steps(state["_schedulers"][-1])
        return None if rest is None else int(state["_milestones"][-1]) + rest
    return None


def _check_resumed_total(kind: str, resumed: dict, total: int, trainer) -> None:
    was = schedule_steps(resumed["lr_schedulers"][0])
    if was is None or was == total:
        return
    budget = resumed.get("neuroview_budget") or {}
    before = (f" (it was started with max_epochs {budget['max_epochs']}, max_steps {budget['max_steps']})"
              if budget else "")
    saved, now = budget.get("world_size"), getattr(trainer, "world_size", None)  # older checkpoints: no record
    if saved is not None and now is not None and saved != now:  # the user's budget may be the run's own: name the cause
        raise ValueError(
            f"--trainer.devices/--trainer.num_nodes: the checkpoint was saved by a run of {saved} process"
            f"{'es' if saved != 1 else ''} (devices x num_nodes), and this run has {now}; each reads its share of the "
            f"training split, so the checkpoint's {kind} schedule over {was} optimizer steps{before} would take {total} "
            f"here (max_epochs {trainer.max_epochs}, max_steps {trainer.max_steps}); a resume restores the schedule as "
            f"it was: resume on {saved} process{'es' if saved != 1 else ''}, or start a new run from its weights with "
            f"--model.init_weights {trainer.ckpt_path}")
    changed = _changed_epoch_options(resumed.get("neuroview_epoch_steps"), budget, trainer)
    if changed:  # the budget may be the run's own (it was blamed, shown equal to the run's): name what changed
        raise ValueError(
            f"{', '.join(_flag(*c) for c in changed)}: changed since the checkpoint was saved ("
            f"{'; '.join(f'{k} {a!r} then, {b!r} now' for k, a, b in changed)}); the checkpoint's {kind} schedule runs "
            f"over {was} optimizer steps{before}, and this run's would take {total}; a resume restores the schedule as "
            f"it was, which would not fit (a cosine reaching 0 and climbing back, onecycle stepping past its end): "
            f"{_resume_as_was(changed)}, or start a new run from its weights with --model.init_weights "
            f"{trainer.ckpt_path}")
    raise ValueError(
        f"--trainer.max_epochs/--trainer.max_steps: the checkpoint's {kind} schedule runs over {was} optimizer steps"
        f"{before}, and this run's budget (max_epochs {trainer.max_epochs}, max_steps {trainer.max_steps}) gives "
        f"{total}; a resume restores the schedule as it was, which would not fit the new budget (a cosine "
        f"reaching 0 and climbing back, onecycle stepping past its end): resume with the run's own budget, or start "
        f"a new run from its weights with --model.init_weights {trainer.ckpt_path}")


def epoch_record(trainer) -> dict:
    """What sets the optimizer steps of an epoch, as a checkpoint keeps it (``neuroview_epoch_steps``) for a resume to
    name what changed: ``accumulate_grad_batches`` (a ``GradientAccumulationScheduler``'s ``{epoch: factor}``),
    ``limit_train_batches``, the training loader's ``batch_size`` and the batches of an epoch (``train_batches``);
    None where not known."""
    acc = accumulation_scheduler(trainer)
    batches, size = getattr(trainer, "num_training_batches", None), getattr(getattr(trainer, "train_dataloader", None),
                                                                           "batch_size", None)
    return {"accumulate_grad_batches": dict(acc.scheduling) if acc is not None else
            getattr(trainer, "accumulate_grad_batches", None),
            "limit_train_batches": getattr(trainer, "limit_train_batches", None),
            "batch_size": size if isinstance(size, int) else None,
            "train_batches": int(batches) if isinstance(batches, (int, float)) and math.isfinite(batches) else None}


def _changed_epoch_options(record, budget: dict, trainer) -> list[tuple[str, object, object]]:
    """``(option, then, now)`` of each option that changed the steps of an epoch since ``record`` (the checkpoint's
    :func:`epoch_record`), and of ``max_epochs``/``max_steps`` beside them; none when only those two changed, or for a
    checkpoint without the record (their own message, as before)."""
    if not isinstance(record, dict):
        return []
    now = epoch_record(trainer)

    def changed(key: str) -> bool:
        a, b = record.get(key), now[key]
        return a is not None and b is not None and (a != b or type(a) is not type(b))  # limit 1.0 (all) is not 1 (one)

    out = [("accumulate_grad_batches", record["accumulate_grad_batches"], now["accumulate_grad_batches"])] \
        if changed("accumulate_grad_batches") else []
    a, b = record.get("train_batches"), now["train_batches"]
    if a is None or b is None or a != b:  # the batches of an epoch changed (or are not known): what changed them
        named = [(k, record[k], now[k]) for k in ("limit_train_batches", "batch_size") if changed(k)]
        # none of the options (or a limit 5 of 5 batches, a batch size giving as many): the training split itself
        out += named or ([("train_batches", a, b)] if a is not None and b is not None else [])
    budget_changed = [(k, budget[k], getattr(trainer, k, None)) for k in ("max_epochs", "max_steps")
                      if k in budget and budget[k] != getattr(trainer, k, None)]
    return budget_changed + out if out else []


def _resume_as_was(changed: list[tuple[str, object, object]]) -> str:
    """The advice for the options :func:`_changed_epoch_options` names: the batches of an epoch are no option."""
    own = [k for k, _, _ in changed if k != "train_batches"]
    split = len(own) < len(changed)
    return ("resume" + (f" with the run's own {', '.join(own)}" if own else "")
            + (" and" if own and split else "") + (" on the same training split" if split else ""))


def _flag(key: str, then, now) -> str:
    if key == "accumulate_grad_batches" and (isinstance(then, dict) or isinstance(now, dict)):
        return "--trainer.accumulate_grad_batches/GradientAccumulationScheduler (trainer.callbacks)"
    return {"batch_size": "the training loader's batch_size (--data.batch_size)",
            "train_batches": "the training split (its batches an epoch)"}.get(key, f"--trainer.{key}")


class PlateauAtEpochEnd:
    """A LightningModule mixin: the plateau schedules (``plateau``, ``train_plateau``) step in the module's own
    ``on_train_epoch_end``, which Lightning runs before the checkpoint callbacks, not after them (Lightning steps
    them last, and says a restart cannot replay that step: the metric is not saved). Every epoch-end checkpoint held
    the schedule as it was before its epoch's check, so a resumed run cut its rate an epoch late and left the
    uninterrupted one (weights 0.036 apart after 11 epochs). The same rule as Lightning's: every ``frequency``-th
    epoch that ran all its batches, on the monitored value; a missing value is left to Lightning, which names it."""

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        trainer = self.trainer
        loop = trainer.fit_loop
        if not self.automatic_optimization or loop.restarting or not loop.epoch_loop._num_ready_batches_reached():
            return
        for config in trainer.lr_scheduler_configs:
            if (config.reduce_on_plateau and config.interval == "epoch"
                    and (trainer.current_epoch + 1) % config.frequency == 0):
                value = trainer.callback_metrics.get(config.monitor)
                if value is not None:
                    config.scheduler.step(float(value))
                    self.__dict__.setdefault("_plateau_stepped", {})[id(config.scheduler)] = trainer.current_epoch

    def lr_scheduler_step(self, scheduler, metric) -> None:
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if self.__dict__.get("_plateau_stepped", {}).get(id(scheduler)) == self.trainer.current_epoch:
                return  # stepped by on_train_epoch_end, before the epoch's checkpoint
        super().lr_scheduler_step(scheduler, metric)
