"""NpzDataModule's warning of unread padding under ``padding='pre'`` (probe s24, item 3): recordings of one length
whose sensor holds its first sample for 3 steps (each series its own value, found nowhere else in it) were warned of
as padded at the start, "its padding as data". Padding leaves one padding value (Keras' 0, or the value passed) in
every series it pads; series of one length padded by one number of steps each holding its own first value are a
held first sample, as the 2-step repeat of BasicMotions already was."""

import warnings

import numpy as np
import pytest

from neuroview.data import NpzDataModule


def _warnings_of(path, **kw) -> list[str]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        NpzDataModule(str(path), val_fraction=0, **kw).setup("fit")
    return [str(m.message) for m in w if str(m.message).startswith("padding:")]


def _held(n_series: int = 40, channels: int = 2, steps: int = 60, hold: int = 3, seed: int = 0) -> np.ndarray:
    """Random walks, every channel's first value held over the first ``hold`` steps (its own value in each series)."""
    x = np.random.default_rng(seed).normal(size=(n_series, channels, steps)).cumsum(-1).astype(np.float32) + 5
    x[..., 1:hold] = x[..., :1]
    return x


@pytest.mark.parametrize("hold", [3, 5])
def test_a_first_sample_held_for_several_steps_is_not_warned_of_under_pre(tmp_path, hold):
    x = _held(hold=hold)
    head = (x == x[..., :1]).all(1).argmin(1)  # the steps each series begins flat: exactly `hold`, in every series
    assert (head == hold).all() and len(np.unique(x[:, 0, 0])) == len(x)  # one run length, a value of its own each
    np.savez(tmp_path / "held.npz", X=x, y=np.arange(len(x)) % 2)
    for padding in ("pre", "auto", "post"):
        assert _warnings_of(tmp_path / "held.npz", padding=padding) == [], padding  # before: 'pre' warned


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_one_padding_value_in_every_series_is_still_warned_of_under_pre(tmp_path, value):
    """Series of one length padded at the start by 3 steps of one value (Keras' pad_sequences(maxlen=...), value=)."""
    x = _held(hold=1)
    x[..., :3] = value
    np.savez(tmp_path / "pad.npz", X=x, y=np.arange(len(x)) % 2)
    said = _warnings_of(tmp_path / "pad.npz", padding="pre")
    assert len(said) == 1 and "40 of its 40 series begin flat" in said[0], said


def test_held_first_samples_of_several_lengths_are_still_warned_of_under_pre(tmp_path):
    """Runs of several lengths are what pre-padding of series of several lengths leaves, whatever the value: the
    file cannot tell them apart, and the warning stays."""
    x = _held(hold=3)
    for i in range(0, len(x), 2):
        x[i, :, 3:3 + i % 7] = x[i, :, :1]  # every other series holds its first value 3 to 9 steps
    np.savez(tmp_path / "held.npz", X=x, y=np.arange(len(x)) % 2)
    said = _warnings_of(tmp_path / "held.npz", padding="pre")
    assert len(said) == 1 and "40 of its 40 series begin flat" in said[0], said


def test_a_padding_value_in_one_channel_only_is_no_padding_value(tmp_path):
    """Padding writes its value into every channel (one value a channel): a first step held at one value in channel 0
    but at each series' own value in channel 1 is no padding of one value, and read as held first samples."""
    x = _held(hold=3)
    x[:, 0, :3] = 0.0
    np.savez(tmp_path / "mixed.npz", X=x, y=np.arange(len(x)) % 2)
    assert _warnings_of(tmp_path / "mixed.npz", padding="pre") == []
