"""Explanations on disk: the tensors as safetensors, everything else in a JSON sidecar.

No pickle, so loading never runs code; both files are written atomically, as one, and the sidecar
records the SHA-256 of the tensor file, so a pair that does not belong together is refused. A save killed on the
way (SIGKILL, SIGTERM) is undone, or finished where both files were in place, by the next save or load of that path
(``neuroview._io.recover``): the earlier pair comes back whole.
This module knows nothing of the explanation classes: they hand it tensors and metadata.

Imports only ``neuroview._io`` (the atomic writer), ``neuroview.core._utils``, safetensors and the standard library.
"""

from __future__ import annotations

import hashlib
import json
import os
from glob import escape as glob_escape
from pathlib import Path

import torch
from torch import Tensor

from .._io import Received, atomic_write_all, recover, safetensors_bytes

FORMAT = "neuroview.explanation"
#: 2: the dense contributions are no longer stored when codes and weight are (version 1 files still load);
#: 3: an RNN explanation records its ``window`` always (and ``max_len``), and no longer stores ``time_importance``
#: where codes and weight are (formed when read). An earlier RNN file without a window loads only told it
#: (:func:`window`): versions 2 wrote one only when it was above 1, and before that never. Readers of version 2
#: refuse version 3 files ("upgrade it"), so no earlier neuroview reads a window-4 file as window 1.
#: 4: contributions (and an RNN's ``time_importance``) that were given, passed in or set, are stored beside codes and
#: weight (the sidecar's ``given`` lists them); readers of version 3 refuse version 4 files rather than read the codes'
#: own contributions in place of the given ones. A file with nothing given is written as version 3, which they read.
VERSION = 4


def paths(path, writing: bool = True) -> tuple[Path, Path]:
    """``(tensor file, sidecar)`` of ``path``, ``~`` expanded: ``.safetensors`` is added when there is no suffix.
    ``writing``: its names leave room for the writer's temporary files (a load makes none, and reads a longer stem)."""
    given = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if not isinstance(given, str):  # None, bytes: pathlib's bare TypeError named no argument
        raise TypeError(f"path: expected a str or os.PathLike file name, got {type(path).__name__} {path!r}")
    given = os.path.expanduser(given)  # "~/x" made a folder named "~" in the working directory
    _check_lengths(given, writing)  # before any stat of it: a name too long for the file system was a bare OSError
    # a folder would get its files beside it ("out/" -> out.safetensors), an empty path a bare pathlib error
    if isinstance(given, str) and (given.strip() == "" or given.endswith(("/", os.sep)) or Path(given).is_dir()):
        raise ValueError(f"path: expected a file name (ending in .safetensors, or no suffix), got {given!r}, "
                         f"{'an empty path' if not given.strip() else 'a folder'}; name a file, e.g. "
                         f"{str(Path(given or '.') / 'explanation.safetensors')!r}")
    path = Path(given)
    if path.suffix == "":
        path = path.with_suffix(".safetensors")
    elif path.suffix != ".safetensors":
        raise ValueError(f"path: expected a file name ending in .safetensors (or no suffix), got {str(path)!r}")
    return path, path.with_suffix(".json")


#: The bytes of one file or folder name on the common file systems (ext4, xfs, btrfs, tmpfs, APFS, NTFS's 255 characters).
NAME_MAX = 255
#: What the writer adds to the stem of the pair for its longest sibling: ``.<stem>.json.neuroview-journal.<8>.tmp``,
#: the temporary file of :func:`neuroview._io.atomic_write_all`'s journal beside the sidecar.
_SIBLING = len(".x.json.neuroview-journal.12345678.tmp".encode()) - 1


def _check_lengths(given: str, writing: bool = True) -> None:
    """A ValueError naming ``path`` where a folder of ``given`` or its file (``writing``: with the writer's temporary
    siblings of it; a load, its own ``.safetensors`` name) has a name longer than :data:`NAME_MAX` bytes: the save or
    load failed with a bare ``OSError [Errno 36]``."""
    parts = [p for p in given.replace(os.altsep or os.sep, os.sep).split(os.sep) if p]
    stem = Path(given).stem if Path(given).suffix in ("", ".safetensors") else Path(given).name
    extra = _SIBLING if writing else len(".safetensors")  # a load reads <stem>.safetensors and <stem>.json only
    longest = [f"folder name {p[:30]!r}... ({len(os.fsencode(p))} bytes)" for p in parts[:-1] if len(os.fsencode(p)) > NAME_MAX]
    if parts and len(os.fsencode(stem)) + extra > NAME_MAX:
        longest.append(f"file name {stem[:30]!r}... ({len(os.fsencode(stem))} bytes before its suffix)")
    if longest:
        why = ("the writer's temporary files beside it take the rest" if writing else
               "its .safetensors suffix takes the rest")
        raise ValueError(f"path: expected folder names of at most {NAME_MAX} bytes and a file name of at most "
                         f"{NAME_MAX - extra} bytes before its suffix ({why} of the file system's {NAME_MAX}), got a "
                         f"{longest[0]}; pick a shorter name")


