"""The image sets read from their published files: MNIST (IDX) and CIFAR-10 (python pickles).

Holds the readers of both formats (:func:`read_idx`; :func:`load_cifar_batch` with an unpickler
that rebuilds numpy arrays and nothing else), the downloader behind ``download=True``,
:class:`MNISTDataModule` and :class:`CIFAR10DataModule` (whose crop-and-flip runs on whole
batches on their device, see ``neuroview.data.batches``). May import
the rest of ``neuroview.data`` and third-party libraries; nothing else from neuroview.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
import tempfile
import urllib.request
import warnings
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from .arrays import ArrayDataModule
from .batches import ArrayDataset, random_crop_flip
from .lengths import resample_option as flag  # a flag's check: bool("false") is True


def _download(url: str, dest: Path) -> None:
    """Fetch ``url`` to ``dest``, streamed to a file aside and renamed into place when complete.

    Not :func:`neuroview._io.atomic_write`: that takes the whole content in memory, and CIFAR's
    archive is 170 MB; here it goes to disk a megabyte at a time.
    """
    try:
        _fetch(url, dest)
    except OSError as e:  # urllib's URLError says neither what nor where: no network, a proxy, a full disk
        raise OSError(f"download: could not fetch {url} into {str(dest.parent)!r} ({type(e).__name__}: {e}); check the "
                      f"network, or fetch it yourself and place it in that folder as {dest.name}") from e


def _fetch(url: str, dest: Path) -> None:
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


def _folder(root) -> str:
    """``root`` absolute, as the saved hyper-parameters hold it: the same folder from any working folder, ``~/x``
    expanded (taken literally, files there were called missing, and download=True wrote into ./~/x)."""
    if not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"root: expected a folder path, got {root!r}")
    return os.path.abspath(os.path.expanduser(os.fspath(root)))


# ------------------------------------------------------------------------------ MNIST
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    >>> import tempfile, os, struct
    >>> p = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> _ = open(p, "wb").write(struct.pack(">HBBI", 0, 8, 1, 3) + bytes([7, 0, 9]))
    >>> read_idx(p)
    array([7, 0, 9], dtype=uint8)
    """
    path = Path(path)
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                data = f.read()
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:  # not gzipped at all, or cut short
            raise ValueError(f"path: expected a gzip-compressed IDX file (its name ends in .gz), got {path}, which does not "
                             f"unpack ({type(e).__name__}: {e}); download it again, or drop the .gz from its name if it is "
                             "an IDX file as it is") from None
    else:
        data = path.read_bytes()
    if len(data) < 4:
        raise ValueError(f"path: {path} is not an IDX file (only {len(data)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if zero != 0 or dtype_code not in dtypes:
        raise ValueError(f"path: {path} is not an IDX file (header {data[:4].hex()})")
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"path: expected an IDX header of {4 + 4 * ndim} bytes ({ndim} dimensions, 4 bytes each, after 4), "
                         f"got {path} of {len(data)} bytes: the file is cut short; download it again")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=dtypes[dtype_code], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"path: {path} holds {arr.size} values, its header says shape {shape}")
    return arr.reshape(shape).astype(dtypes[dtype_code].replace(">", "="))


class MNISTDataModule(ArrayDataModule):
    """MNIST from its published IDX files in ``root`` (``*-idx3-ubyte`` or ``*-idx3-ubyte.gz``).

    Looks in ``root`` and in ``root/MNIST/raw`` (torchvision's layout, so an existing download
    is reused). ``download=True`` fetches the four files into ``root`` when they are missing;
    nothing is ever fetched otherwise. ``root`` may start with ``~``. ``resample``: as in
    :class:`~neuroview.data.ArrayDataModule` (images are never stretched); taken so that a checkpoint's record of the
    module's arguments rebuilds it.
    """

    FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    FIXED_SHAPE = (10, 1, None)
    LABELS = tuple(str(i) for i in range(10))  # labels 1 to 26 (EMNIST letters) are refused, by name

    def __init__(self, root: str = "data", *, download: bool = False, batch_size: int | Literal["auto"] = 128,
                 val_fraction: float = 1 / 12, seed: int = 0,
                 val_fold: int | None = None, normalize: bool | Literal["series", "sample"] = True,
                 num_workers: int = 0, eval_batch_size: int | None = None, resample: bool = False):
        root = _folder(root)
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed,
                         val_fold=val_fold, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size, resample=resample)
        self.root = Path(root)
        self.download = flag(download, "download")  # "false" (a JSON --data spec) fetched the files

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
        found = {stem: self._find(stem) for pair in self.FILES.values() for stem in pair}
        if missing := [stem for stem, p in found.items() if p is None]:
            have = [p.name for p in found.values() if p is not None]
            raise FileNotFoundError(
                f"root: expected MNIST's four IDX files (each maybe .gz) in {str(self.root)!r} or its MNIST/raw, "
                f"missing {missing}, found {have or 'none'}; "
                + ("pass download=True (--data.download true) to fetch them" if not self.download else
                   "download=True fetches them in prepare_data(), which a Trainer calls before setup: call it first")
                + ", or place them there"
            )
        out = {}
        for split, (images, labels) in self.FILES.items():
            x, y = read_idx(found[images]), read_idx(found[labels])
            if x.ndim != 3 or len(x) != len(y):
                raise ValueError(f"root: {found[images].name} has shape {x.shape} for {len(y)} labels; expected [N, H, W]")
            out[split] = (x[:, None], y)
        return out


