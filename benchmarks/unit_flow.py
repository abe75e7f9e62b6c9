"""Where the units of every activation call are, traced through the data flow -- the sweep's own rule.

``benchmarks/sweep_backbones.py`` must not grade the wrapper with the wrapper's own rule (the layer
that ran last before the activation, and dim 1 or -1 by the size of that layer's feature count),
or "0 wrong" could not be false. This traces what every tensor *is*, op by op, with a
``TorchFunctionMode`` and module hooks (nothing of ``neuroview`` is imported):

- a feature layer's output carries units: a Conv's channels on dim 1, a Linear's output features
  on the last dim, a BatchNorm's/GroupNorm's features on dim 1, a one-dim LayerNorm's on the last
  dim (a LayerNorm over several dims, ``LayerNorm([C, T])``, keeps its input's units);
- every op carries the units of its input through: a permute/transpose moves the unit dim; a
  reshape keeps it where a dim of the same size has the same number of elements in front of it
  (``flatten(2)`` of ``[B, C, H, W]`` keeps C at dim 1, folding windows into the batch keeps the
  last dim); a concatenation along the unit dim adds the counts (DenseNet, NASNet, ReLU(cat(a, b)));
  a split or slice along it gives each piece its own width (MambaOut's ``chunk``); pooling,
  padding, elementwise ops with broadcast operands leave them; any op that changes the unit dim
  otherwise, or mixes two inputs that disagree, loses them (unknown, never guessed);
- independently, every feature layer says what its *input* is: a Conv reads ``in_channels`` on
  dim 1, a Linear ``in_features`` on the last dim, a norm its features (followed back through
  one-input ops that keep the shape, such as dropout).

For an activation call, ``expect`` is the unit count and dim of its input by the flow (the
producer side) and ``consumer`` the same by the layer that reads its output.

>>> import torch
>>> from torch import nn
>>> class Cat(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.a, self.b, self.act, self.c = nn.Conv2d(3, 8, 1), nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(16, 4, 1)
...     def forward(self, x):
...         return self.c(self.act(torch.cat([self.a(x), self.b(x)], 1)))
>>> trace(Cat(), torch.randn(2, 3, 12, 8))["act"][0]
{'shape': (2, 16, 12, 8), 'expect': (16, 1), 'consumer': (16, 1)}
"""

from __future__ import annotations

import math
import weakref
from collections import defaultdict

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