def save(path, kind: str, tensors: dict[str, Tensor], meta: dict) -> tuple[Path, Path]:
    """Write ``tensors`` and ``meta`` (plus format, version, kind and checksum) atomically."""

    tensors_path, meta_path = paths(path)
    _recover(meta_path)  # a save of this pair killed on the way: finished or undone first, its earlier pair whole again
    for p in (tensors_path, meta_path):  # an earlier explanation is replaced; a file of the user's is not
        if p.exists() and not _ours(meta_path, tensors_path):
            why = (f"no sidecar {meta_path.name} of one beside it" if not _ours(meta_path, None) else
                   f"its SHA-256 is not the one its sidecar {meta_path.name} records: another file saved over it since")
            raise FileExistsError(f"path: {p} exists and is no neuroview explanation's ({why}): save the explanation "
                                  f"elsewhere, or remove the file first{_left_over(tensors_path, meta_path)}")
    # safetensors refuses views and shared storage: give it plain, contiguous CPU copies
    data = safetensors_bytes({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()})
    meta = {"format": FORMAT, "version": VERSION if meta.get("given") else 3, "type": kind, **meta, "tensors": sorted(tensors),
            "sha256": hashlib.sha256(data).hexdigest()}
    # as one: an interrupted save over an earlier explanation leaves that one whole, not its sidecar beside new tensors
    atomic_write_all({tensors_path: data, meta_path: (json.dumps(meta, indent=2) + "\n").encode()})
    return tensors_path, meta_path


def _recover(meta_path: Path) -> None:
    """``recover`` of what a killed save of the pair left; a journal that came with a copied folder and names files
    outside it is refused (nothing done), naming the argument; any other error is left as it is. A pair whose journal's
    name would be longer than a file system takes was never saved by a save that makes one: nothing to recover."""
    if len(os.fsencode(f".{meta_path.name}.neuroview-journal")) > NAME_MAX:
        return
    try:
        recover(meta_path)
    except Received as e:
        raise ValueError(f"path: {e}") from None


def _left_over(*files: Path) -> str:
    """Words naming what an earlier neuroview's interrupted save left of ``files`` (``.<name>.<random>.old``: the
    earlier pair, moved aside and never put back), and how to restore it; "" where there is none."""
    olds = {p.name: sorted(q.name for q in p.parent.glob(f".{glob_escape(p.name)}.*.old")) for p in files}
    olds = {name: found for name, found in olds.items() if found}
    if not olds:
        return ""
    how = ", ".join(f"mv {found[-1]} {name}" for name, found in olds.items())
    return (f"; an interrupted save by an earlier neuroview left the earlier explanation in {sorted(sum(olds.values(), []))} "
            f"beside it: restore it with {how} (in {files[0].parent})")


def _ours(meta_path: Path, tensors_path: Path | None) -> bool:
    """Whether ``meta_path`` is an explanation's sidecar and ``tensors_path`` (where given and present) the tensors it
    describes, by their SHA-256 (what :func:`save` may replace): a sidecar alone let a file of the user's, saved
    over its tensors' name since, be overwritten."""
    try:
        meta = json.loads(meta_path.read_text())
        if not (isinstance(meta, dict) and meta.get("format") == FORMAT):
            return False
        return tensors_path is None or not tensors_path.exists() or \
            hashlib.sha256(tensors_path.read_bytes()).hexdigest() == meta.get("sha256")
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested deeper than its reader goes
        return False