# --------------------------------------------------------------------------- CIFAR-10
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
    """One ``cifar-10-batches-py`` batch as ``{"data": uint8 [N, 3, 32, 32], "labels": int64 [N]}``, unpickled safely.

    ``data`` must be ``[N, 3072]`` (an image's red, green, then blue planes a row) with values 0 to 255 and one
    label per row: anything else is an error naming the file (reshaped, or cast to uint8, it would scramble
    the images, wrap their values, or pair every later image with another's label)."""
    with open(path, "rb") as f:
        d = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    if not isinstance(d, dict):
        raise ValueError(f"path: {path} is not a CIFAR batch (a {type(d).__name__}, expected a dict)")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise ValueError(f"path: {path} is not a CIFAR-10 batch (keys {sorted(d)}, expected 'data' and 'labels')")
    data, labels = np.asarray(d["data"]), np.asarray(d["labels"])
    if data.ndim != 2 or data.shape[1] != 3072:  # reshaped to [N, 3, 32, 32], an [N, 32, 32, 3] array is scrambled
        raise ValueError(f"path: expected CIFAR-10's 'data' of shape [N, 3072] in {path} (each row an image's 1024 red, "
                         f"then green, then blue values), got shape {data.shape}; an array [N, 32, 32, 3] is stored as "
                         "x.transpose(0, 3, 1, 2).reshape(len(x), 3072)")
    if labels.ndim != 1 or len(labels) != len(data):  # one short: every later image gets another's label
        raise ValueError(f"path: expected one label per image in {path}, got {len(data)} images and labels of shape "
                         f"{labels.shape}")
    if data.dtype != np.uint8 and data.size and not (np.issubdtype(data.dtype, np.number) and data.min() >= 0
                                                     and data.max() <= 255 and (data == np.round(data)).all()):
        raise ValueError(f"path: expected pixel values 0 to 255 in {path} (whole numbers, as uint8), got {data.dtype} "
                         f"values{f' from {data.min()} to {data.max()}' if np.issubdtype(data.dtype, np.number) else ''}")
    if labels.size and not (np.issubdtype(labels.dtype, np.number) and (labels == np.round(labels)).all()):
        raise ValueError(f"path: expected whole-number labels in {path}, got {labels.dtype} labels")
    data = data.astype(np.uint8)
    return {"data": data.reshape(len(data), 3, 32, 32), "labels": labels.astype(np.int64)}


