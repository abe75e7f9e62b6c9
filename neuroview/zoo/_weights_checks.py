"""What a weight file's recorded builder arguments rebuild, compared with the network it is loaded into.

A file's ``neuroview.arch_kwargs`` may set what no tensor's shape tells and the network exposes under no builder
argument's name: a MiniRocket's ``max_dilations_per_kernel`` and ``num_features`` set its ``dilations`` (lists of
numbers), and a file of ``max_dilations_per_kernel=5`` fits a default MiniRocket tensor for tensor. :func:`rebuilt_clash`
rebuilds the file's network from its record and compares each module's lists of numbers (as
``neuroview.zoo.pretrained._settings`` does when an entry is saved). Also the helpers of
:func:`neuroview.zoo.weights.arch_defaults` that read a builder's code (:func:`code_names`, :func:`filled`).

Also :func:`rnn_clash`: an ``nn.RNN``'s nonlinearity, which a file records in its builder arguments or in a
NeuroView-RNN's state dict record (``neuroview.core.rnn``), against the model's.

Also :func:`find_sites` and :func:`input_shape_record`: a zoo entry records the per-sample ``input_shape`` its
NeuroView-CNN found its sites on, and loading it runs one batch of that shape through it (``net.sites`` before any
batch of the user's; where that batch fails, the sites are found on the first, as before).

Also :func:`entry_gap`: a file that names an installed zoo entry (``neuroview.name``) but leaves out a setting the
entry's ``arch_kwargs`` record (the shipped nv_small_cnn files before they recorded ``norm_floor: 0``).

May import torch, safetensors and the standard library; of neuroview, only ``.build``, ``.files`` and
``neuroview.core`` (deferred: the registered builders; where the zoo is; the NeuroView-CNN and its probe batch).
"""

from __future__ import annotations

import inspect
import json
import warnings
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["rebuilt_clash", "rnn_clash", "list_settings", "arch_defaults", "code_names", "filled", "WHOLE_RECORDS",
           "find_sites", "input_shape_record", "entry_gap", "complete_record"]

#: Metadata keys of the weight files neuroview writes with the whole build call recorded beside them:
#: ``save_pretrained``'s (the entry's name) and ``neuroview retrofit --out``'s (what it retrofitted).
WHOLE_RECORDS = ("neuroview.name", "neuroview.retrofit_of")


def code_names(code: Any) -> list[str]:
    """The global names a function's code reads, its lambdas' and inner functions' included."""
    if code is None:
        return []
    return list(code.co_names) + [n for c in code.co_consts if inspect.iscode(c) for n in code_names(c)]


def filled(cell: Any) -> bool:
    """Whether a closure cell holds a value (an empty one raises when read)."""
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def arch_defaults(arch: str | None) -> dict[str, Any]:
    """The defaults of a registered architecture's arguments: its builder's, then those of the builders it
    wraps and of the network classes it builds (``quantizer``, ``norm_floor`` of NeuroViewCNN ...); ``{}``
    for an architecture that is not registered. What a builder sets in its body is not seen."""
    from .build import builder  # noqa: PLC0415 - the registered builders, only where a file is compared

    try:
        todo: list = [builder(arch)] if arch else []
    except ValueError:
        return {}
    out: dict[str, Any] = {}
    seen: list = []
    while todo:
        f = todo.pop(0)
        if f in seen:
            continue
        seen.append(f)
        try:
            sig = inspect.signature(f.__init__ if isinstance(f, type) else f, follow_wrapped=False)
        except (TypeError, ValueError):
            continue
        for p in sig.parameters.values():
            if p.default is not p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                out.setdefault(p.name, p.default)
        if not isinstance(f, type):
            cells = [c.cell_contents for c in (getattr(f, "__closure__", None) or ()) if filled(c)]
            names = [getattr(f, "__globals__", {}).get(n) for n in code_names(getattr(f, "__code__", None))]
            todo += [getattr(f, "__wrapped__", None)] + [c for c in cells if inspect.isfunction(c)]
            todo += [c for c in names if inspect.isfunction(c) and c.__module__.startswith("neuroview.zoo.architectures")]
            todo += [c for c in cells + names if isinstance(c, type) and issubclass(c, nn.Module)]
            todo = [t for t in todo if t is not None]
    return out


#: What a NeuroView-CNN records of the data it found its sites on (the per-sample ``input_shape``, at any of which a
#: fully convolutional network computes one function; what it froze or left out): no builder argument sets them.
_FOUND = frozenset({"input_shape", "frozen", "left_out"})


#: Settings of a layer that no tensor's shape tells, compared with its lists of numbers: an ``nn.RNN``'s tanh or relu
#: (one shape, two functions).
_NAMED = ("nonlinearity",)


