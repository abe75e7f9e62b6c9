"""What a NeuroView-CNN's decision never reaches: the backbone parameters its codes do not depend on.

The forward pass stops after the last site, so the backbone's own head (and anything else whose
output no site reads, such as Inception's auxiliary classifier) never gets a gradient.
``DistributedDataParallel`` waits for a gradient of every parameter that asks for one, so at the
second step it fails ("Expected to have finished reduction in the prior iteration"). The wrapper
therefore freezes those parameters when it finds its sites (:func:`freeze_unreached`), and gives
them back as they were on ``unwrap()`` (:func:`thaw`).

What is reached is read from the autograd graph of the codes of one small batch (the parameters
that graph accumulates into), which is what DDP itself checks, rather than from which modules
ran: a module can run before the last site without any site reading its output.

Imports only torch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._utils import restore_modes


def graph_leaves(out: Tensor) -> set[int]:
    """``id`` of every leaf tensor (parameter) the autograd graph of ``out`` accumulates into."""
    leaves: set[int] = set()
    seen: set = set()
    stack = [out.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        var = getattr(fn, "variable", None)  # an AccumulateGrad node: its leaf
        if var is not None:
            leaves.add(id(var))
        stack.extend(nxt for nxt, _ in fn.next_functions)
    return leaves


def freeze_unreached(net: nn.Module, x: Tensor) -> tuple[str, ...]:
    """Set ``requires_grad=False`` on the backbone parameters the codes of ``x`` do not depend on;
    return their names in the backbone (parameters already frozen are left alone and not listed).

    One eval-mode pass with gradients on (no BatchNorm statistics move, no backward runs).
    """
    trainable = [(n, p) for n, p in net.backbone.named_parameters() if p.requires_grad]
    if not trainable:
        return ()
    restore = restore_modes(net)
    try:
        net.eval()
        with torch.enable_grad():
            reached = graph_leaves(net.codes(x))
    finally:
        restore()
    names = tuple(n for n, p in trainable if id(p) not in reached)
    for n in names:
        net.backbone.get_parameter(n).requires_grad_(False)
    return names


def thaw(net: nn.Module, names: tuple[str, ...]) -> tuple[()]:
    """Undo :func:`freeze_unreached` for ``names``; returns ``()``, what is left frozen."""
    for n in names:
        net.backbone.get_parameter(n).requires_grad_(True)
    return ()


def module_names(names: tuple[str, ...]) -> list[str]:
    """``backbone.<module>`` of each parameter name, once each, in order."""
    out = {f"backbone.{n.rpartition('.')[0]}".rstrip("."): None for n in names}
    return list(out)