def _device(device) -> torch.device:
    """``device`` read as one, or a named error (a dtype given there recast every tensor)."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device: expected a str or torch.device, got {type(device).__name__} {device!r}")
    try:
        dev = torch.device(device)
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError) as e:  # "gpu"; CUDA on a machine without it
        raise ValueError(f"device: {device!r} is no device this torch can use ({type(e).__name__}: {e})") from None
    return dev


#: the rank of the codes of each kind: a sidecar's type edited or taken from another explanation failed later, bare
_RANKS = {"CNNExplanation": 2, "RNNExplanation": 5}


#: how many times :func:`load` reads a pair whose tensors do not match their sidecar before it refuses them
_READS = 4


def load(path, kinds: list[str], *, device: str | torch.device = "cpu") -> tuple[str, dict[str, Tensor], dict]:
    """``(kind, tensors, meta)`` of what :func:`save` wrote; ``kinds`` are the kinds accepted."""
    from safetensors.torch import load as st_load  # noqa: PLC0415 - only when loading

    device = _device(device)
    tensors_path, meta_path = paths(path, writing=False)  # a stem too long to save under still loads
    _recover(meta_path)  # a save killed on the way: its earlier pair put back (or its new one finished)
    for p in (tensors_path, meta_path):
        if not p.is_file():
            raise FileNotFoundError(f"path: expected {p} (an explanation is a .safetensors file and its .json sidecar)"
                                    f"{_left_over(tensors_path, meta_path)}")
    for _ in range(_READS):  # a save between the two reads (another process's, whole): the pair read again
        meta, data = _read_pair(tensors_path, meta_path, kinds)
        if hashlib.sha256(data).hexdigest() == meta.get("sha256"):
            break
        _recover(meta_path)  # a save between its two renames now: its "process N is writing it now"
    else:
        raise ValueError(f"path: {tensors_path} does not match its sidecar {meta_path.name} (SHA-256 differs), read "
                         f"{_READS} times; another process saving it again and again while this load reads it gives this "
                         "too (load it when the saves end), else the files were changed apart: save the explanation again")
    tensors = {k: v.to(device=device) for k, v in st_load(data).items()}
    rank = _RANKS.get(meta["type"])
    if rank is not None and "codes" in tensors and tensors["codes"].dim() != rank:
        raise ValueError(f"path: its sidecar says {meta['type']}, whose codes have {rank} dims; its tensors hold codes of "
                         f"shape {tuple(tensors['codes'].shape)}: the two files do not belong together, save it again")
    return meta["type"], tensors, meta


def _read_pair(tensors_path: Path, meta_path: Path, kinds: list[str]) -> tuple[dict, bytes]:
    """The sidecar ``meta_path``, checked (JSON, format, kind, version), then the bytes of ``tensors_path``: read apart,
    so a save between the two reads (another process's, whole) pairs one save's sidecar with the next one's tensors."""
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, RecursionError) as e:  # RecursionError: nested deeper than the JSON reader goes
        raise ValueError(f"path: {meta_path} is not valid JSON ({e}); save the explanation again") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("type") not in kinds:
        got = (meta.get("format"), meta.get("type")) if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"path: {meta_path} is not a neuroview explanation (format, type: {got})")
    if meta.get("version", 0) > VERSION:
        raise ValueError(f"path: {meta_path} has format version {meta['version']}; this neuroview reads up to {VERSION}, upgrade it")
    return meta, tensors_path.read_bytes()


def window(meta: dict, given: int | None) -> int:
    """An RNN explanation's input samples per step: the sidecar's ``window``, else ``given`` (``Explanation.load``'s
    ``window=``) for a file of format version 2 or earlier, which may not record it; never a guessed 1 (a window-4
    network's step 9, which read samples 36-39, said it read sample 9)."""
    from ._utils import positive_int  # noqa: PLC0415 - core's own helper

    given = positive_int(given, "window", none=True)
    version, recorded = meta.get("version", 0), meta.get("window")
    if recorded is None and version >= 3:
        raise ValueError(f"path: its sidecar (format version {version}) records no window, which every RNN explanation "
                         "of version 3 or later does: edited, or from another explanation; save the explanation again")
    if recorded is None and given is None:
        raise ValueError(f"window: this RNN explanation was saved by an earlier neuroview (format version {version}), "
                         "which does not record its window (input samples per step) where it was 1, and before it "
                         "never: its steps cannot say which samples they read. Pass it: Explanation.load(path, "
                         "window=...) (the NeuroViewRNN's window; 1 for a network built without one)")
    recorded = positive_int(recorded, "window", none=True)
    if recorded is not None and given is not None and given != recorded:
        raise ValueError(f"window: the file records window={recorded}, got window={given}; leave window out")
    return recorded if recorded is not None else given


def steps(meta: dict, given: int | None) -> dict:
    """An RNN explanation's ``window`` (:func:`window`) and ``max_len`` from its sidecar."""
    from ._utils import positive_int  # noqa: PLC0415 - core's own helper

    return {"window": window(meta, given), "max_len": positive_int(meta.get("max_len"), "max_len", none=True)}


