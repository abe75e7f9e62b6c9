"""Lightning callbacks of the ``neuroview`` runs: ``Checkpoint``, ``PredictionWriter`` and ``PreciseBatchNorm``;
``ResumeState``, the hooks by which a module's checkpoint keeps the random states (``rng_states``) and the budget of
its run, so that a resumed run draws what the uninterrupted one would and keeps its schedule. ``Checkpoint`` keeps
``last.ckpt`` at the latest epoch and never leaves half of one; ``PredictionWriter`` writes ``predictions.csv``
(``write_confusion``: ``confusion_matrix.csv``; both in ``outputs``); ``PreciseBatchNorm`` recomputes BatchNorm's
running statistics for the final weights. May import Lightning, torch, ``neuroview._io``, ``neuroview._batch``,
``neuroview.core.head`` (the head's normalization) and ``.schedules`` (what a checkpoint records of the steps of an
epoch); nothing else of neuroview."""

from __future__ import annotations

import itertools
import os
import random

import numpy as np

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loops.loop import _Loop
from pytorch_lightning.strategies import DDPStrategy, DeepSpeedStrategy, SingleDeviceStrategy
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from .._batch import check_lengths, takes_lengths, unpack
from .outputs import PredictionWriter, write_confusion  # noqa: F401 - re-exported: recipes and the module name them here
from .schedules import epoch_record
from ..core.cnn import NeuroViewCNN
from ..core.head import CodeNorm
from ..core.unseen import checkpointing, checkpointing_message
from ..data.read_as import check_classes

__all__ = ["Checkpoint", "PredictionWriter", "PreciseBatchNorm", "recompute_batchnorm", "ResumeState", "rng_states",
           "set_rng_states", "write_confusion"]
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
_WRAPPERS = ("DataParallel", "DistributedDataParallel", "AveragedModel", "FullyShardedDataParallel")  # torch's, by name


class Checkpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``last.ckpt`` follows every epoch, as ``--ckpt_path last`` needs, and whose files are never
    half written. Since Lightning 2.6, ``save_last=True`` writes ``last.ckpt`` only with a top-k checkpoint of the same
    step (with ``save_top_k=1``, a copy of the best epoch, which a resume went back to). This also saves the latest
    state at each training epoch's end (``on_train_epoch_end``, after the epoch's validation and the module's own
    epoch-end hook), unless Lightning has just written ``last.ckpt`` there itself."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # file -> (global step, written at the epoch's end) of its last write (through _save_checkpoint)
        self._written_at: dict[str, tuple[int, bool]] = {}
        self._at_epoch_end = False

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        # The one private member overridden, and why no public one does: every file ModelCheckpoint writes goes through
        # it, with no public hook around the write (a CheckpointIO plugin, the public place, would replace the IO a user
        # or a strategy chose). A temporary file: Lightning's fsspec transaction keeps its own in the system temp dir,
        # and across file systems a kill mid-copy leaves half a last.ckpt; os.replace of one next to the target is
        # atomic on a local disk. Not neuroview._io.atomic_write: Lightning writes the file itself (the strategy's IO,
        # on every rank of a sharded strategy), and every rank must name the same temporary path.
        if "://" in str(filepath):
            return super()._save_checkpoint(trainer, filepath)
        tmp = f"{filepath}.tmp"
        super()._save_checkpoint(trainer, tmp)
        # super() recorded the temporary name; Lightning's save_last="link" and on_train_end read it
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            os.replace(tmp, filepath)
        trainer.strategy.barrier("Checkpoint._save_checkpoint")
        self._written_at[filepath] = (trainer.global_step, self._at_epoch_end)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.fast_dev_run:  # a smoke test saves nothing: Lightning's own end hook wrote a one-step last.ckpt
            super().on_train_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._at_epoch_end = True
        try:
            super().on_train_epoch_end(trainer, pl_module)
            # save_last="link": last.ckpt is Lightning's link to the newest top-k file, which a write here replaced
            if (not self.save_last or self.save_last == "link" or trainer.sanity_checking or trainer.fast_dev_run
                    or trainer.state.fn != TrainerFn.FITTING):
                return
            metrics = {**trainer.callback_metrics, "epoch": trainer.current_epoch, "step": trainer.global_step}
            path = self.format_checkpoint_name(metrics, self.CHECKPOINT_NAME_LAST)
            # written with a top-k checkpoint at this epoch's end: it is the latest state. Written at this step's
            # validation (check_val_every_n_epoch > 1 saves there): again, since the epoch's end hooks came after it (a
            # plateau schedule's step, EarlyStopping's count), which a resume from it would miss
            if self._written_at.get(path) != (trainer.global_step, True):
                self.last_model_path = path  # before the write: the checkpoint holds this callback's state
                self._save_checkpoint(trainer, path)
        finally:
            self._at_epoch_end = False


