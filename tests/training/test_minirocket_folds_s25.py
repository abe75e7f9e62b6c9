"""`neuroview minirocket --max-k90 B --folds K` where the data spec holds out a validation split: the sparse head
would be chosen on that split and the folds ignored without a word (the manifest recorded `folds: None`); refused
by name before the dense fit, and nothing is written."""

from __future__ import annotations

import json

import numpy as np

from neuroview.cli import main as cli


def _recordings(path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1, 32)).astype(np.float32)
    y = (x[:, 0, 5:10].mean(1) > 0).astype(int)
    np.savez(path, X=x, y=y)
    return path


def test_folds_with_a_validation_split_is_refused_naming_the_option(tmp_path, capsys):
    data, out = _recordings(tmp_path / "rec.npz"), tmp_path / "zoo"
    spec = json.dumps({"class_path": "neuroview.data.NpzDataModule",
                       "init_args": {"path": str(data), "val_fraction": 0.25}})
    assert cli(["minirocket", "--data", spec, "--num-features", "84", "--max-k90", "10", "--folds", "3",
                "--out", str(out), "--tag", "rec"]) == 2
    err = capsys.readouterr().err
    assert "--folds" in err and "got --folds 3" in err and "validation split" in err and "val_fraction" in err
    assert not out.exists() or not any(out.iterdir())  # refused before the dense fit: nothing written


def test_folds_without_a_validation_split_is_taken(tmp_path):
    data, out = _recordings(tmp_path / "rec.npz"), tmp_path / "zoo"
    assert cli(["minirocket", "--data", str(data), "--num-features", "84", "--max-k90", "10", "--folds", "3",
                "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["entries"]["nv_minirocket.rec_sparse"]["sparsify"]["folds"] == 3


def test_folds_beside_the_file_s_own_validation_split_says_to_drop_them(tmp_path, capsys):
    """A file's own X_val chooses the sparse head (no val_fraction to set to 0): the refusal says to drop --folds."""
    rng = np.random.default_rng(1)
    x, xv = rng.normal(size=(40, 1, 32)).astype(np.float32), rng.normal(size=(12, 1, 32)).astype(np.float32)
    np.savez(tmp_path / "own.npz", X=x, y=(x[:, 0, :5].mean(1) > 0).astype(int), X_val=xv,
             y_val=(xv[:, 0, :5].mean(1) > 0).astype(int))
    assert cli(["minirocket", "--data", str(tmp_path / "own.npz"), "--num-features", "84", "--max-k90", "10",
                "--folds", "3", "--out", str(tmp_path / "zoo")]) == 2
    err = capsys.readouterr().err
    assert "got --folds 3" in err and "drop --folds (the data's own validation split" in err and "val_fraction" not in err
