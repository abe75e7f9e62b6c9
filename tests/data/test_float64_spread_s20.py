"""Float64 series whose spread is below 1e-8 in absolute terms (readings around 1 that vary by 7e-10) were served as
flat zeros under every ``normalize``, without a word, while the same readings times 1e9 (around 1e9, varying by 0.7)
were z-normalized or refused by name: an absolute 1e-8 judged "no spread". The spread is now judged against the
series' own magnitude (float64: 1e-12 of it), so ``a * x + b`` serves what ``x`` serves; a constant stays zeros."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch

from neuroview.data import ArrayDataModule, NpzDataModule
from neuroview.data.stats import per_series_normalize


def _series(n: int = 12, t: int = 40) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, t))


def _z(x: np.ndarray, joint: bool) -> np.ndarray:  # numpy's float64 z-score, by hand
    axes = (1, 2) if joint else (2,)
    return (x - x.mean(axis=axes, keepdims=True)) / x.std(axis=axes, keepdims=True)


def _served(x: np.ndarray, normalize, tmp_path) -> np.ndarray:
    y = np.arange(len(x)) % 2
    np.savez(tmp_path / "d.npz", X=x, y=y, X_test=x, y_test=y)
    dm = NpzDataModule(str(tmp_path / "d.npz"), val_fraction=0.0, normalize=normalize)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "path: X_test: its series are the training series")  # on purpose
        dm.setup()
    return torch.cat([b[0] for b in dm.test_dataloader()]).numpy()  # as the network reads it


@pytest.mark.parametrize("normalize", ["series", "sample"])
@pytest.mark.parametrize("a, b", [(0.7, 1e9), (7e-10, 1.0), (1e-6, -3.0), (7e-10, 0.0)])
def test_a_float64_series_a_x_plus_b_serves_the_z_score_of_x(tmp_path, normalize, a, b):
    x = _series()
    got = _served(b + a * x, normalize, tmp_path)
    assert np.abs(got - _z(x, normalize == "sample")).max() < 1e-5  # 1 + 7e-10 x: all zeros before


@pytest.mark.parametrize("normalize", ["series", "sample"])
def test_each_series_its_own_scale_and_offset_among_ordinary_ones_and_a_constant(tmp_path, normalize):
    """Judged by the training split's magnitude (3.5), a series 1 + 7e-10 x among ordinary ones read as no spread; a
    constant series beside them still reads as exact zeros, not NaN."""
    x = _series()
    raw = x.copy()
    raw[1] = 1.0 + 7e-10 * x[1]
    raw[2] = 1e9 + 0.7 * x[2]
    raw[3] = 0.1  # constant (0.1 is inexact: its float64 mean may miss it by an ulp)
    got = _served(raw, normalize, tmp_path)
    want = _z(x, normalize == "sample")
    assert (got[3] == 0).all()
    keep = [i for i in range(len(x)) if i != 3]
    assert np.abs(got[keep] - want[keep]).max() < 1e-5


def test_a_variable_length_set_of_tiny_spreads_too():
    x = _series(8, 30)

    class Mine(ArrayDataModule):
        def load(self):
            xs = [1.0 + 7e-10 * s[:, :20 + i] for i, s in enumerate(x)]
            return {"train": (xs, np.arange(8) % 2), "test": (xs, np.arange(8) % 2)}

    dm = Mine(val_fraction=0.0, normalize="series")
    dm.setup()
    xb, _, lengths = dm._splits["test"]
    for i in range(8):
        n = 20 + i
        want = _z(x[i:i + 1, :, :n], False)[0]
        assert int(lengths[i]) == n and np.abs(xb[i, :, :n].numpy() - want).max() < 1e-5


@pytest.mark.parametrize("normalize", [True, False])
def test_read_as_it_is_or_by_channel_a_tiny_spread_around_1_is_refused_by_name(tmp_path, normalize):
    with pytest.raises(ValueError, match=r"X \(train split\): channel 0 holds values around 1 that vary by [67]\.\d+e-10: "
                                         r"read as float32.*loses more than 1% of that spread; subtract the offset"):
        _served(1.0 + 7e-10 * _series(), normalize, tmp_path)


def test_per_series_normalize_takes_one_scale_per_series_in_chunks_too():
    """Over 2048 series the scale went to every chunk whole: one per series could not broadcast."""
    x = torch.as_tensor(_series(2100, 10))
    x[5] *= 1e-9  # no spread judged against 1 (the default rule), a spread where its scale is 0
    scale = torch.ones(2100, 1, 1, dtype=torch.float64)
    scale[5] = 0.0
    got = per_series_normalize(x, scale=scale)
    want = torch.as_tensor(_z(x.numpy(), False)).float()
    assert (got - want).abs().max() < 1e-5
    assert (per_series_normalize(x, scale=torch.ones(1, 1, 1, dtype=torch.float64))[5] - x[5].float()).abs().max() < 1e-6
    assert (per_series_normalize(torch.full((3, 1, 5), 2.5, dtype=torch.float64), scale=torch.zeros(3, 1, 1)) == 0).all()


def test_the_docstring_promises_float_rounding_not_exactness(tmp_path):
    """The ArrayDataModule docstring said ``a * x + b`` gives "exactly" what ``x`` gives; it differs by float32 rounding."""
    doc = " ".join(inspect.getdoc(ArrayDataModule).split())
    assert "gives exactly" not in doc and "up to float32 rounding, about 1e-7 relative" in doc
    x = _series().astype(np.float32)
    a = np.linspace(0.1, 10, len(x), dtype=np.float32)[:, None, None]
    b = np.linspace(-5, 5, len(x), dtype=np.float32)[:, None, None]
    stored = a * x + b  # float32, as a user's file holds it: its own rounding is the data's, not the module's
    got, ref = _served(stored, "series", tmp_path), _z(stored.astype(np.float64), False)
    assert np.abs(got - ref).max() < 1e-6  # about 1e-7 of values up to 3.5
