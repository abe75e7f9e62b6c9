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

__all__ = ["ENV", "checkpoints_dir", "default_checkpoints", "recipes_dir", "find_recipe", "MissingZooError", "unwritable"]

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
        return Path(root).expanduser()
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    return default_checkpoints()[0]


def unwritable(folder: str | os.PathLike) -> tuple[Path, str] | None:
    """``(where, why)`` where ``folder`` (or, where it does not exist yet, ``where``: the nearest folder above it, in
    which it would be made) cannot take a new file, found by making one and removing it at once (a read-only or
    immutable folder, a read-only file system: ``os.access`` does not see them all); ``None`` where it can. A command
    checks its ``--out`` so before its work: the export found it only after, in a bare PermissionError, the work lost."""
    import tempfile  # noqa: PLC0415

    folder = Path(folder).expanduser()
    nearest = next((p for p in (folder, *folder.absolute().parents) if p.exists()), None)
    if nearest is None or not nearest.is_dir():
        return None  # a file in the way: the callers say that by name
    try:
        with tempfile.NamedTemporaryFile(dir=nearest, prefix=".neuroview-probe.", suffix=".tmp"):
            pass
    except OSError as e:
        return nearest, f"{type(e).__name__}: {e.strerror or e}"
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
