"""The data a network sees is the data the user gave (a probe's faults, each failing on the code before it): wide
integer and float64-tensor series keep their spread through the float32 cast, options read as they say (``1`` is no
``normalize=True``, ``"false"`` no ``resample=False``), labels are read one way in every file format, arrays of
another byte order read as the machine's, and a series of no steps is refused rather than trained on as zeros."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroview.data import ArrayDataModule, NpzDataModule
from neuroview.data.read_as import read_as_trained


class Arrays(ArrayDataModule):
    def __init__(self, parts, **kw):
        super().__init__(**kw)
        self._parts_given = parts

    def load(self):
        return self._parts_given


def _train_x(dm):
    dm.setup("fit")
    ds = dm._dataset("train")
    return ds.__getitems__(list(range(len(ds))))[0]


def _npz(tmp_path, name="d", **arrays):
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    return path


def _series(n=24, c=2, t=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 100, size=(n, c, t)), np.array([0, 1] * (n // 2))


def test_wide_integer_series_keep_their_spread(tmp_path):
    small, y = _series()
    x = small.astype(np.int64) + 1_700_000_000  # timestamps in seconds: float32 keeps 2 of their 100 values
    dm = NpzDataModule(_npz(tmp_path, X=x, y=y, X_test=x[:6], y_test=y[:6]), normalize="sample", val_fraction=0)
    seen = _train_x(dm)
    # each series' z-score, computed here in float64 from the integers themselves
    ref = small.astype(np.float64)
    ref = (ref - ref.mean(axis=(1, 2), keepdims=True)) / ref.std(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(seen.numpy(), ref, atol=1e-5)
    with pytest.raises(ValueError, match=r"channel 0 holds values around 1\.7e\+09.*subtract the offset"):
        NpzDataModule(_npz(tmp_path, "e", X=x, y=y, X_test=x[:6], y_test=y[:6]), normalize=True, val_fraction=0).setup("fit")


def test_a_float64_tensor_is_judged_as_a_float64_array():
    small, y = _series()
    xt = torch.tensor(small + 1_700_000_000, dtype=torch.float64)
    with pytest.raises(ValueError, match="channel 0 holds values around"):
        Arrays({"train": (xt, y), "test": (xt[:6], y[:6])}, normalize=True, val_fraction=0).setup("fit")
    seen = _train_x(Arrays({"train": (xt, y), "test": (xt[:6], y[:6])}, normalize="sample", val_fraction=0))
    assert len(torch.unique(seen)) > 100  # the 100 values of each series kept apart, not 2


def test_normalize_reads_only_booleans_and_its_two_words(tmp_path):
    small, y = _series()
    x = small.astype(np.float32) + 100.0
    path = _npz(tmp_path, X=x, y=y, X_test=x[:6], y_test=y[:6])
    seen = _train_x(NpzDataModule(path, normalize=np.True_, val_fraction=0))
    assert abs(float(seen.mean())) < 1e-4  # standardized: it read the raw values (mean 99.8) before
    for bad in (1, "true", torch.tensor(True), None):
        with pytest.raises(ValueError, match="normalize: expected true, false, 'series' or 'sample'"):
            NpzDataModule(path, normalize=bad)
    with pytest.raises(ValueError, match="trained_on: normalize: expected"):
        read_as_trained(NpzDataModule(path, normalize="sample"), {"init_args": {"normalize": 1}})
    dm = NpzDataModule(path, normalize="sample")
    read_as_trained(dm, {"init_args": {"normalize": np.True_}})
    assert dm.normalize is True


def test_resample_and_fractions_given_as_text_are_refused_by_name(tmp_path):
    small, y = _series()
    path = _npz(tmp_path, X=small.astype(np.float32), y=y)
    with pytest.raises(ValueError, match="resample: expected true or false, got 'false'"):
        NpzDataModule(path, resample="false")
    with pytest.raises(ValueError, match=r"val_fraction: expected a number in \[0, 1\), got '0.1'"):
        NpzDataModule(path, val_fraction="0.1")
    with pytest.raises(ValueError, match=r"test_fraction: expected a number in \(0, 1\), got None"):
        NpzDataModule(path, test_fraction=None)
    assert NpzDataModule(path, resample=np.False_).resample is False


def test_labels_read_as_a_csv_reads_them(tmp_path):
    small, _ = _series()
    x = small.astype(np.float32)
    y = np.array(["cat", "cat ", "dog", " dog"] * 6)  # a space around a label is no class of its own
    dm = NpzDataModule(_npz(tmp_path, X=x, y=y, X_test=x[:4], y_test=np.array(["cat", "dog", "cat", "dog "])))
    assert dm.class_names == ["cat", "dog"]
    yf = np.array([0.0, 1.0] * 12)
    yf[4] = -0.0  # one class: 0.0 == -0.0 (str() kept them apart and refused the training split's own label)
    dm = NpzDataModule(_npz(tmp_path, "f", X=x, y=yf, X_test=x[:6], y_test=np.abs(yf[:6])), val_fraction=0)
    assert dm.class_names == ["0.0", "1.0"]
    dm.setup("fit")
    assert dm._splits["train"][1][4].item() == 0


@pytest.mark.parametrize("blank", ["", "  ", None])
def test_an_empty_label_is_no_class(tmp_path, blank):
    small, _ = _series()
    y = np.array(["a", "b"] * 12, dtype=object)
    y[2] = blank
    with pytest.raises(ValueError, match=r"y: expected a class label for every series, got an empty label .* at series 2"):
        Arrays({"train": (small.astype(np.float32), y), "test": (small[:4].astype(np.float32), y[:4])},
               val_fraction=0).setup("fit")


def test_other_byte_orders_and_long_doubles_read_as_the_machine_s(tmp_path):
    small, y = _series()
    x = small.astype(np.float32)
    ref = _train_x(NpzDataModule(_npz(tmp_path, "n", X=x, y=y, X_test=x[:6], y_test=y[:6]), val_fraction=0))
    for name, other in (("be4", x.astype(">f4")), ("be8", x.astype(">f8")), ("bei", small.astype(">i4")),
                        ("ld", x.astype(np.longdouble))):
        got = _train_x(NpzDataModule(_npz(tmp_path, name, X=other, y=y, X_test=other[:6], y_test=y[:6]), val_fraction=0))
        torch.testing.assert_close(got, ref, msg=name)


def test_a_series_of_no_steps_is_refused_by_split_and_index():
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(2, 5 + i % 3)) for i in range(12)]
    xs[4] = np.zeros((2, 0))  # padded, it was a sample of zeros, of length 0, trained on with its label
    y = np.array([0, 1] * 6)
    for resample in (False, True):
        dm = Arrays({"train": (xs, y), "test": (xs[:4], y[:4])}, val_fraction=0, resample=resample)
        with pytest.raises(ValueError, match=r"Arrays: X \(train split\): expected every sequence of shape \[2, T\] with "
                                             r"T >= 1, got \(2, 0\) at index 4"):
            dm.setup("fit")
