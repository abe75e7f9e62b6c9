"""Writing files so that a crash never leaves half of one where a good one was.

The one place that writes through a temporary and a rename: :func:`atomic_write` for a file,
:func:`atomic_write_all` for files that belong together,
:func:`staged_dir` for a folder of them (a report), :func:`keep_aside` for a file a new one will take the
place of. Everything else writes through these; :func:`safetensors_bytes` lays a tensor file out the same way
every time.
"""

from __future__ import annotations

import contextlib
import json
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


def keep_aside(path: Path) -> Path:
    """Rename ``path`` to ``<stem>-v<N><suffix>`` beside it (the first N >= 1 free, Lightning's own versioning),
    so that a file written next at ``path`` replaces nothing; returns the new path."""
    path = Path(path)
    n = 1
    while (kept := path.with_name(f"{path.stem}-v{n}{path.suffix}")).exists():
        n += 1
    os.rename(path, kept)
    return kept


def atomic_write_all(files: dict[Path, bytes]) -> None:
    """Write files that belong together (a tensor file and its sidecar) as one: the earlier ones are kept
    aside beside them until every new one is in place, then removed. On any error, Ctrl-C too, the earlier
    files are put back (and a new one that had no earlier namesake removed): the old set or the new, never a mix."""
    files = {Path(p): data for p, data in files.items()}
    aside: dict[Path, str] = {}
    written: list[Path] = []
    try:
        for path in files:
            if os.path.lexists(path):
                fd, aside[path] = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old")
                os.close(fd)
                os.replace(path, aside[path])
        for path, data in files.items():
            written.append(path)
            atomic_write(path, data)
    except BaseException:
        for path in written:
            if path not in aside:
                path.unlink(missing_ok=True)
        for path, old in aside.items():  # moved aside, or (stopped before the rename) still in place
            if written or not os.path.lexists(path):
                os.replace(old, path)
            else:
                os.unlink(old)
        raise
    for old in aside.values():
        os.unlink(old)


@contextlib.contextmanager
def staged_dir(path: Path) -> Iterator[Path]:
    """A temporary folder to write a set of files into.

    When the block ends, its files become ``path``'s. A new ``path`` is the staging folder (made beside it)
    renamed into place. An existing folder, empty or not, keeps its identity (inode, owner, group, mode: a mount
    point or a shared folder cannot be swapped by a rename): the block writes into a hidden folder inside it, and
    its files are moved in one by one, each replacing its namesake; the folder's other files stay.
    When the block raises, or the moves are interrupted, everything moved is put back and the temporary folders
    are removed, with any parent folder made for them: ``path`` is left as it was, never with part of what the
    block wrote. A ``path`` that is a symlink to a folder is written through (into its target); one that cannot
    be a folder (a file in the way) is refused with a ValueError before the block runs.
    """
    path = _folder(Path(path))
    if path.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=path, prefix=".neuroview-stage.", suffix=".tmp"))
        try:
            yield tmp
            _move_in(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    made = [p for p in reversed(path.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's private 0700 would hide the folder from its readers
        os.replace(tmp, path)
    except BaseException:
        for p in reversed(made):
            shutil.rmtree(p, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _folder(path: Path) -> Path:
    """``path`` with its symlinks resolved; a ValueError where something not a folder stands in its way."""
    real = Path(os.path.realpath(path))
    for p in (path, *path.parents, real, *real.parents):  # as given first: the message names what the user wrote
        if os.path.lexists(p) and not p.is_dir():
            raise ValueError(f"folder {str(path)!r}: expected a folder or a new path to make one at, "
                             f"got {str(p)!r} in the way, which is not a folder")
    return real


def _move_in(new: Path, path: Path) -> None:
    """Move every entry of the folder ``new`` into the folder ``path`` by renames on one file system, each
    namesake set aside first (in a hidden folder inside ``path``); on any error everything is moved back,
    ``path`` as it was."""
    old = Path(tempfile.mkdtemp(dir=path, prefix=".neuroview-old.", suffix=".tmp"))
    moved: list[str] = []
    try:
        for name in sorted(os.listdir(new)):
            if os.path.lexists(path / name):
                os.replace(path / name, old / name)
            moved.append(name)
            os.replace(new / name, path / name)
    except BaseException:
        for name in reversed(moved):
            if not os.path.lexists(new / name) and os.path.lexists(path / name):  # moved in already: back out
                os.replace(path / name, new / name)
            if os.path.lexists(old / name):  # set aside: back in place
                os.replace(old / name, path / name)
        with contextlib.suppress(OSError):
            old.rmdir()  # only while empty: never what a failed move back left in it
        raise
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def safetensors_bytes(tensors: dict, metadata: dict | None = None) -> bytes:
    """``safetensors.torch.save(tensors, metadata)`` with its header's keys sorted: safetensors writes a dict's keys in
    an order of its own making, so the same network saved twice gave two files (two sha256s in a manifest). The
    tensors' bytes and offsets are safetensors' own; the header is padded to 8 bytes as safetensors pads it."""
    from safetensors.torch import save  # noqa: PLC0415 - only when saving

    data = save(tensors, metadata=metadata)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", None)
    ordered = {**({"__metadata__": dict(sorted(meta.items()))} if meta is not None else {}), **dict(sorted(header.items()))}
    text = json.dumps(ordered, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return b"".join((len(text).to_bytes(8, "little"), text, memoryview(data)[8 + n:]))  # no copy of the tensors' part
