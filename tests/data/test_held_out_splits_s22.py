"""Every split a data module reads for a checkpoint is held to the checkpoint's record of its training split, not
only its training split (finding 1(a) of probe P5, s22): a UCR-style pair read swapped (``path`` the TEST file,
``test_path`` the TRAIN file the model was trained on) scored the training file as the test split, test_acc the
training accuracy, without a word; a file read whole that is the model's training split, likewise."""

import warnings

import numpy as np
import pytest

from neuroview.data import CsvDataModule, NpzDataModule
from neuroview.data.file_record import RECORD
from neuroview.data.splits import whole_files


def _tsv(path, seed: int, per: int = 6, steps: int = 12):
    rng = np.random.default_rng(seed)
    rows = [[lab] + [f"{v:.5f}" for v in rng.normal(size=steps)] for lab in "123" for _ in range(per)]
    path.write_text("".join("\t".join(r) + "\n" for r in rows))
    return str(path)


def _said(dm, *then) -> list[str]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        dm.setup("test")
        for f in then:
            f()
    return [str(m.message) for m in w if "its series are the training split" in str(m.message)]


def test_a_swapped_pair_is_warned_about_whenever_the_record_comes(tmp_path):
    train, test = _tsv(tmp_path / "mine_TRAIN.tsv", 0), _tsv(tmp_path / "mine_TEST.tsv", 1)
    fitted = CsvDataModule(train, test_path=test)
    fitted.setup("fit")
    record = fitted.state_dict()[RECORD]
    # the record given before the file is read (a command's hold_to_checkpoint) ...
    swapped = CsvDataModule(test, test_path=train)
    swapped.expect_file(record, "run.ckpt")
    said = _said(swapped)
    assert len(said) == 1 and said[0].startswith("test_path: its series are the training split the checkpoint run.ckpt "
                                                 f"was trained on ({train})") and "swapped" in said[0]
    # ... or after it (Lightning restores the data module's state after its setup)
    swapped = CsvDataModule(test, test_path=train)
    assert len(_said(swapped, lambda: swapped.load_state_dict(fitted.state_dict()))) == 1
    # the pair as trained, and a validation file that is the training file (val_path) too
    same = CsvDataModule(train, test_path=test)
    same.expect_file(record, "run.ckpt")
    assert _said(same) == []
    val = CsvDataModule(test, test_path=_tsv(tmp_path / "other.tsv", 2), val_path=train)
    val.expect_file(record, "run.ckpt")
    assert [s.split(":")[0] for s in _said(val)] == ["val_path"]


def test_a_file_read_whole_that_is_the_training_file_moved_is_warned_about(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 1, 10)).astype(np.float32), np.arange(30) % 3
    np.savez(tmp_path / "mine.npz", X=x, y=y)
    fitted = NpzDataModule(str(tmp_path / "mine.npz"))
    fitted.setup("fit")
    record = fitted.state_dict()[RECORD]
    (tmp_path / "mine.npz").rename(tmp_path / "moved.npz")  # the trained path gone: not taken for the model's own file
    with whole_files():
        dm = NpzDataModule(str(tmp_path / "moved.npz"))
    dm.expect_file(record, "run.ckpt")
    said = _said(dm)
    assert len(said) == 1 and said[0].startswith("path: its series are the training split")
    np.savez(tmp_path / "new.npz", X=rng.normal(size=(12, 1, 10)).astype(np.float32), y=np.arange(12) % 3)
    with whole_files():
        dm = NpzDataModule(str(tmp_path / "new.npz"), val_fraction=0)
    dm.expect_file(record, "run.ckpt")
    assert _said(dm) == []


def test_an_x_test_that_is_the_training_split_is_warned_about(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 1, 10)).astype(np.float32), np.arange(24) % 3
    np.savez(tmp_path / "pair.npz", X=x[:12], y=y[:12], X_test=x[12:], y_test=y[12:])
    fitted = NpzDataModule(str(tmp_path / "pair.npz"), val_fraction=0)
    fitted.setup("fit")
    np.savez(tmp_path / "swap.npz", X=x[12:], y=y[12:], X_test=x[:12], y_test=y[:12])
    dm = NpzDataModule(str(tmp_path / "swap.npz"), val_fraction=0)
    dm.expect_file(fitted.state_dict()[RECORD], "run.ckpt")
    said = _said(dm)
    assert len(said) == 1 and said[0].startswith("path: X_test: its series are the training split")


@pytest.mark.parametrize("cls", [CsvDataModule, NpzDataModule])
def test_a_fit_keeps_no_held_out_split_to_compare(tmp_path, cls):
    path = _tsv(tmp_path / "a.tsv", 0) if cls is CsvDataModule else str(tmp_path / "a.npz")
    if cls is NpzDataModule:
        np.savez(path, X=np.random.default_rng(0).normal(size=(18, 1, 8)), y=np.arange(18) % 3)
    dm = cls(path, val_fraction=0)

    class Fit:  # what a Trainer attaches: its state's fn
        state = type("S", (), {"fn": "fit"})()

    dm.trainer = Fit()
    dm.setup("fit")
    assert dm._held_out is None


# ------------------------------------------------------------------------- finding 1(b): some of the series again
def test_a_grown_copy_read_whole_names_how_many_series_were_fitted_on(tmp_path):
    from neuroview.data.splits import stratified_split

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 1, 10)).astype(np.float32), np.arange(30) % 3
    np.savez(tmp_path / "mine.npz", X=x, y=y)
    fitted = NpzDataModule(str(tmp_path / "mine.npz"))
    fitted.setup("fit")
    keep, _ = stratified_split(y.astype(str), 0.2, 0 + 1)  # fit's test carve: the other 24 rows were fitted on
    grown = np.concatenate([x, rng.normal(size=(6, 1, 10)).astype(np.float32)])
    np.savez(tmp_path / "mine_v2.npz", X=grown, y=np.arange(36) % 3)
    with whole_files():
        dm = NpzDataModule(str(tmp_path / "mine_v2.npz"))
    dm.expect_file(fitted.state_dict()[RECORD], "run.ckpt")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        dm.setup("test")
    said = [str(m.message) for m in w if "series are series of" in str(m.message)]
    first = ", ".join(map(str, sorted(keep.tolist())[:8]))
    assert said == [f"path: {len(keep)} of its 36 series are series of those the checkpoint run.ckpt was fitted on "
                    f"({tmp_path / 'mine.npz'}), value for value (rows {first}, ...: predictions.csv's file_index): "
                    "scored as if unseen, they lift its accuracy toward training accuracy; drop them to score held-out "
                    "series only"]
    old = {k: v for k, v in fitted.state_dict()[RECORD].items() if k != "series_digests"}  # a checkpoint before s22
    with whole_files():
        dm = NpzDataModule(str(tmp_path / "mine_v2.npz"))
    dm.expect_file(old, "run.ckpt")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        dm.setup("test")
    assert not [m for m in w if "series are series of" in str(m.message)]
