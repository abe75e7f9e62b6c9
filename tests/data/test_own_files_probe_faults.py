"""What a probe of reading users' own files found: a header of wavelengths or times (``label,400,402,...``) read as a
series of a class "label"; ``header=true`` dropping the first series of a file without a header; bare numpy / Python /
torch errors for an empty, 0-d or text array of an .npz; a label column of measurements or row numbers (one class a
series) blamed on ``test_fraction`` or on labels the training split lacks; ``~/`` paths made ``<cwd>/~/``; a UTF-16 TSV
(Excel's "Unicode Text") called Latin-1. Expected answers come from the arrays each test writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroview.data import CsvDataModule, NpzDataModule
from neuroview.data.delimited import read_series

torch.set_num_threads(1)


def _data(n=40, t=30, seed=0, classes=("a", "b")):
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(n, t)), 3)
    y = np.array([classes[i % len(classes)] for i in range(n)])
    return x, y


def _csv(path, x, y, head=None, last=False, sep=","):
    rows = [[*map(str, r), c] if last else [c, *map(str, r)] for r, c in zip(x, y)]
    path.write_text("".join(sep.join(r) + "\n" for r in ([head] if head else []) + rows))
    return path


def _setup(dm):
    dm.setup("fit")
    return dm


# ----------------------------------------------------------------- A: a header of wavelengths, times or indices
@pytest.mark.parametrize("head, kw", [
    (["label", *(str(400 + 2 * i) for i in range(30))], {}),               # wavelengths 400, 402, ... 458 nm
    (["class", *(f"{12.5 + 0.5 * i:.1f}" for i in range(30))], {}),        # times from 12.5 s, every 0.5 s
    ([*(str(1000 + i) for i in range(30)), "label"], {"label_column": -1}),  # sample indices from 1000, the label last
    (["label", *(str(-50 + 5 * i) for i in range(30))], {}),               # offsets from -50 ms
])
def test_a_header_counting_up_from_any_number_is_refused_and_read_with_header_true(tmp_path, head, kw):
    """Before: read as a first series of a made-up class ('label': classes a, b and label, 41 series of 40)."""
    x, y = _data()
    path = _csv(tmp_path / "w.csv", x, y, head, last="label_column" in kw)
    with pytest.raises(ValueError, match=rf"header: row 1 of w.csv reads .*'{head[-1] if kw else head[0]}', the class of "
                                         r"no other row\) and column names counting up.*pass header=true"):
        read_series(path, **kw)
    series, labels = read_series(path, header=True, **kw)
    assert labels.tolist() == y.tolist()
    np.testing.assert_array_equal(np.stack(series)[:, 0], x)


def test_the_probe_s_wavelength_files_read_with_header_true_hold_two_classes(tmp_path):
    x, y = _data()
    head = ["label", *(str(400 + 2 * i) for i in range(30))]
    train, test = _csv(tmp_path / "tr.csv", x, y, head), _csv(tmp_path / "te.csv", x[:12], y[:12], head)
    with pytest.raises(ValueError, match=r"header: row 1 of tr.csv reads label, 400, 402, 404, \.\.\."):
        _setup(CsvDataModule(str(train), test_path=str(test), val_fraction=0.0))
    dm = _setup(CsvDataModule(str(train), test_path=str(test), val_fraction=0.0, header=True))
    assert dm.class_names == ["a", "b"] and dm.split_sizes() == {"train": 40, "test": 12}


def test_a_first_row_counting_up_of_a_shared_class_or_of_a_class_of_its_own_is_still_data(tmp_path):
    """Data rows do not disappear: a first series counting up evenly of a class other rows carry ('a' counting 5, 6,
    7, ...), or of a class of its own whose values do not count up evenly, reads as a series as before."""
    x, y = _data(12, 6)
    shared = _csv(tmp_path / "s.csv", np.vstack([np.arange(5.0, 11.0), x[1:]]), y)
    series, labels = read_series(shared)
    assert labels.tolist() == y.tolist() and np.stack(series)[0, 0].tolist() == [5, 6, 7, 8, 9, 10]
    own = _csv(tmp_path / "o.csv", x, np.array(["rare", *y[1:]]))
    series, labels = read_series(own)
    assert labels.tolist() == ["rare", *y[1:]] and np.array_equal(np.stack(series)[:, 0], x)
    falls = _csv(tmp_path / "f.csv", np.vstack([[400, 402, 399, 406, 410, 411], x[1:]]), np.array(["rare", *y[1:]]))
    assert read_series(falls)[1][0] == "rare"  # numbers that fall back: no column names
    # a spectrometer's wavelengths, their steps uneven (0.45 to 0.52): a header (a first version read it as a class)
    waves = _csv(tmp_path / "u.csv", np.vstack([[400.0, 400.45, 400.93, 401.45, 401.9, 402.42], x[1:]]),
                 np.array(["label", *y[1:]]))
    with pytest.raises(ValueError, match=r"header: row 1 of u.csv reads label, 400.0, 400.45"):
        read_series(waves)
    assert read_series(waves, header=False)[1][0] == "label"  # said to be a series: one


# ----------------------------------------------------------------- B: header=true and a file without a header
@pytest.mark.parametrize("classes", [("0", "1"), ("cat", "dog")])
def test_header_true_refuses_a_file_whose_first_row_reads_as_a_series(tmp_path, classes):
    """Before: the test file without a header lost its first series without a word (10 series, 9 read)."""
    x, y = _data(50, 10, classes=classes)
    train = _csv(tmp_path / "tr.csv", x[:40], y[:40], ["label", *(f"t{i}" for i in range(10))])
    test = _csv(tmp_path / "te.csv", x[40:], y[40:])
    dm = CsvDataModule(str(train), test_path=str(test), header=True, val_fraction=0.0)
    with pytest.raises(ValueError, match=rf"header: row 1 of te.csv reads as a series, not a header \(the label "
                                         rf"'{classes[0]}', a class of other rows, and 10 numbers\), yet header=true skips"):
        dm.setup("fit")
    with pytest.raises(ValueError, match=r"row 1 of te.csv reads as a series"):
        read_series(test, header=True)
    with_head = _csv(tmp_path / "te2.csv", x[40:], y[40:], ["label", *(f"t{i}" for i in range(10))])
    dm = _setup(CsvDataModule(str(train), test_path=str(with_head), header=True, val_fraction=0.0))
    assert dm.split_sizes()["test"] == 10


def test_header_true_still_skips_headers_of_column_numbers_wavelengths_and_names(tmp_path):
    x, y = _data(12, 5, classes=("0", "1"))
    for head in (["0", "1", "2", "3", "4", "5"], ["label", "400", "402", "404", "406", "408"],
                 ["5", "0", "1", "2", "3", "4"], ["label", "t0", "t1", "t2", "t3", "t4"]):
        series, labels = read_series(_csv(tmp_path / "h.csv", x, y, head), header=True)
        assert labels.tolist() == y.tolist() and np.array_equal(np.stack(series)[:, 0], x), head


# ----------------------------------------------------------------- C: empty, 0-d or text arrays of an .npz
@pytest.mark.parametrize("arrays, message", [
    ({"X": np.zeros((0, 1, 30), np.float32), "y": np.zeros(0, int)},
     r"path: X and y of f.npz: expected at least one series, got none \(X of shape \(0, 1, 30\), y of shape \(0,\)\)"),
    ({"X": np.zeros((5, 1, 30), np.float32), "y": np.array(3)},
     r"path: y must hold one label per sample, shape \[5\], got shape \(\)"),
    ({"X": np.ones((40, 1, 30), np.float32), "y": np.arange(40) % 2, "X_test": np.zeros((0, 1, 30), np.float32),
      "y_test": np.zeros(0, int)},
     r"path: X_test and y_test of f.npz: expected at least one series, got none .*drop X_test and y_test"),
    ({"X": np.ones((40, 1, 30)).astype(str), "y": np.arange(40) % 2},
     r"path: X of f.npz: expected numbers \(a float or int array\), got text \(dtype <U\d+\); store X as numbers"),
    ({"X": np.array(1.5), "y": np.arange(1)}, r"path: X of f.npz must be \[N, C, \*spatial\] or \[N, T\], got shape \(\)"),
])
def test_empty_0d_or_text_arrays_of_an_npz_are_named(tmp_path, arrays, message):
    """Before: 'cannot reshape array of size 0', 'len() of unsized object', torch's TypeError on strings."""
    np.savez(tmp_path / "f.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        _setup(NpzDataModule(str(tmp_path / "f.npz")))


# ----------------------------------------------------------------- D: one class a series
def test_a_label_column_of_measurements_or_row_numbers_is_named_as_such(tmp_path):
    """Before: 'test_fraction: ... every class has one series' or 'the test split has labels the training split lacks'."""
    x, y = _data(classes=("0", "1"))
    train = _csv(tmp_path / "tr.csv", x, y)
    test = _csv(tmp_path / "te.csv", x[:10], y[:10])
    for kw in ({}, {"test_path": str(test)}):
        with pytest.raises(ValueError, match=r"label_column: expected a column of class labels \(several series a class\), "
                                             r"got 40 classes for 40 series \(e.g. .*\) in tr.csv: a column of measurements "
                                             r"or row numbers\? check label_column \(now -1"):
            _setup(CsvDataModule(str(train), label_column=-1, **kw))
    rows = _csv(tmp_path / "rows.csv", x, np.arange(40).astype(str))  # row numbers: the test file's 0 to 9 all "known"
    rows_test = _csv(tmp_path / "rows_te.csv", x[:10], np.arange(10).astype(str))
    with pytest.raises(ValueError, match=r"got 40 classes for 40 series \(e.g. '0', '1', '2', \.\.\.\) in rows.csv"):
        _setup(CsvDataModule(str(rows), test_path=str(rows_test)))
    np.savez(tmp_path / "m.npz", X=x[:, None], y=x[:, -1])
    with pytest.raises(ValueError, match=r"path: y of m.npz: expected class labels \(several series a class\), got 40 "
                                         r"classes for 40 series"):
        _setup(NpzDataModule(str(tmp_path / "m.npz")))


def test_many_classes_of_several_series_or_one_series_a_class_tested_on_many_still_read(tmp_path):
    x, _ = _data(60, 8)
    many = np.array([f"c{i % 20}" for i in range(60)])  # 20 classes of 3 series: half as many classes as series or fewer
    dm = _setup(CsvDataModule(str(_csv(tmp_path / "m.csv", x, many)), val_fraction=0.0))
    assert len(dm.class_names) == 20 and sum(dm.split_sizes().values()) == 60
    one = np.array([f"c{i}" for i in range(12)])  # 12 classes of one series each (UCR's Fungi), tested on 48
    dm = _setup(CsvDataModule(str(_csv(tmp_path / "o.csv", x[:12], one)), val_fraction=0.0,
                              test_path=str(_csv(tmp_path / "ot.csv", x[12:], np.tile(one, 4)))))
    assert dm.class_names == sorted(one.tolist()) and dm.split_sizes() == {"train": 12, "test": 48}
    np.savez(tmp_path / "f.npz", X=x[:, None], y=(np.arange(60) % 20).astype(float))
    assert _setup(NpzDataModule(str(tmp_path / "f.npz"), val_fraction=0.0)).num_classes == 20


# ----------------------------------------------------------------- E: ~ in a path
def test_a_path_under_home_written_with_a_tilde_is_expanded(tmp_path, monkeypatch):
    """Before: '~/my.npz' became '<cwd>/~/my.npz', 'no such file' for a file that is there."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no folder "~" here: the unexpanded path names nothing
    x, y = _data()
    np.savez(tmp_path / "my.npz", X=x[:, None], y=y)
    dm = NpzDataModule("~/my.npz", val_fraction=0.0)
    assert str(dm.path) == str(tmp_path / "my.npz") and dm.hparams["path"] == str(tmp_path / "my.npz")
    assert sum(_setup(dm).split_sizes().values()) == 40
    for name in ("tr.csv", "te.csv", "va.csv"):
        _csv(tmp_path / name, x, y)
    csv = CsvDataModule("~/tr.csv", test_path="~/te.csv", val_path="~/va.csv")
    assert (str(csv.path), csv.test_path, csv.val_path) == tuple(str(tmp_path / n) for n in ("tr.csv", "te.csv", "va.csv"))
    assert _setup(csv).split_sizes() == {"train": 40, "val": 40, "test": 40}


# ----------------------------------------------------------------- F: UTF-16 text
@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_a_utf16_tsv_with_a_byte_order_mark_is_read(tmp_path, codec):
    """Before: 'expected UTF-8 text, got byte 0xff ... convert it (iconv -f latin1 -t utf-8)', which gives garbage."""
    x, y = _data(12, 10)
    text = "".join("\t".join([c, *map(str, r)]) + "\r\n" for r, c in zip(x, y))
    raw = text.encode(codec) if codec != "utf-16-be" else b"\xfe\xff" + text.encode(codec)  # "utf-16": LE, with its mark
    (tmp_path / "u.tsv").write_bytes(raw)
    series, labels = read_series(tmp_path / "u.tsv")
    assert labels.tolist() == y.tolist()
    np.testing.assert_array_equal(np.stack(series)[:, 0], x)


def test_utf16_without_its_mark_is_named_not_read_as_nul_fields(tmp_path):
    (tmp_path / "n.tsv").write_bytes("a\t1\t2\nb\t3\t4\n".encode("utf-16-le"))
    with pytest.raises(ValueError, match=r"path: expected UTF-8 text, got NUL bytes on line 1 of n.tsv: UTF-16 without "
                                         r"its byte-order mark \(convert it: iconv -f utf-16le -t utf-8\)"):
        read_series(tmp_path / "n.tsv")
    (tmp_path / "odd.tsv").write_bytes(b"\xff\xfe" + "a\t1\n".encode("utf-16-le") + b"\x00")  # cut mid-character
    with pytest.raises(ValueError, match=r"path: expected UTF-16 text \(the byte-order mark ff fe of odd.tsv says so\), "
                                         r"got bytes that do not decode as it at byte \d+; convert it \(iconv -f utf-16"):
        read_series(tmp_path / "odd.tsv")


def test_a_small_set_of_a_few_series_a_class_is_no_column_of_measurements():
    """The second review: 12 series in 7 classes (labels repeating, the column right) were refused as "measurements
    or row numbers", with no option to get past it. Only near one class a series is (90% of the series or more)."""
    from neuroview.data.labels import one_class_a_series

    assert one_class_a_series(np.array(["0", "0", "1", "1", "2", "2", "3", "3", "4", "5", "6", "6"])) is None
    assert one_class_a_series(np.arange(12).astype(str)) == "12 classes for 12 series (e.g. '0', '1', '2', ...)"
    assert one_class_a_series(np.array([*map(str, range(11)), "0"])) is not None  # 11 of 12: nearly one a series
