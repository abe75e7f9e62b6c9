"""Data modules checked against the classes a network records, in Python as on the command line.

A data module numbers the classes it reads (an ``NpzDataModule`` of labels 'b', 'a' numbers 'a' as 0); a zoo entry
records the classes its outputs index (``pretrained_cfg["dataset"]["class_names"]``). ``neuroview sparsify --data``
refused a file of other classes than the entry's (:func:`neuroview.data.read_as.check_classes`), while ``nv.sparsify``,
``nv.retrofit`` and ``nv.finetune_sparse`` took it: GunPoint renamed '1' -> 'b', '2' -> 'a' gave a sparse copy whose
output 0 was the entry's '2' under a record naming the entry, and a retrofit that scored the standard entry 0% on
series it classifies 100% right. :func:`classes_checked` is that check wherever a network meets the data given to it
and both name their classes; plain loaders of integer labels name none and are read as the network's numbering, as
before. Registered as the extension ``"data_classes"`` for :func:`neuroview.unit_gallery`, whose layer may not import
the data package.

May import ``neuroview.core`` and ``neuroview.zoo._loaded_record``; ``neuroview.data`` only inside
:func:`classes_checked`, and only where both sides name their classes.
"""

from __future__ import annotations

from inspect import getattr_static

from ..core._utils import register_extension
from ..zoo._loaded_record import _ENTRY, _OURS

__all__ = ["classes_checked", "recorded_classes"]


def recorded_classes(net) -> list[str] | None:
    """The names of ``net``'s outputs, in order, where it records them: its record's ``dataset.class_names`` (a zoo
    entry's), else, for a copy made from a zoo entry (``nv.sparsify``, ``nv.finetune_sparse``: ``{"sparsified_from":
    <the entry>}``), the entry's; ``None`` otherwise (a network of the user's, one another file was loaded into, a
    ridge-refitted copy, or another library's record). A copy's head was fitted on data of the entry's classes where those were named:
    :func:`classes_checked` refused other ones."""
    cfg = getattr(net, "pretrained_cfg", None)
    if not isinstance(cfg, dict):
        return None
    names = _names(cfg)
    entry = getattr(net, "__dict__", {}).get(_ENTRY)
    if names is None and isinstance(entry, dict) and _source(cfg) == entry.get("name"):
        names = _names(entry)  # (a copy of a file loaded into the entry names that file, not the entry)
    return names


#: The copies whose data :func:`classes_checked` checks (each of ``sparsify``, ``finetune_sparse``, ``fit_ridge_head``).
_CHECKED = ("sparsified_from", "finetuned_from", "refitted_from")


def _source(cfg) -> str | None:
    """The network a copy's record names as its source, where every step of it (``{"finetuned_from": ..., "after":
    <the record before>}``) is a copy that checks its data; None otherwise."""
    source = None
    while isinstance(cfg, dict):
        made = [k for k in _OURS if k in cfg]
        if len(made) != 1 or made[0] not in _CHECKED or not isinstance(cfg[made[0]], str):
            return None
        source, cfg = source or cfg[made[0]], cfg.get("after")
    return source


def _names(cfg: dict) -> list[str] | None:
    dataset = cfg.get("dataset")
    names = dataset.get("class_names") if isinstance(dataset, dict) else None
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else None


def classes_checked(net, data, what: str):
    """``data``, after :func:`~neuroview.data.read_as.check_classes`'s error (the command line's words, ``what``
    naming the argument) where it is a data module that names other classes than ``net`` records, or the same in
    another order: its class i would be fitted, scored and named as the network's class i. Called before any work."""
    trained = recorded_classes(net)
    if trained is None or getattr_static(data, "class_names", None) is None:  # a loader, batches: integer labels
        return data
    from ..data.read_as import check_classes, names_classes  # noqa: PLC0415 - only where both sides name their classes

    if names_classes(data):
        try:
            check_classes(data, trained, what)
        except ValueError as e:  # the command line's words, and where the network's names come from (code cannot tell
            raise ValueError(f"{e}; {_override(net)}") from None  # a network trained since on other classes)
    return data


def _override(net) -> str:
    """Where :func:`recorded_classes` read ``net``'s names, and how a network trained since on other classes says so."""
    own = _names(net.pretrained_cfg) is not None
    where = ("those its record holds, pretrained_cfg['dataset']['class_names']" if own else
             f"those of the zoo entry {net.__dict__[_ENTRY]['name']!r} it was made from")
    return (f"the model's names are {where}; a network trained since on other classes records them: "
            "pretrained_cfg['dataset'] = {'class_names': [...]}")


register_extension("data_classes", classes_checked)
