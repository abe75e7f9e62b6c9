"""Which layer produced a tensor, followed through the ops that keep its layout: what a site's unit axis is read
from while the sites are found (:mod:`neuroview.core.discovery`).

A tensor's tag is the width of the layer that produced it (:data:`neuroview.core.axes.Width`) and the index of the
site call whose output it is. Ops hand it on where their output has the layout of an input: elementwise ops,
copies, dropout, in-place ops, concatenations; and pooling, resizing, padding and cropping, where the axis the
layer's units lie on keeps its size (a conv's channels, behind a ``max_pool2d`` or a TCN's crop ``x[:, :, :-2]``).
Ops that return several tensors are followed too: a pooling's values beside its indices (``return_indices=True``),
and each piece of a ``split``/``chunk`` as a crop; so are ``unsqueeze``/``squeeze`` where the units stay on dim 1 or
the last dim (a 1-d map pooled as a 2-d one); so are the pure moves of dims (:data:`MOVES`: ``permute``,
``transpose``, ``movedim``, ``.mT``) where the layer's units land on dim 1 or the last dim: a conv map made
channels-last has its channels on dim -1 (the network's input is not followed: its dim 1 is assumed, no layer's; nor
is a concatenation of it, :meth:`Tags.assumed`). Any other op that keeps a conv map's rank and its dim 1 leaves a
hint (:meth:`Tags.hint`): the units were on dim 1 before an op not followed, so a layer reading the activation's output
over another axis is no answer. A contraction over the last dim (``F.linear`` with a weight, ``z @ w``, ``einsum``)
that changes its size leaves none: it is a layer over that dim (as ``nn.Linear`` is), not a move of the units. A move
that lands a layer's units on a middle dim leaves a hint, and a later move of that hint is followed (``.movedim(2, -1)``
tags the units on the last dim again); a sum of two layers' maps on other axes leaves a hint naming both.

Imports only torch and the core modules below it.
"""

from __future__ import annotations

import operator
import weakref

from torch import Tensor

from .axes import Width, fits

