"""A loaded zoo entry's record (``model.pretrained_cfg``: name, file, sha256, dataset, metrics) once other weights are
loaded into its network (:func:`neuroview.zoo.weights.load_weights`): the record describes the file last loaded. The
entry's own bytes (its sha256, naming no other entry) give the entry's record, again after other files; any other file
gives ``{"loaded_from": <the file's entry name, else its path>, "was": <the entry the network was loaded as>}``, the
second and third file too (the first file's record stayed, and a copy's ``{"sparsified_from": ...}`` survived any load).
A copy's record (:func:`derive`, ``neuroview.training.sparsify.derived_cfg``) names what the network held: the entry,
or the file loaded into it (``nv.sparsify`` of a network loaded with another entry's file recorded that file as plainly
loaded). A file loaded into the network a zoo network wraps (``net.backbone``, ``net.rnn``) restamps the wrapping
network's record (logits moved by 1.66 under the entry's name, sha256 and test_acc): :func:`hold` keeps, weakly, which
network wraps them, and the link counts only while the part is still that network's.

Another library's ``pretrained_cfg`` (timm's: ``hf_hub_id``, ``mean``, ``input_size`` ..., no ``name``) is left alone.

May import the standard library only.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from typing import Any

__all__ = ["restamp", "derive", "hold"]

#: Where NeuroView networks keep the network they wrap (``neuroview.zoo.weights._WRAPPED``).
_WRAPPED = ("backbone", "rnn")
#: The zoo entry's record a network was loaded as, kept on it once another record replaces it: its bytes loaded back
#: give it again (a deep copy keeps it, as it keeps the record).
_ENTRY = "_neuroview_entry_record"
#: The records the zoo writes in place of an entry's (a network without ``_ENTRY``: one pickled before it was kept).
_OURS = ("loaded_from", "sparsified_from", "refitted_from", "finetuned_from")
_HOLDERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # a wrapped network -> (attribute, its wrapper's ref)


def hold(model: Any) -> None:
    """Remember ``model`` as the network that wraps its ``backbone`` / ``rnn`` (weakly): a file loaded into either
    restamps ``model``'s record (:func:`restamp`)."""
    for attr in _WRAPPED:
        part = getattr(model, "__dict__", {}).get("_modules", {}).get(attr)
        if part is not None:
            try:
                _HOLDERS[part] = (attr, weakref.ref(model))
            except TypeError:  # not weakly referable: nothing to find it by
                pass


def _holders(model: Any) -> list[tuple[Any, bool]]:
    """``(network, whether the file went into all of it)``: ``model``, then each network that still wraps it."""
    out, seen = [(model, True)], {id(model)}
    while (link := _HOLDERS.get(out[-1][0])) is not None:
        attr, ref = link
        owner = ref()
        if owner is None or id(owner) in seen or owner.__dict__.get("_modules", {}).get(attr) is not out[-1][0]:
            break  # gone, or the part is no longer its (net.backbone replaced)
        seen.add(id(owner))
        out.append((owner, False))
    return out


def restamp(model: Any, path: str | os.PathLike, meta: dict[str, str], whole: bool = True) -> None:
    """Make the record of ``model`` (and of each network that wraps it) describe ``path`` (whose metadata is ``meta``),
    just loaded into ``model`` (``whole``: into all of it; else into the network it wraps, ``backbone=True``)."""
    for net, all_of_it in _holders(model):
        _restamp(net, path, meta, whole and all_of_it)
        hold(net)


def _restamp(net: Any, path: str | os.PathLike, meta: dict[str, str], whole: bool) -> None:
    cfg = net.__dict__.get("pretrained_cfg")
    if not isinstance(cfg, dict):
        return
    entry = cfg if isinstance(cfg.get("name"), str) else net.__dict__.get(_ENTRY)
    if not isinstance(entry, dict) and not any(k in cfg for k in _OURS):
        return  # another library's record
    name = entry.get("name") if isinstance(entry, dict) else None
    named = meta.get("neuroview.name")
    if whole and name is not None and named in (None, name) and isinstance(sha := entry.get("sha256"), str) \
            and _sha256(path) == sha:  # the entry's own bytes, all of the network: the entry's record
        if cfg is not entry:
            net.pretrained_cfg = dict(entry)
        return
    if cfg is entry:
        net.__dict__[_ENTRY] = entry
    was = name if name is not None else cfg.get("was", cfg)  # the entry it was loaded as (else the record it had)
    net.pretrained_cfg = {"loaded_from": named if named not in (None, name) else str(path), "was": was}


def derive(model: Any, key: str) -> Any:
    """A copy's record: ``{key: <the zoo entry's name>}``, or ``{key: <the file loaded into it>}`` for a network whose
    record is a ``loaded_from``; a copy of a copy by the same operation keeps its own, by another one chains it:
    ``{key: <its source>, "after": <its record>}`` (``nv.sparsify`` of a fine-tuned copy said ``finetuned_from``
    alone, a record of another network). The entry's record is kept (its bytes loaded back)."""
    cfg = model.__dict__.get("pretrained_cfg")
    if isinstance(cfg, dict) and isinstance(cfg.get("name"), str):
        model.__dict__[_ENTRY] = cfg
        model.pretrained_cfg = {key: cfg["name"]}
    elif isinstance(cfg, dict) and isinstance(cfg.get("loaded_from"), str):
        model.pretrained_cfg = {key: cfg["loaded_from"]}
    elif isinstance(cfg, dict) and key not in cfg and (last := next((k for k in _OURS[1:] if k in cfg), None)):
        model.pretrained_cfg = {key: cfg[last], "after": cfg}
    hold(model)
    return model


def _sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(os.path.expanduser(path), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
