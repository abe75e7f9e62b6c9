"""What reaches a NeuroView-CNN's decision, read from autograd and from the NeuroView networks inside a backbone:
:func:`graph` (the leaves of the codes' autograd graph: the parameters they depend on) and :func:`nested_needs` (what the
networks nested in a backbone decide with). Used by :mod:`neuroview.core.reach` and :mod:`neuroview.core.paths`.

Imports only torch and the core module :mod:`.guards`.
"""

from __future__ import annotations

from torch import nn

from .guards import Guarded


def graph(outs) -> tuple[set[int], set]:
    """``(ids of the leaves, nodes)`` of the autograd graph of the tensors ``outs``."""
    leaves, seen = set(), set()
    stack = [o.grad_fn for o in outs]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        var = getattr(fn, "variable", None)  # an AccumulateGrad node: its leaf
        if var is not None:
            leaves.add(id(var))
        stack.extend(nxt for nxt, _ in fn.next_functions)
    return leaves, seen


def nested_needs(backbone: nn.Module) -> set[int]:
    """``id`` of the parameters the NeuroView networks inside ``backbone`` decide with, whatever an outer wrap's codes
    reach: each one's head (classifier, normalization, shared step: it comes after its codes, so no codes reach it, and
    an outer decision that stops inside it never does), and the whole of a network that records no reach of its own
    (an RNN; an ensemble's own head). A NeuroView-CNN's backbone is left to its own record (:data:`~neuroview.core.reach._REACHED`, taken
    when it finds its sites: what it reaches then trains again, with a warning, where an outer wrap froze it first)."""
    nested = [m for m in backbone.modules() if isinstance(m, Guarded)]
    cnns = [(m, m._modules["backbone"]) for m in nested if "frozen" in m.__dict__ and m._modules.get("backbone") is not None]
    heads: set[int] = set()
    for m, bb in cnns:
        heads |= {id(p) for p in m.parameters()} - {id(p) for p in bb.parameters()}
    own = {id(p) for _, bb in cnns for p in bb.parameters()}
    return heads | ({id(p) for m in nested for p in m.parameters()} - own)
