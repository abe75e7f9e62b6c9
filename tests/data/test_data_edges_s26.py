"""What a probe of the data modules at their edges found (s26, P6): ``header=true`` dropping the first series of a test
or validation file without a header where that series' class appears once in it; CSV labels ``inf`` / ``Infinity``
refused as missing; the text ``"false"`` read as true by ``augment``, ``on_device``, ``download`` and ``cache``; numpy
ints refused for ``seed``, ``val_fold``, ``num_workers``, ``channels`` and ``label_column``; a ``Fraction`` fraction
crashing the errors that name it; an ``.npz`` ``X`` with no channels or no steps failing deep in torch. Then what the
review R1 of that fix found: real headers of numeric names that do not rise refused by ``header=true`` and
``label_column="label"``; a trailing delimiter hiding a header; ``expected true or false, got 'false'``; a ``load()``'s
X with no channels; a ``Fraction`` in the report's split message. Expected answers come from the arrays and files each
test writes."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from neuroview.data import (ArrayDataModule, CIFAR10DataModule, CsvDataModule, MNIST1DDataModule, MNISTDataModule,
                            NpzDataModule, UCRDataModule)
from neuroview.data.delimited import read_series

torch.set_num_threads(1)
CLASSES = ("ant", "bee", "cat", "dog", "eel")


def _rows(labels, t=16, seed=0):
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(size=(len(labels), t)), 4), list(labels)


def _csv(path, x, y, head=None):
    lines = ([",".join(head)] if head else []) + [",".join([c, *map(str, r)]) for r, c in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _train(tmp_path, t=16):
    x, y = _rows([CLASSES[i % 5] for i in range(50)], t)
    return _csv(tmp_path / "tr.csv", x, y, ["label", *(f"t{i}" for i in range(t))])


# ----------------------------------------------------------------- 1: header=true and a file without a header
@pytest.mark.parametrize("labels", [
    list(CLASSES),                                                        # one series a class: a one-shot test file
    ["ant"] + ["bee"] * 3 + ["cat"] * 3 + ["dog"] * 3 + ["eel"] * 3,      # sorted by class, the first class once
])
@pytest.mark.parametrize("split", ["test_path", "val_path"])
def test_header_true_refuses_a_file_whose_first_series_is_of_a_training_class_it_holds_once(tmp_path, labels, split):
    """Before: the first series was read as a header and dropped without a word (5 series in the file, 4 served)."""
    train = _train(tmp_path)
    x, y = _rows(labels, seed=1)
    other = _csv(tmp_path / "te.csv", x, y)
    dm = CsvDataModule(train, header=True, val_fraction=0.0, labels="classes", **{split: other})
    with pytest.raises(ValueError, match=r"header: row 1 of te.csv reads as a series, not a header \(the label 'ant', a "
                                         r"class of the training file, and 16 numbers\), yet header=true skips it.*"
                                         r"or pass header=false if no file has one"):
        dm.setup("fit")
    with_head = _csv(tmp_path / "te2.csv", x, y, ["label", *(f"t{i}" for i in range(16))])
    dm = CsvDataModule(train, header=True, val_fraction=0.0, labels="classes", **{split: with_head})
    dm.setup("fit")
    assert dm.split_sizes()["test" if split == "test_path" else "val"] == len(labels)


def test_header_false_reads_a_first_series_of_a_class_of_its_own(tmp_path):
    """A training file without a header whose first class has one series: header=true cannot tell that row from a
    header of numeric column names (the limit read_series' docstring states); header=false reads all 13 series."""
    x, y = _rows(["ant"] + ["bee", "cat"] * 6)
    series, got = read_series(_csv(tmp_path / "one.csv", x, y), header=False)
    assert got.tolist() == y and len(series) == 13


# Headers users write whose numeric column names neither only rise nor only fall (the review R1 of 70b12d7, finding 1):
# each was refused by header=true and label_column="label", and header=false read it as a series of a class "label".
REAL_HEADERS = {
    "trailing-delimiter": ([str(i) for i in range(16)], ","),  # every line ends with ',' (exporters' habit)
    "fftfreq": (["0", "6.25", "12.5", "18.75", "25", "31.25", "37.5", "43.75",
                 "-50", "-43.75", "-37.5", "-31.25", "-25", "-18.75", "-12.5", "-6.25"], ""),  # np.fft.fftfreq(16, 0.01)
    "hours-across-midnight": (["20", "21", "22", "23", *(str(h) for h in range(12))], ""),
    "rounded-wavelengths": (["400", "400", "401", "401", "402", "403", "403", "404", "404", "405", "406", "406", "407",
                             "407", "408", "409"], ""),
    "unsorted-ids": (["17", "3", "42", "8", "11", "0", "5", "23", "31", "2", "9", "14", "7", "40", "1", "28"], ""),
}


def _with_head(path, x, y, names, end):
    lines = [",".join(["label", *names]) + end] + [",".join([c, *map(str, r)]) + end for r, c in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize("kw", [{"header": True}, {"label_column": "label"}], ids=["header", "label_column"])
@pytest.mark.parametrize("case", list(REAL_HEADERS))
def test_a_declared_header_whose_numeric_names_do_not_rise_is_skipped(tmp_path, case, kw):
    """Before: `header: row 1 of h.csv reads as a series, not a header (the label 'label', the class of no other row,
    and 16 numbers that neither rise nor fall ...)`; a user who says header=true, or names the label's column, has one."""
    names, end = REAL_HEADERS[case]
    x, y = _rows(["ant"] + ["bee", "cat"] * 6)
    series, got = read_series(_with_head(tmp_path / "h.csv", x, y, names, end), **kw)
    assert got.tolist() == y
    np.testing.assert_allclose(np.stack(series).reshape(len(y), -1), x)
    tx, ty = _rows(["ant", "bee", "cat"] * 2, seed=1)  # a test file of training classes, the same header
    dm = CsvDataModule(_with_head(tmp_path / "tr.csv", *_rows([CLASSES[i % 3] for i in range(30)]), names, end),
                       test_path=_with_head(tmp_path / "te.csv", tx, ty, names, end), val_fraction=0.0, **kw)
    dm.setup("fit")
    assert dm.class_names == ["ant", "bee", "cat"] and dm.split_sizes() == {"train": 30, "test": 6}


def test_header_true_refuses_a_headerless_test_file_ending_its_lines_with_a_delimiter(tmp_path):
    """The case 70b12d7 fixed, with the empty field a trailing delimiter leaves (dropped before any test)."""
    names, end = REAL_HEADERS["trailing-delimiter"]
    train = _with_head(tmp_path / "tr.csv", *_rows([CLASSES[i % 3] for i in range(30)]), names, end)
    x, y = _rows(["ant", "bee", "cat"], seed=1)
    test = tmp_path / "te.csv"
    test.write_text("".join(",".join([c, *map(str, r)]) + ",\n" for r, c in zip(x, y)))
    with pytest.raises(ValueError, match=r"header: row 1 of te.csv reads as a series, not a header \(the label 'ant', a "
                                         r"class of the training file, and 16 numbers\), yet header=true skips it"):
        CsvDataModule(train, test_path=str(test), header=True, val_fraction=0.0, labels="classes").setup("fit")


def test_auto_refuses_a_pandas_header_whose_lines_end_with_a_delimiter(tmp_path):
    """Before: the header `label,0,...,15,` read as a 31st series of a class "label", without a word."""
    x, y = _rows(["ant", "bee", "cat"] * 10)
    path = _with_head(tmp_path / "auto.csv", x, y, *REAL_HEADERS["trailing-delimiter"])
    with pytest.raises(ValueError, match=r"header: row 1 of auto.csv reads label, 0, 1, 2, \.\.\.: a name in the label's "
                                         r"column 1 .*pass header=true"):
        read_series(path)
    series, got = read_series(path, header=True)
    assert got.tolist() == y and len(series) == 30


@pytest.mark.parametrize("head, channels", [
    (["label", *(f"t{i}" for i in range(16))], 1),                       # names
    (["label", *(str(i) for i in range(16))], 1),                        # column numbers after the label's name
    (["label", *(f"{400 + 2.1 * i + 0.01 * i * i:.2f}" for i in range(16))], 1),  # wavelengths, unevenly spaced
    (["label", *(str(4000 - 2 * i) for i in range(16))], 1),             # wavenumbers, falling (an IR spectrum)
    (["label", *(str(i) for i in range(8)), *(str(i) for i in range(8))], 2),  # each channel's steps counted anew
])
def test_header_true_still_skips_headers_of_a_class_of_no_row(tmp_path, head, channels):
    x, y = _rows(["ant"] + ["bee", "cat"] * 6)
    series, got = read_series(_csv(tmp_path / "h.csv", x, y, head), header=True, channels=channels)
    assert got.tolist() == y
    np.testing.assert_allclose(np.stack(series).reshape(len(y), -1), x)


# ----------------------------------------------------------------- 2: CSV labels "inf" / "Infinity" are classes
@pytest.mark.parametrize("word", ["inf", "Infinity", "INF"])
def test_a_csv_text_label_inf_is_a_class_as_in_an_npz(tmp_path, word):
    """Before: `path: row 1 of inf.csv, column 1: expected a class label, got 'inf' (a missing label)`."""
    x, y = _rows([word, "ctrl"] * 8)
    dm = CsvDataModule(_csv(tmp_path / "inf.csv", x, y), val_fraction=0.0)
    dm.setup("fit")
    assert dm.class_names == sorted(["ctrl", word])
    np.savez(tmp_path / "inf.npz", X=x[:, None].astype(np.float32), y=np.array(y))
    npz = NpzDataModule(str(tmp_path / "inf.npz"), val_fraction=0.0)
    npz.setup("fit")
    assert npz.class_names == dm.class_names


@pytest.mark.parametrize("word, why", [("nan", "a missing label"), ("NaN", "a missing label"),
                                       ("1e999", "an infinite number")])
def test_a_csv_label_nan_stays_a_missing_label_and_1e999_is_refused(tmp_path, word, why):
    x, y = _rows(["a", "b"] * 4 + [word])
    with pytest.raises(ValueError, match=rf"path: row 9 of m.csv, column 1: expected a class label, got '{word}' "
                                         rf"\({why}\)"):
        read_series(_csv(tmp_path / "m.csv", x, y))


# ----------------------------------------------------------------- 3: flags refuse text
@pytest.mark.parametrize("make, name, got", [
    (lambda root: CIFAR10DataModule(root, augment="false"), "augment", "'false'"),
    (lambda root: CIFAR10DataModule(root, on_device="false", num_workers=2), "on_device", "'false'"),
    (lambda root: CIFAR10DataModule(root, on_device="false"), "on_device", "'false'"),
    (lambda root: CIFAR10DataModule(root, download="false"), "download", "'false'"),
    (lambda root: MNISTDataModule(root, download="false"), "download", "'false'"),
    (lambda root: MNIST1DDataModule(cache="false"), "cache", "'false'"),
    (lambda root: UCRDataModule("GunPoint", download="false"), "download", "'false'"),
    (lambda root: UCRDataModule("Coffee", download="false"), "download", "'false'"),
    (lambda root: CIFAR10DataModule(root, augment=2), "augment", "2"),
    (lambda root: MNIST1DDataModule(cache=None), "cache", "None"),
    (lambda root: CIFAR10DataModule(root, augment=np.str_("False")), "augment", "'False'"),
    (lambda root: CsvDataModule(root, resample="true"), "resample", "'true'"),
], ids=["cifar-augment", "cifar-on_device-workers", "cifar-on_device", "cifar-download", "mnist-download",
        "mnist1d-cache", "ucr-download", "ucr-coffee-download", "cifar-augment-2", "mnist1d-cache-none",
        "cifar-augment-numpy-str", "csv-resample"])
def test_flags_given_as_text_are_refused_by_name(tmp_path, make, name, got):
    """Before: "false" read as true: CIFAR augmented, MNIST-1D cached, downloads tried; on_device="false" with workers
    was refused as on_device=True. Then (70b12d7): `augment: expected true or false, got 'false'`, which reads as if
    the value given were the one expected: a string names itself as one."""
    text = got.startswith("'")
    want = (rf"^{name}: expected a bool \(true or false, not a string\), got the str {got}; write it without quotes$"
            if text else rf"^{name}: expected true or false, got {got}$")
    with pytest.raises(ValueError, match=want):
        make(str(tmp_path / "c.csv"))


def test_flags_take_bools_numpy_bools_and_0_or_1(tmp_path):
    dm = CIFAR10DataModule(str(tmp_path), augment=np.False_, on_device=0, download=np.bool_(False))
    assert (dm.augment, dm.on_device, dm.download) == (False, False, False)
    assert all(type(v) is bool for v in (dm.augment, dm.on_device, dm.download))
    assert MNIST1DDataModule(cache=0).cache is False and MNISTDataModule(str(tmp_path), download=1).download is True
    assert UCRDataModule("GunPoint", download=np.True_).download is True
    with pytest.raises(ValueError, match=r"num_workers: on_device=True reads batches from GPU memory"):
        CIFAR10DataModule(str(tmp_path), on_device=np.True_, num_workers=2)


# ----------------------------------------------------------------- 4: numpy ints taken, bools refused
def _npz(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "f.npz", X=rng.normal(size=(40, 2, 20)).astype(np.float32), y=np.repeat([0, 1], 20))
    return str(tmp_path / "f.npz")


def _splits(dm):
    dm.setup("fit")
    return {k: (v[0].numpy(), v[1].numpy()) for k, v in dm._splits.items()}


@pytest.mark.parametrize("kw", [{"seed": 1}, {"val_fraction": 0.2, "val_fold": 1}, {"num_workers": 0}, {"seed": 0}])
def test_numpy_ints_read_as_the_same_python_ints(tmp_path, kw):
    """Before: `seed: expected an int >= 0 (the splits' shuffle), got np.int64(1)` and the like."""
    path = _npz(tmp_path)
    want = _splits(NpzDataModule(path, **kw))
    dm = NpzDataModule(path, **{k: np.int64(v) if type(v) is int else v for k, v in kw.items()})
    got = _splits(dm)
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k][0], want[k][0])
        np.testing.assert_array_equal(got[k][1], want[k][1])
    for k, v in kw.items():
        assert type(getattr(dm, k)) is type(v) and getattr(dm, k) == v


