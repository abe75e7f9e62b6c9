"""Float64 series whose float32 cast would lose their spread (values around 1e9 that vary by 0.7: timestamps,
absolute pressures) were cast first and normalized after: flat zeros, without a word (offset 1e7: z-scores 0.69 off).
Under per-series normalization they are centered in float64 first; where the data is read as it is or by channel
statistics, an error names the series and the fix. Other series are read bit for bit as before."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroview.data import CsvDataModule, NpzDataModule
from neuroview.data.stats import per_series_normalize


def _series(offset: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 6, 50)
    return np.stack([np.sin(t + i) * (1 + i % 3) for i in range(12)])[:, None] + offset, np.arange(12) % 2


def _z(x: np.ndarray, joint: bool) -> np.ndarray:  # numpy's float64 z-score, by hand
    axes = (1, 2) if joint else (2,)
    return (x - x.mean(axis=axes, keepdims=True)) / x.std(axis=axes, keepdims=True)


@pytest.mark.parametrize("normalize", ["series", "sample"])
@pytest.mark.parametrize("offset", [1e5, 1e7, 1e9])
def test_per_series_normalization_of_large_offsets_is_the_float64_z_score(tmp_path, offset, normalize):
    x, y = _series(offset)
    np.savez(tmp_path / "d.npz", X=x, y=y, X_test=x, y_test=y)
    dm = NpzDataModule(str(tmp_path / "d.npz"), val_fraction=0.0, normalize=normalize)
    dm.setup()
    got = dm._dataset("test").x.numpy()
    assert np.abs(got - _z(x, normalize == "sample")).max() < 1e-6


def test_a_csv_of_large_offsets_too(tmp_path):
    x, y = _series(1e9)
    (tmp_path / "d_TRAIN.tsv").write_text("".join("\t".join([str(c)] + [repr(float(v)) for v in s[0]]) + "\n" for c, s in zip(y, x)))
    dm = CsvDataModule(str(tmp_path / "d_TRAIN.tsv"), val_fraction=0.0, test_fraction=0.25, normalize="series")
    dm.setup()
    got = dm._dataset("train").x.numpy()
    assert np.abs(got).max() > 1 and np.abs(got.std(-1) - 1).max() < 1e-5  # z-scores, not flat zeros


@pytest.mark.parametrize("normalize", [True, False])
def test_read_as_it_is_or_by_channel_the_loss_is_an_error_naming_the_fix(tmp_path, normalize):
    x, y = _series(1e9)
    np.savez(tmp_path / "d.npz", X=x, y=y, X_test=x, y_test=y)
    with pytest.raises(ValueError, match=r"X \(train split\): channel 0 holds values around 1e\+09 that vary by .*loses "
                                         r"more than 1% of that spread; subtract the offset .*normalize='series'"):
        NpzDataModule(str(tmp_path / "d.npz"), val_fraction=0.0, normalize=normalize).setup()


def test_series_the_cast_keeps_are_read_bit_for_bit_as_before(tmp_path):
    x, y = _series(100.0)  # an offset of 100 spreads: float32 keeps it
    np.savez(tmp_path / "d.npz", X=x, y=y, X_test=x, y_test=y)
    dm = NpzDataModule(str(tmp_path / "d.npz"), val_fraction=0.0, normalize="series")
    dm.setup()
    assert torch.equal(dm._dataset("test").x, per_series_normalize(torch.as_tensor(x).float()))


@pytest.mark.parametrize("scale", [1e-9, 1e-21])
@pytest.mark.parametrize("normalize", ["series", "sample", True])
def test_series_in_small_units_are_scaled_as_any_other(tmp_path, scale, normalize):
    """A std below 1e-8 was taken as no spread: series of 1e-9 volts or 1e-21 strains were only shifted, read as
    zeros (z-scores 1.42 off), across a 1.4x change of gain. A constant series still reads as zeros."""
    x, y = _series(0.0)
    x = x * scale
    x[0] = 5 * scale  # a constant series
    np.savez(tmp_path / "d.npz", X=x, y=y, X_test=x, y_test=y)
    dm = NpzDataModule(str(tmp_path / "d.npz"), val_fraction=0.0, normalize=normalize)
    dm.setup()
    got = torch.cat([b[0] for b in dm.test_dataloader()]).numpy()  # as the network reads it (channel stats applied)
    if normalize is True:  # the training split's channel statistics, by hand
        want = (x - x.mean()) / x.std()
    else:
        want = _z(x[1:], normalize == "sample")
        got, want = (got[1:], want) if not np.abs(got[0]).max() else (None, None)
    assert got is not None and np.abs(got - want).max() < 1e-5


def test_channel_statistics_of_large_offsets_are_taken_about_the_mean():
    from neuroview.data.stats import channel_stats

    rng = np.random.default_rng(0)
    x = (1.6e7 + 2.0 * rng.normal(size=(40, 2, 30))).astype(np.float32)
    mean, std = channel_stats(torch.as_tensor(x))
    want = x.astype(np.float64).std(axis=(0, 2))  # numpy's two-pass std of the same float32 values
    assert np.abs(std.numpy() / want - 1).max() < 1e-6  # E[x^2] - E[x]^2 was 0.5% off


def test_values_beyond_float32_s_range_are_named_as_such(tmp_path):
    """Finite float64 values of 1e39 overflowed the cast and were reported as "NaN or inf" in a file that holds none."""
    x, y = _series(0.0)
    np.savez(tmp_path / "d.npz", X=x * 1e39, y=y, X_test=x, y_test=y)
    with pytest.raises(ValueError, match=r"series 0 holds values up to .*e\+39, beyond float32's range \(3.4e38\)"):
        NpzDataModule(str(tmp_path / "d.npz"), val_fraction=0.0, normalize="series").setup()


@pytest.mark.parametrize("normalize", [True, False])
def test_one_nearly_flat_series_among_others_is_read(tmp_path, normalize):
    """Measured per series, one series of 1.0 +- 1e-7 refused a float64 file that loads as float32 (the review): the
    network reads the channel's spread, not the series' own."""
    x, y = _series(0.0)
    x[3] = 1.0 + 1e-7 * np.sin(np.arange(50))
    np.savez(tmp_path / "d.npz", X=x, y=y, X_test=x, y_test=y)
    dm = NpzDataModule(str(tmp_path / "d.npz"), val_fraction=0.0, normalize=normalize)
    dm.setup()
    assert np.allclose(dm._dataset("test").x.numpy(), x.astype(np.float32))


def test_an_aeon_set_of_large_offsets_is_centered_too(monkeypatch):
    """UCRDataModule cast aeon's float64 arrays to float32 on loading, before the centering saw them (the review)."""
    import aeon.datasets

    x, y = _series(1e9)
    monkeypatch.setattr(aeon.datasets, "load_classification", lambda name, split: (x, y.astype(str)))
    from neuroview.data import UCRDataModule

    dm = UCRDataModule("GunPoint", normalize="series", val_fraction=0.0)
    dm.setup()
    assert np.abs(dm._dataset("test").x.numpy() - _z(x, False)).max() < 1e-6


