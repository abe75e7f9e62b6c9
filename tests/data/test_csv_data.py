"""Series of your own in CSV/TSV: the UCR archive's own files read as aeon reads the same sets, and
every malformed file is an error naming its row and column."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroview.data import CsvDataModule, UCRDataModule
from neuroview.data.delimited import read_series


def _write_ucr_tsv(path, x, y) -> None:
    """The archive's format, written here by hand: the label, then the values, tab-separated; a
    multichannel series as its channels one after another; a shorter series padded with NaN."""
    longest = max(s.size for s in x)
    with open(path, "w") as f:
        for s, label in zip(x, y):
            values = [f"{v:.9g}" for v in np.asarray(s, np.float64).reshape(-1)] + ["NaN"] * (longest - s.size)
            f.write("\t".join([str(label), *values]) + "\n")


def _aeon(name, split):
    load = pytest.importorskip("aeon.datasets").load_classification
    x, y = load(name, split=split)
    return x, y


@pytest.mark.parametrize("name, channels", [("GunPoint", 1), ("JapaneseVowels", 12)])
def test_the_archive_s_tsv_files_give_what_aeon_s_loader_gives(name, channels, tmp_path):
    for split in ("train", "test"):
        _write_ucr_tsv(tmp_path / f"{name}_{split.upper()}.tsv", *_aeon(name, split))
    kw = dict(batch_size="auto", val_fraction=0.2, normalize="series", resample=True)
    mine = CsvDataModule(str(tmp_path / f"{name}_TRAIN.tsv"), test_path=str(tmp_path / f"{name}_TEST.tsv"),
                         channels=channels, **kw)
    ref = UCRDataModule(name, **kw)
    assert mine.class_names == ref.class_names and mine.in_channels == ref.in_channels == channels
    assert mine.max_len == ref.max_len and mine.batch_size == ref.batch_size
    for split in ("train", "val", "test"):
        (xa, ya, la), (xb, yb, lb) = mine._prepared_splits()[split], ref._prepared_splits()[split]
        assert torch.equal(ya, yb) and la is None and lb is None
        torch.testing.assert_close(xa, xb, rtol=0, atol=1e-5)


def test_the_archive_s_older_txt_files_read_as_its_tsv_files(tmp_path):
    """Values in runs of spaces with a leading one ("  1.0000000e+00  -6.4e-01 ..."): sniffed, or delimiter=" "
    (the csv reader took each extra space for an empty field: a gap inside the series, an error)."""
    x, y = _aeon("GunPoint", "train")
    _write_ucr_tsv(tmp_path / "gp.tsv", x, y)
    with open(tmp_path / "gp.txt", "w") as f:
        for label, s in zip(y, x):
            f.write("  " + "  ".join([f"{float(label):.7e}", *(f"{v:.9g}" for v in np.asarray(s, np.float64).ravel())]) + "\n")
    ref, _ = read_series(tmp_path / "gp.tsv")
    for kw in ({}, {"delimiter": " "}):
        got, labels = read_series(tmp_path / "gp.txt", **kw)
        assert [float(v) for v in labels] == [float(v) for v in y] and len(got) == len(ref)
        assert all(np.array_equal(a, b) for a, b in zip(got, ref))


def test_padded_rows_keep_their_lengths_and_a_header_names_the_label(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("\nt0,t1,t2,t3,kind\n1,2,3,4,up\n4,3,,,down\n5,6,7,NaN,up\n\n9,8,7,6,down\n")  # blank lines skipped
    x, y = read_series(path, label_column="kind")
    assert list(y) == ["up", "down", "up", "down"] and [s.shape for s in x] == [(1, 4), (1, 2), (1, 3), (1, 4)]
    assert x[2].tolist() == [[5.0, 6.0, 7.0]]
    dm = CsvDataModule(str(path), test_path=str(path), label_column="kind", val_fraction=0.0, normalize=False)
    xt, yt, lengths = dm._prepared_splits()["train"]
    assert lengths.tolist() == [4, 2, 3, 4] and xt[1, 0].tolist() == [4.0, 3.0, 0.0, 0.0]
    assert dm.class_names == ["down", "up"] and yt.tolist() == [1, 0, 1, 0]
    # the label last by index, semicolons sniffed
    (tmp_path / "b.csv").write_text("\n1;2;a\n3;4;b\n")  # sniffed from the first line that is not blank
    x, y = read_series(tmp_path / "b.csv", label_column=-1)
    assert list(y) == ["a", "b"] and x[1].tolist() == [[3.0, 4.0]]


@pytest.mark.parametrize("text, kw, match", [
    ("1\t0.5\tabc\n", {}, r"path: row 1 of bad.tsv, column 3: expected a number, got 'abc'"),
    ("id\tt0\n1\t0.5\n", {}, r"row 1 of bad.tsv, column 2: expected a number, got .t0.; .*pass header=true"),
    ("1\t0.5\t\t0.7\n", {}, r"row 1 of bad.tsv, column 3: a missing or infinite value inside the series"),
    ("1\t0.5\tinf\t0.7\n", {}, r"column 3: a missing or infinite value"),
    ("1\t1\t2\t3\n", {"channels": 2}, r"channels: expected each row's values to split into 2 channels.*row 1 of bad.tsv has 3 values"),
    ("\n\n", {}, r"path: bad.tsv holds no series"),
    ("a\tb\n1\t2\n", {"label_column": "kind"}, r"label_column: expected a column of bad.tsv's header, got 'kind'"),
    ("1\t2\n3\n", {}, r"row 2 of bad.tsv: expected a label and at least one value"),
    ("1\t2\n", {"label_column": 5}, r"row 1 of bad.tsv has 2 fields, no label column 5"),
])
def test_a_malformed_file_names_the_row_and_column(text, kw, match, tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_series(path, **kw)


def test_bad_arguments_name_themselves(tmp_path):
    with pytest.raises(FileNotFoundError, match="path: expected a CSV or TSV file"):
        CsvDataModule(str(tmp_path / "none.csv")).class_names
    for kw, match in (({"channels": 0}, "channels: expected an int >= 1"), ({"delimiter": "::"}, "delimiter: expected one"),
                      ({"label_column": 1.5}, "label_column: expected a column index"),
                      ({"test_fraction": 1.0}, "test_fraction")):
        with pytest.raises(ValueError, match=match):
            CsvDataModule("x.csv", **kw)


def test_the_command_lines_read_a_csv_or_tsv_path(tmp_path):
    from neuroview.training.sparsify_cli import _data_spec
    from neuroview.viz.report import data_module

    for name in ("a.csv", "b_TRAIN.tsv"):
        dm = data_module(str(tmp_path / name))  # neuroview explain --data PATH
        assert isinstance(dm, CsvDataModule) and dm.path == tmp_path / name
        spec = _data_spec(str(tmp_path / name), dm)  # what a sparse entry's manifest keeps to rebuild it
        # with how it was read (normalize, resample, the file's format), so that explain rebuilds the data as sparsify read it
        assert spec == {"class_path": "neuroview.data.CsvDataModule",
                        "init_args": {"path": str(tmp_path / name), "normalize": True, "resample": False,
                                      "label_column": 0, "channels": 1, "delimiter": None, "header": "auto",
                                      "seed": 0, "test_fraction": 0.2, "val_fraction": 0.1, "val_fold": None,
                                      "test_path": None, "val_path": None}}
