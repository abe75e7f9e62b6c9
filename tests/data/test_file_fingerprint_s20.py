"""The training file's fingerprint (review R6 of f7c2fc8, findings 1, 2, 4, 5): it covers the training split as read
(values, labels, order; whether the file has test/validation splits of its own), so re-saves that carve the same
split are not refused; a copy of a changed file, carved as the model's own, is refused with advice that works; a
resume is told what a resume can do; the file is read and hashed once, with no copy of its arrays, and a file read
whole is not hashed. Expected values are the series themselves: each series holds its own row number."""

from __future__ import annotations

import os
import shutil
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from neuroview.data import CsvDataModule, NpzDataModule
from neuroview.data import file_record
from neuroview.data.file_record import RECORD
from neuroview.data.splits import whole_files

NAMES = np.array(["cat", "dog", "eel"])


def _arrays(n: int = 30, order=None):
    i = np.arange(n) if order is None else np.asarray(order)
    return (i[:, None, None] + np.linspace(0, 0.5, 12)[None, None, :]).astype(np.float32), NAMES[i % 3]


def _trained(path, **kw) -> dict:
    dm = NpzDataModule(str(path), normalize=False, **kw) if str(path).endswith(".npz") else CsvDataModule(
        str(path), normalize=False, header=False, **kw)
    dm.setup("fit")
    return dm.state_dict()[RECORD]


def _first_values(dm, split: str) -> list[int]:
    return sorted(int(round(float(dm._dataset(split)[j][0][0, 0]))) for j in range(len(dm._dataset(split))))


# finding 2: re-saves that leave the training split as read are not refused


def test_an_npz_whose_own_test_split_gained_series_is_scored_not_refused(tmp_path):
    x, y = _arrays()
    path = tmp_path / "own_test.npz"
    np.savez(path, X=x, y=y, X_test=x[:9] + 100, y_test=y[:9])
    record = _trained(path)
    np.savez(path, X=x, y=y, X_test=x[:12] + 100, y_test=y[:12])  # three new test series
    dm = NpzDataModule(str(path), normalize=False)
    dm.expect_file(record, "run.ckpt")
    dm.setup("test")
    assert _first_values(dm, "test") == list(range(100, 112))  # the new test set, whole


def test_an_npz_whose_own_validation_split_gained_series_is_validated_not_refused(tmp_path):
    x, y = _arrays()
    path = tmp_path / "own_val.npz"
    np.savez(path, X=x, y=y, X_val=x[:6] + 200, y_val=y[:6])
    record = _trained(path)
    np.savez(path, X=x, y=y, X_val=x[:9] + 200, y_val=y[:9])
    dm = NpzDataModule(str(path), normalize=False)
    dm.expect_file(record, "run.ckpt")
    dm.setup("validate")
    assert _first_values(dm, "val") == list(range(200, 209))


@pytest.mark.parametrize("resave", ["extra_key", "float64", "label_width"])
def test_an_npz_saved_again_with_the_same_training_split_is_not_refused(tmp_path, resave):
    x, y = _arrays()
    path = tmp_path / "train.npz"
    np.savez(path, X=x, y=y)
    record = _trained(path)
    if resave == "extra_key":
        np.savez(path, X=x, y=y, notes=np.array([1.0]))  # a key NpzDataModule does not read
    elif resave == "float64":
        np.savez(path, X=x.astype(np.float64), y=y)  # the same values, another dtype
    else:
        np.savez(path, X=x, y=y.astype("U8"))  # the same labels, another string width
    dm = NpzDataModule(str(path), normalize=False)
    dm.expect_file(record, "run.ckpt")
    with pytest.warns(UserWarning) if resave == "extra_key" else _nothing():
        dm.setup("test")
    assert len(dm._dataset("test")) == 6


def test_a_csv_saved_again_with_crlf_line_endings_is_not_refused(tmp_path):
    path = tmp_path / "train.csv"
    rows = "".join(f"{NAMES[i % 3]},{i},{i + 0.5},{i + 1}\n" for i in range(30))
    path.write_bytes(rows.encode())
    record = _trained(path)
    path.write_bytes(rows.replace("\n", "\r\n").encode())  # Excel, git autocrlf
    dm = CsvDataModule(str(path), normalize=False, header=False)
    dm.expect_file(record, "run.ckpt")
    dm.setup("test")
    assert len(dm._dataset("test")) == 6


