"""What a probe of users' own files found read silently wrong: a pandas header naming the label column read as a
series of a class "label", pandas' index column read as step 0 of every series, `explain --data F.csv` reading a
3-channel CSV as one channel (only normalize/resample carried from the checkpoint), and an .npz X [N, k, k] read
as channels-first without a word."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroview.data import CsvDataModule, NpzDataModule, read_as_trained
from neuroview.data.delimited import read_series
from neuroview.viz.report import resolve_data

torch.set_num_threads(1)


def _rows(n=30, t=12, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, t)).astype(np.float32), np.arange(n) % 3


def _csv(path, head, x, y, last=False):
    body = [[*map(repr, map(float, r)), str(c)] if last else [str(c), *map(repr, map(float, r))] for r, c in zip(x, y)]
    path.write_text("".join(",".join(r) + "\n" for r in ([head] if head else []) + body))
    return path


# ----------------------------------------------------------------- 1: a header naming the label column
@pytest.mark.parametrize("head, kw", [
    (["label", *map(str, range(12))], {}),                       # df.insert(0, "label", y); df.to_csv(index=False)
    ([*map(str, range(12)), "label"], {"label_column": -1}),     # df["label"] = y
    (["label", *map(str, range(1, 13))], {}),                    # one-based column numbers
    (["label", *(f"{i / 10:.1f}" for i in range(12))], {}),      # times 0.0, 0.1, 0.2 ...
])
def test_a_header_naming_the_label_column_is_refused_and_read_with_header_true(tmp_path, head, kw):
    """Before: read as a first series of a made-up class "label" (4 classes, 31 series in a file of 3 and 30)."""
    x, y = _rows()
    path = _csv(tmp_path / "h.csv", head, x, y, last="label_column" in kw)
    with pytest.raises(ValueError, match=r"header: row 1 of h.csv reads .*'label'.*pass header=true"):
        CsvDataModule(str(path), val_fraction=0.0, **kw).setup()
    series, labels = read_series(path, header=True, **kw)
    assert np.array_equal(np.stack(series)[:, 0], x) and list(labels) == [str(c) for c in y]


def test_a_first_series_of_a_class_named_in_words_is_still_data(tmp_path):
    x, _ = _rows(6)
    y = np.array(["cat", "dog", "emu"] * 2)
    path = _csv(tmp_path / "w.csv", None, np.abs(x) + 0.1, y)
    series, labels = read_series(path)
    assert list(labels) == list(y) and np.allclose(np.stack(series)[:, 0], np.abs(x) + 0.1)


# ----------------------------------------------------------------- 2: pandas' index column
def test_pandas_index_column_is_refused_by_name(tmp_path):
    """Before: `df.to_csv(path)` (index=True) read with label_column="label" put each row's number in as step 0."""
    x, y = _rows()
    names = np.array(["a", "b", "c"])[y]
    path = tmp_path / "pd.csv"
    path.write_text(",label," + ",".join(f"t{i}" for i in range(12)) + "\n"
                    + "".join(f"{i},{c}," + ",".join(map(repr, map(float, r))) + "\n" for i, (r, c) in enumerate(zip(x, names))))
    for kw in ({"label_column": "label"}, {"label_column": 1, "header": True}):
        with pytest.raises(ValueError, match=r"path: column 1 of pd.csv's header is unnamed: pandas' index column "
                                             r"\(write with df.to_csv\(path, index=False\)\)"):
            read_series(path, **kw)
    # a header of column numbers after the index, not declared: the same error, not "expected a label"
    (tmp_path / "pn.csv").write_text(",0,1,2\n0,1.5,2.5,3.5\n1,1.5,2.5,3.5\n")
    with pytest.raises(ValueError, match=r"column 1 of pn.csv's header is unnamed: pandas' index column"):
        read_series(tmp_path / "pn.csv")


