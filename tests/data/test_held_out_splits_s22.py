"""Every split a data module reads for a checkpoint is held to the checkpoint's record of its training split, not
only its training split (finding 1(a) of probe P5, s22): a UCR-style pair read swapped (``path`` the TEST file,
``test_path`` the TRAIN file the model was trained on) scored the training file as the test split, test_acc the
training accuracy, without a word; a file read whole that is the model's training split, likewise."""

import base64
import hashlib
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from neuroview.data import CsvDataModule, NpzDataModule, file_record
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


# ------------------------------------------- review R4 of ee8c262 (finding 1): the fullest overlap, under other labels
def _seen(dm, stage: str = "test") -> list[str]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        dm.setup(stage)
    return [str(m.message) for m in w if "series are series of" in str(m.message) or "its series are the training"
            in str(m.message)]


def _fitted_file(tmp_path, n: int = 30):
    """A file with its own X_test (no test carve): the model is fitted on every row of X, in order."""
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(n, 1, 10)).astype(np.float32), np.arange(n) % 3
    np.savez(tmp_path / "mine.npz", X=x, y=y, X_test=rng.normal(size=(9, 1, 10)).astype(np.float32), y_test=np.arange(9) % 3)
    fitted = NpzDataModule(str(tmp_path / "mine.npz"))
    fitted.setup("fit")
    return x, y, fitted.state_dict()[RECORD]


@pytest.mark.parametrize("labels", ["corrected", "placeholder"])
def test_every_fitted_series_in_order_under_other_labels_is_warned_about(tmp_path, labels):
    x, y, record = _fitted_file(tmp_path)
    other = y.copy()
    other[[3, 17, 25]] = (other[[3, 17, 25]] + 1) % 3  # three labels corrected since the fit
    np.savez(tmp_path / "again.npz", X=x, y=other if labels == "corrected" else np.arange(30) % 2)  # (predict's)
    with whole_files():
        dm = NpzDataModule(str(tmp_path / "again.npz"))
    dm.expect_file(record, "run.ckpt")
    said = _seen(dm)
    # all 30 of them, rows 0..7 shown first: it said nothing, while the same file shuffled, or less a row, was warned of
    assert said == [f"path: 30 of its 30 series are series of those the checkpoint run.ckpt was fitted on "
                    f"({tmp_path / 'mine.npz'}), value for value (rows 0, 1, 2, 3, 4, 5, 6, 7, ...: predictions.csv's "
                    "file_index): scored as if unseen, they lift its accuracy toward training accuracy; drop them to "
                    "score held-out series only"]


def test_a_swapped_pair_whose_training_file_was_relabelled_is_warned_about(tmp_path):
    train, test = _tsv(tmp_path / "mine_TRAIN.tsv", 0), _tsv(tmp_path / "mine_TEST.tsv", 1)
    fitted = CsvDataModule(train, test_path=test)
    fitted.setup("fit")
    record = fitted.state_dict()[RECORD]
    rows = (tmp_path / "mine_TRAIN.tsv").read_text().splitlines()
    rows[4], rows[9] = "3" + rows[4][1:], "1" + rows[9][1:]  # two labels corrected since
    (tmp_path / "mine_TRAIN_v2.tsv").write_text("\n".join(rows) + "\n")
    swapped = CsvDataModule(test, test_path=str(tmp_path / "mine_TRAIN_v2.tsv"))
    swapped.expect_file(record, "run.ckpt")
    said = _seen(swapped)
    assert len(said) == 1 and said[0].startswith("test_path: 18 of its 18 series are series of those the checkpoint "
                                                 f"run.ckpt was fitted on ({train})")


def test_an_x_test_that_is_x_again_under_other_labels_is_said_once(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(24, 1, 10)).astype(np.float32), np.arange(24) % 3
    np.savez(tmp_path / "own.npz", X=x, y=y, X_test=x, y_test=(y + 1) % 3)  # X given again, its labels shifted
    fitted = NpzDataModule(str(tmp_path / "own.npz"))
    fitted.setup("fit")
    dm = NpzDataModule(str(tmp_path / "own.npz"))
    dm.expect_file(fitted.state_dict()[RECORD], "run.ckpt")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        dm.setup("test")
    said = [str(m.message) for m in w if "value for value" in str(m.message)]
    assert len(said) == 1 and said[0].startswith("path: X_test: its series are the training series of own.npz (X)")


# ------------------------------------------------------- review R4 of ee8c262 (finding 3): what the digests cost
def _definition(series) -> bytes:
    """8 bytes of sha256 of one series: its shape, then its values as float32 where each value is one, else float64
    (-0.0 as 0.0), each tagged: the digest's definition, written out by hand."""
    s = np.asarray(series)
    as32 = s.astype(np.float32) + np.float32(0)
    same = np.array_equal(as32, s, equal_nan=True)
    body = b"f4" + as32.tobytes() if same else b"f8" + (s.astype(np.float64) + 0.0).tobytes()
    return hashlib.sha256(str(tuple(s.shape)).encode() + body).digest()[:8]


