"""The words for a path a command was given for a file that is no file: ``(no such file)``, or an existing folder (a
run's, or its ``checkpoints/``) said as one, with a file in it to name instead, not "no such file" nor "not a file".
``--ckpt_path`` (:mod:`.ckpt_file`, which re-exports it), ``neuroview explain --ckpt`` and ``--model.init_weights``
(:mod:`.earlier_runs`) say them. Imports the standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["not_a_file"]


def not_a_file(path: str | os.PathLike, suffix: str = ".ckpt") -> str:
    """Why ``path``, not a file, is none, in parentheses: ``(no such file)``, or a folder said as one, with a ``suffix``
    file in it or its ``checkpoints/`` (where a run keeps them) to name instead.

    >>> not_a_file("/no/such/run.ckpt")
    '(no such file)'
    """
    path = Path(path)
    if not path.is_dir():
        return "(no such file)"
    found = sorted(str(f) for pattern in ("*", "checkpoints/*") for f in path.glob(pattern + suffix) if f.is_file())
    if not found:
        return f"(a folder, not a file; name a {suffix} file)"
    which = f"the {suffix} file" if len(found) == 1 else f"one of the {len(found)} {suffix} files"
    return f"(a folder, not a file; name {which} in it, e.g. {found[0]!r})"