_SLICING = {"__getitem__", "narrow", "split", "chunk", "tensor_split", "unbind", "split_with_sizes", "index_select"}
_CAT = {"cat", "concat", "concatenate"}
_RESHAPE = {"reshape", "view", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as", "reshape_as"}


def own_units(m: nn.Module) -> tuple[int, int] | None:
    """(count, dim) of the units a layer's output carries; dim 1 or -1. None: not a feature layer."""
    if isinstance(m, nn.modules.conv._ConvNd):
        return m.out_channels, 1
    if isinstance(m, nn.Linear):
        return m.out_features, -1
    if isinstance(m, nn.modules.batchnorm._NormBase):
        return m.num_features, 1
    if isinstance(m, nn.GroupNorm):
        return m.num_channels, 1
    if isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1:
        return m.normalized_shape[0], -1
    return None


def read_units(m: nn.Module) -> tuple[int, int] | None:
    """(count, dim) of the units a layer reads from its input."""
    if isinstance(m, nn.modules.conv._ConvNd):
        return m.in_channels, 1
    if isinstance(m, nn.Linear):
        return m.in_features, -1
    if isinstance(m, (nn.modules.batchnorm._NormBase, nn.GroupNorm)) or (
            isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1):
        return own_units(m)
    return None


def _tensors(obj) -> list[Tensor]:
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    return []


def _dims(args, kwargs, start: int) -> list[int]:
    rest = args[start:] if len(args) > start else kwargs.get("dims", ())
    if len(rest) == 1 and isinstance(rest[0], (list, tuple, torch.Size)):
        rest = rest[0]
    return [int(d) for d in rest]


def _by_prefix(shape, axis: int, count: int, new) -> int | None:
    """The dim of ``new`` with ``count`` elements and as many elements in front of it as ``axis`` of ``shape``."""
    front = math.prod(shape[:axis])
    for j, n in enumerate(new):
        if n == count and math.prod(new[:j]) == front:
            return j
    return None


class Flow(TorchFunctionMode):
    """Tags tensors with (count, dim) of their units as the forward pass makes them."""

    def __init__(self):
        super().__init__()
        self.tags: dict[int, tuple] = {}  # id -> (weakref, count, dim >= 0)
        self.alias: dict[int, tuple] = {}  # id(out) -> (weakref(out), input) of one-input same-shape ops
        self.reads: dict[int, tuple] = {}  # id -> (weakref, count, dim) read by a feature layer
        self.keep: list[Tensor] = []  # keeps tagged tensors alive for the pass, so ids stay unique

    def get(self, t) -> tuple[int, int] | None:
        rec = self.tags.get(id(t)) if isinstance(t, Tensor) else None
        return (rec[1], rec[2]) if rec is not None and rec[0]() is t else None

    def put(self, t: Tensor, count: int, dim: int) -> None:
        if isinstance(t, Tensor) and t.dim() and 0 <= dim % t.dim() < t.dim() and t.shape[dim] == count:
            self.tags[id(t)] = (weakref.ref(t), int(count), dim % t.dim())
            self.keep.append(t)

    def read(self, t: Tensor, count: int, dim: int) -> None:
        seen = 0
        while isinstance(t, Tensor) and seen < 64:
            old = self.reads.get(id(t))
            if old is None or old[0]() is not t:  # an id Python reused from a freed tensor is no read of this one
                self.reads[id(t)] = (weakref.ref(t), int(count), dim % t.dim())
            rec = self.alias.get(id(t))
            if rec is None or rec[0]() is not t:
                break
            t, seen = rec[1], seen + 1

    def consumer(self, t) -> tuple[int, int] | None:
        rec = self.reads.get(id(t)) if isinstance(t, Tensor) else None
        return (rec[1], rec[2]) if rec is not None and rec[0]() is t else None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        try:
            self._flow(getattr(func, "__name__", ""), args, kwargs, out)
        except Exception:  # an op this tracer does not understand: its output stays unknown
            pass
        return out

    def _flow(self, name: str, args, kwargs, out) -> None:
        name = name.strip("_") if name not in ("__getitem__",) else name
        ins = _tensors(args[:1] if name in _CAT else args) + _tensors(list(kwargs.values()))
        tagged = [(t, self.get(t)) for t in ins if self.get(t) is not None]
        outs = out if isinstance(out, (list, tuple)) else [out]
        if isinstance(out, Tensor) and len(ins) == 1 and ins[0].shape == out.shape and out is not ins[0]:
            self.alias[id(out)] = (weakref.ref(out), ins[0])
            self.keep.append(out)
        if not tagged:
            return
        if name in _CAT:
            dim = int(kwargs.get("dim", args[1] if len(args) > 1 else 0)) % out.dim()
            tags = [self.get(t) for t in args[0]]
            if all(tags) and all(d == dim for _, d in tags):
                self.put(out, sum(c for c, _ in tags), dim)
            elif all(tags) and len(set(tags)) == 1 and tags[0][1] != dim:
                self.put(out, *tags[0])
            return
        src, (count, axis) = tagged[0]
        if name in ("permute", "transpose", "swapaxes", "swapdims", "movedim", "moveaxis") and isinstance(out, Tensor):
            order = list(range(src.dim()))
            if name == "permute":
                order = [d % src.dim() for d in _dims(args, kwargs, 1)]
            elif name == "movedim" or name == "moveaxis":
                s, d = args[1], args[2]
                s, d = ([s], [d]) if isinstance(s, int) else (list(s), list(d))
                rest = [i for i in range(src.dim()) if i not in [x % src.dim() for x in s]]
                order = [None] * src.dim()
                for a, b in zip(s, d):
                    order[b % src.dim()] = a % src.dim()
                it = iter(rest)
                order = [o if o is not None else next(it) for o in order]
            else:
                a, b = (int(x) % src.dim() for x in args[1:3])
                order[a], order[b] = order[b], order[a]
            self.put(out, count, order.index(axis))
            return
        for piece in outs:
            if not isinstance(piece, Tensor):
                continue
            found = None
            for t, (c, a) in tagged:  # operands of the output's own shape first
                if piece.dim() == t.dim() and piece.shape[a] == t.shape[a] and (
                        name in _SLICING or piece.shape == t.shape or _broadcast_only(t.shape, piece.shape, a)):
                    found = found or (c, a)
                elif name in _SLICING and piece.dim() == t.dim() and all(
                        piece.shape[i] == t.shape[i] for i in range(t.dim()) if i != a):
                    found = found or (piece.shape[a], a)
                elif piece.dim() != t.dim() and (name in _RESHAPE or name.startswith(("mean", "sum", "amax", "max", "flatten"))):
                    j = _by_prefix(t.shape, a, c, piece.shape)
                    if j is not None:
                        found = found or (c, j)
            if found is not None:
                self.put(piece, *found)


def _broadcast_only(shape, new, axis) -> bool:
    """``new`` differs from ``shape`` only off ``axis`` (pooling, padding, interpolation, broadcasting)."""
    return len(shape) == len(new) and shape[axis] == new[axis]


def trace(model: nn.Module, x: Tensor, is_site=None) -> dict[str, list[dict]]:
    """Run ``model(x)`` (eval, no grad); for every call of every module whose input is a tensor
    (or only those ``is_site(module)`` accepts): its input shape, ``expect`` = (count, dim) of the
    units of its input by the flow, and ``consumer`` = (count, dim) by the layer reading its output.
    Dims are non-negative indices of the input."""
    flow = Flow()
    calls: dict[str, list[dict]] = defaultdict(list)
    pending: list[tuple[dict, Tensor]] = []
    handles = []

    def pre(mod, args, name):
        z = args[0] if args and isinstance(args[0], Tensor) else None
        r = read_units(mod)
        if z is not None and r is not None:
            flow.read(z, *r)
        if is_site is not None and not is_site(mod):
            return
        calls[name].append({"shape": tuple(z.shape) if z is not None else None, "expect": flow.get(z), "consumer": None})

    def post(mod, args, out, name):
        u = own_units(mod)
        if u is not None and isinstance(out, Tensor):
            flow.put(out, *u)
        if (is_site is None or is_site(mod)) and isinstance(out, Tensor) and calls.get(name):
            pending.append((calls[name][-1], out))

    for name, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(lambda mod, a, n=name: pre(mod, a, n)))
        handles.append(m.register_forward_hook(lambda mod, a, o, n=name: post(mod, a, o, n)))
    was = model.training
    try:
        model.eval()
        with torch.no_grad(), flow:
            model(x)
        for rec, out in pending:
            rec["consumer"] = flow.consumer(out)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return dict(calls)


def verdict(site_axis: int, site_channels: int, shape: tuple, expect, consumer) -> tuple[str, str]:
    """('right' | 'wrong' | 'unverified', why) for one site against the flow's expectations."""
    dim = site_axis % len(shape)
    want = [(w, src) for w, src in ((expect, "the flow"), (consumer, "the layer reading its output")) if w is not None]
    if not want:
        return "unverified", "neither the flow nor a reading layer says where its units are"
    for (c, d), src in want:
        if (c, d) == (site_channels, dim):
            return "right", src
    (c, d), src = want[0]
    return "wrong", f"{site_channels} units on dim {dim} of {list(shape)}, {src} says {c} on dim {d}"
