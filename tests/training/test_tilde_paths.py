"""``~`` in a checkpoint path that no shell expanded (quoted, or in a YAML config): `neuroview test --ckpt_path
'~/last.ckpt'` and `neuroview explain --ckpt '~/last.ckpt'` said "no such file" for a file in the home folder, where
`--model.init_weights '~/...'` and the Python loaders read it (the review of the loaders' fix)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from jsonargparse import Namespace

from neuroview.training.cli import _checkpoint_file
from neuroview.viz.report import resolve_model


def test_ckpt_path_with_a_tilde_is_the_home_folder_s_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    torch.save({"state_dict": {}}, tmp_path / "last.ckpt")
    cfg = Namespace(ckpt_path="~/last.ckpt")
    assert _checkpoint_file(cfg, "test") == str(tmp_path / "last.ckpt")
    assert cfg.ckpt_path == str(tmp_path / "last.ckpt")  # what Lightning then reads (it expands nothing)
    with pytest.raises(FileNotFoundError, match=r"ckpt_path: expected a checkpoint file, got '~/none.ckpt'"):
        _checkpoint_file(Namespace(ckpt_path="~/none.ckpt"), "test")


def test_explain_ckpt_with_a_tilde_reaches_the_home_folder_s_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "last.ckpt").write_bytes(b"not a checkpoint")  # found: its reading is what fails now, by name
    args = SimpleNamespace(weights=None, ckpt="~/last.ckpt", model=None, model_args=None)
    with pytest.raises(Exception) as err:
        resolve_model(args)
    assert "no such file" not in str(err.value) and str(tmp_path / "last.ckpt") in str(err.value)
