"""LightningDataModules: offline by default, everything in memory, one batch convention.

Batches are ``(x, y)`` for fixed-size inputs and ``(x, lengths, y)`` for variable-length
sequence sets (JapaneseVowels, PickupGestureWiimoteZ, your own padded arrays), where

- ``x`` is channels-first, as PyTorch's convolutions want it: images ``[B, C, H, W]``, sequences
  ``[B, C, T]`` (the Lightning module transposes sequences to ``[B, T, C]`` for RNNs);
- ``lengths`` ``[B]`` (int64) counts the real steps of each padded sequence; steps past it are 0;
- ``y`` ``[B]`` (int64) are class indices into :attr:`ArrayDataModule.class_names`.

Every module exposes ``num_classes``, ``in_channels`` and ``max_len`` (``None`` for images) as
soon as it is built, so the command line links them into the model and a recipe never repeats
them. Inputs are standardized per channel with statistics of the training split only.

>>> dm = DigitsDataModule(batch_size=32)
>>> dm.num_classes, dm.in_channels, dm.max_len
(10, 1, None)
>>> dm.setup("fit")
>>> x, y = next(iter(dm.train_dataloader()))
>>> x.shape, y.shape
(torch.Size([32, 1, 8, 8]), torch.Size([32]))
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "ArrayDataModule",
    "DigitsDataModule",
    "MNIST1DDataModule",
    "UCRDataModule",
    "MNISTDataModule",
    "CIFAR10DataModule",
    "NpzDataModule",
    "UCR_DATASETS",
    "cache_dir",
]

#: The UCR/UEA classification sets that aeon ships inside its wheel (no download).
UCR_DATASETS = ("GunPoint", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels", "ArrowHead", "OSULeaf",
                "ACSF1", "PickupGestureWiimoteZ", "UnitTest")


def cache_dir() -> Path:
    """Where generated data is cached: ``$NEUROVIEW_CACHE``, else ``$XDG_CACHE_HOME/neuroview``, else ``~/.cache/neuroview``."""
    if os.environ.get("NEUROVIEW_CACHE"):
        return Path(os.environ["NEUROVIEW_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "neuroview"


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    # Several DDP ranks or parallel runs may generate at once: write aside, then rename, so no
    # reader ever sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- datasets
class _ArrayDataset(Dataset):
    """Samples of one split; standardizes (and augments) one sample at a time.

    ``x`` stays in its stored dtype (uint8 for MNIST/CIFAR keeps 50,000 images at 150 MB).
    """

    def __init__(self, x: Tensor, y: Tensor, lengths: Tensor | None, mean: Tensor, std: Tensor, augment=None):
        self.x, self.y, self.lengths = x, y, lengths
        shape = (-1,) + (1,) * (x.dim() - 2)
        self.mean, self.std = mean.view(shape), std.view(shape)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        x = (self.x[i].float() - self.mean) / self.std
        if self.augment is not None:
            x = self.augment(x)
        if self.lengths is None:
            return x, self.y[i]
        n = self.lengths[i]
        x[..., n:] = 0.0  # padded steps stay exactly zero after standardization
        return x, n, self.y[i]


def _flip_crop(pad: int = 4):
    """CIFAR's standard augmentation (random crop of a zero-padded image, horizontal flip) on tensors."""

    def augment(x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        i, j = torch.randint(0, 2 * pad + 1, (2,)).tolist()
        x = x[:, i:i + h, j:j + w]
        return x.flip(-1) if torch.rand(()) < 0.5 else x

    return augment


def _stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)``: about ``fraction`` of every class held out, at least one sample
    of each class kept, the same for the same seed."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n = min(int(round(fraction * len(idx))), len(idx) - 1)
        held.append(idx[:n])
        keep.append(idx[n:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def _encode_labels(y_train: np.ndarray) -> list[str]:
    labels = [str(v) for v in np.unique(y_train)]
    try:  # UCR labels are strings such as "1", "2", "10": order them as numbers
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


# -------------------------------------------------------------------------- base class
class ArrayDataModule(pl.LightningDataModule):
    """A data module over arrays held in memory; subclasses only say how to load them.

    Args:
        batch_size: samples per training batch (evaluation uses ``eval_batch_size``).
        val_fraction: share of the training split held out for validation (stratified, by
            ``seed``) when the dataset has no validation split of its own.
        seed: seed of every split carved here; the same seed gives the same split everywhere.
        normalize: standardize each channel with the mean and std of the training split.
        num_workers: DataLoader workers. 0 is fastest for the small in-memory sets; use a few
            for MNIST/CIFAR with augmentation.
        eval_batch_size: batch size of validation, test and predict (default ``4 * batch_size``).

    Subclasses implement :meth:`load`, returning ``{"train": (X, y), "test": (X, y)}`` and
    optionally ``"val"``; ``X`` is an array ``[N, C, *spatial]`` or a list of ``[C, T_i]`` arrays
    (variable length, padded here), ``y`` any labels (strings are fine).
    """

    def __init__(self, *, batch_size: int = 64, val_fraction: float = 0.1, seed: int = 0, normalize: bool = True,
                 num_workers: int = 0, eval_batch_size: int | None = None):
        super().__init__()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a number in (0, 1), got {val_fraction!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers: expected an int >= 0, got {num_workers!r}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 4 * batch_size
        self.val_fraction = val_fraction
        self.seed = seed
        self.normalize = normalize
        self.num_workers = num_workers
        self._splits: dict[str, tuple[Tensor, Tensor, Tensor | None]] | None = None
        self._classes: list[str] | None = None

    # ---------------------------------------------------------------- to implement
    def load(self) -> dict[str, tuple]:
        raise NotImplementedError

    def augmentation(self):
        """A per-sample transform of training inputs (after standardization), or ``None``."""
        return None

    # ------------------------------------------------------------ what the model needs
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def class_names(self) -> list[str]:
        self._prepare()
        return list(self._classes)

    @property
    def in_channels(self) -> int:
        return int(self._prepared_splits()["train"][0].shape[1])

    @property
    def max_len(self) -> int | None:
        """Longest sequence over all splits (the NeuroView-RNN classifier is tied to it); ``None`` for images."""
        x = self._prepared_splits()["train"][0]
        return int(x.shape[-1]) if x.dim() == 3 else None

    @property
    def variable_length(self) -> bool:
        return self._prepared_splits()["train"][2] is not None

    # -------------------------------------------------------------------- internals
    def _prepared_splits(self):
        self._prepare()
        return self._splits

    def _prepare(self) -> None:
        if self._splits is not None:
            return
        raw = self.load()
        for key in ("train", "test"):
            if key not in raw:
                raise ValueError(f"{type(self).__name__}.load: expected a {key!r} split, got {sorted(raw)}")
        x_tr, y_tr = raw["train"]
        y_tr = np.asarray(y_tr)
        if "val" in raw:
            parts = {"train": (x_tr, y_tr), "val": (raw["val"][0], np.asarray(raw["val"][1]))}
        else:
            keep, held = _stratified_split(y_tr.astype(str), self.val_fraction, self.seed)
            parts = {"train": (_take(x_tr, keep), y_tr[keep]), "val": (_take(x_tr, held), y_tr[held])}
        parts["test"] = (raw["test"][0], np.asarray(raw["test"][1]))

        classes = _encode_labels(parts["train"][1])
        index = {c: i for i, c in enumerate(classes)}
        variable = any(isinstance(x, (list, tuple)) for x, _ in parts.values())
        max_len = max(max(a.shape[-1] for a in x) for x, _ in parts.values()) if variable else None
        splits = {}
        for name, (x, y) in parts.items():
            unknown = sorted({str(v) for v in y} - set(classes))
            if unknown:
                raise ValueError(f"{type(self).__name__}: the {name} split has labels {unknown[:5]} that the training split lacks")
            yt = torch.tensor([index[str(v)] for v in y], dtype=torch.long)
            if variable:
                xt, lengths = _pad(x, max_len)
            else:
                xt, lengths = torch.as_tensor(np.ascontiguousarray(x)), None
                if not (xt.dtype == torch.uint8 or xt.is_floating_point()):
                    xt = xt.float()
                if xt.dtype == torch.float64:
                    xt = xt.float()
            if xt.dim() < 3:
                raise ValueError(f"{type(self).__name__}: expected inputs of shape [N, C, *spatial], got {tuple(xt.shape)} for {name}")
            splits[name] = (xt, yt, lengths)
        self._classes, self._splits = classes, splits
        self._mean, self._std = self._channel_stats()

    def _channel_stats(self) -> tuple[Tensor, Tensor]:
        x, _, lengths = self._splits["train"]
        c = x.shape[1]
        if not self.normalize:
            return torch.zeros(c), torch.ones(c)
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[-1], dtype=torch.long)
        # chunked float64 sums: 50,000 CIFAR images in float64 at once would take 1.2 GB
        total, sq, n = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64), 0.0
        for start in range(0, x.shape[0], 2048):
            xc = x[start:start + 2048].double()
            mask = (torch.arange(x.shape[-1])[None, :] < lengths[start:start + 2048, None]).double()
            mask = mask.view(mask.shape[0], 1, *[1] * (x.dim() - 3), x.shape[-1]).expand_as(xc)
            dims = [0] + list(range(2, x.dim()))
            total += (xc * mask).sum(dims)
            sq += (xc * xc * mask).sum(dims)
            n += mask[:, 0].sum().item()
        mean = total / n
        var = (sq / n - mean * mean).clamp_min(0.0)
        std = var.sqrt().clamp_min(1e-8)
        return mean.float(), std.float()

    def _dataset(self, split: str, train: bool = False) -> _ArrayDataset:
        x, y, lengths = self._prepared_splits()[split]
        return _ArrayDataset(x, y, lengths, self._mean, self._std, self.augmentation() if train else None)

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        return DataLoader(
            self._dataset(split, train),
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            # A last batch of 1 breaks BatchNorm in training; evaluation keeps every sample.
            drop_last=train and len(self._prepared_splits()[split][1]) > self.batch_size,
        )

    # ---------------------------------------------------------------- Lightning hooks
    def setup(self, stage: str | None = None) -> None:
        self._prepare()

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")

    def split_sizes(self) -> dict[str, int]:
        return {k: len(v[1]) for k, v in self._prepared_splits().items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_size={self.batch_size}, val_fraction={self.val_fraction}, seed={self.seed})"


def _take(x, idx: np.ndarray):
    return [x[i] for i in idx] if isinstance(x, (list, tuple)) else x[idx]


def _pad(arrays: Sequence[np.ndarray], max_len: int) -> tuple[Tensor, Tensor]:
    c = arrays[0].shape[0]
    out = torch.zeros(len(arrays), c, max_len)
    lengths = torch.empty(len(arrays), dtype=torch.long)
    for i, a in enumerate(arrays):
        if a.ndim != 2 or a.shape[0] != c:
            raise ValueError(f"X: expected every sequence of shape [{c}, T], got {a.shape} at index {i}")
        out[i, :, : a.shape[1]] = torch.as_tensor(np.asarray(a, dtype=np.float32))
        lengths[i] = a.shape[1]
    return out, lengths


# ------------------------------------------------------------------ shipped / generated
class DigitsDataModule(ArrayDataModule):
    """scikit-learn's 8x8 digits (1,797 images, 10 classes), shipped with scikit-learn.

    The set has no test split: ``test_fraction`` of it is held out (stratified, by ``seed``), then
    ``val_fraction`` of the rest.
    """

    def __init__(self, *, test_fraction: float = 0.2, batch_size: int = 64, val_fraction: float = 0.1, seed: int = 0,
                 normalize: bool = True, num_workers: int = 0, eval_batch_size: int | None = None):
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size)
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
        self.test_fraction = test_fraction

    def load(self) -> dict[str, tuple]:
        from sklearn.datasets import load_digits  # noqa: PLC0415 - sklearn is slow to import

        d = load_digits()
        x = d.images.astype(np.float32)[:, None]
        # a seed of its own so that changing the validation seed never moves test samples
        keep, test = _stratified_split(d.target, self.test_fraction, 12345)
        return {"train": (x[keep], d.target[keep]), "test": (x[test], d.target[test])}

    @property
    def in_channels(self) -> int:
        return 1

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def max_len(self) -> None:
        return None


