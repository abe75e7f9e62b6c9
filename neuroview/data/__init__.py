"""LightningDataModules: offline by default, everything in memory, one batch convention.

Batches are ``(x, y)`` for fixed-size inputs and ``(x, lengths, y)`` for variable-length
sequence sets (JapaneseVowels, PickupGestureWiimoteZ, your own padded arrays or rows), where

- ``x`` is channels-first, as PyTorch's convolutions want it: images ``[B, C, H, W]``, sequences
  ``[B, C, T]`` (the Lightning module transposes sequences to ``[B, T, C]`` for RNNs);
- ``lengths`` ``[B]`` (int64) counts the real steps of each padded sequence; steps past it are 0.
  Every split is padded to ``max_len``, the longest series the model is fit on; a longer
  validation or test series is truncated to ``max_len`` steps, with one warning;
- ``y`` ``[B]`` (int64) are class indices into :attr:`ArrayDataModule.class_names`.

Every module exposes ``num_classes``, ``in_channels`` and ``max_len`` (``None`` for images) as
soon as it is built, so the command line links them into the model and a recipe never repeats
them. Inputs are standardized per channel with statistics of the training split only, or
(``normalize="series"``) each series by its own mean and std.

>>> dm = DigitsDataModule(batch_size=32)
>>> dm.num_classes, dm.in_channels, dm.max_len
(10, 1, None)
>>> dm.setup("fit")
>>> x, y = next(iter(dm.train_dataloader()))
>>> x.shape, y.shape
(torch.Size([32, 1, 8, 8]), torch.Size([32]))

Layout: ``arrays`` (the base class, splits), ``labels`` (labels to class indices), ``stats``
(standardization), ``npz`` (:class:`NpzDataModule`),
``delimited`` (:class:`CsvDataModule`: CSV/TSV, one series a row),
``batches`` (one gather per batch; whole-batch crop and flip), ``digits``, ``mnist1d``, ``ucr``,
``images`` (MNIST and CIFAR-10 files), ``cache``, ``read_as`` (a model's reading options carried to
other data). Recipes
and checkpoints name classes as ``neuroview.data.X``: every public name is re-exported here.
May import ``neuroview._io`` and third-party libraries; nothing else from neuroview.
"""

from __future__ import annotations

from .arrays import ArrayDataModule
from .npz import NpzDataModule
from .delimited import CsvDataModule
from .cache import cache_dir
from .digits import DigitsDataModule
from .images import CIFAR10DataModule, MNISTDataModule, load_cifar_batch, read_idx
from .mnist1d import MNIST1DDataModule
from .read_as import read_as_trained
from .ucr import UCR_DATASETS, UCRDataModule

__all__ = [
    "ArrayDataModule",
    "DigitsDataModule",
    "MNIST1DDataModule",
    "UCRDataModule",
    "MNISTDataModule",
    "CIFAR10DataModule",
    "NpzDataModule",
    "CsvDataModule",
    "UCR_DATASETS",
    "cache_dir",
    "read_idx",
    "load_cifar_batch",
    "read_as_trained",
]
