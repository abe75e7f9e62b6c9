"""Tests write only into folders of their own (issue 14 item 7): the autouse fixture of
``conftest.py`` is in force, and what caches or logs by default lands in the test's folders."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np
import pytorch_lightning as pl

import neuroview.data.cache as cache
from neuroview.data import DigitsDataModule, MNIST1DDataModule, cache_dir
from neuroview.training.module import NeuroViewModule

REPO = Path(__file__).resolve().parents[1]


def _listing(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} if folder.is_dir() else {}


def test_caching_writes_in_the_tests_own_folder_and_not_in_the_real_home(isolated_env, real_home, monkeypatch):
    assert isolated_env in cache_dir().parents and isolated_env in Path.home().parents
    assert Path(tempfile.gettempdir()).is_relative_to(isolated_env) and os.environ["TMPDIR"].startswith(str(isolated_env))
    real_cache = real_home / ".cache" / "neuroview"
    before = _listing(real_cache)
    written, write = [], cache.atomic_write

    def recorded(path: Path, data: bytes) -> None:
        written.append(Path(path))
        write(path, data)

    monkeypatch.setattr(cache, "atomic_write", recorded)
    if importlib.util.find_spec("mnist1d") is not None:
        MNIST1DDataModule().prepare_data()  # generates the set and caches it
        assert (cache_dir() / "mnist1d_default_v1.npz").is_file()
    else:
        cache.save_npz(cache_dir() / "probe.npz", x=np.arange(3))
    assert written and all(isolated_env in p.resolve().parents for p in written)
    assert _listing(real_cache) == before  # nothing new, nothing rewritten


def test_a_fit_without_a_root_dir_logs_under_tmp_path(tmp_path):
    assert Path.cwd() == tmp_path
    had_logs = (REPO / "lightning_logs").exists()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=1, limit_val_batches=1, num_sanity_val_steps=0,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(NeuroViewModule("small_cnn", 10, 1, model_kwargs={"widths": [4, 8]}), DigitsDataModule(batch_size=16))
    assert (tmp_path / "lightning_logs").is_dir()  # the default root is the cwd, which is tmp_path
    assert (REPO / "lightning_logs").exists() == had_logs
