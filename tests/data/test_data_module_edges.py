"""The data a network sees is the data the user gave (a probe's faults, each failing on the code before it): wide
integer and float64-tensor series keep their spread through the float32 cast, options read as they say (``1`` is no
``normalize=True``, ``"false"`` no ``resample=False``), labels are read one way in every file format, arrays of
another byte order read as the machine's, and a series of no steps is refused rather than trained on as zeros."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

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
    for true in (np.True_, 1):
        seen = _train_x(NpzDataModule(path, normalize=true, val_fraction=0))
        assert abs(float(seen.mean())) < 1e-4  # standardized: it read the raw values (mean 99.8) before
    for bad in (2, "true", torch.tensor(True), None):
        with pytest.raises(ValueError, match="normalize: expected true, false, 'series' or 'sample'"):
            NpzDataModule(path, normalize=bad)
    with pytest.raises(ValueError, match="trained_on: normalize: expected"):
        read_as_trained(NpzDataModule(path, normalize="sample"), {"init_args": {"normalize": 2}})
    for true in (np.True_, 1):
        dm = NpzDataModule(path, normalize="sample")
        read_as_trained(dm, {"init_args": {"normalize": true}})
        assert dm.normalize is True


def test_resample_and_fractions_given_as_text_are_refused_by_name(tmp_path):
    small, y = _series()
    path = _npz(tmp_path, X=small.astype(np.float32), y=y)
    with pytest.raises(ValueError, match=r"resample: expected a bool \(true or false, not a string\), got the str 'false'"):
        NpzDataModule(path, resample="false")
    with pytest.raises(ValueError, match=r"val_fraction: expected a number in \[0, 1\), got '0.1'"):
        NpzDataModule(path, val_fraction="0.1")
    with pytest.raises(ValueError, match=r"test_fraction: expected a number in \(0, 1\), got None"):
        NpzDataModule(path, test_fraction=None)
    assert NpzDataModule(path, resample=np.False_).resample is False and NpzDataModule(path, resample=1).resample is True
    for number in (Fraction(1, 10), Decimal("0.1"), np.array(0.1)):  # numbers all (the review: refused at first)
        assert NpzDataModule(path, val_fraction=number).split_sizes()["val"] == 2


def test_labels_one_way_or_refused(tmp_path):
    small, _ = _series()
    x = small.astype(np.float32)
    y = np.array(["cat", "cat ", "dog", "dog"] * 6)  # two classes in an .npz, one in a CSV (its reader strips them)
    with pytest.raises(ValueError, match="got 'cat' and 'cat ' in the training split: the same label with other whitespace"):
        NpzDataModule(_npz(tmp_path, X=x, y=y, X_test=x[:4], y_test=y[:4])).class_names
    y = np.array(["  dog", "cat"] * 12)  # padded labels keep their numbering (a model trained on them reads them so)
    dm = NpzDataModule(_npz(tmp_path, "p", X=x, y=y, X_test=x[:4], y_test=np.array(["cat", "dog", "cat", "cat"])))
    with pytest.raises(ValueError, match="writes 'dog' as '  dog': the same label with other whitespace around it"):
        dm.setup("fit")
    for yf in (np.array([0.0, 1.0] * 12), np.array([0.0, 1.0] * 12, dtype=object)):
        yf[4] = -0.0  # one class: 0.0 == -0.0 (str() kept them apart and refused the training split's own label)
        dm = Arrays({"train": (x, yf), "test": (x[:6], np.abs(yf[:6].astype(float)))}, val_fraction=0)
        assert dm.class_names == ["0.0", "1.0"]
        dm.setup("fit")
        assert dm._splits["train"][1][4].item() == 0


def test_bytes_in_an_object_array_are_read_as_text():
    small, _ = _series()
    y = np.array([b"cat", "dog"] * 12, dtype=object)  # a mixed column: bytes and text
    dm = Arrays({"train": (small.astype(np.float32), y), "test": (small[:4].astype(np.float32), y[:4])}, val_fraction=0)
    assert dm.class_names == ["cat", "dog"]


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
    for resample, val in ((False, 0), (True, 0), (False, 0.25)):  # the index of X as given, before any carving
        dm = Arrays({"train": (xs, y), "test": (xs[:4], y[:4])}, val_fraction=val, resample=resample)
        with pytest.raises(ValueError, match=r"Arrays: X \(train split\): expected every sequence of shape \[2, T\] with "
                                             r"T >= 1, got \(2, 0\) at index 4"):
            dm.setup("fit")


def test_labels_in_another_encoding_are_named():
    small, _ = _series()
    y = np.array([b"caf\xe9", b"dog"] * 12)  # Latin-1 bytes: a bare UnicodeDecodeError before (the third review)
    with pytest.raises(ValueError, match=r"y: expected labels as UTF-8 text, got the bytes b'caf\\xe9'"):
        Arrays({"train": (small.astype(np.float32), y), "test": (small[:4].astype(np.float32), y[:4])}).setup("fit")
