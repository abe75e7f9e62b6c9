"""Weight files into networks: the one loader of weights, for the zoo and every layer above it.

:func:`read_weights` reads a file once: its sha256 is checked when one is given, a safetensors
file is parsed from those same bytes (never unpickled) and, only where the caller allows it, a
torch state dict or Lightning checkpoint is read with ``weights_only=True``. :func:`check_fits`
compares tensor names, shapes and kinds of number (an int32 tensor is not cast into a float weight)
before anything is copied, and a tensor holding NaN or Inf is refused as it is read
(:func:`check_finite`); :func:`load_weights` does both, into the network or, for a retrofit, into
the network it wraps. Errors start with the name the caller gives the file (``what``: ``path``,
``init_weights``, a zoo entry ...). A file's metadata (``neuroview.arch_kwargs``) says how its network was built: :func:`load_weights` refuses it where the
model's own configuration (``quantizer``, ``norm_floor`` ...) says otherwise, and :func:`arch_clash`
compares it with a manifest entry: weights that fit by shape may still compute another function.

May import: torch, safetensors and the standard library; of neuroview, only ``._arguments`` (the names a builder
takes), ``._fits`` (what a file that does not fit differs in), ``._loaded_record`` (a loaded entry's record, once other
weights replace its own) and ``._weights_checks`` (the registered builders' defaults; what a file's record rebuilds;
where another LightningModule's checkpoint holds its tensors).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_bytes
from torch import Tensor, nn

from ._arguments import NOT_COMPUTED as _NOT_COMPUTED, check_given
from ._fits import folder_refusal, kind as _kind, misfit
from ._loaded_record import hold, restamp
from ._weights_checks import (arch_defaults, check_finite, complete_record, entry_gap, held_elsewhere, reading_refusal,
                              rebuilt_clash, rnn_clash)

__all__ = ["ChecksumError", "ArchitectureError", "read_weights", "check_finite", "check_fits", "load_weights", "arch_clash",
           "saved_arch_kwargs"]

#: Where NeuroView networks keep the network they wrap: ``.backbone`` (CNN), ``.rnn`` (RNN).
_WRAPPED = ("backbone", "rnn")
#: Builder arguments a built network keeps (under these attributes) that change what it computes
#: while its tensors keep their shapes: a weight file's must be the network's (NeuroViewCNN's).
#: ``max_len``: a MiniRocket's series length (its dilations; the backbone's of a NeuroView-MiniRocket).
_EXPOSED = {"quantizer": "quantizer", "tau": "tau", "grad_state": "grad_state", "normalize": "_normalize",
            "norm_floor": "_floor", "max_len": "input_length"}
_UNKNOWN = "<the architecture's default, unknown>"


def exposed(model: nn.Module, attr: str):
    """What ``model`` keeps under ``attr`` (:data:`_EXPOSED`); its head's own floor for ``norm_floor`` where it has
    a head (a state dict loads the floor it was saved with, whatever the network was built with); the wrapped
    MiniRocket's ``input_length`` for a NeuroView-CNN around one."""
    if attr == "_floor" and isinstance(getattr(norm := getattr(model, "norm", None), "floor", None), float):
        return norm.floor
    if attr == "input_length" and not hasattr(model, attr):
        return getattr(getattr(model, "backbone", None), attr, None)
    return getattr(model, attr, None)


def as_path(path: Any, what: str) -> Path:
    """``path`` as a Path, ``~`` expanded; what is no file name (None, bytes) is a TypeError naming ``what``
    (pathlib's own named no argument)."""
    if not isinstance(name := os.fspath(path) if isinstance(path, (str, os.PathLike)) else None, str):
        raise TypeError(f"{what}: expected a str or os.PathLike file name, got {type(path).__name__} {path!r}")
    return Path(name).expanduser()


class ChecksumError(ValueError):
    """The weight file's sha256 differs from the manifest's (``digest``: the file's, as read)."""

    digest: str | None = None


