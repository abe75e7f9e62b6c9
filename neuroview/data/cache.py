"""Where generated data sets are cached, and how a cached set is written.

Holds :func:`cache_dir` and :func:`save_npz`. May import ``neuroview._io`` (the one
temp-and-rename writer) and numpy; nothing else from neuroview.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from .._io import atomic_write


def cache_dir() -> Path:
    """Where generated data is cached: ``$NEUROVIEW_CACHE``, else ``$XDG_CACHE_HOME/neuroview``, else ``~/.cache/neuroview``.

    Always absolute: ``~`` in ``$NEUROVIEW_CACHE`` is expanded (quoted in a job file or a ``.env`` the shell never
    did, and a folder named ``~`` grew in every working directory), a relative one is taken from the current
    directory, and a relative ``$XDG_CACHE_HOME`` is ignored, as the XDG spec says.
    """
    if os.environ.get("NEUROVIEW_CACHE"):
        return Path(os.environ["NEUROVIEW_CACHE"]).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache") / "neuroview"


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Save ``arrays`` as an ``.npz`` at ``path`` atomically.

    Several DDP ranks or parallel runs may generate at once: the archive is built in memory and
    handed to :func:`neuroview._io.atomic_write`, so no reader ever sees half a file.
    """
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())
