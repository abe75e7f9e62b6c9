"""Other data given to a trained model (``explain``/``sparsify``/``retrofit --data``) is read as the model's own was:
standardized by the statistics of the training split the model learned from, stretched or padded to the length its
series were, and, where it is the model's own file, carved into the same splits.

Before, ``read_as_trained`` carried the flags only: another file was standardized by its own statistics (a mean of
2.7 where the model's was 1.5: its inputs shifted by up to 1.6), stretched to its own longest series (18 steps for a
model of 26), and the model's own file with the default seed put 14 of its 20 test series in the model's training
split.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroview.data import NpzDataModule, read_as_trained


def _spec(path, **kw):
    return {"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": str(path), **kw}}


def _write(path, x, y, **more):
    np.savez(path, X=x.astype(np.float32), y=y, **more)
    return path


def test_another_file_is_standardized_by_the_model_s_training_statistics(tmp_path):
    rng = np.random.default_rng(0)
    x_model = rng.normal(1.5, 1.8, (40, 2, 30))
    x_model[:, 1] = rng.normal(-3.0, 0.5, (40, 30))
    mine = _write(tmp_path / "mine.npz", x_model, np.arange(40) % 2, X_test=x_model[:10], y_test=np.arange(10) % 2)
    other = _write(tmp_path / "other.npz", rng.normal(2.7, 1.4, (20, 2, 30)), np.arange(20) % 2)
    dm = NpzDataModule(str(other), val_fraction=0)
    read_as_trained(dm, _spec(mine, val_fraction=0))
    dm.setup("fit")
    raw = np.load(other)["X"]
    got = torch.stack([s[0] for s in dm._dataset("test")]).numpy()  # the other file's own test carve, standardized
    # the model's training statistics by hand: per channel over every training series and step
    mean, std = x_model.mean(axis=(0, 2)), x_model.std(axis=(0, 2))
    want_rows = (raw[:, :, :] - mean[None, :, None].astype(np.float32)) / std[None, :, None].astype(np.float32)
    for row in got:  # each standardized test series is a raw series of the file under the model's statistics
        assert np.abs(want_rows - row[None]).reshape(len(raw), -1).max(1).min() < 1e-4


def test_another_file_is_stretched_and_padded_to_the_model_s_length(tmp_path):
    rng = np.random.default_rng(1)

    def padded(n, longest):
        lengths = rng.integers(longest // 2, longest + 1, n)
        lengths[0] = longest
        x = np.zeros((n, 3, longest))
        for i, t in enumerate(lengths):
            x[i, :, :t] = rng.normal(size=(3, t))
        return x, lengths

    x_model, l_model = padded(30, 26)
    mine = _write(tmp_path / "mine.npz", x_model, np.arange(30) % 3, lengths=l_model)
    x_other, l_other = padded(24, 18)
    other = _write(tmp_path / "other.npz", x_other, np.arange(24) % 3, lengths=l_other)
    for resample in (True, False):
        dm = NpzDataModule(str(other), val_fraction=0)
        read_as_trained(dm, _spec(mine, resample=resample, normalize="sample", val_fraction=0))
        dm.setup("fit")
        assert dm.max_len == 26, resample  # the model's series' length, not the file's own 18
        batch = next(iter(dm._loader("test")))
        assert batch[0].shape[-1] == 26


def test_the_model_s_own_file_is_carved_as_it_was(tmp_path):
    rng = np.random.default_rng(2)
    mine = _write(tmp_path / "mine.npz", rng.normal(size=(100, 1, 20)), np.arange(100) % 2)
    trained = NpzDataModule(str(mine), seed=2, val_fraction=0)
    trained.setup("fit")
    dm = NpzDataModule(str(mine))  # as `--data mine.npz` builds it: the default seed and val_fraction
    changed = read_as_trained(dm, _spec(mine, seed=2, val_fraction=0))
    assert changed["seed"] == 2
    dm.setup("fit")
    for split in ("train", "test"):
        got, want = (torch.stack([s[0] for s in m._dataset(split)]) for m in (dm, trained))
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_a_copy_of_the_model_s_file_is_its_own_data_and_carved_as_it_was(tmp_path):
    """A byte copy under another path was other data: carved by the default seed, its "test" split held training
    series, explained as unseen. A file that differs in one value is other data."""
    import shutil

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(100, 1, 20)), np.arange(100) % 2
    mine = _write(tmp_path / "mine.npz", x, y)
    copy = shutil.copy(mine, tmp_path / "copy.npz")
    trained = NpzDataModule(str(mine), seed=2, val_fraction=0)
    trained.setup("fit")
    dm = NpzDataModule(str(copy))
    assert read_as_trained(dm, _spec(mine, seed=2, val_fraction=0))["seed"] == 2
    dm.setup("fit")
    torch.testing.assert_close(torch.stack([s[0] for s in dm._dataset("test")]),
                               torch.stack([s[0] for s in trained._dataset("test")]), rtol=0, atol=0)
    x[0, 0, 0] += 1.0
    other = NpzDataModule(str(_write(tmp_path / "other.npz", x, y)))
    assert "seed" not in read_as_trained(other, _spec(mine, seed=2, val_fraction=0))


def test_training_data_that_cannot_be_read_again_is_said(tmp_path):
    other = _write(tmp_path / "other.npz", np.random.default_rng(3).normal(size=(20, 1, 10)), np.arange(20) % 2)
    dm = NpzDataModule(str(other))
    with pytest.warns(UserWarning, match=r"data: the model's training data cannot be read again .* read by its own "
                                         r"statistics and length, not the training split's channel statistics"):
        read_as_trained(dm, _spec(tmp_path / "gone.npz"))
    dm.setup("fit")  # read as before: by its own statistics


def test_a_fixed_length_model_trained_with_resample_reads_other_data_at_its_length(tmp_path):
    rng = np.random.default_rng(4)
    mine = _write(tmp_path / "mine.npz", rng.normal(size=(30, 2, 26)), np.arange(30) % 2)
    other = _write(tmp_path / "other.npz", rng.normal(size=(20, 2, 18)), np.arange(20) % 2)
    dm = NpzDataModule(str(other), val_fraction=0)
    read_as_trained(dm, _spec(mine, resample=True, normalize="sample", val_fraction=0))
    dm.setup("fit")
    assert dm.max_len == 26
    raw = np.load(other)["X"]
    grid = np.linspace(0, 17, 26)  # each series stretched to 26 steps, end to end, then z-normalized as a whole
    stretched = np.stack([[np.interp(grid, np.arange(18), ch) for ch in series] for series in raw])
    want = (stretched - stretched.mean(axis=(1, 2), keepdims=True)) / stretched.std(axis=(1, 2), keepdims=True)
    got = torch.cat([b[0] for b in dm._loader("train")]).numpy()
    assert got.shape[1:] == (2, 26)
    for row in got:
        assert np.abs(want - row[None]).reshape(len(want), -1).max(1).min() < 1e-4


def test_the_digits_and_a_csv_with_its_own_test_file_are_carved_as_trained(tmp_path):
    from neuroview.data import CsvDataModule, DigitsDataModule

    dm = DigitsDataModule()
    changed = read_as_trained(dm, {"class_path": "neuroview.data.DigitsDataModule",
                                   "init_args": {"test_fraction": 0.1, "seed": 5}})
    assert changed["test_fraction"] == 0.1 and changed["seed"] == 5  # the same set: the same splits
    rng = np.random.default_rng(5)
    for name, n in (("train.tsv", 30), ("test.tsv", 12)):
        rows = [f"{i % 2}\t" + "\t".join(f"{v:.4f}" for v in rng.normal(size=10)) for i in range(n)]
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    csv = CsvDataModule(str(tmp_path / "train.tsv"))
    changed = read_as_trained(csv, {"class_path": "neuroview.data.CsvDataModule",
                                    "init_args": {"path": str(tmp_path / "train.tsv"), "test_path": str(tmp_path / "test.tsv")}})
    assert changed["test_path"] == str(tmp_path / "test.tsv")  # its test split is the file's, not carved from training
