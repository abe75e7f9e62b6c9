"""What a probe of the data modules found read silently wrong or failed with a bare error: a pandas header
read as a series, one number written two ways as two classes, CIFAR class names off their labels when a
class is missing, labels outside MNIST's and CIFAR's classes, images and labels of different counts,
a constant channel divided by 1e-8, held-out splits that come out empty, and errors naming no file."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from neuroview.data import CIFAR10DataModule, CsvDataModule, MNIST1DDataModule, MNISTDataModule, NpzDataModule
from neuroview.data import load_cifar_batch, read_idx
from neuroview.data.arrays import ArrayDataModule, per_series_normalize
from neuroview.data.delimited import read_series

from datafiles import write_idx  # noqa: E402 - tiny files in the real formats


def _rows(path, labels, values) -> None:
    with open(path, "w") as f:
        for label, v in zip(labels, values):
            f.write(",".join([label, *(f"{a:.4f}" for a in v)]) + "\n")


def _cifar(root, labels_of_batch, data_of_batch=None):
    """``root/cifar-10-batches-py`` with five training batches and a test batch: ``labels_of_batch(name)``."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = labels_of_batch(name)
        data = rng.integers(0, 256, (8, 3072)).astype(np.uint8) if data_of_batch is None else data_of_batch(name)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f, protocol=2)
    return folder