def _running_norms(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Every normalization of ``model`` in training mode that keeps running statistics: BatchNorms and ``CodeNorm``."""
    return [m for m in model.modules() if m.training and (
        isinstance(m, CodeNorm) or isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats)]


def recompute_batchnorm(model: torch.nn.Module, batches, forward=None) -> list[torch.nn.Module]:
    """Recompute the running statistics of every normalization of ``model`` in training mode (BatchNorms, the head's
    ``CodeNorm``) from ``batches``, one pass, no gradient: each becomes the plain average of its batches' statistics
    (``momentum=None``), as ``torch.optim.swa_utils.update_bn`` computes them, not the exponential average of a run's last
    batches. After SWA (``update_bn`` recomputes no ``CodeNorm``): ``recompute_batchnorm(swa, train_loader)``.

    ``forward(batch)`` runs one batch. Default: ``model(batch)``; for a NeuroView network (also inside an AveragedModel,
    DDP, ``torch.compile``, an ``nn.Sequential`` of one), a tuple batch as update_bn reads it, ``model(batch[0])``, and
    for one that takes ``lengths``, ``(x, lengths, y)`` as ``model(x, lengths)``, the lengths checked. A normalization in
    eval mode (a frozen backbone's) keeps its statistics. Returns the layers recomputed; each keeps its momentum. Raises
    ``ValueError`` when ``batches`` is empty; then, and after an error of the pass (raised), every statistic is as it was."""
    norms = _running_norms(model)
    if not norms:
        return []
    forward = forward or _loader_forward(model)
    saved = [(m.momentum, {k: getattr(m, k).clone() for k in _BUFFERS}) for m in norms]
    for m in norms:
        m.running_mean.zero_(), m.running_var.fill_(1), m.num_batches_tracked.zero_()
        m.momentum = None  # a cumulative average over the pass
    n, done = 0, False
    try:
        with torch.no_grad():
            for batch in batches:
                forward(batch)
                n += 1
        done = n > 0
    finally:  # a pass that failed part-way left momentum None (a cumulative average ever after) and partial statistics
        for m, (momentum, buffers) in zip(norms, saved):
            m.momentum = momentum
            if not done:  # nothing seen, or a partial pass: the statistics training left are better
                for k, v in buffers.items():
                    getattr(m, k).copy_(v)
    if n == 0:
        raise ValueError("batches: expected at least one batch to recompute the running statistics from, got none")
    return norms


def _loader_forward(model: torch.nn.Module):
    """:func:`recompute_batchnorm`'s default pass of a batch (see there); any other model's batches run as before."""
    chain, nn_ = [model], torch.nn  # judged inside torch's own wrappers (a user's .module is theirs), as update_bn takes
    while len(chain) < 5 and isinstance(nxt := chain[-1][0] if isinstance(chain[-1], nn_.Sequential) and len(chain[-1]) == 1 else getattr(
            chain[-1], {"OptimizedModule": "_orig_mod", **dict.fromkeys(_WRAPPERS, "module")}.get(type(chain[-1]).__name__, ""), None), nn_.Module):
        chain.append(nxt)  # them; the outer model is called
    inner, seq, rnn = chain[-1], any(isinstance(m, nn_.Sequential) for m in chain), takes_lengths(chain[-1])
    tup = lambda b: isinstance(b, (tuple, list)) and not isinstance(b, nn_.utils.rnn.PackedSequence) and len(b) > 0  # noqa: E731
    if not (rnn or callable(getattr(inner, "explain", None)) and callable(getattr(inner, "effective_classifier", None))):
        return model

    def forward(b):
        if not (tup(b) and rnn and len(b) == 3):  # a CNN's (x, y, weight) too: update_bn's input[0]
            return model(b[0] if tup(b) else b)
        x, lengths, _ = unpack(b)
        if seq and lengths is not None:  # nn.Sequential passes one input: the lengths would be dropped
            raise ValueError("batches: an nn.Sequential cannot pass an (x, lengths, y) batch's lengths on; pass the network inside it, or forward=")
        if isinstance(x, torch.Tensor) and x.dim() == 3:  # checked as [B, C, T] (x as the model reads it)
            lengths = check_lengths(lengths, x.permute(0, 2, 1) if getattr(inner, "batch_first", True) else x.permute(1, 2, 0), "batches", last=b[-1])
        return model(x, lengths)
    return forward


class PreciseBatchNorm(pl.Callback):
    """When training ends, every BatchNorm's running statistics recomputed over the training split (precise BN; Wu &
    Johnson 2021, "Rethinking 'Batch' in BatchNorm"), for the final weights: the mean of the statistics of the training
    loader's batches, as training saw them (a loader that drops its last partial batch, as the data modules' training
    loaders do, leaves those samples out).

    During training, eval mode reads an exponential average of recent batches' statistics, taken while the weights
    moved; no loss sees it, so a run whose training loss converged can still classify its own training split badly in
    eval mode (``benchmarks/bn_gap.py``). This runs one pass over the training loader (``max_batches`` at most; train
    mode, as training ran, no gradient), averages the statistics over the ranks of a distributed run, and rewrites
    ``last.ckpt`` so the file holds them too, and the best checkpoint (what fit's test scores with ``--test_ckpt best``,
    the default) when it holds the same weights (saved at the last step). A best checkpoint of earlier weights is left
    as it was, with a warning: its test scores the statistics training left (``--test_ckpt last`` scores the recomputed
    ones). With Lightning's ``StochasticWeightAveraging`` (no ``CodeNorm`` recomputed), list it after that callback: with
    no BatchNorm in the network (or ``max_epochs=-1``) SWA moves the averaged weights in at its ``on_train_end``.

        neuroview fit --config <recipe> --trainer.callbacks+=neuroview.training.callbacks.PreciseBatchNorm
    """

    def __init__(self, max_batches: int | None = None):
        if max_batches is not None and (isinstance(max_batches, bool) or not isinstance(max_batches, int) or max_batches < 1):
            raise ValueError(f"max_batches: expected None or an int >= 1, got {max_batches!r}")
        self.max_batches = max_batches

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # the pass calls the LightningModule itself: parameters sharded by FSDP or DeepSpeed are not there
        if not isinstance(s := trainer.strategy, (SingleDeviceStrategy, DDPStrategy)) or isinstance(s, DeepSpeedStrategy):
            raise ValueError(f"PreciseBatchNorm: supports one device and DDP, got the strategy "
                             f"{type(trainer.strategy).__name__}; drop the callback for it")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loader = trainer.train_dataloader
        if loader is None:
            if trainer.datamodule is None:
                raise ValueError("PreciseBatchNorm: found no training loader to recompute BatchNorm statistics from")
            loader = trainer.datamodule.train_dataloader()
        was_training = pl_module.training
        pl_module.train()  # the module's own train(): a frozen backbone stays in eval mode

        def forward(batch):
            x, lengths, _ = unpack(trainer.strategy.batch_to_device(batch))
            with trainer.precision_plugin.forward_context():
                pl_module(x) if lengths is None else pl_module(x, lengths)

        try:
            bns = recompute_batchnorm(pl_module, itertools.islice(loader, self.max_batches), forward)
        finally:  # a failed pass leaves the module's mode as it found it, as recompute_batchnorm leaves the statistics
            pl_module.train(was_training)
        for m in bns:  # each rank saw its own shard: their mean is the split's (equal shards)
            m.running_mean.copy_(trainer.strategy.reduce(m.running_mean, reduce_op="mean"))
            m.running_var.copy_(trainer.strategy.reduce(m.running_var, reduce_op="mean"))
        rank_zero_info(f"PreciseBatchNorm: recomputed the running statistics of {len(bns)} normalization layer{'' if len(bns) == 1 else 's'}")
        for cb in trainer.checkpoint_callbacks if bns else []:
            last = getattr(cb, "last_model_path", "")
            if last:  # last.ckpt was written before this: it must hold the statistics tested
                _rewrite_statistics(trainer, pl_module, bns, last)
            best = getattr(cb, "best_model_path", "")
            # the best checkpoint is fit's test (--test_ckpt best): rewritten when it holds the final weights
            if best and os.path.realpath(best) != os.path.realpath(last or "") and \
                    not _rewrite_statistics(trainer, pl_module, bns, best, step=trainer.global_step):
                rank_zero_warn(f"PreciseBatchNorm: the best checkpoint {best} holds the weights of an earlier step "
                               f"than the last ({trainer.global_step}), whose statistics were not recomputed: a test "
                               f"of it (fit's --test_ckpt best, the default) scores the statistics training left; "
                               f"--test_ckpt last (last.ckpt) scores the recomputed ones")


def _rewrite_statistics(trainer: pl.Trainer, pl_module: pl.LightningModule, norms: list, path: str,
                        step: int | None = None) -> bool:
    """``path`` (a checkpoint of this run) with the statistics of ``norms`` as they are now, and everything else as the
    file held it; with ``step``, only when the file was saved at that global step (it holds the weights the statistics
    were recomputed for). Returns whether it was rewritten. Saving the trainer again would record its state after the
    end of training: the epoch after the last one, which ``--ckpt_path last`` and a reader of a file's epoch misread."""
    names, io_, done = {id(m): n for n, m in pl_module.named_modules()}, trainer.strategy.checkpoint_io, True
    if trainer.is_global_zero:
        ckpt = io_.load_checkpoint(path)
        done = step is None or ckpt.get("global_step") == step
    if not trainer.strategy.broadcast(done):
        return False
    if trainer.is_global_zero:
        for m in norms:
            for b in _BUFFERS:
                key = f"{names[id(m)]}.{b}"
                if key not in ckpt["state_dict"]:
                    raise RuntimeError(f"PreciseBatchNorm: {path} has no {key!r} to write the recomputed statistics to")
                ckpt["state_dict"][key] = getattr(m, b).detach().to(ckpt["state_dict"][key].device).clone()
        local = "://" not in str(path)
        io_.save_checkpoint(ckpt, f"{path}.tmp" if local else path)
        if local:  # never half a file: a temporary file next to it, then one atomic move (Checkpoint's way)
            os.replace(f"{path}.tmp", path)
    trainer.strategy.barrier("PreciseBatchNorm._rewrite_statistics")
    return True


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
            try:  # the names of the classes its outputs index: other data is read against them (read_as.checkpoint_data)
                names = self.trainer.datamodule.class_names
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
        try:  # as on_save_checkpoint reads them: a data module of the user's may have none, or not be set up
            names = self.trainer.datamodule.class_names
        except (AttributeError, RuntimeError, ValueError):
            names = None
        if checkpoint.get("neuroview_classes") is not None and names is not None:  # the data module is set up by now:
            # its class i scored (test, validate), named (predict) or trained (a resume) as the model's class i
            check_classes(self.trainer.datamodule, [str(n) for n in checkpoint["neuroview_classes"]], "data")
        if self.trainer.state.fn == TrainerFn.FITTING:  # not test
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
        _resume_at_next_epoch(self.trainer)  # first: the epoch to redraw below is the one it resumes at
        for net in (m for m in self.modules() if isinstance(m, NeuroViewCNN)):  # what the wrapper only warned of
            names = checkpointing(net.backbone)
            if names and any(p.requires_grad for p in net.backbone.parameters()):
                raise ValueError(checkpointing_message(names))
        rng, self._resumed, self._seed_resumed = (self._resumed or {}).get("neuroview_rng"), None, False
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