class MNIST1DDataModule(ArrayDataModule):
    """MNIST-1D (Greydanus 2020): 4,000 + 1,000 sequences of length 40, 10 classes, ``[B, 1, 40]``.

    Generated locally by the ``mnist1d`` package (never fetched) with its default arguments, and
    cached as ``mnist1d.npz`` under :func:`cache_dir` (``cache=False`` regenerates, ~3 s).
    """

    def __init__(self, *, cache: bool = True, batch_size: int = 128, val_fraction: float = 0.1, seed: int = 0,
                 normalize: bool = True, num_workers: int = 0, eval_batch_size: int | None = None):
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size)
        self.cache = cache

    def prepare_data(self) -> None:
        if self.cache:
            self._generate()

    def _generate(self) -> dict[str, np.ndarray]:
        path = cache_dir() / "mnist1d_default_v1.npz"
        if self.cache and path.is_file():
            with np.load(path) as f:
                return {k: f[k] for k in f.files}
        try:
            from mnist1d.data import get_dataset_args, make_dataset  # noqa: PLC0415
        except ImportError as e:
            raise ImportError("MNIST1DDataModule: needs the mnist1d package (pip install 'neuroview[data]')") from e
        d = make_dataset(get_dataset_args())
        arrays = {k: np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test")}
        if self.cache:
            _atomic_save_npz(path, **arrays)
        return arrays

    def load(self) -> dict[str, tuple]:
        d = self._generate()
        return {"train": (d["x"].astype(np.float32)[:, None], d["y"]),
                "test": (d["x_test"].astype(np.float32)[:, None], d["y_test"])}

    @property
    def in_channels(self) -> int:
        return 1

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def max_len(self) -> int:
        return 40


class UCRDataModule(ArrayDataModule):
    """A UCR/UEA classification set shipped inside aeon, by name: ``UCRDataModule("GunPoint")``.

    Sequences come as ``[B, C, T]``; variable-length sets (JapaneseVowels,
    PickupGestureWiimoteZ) are zero-padded to the longest sequence of any split and batched
    as ``(x, lengths, y)``. String labels are encoded in numeric order when they are numbers.

    >>> dm = UCRDataModule("JapaneseVowels")
    >>> dm.num_classes, dm.in_channels, dm.max_len, dm.variable_length
    (9, 12, 29, True)
    """

    def __init__(self, name: str = "GunPoint", *, batch_size: int = 16, val_fraction: float = 0.2, seed: int = 0,
                 normalize: bool = True, num_workers: int = 0, eval_batch_size: int | None = None):
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size)
        if name not in UCR_DATASETS:
            import difflib  # noqa: PLC0415

            close = difflib.get_close_matches(str(name), UCR_DATASETS, n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(f"name: expected one of the sets aeon ships {UCR_DATASETS}, got {name!r}{hint}")
        self.name = name

    def load(self) -> dict[str, tuple]:
        try:
            from aeon.datasets import load_classification  # noqa: PLC0415
        except ImportError as e:
            raise ImportError("UCRDataModule: needs the aeon package (pip install 'neuroview[data]')") from e
        out = {}
        for split in ("train", "test"):
            x, y = load_classification(self.name, split=split)
            out[split] = (x if isinstance(x, list) else np.asarray(x, dtype=np.float32), y)
        return out


# ------------------------------------------------------------------- local file formats
def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as r:  # noqa: S310 - fixed https URLs
            while chunk := r.read(1 << 20):
                f.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    >>> import tempfile, os, struct
    >>> p = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> _ = open(p, "wb").write(struct.pack(">HBBI", 0, 8, 1, 3) + bytes([7, 0, 9]))
    >>> read_idx(p)
    array([7, 0, 9], dtype=uint8)
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"path: {path} is not an IDX file (only {len(data)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if zero != 0 or dtype_code not in dtypes:
        raise ValueError(f"path: {path} is not an IDX file (header {data[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=dtypes[dtype_code], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"path: {path} holds {arr.size} values, its header says shape {shape}")
    return arr.reshape(shape).astype(dtypes[dtype_code].replace(">", "="))


class MNISTDataModule(ArrayDataModule):
    """MNIST from its published IDX files in ``root`` (``*-idx3-ubyte`` or ``*-idx3-ubyte.gz``).

    Looks in ``root`` and in ``root/MNIST/raw`` (torchvision's layout, so an existing download
    is reused). ``download=True`` fetches the four files into ``root`` when they are missing;
    nothing is ever fetched otherwise.
    """

    FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"

    def __init__(self, root: str = "data", *, download: bool = False, batch_size: int = 128, val_fraction: float = 1 / 12,
                 seed: int = 0, normalize: bool = True, num_workers: int = 0, eval_batch_size: int | None = None):
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size)
        self.root = Path(root)
        self.download = download

    def _find(self, stem: str) -> Path | None:
        for d in (self.root, self.root / "MNIST" / "raw"):
            for name in (stem, stem + ".gz"):
                if (d / name).is_file():
                    return d / name
        return None

    def prepare_data(self) -> None:
        missing = [s for pair in self.FILES.values() for s in pair if self._find(s) is None]
        if missing and self.download:
            for stem in missing:
                _download(self.MIRROR + stem + ".gz", self.root / (stem + ".gz"))

    def load(self) -> dict[str, tuple]:
        out = {}
        for split, (images, labels) in self.FILES.items():
            paths = [self._find(images), self._find(labels)]
            if None in paths:
                raise FileNotFoundError(
                    f"root: expected MNIST's {images}[.gz] and {labels}[.gz] in {str(self.root)!r} or its MNIST/raw, "
                    "found neither; pass download=True (--data.download true) to fetch them"
                )
            x, y = read_idx(paths[0]), read_idx(paths[1])
            if x.ndim != 3 or len(x) != len(y):
                raise ValueError(f"root: {paths[0].name} has shape {x.shape} for {len(y)} labels; expected [N, H, W]")
            out[split] = (x[:, None], y)
        return out

    @property
    def in_channels(self) -> int:
        return 1

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def max_len(self) -> None:
        return None


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays, and nothing that can run code.

    CIFAR's batches are pickles: a plain ``pickle.load`` of a file from the internet can execute
    anything. Only the handful of numpy globals that rebuild an array are allowed.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: CIFAR batches hold only numpy arrays and lists")


def load_cifar_batch(path: str | os.PathLike) -> dict:
    """One ``cifar-10-batches-py`` batch as ``{"data": uint8 [N, 3, 32, 32], "labels": int64 [N]}``, unpickled safely."""
    with open(path, "rb") as f:
        d = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    if not isinstance(d, dict):
        raise ValueError(f"path: {path} is not a CIFAR batch (a {type(d).__name__}, expected a dict)")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise ValueError(f"path: {path} is not a CIFAR-10 batch (keys {sorted(d)}, expected 'data' and 'labels')")
    data = np.asarray(d["data"], dtype=np.uint8)
    return {"data": data.reshape(len(data), 3, 32, 32), "labels": np.asarray(d["labels"], dtype=np.int64)}


class CIFAR10DataModule(ArrayDataModule):
    """CIFAR-10 from ``root/cifar-10-batches-py`` (the python pickle batches), unpickled safely.

    ``download=True`` fetches and unpacks the official archive into ``root`` when it is missing;
    nothing is ever fetched otherwise. Training batches get random crops and flips
    (``augment=False`` turns them off).
    """

    URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

    def __init__(self, root: str = "data", *, download: bool = False, augment: bool = True, batch_size: int = 128,
                 val_fraction: float = 0.1, seed: int = 0, normalize: bool = True, num_workers: int = 4,
                 eval_batch_size: int | None = None):
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size)
        self.root = Path(root)
        self.download = download
        self.augment = augment

    @property
    def folder(self) -> Path:
        return self.root / "cifar-10-batches-py"

    def prepare_data(self) -> None:
        if not (self.folder / "test_batch").is_file() and self.download:
            archive = self.root / "cifar-10-python.tar.gz"
            if not archive.is_file():
                _download(self.URL, archive)
            with tarfile.open(archive) as tar:
                tar.extractall(self.root, filter="data")

    def load(self) -> dict[str, tuple]:
        names = [f"data_batch_{i}" for i in range(1, 6)]
        missing = [n for n in names + ["test_batch"] if not (self.folder / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"root: expected CIFAR-10's python batches in {str(self.folder)!r}, missing {missing}; "
                "pass download=True (--data.download true) to fetch them"
            )
        train = [load_cifar_batch(self.folder / n) for n in names]
        test = load_cifar_batch(self.folder / "test_batch")
        x = np.concatenate([b["data"] for b in train])
        y = np.concatenate([b["labels"] for b in train])
        return {"train": (x, y), "test": (test["data"], test["labels"])}

    def augmentation(self):
        return _flip_crop() if self.augment else None

    @property
    def class_names(self) -> list[str]:
        # labels are indices 0..9 in the files; the names come from the published meta file
        return list(self.CLASSES)

    @property
    def in_channels(self) -> int:
        return 3

    @property
    def num_classes(self) -> int:
        return 10

    @property
    def max_len(self) -> None:
        return None


class NpzDataModule(ArrayDataModule):
    """Your own arrays: an ``.npz`` with ``X`` ``[N, C, *spatial]`` and ``y`` ``[N]``.

    Optional keys: ``X_test``/``y_test`` and ``X_val``/``y_val`` (splits of your own), ``lengths``
    (and ``lengths_test``/``lengths_val``) for variable-length sequences padded along the last
    axis. Without a test split, ``test_fraction`` of ``X`` is held out, then ``val_fraction`` of
    the rest, stratified, by ``seed``. ``X`` of shape ``[N, T]`` is read as one channel.
    """

    def __init__(self, path: str, *, test_fraction: float = 0.2, batch_size: int = 64, val_fraction: float = 0.1,
                 seed: int = 0, normalize: bool = True, num_workers: int = 0, eval_batch_size: int | None = None):
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size)
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction: expected a number in (0, 1), got {test_fraction!r}")
        self.path = Path(path)
        self.test_fraction = test_fraction

    def load(self) -> dict[str, tuple]:
        if not self.path.is_file():
            raise FileNotFoundError(f"path: expected an .npz file with arrays X and y, got {str(self.path)!r} (no such file)")
        # allow_pickle=False: an .npz of plain arrays never needs it, and it would run code
        try:
            with np.load(self.path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except Exception as e:  # BadZipFile, a pickled object array, a truncated member, a .npy rather than an .npz
            raise ValueError(f"path: expected an .npz file of plain arrays X and y, got {str(self.path)!r}, which is not one "
                             f"({type(e).__name__}: {str(e).splitlines()[0]})") from e
        if "X" not in arrays or "y" not in arrays:
            raise ValueError(f"path: expected arrays 'X' and 'y' in {self.path.name}, found {sorted(arrays)}")

        def split(suffix: str):
            x, y = arrays["X" + suffix], arrays["y" + suffix]
            if len(x) != len(y):
                raise ValueError(f"path: X{suffix} has {len(x)} samples but y{suffix} has {len(y)}")
            if x.ndim == 2:
                x = x[:, None]
            if "lengths" + suffix in arrays:
                x = [s[:, :n] for s, n in zip(x, arrays["lengths" + suffix].astype(int))]
            return x, y

        out = {"train": split("")}
        if "X_test" in arrays:
            out["test"] = split("_test")
        else:
            x, y = out["train"]
            keep, test = _stratified_split(np.asarray(y).astype(str), self.test_fraction, self.seed + 1)
            out["train"], out["test"] = (_take(x, keep), y[keep]), (_take(x, test), y[test])
        if "X_val" in arrays:
            out["val"] = split("_val")
        return out
