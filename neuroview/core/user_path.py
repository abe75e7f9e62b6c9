"""A path a user typed, as the shell would read it: ``~`` the home folder; and a name as a UTF-8 file can show it.

Imports the standard library only (the core's writers, :mod:`neuroview.attribution`'s tables and the report use it;
:func:`neuroview.zoo.files.expand`, the rule of every ``--out``/``--zoo``, is the same one).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["expand", "printable"]


def expand(path: str | os.PathLike) -> Path:
    """``path`` with a leading ``~`` expanded as the shell expands it (``os.path.expanduser``: ``~`` and ``~/x`` the home
    folder's, ``~user/x`` an existing user's), and left as it is where no user has that name (``~old`` is a folder of
    that name). Taken literally, ``"~/x"`` made a folder named ``~`` in the working directory.

    >>> import os
    >>> str(expand("~/runs/t.csv")) == os.path.join(os.path.expanduser("~"), "runs", "t.csv")
    True
    """
    return Path(os.path.expanduser(os.fsdecode(os.fspath(path))))


def printable(text: str) -> str:
    r"""``text`` with the bytes of a name that is not UTF-8 shown as Python shows them (``caf\xe9``): a folder of a
    latin-1 name (unpacked from an old zip, a Samba share) reaches Python with a lone surrogate (``caf\udce9``),
    which a strict UTF-8 write refused, after all the work. Any other lone surrogate as ``\udXXX``.

    >>> import os
    >>> printable(os.fsdecode(b"/runs/caf\xe9/last.ckpt"))
    '/runs/caf\\xe9/last.ckpt'
    """
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name gave (not U+DC80..U+DCFF)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
