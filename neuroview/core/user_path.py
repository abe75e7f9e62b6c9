"""A path a user typed, as the shell would read it: ``~`` the home folder.

Imports the standard library only (the core's writers, :mod:`neuroview.attribution`'s tables and the report use it;
:func:`neuroview.zoo.files.expand`, the rule of every ``--out``/``--zoo``, is the same one).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["expand"]


def expand(path: str | os.PathLike) -> Path:
    """``path`` with a leading ``~`` expanded as the shell expands it (``os.path.expanduser``: ``~`` and ``~/x`` the home
    folder's, ``~user/x`` an existing user's), and left as it is where no user has that name (``~old`` is a folder of
    that name). Taken literally, ``"~/x"`` made a folder named ``~`` in the working directory.

    >>> import os
    >>> str(expand("~/runs/t.csv")) == os.path.join(os.path.expanduser("~"), "runs", "t.csv")
    True
    """
    return Path(os.path.expanduser(os.fsdecode(os.fspath(path))))
