"""A NeuroView-CNN's settings that are no tensors: checked wherever they are set, and kept with its state dict.

``quantizer``, ``tau`` and ``grad_state`` are checked by the constructor and by every later assignment (``net.tau``
annealed each step, a member's setting changed by an ensemble): set as attributes they were taken as they came
(``"Hard"`` gave soft codes, ``tau=-1`` flipped the surrogate gradient's sign, ``tau=0`` a bare ZeroDivisionError).

A state dict keeps them in its metadata, with the sites the head reads, as :class:`~neuroview.core.head.CodeNorm`
keeps its floor (no key added, so the state dict is still tensors only): :func:`clashes` names a file made for another
function (a ``soft`` network's weights loaded as ``hard``, a head trained on layer ``1`` read from layer ``3``, or on
codes cut at a user's activation's breakpoints ``(0.0, 1.0)`` read at ``(0.0,)``).
A state dict without the record (saved before it was kept, a plain dict of tensors) loads as before.

Also the other checks of a NeuroView-CNN's arguments (:func:`check_args`) and of its input (:func:`check_input`).

Imports torch and numpy, and of neuroview.core only ``_devices``, ``_utils``, ``quantize``, ``refusals`` (its torch.fx
refusal, one message for both wrappers), ``sites`` (the breakpoints each site's activation has now) and ``targets``.
"""

from __future__ import annotations

import decimal
import math
import numbers
import re
from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from ._devices import autocast_enabled, require_device
from ._utils import positive_int, require_finite
from .quantize import GRAD_STATES, QUANTIZERS
from .refusals import refuse_fx
from .sites import refresh_points
from .targets import refuse_torchscript

#: The smallest temperature taken. ``1 / tau`` scales every pre-activation and the surrogate gradient (``grad / tau``):
#: where it overflows float32 (tau below 3e-39) a pre-activation of exactly 0 gives ``0 * inf``, a NaN code, and well
#: before that the gradient overflows to inf and then NaN. At 1e-6 both stay finite for pre-activations and gradients
#: up to 3e32, and the soft code is already the hard one but within 2e-5 of a breakpoint: use quantizer="hard".
TAU_MIN = 1e-6


def check_args(cls, backbone, num_classes, quantizer, tau, grad_state) -> int:
    """The constructor's arguments of ``cls`` (NeuroViewCNN), checked before anything is built; ``num_classes`` as an int."""
    if not isinstance(backbone, nn.Module):
        raise TypeError(f"backbone: expected an nn.Module, got {type(backbone).__name__}")
    if isinstance(backbone, cls):
        raise TypeError("backbone: already a NeuroViewCNN; wrap its .backbone instead")
    refuse_torchscript(backbone)
    n = positive_int(num_classes, "num_classes", least=2)  # numpy's ints too (y.max() + 1): read as the int they are
    check_quantizer(quantizer), check_grad_state(grad_state), check_tau(tau)
    return n


