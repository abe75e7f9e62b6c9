"""What a weight file's recorded builder arguments rebuild, compared with the network it is loaded into.

A file's ``neuroview.arch_kwargs`` may set what no tensor's shape tells and the network exposes under no builder
argument's name: a MiniRocket's ``max_dilations_per_kernel`` and ``num_features`` set its ``dilations`` (lists of
numbers), and a file of ``max_dilations_per_kernel=5`` fits a default MiniRocket tensor for tensor. :func:`rebuilt_clash`
rebuilds the file's network from its record and compares each module's lists of numbers (as
``neuroview.zoo._save_checks.settings`` does when an entry is saved).

Also :func:`rnn_clash`: an ``nn.RNN``'s nonlinearity, which a file records in its builder arguments or in a
NeuroView-RNN's state dict record (``neuroview.core.rnn``), against the model's.

Also :func:`find_sites` and :func:`input_shape_record`: a zoo entry records the per-sample ``input_shape`` its
NeuroView-CNN found its sites on, and loading it runs one batch of that shape through it (``net.sites`` before any
batch of the user's; where that batch fails, the sites are found on the first, as before; its warnings said at load).

Also :func:`reading_refusal`: a NeuroView-RNN's or RNNClassifier's file of another ``window`` and channels a sample
(as many RNN inputs a step), by its state dict's record or its builder arguments.

Also :func:`check_finite`: a tensor holding NaN or Inf, in a file read or a network saved, is refused by name; and
``held_elsewhere`` (``._foreign_ckpt``): another LightningModule's checkpoint, said by where its tensors are.

Also :func:`entry_gap`: a file that names an installed zoo entry (``neuroview.name``) but leaves out a setting the
entry's ``arch_kwargs`` record (the shipped nv_small_cnn files before they recorded ``norm_floor: 0``); and
:func:`complete_record`, what ``load_weights(arch_kwargs=)`` may add to a file's record: only what it does not say.

May import torch, safetensors and the standard library; of neuroview, only ``._arguments`` (the builders' arguments and
their defaults), ``._foreign_ckpt``, ``.build``, ``.files``, ``.architectures`` and ``neuroview.core`` (deferred: the registered builders; where the zoo
is; the RNN builders' window; the NeuroView-CNN and its probe batch; an RNN's reading).
"""

from __future__ import annotations

import json
from typing import Any, Callable

import torch
from torch import nn

from ._arguments import NOT_COMPUTED, arch_defaults, code_names, filled  # noqa: F401 - code_names, filled: importable here
from ._foreign_ckpt import held_elsewhere  # noqa: F401 - weights.py's, from here

__all__ = ["rebuilt_clash", "rnn_clash", "list_settings", "arch_defaults", "code_names", "filled", "WHOLE_RECORDS",
           "find_sites", "input_shape_record", "entry_gap", "complete_record", "check_finite",
           "reading_refusal", "held_elsewhere"]

#: Metadata keys of the weight files neuroview writes with the whole build call recorded beside them:
#: ``save_pretrained``'s (the entry's name) and ``neuroview retrofit --out``'s (what it retrofitted).
WHOLE_RECORDS = ("neuroview.name", "neuroview.retrofit_of")


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
        # a check: it draws nothing of the caller's. What it warns is said (the warning switches are process-wide: one
        # set to "ignore" and restored around the build, two threads' loads at once left it set, as find_sites did)
        with torch.random.fork_rng(devices=[]):
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