@pytest.mark.parametrize("change", ["one_value", "one_label", "order", "own_test_dropped"])
def test_a_training_split_changed_in_any_way_is_still_refused(tmp_path, change):
    x, y = _arrays()
    path = tmp_path / "train.npz"
    np.savez(path, X=x, y=y, X_test=x[:6] + 100, y_test=y[:6])
    record = _trained(path)
    x2, y2 = x.copy(), y.copy()
    if change == "one_value":
        x2[7, 0, 3] += 1e-3
    elif change == "one_label":
        y2[[0, 1]] = y2[[1, 0]]
    elif change == "order":
        x2, y2 = x[::-1], y[::-1]
    np.savez(path, X=x2, y=y2, **({} if change == "own_test_dropped" else {"X_test": x[:6] + 100, "y_test": y[:6]}))
    dm = NpzDataModule(str(path), normalize=False)
    dm.expect_file(record, "run.ckpt")
    with pytest.raises(ValueError, match=r"train\.npz is the file the checkpoint run\.ckpt was trained on, but its "
                                         r"training split changed since"):
        dm.setup("test")


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# finding 1: a copy of the changed file is not taken for the model's own; the advice leads to a correct run


def test_a_copy_of_the_changed_training_file_carved_as_the_model_s_own_is_refused(tmp_path):
    x, y = _arrays()
    path = tmp_path / "data.npz"
    np.savez(path, X=x, y=y)
    record = _trained(path)
    x2, y2 = _arrays(36)  # six series appended
    np.savez(path, X=x2, y=y2)
    shutil.copy(path, tmp_path / "data_v2.npz")  # the new contents under another name, data.npz left changed
    dm = NpzDataModule(str(tmp_path / "data_v2.npz"), normalize=False)
    dm.expect_file(record, "run.ckpt")
    with pytest.raises(ValueError, match=r"data_v2\.npz is a copy of .*data\.npz, the file the checkpoint run\.ckpt was "
                                         r"trained on, but that file changed since.*keep them under another name"):
        dm.setup("test")
    os.replace(path, tmp_path / "data_v3.npz")  # the advice: the new contents under another name, nothing at data.npz
    with whole_files():  # what a command does with a file other than the model's
        new = NpzDataModule(str(tmp_path / "data_v3.npz"), normalize=False, val_fraction=0)
    new.expect_file(record, "run.ckpt")
    new.setup("test")
    assert _first_values(new, "test") == list(range(36))  # read whole, as new data


def test_the_training_file_moved_with_its_training_split_unchanged_is_not_refused(tmp_path):
    x, y = _arrays()
    path = tmp_path / "data.npz"
    np.savez(path, X=x, y=y)
    record = _trained(path)
    os.replace(path, tmp_path / "moved.npz")
    dm = NpzDataModule(str(tmp_path / "moved.npz"), normalize=False)
    dm.expect_file(record, "run.ckpt")
    dm.setup("test")
    assert len(dm._dataset("test")) == 6


# finding 4: a resume is told what a resume can do


@pytest.mark.parametrize("where", ["at_its_path", "a_copy"])
def test_a_resume_on_a_changed_training_file_is_refused_with_resume_advice(tmp_path, where):
    from pytorch_lightning.trainer.states import TrainerFn

    x, y = _arrays()
    path = tmp_path / "data.npz"
    np.savez(path, X=x, y=y)
    trained = NpzDataModule(str(path), normalize=False)
    trained.setup("fit")
    state = trained.state_dict()
    np.savez(path, X=_arrays(36)[0], y=_arrays(36)[1])
    read = path if where == "at_its_path" else shutil.copy(path, tmp_path / "v2.npz")
    dm = NpzDataModule(str(read), normalize=False)
    dm.trainer = SimpleNamespace(state=SimpleNamespace(fn=TrainerFn.FITTING), ckpt_path="run.ckpt")
    dm.load_state_dict(state)
    with pytest.raises(ValueError) as e:
        dm.setup("fit")
    said = str(e.value)
    assert "a resume would carve the training and validation splits of the changed file otherwise" in said
    assert "neuroview fit --model.init_weights run.ckpt (without --ckpt_path)" in said
    assert "save the new contents under another name" not in said and "scored as if unseen" not in said


# finding 5: read and hashed once, no copy of the arrays, nothing hashed for a file read whole


def test_the_npz_is_read_once_and_hashed_without_a_copy_of_its_arrays(tmp_path, monkeypatch):
    x = np.zeros((2048, 1, 2048), np.float32)  # 16 MiB
    x[:, 0, 0] = np.arange(2048)
    path = tmp_path / "big.npz"
    np.savez(path, X=x, y=NAMES[np.arange(2048) % 3])
    del x
    dm = NpzDataModule(str(path), normalize=False)
    read = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or real(self))
    tracemalloc.start()
    try:
        out = dm.load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read == []  # np.load reads the arrays; the bytes are not held beside them
    size = 16 << 20
    assert peak < size * 2.3, f"{peak / size:.2f} times X"  # the arrays and their carve (2.0 before f7c2fc8, 3.0 at it)
    assert len(out["train"][1]) + len(out["test"][1]) == 2048