class ArchitectureError(ValueError):
    """The weights do not fit the architecture they are loaded into (``fits``: by shape they do; built otherwise)."""

    def __init__(self, *args, fits: bool = False):
        super().__init__(*args)
        self.fits = fits


def read_weights(path: str | os.PathLike, what: str = "path", *, sha256: str | None = None, pickles: bool = False,
                 hint: str = "") -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and metadata of a weight file whose bytes hash to ``sha256`` (when given); read once.

    ``pickles``: files not named ``.safetensors`` are torch state dicts or Lightning checkpoints
    of :class:`~neuroview.training.module.NeuroViewModule` (its network's tensors are taken),
    read with ``weights_only=True``; otherwise every file must be safetensors. ``hint`` is added
    to the error of a missing file.
    """
    path = as_path(path, what)
    if not path.is_file():  # (a FileNotFoundError either way: the commands say it as one line)
        raise FileNotFoundError(folder_refusal(path, what, pickles, hint) if path.is_dir() else
                                f"{what}: weight file {str(path)!r} is missing{hint}")
    data = path.read_bytes()
    if sha256 is not None and (digest := hashlib.sha256(data).hexdigest()) != sha256:
        err = ChecksumError(f"{what}: sha256 of {path.name} is {digest[:16]}..., the manifest expects {sha256[:16]}...; the "
                            "file is corrupted or was replaced, so it is not loaded")
        err.digest = digest  # the bytes read: a zoo load tells a file replaced meanwhile from a damaged one by it
        raise err
    # where pickles are refused, safetensors is the only weight file there is
    tensors, meta = _unpickle(data, path, what) if pickles and path.suffix != ".safetensors" else \
        _parse_safetensors(data, path, what, "a safetensors file" if pickles else "a safetensors weight file")
    check_finite(tensors, what, repr(str(path)))
    return tensors, meta


def _parse_safetensors(data: bytes, path: Path, what: str, kind: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    # safetensors' header holds the metadata; parse it from the same bytes that were hashed
    try:
        meta = json.loads(data[8:8 + int.from_bytes(data[:8], "little")]).get("__metadata__", {}) or {}
        return load_bytes(data), meta
    except Exception as e:  # safetensors raises its own SafetensorError, json a ValueError, a short header a TypeError
        raise ValueError(f"{what}: expected {kind}, got {str(path)!r}, which is truncated or not one ({type(e).__name__}: {e})") from e


def _unpickle(data: bytes, path: Path, what: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle.UnpicklingError for code or foreign objects, RuntimeError/EOFError for truncation
        first = (str(e).splitlines() or [""])[0]
        raise ValueError(f"{what}: expected a checkpoint or state dict of tensors, got {str(path)!r}, which is truncated, "
                         f"not one, or holds objects weights_only=True refuses ({type(e).__name__}: {first})") from e
    meta = {}
    if isinstance(obj, dict) and "state_dict" in obj:  # a Lightning checkpoint: NeuroViewModule keeps its network in .model
        meta = _hparams_meta(obj.get("hyper_parameters"))
        obj = held_elsewhere(sub_state(s, "model"), s, what, path) if isinstance(s := obj["state_dict"], dict) else s
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{what}: expected a state dict of tensors in {str(path)!r}, got {type(obj).__name__}")
    return obj, meta


def _hparams_meta(hp: Any) -> dict[str, str]:
    """A Lightning checkpoint's hyper-parameters (``arch``, ``model_kwargs``) as the metadata a safetensors file
    records (``neuroview.architecture``, ``neuroview.arch_kwargs``): its weights are refused by the same check."""
    kwargs = (hp.get("model_kwargs") or {}) if isinstance(hp, dict) else None
    if not isinstance(kwargs, dict) or not isinstance(hp.get("arch"), str):
        return {}
    kwargs = {**kwargs, **({"max_len": hp["max_len"]} if hp.get("max_len") is not None else {})}  # kept beside them
    return {"neuroview.architecture": hp["arch"], "neuroview.arch_kwargs": json.dumps(dict(kwargs), default=str)}


def sub_state(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The tensors of ``state`` under ``prefix`` (``model``), the prefix removed, with their ``_metadata`` re-keyed
    alike: it carries what the tensors do not (the head's floor), and a new dict without it lost it."""
    out = OrderedDict((k[len(prefix) + 1:], v) for k, v in state.items() if k.startswith(prefix + "."))
    meta = getattr(state, "_metadata", None)
    if isinstance(meta, dict):
        out._metadata = OrderedDict((k[len(prefix) + 1:] if k != prefix else "", v) for k, v in meta.items()
                                    if k == prefix or k.startswith(prefix + "."))
    return out


def read_checkpoint(path: str | os.PathLike, what: str = "ckpt_path") -> dict:
    """A Lightning checkpoint's contents, read with ``weights_only=True``; a missing, empty, truncated or
    foreign file is an error naming ``what`` and the file (it was a bare ``EOFError`` or ``OSError``)."""
    path = as_path(path, what)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: expected a Lightning checkpoint written by `neuroview fit`, got {str(path)!r} (no such file)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # EOFError (empty), RuntimeError (truncated zip), UnpicklingError (code, foreign objects)
        first = "" if (first := (str(e).splitlines() or [""])[0]).startswith("Weights only load failed") else f": {first}"  # not torch's advice to unpickle
        raise ValueError(f"{what}: {str(path)!r} is not a readable checkpoint: empty, truncated, or not one that "
                         f"holds only tensors and plain values ({type(e).__name__}{first})") from e
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise ValueError(f"{what}: {str(path)!r} is not a Lightning checkpoint (no state_dict in it)")
    return obj


def check_fits(model: nn.Module, tensors: dict[str, Tensor] | dict[str, tuple], what: str, then: Any = None) -> None:
    """Raise ArchitectureError unless ``model``'s state dict has exactly these names and shapes, and the same kind of number
    (floating-point, complex, integer, bool: float16 into float32 fits) where ``tensors`` are tensors (and ``then()``,
    a further check of the file, passes: a head built to compare is taken down after either refusal)."""
    hold(model)  # (a zoo entry's network passes here as it loads: a file loaded into its backbone restamps it)
    got = {k: tuple(v.shape) if isinstance(v, Tensor) else tuple(v) for k, v in tensors.items()}
    kinds = {k: (v.dtype, _kind(v)) for k, v in tensors.items() if isinstance(v, Tensor)}  # load_state_dict casts them unasked
    # a NeuroView-CNN whose sites are found on its first batch (the model, or each member of an ensemble): its head
    # is built as wide as the file's to compare, and taken down again where the file does not fit (a head another
    # network's file built stayed, and the first batch then blamed the weights)
    built = []
    for prefix, m in model.named_modules():
        key = f"{prefix}.classifier.weight" if prefix else "classifier.weight"
        if getattr(m, "classifier", True) is None and hasattr(m, "build_head") and len(got.get(key, ())) == 2:
            m.build_head(got[key][1])
            built.append(m)
    try:
        _compare(model, got, what, kinds)
        if then is not None:
            then()
    except Exception:  # also a TypeError of arch_kwargs found by the check of the file
        for m in built:
            m.norm, m.classifier = None, None
        raise


def _compare(model: nn.Module, got: dict[str, tuple], what: str, kinds: dict[str, tuple] | None = None) -> None:
    """Names and shapes, and kinds of number (:func:`~neuroview.zoo._fits.misfit`: ``shared_steps`` said by name)."""
    if why := misfit(model, got, what, kinds):
        raise ArchitectureError(why)


def build_facts(path: str | os.PathLike) -> tuple[str | None, dict]:
    """``(architecture or None, builder arguments)`` a weight file records: a zoo folder's file, its manifest
    entry beside it (which may say more than the file: ``norm_floor``); a ``.safetensors``' metadata
    (``neuroview.architecture``, ``neuroview.arch_kwargs``: ``neuroview retrofit --out``'s); a Lightning
    ``.ckpt``'s hyper-parameters (``arch``, ``model_kwargs``); ``(None, {})`` where it records nothing. A copy of a
    zoo entry's file whose record leaves out a setting the entry gives (``norm_floor``) takes the entry's (``entry_gap``)."""
    path = Path(path).expanduser()
    try:
        if path.suffix == ".ckpt":
            hp = read_checkpoint(path).get("hyper_parameters") or {}
            return hp.get("arch"), dict(hp.get("model_kwargs") or {})
        if path.suffix == ".safetensors":
            manifest = path.parent / "manifest.json"  # a zoo folder's file: its entry says how it loads (norm_floor ...)
            entries = json.loads(manifest.read_text()).get("entries", {}) if manifest.is_file() else {}
            entry = next((e for e in entries.values() if e.get("file") == path.name), None)
            if entry is not None:
                return entry.get("architecture"), dict(entry.get("arch_kwargs") or {})
            with safe_open(str(path), "pt") as f:  # the header only: the tensors are read once, by the load after
                meta = f.metadata() or {}
            kwargs = json.loads(meta.get("neuroview.arch_kwargs", "{}"))
            gap = entry_gap(meta, kwargs, path)  # a copy of the entry: its settings; else the load names what is missing
            return meta.get("neuroview.architecture"), {**kwargs, **gap[1]} if gap and gap[2] else kwargs
    except (OSError, ValueError, RuntimeError, SafetensorError):
        pass  # an unreadable file is named by the load that follows
    return None, {}


def load_weights(model: nn.Module, path: str | os.PathLike, *, sha256: str | None = None, what: str = "path",
                 pickles: bool = False, backbone: bool = False, arch_kwargs: dict | None = None) -> nn.Module:
    """Load a weight file into ``model`` after checking its hash (when given) and its fit; return what took it.

    Nothing is copied unless every name and shape matches. ``pickles``: see :func:`read_weights`.
    ``backbone``: weights that do not fit ``model`` may fit the network it wraps (``.backbone``
    or ``.rnn``): a trained standard network loads into its NeuroView variant, which is the
    retrofit, after which only the global classifier needs training. ``arch_kwargs``: builder arguments the file was
    trained with that its record does not say (an earlier zoo release's ``norm_floor``); one its record says otherwise,
    itself or by leaving it at the default, is refused by name, and a name its architecture does not take is a TypeError
    (checked once the file fits: a file of another network is refused as not fitting).

    >>> import tempfile, os, neuroview as nv
    >>> from safetensors.torch import save_file
    >>> net = nv.create_model("small_cnn", widths=(8,))
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> save_file(net.state_dict(), path)
    >>> _ = load_weights(nv.create_model("small_cnn", widths=(8,)), path)
    >>> type(load_weights(nv.create_model("nv_small_cnn", widths=(8,)), path, backbone=True)).__name__
    'SmallCNN'
    >>> load_weights(nv.create_model("small_cnn", widths=(16,)), path)
    Traceback (most recent call last):
    ...
    neuroview.zoo.weights.ArchitectureError: path: the weights do not fit a SmallCNN: 6 shape mismatches ...
    """
    tensors, meta = read_weights(path, what, sha256=sha256, pickles=pickles)
    # names of the file's architecture, checked once the file fits (a file of another network is "does not fit", not
    # a typo of its architecture's arguments), as the command line names them
    given = lambda: check_given(arch_kwargs, meta.get("neuroview.architecture"),  # noqa: E731
                                "--model-args" if what == "--weights" else "arch_kwargs")
    if not backbone:
        check_fits(model, tensors, what, then=lambda: _check_built_as(model, meta, path, what, tensors, given=given()))
        model.load_state_dict(tensors, strict=True)
        restamp(model, path, meta)  # a zoo entry's pretrained_cfg is that entry's weights' only (the wrapping network's too)
        return model
    errors = []
    for name, part, state in _parts(model, tensors):
        try:  # it fits by shape, and it must compute what it was trained as (a head built to compare is taken down if not)
            check_fits(part, state, name, then=lambda: _check_built_as(part, meta, path, what, state, tensors,
                                                                       "" if part is model else name, given(), model))
        except ArchitectureError as e:
            if e.fits:  # the weights fit this part, built otherwise: no other part is tried
                raise
            errors.append(str(e))
            continue
        part.load_state_dict(state, strict=True)
        restamp(model, path, meta, whole=part is model)
        left = sorted(k for k in tensors if part is not model and not k.startswith(f"{name}."))
        if left and len(state) < len(tensors):  # a whole NeuroView network's file: its trained head is not loaded
            warnings.warn(f"{what}: {str(path)!r} holds a whole network that does not fit this model ({errors[0]}); only "
                          f"its {name} was loaded, and its head ({left[:4]}{' ...' if len(left) > 4 else ''}) was left out: "
                          "the model's own head is as it was built. To load the whole network, build the model as it was",
                          stacklevel=3)
        return part
    raise ArchitectureError(f"{what}: {str(path)!r} matches neither the model nor its backbone ({'; '.join(errors)})")


def _parts(model: nn.Module, tensors: dict[str, Tensor]) -> list[tuple[str, nn.Module, dict[str, Tensor]]]:
    """``model`` and the network it wraps, each with the tensors meant for it: a wrapped network's
    own (its prefix removed) when the file holds the whole NeuroView network, else all of them."""
    out = [("model", model, tensors)]
    for attr in _WRAPPED:
        part = getattr(model, attr, None)
        if isinstance(part, nn.Module):
            own = sub_state(tensors, attr)  # its metadata too (a head's floor)
            out.append((attr, part, own or tensors))
    return out


# ------------------------------------------------------------------ how a file was built
def _plain(v: Any) -> Any:
    # JSON turns tuples into lists (and keeps 0 == 0.0): compare arguments the way files and manifests store them
    return json.loads(json.dumps(v, default=str)) if isinstance(v, (tuple, list, dict)) else v


def saved_arch_kwargs(meta: dict[str, str], path: str | os.PathLike, what: str) -> dict | None:
    """The builder arguments a safetensors file's metadata records (``neuroview.arch_kwargs``); None where it records none."""
    if (raw := meta.get("neuroview.arch_kwargs")) is None:
        return None
    try:
        kwargs = json.loads(raw)
    except (ValueError, RecursionError):  # nested past the reader's depth: no object either
        kwargs = None
    if not isinstance(kwargs, dict):
        raise ValueError(f"{what}: expected a JSON object of builder arguments in the metadata neuroview.arch_kwargs "
                         f"of {str(path)!r}, got {raw[:80]!r}")
    return kwargs


def arch_clash(saved: dict, other: dict, defaults: dict, keys: Any = None) -> dict[str, tuple[Any, Any]]:
    """``{argument: (saved value, other value)}`` where two sets of builder arguments build different networks:
    a key absent on one side stands for ``defaults``' value (``_UNKNOWN`` where there is none);
    ``keys``: only these; arguments of speed only (``batched``, ``stop_early``) are not compared."""
    out = {}
    for k in sorted((set(saved) | set(other)) if keys is None else set(keys)):
        if k in _NOT_COMPUTED:
            continue
        a, b = (_plain(d[k]) if k in d else _plain(defaults.get(k, _UNKNOWN)) for d in (saved, other))
        if a != b:
            out[k] = (a, b)
    return out


def _own_record(model: nn.Module, state) -> dict:
    """The settings ``state`` records for ``model`` itself (its root record); for an ensemble, which has none, its
    members' common one: read as a single network's, so that an annealed soft ensemble loads at the tau its members
    were saved at, as one member does (the builder's tau in ``arch_kwargs`` is where the annealing started)."""
    records = getattr(state, "_metadata", None) or {}
    rec = records.get("", {})
    members = getattr(model, "members", None)
    if isinstance(rec, dict) and "tau" not in rec and isinstance(members, nn.ModuleList) and len(members):
        recs = [records.get(f"members.{i}") for i in range(len(members))]
        same = all(isinstance(r, dict) and (r.get("tau"), r.get("quantizer")) == (recs[0].get("tau"), recs[0].get("quantizer"))
                   for r in recs)
        return recs[0] if same else {}
    return rec


def _check_built_as(model: nn.Module, meta: dict[str, str], path: str | os.PathLike, what: str,
                    state: dict | None = None, whole: dict | None = None, at: str = "", given: dict | None = None,
                    reader: nn.Module | None = None) -> None:
    """An ArchitectureError where the file's ``neuroview.arch_kwargs`` and ``model``'s own configuration
    (the arguments it exposes, :data:`_EXPOSED`) differ: the weights fit, but not the function they were trained as.
    A floor ``state``'s metadata carries is the model's once loaded (a Lightning checkpoint's head: see ``exposed``).
    Also an RNN's nonlinearity that the file records (``rnn_clash``: ``whole`` file's records, ``model`` at ``at``),
    and the window and channels a step it read a series in (``reading_refusal``; ``reader``: the network ``model`` is of).
    The record is completed by ``given`` and, for a copy of a zoo entry, the entry's (``complete_record``)."""
    saved = saved_arch_kwargs(meta, path, what)
    own = {k: exposed(model, a) for k, a in _EXPOSED.items() if isinstance(exposed(model, a), (str, int, float, bool))}
    saved, notes, refusal = complete_record(meta, saved, state if whole is None else whole, own, given, path, what)
    if refusal:
        raise ArchitectureError(refusal, fits=True)
    recorded = saved
    why = rnn_clash(model, saved, state if whole is None else whole, at)
    if why:
        raise ArchitectureError(f"{what}: {str(path)!r} was trained as a network built otherwise ({'; '.join(why)}): no tensor's "
                                "shape tells them apart, and its weights compute another function there", fits=True)
    if why := reading_refusal(model if reader is None else reader, saved, state if whole is None else whole, at):
        raise ArchitectureError(f"{what}: {str(path)!r} was trained as a network built otherwise ({why})", fits=True)
    if saved is None:
        return
    floor = (getattr(state, "_metadata", None) or {}).get("norm", {}).get("floor")
    if "norm_floor" in own and isinstance(floor, (int, float)) and not isinstance(floor, bool):
        own["norm_floor"] = float(floor)
    saved = dict(saved)  # a negative or NaN floor acted as none: built as 0 now (core.head.checked_floor), the same
    for d, v in ((d, d.get("norm_floor")) for d in (saved, own) if "norm_floor" in d):  # function: its file loads so
        d["norm_floor"] = 0.0 if isinstance(v, (int, float)) and not isinstance(v, bool) and (v < 0 or v != v) else v
    rec = _own_record(model, state)  # the network's own record (neuroview.core.settings)
    tau = rec.get("tau") if isinstance(rec, dict) and "tau" in own else None
    if isinstance(tau, (int, float)) and not isinstance(tau, bool):  # the tau it was saved at (an annealed run's)
        saved = {**saved, "tau": float(tau)}
        own["tau"] = float(tau) if rec.get("quantizer") == own.get("quantizer") == "soft" else own["tau"]  # the load's
    clash = arch_clash(saved, own, arch_defaults(meta.get("neuroview.architecture")), keys=own)
    clash = {k: v for k, v in clash.items() if v[0] != _UNKNOWN}  # the file says nothing and no default is known
    if clash:
        detail = ", ".join(f"{k}: file {a!r}{notes.get(k, '' if k in saved else ' (not given: the default)')}, model {b!r}"
                           for k, (a, b) in clash.items())
        wanted = ", ".join(f"{k}={a!r}" for k, (a, _) in clash.items())
        raise ArchitectureError(f"{what}: {str(path)!r} was trained as a network built with other arguments ({detail}); build "
                                f"the model with {wanted} to load it (a zoo entry: create_model(name, pretrained=True))", fits=True)
    lists = rebuilt_clash(model, meta, recorded)  # what no argument it exposes tells
    if lists:
        raise ArchitectureError(f"{what}: {str(path)!r} was trained as a network built with other arguments ({'; '.join(lists[:4])}; "
                                f"no tensor's shape tells them apart); build the model with the file's arch_kwargs {recorded} to "
                                "load it", fits=True)