def reading_refusal(net: nn.Module, kwargs: dict | None, state: Any, at: str = "") -> str | None:
    """Why a file reads a series otherwise in ``net`` (a NeuroView-RNN or RNNClassifier: the model, its part at ``at``
    ``""`` or ``"rnn"``; :func:`~neuroview.core.rnn_record.reading_clash`): for its ``rnn``, the whole file's own record
    (``state``'s root ``_metadata``, which the rnn's tensors leave behind); else the builder arguments ``kwargs``
    record (``in_features``, ``window`` or ``max_len`` over ``max_steps``: what the zoo's RNN builders read), which a
    safetensors file carries instead. None where they agree, where neither says it, or where the shapes tell."""
    from ..core.rnn_record import reading_clash  # noqa: PLC0415
    from .architectures import rnn_window  # noqa: PLC0415

    if at not in ("", "rnn") or not all(hasattr(net, a) for a in ("window", "input_size", "rnn")):
        return None
    root = (getattr(state, "_metadata", None) or {}).get("")
    if at == "rnn" and (why := reading_clash(root, net, "")):  # the whole network's load_state_dict checks its own
        return why
    kw = kwargs if isinstance(kwargs, dict) else {}
    try:  # a window, else the builder's from max_len and max_steps (1 without max_steps)
        window = kw["window"] if kw.get("window") is not None else rnn_window(kw.get("max_len"), None, kw.get("max_steps"))
    except (ValueError, TypeError):  # a record no builder takes: nothing to tell
        return None
    return None if "in_features" not in kw else reading_clash(
        {"window": window, "input_size": kw["in_features"], "max_len": kw.get("max_len")}, net, "")


def find_sites(build: Callable[[], nn.Module], full: str, shape: Any, probe: bool = True) -> nn.Module:
    """The zoo entry ``full``'s network, ``build()`` (built, its weights loaded, in eval mode), its NeuroView-CNNs' sites
    found now: one seeded random batch of the per-sample ``shape`` the entry records runs through the whole model, as
    its first batch would (nested networks and an ensemble's members meet their own inputs), under no_grad, its
    weights and statistics as loaded, the caller's random state untouched, every buffer put back after it (a counter
    that ``forward`` bumps reads the file's value: :func:`_passed`). What that pass warns is said at load, torch's
    warn-once warnings included, which then do not repeat at the first batch: the warning switches are process-wide
    (``warnings.filters``, ``torch.set_warn_always``), and a pass that set and restored them around itself left them
    set when two threads loaded at once (every warning of the process ignored for good), and silenced every other
    thread's warnings while it ran. Where it fails (a module of the user's with a stem ahead of the
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
    caller's random state untouched, ``module``'s buffers put back as they were (its state the file's), its warnings
    said (see :func:`find_sites`)."""
    from ..core.discovery import probe_input  # noqa: PLC0415

    # each buffer (the tensor object and a copy of its value) of every module: what the pass changes in place or rebinds
    kept = [(m, k, t, t.detach().clone()) for m in module.modules() for k, t in m._buffers.items() if t is not None]
    try:
        with torch.device("cpu"):  # drawn by its CPU generator whatever the default device (torch.device("cuda")), then moved
            x = probe_input(shape, **({} if like is None else {"device": like.device, "dtype": like.dtype}))
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            module(x)
        return True
    except Exception:  # noqa: BLE001 - no refusal of an entry that loads: its sites are found on the first batch
        return False
    finally:
        with torch.no_grad():
            for m, k, t, old in kept:  # the loaded tensor itself, where forward rebound the name (self.seen = self.seen + 1)
                m._buffers[k] = t.copy_(old) if t.shape == old.shape else old  # (resized in place: the copy)


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
    """``(entry, {argument: the entry's value}, same)`` for a file that may be an earlier release of an entry of the
    installed zoo: its metadata names the entry (``neuroview.name``, of its own ``neuroview.architecture``), its recorded
    builder arguments ``recorded`` leave out settings the entry's ``arch_kwargs`` give other than the architecture's
    default (of ``keys`` when given; never what the tensors tell) and say what the entry says of the rest, and
    ``tensors`` (a dict, or the file's path) have the names and shapes of the entry's file; ``same``: its values too,
    bit for bit, so the file is a copy of the entry saved before its record said so. None where it names no entry or
    leaves nothing out, or where its record or its shapes are not the entry's: another network saved under that name
    (a user's own ``save_pretrained``), whose record is then the whole story, as for a file that names no entry."""
    from .files import MANIFEST, checkpoints_dir  # noqa: PLC0415 - the installed zoo, only where a file names an entry

    name, arch = meta.get("neuroview.name"), meta.get("neuroview.architecture")
    if not isinstance(name, str) or not isinstance(arch, str) or not isinstance(recorded, dict):
        return None
    try:
        root = checkpoints_dir()
        entry = json.loads((root / MANIFEST).read_text()).get("entries", {}).get(name)
        given, file = (dict(entry["arch_kwargs"]), entry.get("file")) if entry.get("architecture") == arch else ({}, None)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):  # no zoo, no such entry, JSON too deep: nothing to compare
        return None
    defaults = arch_defaults(arch)
    unsaid = {k: v for k, v in given.items() if k not in recorded and (k not in defaults or _plain(v) != _plain(defaults[k]))}
    gap = {k: v for k, v in unsaid.items() if k not in _SHAPED and (keys is None or k in keys)}
    said = lambda d, k: _plain(d[k]) if k in d else _plain(defaults.get(k, "<not said>"))  # noqa: E731
    if not gap or any(said(recorded, k) != said(given, k) for k in {*recorded, *given} - {*unsaid, *NOT_COMPUTED, *_SHAPED}):
        return None
    mine, its = _shapes(tensors), _shapes(root / file) if isinstance(file, str) else None
    if mine is not None and its is not None and mine != its:
        return None
    return name, gap, isinstance(file, str) and _same_tensors(tensors, root / file)