def list_settings(module: nn.Module) -> dict[str, Any]:
    """The public lists and tuples of numbers ``module`` itself keeps (a MiniRocket's ``dilations`` and
    ``per_dilation``, a convolution's ``stride`` and ``padding``), as lists, and its :data:`_NAMED` strings: set when
    it is built, told by no tensor's shape (less :data:`_FOUND`)."""
    own = vars(module)
    return {k: list(v) for k, v in own.items() if not k.startswith("_") and k not in _FOUND
            and isinstance(v, (list, tuple)) and all(isinstance(e, (int, float)) for e in v)} | \
        {k: own[k] for k in _NAMED if isinstance(own.get(k), str)}


def _rebuild(arch: str, kwargs: dict) -> nn.Module | None:
    """The network ``arch`` builds from ``kwargs``; None where no registered builder takes them (an architecture of
    another install, arguments of an older one): then nothing is rebuilt to compare, and the file is judged by its
    tensors and its exposed arguments as before."""
    from .build import builder  # noqa: PLC0415 - the registered builders, only where a file records one

    try:
        build = builder(arch, "architecture", trained=True)
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():  # a check: it draws nothing of the caller's
            warnings.simplefilter("ignore")  # and says nothing: what it would say, the load says of the model
            return build(**kwargs)
    except Exception:  # noqa: BLE001 - a record no builder takes is no evidence either way
        return None


def _counterpart(model: nn.Module, rebuilt: nn.Module) -> nn.Module | None:
    """The part of ``rebuilt`` that ``model`` is: the whole, or the network it wraps (a NeuroView file loaded into its
    backbone), by class (a head built on a first batch on one side only is no difference of build); None where
    neither is of ``model``'s class."""
    for part in (rebuilt, getattr(rebuilt, "backbone", None), getattr(rebuilt, "rnn", None)):
        if isinstance(part, nn.Module) and type(part) is type(model):
            return part
    return None


def rebuilt_clash(model: nn.Module, meta: dict[str, str], kwargs: dict | None) -> list[str]:
    """``["<module>.<setting>: the file's arch_kwargs build [...], the model has [...]", ...]``: the lists of numbers
    (:func:`list_settings`) in which the network a file's record rebuilds (``meta``'s ``neuroview.architecture``,
    its builder arguments ``kwargs``) differs from ``model``, module by module; empty where they agree or nothing
    could be rebuilt. Only a record that neuroview wrote with the file (:data:`WHOLE_RECORDS`) is rebuilt: it is
    the whole build call (an argument it leaves out was the default), verified when written; another (one written by
    hand, a checkpoint's hyper-parameters, without the data's shape) may leave out what the network was built with.

    >>> import neuroview as nv
    >>> kw = dict(num_classes=2, in_channels=1, max_len=150, num_features=504)
    >>> meta = {"neuroview.architecture": "nv_minirocket", "neuroview.name": "nv_minirocket.x"}
    >>> rebuilt_clash(nv.create_model("nv_minirocket", **kw), meta, {**kw, "max_dilations_per_kernel": 5})[0]
    "backbone.dilations: the file's arch_kwargs build [1, 2, 4, 8, 18], the model has [1, 3, 5, 10, 18]"
    """
    arch = meta.get("neuroview.architecture")
    if not any(k in meta for k in WHOLE_RECORDS) or not isinstance(arch, str) or not isinstance(kwargs, dict):
        return []
    rebuilt = _rebuild(arch.partition(".")[0], kwargs)
    theirs = None if rebuilt is None else _counterpart(model, rebuilt)
    if theirs is None:
        return []
    other = dict(theirs.named_modules())
    plain = lambda v: json.loads(json.dumps(v))  # noqa: E731 - a tuple equals the list a file stores
    return [f"{name or 'model'}.{k}: the file's arch_kwargs build {plain(built[k])}, the model has {plain(v)}"
            for name, m in model.named_modules() if name in other for built in (list_settings(other[name]),)
            for k, v in list_settings(m).items() if k in built and plain(v) != plain(built[k])]


