"""Reading and rewriting a zoo folder's ``manifest.json`` and its weight files without losing either.

One export at a time per folder (:func:`locked`: a lock file inside the folder, which every writer
of that folder sees), the whole manifest kept (:func:`read_document`: keys added by hand stay), an
entry's file never taken from another entry (:func:`foreign_file`); the weights and the manifest
are written as one by ``neuroview._io.atomic_write_all``: the manifest is never moved away (a reader always finds
the old one or the new, whole), it is replaced last, and an export killed on the way is finished or undone by the
next writer (:func:`locked`) or reader (:func:`read_document`), the old weights back where the old manifest stands.

May import ``neuroview._io`` (the writer, and :func:`~neuroview._io.recover` of what a killed one left) and ``.files``
(where the manifest's name is set).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator

from .._io import Received, recover
from .files import MANIFEST

FORMAT = 1
LOCK = ".manifest.lock"  # beside the manifest: exports into one folder from jobs with different $TMPDIR still see it


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Serialize the manifest's read-modify-write among the processes that export into ``root``
    (only writers take it: reading the zoo creates nothing)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "a") as lock:
        try:
            import fcntl  # noqa: PLC0415 - POSIX only; elsewhere exports must not overlap

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:
            pass
        _recover(root / MANIFEST)  # an export killed on the way (no lock held now: its process is gone)
        yield


def read_document(path: Path) -> dict:
    """The whole manifest at ``path`` (``format``, ``entries`` and any key added by hand); a file that is
    no neuroview manifest is a ValueError that says so. An export killed on the way is undone or finished first
    (where its process still runs, nothing: the manifest is whole, old or new); a journal copied along with the folder
    that names files outside it is refused, nothing done."""
    _recover(Path(path), busy_ok=True)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (ValueError, RecursionError) as e:  # JSON cut short or malformed (JSONDecodeError), bytes that are no UTF-8
        # (UnicodeDecodeError), nested deeper than the JSON reader goes (RecursionError)
        raise ValueError(f"root: expected a neuroview manifest (JSON) in {path}, got a file that is not readable JSON "
                         f"({type(e).__name__}: {e}); restore it or re-export its entries") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), dict):
        raise ValueError(f"root: {path} is not a neuroview manifest (expected {{'format': {FORMAT}, 'entries': {{...}}}})")
    return data


def foreign_file(root: Path, name: str, file: str, entries: dict, arg: str = "name") -> str | None:
    """The error message where writing entry ``name`` to ``root / file`` would replace a file that is not
    ``name``'s own: another entry's weights (a manifest edited by hand), or a file no entry lists; else None.
    ``arg`` is the argument the message starts with (the caller's: ``name``, ``out``). The weight file of a killed
    first export (no manifest yet) is removed first, not called an orphan."""
    _recover(Path(root) / MANIFEST, busy_ok=True)
    path = Path(root) / file
    if not path.exists():
        return None
    holders = sorted(n for n, e in entries.items()
                     if isinstance(e, dict) and isinstance(e.get("file"), str) and os.path.normpath(e["file"]) == file)
    others = [n for n in holders if n != name]
    if others:
        return (f"{arg}: expected {path} to be free or the weight file of {name!r}, got the weight file of the entry "
                f"{others[0]!r} of {root / MANIFEST}; replacing it would break that entry: pick another name, "
                f"or rename that entry's file (and its 'file' in the manifest)")
    if not holders:
        return (f"{arg}: expected {path} to be free or the weight file of {name!r}, got a file that no entry of "
                f"{root / MANIFEST} lists (no entry: an orphan); move it away or delete it if it is not needed, "
                "or pick another name")
    return None


def _recover(manifest: Path, busy_ok: bool = False) -> None:
    """``recover`` of what a killed export into the zoo left; a journal that came with a copied folder (it names files
    outside it) is refused naming ``root``; any other error is left as it is."""
    try:
        recover(manifest, busy_ok=busy_ok)
    except Received as e:
        raise ValueError(f"root: {e}") from None