def _shapes(tensors: Any) -> dict[str, list[int]] | None:
    """The names and shapes of ``tensors`` (a dict, or a safetensors file: its header only); None where unreadable."""
    from safetensors import safe_open  # noqa: PLC0415

    if isinstance(tensors, dict):
        return {k: list(v.shape) for k, v in tensors.items()}
    try:
        with safe_open(str(tensors), "pt") as f:
            return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception:  # noqa: BLE001 - an entry's file missing or unreadable: no evidence either way
        return None


def _kind(v: Any) -> str | None:
    return "true or false" if isinstance(v, bool) else "a number" if isinstance(v, (int, float)) else \
        "a string" if isinstance(v, str) else None


def _overruled(meta: dict, saved: dict, given: dict, gap: tuple, keys: Any, arg: str) -> dict[str, tuple]:
    """``{argument: (what the file says, how it says it, what arch_kwargs say)}`` for each of ``given`` that the file's
    record ``saved`` says otherwise: itself; by leaving it out, which for a record neuroview wrote whole
    (:data:`WHOLE_RECORDS`), and for the settings the load compares (``keys``) in any record, reads as the default;
    or, for a copy of the zoo entry it names (``gap``: :func:`entry_gap`), by the entry. What the record does not say
    (the settings of ``gap`` that an earlier release left out, those with no known default, those the tensors tell) is
    ``given``'s to say; for a ``gap`` setting a value of the entry's kind (a TypeError naming ``arg`` if not)."""
    name, missing, same = gap
    defaults = arch_defaults(meta.get("neuroview.architecture"))
    whole, out = any(k in meta for k in WHOLE_RECORDS), {}
    for k, v in given.items():
        if k in saved:
            said, how = saved[k], ""
        elif k in missing and same:
            said, how = missing[k], f" (its zoo entry {name!r}'s: the file holds that entry's tensors)"
        elif k in missing:
            want = _kind(missing[k]) or _kind(defaults.get(k))
            if want is not None and _kind(v) != want:
                raise TypeError(f"{arg}: {k}: expected {want}, as its zoo entry's {missing[k]!r}"
                                + (f" and the default {defaults[k]!r}" if k in defaults else "") + f", got {type(v).__name__} {v!r}")
            continue
        elif k in defaults and k not in NOT_COMPUTED and k not in _SHAPED and (whole or k in (keys or ())):
            said, how = defaults[k], " (by leaving it out: the default)"
        else:
            continue
        if _plain(said) != _plain(v):
            out[k] = (said, how, v)
    return out