def flag(name: str, value) -> bool:
    """``value`` as a bool (Python's or numpy's, or 0 and 1, as the data modules read them); else an error naming
    ``name``: the text "false" was read as True."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"{name}: expected true or false, got {value!r}")


def unit_axes(unit_axis) -> dict:
    """``unit_axis`` as a dict of site name to axis (each axis is checked where it is read: neuroview.core.axes);
    -1, a name or a list met bare errors of ``dict()``."""
    if unit_axis is None:
        return {}
    if not isinstance(unit_axis, Mapping) or not all(isinstance(k, str) for k in unit_axis):
        raise TypeError(f"unit_axis: expected a mapping of site name to 1 or -1 (e.g. {{'blocks.0.act': -1}}), "
                        f"got {unit_axis!r}")
    return dict(unit_axis)


def check_quantizer(value) -> str:
    if not isinstance(value, str) or value not in QUANTIZERS:
        raise ValueError(f"quantizer: expected one of {QUANTIZERS}, got {value!r}")
    return str(value)


def check_grad_state(value) -> str:
    if not isinstance(value, str) or value not in GRAD_STATES:
        raise ValueError(f"grad_state: expected one of {GRAD_STATES}, got {value!r}")
    return str(value)


def check_tau(tau) -> float:
    """``tau`` as a float: a positive finite number of at least :data:`TAU_MIN` (a 0-d tensor or numpy scalar too)."""
    value = tau
    if isinstance(tau, Tensor) or type(tau).__module__ == "numpy":  # a 0-d tensor, a numpy scalar or 0-d array
        value = tau.item() if getattr(tau, "ndim", None) == 0 else None
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, decimal.Decimal)):  # Decimal: as module_args
        got = f"a tensor of shape {tuple(tau.shape)}" if isinstance(tau, Tensor) else repr(tau)
        raise ValueError(f"tau: expected a positive finite number, got {got}")
    value = float(value)
    if not value > 0:  # NaN too
        raise ValueError(f"tau: expected a positive number, got {tau!r}")
    if not math.isfinite(value) or value < TAU_MIN:
        raise ValueError(f"tau: expected a positive finite number of at least {TAU_MIN} (1/tau scales the codes "
                         f"and their gradient: inf or beyond float32 give constant or NaN codes), got {tau!r}")
    return value


def checked(name: str, check) -> property:
    """A property kept as ``_<name>`` that runs ``check`` on every assignment (cheap: annealing sets tau each step)."""
    key = "_" + name

    def get(self):
        return getattr(self, key)

    def put(self, value):
        self.__dict__[key] = check(value)

    return property(get, put, doc=f"``{name}``, checked as the constructor checks it wherever it is set.")


def record(net) -> dict:
    """What a state dict of ``net`` keeps in its metadata: its settings, and its sites with their unit counts."""
    out = {"quantizer": net.quantizer, "tau": net.tau, "grad_state": net.grad_state}
    refresh_points(net)  # bounds set since the last pass: the breakpoints the model has, as a fresh wrap records them
    if net.sites is not None:  # [name, units], and the module where the name does not say it (module 'relu:1')
        out["sites"] = [[s.name, s.channels] + ([s.module] if s.module != _module(s.name) else []) for s in net.sites]
        out["axes"] = [int(s.axis) for s in net.sites]  # on a square map the units alone cannot tell rows from channels
        out["points"] = [list(s.points) for s in net.sites]  # where each code is cut: a user's registration says it
    else:  # a lazy network saved before its first batch: the sites of the file its head was loaded from
        loaded = net.__dict__.get("_loaded_sites")
        if loaded and loaded[0] is net.classifier is not None and loaded[1] is not None:
            out["sites"] = [s[:2] + [m for m in s[2:] if isinstance(m, str)] for s in loaded[1]]
            if all(_axis(s) is not None for s in loaded[1]):
                out["axes"] = [_axis(s) for s in loaded[1]]
            if all(_points(s) is not None for s in loaded[1]):
                out["points"] = [list(_points(s)) for s in loaded[1]]
    return out


def _points(saved_site: list) -> tuple[float, ...] | None:
    """The breakpoints a saved site's codes were cut at (its tuple item, :func:`saved_sites`), None: not recorded."""
    return next((p for p in saved_site[2:] if isinstance(p, tuple)), None)


def _axis(saved_site: list) -> int | None:
    """The unit axis a saved site records (its last item, an int after the name and units), None: not recorded."""
    return saved_site[-1] if len(saved_site) > 2 and isinstance(saved_site[-1], int) else None


def _module(site: str) -> str:
    """The module a site name reads as: the name less a call suffix ``:k`` (``::k``); a module named ``relu:1``
    has its own name recorded beside it (:func:`record`), which the name alone cannot tell from call 1 of ``relu``."""
    return re.sub(r":+\d+$", "", site)