class CIFAR10DataModule(ArrayDataModule):
    """CIFAR-10 from ``root/cifar-10-batches-py`` (the python pickle batches), unpickled safely.

    ``download=True`` fetches and unpacks the official archive into ``root`` when it is missing;
    nothing is ever fetched otherwise. ``root`` may start with ``~``; ``resample`` as in :class:`MNISTDataModule`.

    Built to keep a GPU busy: each batch is one gather from the uint8 arrays in memory (no
    per-sample reads, no collate, so ``num_workers=0`` is the right default), and training
    batches get CIFAR's random crop (4-pixel zero padding, offsets uniform in ``[0, 8]``) and
    horizontal flip (probability 1/2), independently per sample, applied to the whole batch on
    its device in :meth:`on_after_batch_transfer`, only while the trainer trains
    (``augment=False`` turns them off; outside a Trainer, :meth:`augment_batch` does the same).

    ``on_device=True`` (default False) holds the splits themselves on the trainer's GPU (180 MB
    as uint8), so batches never cross the PCIe bus; it needs ``num_workers=0``, and where the
    data would take more than half the free GPU memory it warns and keeps them in CPU memory.
    On a CPU trainer it changes nothing.
    """

    URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    FIXED_SHAPE = (10, 3, None)
    LABELS = tuple(str(i) for i in range(10))  # label i is CLASSES[i], whichever classes the files hold
    PAD = 4  # CIFAR's standard crop padding

    def __init__(self, root: str = "data", *, download: bool = False, augment: bool = True, on_device: bool = False,
                 batch_size: int | Literal["auto"] = 128, val_fraction: float = 0.1, seed: int = 0, val_fold: int | None = None,
                 normalize: bool | Literal["series", "sample"] = True, num_workers: int = 0,
                 eval_batch_size: int | None = None, resample: bool = False):
        root = _folder(root)
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed,
                         val_fold=val_fold, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size, resample=resample)
        # the text "false" (a JSON --data spec, an environment variable) read as true: CIFAR augmented when told not to
        self.download, self.augment = flag(download, "download"), flag(augment, "augment")
        self.on_device = flag(on_device, "on_device")
        if self.on_device and num_workers:
            raise ValueError(f"num_workers: on_device=True reads batches from GPU memory in the main process; "
                             f"expected num_workers=0, got {num_workers}")
        self.root = Path(root)
        self._device_splits: dict[tuple[str, str], ArrayDataset] = {}
        self._fits: dict[str, bool] = {}  # per device, decided once: the answer must not change once copied

    @property
    def folder(self) -> Path:
        return self.root / "cifar-10-batches-py"

    BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)

    @property
    def archive(self) -> Path:
        return self.root / "cifar-10-python.tar.gz"

    def _missing(self) -> list[str]:
        return [n for n in self.BATCHES if not (self.folder / n).is_file()]

    def prepare_data(self) -> None:
        # all six batches: a folder missing one (an unpacking cut short) is unpacked again
        if self._missing() and self.download:
            if not self.archive.is_file():
                _download(self.URL, self.archive)
            try:
                with tarfile.open(self.archive) as tar:
                    tar.extractall(self.root, filter="data")
            except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:  # cut short, or not the archive
                why = " ".join(str(e).split())[:240]  # tarfile's ReadError spans lines, one per method tried
                raise ValueError(f"root: expected CIFAR-10's archive ({self.URL}) in {self.archive}, got a file that "
                                 f"does not unpack ({type(e).__name__}: {why}): cut short or damaged; delete it to "
                                 "download it again") from None

    def load(self) -> dict[str, tuple]:
        if missing := self._missing():
            if not self.download:
                fix = "pass download=True (--data.download true) to fetch them"
            elif self.archive.is_file():
                fix = (f"download=True unpacks {self.archive} in prepare_data(), which a Trainer calls before setup; "
                       "if it ran, that archive does not hold them: delete it to download it again")
            else:
                fix = "download=True fetches them in prepare_data(), which a Trainer calls before setup: call it first"
            raise FileNotFoundError(
                f"root: expected CIFAR-10's python batches in {str(self.folder)!r}, missing {missing}; {fix}")
        names = list(self.BATCHES[:5])
        train = [load_cifar_batch(self.folder / n) for n in names]
        test = load_cifar_batch(self.folder / "test_batch")
        x = np.concatenate([b["data"] for b in train])
        y = np.concatenate([b["labels"] for b in train])
        return {"train": (x, y), "test": (test["data"], test["labels"])}

    # ------------------------------------------------------------- whole-batch augmentation
    def augment_batch(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Random crop and flip of a batch of standardized images ``[B, 3, 32, 32]``, on its device."""
        return random_crop_flip(x, self.PAD, generator)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        # training batches only (validation, test and predict see the images as they are)
        if self.augment and self.trainer is not None and self.trainer.training:
            x, y = batch
            batch = [self.augment_batch(x), y]
        return batch

    # --------------------------------------------------------------------- on the GPU
    def _dataset(self, split: str, train: bool = False) -> ArrayDataset:
        ds = super()._dataset(split, train)
        device = self._data_device()
        if device is None:
            return ds
        key = (split, str(device))
        if key not in self._device_splits:  # copied once per split, not once per dataloader call
            self._device_splits[key] = ds.to(device)
        return self._device_splits[key]

    def _data_device(self) -> torch.device | None:
        """The trainer's GPU when ``on_device`` is set and the splits fit there, else ``None``."""
        device = getattr(getattr(self.trainer, "strategy", None), "root_device", None) if self.on_device else None
        if device is None or device.type != "cuda":
            return None
        if str(device) not in self._fits:
            need = sum(t.nelement() * t.element_size() for split in self._prepared_splits().values() for t in split
                       if t is not None)
            free, _ = torch.cuda.mem_get_info(device)
            # leave the model, its activations and the optimizer the larger half
            self._fits[str(device)] = need <= free // 2
            if need > free // 2:
                warnings.warn(f"on_device: CIFAR-10 takes {need / 2**20:.0f} MiB, more than half of the {free / 2**20:.0f} "
                              f"MiB free on {device}; keeping it in CPU memory", UserWarning, stacklevel=3)
        return device if self._fits[str(device)] else None

    @property
    def class_names(self) -> list[str]:
        # labels are indices 0..9 in the files; the names come from the published meta file
        return list(self.CLASSES)
