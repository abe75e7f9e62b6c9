"""What a probe of users' own files found (s15): .npz keys the module does not read (``X_Test``, ``Xtest``, ``length``)
dropped without a word; pandas' named index column (``id``) read as step 0 of every series; the training file given
again as its own test or validation file scored as unseen; ``test_fraction``/``val_fraction`` left unused by a split
of the file's own without a word; a label in the last column blamed on a header. Expected answers come from the arrays
each test writes."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
import torch

from neuroview.data import CsvDataModule, NpzDataModule
from neuroview.data.delimited import read_series

torch.set_num_threads(1)


def _xy(n=30, t=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1, t)).round(3).astype(np.float32), np.arange(n) % 3


def _setup(dm):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup("fit")
    return dm, [str(w.message) for w in caught]


def _csv(path, x, y, head=None, last=False, index=None):
    rows = [[*map(str, r), str(c)] if last else [str(c), *map(str, r)] for r, c in zip(x[:, 0], y)]
    if index is not None:
        rows = [[str(index + i), *r] for i, r in enumerate(rows)]
    path.write_text("".join(",".join(r) + "\n" for r in ([head] if head else []) + rows))
    return path


# ----------------------------------------------------------------- 1: .npz keys the module does not read
@pytest.mark.parametrize("keys, named", [
    (("X_Test", "Y_Test"), r"'X_Test' \(did you mean 'X_test'\?\), 'Y_Test' \(did you mean 'y_test'\?\)"),
    (("Xtest", "ytest"), r"'Xtest' \(did you mean 'X_test'\?\), 'ytest' \(did you mean 'y_test'\?\)"),
    (("X_test_",), r"'X_test_' \(did you mean 'X_test'\?\)"),
    (("length",), r"'length' \(did you mean 'lengths'\?\)"),
])
def test_an_npz_key_the_module_does_not_read_is_named_with_the_nearest_known_key(tmp_path, keys, named):
    x, y = _xy()
    extra = {k: (np.full(30, 10) if k == "length" else x[:12] if k.lower().startswith("x") else y[:12]) for k in keys}
    np.savez(tmp_path / "f.npz", X=x, y=y, **extra)
    # before: no error; a fifth of X carved as the test split (the file's own unread), or the padding read as steps
    with pytest.raises(ValueError, match=rf"path: f.npz holds keys NpzDataModule does not read: {named}; it reads X, y, "
                                         r"X_test, y_test, X_val, y_val, lengths, lengths_test, lengths_val \(found "):
        NpzDataModule(str(tmp_path / "f.npz"), val_fraction=0.0).setup()


def test_an_npz_of_known_keys_only_still_reads(tmp_path):
    x, y = _xy()
    np.savez(tmp_path / "ok.npz", X=x, y=y, X_test=x[:12] + 1, y_test=y[:12], lengths=np.full(30, 20),
             lengths_test=np.full(12, 20))
    dm, said = _setup(NpzDataModule(str(tmp_path / "ok.npz"), val_fraction=0.0))
    assert dm.split_sizes() == {"train": 30, "test": 12} and said == []


def test_an_npz_key_unlike_any_it_reads_is_warned_about_and_the_file_read(tmp_path):
    x, y = _xy()
    np.savez(tmp_path / "meta.npz", X=x, y=y, classes=np.array(["cat", "dog", "eel"]), meta=np.arange(3),
             y_names=np.array(["cat", "dog", "eel"]), X_std=np.ones(3), lengths_train=np.full(30, 20))  # near names too
    with pytest.warns(UserWarning, match=r"path: meta.npz holds arrays NpzDataModule does not read: 'X_std', 'classes', "
                                         r"'lengths_train', 'meta', 'y_names'"):
        dm = NpzDataModule(str(tmp_path / "meta.npz"), val_fraction=0.0)
        dm.setup()
    assert dm.split_sizes() == {"train": 24, "test": 6}  # a user's own record beside X and y is no error


# ----------------------------------------------------------------- 2: pandas' named index column
def test_a_named_index_column_counting_the_rows_is_refused(tmp_path):
    x, y = _xy()
    head = ["id", "label", *(f"t{i}" for i in range(20))]
    path = _csv(tmp_path / "named.csv", x, np.array(["cat", "dog", "eel"])[y], head=head, index=0)
    with pytest.raises(ValueError, match=r"path: column 1 of named.csv, 'id', holds a distinct integer a row \(0, 1, "
                                         r"\.\.\.\): pandas' index .*df.to_csv\(path, index=False\)"):
        CsvDataModule(str(path), label_column="label", val_fraction=0.0).setup()  # before: read, ids as step 0
    one = _csv(tmp_path / "one.csv", x, y, head=["index", "label", *map(str, range(20))], index=1)  # 1, ..., N too
    with pytest.raises(ValueError, match=r"column 1 of one.csv, 'index', holds a distinct integer a row \(1, 2"):
        CsvDataModule(str(one), label_column=1, header=True, val_fraction=0.0).setup()
    order = np.random.default_rng(0).permutation(30)  # a split's rows (train_test_split): an index in any order
    rows = [[str(k), str(c), *map(str, r)] for k, r, c in zip(order + 7, x[:, 0], y)]
    (tmp_path / "split.csv").write_text(",".join(head) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"column 1 of split.csv, 'id', holds a distinct integer a row"):
        CsvDataModule(str(tmp_path / "split.csv"), label_column="label", val_fraction=0.0).setup()


def test_a_first_step_named_as_a_step_or_not_an_index_is_read(tmp_path):
    x, y = _xy()
    x[:, 0, 0] = np.arange(30)  # a first step that is the row number, under a step's name: read as it is
    path = _csv(tmp_path / "steps.csv", x[:, :, 1:], y, head=["t0", "label", *(f"t{i}" for i in range(1, 20))], index=0)
    dm, said = _setup(CsvDataModule(str(path), label_column="label", val_fraction=0.0, normalize=False, test_fraction=0.2))
    assert dm.in_channels == 1 and dm.max_len == 20 and not [s for s in said if "counts the rows" in s]
    count = _csv(tmp_path / "count.csv", x[:, :, 1:], y, head=["count", "label", *(f"t{i}" for i in range(1, 20))],
                 index=0)  # another name counting 30 rows: read, and said
    dm, said = _setup(CsvDataModule(str(count), label_column="label", val_fraction=0.0))
    assert dm.max_len == 20 and [s for s in said if s.startswith("path: column 1 of count.csv, 'count', counts the rows")]
    small = _csv(tmp_path / "hours.csv", x[:3, :, 1:], y[:3], head=["hour 0", "label", *(f"t{i}" for i in range(1, 20))],
                 index=0)  # three rows whose counts start 0, 1, 2: no evidence of an index, nothing said
    assert read_series(small, label_column="label")[0][0].shape == (1, 20)


# ----------------------------------------------------------------- 3: the training file again as a held-out split
def test_the_training_file_again_as_a_test_or_validation_file_is_warned_about(tmp_path):
    x, y = _xy()
    path = _csv(tmp_path / "a.csv", x, y)
    shutil.copy(path, tmp_path / "a_copy.csv")
    for kw, name in ((dict(test_path=str(path)), "test_path"), (dict(test_path=str(tmp_path / "a_copy.csv")), "test_path"),
                     (dict(val_path=str(path)), "val_path")):
        _, said = _setup(CsvDataModule(str(path), **kw))  # before: no word, test_acc the training accuracy
        assert [s for s in said if s.startswith(f"{name}: its series are the training series of a.csv, value for value")]
    np.savez(tmp_path / "self.npz", X=x, y=y, X_test=x, y_test=y)
    _, said = _setup(NpzDataModule(str(tmp_path / "self.npz"), val_fraction=0.0))
    assert [s for s in said if s.startswith("path: X_test: its series are the training series of self.npz (X)")]
    other = _csv(tmp_path / "b.csv", x + 1, y)  # other series of the same shape: nothing said
    _, said = _setup(CsvDataModule(str(path), test_path=str(other)))
    assert not [s for s in said if "training series" in s]


# ----------------------------------------------------------------- 4: fractions a split of the file's own leaves unused
def test_fractions_a_split_of_the_file_s_own_leaves_unused_are_warned_about_once(tmp_path):
    x, y = _xy()
    np.savez(tmp_path / "own.npz", X=x, y=y, X_test=x[:9] + 1, y_test=y[:9], X_val=x[:9] + 2, y_val=y[:9])
    dm, said = _setup(NpzDataModule(str(tmp_path / "own.npz"), test_fraction=0.5, val_fraction=0.3))
    assert [s for s in said if s.startswith("test_fraction: 0.5 is not used: NpzDataModule reads the test split of its "
                                            "own (X_test)")]
    assert [s for s in said if s.startswith("val_fraction: 0.3 is not used: NpzDataModule reads the validation split "
                                            "of its own (X_val)")]
    assert len(said) == 2 and dm.split_sizes() == {"train": 30, "val": 9, "test": 9}  # before: no word
    test = _csv(tmp_path / "t.csv", x[:9] + 1, y[:9])
    _, said = _setup(CsvDataModule(str(_csv(tmp_path / "tr.csv", x, y)), test_path=str(test), test_fraction=0.4))
    assert said and said[0].startswith("test_fraction: 0.4 is not used: CsvDataModule reads the test split of its own "
                                       "(test_path)")


def test_defaults_and_the_ucr_recipes_val_fraction_0_are_not_warned_about(tmp_path):
    x, y = _xy()
    np.savez(tmp_path / "own.npz", X=x, y=y, X_test=x[:9] + 1, y_test=y[:9], X_val=x[:9] + 2, y_val=y[:9])
    for kw in ({}, {"val_fraction": 0.0, "batch_size": "auto", "normalize": "sample", "resample": True}):
        _, said = _setup(NpzDataModule(str(tmp_path / "own.npz"), **kw))
        assert said == []
    np.savez(tmp_path / "carved.npz", X=x, y=y)  # no split of its own: the fractions carve, nothing said
    dm, said = _setup(NpzDataModule(str(tmp_path / "carved.npz"), test_fraction=0.5, val_fraction=0.3))
    assert said == [] and dm.split_sizes()["test"] == 15


# ----------------------------------------------------------------- 5: the label in the last column
def test_a_label_in_the_last_column_names_label_column_not_a_header(tmp_path):
    x, y = _xy()
    path = _csv(tmp_path / "f2.csv", x, np.array(["cat", "dog", "eel"])[y], last=True)
    with pytest.raises(ValueError, match=r"row 1 of f2.csv, column 21: expected a number, got 'cat'; column 21 holds "
                                         r"text on the rows below too \('dog', 'eel', 'cat'\): the labels\? pass "
                                         r"label_column=-1 \(the last column\)$"):
        CsvDataModule(str(path), val_fraction=0.0).setup()  # before: "... pass header=true", which moved it to row 2
    with pytest.raises(ValueError, match=r"row 2 of f2.csv, column 21: .*pass label_column=-1 \(the last column\)$"):
        CsvDataModule(str(path), val_fraction=0.0, header=True).setup()
    dm, _ = _setup(CsvDataModule(str(path), val_fraction=0.0, label_column=-1))
    assert dm.class_names == ["cat", "dog", "eel"]
    order = np.argsort(y, kind="stable")  # sorted by class, as many exports are: one label on the rows below
    ranked = _csv(tmp_path / "sorted.csv", x[order], np.array(["cat", "dog", "eel"])[y[order]], last=True)
    with pytest.raises(ValueError, match=r"row 1 of sorted.csv, column 21: .*pass label_column=-1 \(the last column\)$"):
        CsvDataModule(str(ranked), val_fraction=0.0).setup()
    gaps = tmp_path / "na.csv"  # a column of gaps written NA holds no labels: no such hint (a review)
    gaps.write_text("a,1.0,2.0,NA,3.0\nb,1.5,2.5,NA,3.5\na,1.1,2.1,NA,3.1\nb,1.2,2.2,NA,3.3\n")
    with pytest.raises(ValueError, match=r"column 4: expected a number, got 'NA'") as e:
        read_series(gaps)
    assert "label_column" not in str(e.value)


def test_a_header_row_still_names_header_true(tmp_path):
    x, y = _xy()
    path = _csv(tmp_path / "h.csv", x, y, head=["kind", *(f"v{i}" for i in range(20))])
    with pytest.raises(ValueError, match=r"row 1 of h.csv, column 2: expected a number, got 'v0'; if the first row "
                                         r"names the columns, pass header=true$"):
        CsvDataModule(str(path), val_fraction=0.0).setup()