def saved_sites(meta) -> list | None:
    """The ``[[site, units(, module)(, points)(, axis)], ...]`` a state dict's metadata records, or None (not recorded,
    or not readable); the unit axis where the metadata's ``axes`` records one per site (files saved before it:
    unknown); the breakpoints (a tuple) where ``points`` records them and its quantizer reads them (``none`` reads the
    activation's output: any breakpoints give its function; files saved before they were kept: not compared)."""
    sites = meta.get("sites") if isinstance(meta, dict) else None
    if not isinstance(sites, (list, tuple)) or not all(
            isinstance(s, (list, tuple)) and len(s) in (2, 3) and isinstance(s[0], str) and isinstance(s[1], int)
            and all(isinstance(m, str) for m in s[2:]) for s in sites):
        return None
    axes, points = meta.get("axes"), meta.get("points")
    known = isinstance(axes, (list, tuple)) and len(axes) == len(sites) and all(
        a in (1, -1) and not isinstance(a, bool) for a in axes)
    cut = meta.get("quantizer") in ("hard", "soft") and isinstance(points, (list, tuple)) and len(points) == len(sites) \
        and all(isinstance(p, (list, tuple)) and p and all(isinstance(t, (int, float)) and not isinstance(t, bool)
                                                           and math.isfinite(t) for t in p) for p in points)
    return [list(s) + ([tuple(map(float, points[i]))] if cut else []) + ([int(axes[i])] if known else [])
            for i, s in enumerate(sites)]


def sites_clash(saved: list | None, sites, not_sites: dict | None = None, backbone: nn.Module | None = None) -> str | None:
    """Why a head whose state dict read the sites ``saved`` cannot read ``sites``; None where they agree or are
    unknown. The advice names what differs: the sites' unit axes where the names agree (``unit_axis=``), then their
    breakpoints (:func:`_points_clash`, the activation classes of ``backbone`` where given), else the
    sites to read by the names the file records (``layers=``, which takes site names: ``'act:1'`` reads that call).
    ``not_sites`` (the model's ``{(module, call): why}``, where known) counts each module's calls: a module's name
    alone reads every call, ``'act:0'`` its first alone."""
    if saved is None or sites is None:
        return None
    own = [[s.name, s.channels] for s in sites]
    if own == [s[:2] for s in saved]:
        return _axes_clash(saved, sites) or _points_clash(saved, sites, backbone)
    why = (f"sites: the state dict's head was trained on the sites {_show(saved)} (name, units), the model reads "
           f"{_show(own)}: its weights would be read as other units; ")
    if [n for n, _ in own] == [s[0] for s in saved]:  # the same calls, other widths: the unit axes differ
        other = [(s.name, s.module, a, s.channels) for s, (_, a, *_) in zip(sites, saved) if a != s.channels]
        said = ", ".join(f"{n!r} ({a} units in the file, {b} here)" for n, _, a, b in other)
        name, module = other[0][:2]  # the first call of a module with others: 'act' is the key of every call
        key = f"{module}:0" if name == module and any(s.module == module and s.name != name for s in sites) else name
        return why + (f"the same sites with another unit axis at {said}; wrap the backbone with the unit_axis it was "
                      f"trained with (unit_axis={{{key!r}: 1 or -1}}, the axis that holds {other[0][2]} units)")
    return why + f"wrap the backbone with the layers it was trained on (layers={_layers(saved, sites, not_sites)})"


def _axes_clash(saved: list, sites) -> str | None:
    """Why a head saved on the same sites and unit counts cannot be read where a site's unit axis differs (a square
    map: rows read as its channels); None where they agree, or where the file records no axes (saved before 7b5a825)
    and no site's axis was told otherwise then (:class:`~neuroview.core.axes.Axis`: a norm over another axis than its
    input's layer on a square map, whose steps such a head read: review S1 finding 2)."""
    key = lambda s: f"{s.module}:0" if s.name == s.module and any(  # noqa: E731
        t.module == s.module and t.name != s.name for t in sites) else s.name
    old = [s for s, a in zip(sites, map(_axis, saved)) if a is None and getattr(s.axis, "before", None) is not None]
    if old:
        s = old[0]
        said = ", ".join(f"{t.name!r} (dim {t.axis.before} then, {int(t.axis)} now)" for t in old)
        return (f"sites: the state dict records no unit axes (saved before 7b5a825), and a normalization over another "
                f"axis than its input's layer, on a square map, made other units of the same count then: {said}; its "
                f"head would read other units than it was trained on. Wrap the backbone with "
                f"unit_axis={{{key(s)!r}: {s.axis.before}}} to read the file as it was trained (the norm's axis), or "
                f"unit_axis={{{key(s)!r}: {int(s.axis)}}} to read its weights over the layer's units now found")
    other = [(s, a) for s, a in zip(sites, map(_axis, saved)) if a is not None and a != s.axis]
    if not other:
        return None
    said = ", ".join(f"{s.name!r} (dim {a} in the file, {s.axis} here)" for s, a in other)
    s, a = other[0]
    key = key(s)
    return (f"sites: the state dict's head was trained on the sites {_show(saved)} (name, units) with their units on "
            f"other axes: its weights would be read as other units; the same sites with another unit axis at {said}; "
            f"wrap the backbone with the unit_axis it was trained with (unit_axis={{{key!r}: {a}}}), where its layers "
            "allow it")