# ----------------------------------------------------------------- F1 / F4: labels of a CSV
def test_a_pandas_header_of_column_numbers_is_refused_and_read_with_header_true(tmp_path):
    """pandas' to_csv(index=False) of an array heads it 0,1,2,...: read as a series labelled "0" beside
    "0.0" and "1.0" (3 classes, 31 series in a file of 2 and 30)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5)), np.arange(30) % 2
    path = tmp_path / "f.csv"
    path.write_text("0,1,2,3,4,5\n" + "".join(",".join([f"{float(c)}"] + [repr(float(v)) for v in r]) + "\n"
                                              for c, r in zip(y, x)))
    with pytest.raises(ValueError, match=r"header: row 1 of f.csv reads 0, 1, \.\.\., 5: the column numbers pandas "
                                         r"writes.*pass header=true"):
        CsvDataModule(str(path), val_fraction=0.0).setup()
    dm = CsvDataModule(str(path), val_fraction=0.0, header=True)
    assert dm.class_names == ["0.0", "1.0"] and sum(dm.split_sizes().values()) == 30
    series, labels = read_series(path, header=True)
    assert np.allclose(np.stack(series)[:, 0], x.astype(np.float32)) and list(labels) == [f"{float(c)}" for c in y]


def test_one_number_written_two_ways_in_training_is_refused(tmp_path):
    """ "1" and "1.0" in one file (two exports concatenated) were 4 classes of 2."""
    rng = np.random.default_rng(1)
    _rows(tmp_path / "a.csv", ["1", "2", "1.0", "2.0"] * 6, rng.normal(size=(24, 6)))
    with pytest.raises(ValueError, match=r"CsvDataModule: y: expected every class written one way, got '1' and '1.0' "
                                         r"in the training split: the same number written apart"):
        CsvDataModule(str(tmp_path / "a.csv"), val_fraction=0.0).setup()
    np.savez(tmp_path / "a.npz", X=rng.normal(size=(8, 1, 5)), y=np.array(["3", "03", "4", "4"] * 2))
    with pytest.raises(ValueError, match=r"got '03' and '3'"):
        NpzDataModule(str(tmp_path / "a.npz"), val_fraction=0.0, test_fraction=0.25).setup()


def test_a_nan_label_is_refused_naming_its_row(tmp_path):
    """A "NaN" label became a class "NaN" in a CSV (NpzDataModule refused a float NaN label)."""
    rng = np.random.default_rng(2)
    _rows(tmp_path / "b.csv", ["1", "2", "NaN"] * 8, rng.normal(size=(24, 6)))
    with pytest.raises(ValueError, match=r"path: row 3 of b.csv, column 1: expected a class label, got 'NaN'"):
        CsvDataModule(str(tmp_path / "b.csv"), val_fraction=0.0).setup()
    # labels as text elsewhere (pandas' astype(str) of a NaN): refused by the base class, by split and series
    np.savez(tmp_path / "b.npz", X=rng.normal(size=(12, 1, 5)), y=np.array(["a", "b", "nan"] * 4),
             X_test=rng.normal(size=(2, 1, 5)), y_test=np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"path: y holds NaN or inf at series 2 \('nan'\); every series needs a class label"):
        NpzDataModule(str(tmp_path / "b.npz"), val_fraction=0.0).setup()


def test_a_text_nan_label_is_named_by_its_row_in_the_file(tmp_path):
    """Without X_test the test split is carved first, and the error named the series' row in the training split
    left (53 for the file's 77)."""
    rng = np.random.default_rng(3)
    y = np.array(["a", "b"] * 50, dtype="<U3")
    y[77] = "nan"
    np.savez(tmp_path / "c.npz", X=rng.normal(size=(100, 1, 5)), y=y)
    with pytest.raises(ValueError, match=r"path: y holds NaN or inf at series 77 \('nan'\)"):
        NpzDataModule(str(tmp_path / "c.npz"), val_fraction=0.0).setup()


def test_grayscale_images_without_a_channel_axis_are_told_how_to_store_them(tmp_path):
    np.savez(tmp_path / "g.npz", X=np.zeros((12, 8, 8), np.float32), y=np.arange(12) % 2)
    with pytest.raises(ValueError, match=r"images of one channel \(\[N, H, W\]\) need their channel axis: store X\[:, None\]"):
        NpzDataModule(str(tmp_path / "g.npz"), val_fraction=0.0).setup()


# -------------------------------------------------------- F2 / F7: fixed label spaces
def test_cifar_indices_are_its_labels_when_a_class_is_missing(tmp_path):
    """Vehicles only (0, 1, 8, 9): encoded, ship and truck became indices 2 and 3, named bird and cat."""
    keep = [0, 1, 8, 9]
    _cifar(tmp_path, lambda name: [keep[i % 4] for i in range(8)])
    dm = CIFAR10DataModule(str(tmp_path), val_fraction=0.0, augment=False)
    dm.setup()
    _, y = dm._dataset("test").__getitems__(list(range(8)))
    assert y.tolist() == [keep[i % 4] for i in range(8)] and dm.num_classes == 10
    assert [dm.class_names[i] for i in y.tolist()] == ["airplane", "automobile", "ship", "truck"] * 2


def test_labels_outside_mnist_s_and_cifar_s_classes_are_refused(tmp_path):
    """EMNIST letters (1 to 26) in MNIST's format, or a CIFAR label 10, reached the loss as targets >= 10."""
    rng = np.random.default_rng(0)
    for stem, n in (("train", 30), ("t10k", 26)):
        write_idx(tmp_path / f"{stem}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz=False)
        write_idx(tmp_path / f"{stem}-labels-idx1-ubyte", np.arange(n) % 26 + 1, gz=False)
    with pytest.raises(ValueError, match=r"MNISTDataModule: y: expected the labels 0 to 9 \(the set's 10 classes\), got "
                                         r"\['10', '11', '12', '13', '14', '\.\.\.'\] in the train split \(17 labels"):
        MNISTDataModule(str(tmp_path), val_fraction=0.0).setup()
    _cifar(tmp_path / "c", lambda name: [3, 4, 5, 6, 7, 8, 9, 10] if name == "test_batch" else list(range(8)))
    with pytest.raises(ValueError, match=r"CIFAR10DataModule: y: expected the labels 0 to 9.*got \['10'\] in the test split"):
        CIFAR10DataModule(str(tmp_path / "c"), val_fraction=0.0).setup()


def test_mnist_keeps_its_label_space_when_digits_are_missing(tmp_path):
    rng = np.random.default_rng(0)
    for stem, n in (("train", 20), ("t10k", 10)):
        write_idx(tmp_path / f"{stem}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz=False)
        write_idx(tmp_path / f"{stem}-labels-idx1-ubyte", np.arange(n) % 5 * 2, gz=False)  # 0, 2, 4, 6, 8
    dm = MNISTDataModule(str(tmp_path), val_fraction=0.0)
    dm.setup()
    assert dm.class_names == [str(i) for i in range(10)]
    assert dm._splits["test"][1].tolist() == (np.arange(10) % 5 * 2).tolist()


# --------------------------------------------------------- F3: samples and labels in step
def test_a_cifar_batch_one_label_short_is_refused_naming_it(tmp_path):
    """10 images and 9 labels: every later image took the label of another (29 of 50 wrong)."""
    folder = _cifar(tmp_path, lambda name: list(range(7)) if name == "data_batch_2" else list(range(8)))
    for vf in (0.0, 0.1):
        with pytest.raises(ValueError, match=r"path: expected one label per image in .*data_batch_2, got 8 images and "
                                             r"labels of shape \(7,\)"):
            CIFAR10DataModule(str(tmp_path), val_fraction=vf).setup()
    assert load_cifar_batch(folder / "data_batch_1")["labels"].tolist() == list(range(8))


def test_a_data_module_of_your_own_with_x_and_y_of_other_lengths_is_refused():
    rng = np.random.default_rng(0)

    class Mine(ArrayDataModule):
        def load(self):
            return {"train": (rng.normal(size=(20, 1, 8)).astype(np.float32), np.arange(18) % 2),
                    "test": (rng.normal(size=(6, 1, 8)).astype(np.float32), np.arange(6) % 2)}

    with pytest.raises(ValueError, match=r"Mine.load: expected X and y of the train split to hold one label per sample, "
                                         r"got 20 samples in X and y of shape \(18,\)"):
        Mine(val_fraction=0.0).setup()


@pytest.mark.parametrize("data, match", [
    (np.zeros((4, 3000), np.uint8), r"'data' of shape \[N, 3072\] in .*cb \(each row .*got shape \(4, 3000\)"),
    (np.zeros((4, 32, 32, 3), np.uint8), r"got shape \(4, 32, 32, 3\); an array \[N, 32, 32, 3\] is stored as"),
    (np.full((4, 3072), 300, np.int64), r"expected pixel values 0 to 255 in .*cb \(whole numbers, as uint8\), got int64 "
                                        r"values from 300 to 300"),
    (np.full((4, 3072), 0.5), r"expected pixel values 0 to 255 .* got float64 values from 0.5 to 0.5"),
])
def test_a_cifar_batch_of_other_pixels_is_refused_naming_the_file(data, match, tmp_path):
    """An [N, 32, 32, 3] array was reshaped as [N, 3, 32, 32] (scrambled); int64 300 wrapped to 44 in uint8."""
    with open(tmp_path / "cb", "wb") as f:
        pickle.dump({b"data": data, b"labels": [0, 1, 2, 3]}, f)
    with pytest.raises(ValueError, match=match):
        load_cifar_batch(tmp_path / "cb")


def test_cifar_int64_pixels_in_range_read_unchanged(tmp_path):
    data = np.random.default_rng(3).integers(0, 256, (4, 3072))
    with open(tmp_path / "cb", "wb") as f:
        pickle.dump({b"data": data, b"labels": [0, 1, 2, 3]}, f)
    got = load_cifar_batch(tmp_path / "cb")["data"]
    assert got.dtype == np.uint8 and np.array_equal(got.reshape(4, -1), data)


# ---------------------------------------------------------------- F5: a constant channel
def test_a_channel_constant_in_training_is_shifted_not_divided_by_1e_8(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 2, 10)).astype(np.float32)
    x[:, 1] = 0.1  # a flag: 0.1 in float32, whose float64 sums are not exact
    xt = rng.normal(size=(8, 2, 10)).astype(np.float32)
    xt[:, 1] = 0.1
    xt[0, 1, 4] = 1.1
    np.savez(tmp_path / "c.npz", X=x, y=np.arange(40) % 2, X_test=xt, y_test=np.arange(8) % 2)
    dm = NpzDataModule(str(tmp_path / "c.npz"), val_fraction=0.0)
    dm.setup()
    assert dm._std[1].item() == 1.0 and dm._mean[1].item() == pytest.approx(float(np.float32(0.1)), abs=1e-7)
    ref = x[:, 0].astype(np.float64)
    assert dm._std[0].item() == pytest.approx(ref.std(), rel=1e-6) and dm._mean[0].item() == pytest.approx(ref.mean(), abs=1e-6)
    xb, _ = dm._dataset("test").__getitems__(list(range(8)))
    assert xb[0, 1, 4].item() == pytest.approx(1.0, abs=1e-6) and xb[1, 1].abs().max().item() < 1e-6


def test_channel_stats_and_per_series_normalize_take_std_1_without_spread():
    series = [np.array([[1.0, 3.0, 9.0], [2.5, 2.5, 2.5]]), np.array([[5.0, 7.0], [2.5, 2.5]])]  # padded: lengths 3, 2

    class Mine(ArrayDataModule):
        def load(self):
            return {"train": (series * 2, ["a", "a", "b", "b"]), "test": (series, ["a", "b"])}

    dm = Mine(val_fraction=0.0)
    dm.setup()
    assert dm._mean.tolist() == pytest.approx([5.0, 2.5]) and dm._std.tolist() == pytest.approx([np.std([1, 3, 9, 5, 7]), 1.0])
    noise = torch.tensor([[[1.0, 1.0 + 1e-12, 1.0, 1.0 + 1e-12]]], dtype=torch.float64)  # rounding noise: no spread
    assert per_series_normalize(noise).abs().max().item() < 1e-8  # was (x - mean) / 1e-8: +-0.05
    tiny = torch.tensor([[[0.0, 1e-9, 0.0, 1e-9]]], dtype=torch.float64)  # a signal in small units: scaled as any other
    assert torch.equal(per_series_normalize(tiny), torch.tensor([[[-1.0, 1.0, -1.0, 1.0]]]))


# ----------------------------------------------------------------- F6: empty held-out splits
def test_an_empty_test_or_validation_split_is_refused_naming_its_fraction(tmp_path):
    """2 series per class: round(0.2 * 2) = 0, and fit trained with no test split, and said nothing."""
    rng = np.random.default_rng(0)
    _rows(tmp_path / "s.csv", [str(i % 6) for i in range(12)], rng.normal(size=(12, 8)))
    with pytest.raises(ValueError, match=r"test_fraction: expected a non-empty test split, got none: 0.2 of each class "
                                         r"rounds to 0 series \(series per class: 0: 2, 1: 2, 2: 2, 3: 2, 4: 2, 5: 2\); "
                                         r"a test_fraction above 0.25 .*test_path"):
        CsvDataModule(str(tmp_path / "s.csv")).setup()
    dm = CsvDataModule(str(tmp_path / "s.csv"), test_fraction=0.3, val_fraction=0.0)
    assert dm.split_sizes() == {"train": 6, "test": 6}
    np.savez(tmp_path / "s.npz", X=rng.normal(size=(12, 1, 8)), y=np.arange(12) % 6)
    with pytest.raises(ValueError, match=r"test_fraction: .*X_test, y_test"):
        NpzDataModule(str(tmp_path / "s.npz")).setup()
    np.savez(tmp_path / "t.npz", X=rng.normal(size=(12, 1, 8)), y=np.arange(12) % 6,
             X_test=rng.normal(size=(6, 1, 8)), y_test=np.arange(6))
    with pytest.raises(ValueError, match=r"val_fraction: expected a non-empty validation split.*val_fraction=0"):
        NpzDataModule(str(tmp_path / "t.npz")).setup()
    np.savez(tmp_path / "u.npz", X=rng.normal(size=(4, 1, 8)), y=np.array([0, 0, 1, 1]),
             X_test=rng.normal(size=(2, 1, 8)), y_test=np.array([0, 1]))  # 4 series dealt to 5 folds: fold 4 gets none
    with pytest.raises(ValueError, match=r"val_fold: expected fold 4 of 5 to hold out series, got none \(4 training"):
        NpzDataModule(str(tmp_path / "u.npz"), val_fraction=0.2, val_fold=4).setup()
    assert NpzDataModule(str(tmp_path / "t.npz"), val_fraction=0.0).split_sizes() == {"train": 12, "test": 6}


# ------------------------------------------------------------------ F8: errors that name the file
def test_a_latin1_csv_names_the_file_line_and_fix(tmp_path):
    (tmp_path / "l.csv").write_bytes("a,1,2,3\ncaf\xe9,4,5,6\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"path: expected UTF-8 text, got byte 0xe9 on line 2 of l.csv.*'CSV UTF-8'"):
        read_series(tmp_path / "l.csv")


def test_a_european_csv_gets_the_delimiter_or_decimal_comma_hint_not_the_header_one(tmp_path):
    (tmp_path / "e.csv").write_text("a;1,5;2,25;3,0\nb;4,0;5,5;6,25\n")
    with pytest.raises(ValueError, match=r"got '5;2'; its fields look separated by ';', not by ','.*pass delimiter=';'") as e:
        read_series(tmp_path / "e.csv")
    assert "header" not in str(e.value)
    with pytest.raises(ValueError, match=r"got '1,5'; a decimal comma\? expected a point") as e:
        read_series(tmp_path / "e.csv", delimiter=";")
    assert "header" not in str(e.value)
    (tmp_path / "h.csv").write_text("label,t0,t1\na,1,2\n")  # a header of names still gets the header hint
    with pytest.raises(ValueError, match=r"got 't0'; if the first row names the columns, pass header=true"):
        read_series(tmp_path / "h.csv")


def test_a_damaged_idx_file_names_the_file_and_fix(tmp_path):
    (tmp_path / "short").write_bytes(struct.pack(">HBB", 0, 8, 3) + b"\x00\x00")
    with pytest.raises(ValueError, match=r"path: expected an IDX header of 16 bytes .*got .*short of 6 bytes: the file "
                                         r"is cut short"):
        read_idx(tmp_path / "short")
    raw = struct.pack(">HBBI", 0, 8, 1, 3) + bytes([1, 2, 3])
    (tmp_path / "plain.gz").write_bytes(raw)
    with pytest.raises(ValueError, match=r"path: expected a gzip-compressed IDX file .*plain.gz.*drop the .gz"):
        read_idx(tmp_path / "plain.gz")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(raw)[:-6])
    with pytest.raises(ValueError, match=r"path: expected a gzip-compressed IDX file .*cut.gz"):
        read_idx(tmp_path / "cut.gz")
    (tmp_path / "ok.gz").write_bytes(gzip.compress(raw))
    assert read_idx(tmp_path / "ok.gz").tolist() == [1, 2, 3]


@pytest.mark.parametrize("content", [b"PK\x03\x04 truncated", None])
def test_a_damaged_mnist1d_cache_names_the_file_and_fix(content, tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path))
    path = tmp_path / "mnist1d_default_v1.npz"
    if content is None:
        np.savez(path, x=np.zeros((5, 40)), y=np.arange(5))  # keys missing
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=r"cache: expected the cached MNIST-1D set in .*mnist1d_default_v1.npz, got a "
                                         r"damaged file .*delete it .* or pass cache=False"):
        MNIST1DDataModule().setup()