#: ops whose output has the layout of an input of the same shape (elementwise, copies, dropout)
KEEP = frozenset(
    f"{pre}{op}{post}" for op in ("add", "sub", "mul", "div", "truediv") for pre, post in (("", ""), ("", "_"), ("__", "__"),
                                                                                              ("__i", "__"), ("__r", "__"))
) | frozenset({"clone", "contiguous", "to", "float", "half", "bfloat16", "double", "type_as", "neg", "__neg__", "addcmul",
               "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "where"})
CAT = frozenset({"cat", "concat", "concatenate"})
#: ops over the positions of a map ``[B, C, *positions]``: they keep its dim 1 (the units of a conv) where its size
#: is kept (a 3-d map pooled as an unbatched 2-d one changes it)
POSITIONS = frozenset(f"{op}{d}d" for op in ("max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool", "lp_pool",
                                             "fractional_max_pool") for d in (1, 2, 3)) | {"interpolate", "upsample", "pad"}
#: crops by indexing: any axis whose size they keep (x[:, 1:] of tokens keeps their channels on dim -1)
CROP = frozenset({"__getitem__", "narrow"})
#: crops that return pieces: each piece is followed as a crop (``z.split(..., dim=-1)`` of a TCN)
SPLIT = frozenset({"split", "split_with_sizes", "unsafe_split", "chunk", "unsafe_chunk", "tensor_split", "hsplit",
                   "vsplit", "dsplit"})
#: ops that move dims around: dim 1 after one says nothing of dim 1 before it (``.mT``: see :func:`op_name`), but
#: where a layer's units go through a pure move (:data:`MOVES`) is known
LAYOUT = frozenset({"transpose", "transpose_", "permute", "swapaxes", "swapdims", "movedim", "moveaxis", "view", "reshape",
                    "flatten", "unflatten", "mT", "T", "mH", "H", "rearrange", "as_strided", "view_as", "reshape_as"})
#: pure moves of dims (:func:`moved`): where a layer's units go is known exactly
MOVES = frozenset({"transpose", "permute", "swapaxes", "swapdims", "movedim", "moveaxis", "mT", "T", "mH", "H", "adjoint"})
#: contractions over the last dim: a layer over it where they change its size (no move of the units on dim 1)
CONTRACT = frozenset({"linear", "matmul", "__matmul__", "__rmatmul__", "einsum", "bmm", "mm"})


def op_name(func) -> str:
    """The name of the op ``func`` a ``TorchFunctionMode`` sees: a tensor property (``.mT``, ``.T``) reaches it as
    its descriptor's ``__get__``, named by the descriptor."""
    name = getattr(func, "__name__", "")
    return getattr(getattr(func, "__self__", None), "__name__", name) if name == "__get__" else name


def moved(op: str, args, kwargs, n: int) -> list[int] | None:
    """``order``: dim ``j`` of the output of the :data:`MOVES` op ``op`` on a tensor of rank ``n`` is its input's dim
    ``order[j]``; None where the dims are not plain ints (named dims) or make no permutation."""
    rest = [*args[1:], *(kwargs[k] for k in ("dims", "dim0", "dim1", "axis0", "axis1", "source", "destination")
                         if k in kwargs)]
    try:
        if op == "permute":
            dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest
            order = [operator.index(d) % n for d in dims]
        elif op in ("transpose", "swapaxes", "swapdims", "mT", "mH", "adjoint"):
            a, b = (operator.index(d) % n for d in rest[:2]) if op in ("transpose", "swapaxes", "swapdims") else (n - 2, n - 1)
            order = list(range(n))
            order[a], order[b] = b, a
        elif op in ("T", "H"):
            order = list(range(n))[::-1]
        else:  # movedim(source, destination): the other dims keep their order in the places left
            src, dst = ([d] if isinstance(d, int) else list(d) for d in rest[:2])
            order = [None] * n
            for s_, d_ in zip(src, dst, strict=True):
                order[operator.index(d_) % n] = operator.index(s_) % n
            left = iter(d for d in range(n) if d not in order)
            order = [next(left) if d is None else d for d in order]
    except (TypeError, ValueError, IndexError, StopIteration, ZeroDivisionError):
        return None
    return order if sorted(order) == list(range(n)) else None


def middle(hint) -> bool:
    """Whether a hint (:meth:`Tags.hint`) says a pure move took a layer's units to a middle dim: ``(width, op, d)``."""
    return hint is not None and len(hint) == 3 and isinstance(hint[2], int)


def tensors(args, kwargs):
    for a in (*args, *kwargs.values()):
        if isinstance(a, Tensor):
            yield a
        elif isinstance(a, (list, tuple)):
            yield from (t for t in a if isinstance(t, Tensor))


class Normed(tuple):
    """The width of the layer whose map a normalization over another axis left in place (:meth:`Tags.normed`), with the
    norm's own width as ``norm``: the axis a ``unit_axis`` key may take beside it (:func:`~neuroview.core.axes.unit_axis`)."""

    norm: Width | None = None


class Tags:
    """The tags of one discovery pass: ``tag``/``mark`` a tensor, ``follow`` an op, ``hint`` a conv map behind an
    op not followed. (The network's input is tagged with its dim 1, ``input_width``: by contract, not by a layer.)"""

    def __init__(self):
        self.tags: dict[int, tuple[weakref.ref, Width | None, int | None]] = {}
        self.hints: dict[int, tuple[weakref.ref, Width, str]] = {}
        self.input_width: Width | None = None
        self.from_input: list[Width] = []  # widths made from the input's (a concatenation of x and x * x): no layer's
        self.moved_w: list[Width] = []  # widths handed on through a pure move of dims

    def assumed(self, width) -> bool:
        """Whether ``width`` is the input's assumed dim 1, or a concatenation's made from it: no layer's width."""
        return width is not None and (width is self.input_width or any(width is w for w in self.from_input))

    def tag(self, t) -> tuple[Width | None, int | None]:
        """(width of the layer that produced ``t``, index of the site call whose output ``t`` is)."""
        entry = self.tags.get(id(t)) if isinstance(t, Tensor) else None
        return (entry[1], entry[2]) if entry is not None and entry[0]() is t else (None, None)

    def hint(self, t) -> tuple[Width, str] | None:
        """``(width, op)``: ``t`` was a layer's map with its units on dim 1 before the op ``op`` not followed, which
        kept its rank and dim 1; ``(width, op, d)``: a pure move ``op`` took the layer's units to the middle dim ``d``
        (:func:`middle`); ``(width, "sum", other)``: a sum of two layers' maps whose widths lie on dim 1 and the last dim
        (None: no such map, or ``t`` is tagged)."""
        entry = self.hints.get(id(t)) if isinstance(t, Tensor) else None
        return entry[1:] if entry is not None and entry[0]() is t else None

    def mark(self, t, width: Width | None = None, call: int | None = None) -> None:
        if isinstance(t, Tensor):
            w, c = self.tag(t)
            self.tags[id(t)] = (weakref.ref(t), width or w, c if call is None else call)
            if width is not None:  # a layer's own output (nn.Linear's, whose F.linear left one): its width, no hint
                self.hints.pop(id(t), None)

    def follow_all(self, op: str, args, kwargs, out) -> None:
        """:meth:`follow` an op's output: a tensor; a pooling's values (``max_pool2d_with_indices``: its indices are
        positions); each piece of a :data:`SPLIT` crop. (Other tuples are not followed.)"""
        if isinstance(out, Tensor):
            self.follow(op, args, kwargs, out)
        elif isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
            base = op[:-len("_with_indices")] if op.endswith("_with_indices") else op
            pieces = out[:1] if base in POSITIONS else out if op in SPLIT else ()
            for piece in pieces:
                if isinstance(piece, Tensor):
                    self.follow(base, args, kwargs, piece)

    def follow(self, op: str, args, kwargs, out: Tensor) -> None:
        if self.tag(out) != (None, None):
            return  # an in-place op: its output is its input
        if op in CAT:
            self._cat(args, kwargs, out)
        elif op == "view_as":  # x.view_as(x): how a module's full backward hook hands on its input and output
            if args and isinstance(args[0], Tensor) and args[0].shape == out.shape:
                w, c = self.tag(args[0])
                if w is not None or c is not None:
                    self.mark(out, w, c)
        elif op in KEEP:  # a layer's width before the input's assumed one: x + fc(x) and fc(x) + x lay out alike
            shaped = [self.tag(t) for t in tensors(args, kwargs) if t.shape == out.shape]
            tags = [wc for wc in shaped if wc != (None, None)]
            real = [wc for wc in tags if wc[0] is not None and wc[0] is not self.input_width]
            plain = [wc for wc in real if not any(wc[0] is m for m in self.moved_w)]  # a layer's, not moved
            other = {(w[0], a): w for w, _ in plain if (a := fits(tuple(out.shape), w)) is not None}
            if len(other) > 1:  # layers of other axes (a conv's channels plus a Linear over time, h + mix(h)): no tag, in
                ways = sorted(other.values(), key=lambda w: fits(tuple(out.shape), w) % out.dim())  # either order
                self.hints[id(out)] = (weakref.ref(out), ways[0], "sum", ways[-1])  # the reader tells, else the error
                return  # names both (the first operand won: P6 finding 1; "no layer produced it": review R1 finding 6)
            if plain or (len(real) == len(shaped) and len({wc[0] for wc in real}) == 1) or (tags and not real):
                self.mark(out, *(plain or real or tags)[0])
            # else a moved width beside an operand it does not tell (a Mixer's stream, untagged after its patches'
            # flatten, plus a token Linear's 16 moved to dim 1), or moved widths on other axes: no tag, the layer
            # reading the sum tells (the moved width won and read the 16 tokens as units, a review of 25c62ff)
        elif op in ("unsqueeze", "squeeze"):
            self._squeezed(op, args, kwargs, out)
        elif op in POSITIONS or op in CROP or op in SPLIT:
            self._kept(op, args[0] if args else kwargs.get("input", kwargs.get("tensor")), out)
        elif op in MOVES:
            self._moved(op, args, kwargs, out)
        if self.tag(out) == (None, None) and op not in LAYOUT:
            self._hint(op, next(tensors(args, kwargs), None), out)

    def _cat(self, args, kwargs, out: Tensor) -> None:
        tensors_ = args[0] if args else kwargs.get("tensors", ())
        # torch.cat(ts, axis=1) (numpy's keyword, torch.concatenate's) too; a dim by name is not followed
        try:
            dim = operator.index(args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis", 0)))
        except TypeError:
            return
        widths = [self.tag(t)[0] for t in tensors_]
        axes = [fits(tuple(t.shape), w) for t, w in zip(tensors_, widths)]
        if not tensors_ or None in axes or len({a % out.dim() for a in axes}) != 1:
            return
        count = out.shape[axes[0]] if dim % out.dim() == axes[0] % out.dim() else widths[0][0]
        width = (count, axes[0])
        if all(self.assumed(w) for w in widths):  # torch.cat([x, x * x], -1): the input's dim 1 still, assumed
            self.from_input.append(width)
        self.mark(out, width)

    def _kept(self, op: str, t, out: Tensor) -> None:
        """Hand ``t``'s tag on to ``out`` where the axis its layer's units lie on keeps its size (for an op over
        positions: dim 1 of a map of rank 3 or more)."""
        width, call = self.tag(t)
        if width is None or width is self.input_width or t.dim() != out.dim():
            return
        axis = fits(tuple(t.shape), width)
        if axis is None or (op in POSITIONS and (t.dim() < 3 or axis % t.dim() != 1)):
            return
        if out.shape[axis] == t.shape[axis]:
            self.mark(out, width, call)

    def _moved(self, op: str, args, kwargs, out: Tensor) -> None:
        """Hand a layer's width on through a pure move of dims (:func:`moved`), at the dim its units land on where that
        is dim 1 or the last (elsewhere the units lie on no axis a site reads: no tag). Not the site call: the layer
        that reads the moved tensor takes another layout than the activation's output."""
        t = args[0] if args else kwargs.get("input")
        width, seen = self.tag(t)[0], self.hint(t)
        if width is None and seen is not None and middle(seen) and t.dim() == out.dim():  # units on a middle dim
            width, axis = seen[0], seen[2]  # moved on: .movedim(2, -1) (the middle-dim error's advice) follows them
        elif width is None or self.assumed(width) or t.dim() != out.dim() or (axis := fits(tuple(t.shape), width)) is None:
            return
        order = moved(op, args, kwargs, t.dim())
        d = order.index(axis % t.dim()) if order is not None else None
        if d is not None and d in (1, out.dim() - 1) and out.shape[d] == width[0]:
            self.moved_w.append(w := (width[0], 1 if d == 1 else -1))
            self.mark(out, w)
        elif d is not None and 1 < d < out.dim() - 1:  # a middle dim (axial [B, H, C, W]): no axis a site reads, told
            self.hints[id(out)] = (weakref.ref(out), width, op, d)  # at the site (P6 finding 4), handed on as a hint

    def normed(self, width: Width, t, out) -> Width:
        """The width to tag a normalization layer's output ``out`` with (``width``: the layer's own): its input
        ``t``'s, where a layer's width tags it on another axis than the norm's own fits (``nn.LayerNorm(T)`` over a
        conv map's time steps moves none of its channels, as ``F.layer_norm`` moves none: P6 finding 2)."""
        w = self.tag(t)[0]  # (a LayerNorm subclass of its own forward, whose axis is not told, may permute: its own)
        if w is None or width[1] is None or self.assumed(w) or not isinstance(out, Tensor) or t.shape != out.shape:
            return width
        axis = fits(tuple(t.shape), w)
        if axis is None or axis == fits(tuple(out.shape), width):
            return width
        kept = Normed(w)  # the norm's own width beside it: a unit_axis key may still read its steps (its per-step weights;
        kept.norm = width  # heads saved before 7b5a825 read them: review R1 finding 4)
        if any(w is m for m in self.moved_w):
            self.moved_w.append(kept)
        return kept

    def _squeezed(self, op: str, args, kwargs, out: Tensor) -> None:
        """Hand ``t``'s tag on through ``unsqueeze``/``squeeze`` where its units stay on dim 1 or on the last dim (a
        conv map ``[B, C, T]`` pooled as ``[B, C, T, 1]``)."""
        t = args[0] if args else kwargs.get("input")
        width, call = self.tag(t)
        dim = args[1] if len(args) > 1 else kwargs.get("dim")
        if width is None or width is self.input_width or (axis := fits(tuple(t.shape), width)) is None:
            return
        axis %= t.dim()
        if op == "unsqueeze":
            axis += int(isinstance(dim, int) and axis >= dim % out.dim())
        else:
            dims = range(t.dim()) if dim is None else dim if isinstance(dim, (tuple, list)) else (dim,)
            gone = {d % t.dim() for d in dims if isinstance(d, int) and t.shape[d] == 1}
            axis = None if axis in gone else axis - sum(d < axis for d in gone)
        if axis is not None and out.dim() >= 2 and axis in (1, out.dim() - 1) and out.shape[axis] == width[0]:
            self.mark(out, (width[0], 1 if axis == 1 else -1), call)

    def _hint(self, op: str, t, out: Tensor) -> None:
        width, seen = self.tag(t)[0], self.hint(t)  # first: a lazy layer's uninitialized weight has no dim() to read
        if width is None and seen is None or t.dim() != out.dim() or out.dim() < 3 or t.shape[1] != out.shape[1] \
                or op in CONTRACT and t.shape[-1] != out.shape[-1]:  # F.linear(z, w) over time: a layer, as nn.Linear
            return
        if width is not None and width is not self.input_width and not any(width is m for m in self.moved_w) and fits(tuple(t.shape), width) == 1:
            self.hints[id(out)] = (weakref.ref(out), width, op)
        elif width is None and seen is not None:  # through untagged tensors only: a layer's own width ends a hint
            self.hints[id(out)] = (weakref.ref(out), *seen)
