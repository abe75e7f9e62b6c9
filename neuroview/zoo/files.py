"""Where the zoo's files are: its trained checkpoints and its recipes, in a source tree or an installed wheel.

The repository's top-level ``checkpoints/`` and ``recipes/`` are the only copies in git. A wheel
carries them as package data under ``neuroview/zoo/_data/`` (pyproject.toml maps those two
package-data folders onto the top-level ones, so the build copies the very files of the tree).
An installed wheel has no source tree to fall back on, a checkout (or an editable install) has no
``_data`` folder: each looks where its copy is, the packaged one first.

May import the standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.user_path import expand  # the one rule of every --out/--zoo, the tables and the report

__all__ = ["ENV", "checkpoints_dir", "default_checkpoints", "recipes_dir", "find_recipe", "MissingZooError", "unwritable", "expand", "too_long", "replaceable", "NAME_MAX"]

#: An explicit checkpoints folder, instead of the packaged or the source tree's.
ENV = "NEUROVIEW_CHECKPOINTS"
MANIFEST = "manifest.json"
PACKAGED = Path(__file__).resolve().parent / "_data"  # in a wheel: neuroview/zoo/_data/{checkpoints,recipes}
SOURCE = Path(__file__).resolve().parents[2]  # in a checkout: the repository root


class MissingZooError(FileNotFoundError):
    """This install has no zoo checkpoints (a wheel built without its package data, a partial checkout)."""


def default_checkpoints() -> tuple[Path, list[Path]]:
    """``(folder, candidates)``: the first candidate holding a manifest (the packaged copy before the
    source tree's), or the source tree's folder when none does; ``candidates`` in the order looked at."""
    candidates = [PACKAGED / "checkpoints", SOURCE / "checkpoints"]
    found = [c for c in candidates if (c / MANIFEST).is_file()]
    return (found[0] if found else candidates[-1]), candidates


def checkpoints_dir(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$NEUROVIEW_CHECKPOINTS``, else the packaged checkpoints, else the source tree's."""
    if root is not None:  # "~/zoo" (quoted, after --zoo=, in a .env file): the home folder's, not ./~/zoo
        return expand(root)
    if os.environ.get(ENV):
        return expand(os.environ[ENV])
    return default_checkpoints()[0]


def unwritable(folder: str | os.PathLike) -> tuple[Path, str] | None:
    """``(where, why)`` where ``folder`` (or, where it does not exist yet, ``where``: the nearest folder above it, in
    which it would be made) cannot take a new file, found by making one and removing it at once (a read-only or
    immutable folder, a read-only file system: ``os.access`` does not see them all); ``None`` where it can. A command
    checks its ``--out`` so before its work: the export found it only after, in a bare PermissionError, the work lost.
    An append-only folder takes a new file but lets none be removed or renamed, as the writer's move into place needs:
    refused, and its probe is one file of a fixed name, opened again by the next check, never one more a check."""
    folder = expand(folder)
    nearest = next((p for p in (folder, *folder.absolute().parents) if p.exists()), None)
    if nearest is None or not nearest.is_dir():
        return None  # a file in the way: the callers say that by name
    probe = nearest / PROBE
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600))
    except OSError as e:
        if not os.path.lexists(probe):
            return nearest, f"{type(e).__name__}: {e.strerror or e}"
        return _probe_anew(nearest)  # another user's probe left in a shared folder, or a link: a name of its own
    try:
        probe.unlink(missing_ok=True)  # missing: another command's check removed it first
    except OSError as e:
        return nearest, (f"{type(e).__name__}: {e.strerror or e}: files can be made in it but not removed or renamed, "
                         f"as the writer's move into place needs; the probe {PROBE} stays in it")
    return None


#: The name of :func:`unwritable`'s probe file.
PROBE = ".neuroview-probe.tmp"


def _probe_anew(nearest: Path) -> tuple[Path, str] | None:
    """:func:`unwritable`'s probe under a random name, where its fixed one is taken by a file it cannot open."""
    import secrets  # noqa: PLC0415  (a new name made exclusively, as a temporary file is: nothing is renamed here)

    probe = nearest / f".neuroview-probe.{secrets.token_hex(6)}.tmp"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600))
    except OSError as e:
        return nearest, f"{type(e).__name__}: {e.strerror or e}"
    try:
        os.unlink(probe)
    except OSError as e:
        return nearest, (f"{type(e).__name__}: {e.strerror or e}: files can be made in it but not removed or renamed, "
                         f"as the writer's move into place needs; the probe {Path(probe).name} stays in it")
    return None