def test_csv_channels_and_label_column_take_numpy_ints(tmp_path):
    x, y = _rows(["a", "b"] * 10, t=20)
    path = _csv(tmp_path / "c.csv", x, y)
    dm = CsvDataModule(path, channels=np.int64(2), label_column=np.int32(0), val_fraction=0.0)
    dm.setup("fit")
    assert (dm.in_channels, dm.max_len) == (2, 10)
    assert type(dm.channels) is int and type(dm.label_column) is int
    (tmp_path / "l.csv").write_text("".join(",".join([*map(str, r), c]) + "\n" for r, c in zip(x, y)))  # the label last
    last = CsvDataModule(str(tmp_path / "l.csv"), label_column=np.int64(-1), val_fraction=0.0)
    last.setup("fit")
    assert last.class_names == ["a", "b"]


@pytest.mark.parametrize("kw, name", [
    ({"seed": True}, "seed"), ({"seed": np.True_}, "seed"), ({"seed": np.int64(-1)}, "seed"),
    ({"num_workers": True}, "num_workers"), ({"num_workers": np.bool_(False)}, "num_workers"),
    ({"num_workers": 1.0}, "num_workers"),
    ({"val_fraction": 0.2, "val_fold": True}, "val_fold"), ({"val_fraction": 0.2, "val_fold": np.int64(5)}, "val_fold"),
])
def test_bools_and_out_of_range_numpy_ints_are_refused_by_name(tmp_path, kw, name):
    with pytest.raises(ValueError, match=rf"^{name}: expected an int"):
        NpzDataModule(_npz(tmp_path), **kw)