def test_the_rounding_residue_of_a_zero_among_ordinary_series_reads_as_zeros():
    """Judged against each series' own magnitude, the float64 residue of a detrended ramp (1e-14) was blown up to unit
    noise (the review); against its channel's magnitude over the set it is no spread, as before."""
    rng = np.random.default_rng(0)
    t = np.arange(50.0)
    x = rng.normal(size=(20, 1, 50))
    ramp = 3.7 * t + 2.0
    x[0, 0] = ramp - np.polyval(np.polyfit(t, ramp, 1), t)
    assert 0 < np.abs(x[0]).max() < 1e-12
    got = per_series_normalize(torch.as_tensor(x))
    assert got[0].abs().max() < 1e-12 and abs(float(got[1].std()) - 1) < 0.05  # only shifted: its residue stays one


def test_series_of_no_channel_axis_still_meet_the_named_refusal():
    # the float64 check concatenated them first and numpy's bare error came out (the second review)
    from neuroview.data.arrays import ArrayDataModule

    rng = np.random.default_rng(0)

    class Mine(ArrayDataModule):
        def load(self):
            xs = [rng.normal(size=int(n)) for n in rng.integers(20, 40, 12)]  # [T_i] each, no channel axis
            return {"train": (xs, np.arange(12) % 2), "test": (xs[:4], np.arange(4) % 2)}

    with pytest.raises(ValueError, match=r"Mine: X \(train split\): expected every sequence of shape \[C, T\] \(channels, steps\), got \(\d+,\) at index 0; give a univariate series one channel"):
        Mine(normalize=True, val_fraction=0.0).setup()


def test_a_series_reads_alike_in_every_split():
    """Judged by the magnitude of the split it is in, a residue read as zeros in training and as unit noise in a test
    split of its own (the second review): the training split's magnitude judges every split."""
    import tempfile
    from pathlib import Path

    rng = np.random.default_rng(0)
    t = np.arange(50.0)
    ramp = 3.7 * t + 2.0
    residue = ramp - np.polyval(np.polyfit(t, ramp, 1), t)
    x, y = rng.normal(size=(20, 1, 50)), np.arange(20) % 2
    x[0, 0] = residue
    test = np.stack([residue, residue + 0.0])[:, None]
    path = Path(tempfile.mkdtemp()) / "d.npz"
    np.savez(path, X=x, y=y, X_test=test, y_test=np.array([0, 0]))
    dm = NpzDataModule(str(path), val_fraction=0.0, normalize="series")
    dm.setup()
    assert dm._dataset("train").x[0].abs().max() < 1e-12 and dm._dataset("test").x.abs().max() < 1e-12
