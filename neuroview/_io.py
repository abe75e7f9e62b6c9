"""Writing files so that a crash never leaves half of one where a good one was.

The one place that writes through a temporary and a rename: :func:`atomic_write` for a file,
:func:`staged_dir` for a folder of them (a report). Everything else writes through these.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it into place: a crash
    leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's private 0600 would hide a shared report from its readers
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def staged_dir(path: Path) -> Iterator[Path]:
    """A temporary folder beside ``path`` to write a set of files into.

    When the block ends, the folder becomes ``path`` (a new or empty one), or its files replace
    their namesakes in ``path`` (an existing folder, whose other files stay). When the block
    raises, the temporary folder is removed, with any parent folder made for it: ``path`` is
    left as it was, never with part of what the block wrote.
    """
    path = Path(path)
    made = [p for p in reversed(path.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if path.is_dir() and any(path.iterdir()):
            for p in sorted(tmp.iterdir()):
                os.replace(p, path / p.name)
        else:
            if path.is_dir():
                path.rmdir()
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's private 0700 would hide the folder from its readers
            os.replace(tmp, path)
    except BaseException:
        for p in reversed(made):
            shutil.rmtree(p, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
