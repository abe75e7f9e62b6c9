"""What :class:`~neuroview.training.module.NeuroViewModule` checks around Lightning's loops, so that a trainer option or
call order a user chooses gives the numbers it says or a named refusal.

Holds :class:`LoopGuards`, a mixin of hooks: one validation and one test loader (a list or dict of one), the module's
batch checks run after a data module's own batch hook (a ``None`` batch left to Lightning, soft labels trained, an error
naming the hook), metric states made again outside inference mode before a fit, an ``EarlyStopping`` or
``ModelCheckpoint`` whose ``mode`` is the wrong way round refused (:func:`check_monitor_modes`), Lightning's eval-mode
warning silenced for a frozen backbone during a fit's start only (:class:`OwnWarningFilters`), Lightning's note on
neuroview's own batch hook kept per call of that hook, a ``train_acc`` monitor refused where Lightning would fail on it
after an epoch of soft labels only, and ``(x, lengths)`` predict batches told from ``(x, y)``; :func:`check_validation`,
a plateau schedule's validation there before the first step; :func:`first_loader`, the loader whose first batch finds
a network's sites. May import Lightning, torch, torchmetrics, :mod:`.module_metrics` and :mod:`.outputs` (the data
module of the current call, not one an earlier fit left on the trainer); nothing else of neuroview.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from contextlib import contextmanager

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.trainer.connectors import data_connector
from pytorch_lightning.utilities import rank_zero_warn
from pytorch_lightning.utilities.model_helpers import is_overridden
from torch import Tensor
from torchmetrics import Metric

from .module_metrics import keep_wide
from .outputs import this_calls_datamodule

__all__ = ["LoopGuards", "OwnWarningFilters", "by_neuroview", "quiet", "HOOK_NOTE", "hook_note", "EMPTY_VAL_WARNING",
           "soft_labels", "check_monitor_modes", "monitor_mode", "check_validation", "only_loader", "first_loader"]

#: Lightning's warning at the start of a fit whose modules are not all in training mode (a frozen backbone is, on purpose)
EVAL_MODE_WARNING = r".*module\(s\) in eval mode at the start of training.*"
#: Lightning's notes on which ``on_before_batch_transfer`` it calls beside the module's own (kept from its cache, not
#: filtered: :func:`_quiet_note`; :func:`hook_note` says them exactly)
HOOK_NOTE = (r"You have overridden `on_before_batch_transfer` in (both `LightningModule` and `LightningDataModule`|"
             r"`LightningModule` but have passed in a `LightningDataModule`)\. It will use the implementation from ")
#: Lightning's note on an empty list of validation loaders: neuroview's data modules give one for "no validation split".
#: Filtered by the ``neuroview`` command for its run only; in Python it stays (a filter per stage made Python show every
#: once-a-place warning again at each stage, and the message cannot tell neuroview's empty list from a user's)
EMPTY_VAL_WARNING = r"Total length of `list` across ranks is zero\. Please make sure this was your intention\.$"


class LoopGuards:
    """Hooks of :class:`~neuroview.training.module.NeuroViewModule` (a mixin before ``pl.LightningModule``)."""

    def on_fit_start(self) -> None:
        super().on_fit_start()
        ckpt = self.trainer.ckpt_path  # a resume: the checkpoint's callback states are restored by now
        check_monitor_modes(self.trainer.callbacks, ckpt, _saved_callbacks(self.trainer) if ckpt else None)
        with torch.inference_mode(False):  # states a validate/test before this fit made under inference mode
            for m in self.modules():
                if isinstance(m, Metric) and any(isinstance(v, Tensor) and v.is_inference() for v in m.metric_state.values()):
                    m.reset()
        if self.hparams.get("freeze_backbone"):  # its backbone is in eval mode on purpose: this fit's warning only
            warnings.filterwarnings("ignore", message=EVAL_MODE_WARNING)
            self._eval_filter = warnings.filters[0]

    def on_train_start(self) -> None:
        super().on_train_start()
        self._drop_eval_filter()

    def on_fit_end(self) -> None:
        super().on_fit_end()
        self._drop_eval_filter()

    def configure_callbacks(self):
        # a module gets no on_exception hook (PL 2.6): a fit failing before on_train_start (its sanity check, a loader,
        # Ctrl-C) left the filter for the process. One a trainer: a second made Lightning log that it overrides the first
        have = any(isinstance(c, OwnWarningFilters) for c in getattr(self.trainer, "callbacks", None) or [])
        own = [OwnWarningFilters()] if self.hparams.get("freeze_backbone") and not have else []
        return [*(super().configure_callbacks() or []), *own]

    def _drop_eval_filter(self) -> None:
        """Lightning warns just before ``on_train_start``: the filter goes then (or on a failure: OwnWarningFilters)."""
        f, self._eval_filter = getattr(self, "_eval_filter", None), None
        if f is not None and f in warnings.filters:
            warnings.filters.remove(f)
            getattr(warnings, "_filters_mutated", lambda: None)()

    def _on_before_batch_transfer(self, batch, dataloader_idx: int = 0):
        """Where a data module overrides ``on_before_batch_transfer`` (a normalisation, an augmentation), Lightning calls
        it instead of the module's, whose batch checks (``_check_batch``) were skipped: they run here after it, on the
        batch the steps are given (Lightning's note: :func:`_quiet_note`). A ``None`` is Lightning's to skip, training
        soft labels (mixup: :func:`soft_labels`) train, a refusal names the hook; without a trainer (``to_onnx``,
        ``to_torchscript``) the checks run as in evaluation."""
        self._batch_checked, t = False, self._trainer  # (self.trainer raises without one: a subclass hook that skips
        dm = this_calls_datamodule(t)  # super() got "not attached to a Trainer"); this call's, not an earlier fit's
        with _quiet_note(self, dm):
            batch = super()._on_before_batch_transfer(batch, dataloader_idx)
        if batch is None or self._batch_checked:  # checked by the module's own hook (a subclass's calling super())
            return batch
        try:  # F.cross_entropy reads a training batch's [B, C] rows as class probabilities; an ensemble's loss cannot
            return self._check_batch(batch, soft_ok=t is not None and bool(t.training) and not getattr(self, "ensemble", False))
        except ValueError as e:  # the user's data may hold class indices: the labels read are what their hook made
            hook = type(dm if dm is not None and is_overridden("on_before_batch_transfer", dm) else self).__name__
            raise ValueError(f"{e} (the batch as {hook}.on_before_batch_transfer returned it)") from None

    def _score_soft(self, loss: Tensor, n: int) -> None:
        """A training batch of soft labels (a data module hook's mixup): its loss logged as any batch's; ``train_acc``
        has no class to count it by (it logged 0.0 for such batches), so it counts the batches of class indices only."""
        keep_wide(self.train_loss)
        self.train_loss(loss.detach(), n)
        self.log("train_loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)

    def on_train_epoch_end(self) -> None:
        """Refuse a ``train_acc`` monitor Lightning fails on ("Did you call log": :func:`_raises_unlogged`) after an epoch
        of soft labels only on every rank (FreshMetrics); where Lightning warns, or reads none, the fit runs."""
        t = self.trainer  # (the callbacks that raise are the same on every rank: the counts are reduced)
        on = [cb for cb in t.callbacks if _raises_unlogged(cb, t)] if "train_acc" not in t.callback_metrics else []
        if on and t.strategy.reduce_boolean_decision(self.train_acc.update_count == 0, all=True):
            raise ValueError(f"trainer.callbacks: {type(on[0]).__name__}(monitor='train_acc') reads the training accuracy, "
                             f"which counts batches of class indices only, and every training batch of epoch {self.current_epoch}"
                             " held soft labels (class-probability rows, as a mixup makes): monitor 'train_loss_epoch' "
                             "(mode='min'), or 'val_acc' with a validation split")
        super().on_train_epoch_end()

    def on_validation_start(self) -> None:
        super().on_validation_start()
        only_loader(self.trainer.val_dataloaders, "validation", _count(self.trainer, "num_val_batches"))

    def on_test_start(self) -> None:
        super().on_test_start()
        only_loader(self.trainer.test_dataloaders, "test", _count(self.trainer, "num_test_batches"))

    def _predict_labels(self, x: Tensor, lengths: Tensor | None, y: Tensor | None) -> None:
        """Refuse a sequence model's 2-item predict batch whose second item reads as lengths, not labels: ``(x,
        lengths)`` was read as ``(x, y)``, the padding as data and the lengths returned as targets."""
        if not self.sequence_input or lengths is not None or not isinstance(y, Tensor) or y.dtype.is_floating_point:
            return
        n = self.hparams.num_classes
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n):
            raise ValueError(f"batch: a predict batch of 2 items is read as (x, y), and its second item holds "
                             f"{int(y.max())}, no class of {n}: (x, lengths)? give unlabelled variable-length series as "
                             "(x, lengths, y) with any labels, or padded to one length as (x,)")


def _raises_unlogged(cb, t) -> bool:
    """Whether Lightning's ``cb`` (of ``t``) raises on ``train_acc`` unlogged at this epoch's end: a ``strict``
    ``EarlyStopping``; a ``ModelCheckpoint`` saving now (``every_n_epochs``) where a validation has run (else it warns)."""
    if getattr(cb, "monitor", None) != "train_acc" or t.sanity_checking or t.fast_dev_run:
        return False
    n, loop = t.num_val_batches, t.fit_loop.epoch_loop  # val: a validation runs after this epoch (saves, checks at its end)
    val = loop._should_check_val_epoch() and (sum(n) if isinstance(n, list) else n) > 0
    if isinstance(cb, EarlyStopping):
        return bool(cb.strict) and (bool(cb._check_on_train_epoch_end) or val)
    every, saved = cb._every_n_epochs if isinstance(cb, ModelCheckpoint) else 0, getattr(cb, "_last_global_step_saved", -1)
    if every < 1 or (t.current_epoch + 1) % every or cb.save_top_k == 0 or saved == t.global_step:
        return False
    return bool(loop.val_loop._has_run) if cb._should_save_on_train_epoch_end(t) else val


class OwnWarningFilters(pl.Callback):
    """The module's eval-mode filter (``freeze_backbone``) removed when a stage fails (a module has no ``on_exception``)."""

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        drop = getattr(pl_module, "_drop_eval_filter", None)
        if drop is not None:
            drop()


@contextmanager
def _quiet_note(module, dm):
    """Lightning's note on which ``on_before_batch_transfer`` it calls beside ``dm``, where the module's is neuroview's
    (its checks run after the data module's hook too: the note says what no longer happens), in Lightning's
    once-a-process cache for the hook call this wraps (where ``_DataHookSelector`` reads it), if not there already."""
    cache = getattr(data_connector, "warning_cache", None)
    note = hook_note(dm) if dm is not None and cache is not None and by_neuroview(module, "on_before_batch_transfer") else None
    if added := note is not None and note not in cache:
        cache.add(note)
    try:
        yield
    finally:
        if added:
            cache.discard(note)


def hook_note(dm) -> str:
    """Lightning's note, word for word, on the ``on_before_batch_transfer`` it calls beside the data module ``dm`` where
    the module's is overridden (its ``_DataHookSelector``): the data module's own hook, if it has one, else the module's."""
    if is_overridden("on_before_batch_transfer", dm):
        return ("You have overridden `on_before_batch_transfer` in both `LightningModule` and `LightningDataModule`. "
                "It will use the implementation from `LightningDataModule` instance.")
    return ("You have overridden `on_before_batch_transfer` in `LightningModule` but have passed in a "
            "`LightningDataModule`. It will use the implementation from `LightningModule` instance.")


def soft_labels(y, num_classes: int, refuse: bool = False) -> bool:
    """Whether ``y`` is one row of class probabilities per sample (``[B, num_classes]`` floats, none negative, each row
    summing to 1 within 1e-3, or one epsilon of its dtype: bf16 rows 0.37 + 0.63 sum to 0.998; each entry rounds by
    half an epsilon at most): a mixup's or a hand-made label smoothing's, which ``F.cross_entropy`` trains on as they
    are. ``refuse``: rows of that shape that are no probabilities raise, saying why.
    >>> soft_labels(torch.tensor([[0.37, 0.63]]).bfloat16(), 2), soft_labels(torch.tensor([[0.369, 0.629]]), 2)
    (True, False)"""
    if not isinstance(y, Tensor) or not y.dtype.is_floating_point or y.dim() != 2 or y.shape[1] != num_classes:
        return False
    tol, dtype, y = max(1e-3, torch.finfo(y.dtype).eps), y.dtype, y.detach().double()
    finite, sums = torch.isfinite(y).all(1), y.sum(1)
    bad = ~finite | (y < 0).any(1) | ((sums - 1).abs() > tol)
    if not bad.any() or not refuse:
        return not bool(bad.any())
    i = int(bad.nonzero()[0])
    why = "is not finite" if not finite[i] else "holds a negative value" if (y[i] < 0).any() else f"sums to {float(sums[i]):.6g}"
    raise ValueError(f"y: a training batch's {list(y.shape)} float rows are read as class probabilities (soft labels, as "
                     f"a mixup makes), each >= 0 and summing to 1 (within {tol:.3g} in {dtype}); row {i} {why}: give "
                     f"rows of probabilities, or one class index per sample, shape [{len(y)}]")


def by_neuroview(obj, name: str) -> bool:
    """Whether ``obj``'s method ``name`` (the one Lightning calls) is neuroview's own, not a user's override."""
    owner = next((c for c in type(obj).__mro__ if name in vars(c)), None) if obj is not None else None
    return owner is not None and owner.__module__.split(".")[0] == "neuroview"


def quiet(message: str):
    """An ``ignore`` filter of ``message`` (a UserWarning) added, and returned; None where one is there already. For a
    whole command's run only (``neuroview fit``): each change of the filters resets Python's once-a-place record."""
    if any(f[0] == "ignore" and f[1] is not None and f[1].pattern == message and f[2] is UserWarning
           for f in warnings.filters):
        return None
    warnings.filterwarnings("ignore", message=message, category=UserWarning)
    return warnings.filters[0]


def monitor_mode(monitor: str, mode: str) -> str | None:
    """The mode ``monitor`` needs when ``mode`` is the other one ('min' for a loss, 'max' for an accuracy or F1), or
    None: a mode that fits it, or a monitor whose direction the name does not tell.
    >>> monitor_mode("val_acc", "min"), monitor_mode("train_loss_epoch", "max"), monitor_mode("val_acc", "max")
    ('max', 'min', None)"""
    name = str(monitor).lower()
    if "loss" in name:
        return "min" if mode == "max" else None
    return "max" if mode == "min" and any(k in name for k in ("acc", "f1")) else None


def check_monitor_modes(callbacks, ckpt: str | None = None, saved: dict | None = None) -> None:
    """Refuse an ``EarlyStopping`` or ``ModelCheckpoint`` whose ``mode`` is the wrong way round for its monitor:
    Lightning's default ``mode="min"`` on ``val_acc`` stopped a run while its accuracy rose, without a word (the
    command's own checkpoint: as ``--checkpoint.mode``). A resume (``ckpt``) of a run started with that callback (its
    state key among ``saved``, the checkpoint's callback states; None: not known) goes on under it with a warning: a
    refusal left such a run no way to resume (its own mode refused here, the right one by the resume's stop check)."""
    for cb in callbacks or []:
        if not isinstance(cb, (EarlyStopping, ModelCheckpoint)) or not cb.monitor:
            continue
        need = monitor_mode(cb.monitor, cb.mode)
        if need is None:
            continue
        stop = isinstance(cb, EarlyStopping)
        said = (f"trainer.callbacks: {type(cb).__name__}(monitor={cb.monitor!r}, mode={cb.mode!r}) "
                + (f"stops the run when {cb.monitor} stops {'falling' if cb.mode == 'min' else 'rising'}" if stop else
                   f"keeps the checkpoint of the {'lowest' if cb.mode == 'min' else 'highest'} {cb.monitor}")
                + f", and {cb.monitor} {'rises' if need == 'max' else 'falls'} as the model learns")
        if ckpt is None or (saved is not None and cb.state_key not in saved):
            raise ValueError(f"{said}; pass mode={need!r} to that callback, its other arguments as they are: "
                             f"{_entry(cb, need)}")
        fresh = "its patience count starts afresh" if stop else "its best checkpoint is ranked afresh"
        rank_zero_warn(f"{said}; the run resumed from {ckpt} was started with it, and goes on under it: resume with "
                      f"mode={need!r} in its place ({fresh}: {_entry(cb, need)}), or start a new run from its weights "
                      f"with --model.init_weights {ckpt}", category=UserWarning)


def _entry(cb, mode: str) -> str:
    """Where ``mode`` goes, the callback's other arguments kept as the user gave them (an entry written from a few of
    them dropped the rest); on the command line ``--trainer.callbacks.mode`` sets the callback appended last before it."""
    return (f"{type(cb).__name__}(monitor={cb.monitor!r}, mode={mode!r}, <its other arguments>) in Python, mode: {mode} in its "
            "entry's init_args in a config (or in its --trainer.callbacks+='{class_path: ..., init_args: {...}}'), on the command "
            f"line --trainer.callbacks.mode {mode} right after its own --trainer.callbacks.* options (at the end of the command it "
            "sets the last callback's)")


def _saved_callbacks(trainer) -> dict | None:
    """The callback states of the checkpoint a fit resumes, read from Lightning's private checkpoint connector (no
    public attribute holds them), or None where not there (a strategy that restores after the fit starts)."""
    loaded = getattr(getattr(trainer, "_checkpoint_connector", None), "_loaded_checkpoint", None)
    return loaded.get("callbacks") or {} if isinstance(loaded, dict) and loaded else None


def check_validation(trainer) -> None:
    """``scheduler="plateau"`` reads ``val_acc``: refuse a run with no validation loop before its first epoch (Lightning
    failed after one, naming neither option): plain loaders without a validation loader, an empty ``val_dataloaders``
    (``[]``) or one of 0 batches, and a data module without a ``val_dataloader`` or with an empty one, too."""
    why, fix, dm = None, None, this_calls_datamodule(trainer)  # not one an earlier fit left: loaders have none
    if trainer.limit_val_batches == 0:  # (these two were told "a val_fraction > 0", which changes neither)
        why, fix = "limit_val_batches=0 runs no validation", "limit_val_batches > 0"
    elif getattr(trainer, "check_val_every_n_epoch", 1) is None:  # validation by steps: epochs end without val_acc
        why = (f"check_val_every_n_epoch=None validates every val_check_interval={trainer.val_check_interval} "
               "training batches, so epochs end without a val_acc to read")
        fix = "check_val_every_n_epoch=1 (a validation at each epoch's end)"
    elif not _validation_given(trainer):  # trainer.fit(module, train_loader): checked above for data modules only
        why, fix = (("no validation loader was given to fit (val_dataloaders)",
                     "pass a validation loader (trainer.fit(module, train_loader, val_loader))") if dm is None else
                    (f"the data module ({type(dm).__name__}) has no val_dataloader", "give the data module a val_dataloader"))
    else:
        loader, plain = _validation_source(trainer)
        if _no_batches(loader) and plain:
            why = ("val_dataloaders is empty" if isinstance(loader, (list, tuple, dict)) and not loader else
                   "the validation loader has no batches")
            fix = "pass a validation loader that has batches"
        elif _no_batches(loader):
            why, fix = _empty_split(getattr(dm, "val_fraction", None), loader)
    if why:
        raise ValueError(f"scheduler: 'plateau' cuts the rate when val_acc stalls, and {why}; use scheduler "
                         f"'train_plateau' (the same rule on the training loss), or {fix}")


def _empty_split(frac, loader) -> tuple[str, str]:
    """Why a data module's validation ``loader`` has no batches, and what gives it some. "A val_fraction > 0" only where
    the fraction is 0 (it was advised for a val_fraction=0.2 whose 10 samples made no batch of 64 with drop_last)."""
    if frac is not None and frac == 0:
        return f"the data module has no validation split (val_fraction={frac})", "a val_fraction > 0"
    if frac is None and isinstance(loader, (list, tuple, dict)) and not loader:
        return "the data module has no validation split", "give the data module's val_dataloader batches"
    of = "" if frac is None else f"val_fraction={frac}: "
    try:
        n, size, drop = len(loader.dataset), loader.batch_size, loader.drop_last
    except (AttributeError, TypeError):  # a list of loaders, a loader without a dataset of a length
        n, size, drop = None, None, False
    if n == 0:  # a user's own module has no fraction: its split is empty, said as such
        return ((f"the data module's validation split is empty ({of}too few samples for the fraction)",
                 "more samples or a larger val_fraction") if frac is not None else
                ("the data module's validation split is empty", "give the data module's val_dataloader samples"))
    if n and drop and size and n < size:
        return (f"the data module's validation loader has no batches ({of}its {n} samples are fewer than a batch of "
                f"{size} with drop_last=True)", f"a batch_size of at most {n}, or drop_last=False for validation")
    why = ("too few samples for the fraction, or fewer than a batch with drop_last" if frac is not None
           else "fewer samples than a batch with drop_last, or none")
    return (f"the data module's validation loader has no batches ({of}{why})",
            "give the data module's validation loader batches")


def _validation_given(trainer) -> bool:
    """Whether fit was given a validation source: loaders, or a module or data module with a ``val_dataloader`` of its
    own. Read from the private ``_data_source`` of Lightning's validation loop: no public attribute holds what fit was
    given before the loop sets its loaders up (at the sanity check, or the first validation)."""
    try:
        return bool(trainer.fit_loop.epoch_loop.val_loop._data_source.is_defined())
    except AttributeError:  # another Lightning, or a stand-in trainer: left to the checks above and to Lightning
        return True


def _validation_source(trainer) -> tuple[object, bool]:
    """What fit was given for validation, and whether as plain loaders (``val_dataloaders``): the loaders themselves, or
    a data module's ``val_dataloader()``; None for a module's own hook or where it cannot be read."""
    try:
        src = trainer.fit_loop.epoch_loop.val_loop._data_source.instance
    except AttributeError:  # another Lightning, or a stand-in trainer
        src = None
    if src is not None and not isinstance(src, (pl.LightningModule, pl.LightningDataModule)):
        return src, True
    dm = this_calls_datamodule(trainer)  # None where fit got loaders (a module's own val_dataloader: not known here)
    try:
        return (dm.val_dataloader() if dm is not None else None), False
    except Exception:  # noqa: BLE001 - a data module without val_dataloader: Lightning says so itself
        return None, False


def _no_batches(loader) -> bool:
    """An empty list, tuple or dict of loaders, or loaders that all have a length of 0 (a filtered split that came out
    empty): Lightning runs no validation and ends the epoch without a val_acc. A loader without a length: not known."""
    many = list(loader.values()) if isinstance(loader, dict) else loader if isinstance(loader, (list, tuple)) else None
    if many is not None:
        return all(_no_batches(one) for one in many)  # [] too
    try:
        return loader is not None and len(loader) == 0
    except TypeError:
        return False


def _count(trainer, attr: str) -> int:
    """The loaders the running loop holds (one count of batches each), whatever collection held them; 0 if unknown."""
    try:
        return len(getattr(trainer, attr))
    except (AttributeError, TypeError, AssertionError):
        return 0


def only_loader(loaders, split: str, count: int = 0):
    """The one loader of ``loaders`` (a loader, or a list, tuple or dict of one); several (``count``: as the loop counts
    them) are refused: their samples would be pooled into one accuracy (each metric is one object)."""
    many = list(loaders.values()) if isinstance(loaders, Mapping) else loaders if isinstance(loaders, (list, tuple)) else None
    n = max(1 if many is None else len(many), count)
    if n > 1:
        named = f" (a dict: {', '.join(map(repr, loaders))})" if isinstance(loaders, Mapping) else ""
        raise ValueError(f"{split} dataloaders: NeuroViewModule scores one {split} loader, got {n}{named}; run "
                         f"trainer.{'validate' if split == 'validation' else 'test'} once per loader")
    return many[0] if many else loaders


def first_loader(loaders, name: str):
    """The loader whose first batch finds a network's sites, of a data module's ``name`` loaders: for ``"val"`` and
    ``"test"`` the only one (several refused by name), else the first of a list or dict; None for an empty one."""
    if name in ("val", "test"):
        return only_loader(loaders, "validation" if name == "val" else "test")
    many = list(loaders.values()) if isinstance(loaders, Mapping) else loaders if isinstance(loaders, (list, tuple)) else None
    return loaders if many is None else (many[0] if many else None)