@pytest.mark.parametrize("change", ["labels", "series", "shape"])
def test_a_readable_mnist1d_cache_of_another_set_is_refused(change, tmp_path, monkeypatch):
    """A cache another generator wrote (an older mnist1d, other arguments) is readable and has the right
    keys: it used to be read as the set every MNIST-1D figure was measured on."""
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path))
    MNIST1DDataModule().prepare_data()
    path = tmp_path / "mnist1d_default_v1.npz"
    with np.load(path) as f:
        d = {k: f[k].copy() for k in f.files}
    if change == "labels":
        d["y"][:2] = d["y"][:2][::-1] if d["y"][0] != d["y"][1] else (d["y"][:2] + 1) % 10
    elif change == "series":
        d["x_test"][3, 7] += 0.5
    else:
        d["x"] = d["x"][:, :39]
    np.savez(path, **d)
    with pytest.raises(ValueError, match=r"cache: expected the MNIST-1D set of mnist1d's defaults in "
                                         r".*mnist1d_default_v1.npz, got another set .*delete it .* or pass cache=False"):
        MNIST1DDataModule().setup()


def test_mnist1d_generating_another_set_warns(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path))
    import mnist1d.data

    make = mnist1d.data.make_dataset

    def shifted(*a, **k):
        d = make(*a, **k)
        return {**d, "x": d["x"] + 1e-3}

    monkeypatch.setattr(mnist1d.data, "make_dataset", shifted)
    with pytest.warns(UserWarning, match="generated another set than the one this project's figures were measured on"):
        MNIST1DDataModule(cache=False).setup()


def test_utf8_bytes_labels_are_decoded_before_a_split_is_carved(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 1, 30)).astype(np.float32)
    y = np.array(["café".encode(), b"dog"] * 10)  # numpy's S dtype: .astype(str) decodes ASCII only
    np.savez(tmp_path / "carved.npz", X=x, y=y)
    for kw in ({"val_fraction": 0.2}, {"val_fraction": 0}):  # a validation carve; a test carve
        dm = NpzDataModule(str(tmp_path / "carved.npz"), **kw)
        dm.setup("fit")
        assert dm.class_names == ["café", "dog"]
