"""Which sites' code maps a figure draws over the input, and in which order their positions lie: the sites of a
NeuroView-CNN whose maps :func:`~neuroview.viz.units.spatial_maps` and the report's ``spatial_maps_<i>.png`` leave out,
and the order each drawn map is moved back into (:func:`~neuroview.core.map_order.position_orders`). Kept apart from
:mod:`.units` for room.

Imports: torch and :mod:`neuroview.core`; no matplotlib.
"""

from __future__ import annotations

from torch import Tensor

from ..core._utils import restore_modes
from ..core.map_order import position_orders

__all__ = ["site_orders", "token_sites", "left_out"]


def site_orders(net, x: Tensor | None, names=None) -> dict:
    """Per site of ``net`` (those in ``names``; default all) the order of its map's positions over the input ``x``
    (:func:`~neuroview.core.map_order.position_orders`, run on its first sample in eval mode, the modes put back);
    ``{}`` without a NeuroView-CNN's sites or an input of positions."""
    if getattr(net, "sites", None) is None or not hasattr(net, "codes") or not isinstance(x, Tensor) or x.dim() < 3:
        return {}
    restore = restore_modes(net)
    try:
        net.eval()  # one sample through a BatchNorm in training mode: its running statistics moved
        sites = [s for s in net.sites if names is None or s.name in names]
        return position_orders(net, sites, x[:1].detach().to(next(net.parameters()).device))
    finally:
        restore()


def token_sites(net, exp=None, x: Tensor | None = None, orders: dict | None = None) -> set[str]:
    """The sites of ``net`` (None: none known) whose maps lie on no grid of the input ``x``, left out of the spatial
    figures: a site whose positions lie in no order of the input's (``z + z.flip(-1)``; a transformer's tokens
    ``[B, N, C]`` over a series, a class token ``cat`` among them, whatever their count: stretched over it, every token
    was drawn one patch late), and a site with its units on the last dim whose order is not followed (it cannot be told
    from tokens, a grid of them reshaped on an image too; but over a series one token per step, ``N == T``, is drawn as
    before). The order is followed from ``x`` (``orders``: of :func:`site_orders`, where known) for the sites of
    ``exp``'s maps (all, without ``exp``): a channels-last convolution over a series or an image (a ConvNeXt block,
    ``[B, H, W, C]``) is drawn as any convolution's, whatever its size."""
    maps = getattr(exp, "code_maps", None) or {}
    sites = [s for s in getattr(net, "sites", None) or () if exp is None or s.name in maps]
    if orders is None:
        orders = site_orders(net, x, {s.name for s in sites})
    steps = x.shape[2:] if isinstance(x, Tensor) and x.dim() == 3 else None  # one token per step: drawn (as units')
    return {s.name for s in sites if (orders[s.name] is None if s.name in orders else s.axis == -1 and not (
        steps is not None and s.name in maps and tuple(maps[s.name].shape[2:]) == tuple(steps)))}


def left_out(net, left: list[str]) -> str:
    """Why the sites ``left`` (maps of the input's rank) are not drawn: units on the last dim (tokens), or positions in
    no order of the input's."""
    axis = {s.name: s.axis for s in getattr(net, "sites", None) or ()}
    tokens, lost = [s for s in left if axis.get(s) == -1], [s for s in left if axis.get(s) != -1]
    why = [f"the maps of {tokens} lie over tokens (units on the last dim), no grid of the input"] if tokens else []
    why += [f"the maps of {lost} lie in no order of the input's positions (a map summed with its flip, or joined "
            "along its positions by a cat)"] if lost else []
    return ": " + "; ".join(why) if why else ""
