"""Where generated data sets are cached, and how a cached set is written.

Holds :func:`cache_dir` and :func:`save_npz`. May import numpy; nothing from neuroview.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def cache_dir() -> Path:
    """Where generated data is cached: ``$NEUROVIEW_CACHE``, else ``$XDG_CACHE_HOME/neuroview``, else ``~/.cache/neuroview``."""
    if os.environ.get("NEUROVIEW_CACHE"):
        return Path(os.environ["NEUROVIEW_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "neuroview"


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    # Several DDP ranks or parallel runs may generate at once: write aside, then rename, so no
    # reader ever sees half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