def with_steps(tensors: dict[str, Tensor], meta: dict, lengths: Tensor | None, time_importance: Tensor | None,
               window_size: int, max_len: int | None, input_lengths: Tensor | None = None) -> tuple[dict[str, Tensor], dict]:
    """An RNN explanation's ``(tensors, meta)``: ``lengths``, ``input_lengths`` (each series' input samples) and a given
    ``time_importance`` where there are (one formed from codes and weight is not stored), its ``window`` always, 1 too
    (a file that records none was saved before format version 3, and is not read as window 1), and ``max_len``. A file
    without ``input_lengths`` (saved before them, or of series all ``max_len`` long) loads with None."""
    kept = (("lengths", lengths), ("time_importance", time_importance), ("input_lengths", input_lengths))
    tensors = tensors | {k: v for k, v in kept if v is not None}
    return tensors, meta | {"window": int(window_size)} | ({} if max_len is None else {"max_len": int(max_len)})


def with_units(tensors: dict[str, Tensor], meta: dict, units: list, site_slices: dict[str, slice],
               maps: dict[str, Tensor] | None) -> tuple[dict[str, Tensor], dict]:
    """A CNN explanation's ``(tensors, meta)``: its units and site slices in the sidecar, and its code maps, as
    tensors keyed by position (site names can hold any character; the sidecar names them, in order)."""
    meta = meta | {"units": [[s, int(ch)] for s, ch in units],
                   "site_slices": {k: [s.start, s.stop] for k, s in site_slices.items()}}
    if maps is not None:
        meta["code_maps"] = list(maps)
        tensors = tensors | {f"code_maps.{i}": m for i, m in enumerate(maps.values())}
    return tensors, meta


def unit_fields(meta: dict, tensors: dict[str, Tensor], kw: dict) -> dict:
    """A CNN explanation's ``units``, ``site_slices`` and (where saved) ``code_maps`` from its files, checked against
    the width of its codes (``kw``: its fields read so far; :func:`unit_layout`, :func:`code_maps`)."""
    width = next(v.shape[-1] for v in (kw["codes"], kw["weight"], kw["contributions"]) if v is not None)
    units, slices = unit_layout(meta, width)
    return {"units": units, "site_slices": slices} | ({"code_maps": code_maps(meta, tensors, slices)} if "code_maps" in meta else {})


def unit_layout(meta: dict, width: int) -> tuple[list[tuple[str, int]], dict[str, slice]]:
    """A CNN explanation's ``(units, site_slices)`` from its sidecar, checked against the ``width`` of its
    codes: the SHA-256 covers the tensors only, and a sidecar edited or taken from another explanation
    gave tables with fewer rows than there are units (or wrong names) without a word."""
    try:
        units = [(str(s), int(ch)) for s, ch in meta["units"]]
        slices = {str(k): slice(int(a), int(b)) for k, (a, b) in meta["site_slices"].items()}
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"path: its sidecar's units or site_slices are not as save() writes them ({e!r}); save the "
                         "explanation again") from e
    ends = sorted((s.start, s.stop) for s in slices.values())
    tiled = [a for a, _ in ends] == [0] + [b for _, b in ends][:-1] and (ends[-1][1] if ends else 0) == width
    wrong = next((u for k, sl in slices.items() for u in range(sl.start, min(sl.stop, len(units)))
                  if tiled and units[u] != (k, u - sl.start)), None)  # each unit its site's, in channel order
    if wrong is not None:
        site = next(k for k, sl in slices.items() if sl.start <= wrong < sl.stop)
        raise ValueError(f"path: its sidecar names unit {wrong} {units[wrong]}, where its site_slices put channel "
                         f"{wrong - slices[site].start} of {site!r}: edited, or from another explanation: save it again")
    if len(units) != width or not tiled:
        raise ValueError(f"path: its sidecar lists {len(units)} units over sites covering {ends[-1][1] if ends else 0} "
                         f"columns, its tensors hold codes of {width} units; the two files do not belong together "
                         "(edited, or from another explanation): save the explanation again")
    return units, slices


def code_maps(meta: dict, tensors: dict[str, Tensor], slices: dict[str, slice]) -> dict[str, Tensor]:
    """A CNN explanation's code maps from its sidecar's names, each checked against its site (a name edited or
    swapped failed later as a bare KeyError or a size mismatch)."""
    names = meta["code_maps"]
    maps = {str(n): tensors.get(f"code_maps.{i}") for i, n in enumerate(names)}
    bad = [n for n, m in maps.items() if n not in slices or m is None or m.dim() < 2
           or m.shape[1] != slices[n].stop - slices[n].start]
    if bad:
        raise ValueError(f"path: its sidecar's code maps {bad} name no site of its units, or hold another number of "
                         "units than the site: the two files do not belong together, save the explanation again")
    return maps
