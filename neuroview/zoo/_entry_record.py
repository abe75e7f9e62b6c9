"""A zoo manifest entry's own record, checked as it loads: the facts it rebuilds its network from
(:func:`entry_facts`: ``architecture``, ``arch_kwargs``, a ``file`` of the folder) and the weight file's record of how
it was built (:func:`check_file_kwargs`), which must be the entry's.

May import ``.files`` (where the manifest is) and ``.weights`` (the file's record, and the errors of a load).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .files import MANIFEST, checkpoints_dir
from .weights import ArchitectureError, arch_clash, arch_defaults, saved_arch_kwargs

__all__ = ["entry_facts", "check_file_kwargs"]


def entry_facts(full: str, entry: Any, root: str | os.PathLike | None) -> tuple[str, dict]:
    """``(architecture, arch_kwargs)`` of a manifest entry; an entry without them (or ``file``) is an error
    naming the manifest and the entry, not a bare KeyError."""
    where = checkpoints_dir(root) / MANIFEST
    if not isinstance(entry, dict):
        raise ValueError(f"root: expected the entry {full!r} of {where} to be a JSON object, got {type(entry).__name__}")
    missing = [k for k in ("architecture", "arch_kwargs", "file") if k not in entry]
    if missing:
        raise ValueError(f"root: the entry {full!r} of {where} has no {', '.join(map(repr, missing))} (expected "
                         "'architecture', 'arch_kwargs' and 'file'); restore the manifest or re-export the entry")
    if not isinstance(entry["arch_kwargs"], dict) or not isinstance(entry["architecture"], str):
        raise ValueError(f"root: the entry {full!r} of {where}: expected a string 'architecture' and an object 'arch_kwargs', "
                         f"got {entry['architecture']!r} and {entry['arch_kwargs']!r}")
    # a name in the folder: '../x', '/x' or a link out of it loaded weights from elsewhere on the disk
    if not isinstance(file := entry["file"], str) or not file or Path(file).name != file or not file.endswith(".safetensors"):
        want = (f"a non-empty string 'file' (its weight file, in {where.parent})" if not isinstance(file, str) or not file else
                f"'file' to name a .safetensors file in {where.parent} (a file name: no folder, no path)")
        raise ValueError(f"root: the entry {full!r} of {where}: expected {want}, got {file!r}; restore the manifest or re-export the entry")
    if (where.parent / file).is_symlink() and where.parent.resolve() not in (where.parent / file).resolve().parents:
        raise ValueError(f"root: the entry {full!r} of {where}: its file {file!r} is a link to {str((where.parent / file).resolve())!r}, "
                         "outside the folder; a zoo loads only its own files: copy the file in, or re-export the entry")
    return entry["architecture"], dict(entry["arch_kwargs"])


def check_file_kwargs(full: str, file: str, meta: dict[str, str], arch: str, arch_kwargs: dict,
                       entries: dict | None = None) -> None:
    """The file's own record of how it was built (``neuroview.arch_kwargs``) must be the manifest's: an
    edited manifest would otherwise load the weights, without error, into a network they were never trained as.
    Nor may the file be another entry's of ``entries`` by the name it records (``neuroview.name``): an entry naming
    another's file loaded it (an entry renamed by hand, whose old name is gone, still loads its file)."""
    saved_as = meta.get("neuroview.name")
    if saved_as not in (None, full) and saved_as in (entries or {}):
        raise ArchitectureError(f"{full}: {file} holds the weights of the entry {saved_as!r}, not of {full!r}; it is "
                                "not loaded as another entry: restore the manifest or re-export the entry")
    if (saved := saved_arch_kwargs(meta, file, full)) is None:  # a file that records nothing (not save_pretrained's): the manifest alone says
        return
    if clash := arch_clash(saved, arch_kwargs, arch_defaults(arch)):
        given = {k: ("" if k in saved else " (not given: the default)", "" if k in arch_kwargs else " (not given: the default)")
                 for k in clash}
        detail = ", ".join(f"{k}: file {a!r}{given[k][0]}, manifest {b!r}{given[k][1]}" for k, (a, b) in clash.items())
        raise ArchitectureError(f"{full}: {file} was trained with other arguments than the manifest's arch_kwargs say "
                                f"({detail}); it is not loaded "
                                "into a network it was not trained as: restore the manifest or re-export the entry")