@pytest.mark.parametrize("kw, name", [({"channels": True}, "channels"), ({"channels": np.int64(0)}, "channels"),
                                      ({"label_column": True}, "label_column"),
                                      ({"label_column": np.True_}, "label_column")])
def test_csv_bools_are_refused_by_name(tmp_path, kw, name):
    x, y = _rows(["a", "b"] * 4)
    with pytest.raises(ValueError, match=rf"^{name}: expected "):
        CsvDataModule(_csv(tmp_path / "c.csv", x, y), **kw)


# ----------------------------------------------------------------- 5: Fraction fractions in the errors
def _small(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", X=rng.normal(size=(60, 2, 30)).astype(np.float32), y=np.repeat([0, 2, 5], 20))
    return str(tmp_path / "s.npz")


def test_a_fraction_val_fraction_is_named_in_the_val_fold_error(tmp_path):
    """Before: `TypeError: unsupported format string passed to Fraction.__format__` (Python < 3.12)."""
    with pytest.raises(ValueError, match=r"val_fold: expected an int in \[0, 5\) \(val_fraction 0.2: 5 folds\), got 5"):
        NpzDataModule(_small(tmp_path), val_fraction=Fraction(1, 5), val_fold=5)


@pytest.mark.parametrize("kw, message", [
    ({"val_fraction": Fraction(1, 100)}, r"val_fraction: expected a non-empty validation split, got none: 0.01 of each "),
    ({"test_fraction": Fraction(1, 100)}, r"test_fraction: expected a non-empty test split, got none: 0.01 of each "),
], ids=["val_fraction", "test_fraction"])
def test_a_fraction_that_holds_out_nothing_is_named(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        NpzDataModule(_small(tmp_path), **kw).setup("fit")
    x, y = _rows(["a", "b"] * 20)
    with pytest.raises(ValueError, match=message):
        CsvDataModule(_csv(tmp_path / "c.csv", x, y), **kw).setup("fit")


def test_a_fraction_val_fold_reads_as_its_float(tmp_path):
    path = _small(tmp_path)
    a, b = _splits(NpzDataModule(path, val_fraction=Fraction(1, 5), val_fold=2)), _splits(
        NpzDataModule(path, val_fraction=0.2, val_fold=2))
    np.testing.assert_array_equal(a["val"][1], b["val"][1])


# ----------------------------------------------------------------- 6: an .npz X with no channels or no steps
@pytest.mark.parametrize("key, shape, kw, axis", [
    ("X", (40, 0, 20), {}, 1), ("X", (40, 2, 0), {}, 2), ("X", (40, 2, 0), {"layout": "channels_last"}, 2),
    ("X", (40, 0), {}, 1), ("X", (40, 3, 0, 4), {}, 2), ("X_test", (10, 2, 0), {}, 2),
])
def test_an_npz_x_with_no_values_is_refused_naming_it(tmp_path, key, shape, kw, axis):
    """Before: `IndexError: index 0 is out of bounds for dimension 1 with size 0` from the statistics, or layout advice
    that led there."""
    arrays = {"X": np.zeros((40, 2, 20), np.float32), "y": np.repeat([0, 1], 20)}
    arrays[key] = np.zeros(shape, np.float32)
    if key == "X_test":
        arrays["y_test"] = np.repeat([0, 1], 5)
    np.savez(tmp_path / "e.npz", **arrays)
    pattern = (rf"path: {key} of e.npz: expected values in every series, got shape \({', '.join(map(str, shape))}\), "
               rf"whose axis {axis} has length 0")
    with pytest.raises(ValueError, match=pattern):
        NpzDataModule(str(tmp_path / "e.npz"), **kw).setup("fit")


class _NoChannels(ArrayDataModule):
    """A user's own load(): X[:, mask] of an all-False channel mask (or a step window of none)."""

    def __init__(self, shape, **kw):
        super().__init__(**kw)
        self.shape = shape

    def load(self):
        y = np.repeat([0, 1], self.shape[0] // 2)
        return {"train": (np.zeros(self.shape, np.float32), y), "test": (np.zeros((4, *self.shape[1:]), np.float32), y[:4])}


@pytest.mark.parametrize("shape, axis", [((40, 0, 20), 1), ((40, 2, 0), 2), ((40, 3, 0, 4), 2)])
def test_a_load_giving_an_x_with_no_values_is_refused_naming_it(shape, axis):
    """Before: `IndexError: index 0 is out of bounds for dimension 1 with size 0` from the statistics (only an .npz
    was checked)."""
    with pytest.raises(ValueError, match=rf"^_NoChannels.load: X of the train split: expected values in every series, "
                                         rf"got shape \({', '.join(map(str, shape))}\), whose axis {axis} has length 0"):
        _NoChannels(shape, val_fraction=0.0).setup("fit")


# ----------------------------------------------------------------- 7: a Fraction val_fraction in the report's message
def test_load_batch_of_no_validation_split_names_a_fraction_val_fraction(tmp_path):
    """Before: `TypeError: unsupported format string passed to Fraction.__format__` (viz/report.py, Python < 3.12)."""
    from neuroview.viz.report import load_batch
    dm = NpzDataModule(_small(tmp_path), val_fraction=Fraction(0))
    with pytest.raises(ValueError, match=r"^--split: val: the data has no validation split \(val_fraction 0\); use "
                                         r"train or test$"):
        load_batch(dm, "val", 8)
    assert len(load_batch(dm, "test", 8)[2]) == 8