def complete_record(meta: dict[str, str], saved: dict | None, tensors: Any, keys: Any, given: dict | None,
                    path: Any, what: str) -> tuple[dict | None, dict[str, str], str | None]:
    """``(record, notes, refusal)``: a file's recorded builder arguments ``saved`` completed with ``given`` (what
    ``load_weights(arch_kwargs=...)`` says of what the record does not: :func:`_overruled`) and, where the file is a copy
    of the zoo entry it names (:func:`entry_gap`), with the entry's settings (``notes``: where each came from).
    ``refusal``: why it is not loaded: ``given`` says otherwise than the record; or the file names an entry, leaves out a
    setting that entry gives, may be an earlier release of it, is not that entry's file, and ``given`` does not say it:
    which of the two settings it was trained with, nothing tells (never the default)."""
    arg = "--model-args" if what == "--weights" else "arch_kwargs"  # the command line's name for it (neuroview explain)
    given = dict(given or {})
    if saved is None:  # a file that records nothing: what arch_kwargs say is all there is
        return (given or None), dict.fromkeys(given, f" (as {arg} say)"), None
    gap = entry_gap(meta, saved, tensors, keys) or (None, {}, False)
    clash = _overruled(meta, saved, given, gap, keys, arg)
    if clash:  # refused as the rest (a head built to compare is taken down)
        return saved, {}, (f"{arg}: {str(path)!r} records " + ", ".join(f"{k}={a!r}{how}, {arg} gives {b!r}" for k, (a, how, b)
                           in clash.items()) + f"; {arg} may only say what a file's record leaves out (a setting of the zoo entry "
                           f"it names that an earlier release did not record), not overrule it: leave {', '.join(clash)} "
                           f"out of {arg}")
    name, missing, same = gap
    notes, saved = dict.fromkeys((k for k in given if k not in saved), f" (as {arg} say)"), {**saved, **given}
    unsaid = {k: v for k, v in missing.items() if k not in given}
    if not unsaid:
        return saved, notes, None
    if same:
        note = f" (from its zoo entry {name!r}: the file holds that entry's tensors, saved before its record said so)"
        return {**saved, **unsaid}, {**notes, **dict.fromkeys(unsaid, note)}, None
    defaults = arch_defaults(meta.get("neuroview.architecture"))
    sets = ", ".join(f"{k}={v!r}" + (f", the default {defaults[k]!r}" if k in defaults else "") for k, v in unsaid.items())
    say = (f"--model-args '{{{', '.join(f'{json.dumps(k)}: ...' for k in unsaid)}}}', or explain the entry: --model {name} "
           "without --weights" if what == "--weights" else  # the command line's words for the same two ways (neuroview explain)
           f"load_weights(..., arch_kwargs={{{', '.join(f'{k!r}: ...' for k in unsaid)}}}), or load the entry: "
           f"create_model({name!r}, pretrained=True)")
    return saved, notes, (f"{what}: {str(path)!r} does not record {', '.join(unsaid)}, which its zoo entry {name!r} sets ({sets}), "
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


#: What :func:`check_finite` advises for a weight file; a network being saved gets its own advice.
FILE_ADVICE = "restore the file, or re-export it from a network without them"
#: what to do with a Lightning checkpoint that holds them: a run that diverged, which no restore or re-export mends
DIVERGED_ADVICE = ("a diverged run's: pass an earlier checkpoint of the run (a best-*.ckpt), or train again with a "
                   "smaller learning rate")


def check_finite_checkpoint(ckpt: dict, what: str, where: str) -> None:
    """:func:`check_finite` of a Lightning checkpoint's ``state_dict`` (its tensors named as ``load_weights`` names them,
    without NeuroViewModule's ``model.``), with a diverged run's advice; a checkpoint without one is left to its reader."""
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if isinstance(state, dict):
        check_finite({k.removeprefix("model."): v for k, v in state.items()}, what, where, DIVERGED_ADVICE)


def check_finite(tensors: dict[str, torch.Tensor], what: str, where: str, advice: str = FILE_ADVICE) -> None:
    """A ValueError naming ``what``, ``where`` and each tensor that holds NaN or Inf, then ``advice``: no network computes with
    such weights, and loaded they were blamed on the data (a NaN code reads as a site that mixes samples), or on nothing at all.
    A 1-byte float (float8) is tested as float32: torch has no ``isfinite`` for ``float8_e4m3fn`` (the cast keeps NaN and Inf)."""
    bad = [f"{k}: {n} of {v.numel()}" for k, v in tensors.items() if isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex())
           and (n := int((~torch.isfinite(v.float() if v.dtype.itemsize == 1 else v)).sum()))]
    if bad:
        raise ValueError(f"{what}: {where} holds NaN or Inf in {len(bad)} tensor{'s' * (len(bad) > 1)} (first: {bad[:3]}); "
                         f"they are no weights to compute with: {advice}")
