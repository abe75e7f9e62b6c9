"""Tests write only into temporary folders of their own (issue 14 item 7).

Whatever a test runs, the places that code writes to by default are pointed into a folder made
for that test (beside its ``tmp_path``, which tests expect to hold only what they wrote):
neuroview's data cache (``$NEUROVIEW_CACHE``, else ``$XDG_CACHE_HOME``, else ``~/.cache``), the
home folder (matplotlib's font cache and config, aeon's ``~/aeon_data``) and the temporary folder
(the zoo's export lock). The working directory is the test's ``tmp_path``, where Lightning's
``lightning_logs/`` and the recipes' ``runs/`` go when no ``default_root_dir`` is given.
Subprocesses inherit all of it through the environment. While the test modules are collected,
the same variables point into a folder of the session, removed when it ends; hypothesis keeps
its ``.hypothesis/`` there rather than in the checkout.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

#: The home folder before any test changed it: tests check that nothing was written there.
REAL_HOME = Path.home()

_HOME_VARIABLES = ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "NEUROVIEW_CACHE")


def _home_in(folder: Path) -> dict[str, str]:
    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    return {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "XDG_CONFIG_HOME": str(home / ".config"),
            "NEUROVIEW_CACHE": str(home / ".cache" / "neuroview")}


# While the test modules are collected (before any fixture runs) they import matplotlib, which
# settles its cache folder then, and hypothesis, which settles its own (by default .hypothesis/
# in the checkout): both go to a temporary folder of the session, removed when it ends.
_SESSION = Path(tempfile.mkdtemp(prefix="neuroview-tests-"))
_SAVED = {k: os.environ.get(k) for k in _HOME_VARIABLES}
os.environ.update(_home_in(_SESSION))
try:
    from hypothesis.configuration import set_hypothesis_home_dir
except ImportError:  # hypothesis is a dev extra; the property tests skip without it
    set_hypothesis_home_dir = None
if set_hypothesis_home_dir is not None and not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    set_hypothesis_home_dir(_SESSION / "hypothesis")


def pytest_unconfigure(config: pytest.Config) -> None:
    for k, v in _SAVED.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(_SESSION, ignore_errors=True)


@pytest.fixture
def real_home() -> Path:
    return REAL_HOME


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every default write location of this test into a folder of its own; returns it.

    The folder is made beside ``tmp_path``, not in it: tests check that ``tmp_path`` holds
    exactly what they wrote. The working directory is ``tmp_path`` itself.
    """
    env = tmp_path_factory.mktemp("env")
    for k, v in _home_in(env).items():
        monkeypatch.setenv(k, v)
    tmp = env / "tmp"
    tmp.mkdir()
    # tempfile reads TMPDIR once and caches it: set both (subprocesses read the variable)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.chdir(tmp_path)
    return env


@pytest.fixture(scope="session")
def benchmark_script():
    """``benchmark_script("ucr_accuracy")``: a script of ``benchmarks/`` imported as a module
    (the folder is on ``sys.path`` only while it imports, and the scripts import their siblings then)."""
    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")

    def load(name: str):
        sys.path.insert(0, folder)
        try:
            return importlib.import_module(name)
        finally:
            sys.path.remove(folder)

    return load



@pytest.fixture
def one_thread():
    """One torch thread for the test: tiny products on a shared, busy machine, where a second
    thread only adds its synchronization."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def ten_class_zoo(tmp_path_factory) -> Path:
    """A MiniRocket entry of 10 classes trained on an .npz of series (read with resample: true, as minirocket reads
    every file), in a zoo folder of its own for each test module (tests write beside it)."""
    import numpy as np

    from neuroview import cli

    root = tmp_path_factory.mktemp("mr")
    rng = np.random.default_rng(0)
    y = np.arange(80) % 10
    x = rng.normal(size=(80, 1, 30)).astype(np.float32)
    x[np.arange(80), 0, 2 * y] += 4.0  # a bump whose place is the class
    np.savez(root / "ten.npz", X=x, y=y)
    assert cli.main(["minirocket", "--data", str(root / "ten.npz"), "--num-features", "84", "--out", str(root / "zoo")]) == 0
    return root / "zoo"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$HOME`` a folder of the test's, the working directory another: a ``./~`` made there is the fault of a path
    that reads ``~`` as a folder name."""
    (tmp_path / "home").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NEUROVIEW_CHECKPOINTS", raising=False)
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path / "home"
