"""Sites: the calls of activation modules whose pre-activations give the unit codes.

A site is one call of a module during the backbone's forward pass (a module called twice gives
``name`` and ``name:1``). Its units are the features of the layer that produced the
pre-activation, wherever they lie in memory: dim 1 of a conv map ``[B, C, *spatial]`` or the
last dim of a channels-last map ``[B, H, W, C]`` (ConvNeXt's MLP) or of tokens ``[B, N, C]``
(ViT, Swin, Mixer); its samples lie on dim 0 (positions may be folded in: windows
``[B * k, N, C]``) or elsewhere (sequence-first ``[T, B, C]``).

The site record lives here, and :func:`input_span`: the input steps a site's code map lies over
where its backbone says it covers only part of the input (MiniRocket's centre sites). How the
axes are told is :mod:`neuroview.core.axes`, how the sites are found :mod:`neuroview.core.discovery`,
the recorder of one pass :mod:`neuroview.core.recorder`, and the hooks on the backbone
:mod:`neuroview.core.hooks`.

A site's breakpoints are its activation's as they are now (:func:`refresh_points`, and the recorder at each pass): an
``nn.Hardtanh``'s bounds set after wrapping, or a class registered again, give the codes a fresh wrap gives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .activations import breakpoints, generation, is_activation, points_now


@dataclass(frozen=True)
class Site:
    """One call of a module during the backbone's forward pass."""

    name: str  # unique: module name, with ':k' for the k-th extra call of the same module
    module: str  # the module's name in the backbone
    channels: int  # number of units
    points: tuple[float, ...]  # region breakpoints of the code
    from_input: bool  # code from the module's input (activations) or its output (named modules)
    axis: int = 1  # where the units lie in the sample-first pre-activation: 1 (channels first) or -1 (last dim)
    sample_dim: int = 0  # the pre-activation's dim that holds the samples (1 for sequence-first [T, B, C])
    positions_first: bool = False  # positions folded ahead of the samples on it: row t * B + b of [T * B, C]
    folds: int = 1  # positions folded into the sample dim when it was found: with 1 their order was never told


def refresh_points(net) -> None:
    """Each site of ``net`` (a NeuroView-CNN) with the breakpoints its activation has now (a site is replaced where
    they changed): read before a state dict records them or is checked against them, and at a pass where the
    registry changed since (:func:`~neuroview.core.activations.generation`). Each site's module is the object the
    network hooked, wherever it stands now (one replaced or moved since is left to the pass, which names it); one of a
    class the registry does not know (a network unpickled in a process that has not registered its activation) keeps
    the breakpoints it was found with, not a ReLU's default."""
    sites, read, now_read = net.__dict__.get("sites"), net.__dict__.get("_points_read"), generation()
    # the registry followed only where it changed in this process since the sites were read here: a network unpickled
    # in another process (or never passed yet) keeps the breakpoints its head was trained on, an instance's bounds aside
    registry = isinstance(read, tuple) and read[0] == now_read[0] and read != now_read
    if sites is not None:  # by the objects it hooked: a name may since name another module (an insert before it)
        modules = {n: m for n, m, _ in net.__dict__.get("_targets") or ()}
        for k, s in enumerate(sites):  # as discovery reads them: an activation's, else the output's on/off bit
            m = modules.get(s.module)
            if not (s.from_input and m is not None and is_activation(m)):
                continue
            now = breakpoints(m) if registry else points_now(m, s.points)
            if now != s.points:
                sites[k] = replace(s, points=now)
    net.__dict__["_points_read"] = now_read


def input_span(net, site: str, steps: int) -> tuple[int, int] | None:
    """``(first step, steps)`` of the input of ``steps`` steps that the code map of ``site`` of ``net`` lies on, where
    its backbone says so (``backbone.input_spans()``: a MiniRocket's centre sites read steps ``4d`` to ``T - 4d``);
    None: the map covers the whole input (stretched over it where it has fewer positions). An Ensemble's sites
    (``members.<m>.<site>``) ask their member's backbone."""
    members = getattr(net, "members", None)
    if members is not None and site.startswith("members."):
        m, _, site = site[len("members."):].partition(".")
        net = members[int(m)] if m.isdigit() and int(m) < len(members) else None
    spans = getattr(getattr(net, "backbone", None), "input_spans", None)
    span = spans().get(site) if callable(spans) else None
    return span if span is not None and span[0] >= 0 and span[1] >= 1 and span[0] + span[1] <= steps else None