def test_series_digests_are_the_definition_for_each_series_alone():
    rng = np.random.default_rng(2)
    mixed = np.concatenate([rng.normal(size=(4, 2, 5)), rng.integers(0, 9, (4, 2, 5)).astype(float)])
    mixed[1, 0, 0], mixed[5, 1, 2], mixed[6, 0, 1] = np.nan, np.nan, -0.0  # NaN in a float64 and a float32-exact series
    for x in (mixed, mixed.astype(np.float32), rng.integers(0, 256, (6, 1, 3, 3), dtype=np.uint8)):
        assert file_record.series_digests(x) == b"".join(_definition(s) for s in x)
        assert file_record.series_digests(x, [5, 0, 5]) == _definition(x[5]) + _definition(x[0]) + _definition(x[5])
    ragged = [rng.normal(size=(1, n)) for n in (3, 7, 7)]
    assert file_record.series_digests(ragged) == b"".join(_definition(s) for s in ragged)


def test_digests_are_computed_where_a_record_is_written_not_on_every_read(tmp_path, monkeypatch):
    x, y, _ = _fitted_file(tmp_path, n=30)
    calls = []
    real = file_record.series_digests
    monkeypatch.setattr(file_record, "series_digests", lambda *a: calls.append(1) or real(*a))
    for fn in ("test", "validate", "predict"):  # neuroview test/predict of the model's own file: no record written
        dm = NpzDataModule(str(tmp_path / "mine.npz"))
        dm.trainer = SimpleNamespace(state=SimpleNamespace(fn=fn))
        dm.setup(fn)
        assert calls == [] and dm.state_dict()[RECORD].keys() == {"path", "series_sha256"}  # (its series not kept)
    dm = NpzDataModule(str(tmp_path / "mine.npz"))
    dm.setup("fit")  # a fit (or a command without a trainer): digested where the first record is written, once
    assert calls == []
    first = dm.state_dict()[RECORD]
    assert calls == [1] and dm.state_dict()[RECORD] == first and calls == [1]
    digests = first["series_digests"]  # base64 of 8 bytes a series: 640 kB for 60,000 (hex text was 960 kB)
    assert digests == "b64:" + base64.b64encode(b"".join(_definition(s) for s in x)).decode()


def test_the_compact_record_loads_weights_only_and_warns_as_hex_did(tmp_path):
    import torch

    x, y, record = _fitted_file(tmp_path, n=30)
    torch.save({"NpzDataModule": {RECORD: record}}, tmp_path / "run.ckpt")
    saved = torch.load(tmp_path / "run.ckpt", weights_only=True)["NpzDataModule"][RECORD]
    hexed = {**record, "series_digests": b"".join(_definition(s) for s in x).hex()}  # as ee8c262's checkpoints hold them
    np.savez(tmp_path / "some.npz", X=x[[4, 2, 9, 10]], y=np.array([0, 1, 0, 1]))
    for rec in (saved, hexed):
        with whole_files():
            dm = NpzDataModule(str(tmp_path / "some.npz"), val_fraction=0)
        dm.expect_file(rec, "run.ckpt")
        said = _seen(dm)
        assert len(said) == 1 and said[0].startswith("path: 4 of its 4 series are series of") and "(rows 0, 1, 2, 3:" in said[0]


# ----------------------------------- review R5 of 451ba9f (finding 4): zoo entries and weight files keep the digests
def test_a_zoo_entry_s_record_warns_of_a_grown_copy_as_a_checkpoint_s_does(tmp_path):
    import json

    x, y, _ = _fitted_file(tmp_path, n=30)
    dm = NpzDataModule(str(tmp_path / "mine.npz"), val_fraction=0)
    dm.setup("fit")  # as neuroview minirocket / sparsify / retrofit --out read it, without a trainer
    spec = {RECORD: json.loads(json.dumps(file_record.read_record(dm, "nv_minirocket.mine")))}  # the manifest's JSON
    rng = np.random.default_rng(9)
    np.savez(tmp_path / "mine_v2.npz", X=np.concatenate([x, rng.normal(size=(6, 1, 10)).astype(np.float32)]),
             y=np.arange(36) % 3)
    with whole_files():
        grown = NpzDataModule(str(tmp_path / "mine_v2.npz"))
    file_record.hold_to_spec(grown, spec)
    said = _seen(grown)
    assert len(said) == 1 and said[0].startswith("path: 30 of its 36 series are series of those the zoo entry "
                                                 f"nv_minirocket.mine was fitted on ({tmp_path / 'mine.npz'})")
