"""The splits of a file reach the model as the training split does (found by probing the data modules with
files whose splits disagree): the same length, the same channels, no padding read as data."""

from __future__ import annotations

import numpy as np
import pytest

from neuroview.data import CsvDataModule, NpzDataModule


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("resample", [True, False])
def test_a_test_split_of_another_fixed_length_is_stretched_or_cut_as_any_other(tmp_path, resample):
    """X [20, 2, 50] and X_test [6, 2, 80]: the test tensor stayed [6, 2, 80] under max_len 50, unsaid."""
    rng = np.random.default_rng(0)
    path = _npz(tmp_path / "a.npz", X=rng.normal(size=(20, 2, 50)), y=np.arange(20) % 2,
                X_test=rng.normal(size=(6, 2, 80)), y_test=np.arange(6) % 2)
    dm = NpzDataModule(path, val_fraction=0.0, resample=resample, normalize=False)
    if resample:
        dm.setup("fit")
        x = next(iter(dm.test_dataloader()))[0]
        assert dm.max_len == 50 and x.shape == (6, 2, 50)
        want = np.stack([[np.interp(np.linspace(0, 79, 50), np.arange(80), s) for s in series]
                         for series in np.load(path)["X_test"]])  # stretched by hand
        np.testing.assert_allclose(x.numpy(), want, atol=1e-4)  # float32 interpolation
    else:
        with pytest.warns(UserWarning, match=r"6 test series of up to 80 steps truncated to 50 steps"):
            dm.setup("fit")
        assert next(iter(dm.test_dataloader()))[0].shape[-1] == 50


def test_a_csv_test_file_of_another_length_is_stretched_too(tmp_path):
    rng = np.random.default_rng(1)
    for name, n, t in (("a_TRAIN.tsv", 20, 50), ("a_TEST.tsv", 6, 80)):
        rows = np.column_stack([np.arange(n) % 2 + 1, rng.normal(size=(n, t))])
        np.savetxt(tmp_path / name, rows, delimiter="\t", fmt="%.6f")
    dm = CsvDataModule(str(tmp_path / "a_TRAIN.tsv"), test_path=str(tmp_path / "a_TEST.tsv"), val_fraction=0.0)
    dm.setup("fit")
    assert next(iter(dm.test_dataloader()))[0].shape == (6, 1, 50)


def test_a_test_split_of_other_channels_is_named(tmp_path):
    """X [20, 3, 40] and X_test [6, 40] (one channel): loaded as in_channels=3, failing later inside the model."""
    rng = np.random.default_rng(2)
    path = _npz(tmp_path / "c.npz", X=rng.normal(size=(20, 3, 40)), y=np.arange(20) % 2,
                X_test=rng.normal(size=(6, 40)), y_test=np.arange(6) % 2)
    with pytest.raises(ValueError, match=r"X: the test split has 1 channels \(shape \(6, 1, 40\)\), the training split 3"):
        NpzDataModule(path, val_fraction=0.0).setup("fit")


def test_padded_training_series_and_a_test_split_without_lengths_is_an_error(tmp_path):
    """lengths for X but none for X_test: the test split's padding was stretched in as data (a flat tail)."""
    rng = np.random.default_rng(3)
    x, xt = rng.normal(size=(20, 1, 40)), rng.normal(size=(6, 1, 40))
    x[:, :, 20:], xt[:, :, 20:] = 0, 0
    path = _npz(tmp_path / "v.npz", X=x, y=np.arange(20) % 2, lengths=np.full(20, 20), X_test=xt, y_test=np.arange(6) % 2)
    with pytest.raises(ValueError, match=r"has lengths for X \(padded series\) but none for X_test; add lengths_test"):
        NpzDataModule(path, val_fraction=0.0).setup("fit")
    ok = _npz(tmp_path / "w.npz", X=x, y=np.arange(20) % 2, lengths=np.full(20, 20), X_test=xt, y_test=np.arange(6) % 2,
              lengths_test=np.full(6, 20))
    dm = NpzDataModule(ok, val_fraction=0.0)
    dm.setup("fit")
    assert next(iter(dm.test_dataloader()))[0].shape == (6, 1, 20)


def test_labels_written_apart_say_so(tmp_path):
    """Float labels in training (1.0) and int labels in test (1): refused as unknown, with no word on why."""
    rng = np.random.default_rng(4)
    path = _npz(tmp_path / "l.npz", X=rng.normal(size=(20, 1, 10)), y=(np.arange(20) % 2 + 1).astype(float),
                X_test=rng.normal(size=(4, 1, 10)), y_test=np.arange(4) % 2 + 1)
    with pytest.raises(ValueError, match=r"test split has labels \['1', '2'\] that the training split lacks \(the "
                                         r"training split writes '1' as '1.0': the same number written apart"):
        NpzDataModule(path, val_fraction=0.0).setup("fit")


def test_integer_labels_one_float_apart_are_two_classes():
    """Ids beyond 2**53 (10**17 + 3 and 10**17 + 7) are one float: they were refused as "the same number written
    apart". Compared exactly, they are two classes, in numeric order; "1" and "1.0" are still one number."""
    from neuroview.data.splits import encode_labels, same_number

    big = np.array([10**17 + 7, 10**17 + 3, 2**53 + 1, 2**53] * 3, dtype=np.int64)
    assert encode_labels(big) == [str(2**53), str(2**53 + 1), str(10**17 + 3), str(10**17 + 7)]
    assert same_number([str(v) for v in np.unique(big)]) is None
    assert same_number(["1", "1.0"]) == ("1", "1.0") and same_number(["1e2", "100"]) == ("1e2", "100")
