"""The ``neuroview explain`` report's folder (``--out``) around its write: a killed run's leftovers undone first
(:func:`recover_out`), and the moment the finished report moves in (:func:`moving_in`), when another run may have
written into the folder since :func:`~neuroview.viz.report_data.check_out` found it empty.

Imports only :mod:`neuroview._io` and the standard library.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Callable, ContextManager, Iterator

from .._io import Received, recover_dir

__all__ = ["content", "moving_in", "recover_out", "MovingIn"]

#: a staging or set-aside folder of a report being moved in (this run's, or another's still running), inside ``--out``
_TEMPORARY = re.compile(r"\.neuroview-(stage|old)\.")


def content(out: Path) -> list[str]:
    """The names in the folder ``out``, sorted, but for the staging folders of reports (:data:`_TEMPORARY`): another
    run's still writing, or one a killed run of another user or host left that :func:`recover_out` cannot remove. An
    ``--out`` staged inside (setgid, or its parent not writable: :func:`~neuroview._io.staged_dir`) that holds only
    those is empty, as ``ls`` shows it: what ``check_out`` and the check under the lock both count."""
    return sorted(n for n in os.listdir(out) if not _TEMPORARY.search(n))


def recover_out(out: Path) -> None:
    """:func:`~neuroview._io.recover_dir` of ``out``; a received folder's record of a killed run refused naming it."""
    try:
        recover_dir(out)
    except Received as e:
        raise Received(f"out_dir (--out): {e}") from None


def moving_in(overwrite: bool, shown=None, listed: Callable[[Path], set[str]] | None = None) -> "MovingIn":
    """:func:`~neuroview._io.staged_dir`'s ``check`` for a report: :func:`_locked_and_checked` of the folder, named
    ``shown`` (the ``--out`` as the user gave it; default: the folder's real path) in a refusal. With ``overwrite``
    and ``listed`` (the files of the report there: :func:`~neuroview.viz.report_data.report_files`), the earlier
    report's files that this one (``.written``, set before the block ends) does not rewrite are removed under the same
    lock as the moves, listed under it too: a report another run moved in meanwhile is replaced whole."""
    return MovingIn(overwrite, shown, listed)


class MovingIn:
    """What :func:`moving_in` returns: called with the folder, the context manager around the moves in."""

    def __init__(self, overwrite: bool, shown, listed):
        self.overwrite, self.shown, self.listed, self.written = overwrite, shown, listed, None

    def __call__(self, out: Path) -> ContextManager[None]:
        return _locked_and_checked(out, self)


@contextlib.contextmanager
def _locked_and_checked(out: Path, how: MovingIn) -> Iterator[None]:
    """Around the moves of a finished report into the folder ``out``: an exclusive lock on the folder, so that two
    reports move in one after the other, never file by file in turn; and, without ``overwrite``, the folder found
    empty again under that lock, else a FileExistsError naming it, and nothing moved: two runs into one new or empty
    ``--out`` gave both exit 0 and a mix of two reports, or a bare [Errno 39] Directory not empty. With it, the
    report there then (not the one there at this run's start: another run's may have moved in since) is listed under
    the lock, and its files this one does not rewrite go once the moves are done, before the lock is let go."""
    fd = os.open(out, os.O_RDONLY)
    try:
        with contextlib.suppress(ImportError, OSError):  # not POSIX, or a file system without locks: no lock
            import fcntl  # noqa: PLC0415 - POSIX only

            fcntl.flock(fd, fcntl.LOCK_EX)  # released with the descriptor
        if not how.overwrite and (found := content(out)):
            shown = ", ".join(found[:5]) + (f", ... ({len(found)} in all)" if len(found) > 5 else "")
            raise FileExistsError(f"out_dir (--out): {str(Path(how.shown or out))!r} was written by another run meanwhile "
                                  f"({shown}), so this report was not moved in; pick another folder, or pass overwrite=True "
                                  "(--overwrite) to write over it")
        before = how.listed(out) if how.overwrite and how.listed is not None else set()
        yield
        for name in sorted(before - set(how.written or before)):  # another model's time tables or waterfalls
            (out / name).unlink(missing_ok=True)
    finally:
        os.close(fd)
