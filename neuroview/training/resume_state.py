"""``ResumeState``, the hooks by which a module's checkpoint keeps the random states (``rng_states``) and the budget of
its run, so that a resumed run draws what the uninterrupted one would and keeps its schedule; a resume by the Python API
(``Trainer.fit(ckpt_path=...)``) is held to the checks ``neuroview fit --ckpt_path`` makes (:mod:`.resume_api`), and
the running statistics training left, where ``PreciseBatchNorm`` rewrote a file, are what the resumed epochs go on
from. May import Lightning, torch, ``neuroview.core``, ``neuroview.data.read_as``, ``.schedules``,
``.resume_api`` and ``.outputs``; nothing else of neuroview."""

from __future__ import annotations

import os
import random

import numpy as np

import pytorch_lightning as pl
import torch
from pytorch_lightning.loops.loop import _Loop
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_warn

from .outputs import this_calls_datamodule
from .resume_api import check_api_data, check_api_resume
from .schedules import epoch_record
from ..core.cnn import NeuroViewCNN
from ..core.unseen import checkpointing, checkpointing_message
from ..data.read_as import check_classes

__all__ = ["NORM_STATS", "ResumeState", "rng_states", "run_seed", "set_rng_states"]

#: where ``PreciseBatchNorm`` keeps the running statistics training left in a file whose statistics it recomputed
NORM_STATS = "neuroview_training_norm_stats"


