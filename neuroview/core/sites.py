"""Sites: the calls of activation modules whose pre-activations give the unit codes.

A site is one call of a module during the backbone's forward pass (a module called twice gives
``name`` and ``name:1``). Its units are the features of the layer that produced the
pre-activation, wherever they lie in memory: dim 1 of a conv map ``[B, C, *spatial]`` or the
last dim of a channels-last map ``[B, H, W, C]`` (ConvNeXt's MLP) or of tokens ``[B, N, C]``
(ViT, Swin, Mixer). :class:`Recorder` finds that **unit axis** on real data: it watches every
module with a known feature count (Conv, Linear, the norms) and takes the axis of the
pre-activation whose size is the producing layer's feature count (:func:`unit_axis`).

Imports only torch and :mod:`neuroview.core.activations` / :mod:`neuroview.core.quantize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from ._utils import describe
from .activations import breakpoints
from .quantize import as_units, code_map, mean_code, units_first


@dataclass(frozen=True)
class Site:
    """One call of a module during the backbone's forward pass."""

    name: str  # unique: module name, with ':k' for the k-th extra call of the same module
    module: str  # the module's name in the backbone
    channels: int  # number of units
    points: tuple[float, ...]  # region breakpoints of the code
    from_input: bool  # code from the module's input (activations) or its output (named modules)
    axis: int = 1  # where the units lie in the pre-activation: 1 (channels first) or -1 (last dim)


class StopForward(Exception):
    """Raised once the last site is captured: nothing after it takes part in the decision."""


#: (feature count, natural unit axis) of the layers whose outputs carry units.
def _features(m: nn.Module) -> tuple[int, int] | None:
    if isinstance(m, (nn.modules.conv._ConvNd,)):
        return m.out_channels, 1
    if isinstance(m, nn.Linear) and not isinstance(m, nn.modules.lazy.LazyModuleMixin):
        return m.out_features, -1
    if isinstance(m, nn.modules.batchnorm._NormBase):  # BatchNorm*, InstanceNorm*
        return m.num_features, 1
    if isinstance(m, nn.GroupNorm):
        return m.num_channels, 1
    if isinstance(m, nn.LayerNorm) and m.normalized_shape:
        return m.normalized_shape[-1], -1
    if isinstance(m, nn.Embedding):
        return m.embedding_dim, -1
    return None


def unit_axis(name: str, z: Tensor, producer: tuple[int, int] | None, override: int | None) -> int:
    """The unit axis (1 or -1) of pre-activation ``z`` at site ``name``.

    ``producer`` is ``(feature count, natural axis)`` of the layer that produced ``z`` (or ran
    last before it). The axis is the one of dims 1 and -1 whose size is that count; when both
    are (a ``[B, 8, 8, 8]`` map after 8 filters), the producer's natural axis. With no producer
    (an activation on the network's input) dim 1, PyTorch's channels-first convention.
    """
    if override is not None:
        if override not in (1, -1, z.dim() - 1):
            raise ValueError(f"unit_axis: expected 1 or -1 for site {name!r}, got {override}")
        return 1 if override == 1 else -1
    if z.dim() == 2:
        return 1
    if producer is None:  # nothing ran before: the network's own input, channels first by PyTorch's convention
        return 1
    count, natural = producer
    fits = [d for d in (1, -1) if z.shape[d] == count]
    if not fits:
        # reshaped on the way (heads merged in attention, a permute after a conv): guessing from
        # the layer's layout got timm's LeViT and MambaOut wrong, so the user says where they lie
        raise ValueError(
            f"unit_axis: cannot tell where the units of site {name!r} lie: its input has shape {tuple(z.shape)} and "
            f"the layer before it has {count} features; pass unit_axis={{{name!r}: 1 or -1}}"
        )
    return natural if len(fits) == 2 else fits[0]


