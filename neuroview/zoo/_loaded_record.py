"""A loaded zoo entry's record (``model.pretrained_cfg``: name, file, sha256, dataset, metrics) once other weights are
loaded into its network (:func:`neuroview.zoo.weights.load_weights`): the record is the entry's only while the
network holds the entry's own bytes. Another entry's file (another ``neuroview.name``) or other bytes (another sha256)
replace it by ``{"loaded_from": <the file's entry name, else its path>, "was": <the entry>}``, as a sparsified copy's
``{"sparsified_from": ...}`` replaces it (``neuroview.training.sparsify.derived_cfg``): a network reading 12 units a
class kept claiming the dense entry's 194, and ``nv.sparsify`` of it recorded that entry as its source.

May import the standard library only.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

__all__ = ["restamp"]


def restamp(model: Any, path: str | os.PathLike, meta: dict[str, str]) -> None:
    """Replace ``model``'s ``pretrained_cfg`` after ``path`` (whose metadata is ``meta``) was loaded into it, unless the
    file is that entry's own: its bytes hash to the record's sha256 and it names no other entry. A network without a
    zoo entry's record (none, or a copy's ``{"sparsified_from": ...}``) is left as it is."""
    cfg = getattr(model, "__dict__", {}).get("pretrained_cfg")
    if not isinstance(cfg, dict) or not isinstance(name := cfg.get("name"), str):
        return
    named = meta.get("neuroview.name")
    if named in (None, name) and isinstance(sha := cfg.get("sha256"), str) and _sha256(path) == sha:
        return
    model.pretrained_cfg = {"loaded_from": named if named not in (None, name) else str(path), "was": name}


def _sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(os.path.expanduser(path), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
