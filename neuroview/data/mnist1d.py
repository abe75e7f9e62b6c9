"""MNIST-1D as a data module: generated locally by the ``mnist1d`` package and cached.

Holds :class:`MNIST1DDataModule`. May import the rest of ``neuroview.data`` and third-party
libraries; nothing else from neuroview.
"""

from __future__ import annotations

import hashlib
import random
import warnings
from typing import Literal

import numpy as np

from .arrays import ArrayDataModule
from .cache import cache_dir, save_npz
from .lengths import resample_option as flag


class MNIST1DDataModule(ArrayDataModule):
    """MNIST-1D (Greydanus 2020): 4,000 + 1,000 sequences of length 40, 10 classes, ``[B, 1, 40]``.

    Generated locally by the ``mnist1d`` package (never fetched) with its default arguments, and
    cached as ``mnist1d_default_v1.npz`` under :func:`cache_dir` (``cache=False`` regenerates, ~3 s).
    ``resample``: read as a model trained on series of another length (``read_as_trained``, ``neuroview test
    --ckpt_path``), stretch them to its length (``True``, as a model trained with ``resample: true`` read its own)
    rather than zero-pad or cut them; the series here are all 40 steps, so by themselves they are never stretched.
    """

    FIXED_SHAPE = (10, 1, 40)
    LABELS = tuple(str(i) for i in range(10))

    def __init__(self, *, cache: bool = True, batch_size: int | Literal["auto"] = 128, val_fraction: float = 0.1,
                 seed: int = 0,
                 val_fold: int | None = None, normalize: bool | Literal["series", "sample"] = True, num_workers: int = 0,
                 eval_batch_size: int | None = None, resample: bool = False):
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed,
                         val_fold=val_fold, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size, resample=resample)
        self.cache = flag(cache, "cache")  # "false" (a JSON --data spec) wrote the cache

    def prepare_data(self) -> None:
        if self.cache:
            self._generate()

    def _generate(self) -> dict[str, np.ndarray]:
        path = cache_dir() / "mnist1d_default_v1.npz"
        if self.cache and path.is_file():
            arrays = _cached(path)
            if (why := _other_set(arrays)) is not None:
                raise ValueError(f"cache: expected the MNIST-1D set of mnist1d's defaults in {path}, got another set "
                                 f"({why}: an older generator or other arguments wrote it); delete it (it is generated "
                                 "again, ~3 s) or pass cache=False")
            return arrays
        if getattr(self, "_uncached", None) is not None:  # generated once already and not cached: not again (~3 s)
            return self._uncached
        arrays = _make()
        if (why := _other_set(arrays)) is not None:
            # not cached: under the default set's name the next run would refuse it, and deleting it would not help
            warnings.warn(f"MNIST1DDataModule: the installed mnist1d package generated another set than the one this "
                          f"project's figures were measured on ({why}); accuracies will not match the README's"
                          f"{' (the set is not cached: it is generated again each run)' if self.cache else ''}",
                          stacklevel=3)
        elif self.cache and _save(path, arrays):
            return arrays
        self._uncached = arrays if self.cache else None  # the cache failed or refused it: kept for this module's reads
        return arrays

    def load(self) -> dict[str, tuple]:
        d = self._generate()
        return {"train": (d["x"].astype(np.float32)[:, None], d["y"]),
                "test": (d["x_test"].astype(np.float32)[:, None], d["y_test"])}


def _make() -> dict[str, np.ndarray]:
    """The set ``make_dataset(get_dataset_args())`` generates, leaving the caller's random generators as they were."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset  # noqa: PLC0415
    except ImportError as e:
        raise ImportError("MNIST1DDataModule: needs the mnist1d package (pip install 'neuroview[data]')") from e
    # make_dataset seeds numpy's and Python's global generators: a seeded script's later draws would depend on
    # whether the cache existed when it ran
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test")}


def _save(path, arrays: dict[str, np.ndarray]) -> bool:
    """Cache ``arrays`` at ``path``; where that cannot be written, warn and go on without a cache (False)."""
    try:
        save_npz(path, **arrays)
        return True
    except OSError as e:  # a read-only home, NEUROVIEW_CACHE naming a file: the set itself is fine
        warnings.warn(f"MNIST1DDataModule: could not cache the set in {path} ({type(e).__name__}: {e}); it is used "
                      "uncached and generated again by each new data module (~3 s): point NEUROVIEW_CACHE at a writable folder, or "
                      "pass cache=False", stacklevel=4)
        return False


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


#: the set ``make_dataset(get_dataset_args())`` of mnist1d 0.0.2.post1 generates, which every MNIST-1D figure here
#: was measured on: each split's shape, the sha256 of its labels (int64, train then test), the sum of |x| of each
#: split and a sum of each split's values weighted by their position (:func:`_weighted_sum`: the sum of |x| is blind
#: to the order of a series' steps and to their signs, so mnist1d's shuffle_seq=True set passed). Floats are
#: compared within 1e-9 of the sum of |x|, so another numpy's or BLAS's last bits do not count (a hash of rounded
#: values would: a value at a rounding edge flips)
SHAPES = {"x": (4000, 40), "y": (4000,), "x_test": (1000, 40), "y_test": (1000,)}
LABELS_SHA256 = "6feec4a017698c7fe237c8854cbd2e338c6dd5c16240f6fa79daefaaa129e169"
ABS_SUMS = {"x": 118338.29510719894, "x_test": 29977.877540866408}
WEIGHTED_SUMS = {"x": -7.105344486405379, "x_test": 11.502057702980522}


def _weighted_sum(x: np.ndarray) -> float:
    """The sum of ``x``'s values, each times a fixed weight in [-0.5, 0.5) given by its flat position."""
    x = np.asarray(x, dtype=np.float64).ravel()
    pos = np.arange(x.size, dtype=np.int64)
    # a multiplicative hash in exact integer arithmetic: the same weights on every platform and numpy
    weights = (pos * 2654435761 // 65536 % 65536) / 65536.0 - 0.5
    return float(x @ weights)


def _other_set(arrays: dict[str, np.ndarray]) -> str | None:
    """How ``arrays`` differ from the pinned set (:data:`SHAPES`, :data:`LABELS_SHA256`, :data:`ABS_SUMS`,
    :data:`WEIGHTED_SUMS`), or None."""
    shapes = {k: tuple(np.shape(arrays[k])) for k in SHAPES}
    if shapes != SHAPES:
        return f"shapes {shapes}, expected {SHAPES}"
    labels = b"".join(np.ascontiguousarray(arrays[k]).astype("<i8").tobytes() for k in ("y", "y_test"))
    if hashlib.sha256(labels).hexdigest() != LABELS_SHA256:
        return "other labels"
    for k, want in ABS_SUMS.items():
        got = float(np.abs(np.asarray(arrays[k], dtype=np.float64)).sum())
        if abs(got - want) > 1e-9 * want:
            return f"other series in {k!r} (sum of |x| {got:.6f}, expected {want:.6f})"
        got, pinned = _weighted_sum(arrays[k]), WEIGHTED_SUMS[k]
        if abs(got - pinned) > 1e-9 * want:
            return (f"other series in {k!r} (position-weighted sum {got:.6f}, expected {pinned:.6f}; the sum of |x| "
                    "matches: its steps in another order or with other signs?)")
    return None