class Recorder:
    """Collects the per-site codes of one forward pass, in call order.

    ``discover=True`` also builds the :class:`Site` list (and the unit axis of each), for which it
    watches the producing layers through :meth:`watch`.
    """

    def __init__(self, net, maps: bool, discover: bool, batch: int, axes: dict[str, int] | None = None):
        self.net, self.maps, self.discover, self.batch = net, maps, discover, batch
        self.axes = axes or {}
        self.codes: list[Tensor] = []
        self.code_maps: list[Tensor] = []
        self.found: list[Site] = []
        self.calls: dict[str, int] = {}
        self.outputs: dict[int, tuple[int, int]] = {}  # id(output tensor) -> producer features
        self.last: tuple[int, int] | None = None
        self.open: list[tuple[int, int]] = []  # feature layers whose forward is running (entered, not returned)
        self._keep: list[Tensor] = []  # keeps watched outputs alive, so their ids stay unique
        self.stop: nn.Module | None = None  # the module of the last site: the next module to start stops the pass

    def enter(self, module: nn.Module) -> None:
        self.open.append(_features(module))

    def watch(self, module: nn.Module, output) -> None:
        feats = _features(module)
        if self.open:
            self.open.pop()
        if feats is not None and isinstance(output, Tensor):
            self.outputs[id(output)] = self.last = feats
            self._keep.append(output)

    def producer(self, z: Tensor) -> tuple[int, int] | None:
        """The layer whose output ``z`` is; else one still running (timm's ``BatchNormAct2d`` calls
        its activation inside its own forward); else the last one that ran."""
        return self.outputs.get(id(z)) or (self.open[-1] if self.open else None) or self.last

    def _site(self, module_name: str, module: nn.Module, z: Tensor, from_input: bool, calls: int) -> Site:
        net, k = self.net, len(self.codes)
        if self.discover:
            name = module_name if calls == 0 else f"{module_name}:{calls}"
            override = self.axes.get(name, self.axes.get(module_name))
            axis = unit_axis(name, z, self.producer(z), override)
            pts = breakpoints(module) if from_input else (0.0,)
            self.found.append(Site(name, module_name, z.shape[axis], pts, from_input, axis))
            return self.found[-1]
        site = net.sites[k] if k < len(net.sites) else None
        if site is None or site.module != module_name or z.shape[site.axis] != site.channels:
            got = f"{module_name!r} with {z.shape[site.axis if site else 1]} units"
            raise RuntimeError(
                f"backbone: its forward pass took another path than when its sites were found: call {k} was "
                f"{got} (input shape {tuple(z.shape)}), expected {site or 'no more sites'}"
            )
        return site

    def record(self, module_name: str, module: nn.Module, z: Tensor, from_input: bool, output: Tensor | None) -> None:
        calls = self.calls.get(module_name, 0)
        self.calls[module_name] = calls + 1
        if (module_name, calls) in self.net.not_sites:
            return
        if self.discover and isinstance(z, Tensor) and z.dim() >= 1 and z.shape[0] % self.batch:
            # no sample axis (Swin-V2's position-bias MLP runs on a table): no per-sample code
            self.net.not_sites[(module_name, calls)] = f"its input {tuple(z.shape)} has no sample axis"
            return
        if not isinstance(z, Tensor) or z.dim() < 2:
            raise ValueError(f"site {module_name!r}: expected a tensor of shape [B, C, ...], got {describe(z)}")
        site = self._site(module_name, module, z, from_input, calls)
        net = self.net
        if net.quantizer == "none":
            src = output if from_input else z
            self.codes.append(_mean_positions(src, site.axis, self.batch))
            if self.maps:
                self.code_maps.append(units_first(src.detach().clone(), site.axis, self.batch))
        else:
            self.codes.append(mean_code(z, site.points, net.quantizer, net.tau, site.axis, self.batch))
            if self.maps:
                self.code_maps.append(code_map(z.detach(), site.points, net.quantizer, net.tau, site.axis, self.batch))
        if not self.discover and net.stop_early and len(self.codes) == len(net.sites):
            # not raised here: the module's other hooks (Captum's, an ablation's) must still see
            # it run, so the next module to start stops the pass (see Stopper)
            self.stop = module