def test_a_csv_is_read_once(tmp_path, monkeypatch):
    path = tmp_path / "train.csv"
    path.write_text("".join(f"{NAMES[i % 3]},{i},{i + 0.5},{i + 1}\n" for i in range(30)))
    read = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or real(self))
    CsvDataModule(str(path), normalize=False, header=False).setup("fit")
    assert read == [path]


def test_a_file_read_whole_is_not_fingerprinted(tmp_path, monkeypatch):
    x, y = _arrays()
    path = tmp_path / "new.npz"
    np.savez(path, X=x, y=y)

    def refuse(*a, **k):
        raise AssertionError("hashed")

    monkeypatch.setattr(file_record, "series_sha256", refuse)
    with whole_files():
        dm = NpzDataModule(str(path), normalize=False, val_fraction=0)
    dm.setup("test")
    assert _first_values(dm, "test") == list(range(30)) and RECORD not in dm.state_dict()


def test_neuroview_test_on_the_ckpt_path_leaves_the_record_to_lightning_s_restore(tmp_path, monkeypatch):
    from neuroview.training.ckpt_data import check_evaluated_data

    def refuse(*a, **k):
        raise AssertionError("the checkpoint read again, or the file hashed, before the data module reads it")

    monkeypatch.setattr(file_record, "recorded_file", refuse)
    monkeypatch.setattr(file_record, "series_sha256", refuse)
    path = str(tmp_path / "data.npz")
    saved = {"_class_path": "neuroview.data.NpzDataModule", "path": path, "seed": 0}
    data = {"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": path, "seed": 0}}
    check_evaluated_data(str(tmp_path / "run.ckpt"), data, saved, "test")


def test_the_record_is_read_from_a_memory_mapped_checkpoint(tmp_path, monkeypatch):
    import torch

    x, y = _arrays()
    path = tmp_path / "data.npz"
    np.savez(path, X=x, y=y)
    dm = NpzDataModule(str(path), normalize=False)
    dm.setup("fit")
    ckpt = tmp_path / "run.ckpt"
    torch.save({"NpzDataModule": dm.state_dict(), "state_dict": {"w": torch.zeros(4)}}, ckpt)
    seen = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.append(k.get("mmap")) or real(*a, **k))
    assert file_record.recorded_file(str(ckpt), NpzDataModule) == dm.state_dict()[RECORD]
    assert seen == [True]


@pytest.mark.parametrize("resave", ["float64", "zero padding"])
def test_a_variable_length_set_saved_again_with_the_same_series_is_not_refused(tmp_path, resave):
    """Series padded with NaN past their lengths: float64 of the same values, or another padding, is the same training
    split (NaN is not equal to itself, and the padding was hashed)."""
    x, y = _arrays()
    x[1::2, :, 8:] = np.nan  # every other series 8 steps long
    lengths = np.where(np.arange(len(y)) % 2 == 1, 8, 12)
    np.savez(tmp_path / "v.npz", X=x, y=y, lengths=lengths)
    record = _trained(tmp_path / "v.npz")
    again = x.astype(np.float64) if resave == "float64" else np.nan_to_num(x, nan=0.0)
    np.savez(tmp_path / "v.npz", X=again, y=y, lengths=lengths)
    assert _trained(tmp_path / "v.npz") == record


def test_a_channels_last_variable_length_set_is_fingerprinted_as_read(tmp_path):
    """The fingerprint is of the series as read (channels first, each to its length): the raw [N, T, C] array was cut
    along its channels, so a re-save with other padding was refused and channels past a series' length went unseen."""
    x, y = _arrays()
    xl = np.ascontiguousarray(np.repeat(x, 16, axis=1).transpose(0, 2, 1))  # [N, T=12, C=16]
    lengths = np.where(np.arange(len(y)) % 2 == 1, 4, 12)
    xl[1::2, 4:, :] = np.nan
    np.savez(tmp_path / "c.npz", X=xl, y=y, lengths=lengths)
    record = _trained(tmp_path / "c.npz", layout="channels_last")
    np.savez(tmp_path / "c.npz", X=np.nan_to_num(xl, nan=0.0), y=y, lengths=lengths)  # other padding: the same series
    assert _trained(tmp_path / "c.npz", layout="channels_last") == record
    changed = np.nan_to_num(xl, nan=0.0)
    changed[1::2, :4, 10:] += 1.0  # channels 10-15 inside each short series
    np.savez(tmp_path / "c.npz", X=changed, y=y, lengths=lengths)
    assert _trained(tmp_path / "c.npz", layout="channels_last") != record