def _points_clash(saved: list, sites, backbone: nn.Module | None = None) -> str | None:
    """Why a head saved on the same sites cannot read codes cut at other breakpoints (a user's activation registered
    with others: every unit's region index moves); None where they agree or the file records none. The advice: the
    activation's registration (an ``nn.Hardtanh``'s breakpoints are the instance's ``min_val`` and ``max_val``: its
    arguments, where the file's are a pair; registering ``nn.Hardtanh`` is refused, so other breakpoints are said to
    need another module: ``nn.ReLU``'s ``(0.0,)``, else a class of the user's registered with them)."""
    other = [(s, p) for s, p in zip(sites, map(_points, saved)) if p is not None and p != tuple(s.points)]
    if not other:
        return None
    said = "; ".join(f"site {s.name!r}: breakpoints {p} in the file, {tuple(s.points)} in the model" for s, p in other)
    s, p = other[0]
    module = dict(backbone.named_modules()).get(s.module) if backbone is not None else None
    if type(module) is nn.Hardtanh and len(p) == 2:  # registering nn.Hardtanh is refused (activations)
        fix = f"build the module {s.module!r} as nn.Hardtanh(min_val={p[0]}, max_val={p[1]}), the file's breakpoints,"
    elif type(module) is nn.Hardtanh:  # its breakpoints are a pair: the file's activation was another
        reads = "nn.ReLU (or another ReLU-like activation)" if p == (0.0,) else "the activation the file was trained " \
            f"with, its class registered before wrapping (nv.register_activation(cls, breakpoints={p}))"
        fix = f"the file's breakpoints {p} cannot be given to an nn.Hardtanh (it reads two, its min_val and max_val, " \
              f"and registering nn.Hardtanh is refused): build the module {s.module!r} as {reads}"
    else:
        cls = type(module).__name__ if module is not None else f"<the class of module {s.module!r}>"
        fix = f"register the activation with the file's breakpoints before wrapping (nv.register_activation({cls}, " \
              f"breakpoints={p}))"
    return (f"sites: the state dict's head was trained on codes cut at other breakpoints than the model's ({said}): "
            f"each unit's code (the affine region its pre-activation falls into) would be read at other places than "
            f"its weights were trained on; {fix} to load it")


def _layers(saved: list, sites, not_sites: dict | None = None) -> list[str]:
    """The ``layers=`` that reads the sites ``saved``: per module (sorted), its name where its saved sites are all
    its calls (its name reads every call), else the saved site names of its calls (``'act:1'``: that call alone; the
    module's name beside them: its first call; ``'act:0'`` where its first call alone was read, of a module with other
    calls). Where ``not_sites`` does not count a module's calls, its name stands for its first call where the model
    reads no other call of it now, as before (a module called once)."""
    per: dict[str, list[str]] = {}
    for s in saved:
        per.setdefault(next((m for m in s[2:] if isinstance(m, str)), _module(s[0])), []).append(s[0])
    now = {m: {s.name for s in sites if s.module == m} for m in per}
    out = []
    for m in sorted(per):
        calls = (len(now[m]) + sum(k == m for k, _ in not_sites) if not_sites is not None else 0) or None
        if m in per[m] and (len(per[m]) == calls if calls is not None else now[m] <= set(per[m])):
            out.append(m)
        else:
            out += [f"{m}:0"] if per[m] == [m] else per[m]
    return out


