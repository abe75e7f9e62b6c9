"""The base of every data module: arrays in memory, split, standardized and batched.

Holds :class:`ArrayDataModule` (validation split, label encoding, standardization, padding, the loaders); split helpers
are in ``splits`` (:class:`~neuroview.data.NpzDataModule` in ``npz``), how labels become classes in ``labels``, the
statistics in ``stats``, series of several lengths in ``lengths``, batch sizes' checks and the arguments' record in
``options``. May import ``neuroview.data.batches``, ``labels``, ``lengths``, ``options``, ``own_splits``, ``splits``,
``shares``, ``stats`` and third-party libraries; nothing else from neuroview.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor
from torch.utils.data import DataLoader

from .batches import ArrayDataset, SeededLoader, passthrough_collate
from .labels import class_list, label_indices, model_label_space
from .lengths import check_series, check_values, pad, resample_option, stretch, warn_truncated
from .options import auto_batch_size, check_batch_size, check_eval_batch_size, record_hparams, whole_number
from .own_splits import warn_fraction_unused
from .shares import training_shares
from .splits import (_take, check_fraction, empty_held_out, folds_of, stratified_fold, stratified_split,  # noqa: F401
                     text_labels, whole_file)  # _take, check_fraction, stratified_split re-exported (npz, delimited)
from .stats import (centered_for_float32, channel_stats, magnitude, normalize_option, per_series_normalize,  # noqa: F401
                    warn_flat, warn_stored_apart)  # per_series_normalize re-exported


# -------------------------------------------------------------------------- base class
class ArrayDataModule(pl.LightningDataModule):
    """A data module over arrays held in memory; subclasses only say how to load them.

    Args:
        batch_size: samples per training batch (evaluation uses ``eval_batch_size``), or
            ``"auto"``: :func:`auto_batch_size` of the training split, known once it is loaded.
        val_fraction: share of the training split held out for validation (stratified, by
            ``seed``) when the dataset has no validation split of its own. ``0``: none; the
            model learns from the whole training split and there is no validation loop (test
            the final weights: ``--test_ckpt last``).
        seed: seed of every split carved here; the same seed gives the same split everywhere.
        val_fold: k-fold cross-validation on the training split: with ``val_fraction`` ``1 / k``
            (0.2: 5 folds) the training split is dealt into ``k`` stratified folds (by ``seed``) and
            fold ``val_fold`` (0 to ``k - 1``) is held out; the ``k`` runs together validate every
            training sample once (:func:`stratified_fold`). ``None``: one split, ``val_fraction`` of
            each class held out at random (:func:`stratified_split`).
        normalize: ``True``: standardize each channel with the mean and std of the training split (std 1 for a channel
            constant there: it is only shifted). ``"series"``: z-normalize every series (every sample) channel by
            channel with its own mean and std over its steps (positions), in every split, as the UCR archive's sets
            come; the model then reads the same inputs whatever the scale and offset of each recording (a series
            ``a * x + b``, ``a > 0``, gives what ``x`` gives up to float32 rounding, about 1e-7 relative: the cast errs by
            up to 6e-8 of ``max |a * x + b|`` over the std of ``a * x``, float64 series centered first where that passes 1e-4;
            a hard code whose pre-activation sits at 0 may flip). The promise ends below a std of 1e-8: there a series
            whose float32 cast loses it, or whose std is below 1e-6 of its channel's largest value over the training
            split, reads as a constant, zeros, whatever its offset (a warning names float64 ones that vary by more than
            their rounding). ``"sample"``: the same with one mean and std per series over all its channels and steps
            together: indifferent to a recording's overall scale and offset, while the channels keep their levels
            relative to each other (the same as ``"series"`` for one channel). ``False``: the values as loaded.
        num_workers: DataLoader workers. 0 is fastest: every batch is one gather from arrays in
            memory (augmentation, where there is some, runs on whole batches after the transfer). The
            batches do not depend on it (each epoch draws what 0 workers draw: ``SeededLoader``). Workers are kept
            between epochs, except with an :meth:`augmentation`, whose seed reaches only workers started for the
            epoch: a start each epoch (under spawn, macOS's and Windows' default, seconds to re-import torch).
        eval_batch_size: batch size of validation, test and predict (default ``4 * batch_size``).
        resample: variable-length sets only: stretch (or shrink) every series to :attr:`max_len`
            steps by linear interpolation (uniform scaling) instead of zero-padding it. The
            batches are then ``(x, y)`` of equal length, with nothing to mask: what a CNN wants,
            whose average over positions would otherwise count the padding. An RNN reads either:
            padded series masked past their ``lengths``, or stretched ones (the ``ucr_*`` recipes).

    Subclasses implement :meth:`load`, returning ``{"train": (X, y), "test": (X, y)}`` and
    optionally ``"val"``; ``X`` is an array ``[N, C, *spatial]`` or a list of ``[C, T_i]`` arrays
    (variable length, padded here), ``y`` any labels (strings are fine).

    Variable-length sets are padded to :attr:`max_len`, the longest series of the split the model
    is fit on (the training split after the validation split is carved out of it). Validation
    and test series longer than that are **truncated** to ``max_len`` steps (their ``lengths``
    clamped to it), with one warning saying how many and from what length: a NeuroView-RNN's
    weights for steps that no training series reaches are never trained, so reading them would
    add untrained weights into the decision.
    """

    #: ``(num_classes, in_channels, max_len)`` of a set whose shape is fixed, else ``None``: then
    #: they are known without loading anything, so the command line can link them into the model
    #: before a download or a generation.
    FIXED_SHAPE: ClassVar[tuple[int, int, int | None] | None] = None
    #: A fixed label space, for a set whose classes are known whatever its files hold: the label of each
    #: class index, as text (MNIST's: ``"0"`` to ``"9"``; label ``LABELS[i]`` is class ``i``), used instead
    #: of encoding the training split's labels, so that a class missing from the files moves no index; a
    #: label outside it is an error naming it. ``None``: the classes are the training split's labels.
    LABELS: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, *, batch_size: int | Literal["auto"] = 64, val_fraction: float = 0.1, seed: int = 0,
                 val_fold: int | None = None, normalize: bool | Literal["series", "sample"] = True,
                 num_workers: int = 0, eval_batch_size: int | None = None, resample: bool = False):
        super().__init__()
        check_batch_size(batch_size)
        check_fraction("val_fraction", val_fraction, zero=True)
        self.val_folds = folds_of(val_fraction, val_fold)
        normalize, resample = normalize_option(normalize), resample_option(resample)  # 1, np.True_ standardized nothing
        num_workers = whole_number(num_workers, "num_workers", "an int >= 0")  # True was one worker
        check_eval_batch_size(eval_batch_size)
        seed = whole_number(seed, "seed", "an int >= 0 (the splits' shuffle)")  # numpy's bare error when a split is carved
        # every subclass's arguments in the checkpoint (datamodule_hyper_parameters): explain, sparsify and a resume
        # read what the model was trained on from it; as plain numbers (a checkpoint holding np.True_ or a Fraction does
        # not load with weights_only=True)
        self.save_hyperparameters()
        record_hparams(self)
        self._batch_size = batch_size if batch_size == "auto" else int(batch_size)  # numpy's ints: plain
        self._eval_batch_size = None if eval_batch_size is None else int(eval_batch_size)
        self.val_fraction = val_fraction
        self.seed = seed
        self.val_fold = val_fold if val_fold is None else int(val_fold)
        self.normalize = normalize
        self.num_workers = num_workers
        self.resample = resample
        self._splits: dict[str, tuple[Tensor, Tensor, Tensor | None]] | None = None
        self._classes: list[str] | None = None
        # how the model's own training data was read, where this module reads other data for it
        # (read_as_trained): {"mean", "std"} of its channels, {"max_len"} of its variable-length series
        self._read_like: dict = {}
        # a file other than the model's training data, scored whole (splits.whole_files); the file's row of each test
        # series where a subclass carved them from it or read it whole (predictions.csv's file_index)
        self._whole_file, self._test_rows, self._model_classes = whole_file(), None, model_label_space()

    # ---------------------------------------------------------------- to implement
    def load(self) -> dict[str, tuple]:
        raise NotImplementedError

    def augmentation(self):
        """A per-sample transform of training inputs (after standardization), or ``None``.

        Applied one sample at a time on the CPU; whole-batch augmentation on the batch's device
        belongs in ``on_after_batch_transfer`` (see :class:`~neuroview.data.CIFAR10DataModule`).
        """
        return None

    # ------------------------------------------------------------ what the model needs
    @property
    def batch_size(self) -> int:
        """Samples per training batch; ``"auto"`` is resolved from the training split (loading it)."""
        if self._batch_size == "auto":
            return auto_batch_size(len(self._prepared_splits()["train"][1]))
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:  # Lightning's batch-size tuner sets it
        check_batch_size(value)  # 0, True or 2.5 failed later in torch's DataLoader, naming no argument
        self._batch_size = value if value == "auto" else int(value)

    @property
    def eval_batch_size(self) -> int:
        return self._eval_batch_size or 4 * self.batch_size

    @eval_batch_size.setter
    def eval_batch_size(self, value: int | None) -> None:
        check_eval_batch_size(value)  # 0 was read as unset
        self._eval_batch_size = None if value is None else int(value)

    @property
    def num_classes(self) -> int:
        return self.FIXED_SHAPE[0] if self.FIXED_SHAPE else len(self.class_names)

    @property
    def class_names(self) -> list[str]:
        self._prepare()
        return list(self._classes)

    @property
    def in_channels(self) -> int:
        if self.FIXED_SHAPE:
            return self.FIXED_SHAPE[1]
        return int(self._prepared_splits()["train"][0].shape[1])

    @property
    def max_len(self) -> int | None:
        """Steps of every sequence batch (the NeuroView-RNN classifier is tied to it); ``None`` for images.

        For variable-length sets, the longest series of the training split the model is fit on:
        the validation split does not count, even where it was carved out of the training data,
        as the model never learns from it. Longer validation and test series are truncated to it. Where this data is
        read as a model's training data (``read_like``), the length its series are padded or stretched to.
        """
        if self.FIXED_SHAPE:  # series of a fixed length read at a model's length (read_like) are served at that length
            steps = self.FIXED_SHAPE[2]
            return self._read_like.get("max_len", steps) if steps is not None else None
        x = self._prepared_splits()["train"][0]
        return int(x.shape[-1]) if x.dim() == 3 else None

    @property
    def variable_length(self) -> bool:
        """Whether batches carry ``lengths`` (a variable-length set, padded rather than resampled)."""
        return self._prepared_splits()["train"][2] is not None

    # -------------------------------------------------------------------- internals
    def _prepared_splits(self):
        self._prepare()
        return self._splits

    def _parts(self) -> dict[str, tuple]:
        """:meth:`load`'s splits, the validation split carved out of the training split where it has none."""
        raw, owner = self.load(), type(self).__name__
        for key in ("train", "test"):
            if key not in raw:
                raise ValueError(f"{owner}.load: expected a {key!r} split, got {sorted(raw)}")
        for key, (x, y) in raw.items():  # a sample without its label shifts every later label onto another sample
            y = np.asarray(y)
            if y.ndim != 1 or len(x) != len(y):
                raise ValueError(f"{owner}.load: expected X and y of the {key} split to hold one label per sample, got "
                                 f"{len(x)} samples in X and y of shape {y.shape}")
            if isinstance(x, (list, tuple)) and len(x):  # before the carving: an index of the split as given
                check_series(x, f"{owner}: X ({key} split)")
            elif len(x):  # X[:, mask] of an all-False mask: no channels (as an .npz's X is checked)
                check_values(np.shape(x), f"{owner}.load: X of the {key} split", "give X at least one channel and one step")
        x_tr, y_tr = raw["train"]
        y_tr = text_labels(np.asarray(y_tr))  # UTF-8 bytes labels ("café") decoded before they are carved (astype: ascii)
        if "val" in raw:
            if self.val_fold is not None:  # the folds would never be dealt: k runs of the one split, without a word
                raise ValueError(f"val_fold: expected None for a dataset with a validation split of its own ({owner}.load "
                                 f"gave one: X_val/y_val in an .npz, val_path of a CSV), got {self.val_fold}; drop that "
                                 "split or val_fold")
            parts = {"train": (x_tr, y_tr), "val": (raw["val"][0], np.asarray(raw["val"][1]))}
            warn_fraction_unused(self, "val_fraction", "validation", getattr(self, "OWN_VAL", f"{owner}.load's 'val'"))
        elif self.val_fraction == 0:
            parts = {"train": (x_tr, y_tr)}
        else:
            keep, held = (stratified_split(y_tr.astype(str), self.val_fraction, self.seed) if self.val_fold is None
                          else stratified_fold(y_tr.astype(str), self.val_folds, self.val_fold, self.seed))
            if not len(held):  # no validation loop would run, and checkpoints chosen by it would never be saved
                fix = "pass val_fraction=0 (no validation split: the final weights are tested) or a validation split"
                raise ValueError(empty_held_out(y_tr.astype(str), "val_fraction", self.val_fraction, "validation", fix)
                                 if self.val_fold is None else
                                 f"val_fold: expected fold {self.val_fold} of {self.val_folds} to hold out series, got none "
                                 f"({len(y_tr)} training series); {fix}")
            parts = {"train": (_take(x_tr, keep), y_tr[keep]), "val": (_take(x_tr, held), y_tr[held])}
        parts["test"] = (raw["test"][0], np.asarray(raw["test"][1]))
        return {n: (x, text_labels(y)) for n, (x, y) in parts.items()}  # bytes labels (b"cat") named as text

    def _prepare(self) -> None:
        if self._splits is not None:
            return
        parts, owner = self._parts(), type(self).__name__
        warn_stored_apart(parts, owner, self.normalize)  # uint8 0..255 beside floats 0..1: one split at another scale
        classes = class_list({n: y for n, (_, y) in parts.items()}, owner, self.LABELS, self._model_classes)
        variable = any(isinstance(x, (list, tuple)) for x, _ in parts.values())
        if not variable and len({np.shape(x)[2:] for x, _ in parts.values()}) > 1 and all(np.ndim(x) == 3 for x, _ in parts.values()):
            # series of one length per split, another in each: stretched (resample) or cut like any variable-length set
            parts, variable = {n: (list(x), y) for n, (x, y) in parts.items()}, True
        like = self._read_like.get("max_len")  # the length the model's training series were padded or stretched to
        # series only ([N, C, T]): images given to a series model are left whole, for the check of what it reads to name
        if like is not None and not variable and np.ndim(parts["train"][0]) == 3 and np.shape(parts["train"][0])[-1] != like:
            parts, variable = {n: (list(x), y) for n, (x, y) in parts.items()}, True
        # only the series the model is fit on: steps past them would meet untrained classifier weights
        max_len = (like or max(a.shape[-1] for a in parts["train"][0])) if variable else None
        per = self.normalize in ("series", "sample")
        splits, truncated, flat, scale = {}, {}, {}, magnitude(parts["train"][0], self.normalize == "sample") if per else None
        for name, (x, y) in parts.items():
            yt = label_indices(y, classes, name, owner, fixed=self.LABELS is not None or (self._model_classes and "model"))
            x = centered_for_float32(x, self.normalize, f"{owner}: X ({name} split)", scale, flat.setdefault(name, []))
            if variable and self.resample:
                xt, lengths = stretch(x, max_len, f"{owner}: X ({name} split)"), None
            elif variable:
                xt, lengths, full = pad(x, max_len, f"{owner}: X ({name} split)")
                if (full > max_len).any():
                    truncated[name] = full[full > max_len]
            else:
                xt, lengths = torch.as_tensor(np.ascontiguousarray(x)), None
                if not (xt.dtype == torch.uint8 or xt.is_floating_point()):
                    xt = xt.float()
                if xt.dtype == torch.float64:
                    xt = xt.float()
            if xt.is_floating_point() and not bool(torch.isfinite(xt).all()):  # one NaN spreads through normalization
                bad = (~torch.isfinite(xt)).flatten(1).any(1).nonzero().flatten()
                raise ValueError(f"{owner}: X: expected finite values, got NaN or inf in {len(bad)} series of "
                                 f"the {name} split (the first: series {int(bad[0])}); fill or drop them (missing values "
                                 "inside a series are not read)")
            if xt.dim() < 3:
                raise ValueError(f"{owner}: expected inputs of shape [N, C, *spatial], got {tuple(xt.shape)} for {name}")
            if name != "train" and xt.shape[1] != splits["train"][0].shape[1]:
                raise ValueError(f"{owner}: X: the {name} split has {xt.shape[1]} channels (shape "
                                 f"{tuple(xt.shape)}), the training split {splits['train'][0].shape[1]}")
            if name != "train" and xt.shape[2:] != splits["train"][0].shape[2:]:  # images: nothing to stretch or cut
                raise ValueError(f"{owner}: X: expected the {name} split's samples of the training split's shape "
                                 f"{tuple(splits['train'][0].shape[1:])}, got {tuple(xt.shape[1:])} (shape {tuple(xt.shape)}); "
                                 "resize them to the training split's")
            if per:  # each series by itself, "no spread" judged by the training split's magnitude in every split
                xt = per_series_normalize(xt, lengths, joint=self.normalize == "sample", scale=scale)
            splits[name] = (xt, yt, lengths)
        warn_truncated(owner, truncated, max_len) if truncated else None
        warn_flat(owner, flat)  # what reads as flat, in every split: one warning (it was one per split)
        self._classes, self._splits, self._variable = classes, splits, variable
        self._mean, self._std = self._channel_stats()

    def _channel_stats(self) -> tuple[Tensor, Tensor]:
        x, _, lengths = self._splits["train"]
        if self.normalize is not True:  # off, or each series normalized by itself already
            return torch.zeros(x.shape[1]), torch.ones(x.shape[1])
        if "mean" in self._read_like:  # the statistics of the training split the model learned from, not this data's
            mean, std = self._read_like["mean"], self._read_like["std"]
            if mean.shape[0] != x.shape[1]:
                raise ValueError(f"{type(self).__name__}: X: {x.shape[1]} channels, the model's training data "
                                 f"{mean.shape[0]}; pass data of the channels the model was trained on")
            return mean, std
        return channel_stats(x, lengths)  # std 1 for a channel constant over the training split

    def _dataset(self, split: str, train: bool = False) -> ArrayDataset:
        x, y, lengths = self._prepared_splits()[split]
        return ArrayDataset(x, y, lengths, self._mean, self._std, self.augmentation() if train else None)

    def _loader(self, split: str, train: bool = False, shard: bool = False) -> DataLoader:
        """The loader of ``split``: the whole split, or, with ``shard`` under a trainer of several processes (DDP),
        this process's share of it, every sample in one share only (Lightning's own DistributedSampler pads the
        shares to one length with repeated samples: one counted twice in val_acc, test_acc and the confusion matrix)."""
        ds = self._dataset(split, train)
        # the trainer's device, when one is attached: pinned CPU batches reach a GPU asynchronously
        device = getattr(getattr(self.trainer, "strategy", None), "root_device", None)
        ranks = getattr(self.trainer, "distributed_sampler_kwargs", None) or {}  # {num_replicas, rank} under DDP
        world = ranks.get("num_replicas", 1)
        sampler = None
        if shard and world > 1:
            if len(ds) < world:  # a process without a batch would leave the others waiting for it
                raise ValueError(f"{type(self).__name__}: trainer.devices: expected at most {len(ds)} processes "
                                 f"(devices x num_nodes) for the {len(ds)} samples of the {split} split (each process "
                                 f"evaluates one at least), got {world}")
            sampler = UnrepeatedDistributedSampler(ds, shuffle=False, **ranks)  # Lightning keeps a DistributedSampler
        return SeededLoader(  # a DataLoader that seeds a per-sample augmentation alike for any num_workers
            ds,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            sampler=sampler,
            # ArrayDataset.__getitems__ gathers each batch whole; its collate passes it through
            collate_fn=passthrough_collate,
            num_workers=self.num_workers,
            # kept (SeededLoader draws the base seed a new iterator draws), but not for a per-sample augment's seed
            persistent_workers=self.num_workers > 0 and ds.augment is None,
            pin_memory=getattr(device, "type", "cpu") == "cuda" and ds.x.device.type == "cpu",
            # A last batch of 1 breaks BatchNorm in training; evaluation keeps every sample. Judged on a process's
            # share where fit's DDP shards it (a share no larger than a batch is the whole epoch, and dropping it trained
            # nothing); on the whole split where it is read whole (finetune_sparse under test): as one process reads it
            drop_last=train and math.ceil(len(ds) / training_shares(self.trainer, world)) > self.batch_size,
        )

    # ---------------------------------------------------------------- Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        self._prepare()

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader | list:
        # no validation split (val_fraction=0): an empty list makes Lightning skip the validation loop
        return self._loader("val", shard=True) if "val" in self._prepared_splits() else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shard=True)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shard=True)

    @property
    def test_rows(self) -> np.ndarray | None:
        """The row of the file (its series in order) each test series is, where the test split was carved from it
        (``test_fraction``) or is all of it; ``None`` where it is a split of its own (its rows, in order)."""
        self._prepare()
        return self._test_rows

    def rows_of(self, dataset) -> np.ndarray | None:
        """:attr:`test_rows` where ``dataset`` is this module's test (predict) split, read from its prepared series
        and of its length; None for any other (``predictions.csv`` of another loader predicted by a trainer still
        holding this module named rows of this module's file)."""
        test = (self._splits or {}).get("test")
        if test is None or getattr(dataset, "y", None) is not test[1] or len(dataset) != len(test[1]):
            return None
        return self._test_rows

    def _whole_test(self, x, y, where: str) -> tuple[tuple, tuple]:
        """``(train, test)``: every series of a file without a test split of its own, both (``whole_files``); said
        once."""
        if not getattr(self, "_said_whole", False):
            rank_zero_info(f"{type(self).__name__}: every series of {where} ({len(y)}) is scored, not a test_fraction "
                           "carve of it: read as new data (series the model was trained on among them score as unseen)")
            self._said_whole = True
        self._test_rows = np.arange(len(y))
        return (x, y), (x, y)

    def split_sizes(self) -> dict[str, int]:
        return {k: len(v[1]) for k, v in self._prepared_splits().items()}

    def state_dict(self) -> dict:  # its class in every checkpoint, not only a LightningCLI run's (read_as.checkpoint_data)
        return {"neuroview_data_class": f"{type(self).__module__}.{type(self).__qualname__}"}

    def __repr__(self) -> str:
        # the batch size as given ('auto' stays 'auto'): a repr must not load the data
        fold = f", val_fold={self.val_fold}" if self.val_fold is not None else ""
        return f"{type(self).__name__}(batch_size={self._batch_size!r}, val_fraction={self.val_fraction}, seed={self.seed}{fold})"