# ----------------------------------------------------------------- 3: explain --data F.csv reads as trained
def _three_channels(path, n=12, t=5, seed=3):
    """A CSV of 3 channels, the label last, ';'-separated, with a header: nothing of it read by the defaults."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 3, t)).astype(np.float32), np.arange(n) % 2
    path.write_text(";".join([f"v{i}" for i in range(3 * t)] + ["kind"]) + "\n"
                    + "".join(";".join([*map(repr, map(float, s.ravel())), f"c{c}"]) + "\n" for s, c in zip(x, y)))
    return x, y


def test_other_data_of_the_checkpoint_s_class_is_read_in_its_file_format(tmp_path):
    """Before: only normalize/resample carried; channels, label_column, header, delimiter dropped (a misleading
    error on the header's 'v0'), and val_fraction 0.1 carved from a small file the model was tested on whole."""
    x, y = _three_channels(tmp_path / "te.csv")
    spec = {"class_path": "neuroview.data.CsvDataModule",  # as a checkpoint records it
            "init_args": {"path": str(tmp_path / "tr.csv"), "test_path": None, "label_column": -1, "channels": 3,
                          "delimiter": ";", "header": True, "test_fraction": 0.2, "batch_size": "auto",
                          "val_fraction": 0.0, "seed": 0, "normalize": False, "resample": True}}
    dm = CsvDataModule(str(tmp_path / "te.csv"))
    assert read_as_trained(dm, spec) == {"normalize": False, "resample": True, "label_column": -1, "channels": 3,
                                         "delimiter": ";", "header": True, "val_fraction": 0.0}
    dm.setup()
    assert (dm.in_channels, dm.max_len, dm.class_names, dm.val_fraction) == (3, 5, ["c0", "c1"], 0.0)
    got = torch.cat([dm._prepared_splits()[s][0] for s in ("train", "test")]).numpy()
    assert got.shape == x.shape and np.array_equal(got[np.argsort(got[:, 0, 0])], x[np.argsort(x[:, 0, 0])])
    # explain's --data PATH: the same
    dm, _ = resolve_data(str(tmp_path / "te.csv"), spec, model=None)
    assert (dm.channels, dm.label_column, dm.header, dm.delimiter, dm.val_fraction) == (3, -1, True, ";", 0.0)
    # an .npz checkpoint: its layout
    npz = {"class_path": "neuroview.data.npz.NpzDataModule", "init_args": {"layout": "channels_last", "val_fraction": 0.0}}
    dn = NpzDataModule(str(tmp_path / "o.npz"))
    assert read_as_trained(dn, npz) == {"layout": "channels_last", "val_fraction": 0.0} and dn.layout == "channels_last"
    # another class: nothing of its file format (an .npz's layout is no CSV option, a CSV's channels no .npz's)
    dc = CsvDataModule(str(tmp_path / "te.csv"))
    assert read_as_trained(dc, npz) == {} and (dc.channels, dc.val_fraction) == (1, 0.1)
    dn = NpzDataModule(str(tmp_path / "o.npz"))
    assert read_as_trained(dn, spec) == {"normalize": False, "resample": True} and dn.val_fraction == 0.1
    assert not hasattr(dn, "channels")
    with pytest.raises(ValueError, match=r"trained_on: channels: expected an int >= 1, got 0"):
        read_as_trained(CsvDataModule(str(tmp_path / "te.csv")), {**spec, "init_args": {"channels": 0}})


# ----------------------------------------------------------------- 4: an .npz X [N, k, k]
def test_a_square_npz_is_refused_under_auto(tmp_path):
    """Before: [N, 6, 6] read as 6 channels of 6 steps without a word (it may be 6 steps of 6 channels)."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 6, 6)).astype(np.float32), np.arange(40) % 2
    np.savez(tmp_path / "sq.npz", X=x, y=y)
    with pytest.raises(ValueError, match=r"path: X of sq.npz has shape \[40, 6, 6\]: .*as many channels as steps.*"
                                         r"pass layout='channels_last'"):
        NpzDataModule(str(tmp_path / "sq.npz"), val_fraction=0.0).setup()
    np.savez(tmp_path / "one.npz", X=x[:, :, :1], y=y)  # more channels than steps: still refused
    with pytest.raises(ValueError, match=r"has shape \[40, 6, 1\]: .*more channels than steps"):
        NpzDataModule(str(tmp_path / "one.npz"), val_fraction=0.0).setup()
    for layout, first in (("channels_first", x[:, :, 0]), ("channels_last", x[:, 0, :])):
        dm = NpzDataModule(str(tmp_path / "sq.npz"), val_fraction=0.0, normalize=False, layout=layout)
        got = torch.cat([dm._prepared_splits()[s][0] for s in ("train", "test")]).numpy()[:, :, 0]
        assert np.array_equal(np.sort(got, 0), np.sort(first, 0))
