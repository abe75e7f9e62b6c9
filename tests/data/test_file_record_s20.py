"""A user's training file, fingerprinted and traced (probe P9, F1 and F2): the same path with its rows reordered was
carved into other splits, its "test" split holding training series (10 of 12), without a word; and the training and
validation splits named no row of the file (file_index), so a gallery's sample 20 was read as row 20 of the file, a
series of another class. Expected values are computed here: each series of the files below holds its own row number.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from neuroview.data import CsvDataModule, NpzDataModule
from neuroview.data.file_record import RECORD, check_recorded_file

NAMES = np.array(["cat", "dog", "eel"])


def _rows_file(tmp_path, n: int = 30, name: str = "train.npz", order=None):
    """An .npz of ``n`` series, series ``i`` all ``i`` plus a ramp (its row number readable after it is carved,
    with normalize off), class ``i % 3``; ``order``: its rows written in that order."""
    i = np.arange(n) if order is None else np.asarray(order)
    x = (i[:, None, None] + np.linspace(0, 0.5, 12)[None, None, :]).astype(np.float32)
    path = tmp_path / name
    np.savez(path, X=x, y=NAMES[i % 3])
    return path


def _rows_of(dm, split: str) -> list[int]:
    """The file row each sample of ``split`` is, read from the series themselves (their first value)."""
    return [int(round(float(dm._dataset(split)[j][0][0, 0]))) for j in range(len(dm._dataset(split)))]


def test_the_training_file_s_sha256_is_in_the_checkpoint_state(tmp_path):
    path = _rows_file(tmp_path)
    dm = NpzDataModule(str(path), normalize=False)
    dm.setup("fit")
    state = dm.state_dict()
    assert len(state[RECORD]["series_sha256"]) == 64 and state[RECORD]["path"] == str(path)
    assert state["neuroview_data_class"].endswith("NpzDataModule")  # the class record kept
    csv = tmp_path / "train.csv"
    csv.write_text("".join(f"{NAMES[i % 3]},{i},{i + 0.5},{i + 1}\n" for i in range(30)))
    cm = CsvDataModule(str(csv), normalize=False, header=False)
    cm.setup("fit")
    record = cm.state_dict()[RECORD]
    assert len(record["series_sha256"]) == 64 and record != state[RECORD]  # other series: another fingerprint


@pytest.mark.parametrize("restore_first", [True, False])  # Lightning restores after setup; a command before it
def test_the_training_file_reordered_at_its_path_is_refused_by_name(tmp_path, restore_first):
    path = _rows_file(tmp_path)
    trained = NpzDataModule(str(path), normalize=False)
    trained.setup("fit")
    state = trained.state_dict()
    _rows_file(tmp_path, order=np.random.default_rng(1).permutation(30))  # the same 30 series, another order
    dm = NpzDataModule(str(path), normalize=False)
    with pytest.raises(ValueError, match=r"path: .*train\.npz is the file the checkpoint run\.ckpt was trained on, but "
                                         r"its training split changed since .*Restore the file"):
        if restore_first:
            dm.expect_file(state[RECORD], "run.ckpt")
            dm.setup("test")
        else:
            dm.setup("test")
            dm.expect_file(state[RECORD], "run.ckpt")


def test_the_same_series_saved_again_or_another_file_are_not_refused(tmp_path):
    path = _rows_file(tmp_path)
    trained = NpzDataModule(str(path), normalize=False)
    trained.setup("fit")
    state = trained.state_dict()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with np.load(path) as f:
        x, y = f["X"], f["y"]
    np.savez_compressed(path, X=x, y=y)  # other bytes, the same arrays: the same carve
    assert hashlib.sha256(path.read_bytes()).hexdigest() != before
    same = NpzDataModule(str(path), normalize=False)
    same.expect_file(state[RECORD], "run.ckpt")
    same.setup("test")
    assert _rows_of(same, "test") == _rows_of(trained, "test")
    other = _rows_file(tmp_path, 12, "other.npz")  # another file (the record names train.npz): new data, not held
    dm = NpzDataModule(str(other), normalize=False, val_fraction=0)
    dm.expect_file(state[RECORD], "run.ckpt")
    dm.setup("test")


def test_the_command_check_reads_the_checkpoint_s_record(tmp_path):
    import torch

    path = _rows_file(tmp_path)
    trained = NpzDataModule(str(path), normalize=False)
    trained.setup("fit")
    ckpt = tmp_path / "run.ckpt"
    torch.save({"NpzDataModule": trained.state_dict()}, ckpt)
    check_recorded_file(str(ckpt), {"path": str(path)}, "neuroview.data.NpzDataModule")  # unchanged: nothing said
    _rows_file(tmp_path, 31)  # a series appended
    with pytest.raises(ValueError, match=r"model\.init_weights: .*train\.npz is the file the checkpoint .*run\.ckpt was "
                                         r"trained on, but its training split changed since"):
        check_recorded_file(str(ckpt), {"path": str(path)}, "neuroview.data.NpzDataModule")
    check_recorded_file(str(ckpt), {"path": str(tmp_path / "elsewhere.npz")}, "neuroview.data.NpzDataModule")  # none


@pytest.mark.parametrize("options", [{}, {"val_fold": 1, "val_fraction": 0.25}, {"val_fraction": 0}])
def test_every_split_names_its_rows_of_the_npz(tmp_path, options):
    dm = NpzDataModule(str(_rows_file(tmp_path)), normalize=False, **options)
    dm.setup("fit")
    for split in dm.split_sizes():
        assert dm.split_rows(split).tolist() == _rows_of(dm, split), split
    assert sorted(sum((dm.split_rows(s).tolist() for s in dm.split_sizes()), [])) == list(range(30))  # each row once


def test_every_split_names_its_rows_of_the_csv(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("".join(f"{NAMES[i % 3]},{i},{i + 0.5},{i + 1}\n" for i in range(30)))
    dm = CsvDataModule(str(csv), normalize=False, header=False)
    dm.setup("fit")
    for split in ("train", "val", "test"):
        assert dm.split_rows(split).tolist() == _rows_of(dm, split), split


def test_a_validation_split_of_the_file_s_own_names_no_carved_rows(tmp_path):
    i = np.arange(30)
    x = (i[:, None, None] + np.zeros(12)).astype(np.float32)
    path = tmp_path / "own.npz"
    np.savez(path, X=x, y=NAMES[i % 3], X_val=x[:6] + 100, y_val=NAMES[i[:6] % 3])
    dm = NpzDataModule(str(path), normalize=False)
    dm.setup("fit")
    assert dm.split_rows("train").tolist() == _rows_of(dm, "train")
    assert dm.split_rows("val") is None  # its own rows, in order: split_index
