"""A split stored as integers beside one of floats of a far smaller range (uint8 images 0..255, a test split of floats
0..1) reaches the network at another scale once standardized by the training split: warned, by name."""

import warnings

import numpy as np
import pytest

from neuroview.data import NpzDataModule


def _write(path, x, x_test):
    rng = np.random.default_rng(0)
    y = np.arange(len(x)) % 2
    np.savez(path, X=x, y=y, X_test=x_test, y_test=np.arange(len(x_test)) % 2)
    return rng


def _setup(path):
    dm = NpzDataModule(path, batch_size=4, val_fraction=0)
    dm.setup("fit")
    return dm


def test_uint8_training_beside_float_test_is_warned(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 1, 6, 6)).astype(np.uint8)
    _write(tmp_path / "d.npz", x, (x[:8] / 255.0).astype(np.float32))
    with pytest.warns(UserWarning, match=r"the train split is stored as uint8 \(up to 255\), the test split as float32 \(up to 1\)"):
        _setup(tmp_path / "d.npz")


@pytest.mark.parametrize("scale", [1.0, 1 / 255.0])
def test_splits_of_one_kind_or_a_like_range_pass(tmp_path, scale):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 1, 6, 6)).astype(np.uint8)
    test = x[:8] if scale == 1.0 else (x[:8] * 1.0).astype(np.float32)  # uint8 beside uint8; floats 0..255 beside uint8
    _write(tmp_path / "d.npz", x, test)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _setup(tmp_path / "d.npz")


def test_series_normalized_by_themselves_and_small_integers_beside_floats_pass(tmp_path):
    """Each series scaled by itself is indifferent to the stored scale; integers far below the floats (a test split of
    -1, 0, 1 beside floats up to 100) are not the uint8-beside-0..1 case."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 1, 6, 6)).astype(np.uint8)
    _write(tmp_path / "a.npz", x, (x[:8] / 255.0).astype(np.float32))
    floats = (rng.normal(size=(20, 1, 30)) * 30).astype(np.float32)
    _write(tmp_path / "b.npz", floats, rng.integers(-1, 2, (8, 1, 30)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm = NpzDataModule(tmp_path / "a.npz", batch_size=4, val_fraction=0, normalize="sample")
        dm.setup("fit")
        _setup(tmp_path / "b.npz")
