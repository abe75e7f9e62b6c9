"""Lightning callbacks of the ``neuroview`` runs: ``Checkpoint``, ``PredictionWriter`` and ``PreciseBatchNorm``.
``Checkpoint`` keeps ``last.ckpt`` at the latest epoch, never leaves half of one, and resumes a run whose folder was
moved or copied with its ranking of best files in that folder; ``PredictionWriter`` writes ``predictions.csv``
(``write_confusion``: ``confusion_matrix.csv``; both in ``outputs``); ``PreciseBatchNorm`` recomputes BatchNorm's
running statistics for the final weights. ``ResumeState`` (the module's resume hooks, ``rng_states``) lives in
:mod:`.resume_state`, named here too. May import Lightning, torch, ``neuroview._io``, ``neuroview._batch``,
``neuroview.core.head`` (the head's normalization), ``.outputs`` and ``.resume_state``; nothing else of neuroview."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.strategies import DDPStrategy, DeepSpeedStrategy, SingleDeviceStrategy
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from .._batch import check_lengths, takes_lengths, unpack
from .outputs import PredictionWriter, write_confusion  # noqa: F401 - re-exported: recipes and the module name them here
from .resume_state import NORM_STATS, ResumeState, rng_states, set_rng_states  # noqa: F401 - re-exported, as before
from ..core.head import CodeNorm

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
        self._fitting = True  # set at each setup: a fit resumes (and remaps a moved run's files), a test does not

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

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self._fitting = stage == "fit"  # before Lightning restores a checkpoint's state (load_state_dict)

    def load_state_dict(self, state_dict: dict) -> None:
        # a run folder moved or copied: Lightning restored only best_model_path, the old folder's file (a FileNotFoundError
        # at the test once that folder was gone), and ranked the first save after the resume as the best
        if self._fitting:
            return super().load_state_dict(_moved_here(self, state_dict))
        # test/validate/predict of a file saved in another folder (fit's test of a copied run's best too): nothing
        # resumes or ranks, and the callback's own state stands (Lightning would keep only that folder's best path)
        if state_dict.get("dirpath", self.dirpath) == self.dirpath:
            super().load_state_dict(state_dict)

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


def _moved_here(cb: ModelCheckpoint, state: dict) -> dict:
    """A ``ModelCheckpoint`` state saved in another folder than ``cb.dirpath`` (the run's folder moved or copied) with
    its files (best, k-th best, top-k, last) named by the same names in ``cb.dirpath``, and its ``dirpath``, so that
    Lightning restores the ranking. Ranked files not in ``cb.dirpath`` leave the ranking, with a warning naming them,
    and the best and k-th best are those of the files left (by ``cb.mode``); with none left the ranking starts afresh
    there. No file of the other folder is read."""
    dirpath, old = cb.dirpath, state.get("dirpath")
    if not dirpath or not old or old == dirpath or "://" in str(dirpath) or "://" in str(old):
        return state
    here = lambda p: str(Path(dirpath) / Path(p).name) if p else p  # noqa: E731
    ranked = {here(k): v for k, v in (state.get("best_k_models") or {}).items()}
    names = {Path(p).name for p in (state.get("best_model_path"), state.get("kth_best_model_path"), *ranked) if p}
    last = state.get("last_model_path")
    out = {**state, "dirpath": dirpath, "last_model_path": here(last) if last and os.path.isfile(here(last)) else ""}
    missing = sorted(n for n in names if not os.path.isfile(os.path.join(dirpath, n)))
    if not missing:
        return {**out, "best_model_path": here(state.get("best_model_path")), "kth_best_model_path":
                here(state.get("kth_best_model_path")), "best_k_models": ranked}
    kept = {k: v for k, v in ranked.items() if os.path.isfile(k)}
    said = f"ckpt_path: the run's checkpoints were saved in {old}, and it resumes in {dirpath}, which lacks {', '.join(missing)}"
    out.pop("kth_value", None)  # the callback's own start value, unless the top-k is full below
    if not kept:
        rank_zero_warn(f"{said} of its best checkpoints: the resumed run ranks its best afresh from here (fit's test with "
                       f"--test_ckpt best scores the best of the epochs to come); no file of {old} is read")
        return {**out, "best_model_path": "", "best_model_score": None, "kth_best_model_path": "", "best_k_models": {}}
    score = lambda k: float(kept[k])  # noqa: E731
    best = (min if cb.mode == "min" else max)(kept, key=score)
    rank_zero_warn(f"{said} of its top-k checkpoints: the resumed run ranks on without them, its best the best of those "
                   f"here ({Path(best).name}); no file of {old} is read")
    out.update(best_model_path=best, best_model_score=kept[best], best_k_models=kept, kth_best_model_path="")
    # full (resumed with a save_top_k of at most those kept, too): the k-th best is the worst of them, as Lightning's own
    # restore leaves it; "" with more ranked than save_top_k read best_k_models[""] at the first validation (KeyError)
    if 0 < cb.save_top_k <= len(kept):
        out["kth_best_model_path"] = (max if cb.mode == "min" else min)(kept, key=score)
        out["kth_value"] = kept[out["kth_best_model_path"]]
    return out


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
    ones). Each file rewritten keeps the statistics training left beside the recomputed ones, and a resume
    (``--ckpt_path last``) goes on from those, as the uninterrupted run does; at its end they are recomputed again.
    With Lightning's ``StochasticWeightAveraging`` (no ``CodeNorm`` recomputed), list it after that callback: with
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

        names = {id(m): n for n, m in pl_module.named_modules()}  # what training left: a resume goes on from it
        trained = {f"{names[id(m)]}.{b}": getattr(m, b).detach().clone() for m in _running_norms(pl_module) for b in _BUFFERS}
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
                _rewrite_statistics(trainer, pl_module, bns, last, trained)
            best = getattr(cb, "best_model_path", "")
            # the best checkpoint is fit's test (--test_ckpt best): rewritten when it holds the final weights
            if best and os.path.realpath(best) != os.path.realpath(last or "") and \
                    not _rewrite_statistics(trainer, pl_module, bns, best, trained, step=trainer.global_step):
                rank_zero_warn(f"PreciseBatchNorm: the best checkpoint {best} holds the weights of an earlier step "
                               f"than the last ({trainer.global_step}), whose statistics were not recomputed: a test "
                               f"of it (fit's --test_ckpt best, the default) scores the statistics training left; "
                               f"--test_ckpt last (last.ckpt) scores the recomputed ones")


def _rewrite_statistics(trainer: pl.Trainer, pl_module: pl.LightningModule, norms: list, path: str, trained: dict,
                        step: int | None = None) -> bool:
    """``path`` (a checkpoint of this run) with the statistics of ``norms`` as they are now, those training left
    (``trained``: name -> buffer) kept beside them (``NORM_STATS``: a resume goes on from these, as the uninterrupted run
    does), and everything else as the file held it; with ``step``, only when the file was saved at that global step (it
    holds the weights the statistics were recomputed for); a file of an earlier step that an earlier end of this run
    (before a resume) rewrote gets the statistics training left back, as the uninterrupted run's has them. Returns
    whether it was rewritten with the recomputed statistics. Saving the trainer again would record its state after the
    end of training: the epoch after the last one, which ``--ckpt_path last`` and a reader of a file's epoch misread."""
    names, io_, done = {id(m): n for n, m in pl_module.named_modules()}, trainer.strategy.checkpoint_io, True
    ckpt, back = None, False
    if trainer.is_global_zero:
        ckpt = io_.load_checkpoint(path)
        done = step is None or ckpt.get("global_step") == step
        back = not done and isinstance(ckpt.get(NORM_STATS), dict)
    done, back = trainer.strategy.broadcast((done, back))
    if not (done or back):
        return False
    if trainer.is_global_zero:
        now = {f"{names[id(m)]}.{b}": getattr(m, b) for m in norms for b in _BUFFERS} if done else ckpt.pop(NORM_STATS)
        for key, value in now.items():
            if key not in ckpt["state_dict"]:
                raise RuntimeError(f"PreciseBatchNorm: {path} has no {key!r} to write the recomputed statistics to")
            ckpt["state_dict"][key] = value.detach().to(ckpt["state_dict"][key].device).clone()
        if done:
            ckpt[NORM_STATS] = {k: v.to(ckpt["state_dict"][k].device) for k, v in trained.items() if k in ckpt["state_dict"]}
        local = "://" not in str(path)
        io_.save_checkpoint(ckpt, f"{path}.tmp" if local else path)
        if local:  # never half a file: a temporary file next to it, then one atomic move (Checkpoint's way)
            os.replace(f"{path}.tmp", path)
    trainer.strategy.barrier("PreciseBatchNorm._rewrite_statistics")
    return done
