"""MNIST-1D as a data module: generated locally by the ``mnist1d`` package and cached.

Holds :class:`MNIST1DDataModule`. May import the rest of ``neuroview.data`` and third-party
libraries; nothing else from neuroview.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .arrays import ArrayDataModule
from .cache import cache_dir, save_npz


class MNIST1DDataModule(ArrayDataModule):
    """MNIST-1D (Greydanus 2020): 4,000 + 1,000 sequences of length 40, 10 classes, ``[B, 1, 40]``.

    Generated locally by the ``mnist1d`` package (never fetched) with its default arguments, and
    cached as ``mnist1d_default_v1.npz`` under :func:`cache_dir` (``cache=False`` regenerates, ~3 s).
    """

    FIXED_SHAPE = (10, 1, 40)
    LABELS = tuple(str(i) for i in range(10))

    def __init__(self, *, cache: bool = True, batch_size: int | Literal["auto"] = 128, val_fraction: float = 0.1,
                 seed: int = 0,
                 val_fold: int | None = None, normalize: bool | Literal["series", "sample"] = True, num_workers: int = 0,
                 eval_batch_size: int | None = None):
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed,
                         val_fold=val_fold, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size)
        self.cache = cache

    def prepare_data(self) -> None:
        if self.cache:
            self._generate()

    def _generate(self) -> dict[str, np.ndarray]:
        path = cache_dir() / "mnist1d_default_v1.npz"
        if self.cache and path.is_file():
            return _cached(path)
        try:
            from mnist1d.data import get_dataset_args, make_dataset  # noqa: PLC0415
        except ImportError as e:
            raise ImportError("MNIST1DDataModule: needs the mnist1d package (pip install 'neuroview[data]')") from e
        d = make_dataset(get_dataset_args())
        arrays = {k: np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test")}
        if self.cache:
            save_npz(path, **arrays)
        return arrays

    def load(self) -> dict[str, tuple]:
        d = self._generate()
        return {"train": (d["x"].astype(np.float32)[:, None], d["y"]),
                "test": (d["x_test"].astype(np.float32)[:, None], d["y_test"])}


def _cached(path) -> dict[str, np.ndarray]:
    """The cached set at ``path``; a damaged file (cut short, or not the set) is an error naming it and the fix."""
    keys = ("x", "y", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # noqa: BLE001 - BadZipFile, a truncated member, a pickled array: all one damage
        why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    else:
        if all(k in arrays for k in keys):
            return arrays
        why = f"arrays {sorted(arrays)}, expected {list(keys)}"
    raise ValueError(f"cache: expected the cached MNIST-1D set in {path}, got a damaged file ({why}); delete it (it is "
                     "generated again, ~3 s) or pass cache=False")
