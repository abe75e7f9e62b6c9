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

A user's data module that names its classes in ``setup()`` is set up first, as the entry point sets it up
(``neuroview._batch.module_loader``: once); an Ensemble without a record of its own has its members' names, where
those that record names agree; inside :func:`fitted_on` (the ``Sparsify`` callback, for a network its trainer fitted)
the classes of the data the network was fitted on stand in for its record.

May import ``neuroview.core``, ``neuroview._batch`` and ``neuroview.zoo._loaded_record``; ``neuroview.data`` only inside
the functions, and only where the network names its classes.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from inspect import getattr_static

from .._batch import module_loader
from ..core._utils import register_extension
from ..zoo._loaded_record import _ENTRY, _OURS

__all__ = ["classes_checked", "recorded_classes", "fitted_on"]

_FITTED: ContextVar = ContextVar("neuroview_fitted_on", default=())  # () outside fitted_on, else (names or None,)


@contextmanager
def fitted_on(names: list[str] | None):
    """A block in which every network checked was just fitted on data of the classes ``names`` (None: data that names
    none): those, not its record, name its outputs. The ``Sparsify`` callback's refit of a network its trainer fitted
    (a record's names, from before the fit, refused the data module it was fitted on)."""
    token = _FITTED.set((None if names is None else [str(n) for n in names],))
    try:
        yield
    finally:
        _FITTED.reset(token)


def recorded_classes(net) -> list[str] | None:
    """The names of ``net``'s outputs, in order, where it records them: its record's ``dataset.class_names`` (a zoo
    entry's), else, for a copy made from a zoo entry (``nv.sparsify``, ``nv.finetune_sparse``: ``{"sparsified_from":
    <the entry>}``), the entry's; ``None`` otherwise (a network of the user's, one another file was loaded into, a
    ridge-refitted copy, or another library's record). A copy's head was fitted on data of the entry's classes where those were named:
    :func:`classes_checked` refused other ones. An Ensemble without a record of its own: its members' names (they
    average output by output), where those that record names agree; members that record different ones: a ValueError
    naming the override (:func:`classes_checked` raises it where the data names its classes)."""
    if _FITTED.get():
        return _FITTED.get()[0]
    cfg = getattr(net, "pretrained_cfg", None)
    if not isinstance(cfg, dict):
        return _members(net)
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


def _members(net) -> list[str] | None:
    """The names an Ensemble's members record, where those that record some agree (None: none records any)."""
    members = getattr(net, "members", None)
    if members is None or not hasattr(members, "__iter__"):
        return None
    named = [(i, n) for i, n in enumerate(recorded_classes(m) for m in members) if n is not None]
    if any(n != named[0][1] for _, n in named):
        said = ", ".join(f"members.{i} {n[:8]}{' ...' if len(n) > 8 else ''}" for i, n in named)
        raise ValueError(f"net: its members record other classes: {said}, so which names its averaged outputs have "
                         "cannot be told; an Ensemble whose outputs index one set of classes records them: "
                         "net.pretrained_cfg = {'dataset': {'class_names': [...]}}")
    return named[0][1] if named else None


def _names(cfg: dict) -> list[str] | None:
    dataset = cfg.get("dataset")
    names = dataset.get("class_names") if isinstance(dataset, dict) else None
    return [str(n) for n in names] if isinstance(names, (list, tuple)) else None


def classes_checked(net, data, what: str):
    """``data``, after :func:`~neuroview.data.read_as.check_classes`'s error (the command line's words, ``what``
    naming the argument) where it is a data module that names other classes than ``net`` records, or the same in
    another order: its class i would be fitted, scored and named as the network's class i. Called before any work."""
    try:
        trained = recorded_classes(net)
    except ValueError:  # an Ensemble's members of other classes: refused where the data names its own
        if _named(data, what):
            raise
        return data
    if trained is None or not _named(data, what):  # a loader, batches: integer labels
        return data
    from ..data.read_as import check_classes  # noqa: PLC0415 - only where both sides name their classes

    try:
        check_classes(data, trained, what)
    except ValueError as e:  # the command line's words, and where the network's names come from (code cannot tell
        raise ValueError(f"{e}; {_override(net)}") from None  # a network trained since on other classes)
    return data


def _named(data, what: str) -> bool:
    """Whether ``data`` names its classes, a user's LightningDataModule once set up as the entry point sets it up before
    reading it (``module_loader``: ``setup("fit")`` at most once, where its loader does not read yet): one that names
    them in ``setup()`` was taken unchecked, and refused when its user had set it up first."""
    from ..data.read_as import names_classes  # noqa: PLC0415 - a data module's names read as the command line reads them

    if getattr_static(data, "class_names", None) is not None and names_classes(data):
        return True
    split = what if what in ("train", "val", "test") else "train"  # unit_gallery's loader, write_report's: training split
    if hasattr(data, "_loader") or not callable(getattr(data, "setup", None)) or not callable(
            getattr(data, f"{split}_dataloader", None)):
        return False  # a neuroview data module names its classes before setup; a loader or batches name none
    module_loader(data, split)
    return getattr_static(data, "class_names", None) is not None and names_classes(data)


def _override(net) -> str:
    """Where :func:`recorded_classes` read ``net``'s names, and how a network trained since on other classes says so."""
    if _FITTED.get():
        return "the model's names are those of the data it was fitted on in this run"
    cfg = getattr(net, "pretrained_cfg", None)
    own = isinstance(cfg, dict) and _names(cfg) is not None
    if not isinstance(cfg, dict):  # an Ensemble's, from its members: its own record overrides them
        return ("the model's names are those its members record; an Ensemble trained since on other classes records "
                "them: net.pretrained_cfg = {'dataset': {'class_names': [...]}}")
    where = ("those its record holds, pretrained_cfg['dataset']['class_names']" if own else
             f"those of the zoo entry {net.__dict__[_ENTRY]['name']!r} it was made from")
    return (f"the model's names are {where}; a network trained since on other classes records them: "
            "pretrained_cfg['dataset'] = {'class_names': [...]}")


register_extension("data_classes", classes_checked)
