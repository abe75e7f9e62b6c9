"""What reaches a NeuroView-CNN's decision, read from autograd and from the NeuroView networks inside a backbone:
:func:`graph` (the leaves of the codes' autograd graph: the parameters they depend on) and :func:`nested_needs` (what the
networks nested in a backbone decide with). Used by :mod:`neuroview.core.reach` and :mod:`neuroview.core.paths`.
And :func:`stand_ins`: ordinary copies of a model's inference tensors, which autograd refuses, for the passes that find
a CNN's sites and its reach (:mod:`neuroview.core.discovery`, :mod:`neuroview.core.reach`).

Imports only torch and the core module :mod:`.guards`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
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


@contextmanager
def stand_ins(module: nn.Module, name: str = "backbone") -> Iterator[None]:
    """Inside: each parameter, buffer and plain tensor attribute of ``module`` that is an inference tensor (made under
    ``torch.inference_mode()``) replaced by an ordinary copy (the same values and ``requires_grad``; one copy of a
    tensor held at several places); after, an error too, the originals back where they stood. The passes that find a
    CNN's sites and its reach run autograd through the backbone, which torch refuses for inference tensors ("cannot
    be saved for backward"): on the copies they read the numbers of the same model built normally, and change
    nothing of the user's tensors. Set as attributes, so that an RNN's flat weights follow. An inference tensor held
    out of reach (in a list, a dict, a closure) still fails the pass: that is refused naming ``name`` (the model), as
    the batch has nothing to do with it."""
    copies: dict[int, torch.Tensor] = {}
    placed: list[tuple[nn.Module, str, torch.Tensor]] = []
    try:
        with torch.inference_mode(False):
            for m in list(module.modules()):
                plain = [(k, t) for k, t in vars(m).items() if isinstance(t, torch.Tensor)]  # no parameter, no buffer
                for k, t in [*m._parameters.items(), *m._buffers.items(), *plain]:
                    if t is None or isinstance(t, nn.parameter.UninitializedTensorMixin) or not t.is_inference():
                        continue
                    if id(t) not in copies:
                        c = t.detach().clone()
                        copies[id(t)] = nn.Parameter(c, t.requires_grad) if isinstance(t, nn.Parameter) else c
                    placed.append((m, k, t))
                    setattr(m, k, copies[id(t)])
        yield
    except (RuntimeError, ValueError) as e:
        cause = _inference_cause(e)
        if cause is None:
            raise
        raise ValueError(
            f"{name}: expected tensors autograd can save, got a tensor made under torch.inference_mode() that is no "
            "parameter, buffer or tensor attribute of its modules (held in a list, a dict or a closure), which cannot "
            "be stood in for (RuntimeError: " + str(cause) + "): build the model outside torch.inference_mode(), or "
            "register the tensor as a buffer") from e
    finally:
        for m, k, t in reversed(placed):
            setattr(m, k, t)


def _inference_cause(e: BaseException | None) -> BaseException | None:
    """The RuntimeError of torch that refused an inference tensor in autograd, in ``e``'s chain (None: another error)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, RuntimeError) and "Inference tensors cannot be saved for backward" in str(e):
            return e
        e = e.__cause__ or e.__context__
    return None
