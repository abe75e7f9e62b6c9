"""Review s24 (R2 finding 5) of NpzDataModule's unread-padding warning under ``padding='pre'``: the rule asked every
series flat over the same first steps to hold one value, so one real series holding its own first value as long as
the others were zero-padded turned the warning off for the 39 padded ones. Padding leaves its value in the series it
pads: warned where more than half of all series share one flat first value; each series its own value stays silent."""

import warnings

import numpy as np
import pytest

from neuroview.data import NpzDataModule


def _warnings_of(path, **kw) -> list[str]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        NpzDataModule(str(path), val_fraction=0, **kw).setup("fit")
    return [str(m.message) for m in w if str(m.message).startswith("padding:")]


def _walks(n_series: int = 40, hold: int = 3, seed: int = 0) -> np.ndarray:
    """Random walks ``[N, 2, 60]`` far from 0, each channel's own first value held over the first ``hold`` steps."""
    x = np.random.default_rng(seed).normal(size=(n_series, 2, 60)).cumsum(-1).astype(np.float32) + 5
    x[..., 1:hold] = x[..., :1]
    return x


@pytest.mark.parametrize("padded", [39, 21])
def test_zero_padded_series_are_warned_of_beside_a_few_holding_their_own_first_value(tmp_path, padded):
    x = _walks()
    x[:padded, :, :3] = 0.0  # Keras' pad_sequences(padding='pre') by 3 steps; the others hold their own first value
    head = (x == x[..., :1]).all(1).argmin(1)
    assert (head == 3).all() and (x[:, :, 0] == 0).all(1).sum() == padded  # the known answer: one run length
    np.savez(tmp_path / "pad.npz", X=x, y=np.arange(len(x)) % 2)
    said = _warnings_of(tmp_path / "pad.npz", padding="pre")
    assert len(said) == 1 and "40 of its 40 series begin flat" in said[0], said  # before: no warning


@pytest.mark.parametrize("shared", [0, 2, 19])
def test_series_each_holding_their_own_first_value_are_not_warned_of(tmp_path, shared):
    """Held first samples: a value of their own in each series, or shared by fewer than half of them (an integer
    sensor's two series that start at one reading) is no padding value."""
    x = _walks()
    x[:shared, :, :3] = 7.0
    np.savez(tmp_path / "held.npz", X=x, y=np.arange(len(x)) % 2)
    assert _warnings_of(tmp_path / "held.npz", padding="pre") == []