def rnn_clash(model: nn.Module, kwargs: dict | None, state: Any, at: str = "") -> list[str]:
    """``["<module>.nonlinearity: the file records 'relu' (...), the model has 'tanh'", ...]``: the ``nn.RNN`` modules of
    ``model`` whose nonlinearity differs from what the file records: an explicit ``nonlinearity`` in its builder
    arguments ``kwargs`` (each ``nn.RNN`` of the model), or a NeuroView-RNN's own record in ``state``'s
    ``_metadata`` (the whole file's; of its ``rnn``, at the record's key); ``model`` is the file's part at ``at``
    (``""``: the whole; ``"rnn"``: the network a NeuroView-RNN's file wraps). Empty where nothing is recorded."""
    mods, out = dict(model.named_modules()), []
    saved = (kwargs or {}).get("nonlinearity")
    if saved in ("tanh", "relu"):
        out += [(name, saved, "its arch_kwargs") for name, m in mods.items() if isinstance(m, nn.RNN)]
    meta = getattr(state, "_metadata", None)
    for key, rec in (meta.items() if isinstance(meta, dict) else ()):
        saved, path = rec.get("nonlinearity") if isinstance(rec, dict) else None, f"{key}.rnn" if key else "rnn"
        if saved in ("tanh", "relu") and (not at or path == at or path.startswith(at + ".")):
            out.append((path[len(at):].lstrip("."), saved, "its state dict's record"))
    return [f"{'.'.join(p for p in (at, name) if p) or 'model'}.nonlinearity: the file records {saved!r} ({how}), the model has "
            f"{mods[name].nonlinearity!r}: build it with nonlinearity={saved!r}"
            for name, (saved, how) in {n: (v, h) for n, v, h in reversed(out)}.items()  # one a module: its kwargs' first
            if isinstance(mods.get(name), nn.RNN) and mods[name].nonlinearity != saved]


def find_sites(build: Callable[[], nn.Module], full: str, shape: Any, probe: bool = True) -> nn.Module:
    """The zoo entry ``full``'s network, ``build()`` (built, its weights loaded, in eval mode), its NeuroView-CNNs' sites
    found now: one seeded random batch of the per-sample ``shape`` the entry records runs through the whole model, as
    its first batch would (nested networks and an ensemble's members meet their own inputs), under no_grad, its
    weights and statistics as loaded, the caller's random state untouched; what that pass warns is left for the first
    real batch to say (torch's warn-once included). Where it fails (a module of the user's with a stem ahead of the
    NeuroView-CNN the shape is of), a fresh build runs it through that network alone. Where that fails too (token ids:
    integer batches, which the record does not tell) or finds the sites on another shape, a fresh ``build()`` finds them
    on the first batch, as an entry without ``shape`` does and as ``probe=False`` asks (``verify_entry``: no pass)."""
    from ..core.cnn import NeuroViewCNN  # noqa: PLC0415

    if shape is not None and not (isinstance(shape, list) and shape and all(type(s) is int and s >= 1 for s in shape)):
        raise ValueError(f"root: the entry {full!r}: expected 'input_shape' a list of ints >= 1 (C, *spatial), got {shape!r}")
    model = build()
    nets = [m for m in model.modules() if isinstance(m, NeuroViewCNN)]
    if not probe or shape is None or all(m.sites is not None for m in nets):
        return model
    first = next(n for n, m in model.named_modules() if m is nets[0])  # the network input_shape_record read
    for at in dict.fromkeys(("", first)):  # a failed pass may have found some sites: each try on a fresh build
        model = model if model is not None else build()
        if _passed(model.get_submodule(at), tuple(shape), next(model.parameters(), None)) \
                and model.get_submodule(first).input_shape == tuple(shape):
            return model
        model = None
    return build()


def _passed(module: nn.Module, shape: tuple, like: torch.Tensor | None) -> bool:
    """Whether a seeded random batch of ``shape`` (of ``like``'s device and dtype) ran through ``module``; no_grad, the
    caller's random state and warnings untouched (see :func:`find_sites`)."""
    from ..core.discovery import probe_input  # noqa: PLC0415

    always = torch.is_warn_always_enabled()
    try:
        with torch.device("cpu"):  # drawn by its CPU generator whatever the default device (torch.device("cuda")), then moved
            x = probe_input(shape, **({} if like is None else {"device": like.device, "dtype": like.dtype}))
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.set_warn_always(True)  # a warn-once of torch's said here, ignored, would never reach the first batch
            module(x)
        return True
    except Exception:  # noqa: BLE001 - no refusal of an entry that loads: its sites are found on the first batch
        return False
    finally:
        torch.set_warn_always(always)


def input_shape_record(model: nn.Module) -> dict:
    """``{"input_shape": [C, *spatial]}``, the per-sample shape a NeuroView-CNN in ``model`` found its sites on (what
    :func:`find_sites` reads back from the manifest), else ``{}``."""
    from ..core.cnn import NeuroViewCNN  # noqa: PLC0415

    shape = next((m.input_shape for m in model.modules() if isinstance(m, NeuroViewCNN)), None)
    return {} if shape is None else {"input_shape": [int(s) for s in shape]}


#: Builder arguments a file's tensors tell (a ``normalize=False`` network has no norm's tensors): never a gap.
_SHAPED = frozenset({"normalize"})


def _plain(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))  # a tuple equals the list a file stores, 0 equals 0.0