#: The bytes of one file or folder name on the common file systems (ext4, xfs, btrfs, tmpfs).
NAME_MAX = 255


def too_long(path: str | os.PathLike, sibling: int | None = None) -> str | None:
    """Why ``path`` cannot be written: a folder name of it over :data:`NAME_MAX` bytes, or (``sibling``: what the writer
    adds to its last name for its temporary file beside it; ``None``: ``path`` is a folder) its file name; else None.
    Said before the work: ``exists()`` raised a bare ``OSError [Errno 36]``, or the save failed after the work."""
    parts = [p for p in os.fspath(expand(path)).split(os.sep) if p]
    folders, name = (parts, None) if sibling is None else (parts[:-1], parts[-1] if parts else None)
    if long := next((p for p in folders if len(os.fsencode(p)) > NAME_MAX), None):
        return f"a folder name of {len(os.fsencode(long))} bytes ({long[:30]!r}...), over a file system's {NAME_MAX}"
    if name is not None and len(os.fsencode(name)) + sibling > NAME_MAX:
        return (f"a file name of {len(os.fsencode(name))} bytes ({name[:30]!r}...), over the {NAME_MAX - sibling} that "
                f"leave room for the writer's temporary file beside it in a file system's {NAME_MAX}")
    return None


def replaceable(path: str | os.PathLike) -> str | None:
    """Why the existing file ``path`` cannot be replaced by a rename onto it (an ``--overwrite``), said before the work;
    None where it can, or does not exist. Seen: another user's file in a sticky folder (``/tmp``), and a file
    ``os.access`` finds unwritable though its mode lets its owner write (immutable, append-only, a read-only mount)."""
    path = expand(path)
    try:
        st, folder = path.lstat(), path.parent.stat()
    except OSError:
        return None  # no such file: nothing to replace
    me = os.geteuid() if hasattr(os, "geteuid") else None
    if me not in (None, 0) and folder.st_mode & 0o1000 and me not in (st.st_uid, folder.st_uid):
        return "another user's file in a folder whose sticky bit lets only its owner replace it"
    mine = me is None or me == 0 or (st.st_uid == me and st.st_mode & 0o200)
    if mine and not path.is_symlink() and not os.access(path, os.W_OK):  # the mode allows it: the file or mount does not
        return "its file system or attributes let it be neither written nor replaced (immutable, append-only, read-only)"
    return None


def missing_zoo_message() -> str:
    """Why the default zoo is empty, where it was looked for, and what to do."""
    _, looked = default_checkpoints()
    return (f"the zoo's checkpoints are missing: no {MANIFEST} in {' or '.join(str(p) for p in looked)}. A neuroview "
            "wheel ships them as package data (neuroview/zoo/_data/checkpoints): reinstall it from a wheel or sdist "
            f"built from the repository, work in a checkout of the repository, or set ${ENV} to a checkpoints folder")


def recipes_dir() -> Path:
    """The packaged recipes when installed from a wheel, else the source tree's ``recipes/``."""
    packaged = PACKAGED / "recipes"
    return packaged if packaged.is_dir() else SOURCE / "recipes"


def find_recipe(path: str) -> str:
    """``path`` itself when it exists, else the shipped recipe it names, else ``path`` unchanged.

    ``recipes/digits_nv_small_cnn.yaml``, ``digits_nv_small_cnn.yaml`` and ``digits_nv_small_cnn``
    all name the shipped recipe, from any working directory; a path into another folder never does.

    >>> Path(find_recipe("digits_nv_small_cnn")).name
    'digits_nv_small_cnn.yaml'
    """
    given = Path(path)
    if given.exists() or given.parent not in (Path("."), Path("recipes")):
        return path
    name = given.name if given.suffix in (".yaml", ".yml") else given.name + ".yaml"
    shipped = recipes_dir() / name
    return str(shipped) if shipped.is_file() else path
