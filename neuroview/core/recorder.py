"""The recorder of one forward pass: each site's codes, in call order, for one network in one thread.

The network's :class:`neuroview.core.hooks.Hook` objects hand it every call of a hooked module;
its plan (``module -> (name, from_input, pre)``) says which calls are its sites, and the module
to stop at says where :class:`neuroview.core.hooks.StopForward` ends the pass once the last site
is read.

Imports only torch and the core modules below it.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import torch
from einops import rearrange
from torch import Tensor, nn

from ._utils import describe
from .activations import generation, is_activation, points_now
from .hooks import PathChanged, SiteSize, StopForward, install
from .pass_checks import require_same_modules
from .quantize import as_units, code_map, mean_code, units_first
from .shared_input import keeps_input
from .sites import Site, refresh_points
from .stop_checks import check_stop, refuse_backward
from .targets import _outermost, leave_out


class Recorder:
    """Collects the per-site codes ``[B, U_site]`` (and, with ``maps``, the code maps) of one pass."""

    def __init__(self, net, maps: bool, batch: int):
        self.net, self.maps, self.batch = net, maps, batch
        self.plan: dict = net._plan
        # not while torch.export traces (non-strict): the StopForward raised in a hook skips its module-stack pop
        stops = net.stop_early and len(net._stop_at) > 0 and not torch.compiler.is_exporting()
        # an FSDP unit holding the stop (refused in training; in eval, at a backward through the codes: refuse), a
        # user's forward hooks the stop skips: neuroview.core.stop_checks
        unchecked = net._stop is None or torch.compiler.is_compiling()
        self.refuse: str | None = None if unchecked else check_stop(net, stops)
        self.stop_at = net._stop_at[0] if stops else None
        self.codes: list[Tensor] = []
        self.code_maps: list[Tensor] = []
        self.calls: dict[str, int] = {}
        self.stopped = False
        if net.__dict__.get("_kinds_read", net.__dict__.get("_points_read")) != generation():
            watch_registered(net)  # a class registered since: a module of it that runs before the stop, refused
        if net.__dict__.get("_points_read") != generation():
            refresh_points(net)  # a class registered again since: its sites' breakpoints, as a fresh wrap reads them

    def on(self, module: nn.Module, args, output, pre: bool) -> None:
        """A hooked module starts (``pre``) or returns."""
        if pre and module is self.stop_at and len(self.codes) == len(self.net.sites):
            self.stopped = True
            raise StopForward
        role = self.plan.get(module)
        if role is None or role[2] != pre:
            return
        name, from_input, _ = role
        z = args[0] if (pre or from_input) and args else output
        self.record(name, z, from_input, output, module if pre and from_input else None)

    def _site(self, name: str, z) -> Site:
        sites, k = self.net.sites, len(self.codes)
        site = sites[k] if k < len(sites) else None
        if not isinstance(z, Tensor) or z.dim() < 2:
            raise ValueError(f"site {name!r}: expected a tensor of shape [B, C, ...], got {describe(z)}")
        ok = same = site is not None and site.module == name and site.sample_dim < z.dim()
        if ok:  # its samples, then its units, where they were found
            zs = z.movedim(site.sample_dim, 0)
            if zs.shape[0] < self.batch:  # a branch the backbone runs on the samples a gate selects
                raise PathChanged(
                    f"backbone: site {site.name!r} received {zs.shape[0]} of the {self.batch} samples of this batch (its "
                    f"input {tuple(z.shape)}; per-sample conditional computation: a branch run on the samples a gate "
                    f"selects), so its codes cannot be read per sample; {self._leave_out(site)}")
            ok = zs.shape[0] % self.batch == 0 and zs.shape[site.axis] == site.channels
        if ok and site.folds == 1 and zs.shape[0] != self.batch:
            raise ValueError(
                f"x: site {name!r} folds {zs.shape[0] // self.batch} positions into dim {site.sample_dim} of its input "
                f"{tuple(z.shape)} for {self.batch} samples, and was found with none folded there, which cannot tell "
                "whether they come ahead of the samples or after them; find the sites on an input of this size "
                "(example_input=x)")
        if ok and zs.numel() == 0:  # a crop or a negative padding left nothing: 0/0 codes, NaN logits (and statistics)
            raise SiteSize(f"site {site.name!r}: its input {tuple(z.shape)} has no positions on this batch, and a unit's "
                           f"code is a mean over its positions (0 / 0 for its {site.channels} units)")
        if not ok:
            require_same_modules(self.net)  # a module replaced since the sites were found, not the data: said as such
            if same and zs.shape[0] % self.batch == 0:  # the module expected, of another width (x's size, after a Flatten)
                raise SiteSize(f"site {site.name!r} has {zs.shape[site.axis]} units on dim {site.axis} of its input "
                               f"{tuple(z.shape)} on this batch, not the {site.channels} it was found with", path=True)
            later = [s.module for s in sites[k:]]
            skipped = [s.name for s in sites[k:k + later.index(name)]] if name in later[1:] else []
            raise PathChanged(
                f"backbone: its forward pass took another path than when its sites were found: call {k} was "
                f"{name!r} with input shape {tuple(z.shape)} for {self.batch} samples, expected " + (
                    f"site {site.name!r} (module {site.module!r}, {site.channels} units on dim {site.axis})" if site
                    else "no more sites")
                + (f"; the sites {skipped} did not run before it: skipped (an input-dependent branch, or a layer "
                   "skipped while training as LayerDrop does), or run later (an order that depends on the input); "
                   "make the order fixed, or leave them out with layers=[...] naming the sites every pass runs in "
                   "one order" if skipped else ""))
        return site

    def _leave_out(self, site: Site) -> str:
        """How to leave ``site`` out (by its own name where its module is called at several places)."""
        names = [s.name for s in self.net.sites if s.module == site.module]
        return leave_out(site.name, site.module, names, "the sites every sample runs")

    def record(self, name: str, z, from_input: bool, output, activation: nn.Module | None = None) -> None:
        """Codes of one call of ``name``; ``activation``: the module about to run on ``z`` (a
        pre-hook), whose own saved input the surrogate gradient may share."""
        calls = self.calls.get(name, 0)
        self.calls[name] = calls + 1
        if (name, calls) in self.net.not_sites:
            return
        site = self._site(name, z)
        if activation is not None:  # an nn.Hardtanh's bounds set since (a clip schedule): cut where it clips now
            site = self._follow(site, activation)
        net, first = self.net, partial(sample_first, site=site, batch=self.batch)
        if net.quantizer == "none":
            src = first(output if from_input else z)
            self.codes.append(_mean_positions(src, site.axis, self.batch))
            if self.maps:
                self.code_maps.append(units_first(src.detach().clone(), site.axis, self.batch))
        else:
            # compiled graphs are left to AOTAutograd, which picks what to save itself (and storages cannot be traced)
            eager = activation is not None and z.requires_grad and torch.is_grad_enabled() and not torch.compiler.is_compiling()
            kept = z if eager and keeps_input(activation, z) else None
            z = first(z)
            self.codes.append(mean_code(z, site.points, net.quantizer, net.tau, site.axis, self.batch, kept, net.grad_state))
            if self.maps:
                self.code_maps.append(code_map(z.detach(), site.points, net.quantizer, net.tau, site.axis, self.batch))
        if self.refuse is not None:  # a backward through an FSDP unit the decision never reads: named, not FSDP's assert
            refuse_backward(self.codes[-1], self.refuse)

    def _follow(self, site: Site, activation: nn.Module) -> Site:
        """``site`` with its activation's breakpoints now, kept in the network's sites (what its state dict records)."""
        points = points_now(activation, site.points)
        if points is site.points:
            return site
        site = replace(site, points=points)
        if not torch.compiler.is_compiling():  # (a compiled graph guards on the bounds it read)
            self.net.sites[len(self.codes)] = site
        return site


def watch_registered(net) -> None:
    """Watch the modules of ``net``'s backbone (default sites) that became activations since its sites were found, by a
    class registered since in this process (``nv.register_activation(Sine)``): a fresh wrap reads their units, this
    network does not. As an activation added by an edit (:func:`neuroview.core.edits.added`), the first pass that runs
    one before the stop is refused by name; one after the stop never runs, and changes nothing."""
    read, now = net.__dict__.get("_kinds_read", net.__dict__.get("_points_read")), generation()
    if torch.compiler.is_compiling() or torch.compiler.is_exporting():  # (a graph guards on what it traced)
        return
    net.__dict__["_kinds_read"] = now
    if not (isinstance(read, tuple) and read[0] == now[0]) or net.__dict__.get("_named") or net.sites is None:
        return  # (the registry of another process says nothing of this network's sites)
    known = {id(m) for _, m, _ in net._targets} | {id(m) for m in net.__dict__.get("_added") or ()}  # (edits: said so)
    acts = _outermost([(n, m, True) for n, m in net.backbone.named_modules() if is_activation(m)], net.backbone)
    new = [(n, m) for n, m, _ in acts if id(m) not in known]
    stop = f" (at {net._stop!r})" if net.__dict__.get("_stop") else ""
    for n, m in new:  # the error edits.added gives when a pass runs one before the stop
        net.__dict__.setdefault("_became", {})[m] = (
            f"backbone: {n!r} ({type(m).__name__}) became an activation by nv.register_activation after the sites were "
            f"found, and runs before the pass stops{stop}, so its units would be left out of the decision; wrap the model "
            "again (new = nv.wrap(net.unwrap(), num_classes, ...) with the same settings; new.load_state_dict("
            "net.state_dict()) keeps the trained head where the units agree), or register the class before wrapping")
        net.__dict__.setdefault("_added", {})[m] = n
    if new and net.__dict__.get("_installed") and isinstance(net.__dict__.get("_watch"), dict):
        net._watch.update((m, (n, ())) for n, m in new)
        install(net, [(m, pre) for _, m in new for pre in (True, False)])


def sample_first(t: Tensor, site: Site, batch: int) -> Tensor:
    """``t`` with its samples on dim 0, any folded positions after them (``[B * k, ...]``)."""
    t = t.movedim(site.sample_dim, 0) if site.sample_dim else t
    return rearrange(t, "(k b) ... -> (b k) ...", b=batch) if site.positions_first else t


def _mean_positions(src: Tensor, axis: int, batch: int) -> Tensor:
    """``[B, C]`` mean of the activation output over positions, accumulated in float32."""
    acc = torch.float64 if src.dtype == torch.float64 else torch.float32
    zf, dim = as_units(src, axis, batch)
    return zf.mean(dim, dtype=acc)
