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


def test_training_data_that_cannot_be_read_again_is_named(tmp_path):
    other = _write(tmp_path / "other.npz", np.random.default_rng(3).normal(size=(20, 1, 10)), np.arange(20) % 2)
    dm = NpzDataModule(str(other))
    with pytest.raises(ValueError, match=r"data: the model standardized its series by its training split's channel "
                                         r"statistics \(normalize: true\), and that data cannot be read again"):
        read_as_trained(dm, _spec(tmp_path / "gone.npz"))
