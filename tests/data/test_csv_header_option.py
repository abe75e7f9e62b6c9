"""``header`` of a CSV: ``"auto"`` refuses a first row that looks like pandas' header, and ``false`` says there is
none, so a first series that counts up evenly (0, 1, 2, 3 of class "up") is read rather than refused."""

from __future__ import annotations

import numpy as np
import pytest

from neuroview.data import CsvDataModule
from neuroview.data.delimited import read_series


def _write(path, rows):
    path.write_text("".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def test_an_even_ramp_first_series_reads_with_header_false(tmp_path):
    path = _write(tmp_path / "r.csv", [["up", 0, 1, 2, 3], ["down", 3, 2, 1, 0], ["up", 0, 1, 2, 4]])
    with pytest.raises(ValueError, match=r"header: row 1 of r.csv reads .*'up'.*pass header=true .*or header=false if it "
                                         r"is a series"):
        read_series(path)  # "auto": looks like pandas' header of a labelled array
    series, labels = read_series(path, header=False)
    assert labels.tolist() == ["up", "down", "up"]
    np.testing.assert_array_equal(np.stack(series)[:, 0], [[0, 1, 2, 3], [3, 2, 1, 0], [0, 1, 2, 4]])
    dm = CsvDataModule(str(path), test_path=str(path), header=False, val_fraction=0.0, normalize=False)
    dm.setup("fit")
    assert sum(len(y) for _, y in dm.train_dataloader()) == 3  # every row a series, the first one included


def test_header_true_still_skips_the_first_row_and_auto_reads_a_plain_file(tmp_path):
    path = _write(tmp_path / "h.csv", [["label", "t0", "t1", "t2"], ["a", 0.5, 0.1, 0.3], ["b", 0.2, 0.9, 0.4]])
    _, labels = read_series(path, header=True)
    assert labels.tolist() == ["a", "b"]
    plain = _write(tmp_path / "p.csv", [["a", 0.5, 0.1, 0.3], ["b", 0.2, 0.9, 0.4]])
    assert read_series(plain)[1].tolist() == read_series(plain, header=False)[1].tolist() == ["a", "b"]


def test_header_false_with_a_named_label_column_or_a_bad_value_is_refused(tmp_path):
    path = _write(tmp_path / "n.csv", [["label", "t0", "t1"], ["a", 0.5, 0.1]])
    with pytest.raises(ValueError, match=r"header: label_column='label' names a column of the header, but header=false"):
        read_series(path, label_column="label", header=False)
    assert read_series(path, label_column="label")[1].tolist() == ["a"]  # "auto" with a name: the first row is the header
    with pytest.raises(ValueError, match=r"header: expected true, false or \"auto\" .*got 'yes'"):
        CsvDataModule(str(path), header="yes")