def rng_states() -> dict:
    """The random states a run draws from (torch's CPU and, once initialized, CUDA generators, numpy's and Python's
    global ones), in values a ``weights_only`` load reads back: the training loader shuffles with torch's, and
    ``seed_everything`` resets them all when a run resumes."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    out = {"torch": torch.get_rng_state(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                     int(has_gauss), float(gauss)), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(states: dict) -> None:
    """Set the states :func:`rng_states` gave (CUDA's when this machine has as many devices)."""
    torch.set_rng_state(states["torch"].cpu())
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if (cuda := states.get("cuda")) is not None and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all([c.cpu() for c in cuda])


def run_seed(trainer: pl.Trainer | None) -> int | None:
    """A run's ``seed_everything``: the CLI's (its config, which Lightning's SaveConfigCallback holds: an int, or
    False: None), else Lightning's ``PL_GLOBAL_SEED`` (a script's ``seed_everything``; one inherited from a parent
    process is taken for the run's: the Python API's limit). Not the variable alone: ``fit --seed_everything false``
    started by a seeded notebook recorded the notebook's seed."""
    try:
        from pytorch_lightning.cli import SaveConfigCallback  # noqa: PLC0415 - it needs jsonargparse: only here
    except ImportError:  # no CLI without it either
        SaveConfigCallback = ()  # noqa: N806
    for cb in (c for c in getattr(trainer, "callbacks", []) if isinstance(c, SaveConfigCallback)):
        seed = getattr(cb.config, "get", lambda *_: "unread")("seed_everything", "unread")
        if seed != "unread":
            return seed if isinstance(seed, int) and not isinstance(seed, bool) else None
    seed = os.environ.get("PL_GLOBAL_SEED", "")
    return int(seed) if seed.lstrip("-").isdigit() else None


def _resume_at_next_epoch(trainer: pl.Trainer) -> None:
    """A run by steps (``max_steps`` not -1) resumed from a checkpoint of an epoch's end goes on at the next epoch, as
    Lightning resumes a run by epochs. Lightning keeps such a run's loops restarting: it re-entered the saved epoch with
    no batch left and ran its end hooks again (EarlyStopping then found no ``train_loss_epoch`` and raised, and the
    epoch's scheduler and plateau steps were skipped). Called in ``on_train_start``: after Lightning's ``FitLoop.reset``,
    before the first epoch starts. A save within the epoch (its batches not all run: a ``max_steps`` stop mid-epoch
    saves at the epoch's end hooks too) is left to Lightning, which resumes within that epoch."""
    loop = trainer.fit_loop
    epochs = loop.epoch_progress.current
    if (trainer.max_steps == -1 or not loop.restarting or not loop.epoch_loop.batch_progress.is_last_batch
            or not epochs.ready == epochs.started == epochs.processed  # Lightning's own test of a finished epoch
            or not hasattr(loop, "update_restart_stage")):  # a Lightning before its restart stages: left to it, as before
        return
    # FitLoop's setter keeps a run by steps restarting; its parent's sets the loop and its children (private: no
    # public way), then Lightning's own reading of a finished epoch: the stage of a run by epochs, its epoch completed
    _Loop.restarting.fset(loop, False)
    loop.update_restart_stage()
    if loop.resumed_on_epoch_end:
        loop.epoch_progress.increment_completed()


class ResumeState:
    """Hooks of a LightningModule (a mixin ahead of it; a module's own ``on_train_epoch_start`` calls super): each
    checkpoint keeps :func:`rng_states` and the run's ``max_epochs``/``max_steps``; ``fit(ckpt_path=...)`` keeps the
    checkpoint's schedulers and budget in ``self._resumed`` (``configure_optimizers`` compares them with the new run's)
    and sets its random states back at ``on_train_start``, after the sanity check, so the resumed epochs draw the batch
    order (and everything else) the uninterrupted run would."""

    _resumed: dict | None = None
    _redraw_epoch: int | None = None
    _run_seed: int | None | str = "unread"  # the run's seed_everything, read as it starts (run_seed) or resumes
    _seed_resumed = False
    _data_to_check: dict | None = None  # a Python resume's datamodule_hyper_parameters, checked at on_train_start
    _restore_pending = False  # a restore's state is on the module, for its on_train_start (cleared there, or at setup)

    def setup(self, stage: str) -> None:
        """Each fit starts with none of an earlier fit's resume: Lightning calls this before it restores a checkpoint,
        and a resume refused after ``on_load_checkpoint`` (the schedule check, the classes, the sanity check, a Ctrl-C)
        left its checkpoint's data options, schedules and random states on the module, so the next fit of the same
        object, with no ``ckpt_path``, was refused as that resume, or drew its random states without a word."""
        super().setup(stage)
        if stage != "fit":
            return
        self._redraw_epoch = None
        if self._restore_pending:  # restored by a fit that never started training: none of it is this fit's
            self._resumed, self._data_to_check, self._seed_resumed, self._restore_pending = None, None, False, False
        # not _resume_checked: the command line sets it before the fit (Lightning names the checkpoint it restores
        # only after this hook), and the restore's on_load_checkpoint clears it

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if not self._seed_resumed:  # a resume keeps its checkpoint's (on_load_checkpoint): its weights are that run's
            self._run_seed = run_seed(self.trainer)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["neuroview_rng"] = rng_states()
        # the run's seed_everything, not the process's at save time: a zoo entry made of the checkpoint says it
        checkpoint["neuroview_seed"] = run_seed(None) if self._run_seed == "unread" else self._run_seed
        if self._trainer is not None:
            # world_size: each process reads its share of the training split, so the processes set the steps of an epoch
            checkpoint["neuroview_budget"] = {"max_epochs": self.trainer.max_epochs, "max_steps": self.trainer.max_steps,
                                              "world_size": self.trainer.world_size}
            # the names of the classes its outputs index: other data is read against them (read_as.checkpoint_data). This
            # call's data module: a fit on loaders recorded the names of the one an earlier fit left on the trainer
            try:
                names = this_calls_datamodule(self.trainer).class_names
            except (AttributeError, RuntimeError, ValueError):
                names = None
            if names is not None:
                checkpoint["neuroview_classes"] = [str(n) for n in names]
            if self.trainer.state.fn == TrainerFn.FITTING:  # a save within an epoch cannot be resumed exactly
                batches = self.trainer.fit_loop.epoch_loop.batch_progress
                # processed, not completed: a save in on_train_batch_end (every_n_train_steps) comes before the count
                checkpoint["neuroview_mid_epoch"] = None if batches.is_last_batch else batches.current.processed
                # what set its epochs' steps: a resume that changes one is refused naming it (not max_epochs/max_steps)
                checkpoint["neuroview_epoch_steps"] = epoch_record(self.trainer)
                # whether this save ends the run (an EarlyStopping signal the min_epochs/min_steps let through): a
                # mid-epoch stop saves last.ckpt within its epoch, and a resume read it as unfinished (resume_checks)
                loop = self.trainer.fit_loop
                checkpoint["neuroview_stopping"] = {"should_stop": bool(self.trainer.should_stop),
                                                    "can_stop": getattr(loop, "_can_stop_early", None),
                                                    "min_epochs": loop.min_epochs, "min_steps": loop.min_steps}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self._trainer is None:  # load_from_checkpoint
            return
        dm = this_calls_datamodule(self.trainer)  # not an earlier fit's: a plain loader was refused by its names
        try:  # as on_save_checkpoint reads them: a data module of the user's may have none, or not be set up
            names = dm.class_names
        except (AttributeError, RuntimeError, ValueError):
            names = None
        if checkpoint.get("neuroview_classes") is not None and names is not None:  # the data module is set up by now:
            # its class i scored (test, validate), named (predict) or trained (a resume) as the model's class i
            check_classes(dm, [str(n) for n in checkpoint["neuroview_classes"]], "data")
        if self.trainer.state.fn == TrainerFn.FITTING:  # not test
            self._restore_pending = True  # what this sets is this fit's alone (setup clears it for the next)
            # the command line checked its resume before the trainer was built; Trainer.fit(ckpt_path=...) here
            if not getattr(self, "_resume_checked", False):
                check_api_resume(self, checkpoint)
                self._data_to_check = checkpoint.get("datamodule_hyper_parameters")  # at on_train_start
            self._resume_checked = False
            stats = checkpoint.get(NORM_STATS)  # PreciseBatchNorm recomputed these: the resumed epochs go on from
            if isinstance(stats, dict) and isinstance(checkpoint.get("state_dict"), dict):  # what training left
                checkpoint["state_dict"].update({k: v for k, v in stats.items() if k in checkpoint["state_dict"]})
            seed = checkpoint.get("neuroview_seed")  # the resumed run's (None: not recorded), not the resume's
            self._run_seed, self._seed_resumed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None, True
            self._resumed = {k: checkpoint.get(k) for k in ("lr_schedulers", "neuroview_budget", "neuroview_rng",
                                                            "neuroview_epoch_steps")}
            if checkpoint.get("neuroview_mid_epoch") is not None:
                rank_zero_warn(f"ckpt_path: saved within epoch {checkpoint.get('epoch')}, after {checkpoint['neuroview_mid_epoch']} of "
                               "its batches (a validation or a save mid-epoch: val_check_interval, every_n_train_steps, "
                               "max_steps): the loaders cannot replay the rest of that epoch, so from here on the resumed "
                               "run reads other batches than the uninterrupted one would (the same data, another order); "
                               "a checkpoint saved at an epoch's end (last.ckpt is rewritten at each) resumes it exactly")

    def on_train_start(self) -> None:
        saved, self._data_to_check = self._data_to_check, None
        check_api_data(self, saved)  # a Python resume's data options, before its first step
        _resume_at_next_epoch(self.trainer)  # first: the epoch to redraw below is the one it resumes at
        for net in (m for m in self.modules() if isinstance(m, NeuroViewCNN)):  # what the wrapper only warned of
            names = checkpointing(net.backbone)
            if names and any(p.requires_grad for p in net.backbone.parameters()):
                raise ValueError(checkpointing_message(names))
        # used up (a refusal above left it pending: the next fit's setup clears it)
        rng, self._resumed, self._seed_resumed = (self._resumed or {}).get("neuroview_rng"), None, False
        self._restore_pending = False
        if rng is not None:
            set_rng_states(rng)
            self._redraw_epoch = self.trainer.current_epoch

    def on_train_epoch_start(self) -> None:
        if self._redraw_epoch is not None and self._redraw_epoch == self.trainer.current_epoch:
            # The uninterrupted run makes each epoch's loader iterator (drawing its order) after this hook; a resumed
            # run's first epoch takes the one Lightning's FitLoop.setup_data made before the states were set back, so
            # make it again here. `_data_fetcher` is private: no public hook makes the iterator of a resumed epoch.
            fetcher = getattr(self.trainer.fit_loop, "_data_fetcher", None)
            if fetcher is not None:
                iter(fetcher)
        self._redraw_epoch = None