def entry_gap(meta: dict[str, str], recorded: dict | None, tensors: Any, keys: Any = None) -> tuple[str, dict, bool] | None:
    """``(entry, {argument: the entry's value}, same)`` for a file whose metadata names an entry of the installed zoo
    (``neuroview.name``, of its own ``neuroview.architecture``) and whose recorded builder arguments ``recorded``
    leave out settings the entry's ``arch_kwargs`` give other than the architecture's default (of ``keys`` when
    given; never what the tensors tell); ``same``: whether ``tensors`` (a dict, or the file's path) are the entry's
    own file's, name for name and bit for bit, its record agreeing, so the file is a copy of the entry saved before its
    record said so. None where it names no entry or leaves nothing out: its record is then the whole story."""
    from .files import MANIFEST, checkpoints_dir  # noqa: PLC0415 - the installed zoo, only where a file names an entry

    name, arch = meta.get("neuroview.name"), meta.get("neuroview.architecture")
    if not isinstance(name, str) or not isinstance(arch, str) or not isinstance(recorded, dict):
        return None
    try:
        root = checkpoints_dir()
        entry = json.loads((root / MANIFEST).read_text()).get("entries", {}).get(name)
        given, file = (dict(entry["arch_kwargs"]), entry.get("file")) if entry.get("architecture") == arch else ({}, None)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):  # no zoo, no such entry: nothing to compare
        return None
    defaults = arch_defaults(arch)
    gap = {k: v for k, v in given.items() if k not in recorded and k not in _SHAPED and (keys is None or k in keys)
           and (k not in defaults or _plain(v) != _plain(defaults[k]))}
    if not gap:
        return None
    agree = all(_plain(recorded[k]) == _plain(v) for k, v in given.items() if k in recorded)
    return name, gap, agree and isinstance(file, str) and _same_tensors(tensors, root / file)


def complete_record(meta: dict[str, str], saved: dict | None, tensors: Any, keys: Any, given: dict | None,
                    path: Any, what: str) -> tuple[dict | None, dict[str, str], str | None]:
    """``(record, notes, refusal)``: a file's recorded builder arguments ``saved`` completed with ``given`` (what
    ``load_weights(arch_kwargs=...)`` says the file leaves out; refused where it contradicts the record) and,
    where the file is a copy of the zoo entry it names (:func:`entry_gap`), with the entry's settings (``notes``: where
    each came from). ``refusal``: why it is not loaded, where it names an entry, leaves out a setting that entry gives
    and is not that entry's file: which of the two settings it was trained with, nothing tells (never the default)."""
    given = dict(given or {})
    clash = {k: (saved[k], v) for k, v in given.items() if k in (saved or {}) and _plain(saved[k]) != _plain(v)}
    if clash:  # refused as the rest (a head built to compare is taken down)
        return saved, {}, (f"arch_kwargs: {str(path)!r} records " + ", ".join(f"{k}={a!r}, arch_kwargs gives {b!r}" for k, (a, b)
                           in clash.items()) + "; arch_kwargs completes a file's record, it does not overrule it")
    if saved is None:
        return (given or None), {}, None
    saved = {**saved, **given}
    gap = entry_gap(meta, saved, tensors, keys)
    if gap is None:
        return saved, {}, None
    name, missing, same = gap
    if same:
        note = f" (from its zoo entry {name!r}: the file holds that entry's tensors, saved before its record said so)"
        return {**saved, **missing}, dict.fromkeys(missing, note), None
    defaults = arch_defaults(meta.get("neuroview.architecture"))
    sets = ", ".join(f"{k}={v!r}" + (f", the default {defaults[k]!r}" if k in defaults else "") for k, v in missing.items())
    say = (f"--model-args '{{{', '.join(f'{json.dumps(k)}: ...' for k in missing)}}}', or explain the entry: --model {name} "
           "without --weights" if what == "--weights" else  # the command line's words for the same two ways (neuroview explain)
           f"load_weights(..., arch_kwargs={{{', '.join(f'{k!r}: ...' for k in missing)}}}), or load the entry: "
           f"create_model({name!r}, pretrained=True)")
    return saved, {}, (f"{what}: {str(path)!r} does not record {', '.join(missing)}, which its zoo entry {name!r} sets ({sets}), "
                       "and its tensors are not that entry's (an earlier release, or another network saved under its name): "
                       f"which it was trained with, no tensor's shape tells. Say it: {say}")


def _same_tensors(tensors: Any, other: Any) -> bool:
    """Whether ``tensors`` (a dict, or a safetensors file) and the safetensors file ``other`` hold the same tensors."""
    from safetensors.torch import load_file  # noqa: PLC0415

    try:
        a = load_file(str(tensors)) if not isinstance(tensors, dict) else tensors
        b = load_file(str(other))
    except Exception:  # noqa: BLE001 - an entry's file missing or unreadable: no evidence that the two are one
        return False
    return set(a) == set(b) and all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k].cpu(), b[k])
                                    for k in a)
