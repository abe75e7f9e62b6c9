"""What a probe of NpzDataModule's splits found read silently wrong or failed with a bare error: val_fold
ignored where the file has a validation split of its own, y_test / lengths_test without X_test never read,
X_test without y_test a bare KeyError, and image splits of another size served as they are."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from neuroview.data import CsvDataModule, NpzDataModule


def _series(n=60, c=2, t=16, seed=2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, c, t)).astype(np.float32), np.array([0, 1, 2] * (n // 3))


def test_val_fold_with_a_validation_split_of_the_file_is_refused(tmp_path):
    x, y = _series()
    np.savez(tmp_path / "v.npz", X=x, y=y, X_val=x[:9], y_val=y[:9], X_test=x[:6], y_test=y[:6])
    # before: folds 0 to 4 all served the file's X_val, five runs of one split
    for fold in (0, 2):
        with pytest.raises(ValueError, match=rf"val_fold: expected None for a dataset with a validation split of its "
                                             rf"own \(NpzDataModule.load gave one: X_val/y_val .*got {fold}"):
            NpzDataModule(str(tmp_path / "v.npz"), val_fraction=0.2, val_fold=fold).setup()
    dm = NpzDataModule(str(tmp_path / "v.npz"), val_fraction=0.2)  # without val_fold: the file's split, as given
    dm.setup()
    assert torch.equal(dm._splits["val"][0], torch.as_tensor(x[:9])) and dm.split_sizes() == {"train": 60, "val": 9, "test": 6}


def test_val_fold_with_a_val_path_of_a_csv_is_refused(tmp_path):
    for name in ("a.csv", "v.csv"):
        (tmp_path / name).write_text("".join(f"{i % 2},{i}.0,{i + 1}.0,{i * 2}.0\n" for i in range(20)))
    with pytest.raises(ValueError, match=r"val_fold: expected None .*CsvDataModule.load gave one.*got 1"):
        CsvDataModule(str(tmp_path / "a.csv"), val_path=str(tmp_path / "v.csv"), val_fraction=0.5, val_fold=1).setup()


@pytest.mark.parametrize("stray", [("y_test",), ("lengths_test",), ("y_test", "lengths_test"), ("y_val",),
                                   ("lengths_val",)])
def test_labels_or_lengths_of_a_split_without_its_x_are_refused(tmp_path, stray):
    x, y = _series()
    extra = {k: (y[:6] if k.startswith("y") else np.full(6, 4)) for k in stray}
    np.savez(tmp_path / "s.npz", X=x, y=y, **extra)
    s = "_" + stray[0].split("_")[1]
    # before: the test split carved from X by test_fraction, the file's y_test / lengths_test never read
    with pytest.raises(ValueError, match=rf"path: expected X{s} in s.npz along with {' and '.join(stray)}, found \["):
        NpzDataModule(str(tmp_path / "s.npz")).setup()


@pytest.mark.parametrize("s", ["_test", "_val"])
def test_x_of_a_split_without_its_labels_names_the_file_and_key(tmp_path, s):
    x, y = _series()
    np.savez(tmp_path / "k.npz", X=x, y=y, **{"X" + s: x[:6]})
    # before: a bare KeyError: 'y_test'
    with pytest.raises(ValueError, match=rf"path: expected y{s} \(the labels of X{s}\) in k.npz, found \['X', 'X{s}', 'y'\]"):
        NpzDataModule(str(tmp_path / "k.npz")).setup()


@pytest.mark.parametrize("key,shape", [("X_test", (6, 1, 16, 16)), ("X_val", (6, 1, 8, 9)), ("X_test", (6, 1, 8))])
def test_image_splits_of_another_size_are_refused(tmp_path, key, shape):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 1, 8, 8)).astype(np.float32), np.arange(40) % 2
    np.savez(tmp_path / "i.npz", X=x, y=y, **{key: rng.normal(size=shape).astype(np.float32), "y" + key[1:]: y[:6]})
    name = key.split("_")[1]
    # before: the test batches came out (6, 1, 16, 16) beside training batches of (1, 8, 8)
    with pytest.raises(ValueError, match=rf"NpzDataModule: X: expected the {name} split's samples of the training split's "
                                         rf"shape \(1, 8, 8\), got {re.escape(str(shape[1:]))}"):
        NpzDataModule(str(tmp_path / "i.npz")).setup()
    np.savez(tmp_path / "ok.npz", X=x, y=y, X_test=x[:6], y_test=y[:6])  # the same size: served as it is
    dm = NpzDataModule(str(tmp_path / "ok.npz"), normalize=False)
    dm.setup()
    assert tuple(next(iter(dm.test_dataloader()))[0].shape) == (6, 1, 8, 8)
