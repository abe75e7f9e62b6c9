"""The zoo's trained checkpoints: one manifest, its checksums, loading entries and exporting them.

The zoo's folder (``checkpoints/`` of the repository, or its copy in a wheel: see :mod:`.files`)
holds one ``<name>.safetensors`` per entry and ``manifest.json``, which says per
entry how to rebuild the network (``architecture`` and ``arch_kwargs``), what it was trained on
(``dataset``: the data module and its arguments), how (``recipe``, ``seed``), what it scored
(``metrics``: accuracy on the full test split, and on its first ``slice_size`` samples), its
``num_params``, the ``sha256`` of its weight file and the library ``versions``.

``create_model("nv_gru.japanesevowels", pretrained=True)`` (or :func:`load_pretrained`) checks,
in this order and before any tensor reaches the model: the entry's file is a ``.safetensors`` file of
the zoo folder (no path, no link out of it), it exists, its sha256 matches the manifest, it holds no
NaN or Inf, it names the same architecture and builder arguments (its ``neuroview.arch_kwargs``)
as the manifest, the built network has exactly the file's tensor names, shapes and kinds of number
(float16 into float32 fits; int32 does not), and the manifest's parameter count. Any failure is an error
that names the entry and changes nothing on disk. Zoo weights are safetensors: they never unpickle.

May import ``neuroview._io`` and the zoo's lower modules: ``.files`` (where the zoo is), ``.build``,
``.weights`` (the one loader of weight files), ``.evaluate`` (whose names, like ``load_weights``, stay importable from here)
and ``.manifest_io`` (the manifest's lock, and its rewrite that loses neither an entry's weights nor a key); ``._weights_checks``
finds a NeuroView-CNN's sites as it loads, on the per-sample ``input_shape`` its entry records; ``._arguments`` says
which arguments an architecture takes (:func:`check_arguments`, importable from here); ``._checkpoint_args`` compares the
caller's arguments with an entry's.

>>> import neuroview as nv
>>> names = nv.list_models(pretrained=True)
>>> net = nv.create_model(names[0], pretrained=True)   # doctest: +SKIP
>>> net.pretrained_cfg["metrics"]["test_acc"]          # doctest: +SKIP
0.975
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import importlib
import json
import os
import platform
import re
import time
from typing import Any

import torch
from torch import nn

from .._io import atomic_write_all
from ..core._utils import is_bool
from .._io import safetensors_bytes as save_bytes  # its header's keys in one order: one file a network
from .build import builder, routed
from .evaluate import SLICE_SIZE, evaluate, make_datamodule, predict, score_test_split  # noqa: F401
from .files import (ENV, MANIFEST, NAME_MAX, MissingZooError, checkpoints_dir, missing_zoo_message, replaceable, too_long,
                    unwritable)
from .manifest_io import FORMAT, foreign_file, read_document
from .manifest_io import locked as _locked  # noqa: F401 - the benchmarks take the zoo's lock by this name
from ._arguments import check_arguments
from ._checkpoint_args import given_clash
from ._entry_record import check_file_kwargs, entry_facts
from ._entry_fields import checked_fields
from ._save_checks import check_normalize as _check_normalize, check_same_settings as _check_same_settings
from ._save_checks import plain as _plain  # viz.report compares arguments by it, from here
from ._weights_checks import find_sites, input_shape_record as _input_shape
from .weights import ArchitectureError, ChecksumError, arch_defaults, check_finite, check_fits, load_weights, read_weights

__all__ = ["checkpoints_dir", "read_manifest", "list_pretrained", "get_entry", "load_pretrained", "load_weights", "save_pretrained",
           "save_pretrained_all", "verify_entry", "evaluate", "make_datamodule", "count_params", "sha256_file", "unknown_entry", "check_arguments",
           "ChecksumError", "ArchitectureError", "MissingZooError", "SLICE_SIZE"]


# ------------------------------------------------------------------------- manifest
def read_manifest(root: str | os.PathLike | None = None) -> dict[str, dict]:
    """The manifest's entries by name.

    A folder named by ``root`` (or ``$NEUROVIEW_CHECKPOINTS``) with no manifest yet has none; the
    default zoo (packaged, or the source tree's) with no manifest is a :class:`MissingZooError`
    that says where it looked: an install without its checkpoints must not look like an empty zoo.
    """
    path = checkpoints_dir(root) / MANIFEST
    if not path.is_file():
        if root is None and not os.environ.get(ENV):
            raise MissingZooError(missing_zoo_message())
        if root is None and not path.parent.is_dir():  # a typo in the variable must not read as an empty zoo
            raise ValueError(f"{ENV}: expected a checkpoint folder, got {os.environ[ENV]!r} (no such folder)")
        return {}
    return read_document(path)["entries"]


def list_pretrained(pattern: str | None = None, root: str | os.PathLike | None = None) -> list[str]:
    """Sorted names of the trained entries (``arch.tag``), optionally filtered by a glob ``pattern``.

    >>> all("." in n for n in list_pretrained())
    True
    """
    check_root(root)  # a typo's empty list read as a zoo without entries
    return matching(sorted(read_manifest(root)), pattern)


def matching(names: list[str], pattern: str | None) -> list[str]:
    """``names`` a glob ``pattern`` matches, as timm's ``list_models(pretrained=True)`` does: a pattern without a dot also
    matches ``pattern.*``, so an architecture (``'nv_gru'``) lists its entries. ``neuroview zoo PATTERN``'s rule too."""
    also = pattern + ".*" if pattern and "." not in pattern else None
    return [n for n in names if not pattern or fnmatch.fnmatch(n, pattern) or (also and fnmatch.fnmatch(n, also))]


def check_root(root: str | os.PathLike | None) -> None:
    """A ``root`` given to read entries from must be a folder: a typo (or the manifest's own path) read as an
    empty zoo said the entry was missing from it. (A folder to write into may not exist yet: not checked there.)"""
    if root is not None and not (folder := checkpoints_dir(root)).is_dir():  # "~/zoo" as checkpoints_dir reads it
        why = "a file, not a folder" if folder.exists() else "no such folder"
        shown = repr(str(root)) + (f" ({str(folder)!r})" if str(folder) != str(root) else "")
        raise ValueError(f"root: expected a checkpoint folder, got {shown} ({why})")


def get_entry(name: str, root: str | os.PathLike | None = None, entries: dict[str, dict] | None = None) -> tuple[str, dict]:
    """``(full name, manifest entry)``; a bare architecture name resolves when it has one entry. ``entries``: the
    manifest's, read already (one reading of it: an export between two readings changed it)."""
    check_root(root)
    entries = read_manifest(root) if entries is None else entries
    if name in entries:
        return name, entries[name]
    tagged = sorted(n for n in entries if n.split(".", 1)[0] == name)
    if "." not in name and len(tagged) == 1:
        return tagged[0], entries[tagged[0]]
    if tagged:
        raise ValueError(f"name: {name!r} has several trained entries, pick one of {tagged}")
    raise unknown_entry(name, root, entries)


def unknown_entry(name: str, root: str | os.PathLike | None = None, entries: dict[str, dict] | None = None) -> ValueError:
    """The error for a checkpoint name (``arch.tag``) the zoo lacks: its close names, and where to see them all."""
    check_root(root)
    try:
        entries = read_manifest(root) if entries is None else entries
    except MissingZooError as e:
        return ValueError(f"name: no trained entry {name!r}: {e}")
    hint = f"did you mean {close}? " if (close := difflib.get_close_matches(name, sorted(entries), n=3, cutoff=0.5)) else ""
    return ValueError(f"name: no trained entry {name!r} in {checkpoints_dir(root) / MANIFEST}; {hint}`neuroview zoo` "
                      f"lists the {len(entries)} trained checkpoints (nv.list_models(pretrained=True))")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def count_params(model: nn.Module) -> int:
    """Number of parameter values (buffers such as BatchNorm statistics not counted)."""
    return sum(p.numel() for p in model.parameters())


def versions() -> dict[str, str]:
    """Versions of what produced or reads a checkpoint (data generators included: they define the data)."""
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("neuroview", "pytorch_lightning", "numpy", "safetensors", "sklearn", "aeon", "mnist1d"):
        try:
            out[mod] = str(importlib.import_module(mod).__version__)
        except (ImportError, AttributeError):
            pass
    return out


# -------------------------------------------------------------------------- loading
def _build(architecture: str, arch_kwargs: dict) -> nn.Module:
    """The network a manifest entry describes; an architecture that is not registered is an ArchitectureError."""
    try:
        build = builder(architecture, "architecture")
    except ValueError as e:
        raise ArchitectureError(str(e)) from e
    return build(**arch_kwargs)


def load_pretrained(name: str, *, root: str | os.PathLike | None = None, _probe: bool = True, **kwargs) -> nn.Module:
    """The trained zoo network ``name`` (``arch.tag``, see :func:`list_pretrained`), in eval mode.

    Keyword arguments, if any, must agree with the entry's ``arch_kwargs`` (a checkpoint fixes its architecture); the entry
    itself is attached as ``model.pretrained_cfg``. ``_probe=False``: a NeuroView-CNN's sites found on the first batch.
    """
    def checked(full: str, entry: dict) -> None:  # the caller's arguments against the entry: before its file is read
        arch, arch_kwargs = entry_facts(full, entry, root)
        if (wanted := name.split(".", 1)[0]) != arch:
            raise ArchitectureError(f"name: {name!r} asks for architecture {wanted!r}, but the manifest's entry is a {arch!r}")
        as_channels = "in_channels" in kwargs and "in_features" not in kwargs  # a clash names what the caller passed
        given = routed(arch, kwargs, "kwargs")  # in_channels of an RNN as its in_features, as create_model takes it
        check_arguments(arch, given, arch_kwargs)  # a typo is no clash with the checkpoint: no builder takes it
        if clash := given_clash(given, arch_kwargs, arch_defaults(arch), arch=arch, input_shape=entry.get("input_shape")):
            detail = ", ".join(f"in_channels={v!r} (an RNN's in_features; checkpoint: {c})" if k == "in_features" and as_channels
                               else f"{k}={v!r} (checkpoint: {c})" for k, (v, c) in clash.items())
            raise ValueError(f"kwargs: {full!r} was trained with fixed arguments; got {detail}. Build "
                             f"create_model({arch!r}, ...) without pretrained=True to change them")
    full, entry, entries, tensors, meta = _read_entry(name, root, checked)
    arch, arch_kwargs = entry_facts(full, entry, root)
    if meta.get("neuroview.architecture") not in (None, arch):
        raise ArchitectureError(f"{full}: the file holds a {meta['neuroview.architecture']!r}, the manifest says {arch!r}")
    check_file_kwargs(full, entry["file"], meta, arch, arch_kwargs, entries)
    def built() -> nn.Module:  # once more where the pass that finds its sites at load failed: as it was before that pass
        with torch.random.fork_rng(devices=[]):  # its initial weights are replaced: they draw nothing of the caller's
            model = _build(arch, arch_kwargs)
        check_fits(model, tensors, full)
        if entry.get("num_params") is not None and (n := count_params(model)) != entry["num_params"]:
            raise ArchitectureError(f"{full}: the built {arch!r} has {n} parameters, the manifest says {entry['num_params']}")
        model.load_state_dict(tensors, strict=True)
        model.pretrained_cfg = {"name": full, **entry}
        return model.eval()
    with torch.inference_mode(False):  # ordinary tensors in a caller's inference_mode too: the pass finds the sites
        return find_sites(built, full, entry.get("input_shape"), _probe)  # net.sites before the first batch (README's Use)


#: The waits (seconds) before a load reads the manifest and the entry's file again, where the file is not the one the
#: manifest names and either changed since the last reading, or an export into the folder is under way (its journal): an
#: export replaces the weights first, then the manifest that names them. Only a pair that stays apart is corrupted.
_REREADS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


def _exporting(journal: os.PathLike) -> set | None:
    """The files an export under way writes (its journal's), ``None`` where none is under way; a journal that cannot be
    read yet counts as writing every file (``{None}``). A load waits only for an export of its own entry's file: a
    corrupted entry beside another entry's export was read again for 3 s, then called busy."""
    try:
        with open(journal, encoding="utf-8") as f:
            record = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {None}
    rows = record.get("files") if isinstance(record, dict) else None
    if not isinstance(rows, list):
        return {None}
    return {r[0] for r in rows if isinstance(r, list) and r and isinstance(r[0], str)}


def _writes(files: set | None, file: str) -> bool:
    return files is not None and (None in files or file in files)


def _read_entry(name: str, root: str | os.PathLike | None, checked) -> tuple[str, dict, dict, dict, dict]:
    """``(full name, entry, the manifest's entries, tensors, file metadata)`` of one reading of the manifest whose
    entry names, by its sha256, the very bytes read from its file; ``checked(full, entry)`` runs on each entry read."""
    seen, folder = None, checkpoints_dir(root)
    journal = folder / f".{MANIFEST}.neuroview-journal"  # neuroview._io's, of an export under way into the folder
    for wait in (*_REREADS, None):
        before = _exporting(journal)  # before the reading too: an export may end (its journal gone) mid-read
        full, entry = get_entry(name, root, entries := read_manifest(root))
        checked(full, entry)  # (a missing key named here, before it is read)
        busy = _writes(before, entry["file"])
        restore = f"; restore it from the repository (git checkout -- {entry['file']}) or re-train it with benchmarks/reproduce_zoo.py"
        try:
            return (full, entry, entries, *read_weights(folder / entry["file"], full, sha256=entry.get("sha256"), hint=restore))
        except ChecksumError as e:
            now, busy = (entry.get("sha256"), e.digest), busy or _writes(_exporting(journal), entry["file"])
            if wait is None or (now == seen and not busy):  # a pair that stayed apart: not an export's
                if (seen is not None and now != seen) or busy:
                    raise ChecksumError(f"{full}: its manifest entry and its file {entry['file']} still disagreed after "
                                        f"{len(_REREADS) + 1} readings over {sum(_REREADS):g} s, another process exporting into "
                                        f"{folder} all along; load it again once that export ends") from e
                raise
            seen = now
            time.sleep(wait)
    return None  # not reached: the last reading returns or raises


def verify_entry(name: str, root: str | os.PathLike | None = None) -> nn.Module:  # no pass run: the model
    """Check ``name`` as :func:`load_pretrained` does (hash, architecture, shapes, parameter count)."""
    return load_pretrained(name, root=root, _probe=False)


# -------------------------------------------------------------------------- saving
def refuse_existing(root: str | os.PathLike, names: list[str], overwrite: bool, name_from: str = "name",
                    shorter: str = "pick a shorter one", advice: str = "pick another --out or pass --overwrite to replace it") -> None:
    """A ``ValueError`` naming ``--out`` where ``root``'s manifest already holds one of ``names`` and ``overwrite`` is off: a command
    that writes zoo entries never replaces an earlier run's unasked, nor finds it only after the work (:func:`save_pretrained` too).
    ``name_from``, ``shorter``: the option that sets the names, and how to make one shorter, said where one is too long;
    ``advice``: what to do about an entry held (a command's option that names the entry, where it has one)."""
    if why := too_long(root):  # before any stat of it: exists() raised a bare OSError [Errno 36]
        raise ValueError(f"out: expected a folder to write zoo entries into, got {os.fspath(root)[:60]!r}..., {why}; pick a shorter --out")
    root = checkpoints_dir(root)  # "~/zoo": the home folder's, as the export writes it
    if root.exists() and not root.is_dir():  # found before the work, not by the mkdir after it
        raise ValueError(f"out: expected a folder to write zoo entries into, got {str(root)!r}, which is a file")
    blocker = next((p for p in root.parents if p.exists()), None)  # the nearest folder above that exists
    if blocker is not None and not blocker.is_dir():
        raise ValueError(f"out: expected a folder to write zoo entries into, got {str(root)!r}, which cannot be made: {str(blocker)!r} is a file")
    if blocked := unwritable(root):  # a read-only folder: the export's PermissionError came after the work, which was lost
        where = "which" if blocked[0] == root else f"to be made in {str(blocked[0])!r}, which"
        raise ValueError(f"out: expected a folder to write zoo entries into, got {str(root)!r}, {where} cannot be written "
                         f"({blocked[1]}); pick another --out, or make it writable")
    for n in names:  # a name too long for the file system: its file's OSError came after the work
        check_entry_name(n, n.split(".", 1)[0], name_from, shorter)
    entries = read_manifest(root)  # a broken manifest is found now, also under overwrite, not after the work
    if held := [] if overwrite else [n for n in names if n in entries]:
        raise ValueError(f"out: {root} already holds {', '.join(held)} (an earlier run's); {advice}")
    for n in names:  # a file of that name which is another entry's, or no entry's, is not replaced either
        if clash := foreign_file(root, n, f"{n}.safetensors", entries, "out"):
            raise ValueError(clash)
        if why := replaceable(root / f"{n}.safetensors"):  # --overwrite: the save renames onto it, after the work
            raise ValueError(f"out: {str(root / f'{n}.safetensors')!r} cannot be replaced: {why}; pick another --out, or "
                             "make that file replaceable")
    if why := replaceable(root / MANIFEST):
        raise ValueError(f"out: {str(root / MANIFEST)!r} cannot be replaced: {why}; pick another --out, or make it replaceable")


#: What the writer adds to an entry's name for its longest sibling of the entry's file: ``.<name>.safetensors.<8>.tmp``
#: (:func:`neuroview._io.atomic_write`'s temporary file) and ``.<name>.safetensors.<8>.old`` (``atomic_write_all``'s
#: kept link of the earlier file).
_SIBLING = len(".x.safetensors.12345678.old") - 1
#: The longest entry name (229): its longest sibling within a file system's 255-byte names (ext4, xfs, btrfs, tmpfs;
#: the name is ASCII: one byte a character).
MAX_NAME = NAME_MAX - _SIBLING


def check_entry_name(name: Any, architecture: str, what: str = "name", shorter: str = "pick a shorter one") -> str:
    """``name`` where it is ``<architecture>.<tag>``, the tag of letters, digits, ``_``, ``-`` and ``.``: its file is
    ``<name>.safetensors`` in the zoo folder, and a ``/`` or ``..`` wrote it elsewhere. The rule of every export.
    ``what``: the argument or option that set it (``--name``); ``shorter``: how to make a long one shorter."""
    if not isinstance(architecture, str):  # else a bare TypeError of re.escape
        raise TypeError(f"architecture: expected a registered architecture name (str), got {architecture!r}")
    if not isinstance(name, str) or not re.fullmatch(rf"{re.escape(architecture)}\.[A-Za-z0-9_.-]+", name):
        raise ValueError(f"{what}: expected '{architecture}.<tag>' (the architecture, a dot, then letters, digits, '_', '-' "
                         f"or '.': a file name in the zoo folder, no path), got {name!r}")
    if len(name) > MAX_NAME:  # its file, and the writer's temporary siblings of it, are longer than a file system's 255 bytes
        raise ValueError(f"{what}: expected a name of at most {MAX_NAME} characters (its file <name>.safetensors, and the "
                         f"writer's temporary files beside it, must fit a file system's {NAME_MAX}-byte names), got one of "
                         f"{len(name)}: {name[:40]!r}...; {shorter}")
    return name


def save_pretrained(model: nn.Module, name: str, *, architecture: str, arch_kwargs: dict, dataset: dict, recipe: str | None,
                    seed: int | None, metrics: dict, root: str | os.PathLike | None = None, extra: dict | None = None,
                    overwrite: bool = False) -> dict:
    """Write ``model``'s weights as ``<name>.safetensors`` and its manifest entry; return the entry.

    The architecture must rebuild a network with exactly these tensors: an entry that cannot
    rebuild itself is refused before anything is written, and so is a file of that name which is not
    this entry's own (another entry's, or one no entry lists), and an entry ``root`` (``None``: the installed zoo)
    already holds, unless ``overwrite=True``. Both files are replaced atomically, and the
    old weights are put back where the manifest cannot be written.
    """
    return save_pretrained_all([dict(model=model, name=name, architecture=architecture, arch_kwargs=arch_kwargs,
                                     dataset=dataset, recipe=recipe, seed=seed, metrics=metrics, extra=extra)],
                               root=root, overwrite=overwrite)[0]


def save_pretrained_all(saves: list[dict], root: str | os.PathLike | None = None, overwrite: bool = False) -> list[dict]:
    """Write several entries (each a dict of :func:`save_pretrained`'s keyword arguments, less ``root`` and
    ``overwrite``) as one: all their files and the manifest that names them, or none (a network and its sparse
    variant: never a new one beside the earlier run's other). Each is checked before anything is written."""
    if isinstance(overwrite, (list, tuple)) or not is_bool(overwrite) or getattr(overwrite, "ndim", 0):  # "no" replaced it
        raise TypeError(f"overwrite: expected True or False, got {overwrite!r}")
    overwrite = bool(overwrite)  # np.True_, torch.tensor(True): the project's bools (core._utils.is_bool)
    made = [_entry(**save) for save in saves]
    if len({name for name, _, _ in made}) < len(made):
        raise ValueError(f"saves: expected entries of distinct names, got {[name for name, _, _ in made]}")
    root = checkpoints_dir(root)
    with _locked(root):
        doc = read_document(root / MANIFEST) if (root / MANIFEST).is_file() else {"format": FORMAT, "entries": {}}
        for name, entry, _ in made:
            if name in doc["entries"] and not overwrite:  # an earlier export (the installed zoo's own, root=None) kept
                raise ValueError(f"name: {root} already holds the entry {name!r}; pass overwrite=True to replace it, or "
                                 "save under another name")
            if clash := foreign_file(root, name, entry["file"], doc["entries"]):
                raise ValueError(clash)
        doc["entries"] = dict(sorted({**doc["entries"], **{name: entry for name, entry, _ in made}}.items()))  # the manifest's other keys kept
        text = json.dumps(doc, indent=2, sort_keys=True)
        # the weights and the manifest that names them, as one: the old files stay until all are in place
        atomic_write_all({**{root / entry["file"]: data for _, entry, data in made}, root / MANIFEST: (text + "\n").encode()})
    return [entry for _, entry, _ in made]


def _entry(model: nn.Module, name: str, *, architecture: str, arch_kwargs: dict, dataset: dict, recipe: str | None,
           seed: int | None, metrics: dict, extra: dict | None = None) -> tuple[str, dict, bytes]:
    """``(name, manifest entry, file bytes)`` of one :func:`save_pretrained`, its checks made; nothing written."""
    check_entry_name(name, architecture)
    arch_kwargs = routed(architecture, _plain(dict(arch_kwargs)), "arch_kwargs")
    with torch.random.fork_rng(devices=[]):  # a check of the architecture: its initial weights draw nothing of the caller's
        rebuilt = _build(architecture, arch_kwargs)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    _check_normalize(model, rebuilt, state, arch_kwargs)
    check_fits(rebuilt, state, "model")
    check_finite(state, "model", "the network", "training diverged or the weights were damaged; save the network from before "
                 "that (an earlier checkpoint), or one without them")  # a file no load takes
    _check_same_settings(model, rebuilt, arch_kwargs)
    dataset, metrics = checked_fields(dataset, metrics, getattr(rebuilt, "num_classes", arch_kwargs.get("num_classes")))
    data = save_bytes(state, metadata={"neuroview.name": name, "neuroview.architecture": architecture,
                                       "neuroview.arch_kwargs": json.dumps(arch_kwargs, sort_keys=True), "format": "pt"})
    entry = {"architecture": architecture, "arch_kwargs": arch_kwargs, "file": f"{name}.safetensors",
             "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data),
             "num_params": count_params(rebuilt), **_input_shape(model),  # a NeuroView-CNN's sites: found as it loads
             "dataset": dataset, "recipe": recipe, "seed": seed, "metrics": metrics, "versions": versions(), **(extra or {})}
    return name, entry, data
