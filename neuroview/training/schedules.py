"""Learning-rate schedules of :class:`~neuroview.training.module.NeuroViewModule`, built from its options.

Holds :func:`warmup_cosine` and :func:`make_scheduler` (what ``configure_optimizers`` returns
besides the optimizer). May import torch; nothing of neuroview.
"""

from __future__ import annotations

import torch

__all__ = ["warmup_cosine", "make_scheduler"]


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


def make_scheduler(opt: torch.optim.Optimizer, hp, trainer) -> dict | None:
    """The ``lr_scheduler`` entry of ``configure_optimizers`` for the module's hyper-parameters ``hp``
    (``None`` for ``scheduler="none"``).

    - ``"plateau"``: each group's rate times ``plateau_factor`` once ``val_acc`` has not risen for
      ``plateau_patience`` epochs;
    - ``"train_plateau"``: the same on the epoch's mean training loss (``train_loss_epoch``), the
      rule of the published LITE and InceptionTime (factor 0.5, patience 50 epochs, down to a
      tenth of the peak): a budget read from the data, as long as the loss keeps falling. Pair it
      with a stop on the same plateau (Lightning's ``EarlyStopping`` on ``train_loss_epoch``, as
      the ``ucr_*`` recipes do) and a maximum of epochs;
    - ``"cosine"`` (per step, after ``warmup_epochs``) and ``"onecycle"`` over the run's steps.
    """
    if hp.scheduler == "none":
        return None
    if hp.scheduler in ("plateau", "train_plateau"):
        train = hp.scheduler == "train_plateau"
        floor = [hp.get("min_lr_factor", 0.0) * g["lr"] for g in opt.param_groups]
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min" if train else "max", factor=hp.get("plateau_factor", 0.5),
            patience=hp.get("plateau_patience", 5), min_lr=floor)
        return {"scheduler": sched, "monitor": "train_loss_epoch" if train else "val_acc", "interval": "epoch"}
    total = max(int(trainer.estimated_stepping_batches), 1)
    if hp.scheduler == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=total)
        return {"scheduler": sched, "interval": "step"}
    # steps per epoch: from max_epochs, or (a run bounded by max_steps) from the loader itself
    epochs = trainer.max_epochs or -1
    if hp.warmup_epochs == 0:
        per_epoch = 0.0
    elif epochs > 0:
        per_epoch = total / epochs
    else:  # bounded by max_steps: batches per epoch from the training loader
        dm = getattr(trainer, "datamodule", None)
        loader = dm.train_dataloader() if dm is not None else trainer.fit_loop._data_source.dataloader()
        per_epoch = len(loader) / trainer.accumulate_grad_batches
    sched = warmup_cosine(opt, min(int(hp.warmup_epochs * per_epoch), total - 1), total)
    return {"scheduler": sched, "interval": "step"}