def _mean_positions(src: Tensor, axis: int, batch: int) -> Tensor:
    """``[B, C]`` mean of the activation output over positions, accumulated in float32."""
    acc = torch.float64 if src.dtype == torch.float64 else torch.float32
    zf, dim = as_units(src, axis, batch)
    return zf.mean(dim, dtype=acc)


class SiteHook:
    """The hook of one site, installed on the backbone once the sites are known.

    It records only while its own network runs (``owner._rec`` is set for the duration of a
    forward pass), so a backbone wrapped twice, or called on its own, is not affected; and since
    nothing is registered during the forward pass, ``torch.compile`` traces it without a graph
    break. A plain object (not a closure), so ``deepcopy`` and pickling of the network carry it
    along, pointing at the copy.
    """

    def __init__(self, owner: nn.Module, name: str, from_input: bool, pre: bool):
        self.owner, self.name, self.from_input, self.pre = owner, name, from_input, pre

    def __call__(self, module: nn.Module, args, output=None):
        rec = self.owner._rec
        if rec is not None:
            if self.pre:
                rec.record(self.name, module, args[0] if args else None, True, None)
            else:
                rec.record(self.name, module, args[0] if self.from_input and args else output, self.from_input, output)
        return None


class Stopper(SiteHook):
    """A pre-hook on every backbone module: once the last site is read, the next module to start
    ends the forward pass (nothing after the last site takes part in the decision)."""

    def __init__(self, owner: nn.Module):
        super().__init__(owner, "", False, True)

    def __call__(self, module: nn.Module, args, output=None):
        rec = self.owner._rec
        if rec is not None and rec.stop is not None and rec.stop is not module:
            raise StopForward
        return None


def install(owner: nn.Module, backbone: nn.Module, targets, quantizer: str) -> None:
    """Register ``owner``'s :class:`SiteHook` on every target module (see :func:`uninstall`)."""
    for name, module, from_input in targets:
        pre = from_input and quantizer != "none"
        hook = SiteHook(owner, name, from_input, pre)
        (module.register_forward_pre_hook if pre else module.register_forward_hook)(hook)
    if owner.stop_early:
        for m in backbone.modules():
            m.register_forward_pre_hook(Stopper(owner))


def uninstall(owner: nn.Module, backbone: nn.Module) -> None:
    """Remove every :class:`SiteHook` of ``owner`` from ``backbone``: it is then as it was given."""
    for m in backbone.modules():
        for hooks_dict in (m._forward_pre_hooks, m._forward_hooks):
            for key in [k for k, h in hooks_dict.items() if isinstance(h, SiteHook) and h.owner is owner]:
                del hooks_dict[key]


def hooks(targets, rec: Recorder, quantizer: str, modules: Callable[[], list[nn.Module]] | None) -> list:
    """Register the hooks of the discovery pass (finding the sites); returns the handles to remove.

    ``targets`` are ``(name, module, from_input)``; ``modules`` (discovery only) lists every
    module whose output :meth:`Recorder.watch` should see.
    """
    handles = []
    if modules is not None:
        for m in modules():
            if _features(m) is not None:
                handles.append(m.register_forward_pre_hook(lambda mod, a: rec.enter(mod)))
                handles.append(m.register_forward_hook(lambda mod, a, out: rec.watch(mod, out)))
    for name, module, from_input in targets:
        if from_input and quantizer != "none":
            def pre(mod, args, name=name):
                rec.record(name, mod, args[0] if args else None, True, None)
            handles.append(module.register_forward_pre_hook(pre))
        else:
            def post(mod, args, output, name=name, from_input=from_input):
                z = args[0] if from_input and args else output
                rec.record(name, mod, z, from_input, output)
            handles.append(module.register_forward_hook(post))
    return handles