def clashes(meta, net) -> list[str]:
    """Why the state dict whose metadata is ``meta`` computes another function in ``net`` (its error messages).

    ``quantizer`` decides the codes, and the sites which units the head reads; ``tau`` is taken from the file where
    it decides the function (:func:`saved_tau`), and ``grad_state`` (how the backward pass stores the gradient:
    memory against precision) is recorded, never refused."""
    meta = meta if isinstance(meta, dict) else {}
    out = []
    q = meta.get("quantizer")
    if q in QUANTIZERS and q != net.quantizer:
        out.append(f"quantizer: the state dict was saved from a network with quantizer={q!r}, the model has "
                   f"quantizer={net.quantizer!r}: its weights compute another function there; build the model "
                   f"with quantizer={q!r} to load it (to read the same weights with other codes on purpose, set "
                   f"net.quantizer = {net.quantizer!r} after that load)")
    refresh_points(net)  # the model's breakpoints now (an nn.Hardtanh's bounds set since its last pass), not then
    why = sites_clash(saved_sites(meta), net.sites, getattr(net, "not_sites", None), net.backbone)
    return out + ([why] if why else [])


def saved_tau(meta, net) -> float | None:
    """The ``tau`` a ``soft`` network's state dict was saved with, where it differs from ``net``'s (also ``soft``):
    the soft code is a function of it, so the load takes it as it takes the head's floor (a run whose tau was
    annealed resumes with the tau it had reached); None elsewhere (a ``hard`` code is the same at any tau, which
    shapes only its training gradient: the model keeps its own)."""
    meta = meta if isinstance(meta, dict) else {}
    tau = meta.get("tau")
    if meta.get("quantizer") == net.quantizer == "soft" and isinstance(tau, (int, float)) and not isinstance(tau, bool):
        return float(tau) if float(tau) != net.tau else None
    return None


def _show(sites: list) -> str:
    return "[" + ", ".join(f"({n!r}, {c})" for n, c, *_ in sites) + "]"


def check_input(net, x: Tensor) -> None:
    """What a NeuroView-CNN's pass takes: a non-empty batch of the rank, channels and dtype it was built on."""
    refuse_fx(net, x)  # the user passed no x: torch.fx's symbolic tracer did (as jit.script, by name)
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    if net.input_shape is not None:
        want = len(net.input_shape) + 1
        if x.dim() != want:
            dims = "[B, " + ", ".join(["C"] + [f"D{i}" for i in range(1, want - 1)]) + "]"
            like = ", ".join(map(str, net.input_shape))
            raise ValueError(f"x: expected a tensor of rank {want} {dims} like (B, {like}), got shape {tuple(x.shape)}")
        if x.shape[1] != net.input_shape[0] and (x.is_floating_point() or x.dim() > 2):  # [B, L] ids: any length
            raise ValueError(f"x: expected {net.input_shape[0]} channels at dim 1, got shape {tuple(x.shape)}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x: expected a non-empty batch [B, C, ...], got shape {tuple(x.shape)}")
    require_device(x, net.backbone)  # torch's own error named neither x nor the fix (a meta x: .item() on meta)
    p = next(net.backbone.parameters(), None)
    # under autocast the ops cast lower precisions for themselves, never to or from float64; else PyTorch's own error
    # names neither x nor the fix. Integer inputs (uint8 images, token ids) go to the backbone as they are, which
    # converts them
    if p is not None and x.is_floating_point() and x.dtype != p.dtype and (
            torch.float64 in (x.dtype, p.dtype) or not autocast_enabled(x.device.type)):
        raise TypeError(f"x: expected dtype {p.dtype} (the model's parameters), got {x.dtype}; convert x "
                        f"(x.to({p.dtype})) or the model")
    # a data-dependent check: a host sync; under torch.compile an assert in the graph (require_finite)
    if net.check_finite:
        require_finite(x)
