"""In which order a site's map lays the input's positions: what a unit gallery's ``heat`` needs before it stretches the
map over the input (:func:`neuroview.attribution.gallery.unit_gallery`).

A map made by a pure move of its positions (``conv(x).mT``: ``[B, C, W, H]`` of an ``[H, W]`` input) sums and ranks
exactly, but stretched over the input unmoved it marks the unit on at transposed (or stretched) places. The order is
followed from the input, as :mod:`neuroview.core.lineage` follows a layer's units, on one sample: each dim of a tensor
carries a label (the input's samples, its channels, or its positional dim ``i``), handed on by ops that keep a
tensor's layout (elementwise ops, convolutions, norms, pooling, resizing, padding, crops; ``F.linear`` and ``@`` over
the last dim) and permuted by the pure moves of dims (:data:`~neuroview.core.lineage.MOVES`). ``flip``, ``roll`` and
``rot90`` of positional dims are followed per dim: a label ``(i, sign, offset)`` says cell ``q`` of the dim holds the
input's position ``p`` with ``q = sign * p + offset`` (mod its size), so a second flip or a roll back restores ``i``, and
the gallery moves a flipped or rolled map back; their other dims (``x.flip(1)``: RGB to BGR) keep their labels. A sum
of an in-order map and a roll of it (a shift branch in a residual) keeps the in-order operand's order (a translation:
neighbours stay neighbours); operands of one sum in other orders (``z + z.flip(-1)``), a roll of the flattened tensor,
or a roll whose offset a resize cannot carry leave them in no order, as does a ``cat`` along a positional dim (a class
token ahead of the patches: its cells no longer tile the input, whatever their count; constant padding joined
along the last dim keeps the order, as ``F.pad``); a reshape that changes the shape
(tokens of patches), ``einsum`` or a tensor made of none of the input's, in no known order: drawn unmoved, as before
(units last over a series: where each token is one step, N == T). A
series' one positional dim is followed as an image's are (a flip or roll moves it too; no move swaps it). The gallery's
heat and :func:`~neuroview.viz.units.spatial_maps` (given ``net``) move each map back with :func:`in_input_order`. (No
gradient is read: a dead border or an upsampled map is no sign of a move, and a deep backbone whose every position reads
the whole input hides none.)

Imports only torch and the core modules below it.
"""

from __future__ import annotations

import weakref

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from .edits import site_module
from .lineage import CAT, LAYOUT, MOVES, moved, op_name, tensors

#: ops that keep the rank but move positions other than by a pure move: followed per dim they act on (:func:`_moved_cells`)
SCRAMBLE = frozenset({"flip", "fliplr", "flipud", "rot90", "roll"})
#: contractions over the last dim: the dims before it keep their labels (``q @ k.mT``: its last dim is ``k``'s tokens)
MATMUL = frozenset({"matmul", "__matmul__", "bmm", "linear"})
#: ops that make a tensor of none of the input's values (its shape only): unlabelled (a cat's padding)
FRESH = frozenset({"new_zeros", "new_ones", "new_full", "new_empty", "zeros_like", "ones_like", "full_like", "empty_like"})
_NO = "?"  # a positional dim whose order is lost


class _Order(TorchFunctionMode):
    """Labels each tensor's dims while it is on (``labels``: id -> (ref, labels)), from the labelled tensors of an op."""

    def __init__(self):
        super().__init__()
        self.labels: dict[int, tuple[weakref.ref, tuple]] = {}

    def get(self, t) -> tuple | None:
        entry = self.labels.get(id(t)) if isinstance(t, Tensor) else None
        return entry[1] if entry is not None and entry[0]() is t else None

    def put(self, t: Tensor, labels: tuple | None) -> None:
        if labels is None or len(labels) != t.dim():
            self.labels.pop(id(t), None)
        else:
            self.labels[id(t)] = (weakref.ref(t), tuple(labels))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        ins = [(t, lab) for t in tensors(args, kwargs) if (lab := self.get(t)) is not None]
        outs = [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)] if isinstance(
            out, (tuple, list)) else []
        for o in outs:
            self.put(o, _follow(op_name(func), args, kwargs, ins, o) if ins else None)
        return out


def _follow(op: str, args, kwargs, ins: list, out: Tensor) -> tuple | None:
    """The labels of the output ``out`` of ``op`` whose labelled tensor inputs are ``ins`` (None: not followed)."""
    t, lab = ins[0]
    if op in FRESH:
        return None
    if op in MOVES or op in ("transpose_", "swapaxes_", "swapdims_"):
        order = moved(op.rstrip("_"), args, kwargs, t.dim()) if out.dim() == t.dim() else None
        return None if order is None else tuple(lab[o] for o in order)
    if op in SCRAMBLE:
        return _moved_cells(op, args, kwargs, t, lab) if out.shape == t.shape or op == "rot90" else None
    if op in ("unsqueeze", "squeeze"):
        return _squeezed(op, args, kwargs, t, lab, out)
    if op in CAT:
        return _joined(args, kwargs, ins, out)
    if op in LAYOUT or op == "einsum":  # a reshape that keeps the shape keeps the order; else not followed
        return lab if op in LAYOUT and out.shape == t.shape else None
    if op in MATMUL and out.dim() == t.dim() >= 2:
        other = next((x for x in tensors(args, kwargs) if x is not t), None)
        return lab[:-1] + ((dict(ins).get(other) or lab)[-1:] if op != "linear" else lab[-1:])
    return _merge([(x, lab_) for x, lab_ in ins if x.dim() == out.dim()], out)


def _cell(i: int, sign: int, off: int, n: int):
    """The label of a positional dim of size ``n`` holding the input's dim ``i`` as ``q = sign * p + off``: ``i`` itself
    where that is its own order."""
    off %= max(n, 1)
    return i if sign == 1 and off == 0 else (i, sign, off)


def _parts(a) -> tuple[int, int, int] | None:
    """``(i, sign, offset)`` of a positional label (None: not one)."""
    return (a, 1, 0) if isinstance(a, int) else a if isinstance(a, tuple) else None


def _flipped(a, n: int):
    p = _parts(a)
    return a if p is None else _cell(p[0], -p[1], n - 1 - p[2], n)


def _rolled(a, shift: int, n: int):
    p = _parts(a)
    return a if p is None else _cell(p[0], p[1], p[2] + shift, n)


def _ints(v) -> list[int] | None:
    """``v`` (an int, or a tuple/list of ints) as a list, None where it is neither."""
    v = [v] if isinstance(v, int) else list(v) if isinstance(v, (tuple, list)) else None
    return v if v is not None and all(isinstance(d, int) and not isinstance(d, bool) for d in v) else None


def _moved_cells(op: str, args, kwargs, t: Tensor, lab: tuple) -> tuple | None:
    """The labels after ``flip``/``fliplr``/``flipud``/``roll``/``rot90`` of ``t``: only the dims the op acts on change
    (``x.flip(1)`` flips channels, no position); ``roll`` without dims (the flattened tensor) loses every position."""
    n, lab = t.dim(), list(lab)
    arg = lambda i, k, default=None: args[i] if len(args) > i else kwargs.get(k, default)  # noqa: E731
    if op in ("flip", "fliplr", "flipud"):
        dims = _ints(args[1:] if len(args) > 2 else arg(1, "dims")) if op == "flip" else [1 if op == "fliplr" else 0]
        if dims is None:
            return None
        for d in {d % n for d in dims}:
            lab[d] = _flipped(lab[d], t.shape[d])
        return tuple(lab)
    if op == "roll":
        shifts, dims = _ints(arg(1, "shifts")), arg(2, "dims")
        if dims is None:  # the flattened tensor rolled: positions cross dims
            return tuple(_NO if _parts(a) is not None else a for a in lab)
        dims = _ints(dims)
        if shifts is None or dims is None or len(shifts) != len(dims):
            return None
        for s_, d in zip(shifts, dims):
            lab[d % n] = _rolled(lab[d % n], s_, t.shape[d % n])
        return tuple(lab)
    k, dims = arg(1, "k", 1), _ints(arg(2, "dims", (0, 1)))  # rot90: a flip of one dim, then a swap of the two
    if not isinstance(k, int) or dims is None or len(dims) != 2:
        return None
    a, b = (d % n for d in dims)
    if k % 4 == 2:
        lab[a], lab[b] = _flipped(lab[a], t.shape[a]), _flipped(lab[b], t.shape[b])
    elif k % 4:
        f = b if k % 4 == 1 else a
        lab[f] = _flipped(lab[f], t.shape[f])
        lab[a], lab[b] = lab[b], lab[a]
    return tuple(lab)


def _resized(a, n: int, m: int):
    """A positional label of a dim resized from ``n`` to ``m`` cells: a flip is one at any size, a roll where its offset
    scales to whole cells; else no order."""
    p = _parts(a)
    if p is None or n == m or isinstance(a, int):
        return a
    i, sign, off = p
    shift = (off - (n - 1 if sign == -1 else 0)) % n  # the roll left after the reversal
    if (shift * m) % n:
        return _NO
    return _cell(i, sign, (m - 1 if sign == -1 else 0) + shift * m // n, m)


def _merge(ins: list, out: Tensor) -> tuple | None:
    """The labels of an output of the rank of the inputs ``ins`` (elementwise, a conv, a norm, a pooling): per dim,
    the inputs' label, where they are not broadcast over it; positions of two orders at one dim lie in none, but an
    in-order operand summed with rolls of it (a residual's shift branch) keeps its order."""
    if not ins:
        return None
    labels = []
    for d in range(out.dim()):
        col = {_resized(lab[d], x.shape[d], out.shape[d]) for x, lab in ins
               if x.shape[d] == out.shape[d] or len(ins) == 1} - {None}
        pos = [p for a in col if (p := _parts(a)) is not None]
        if _NO in col or (pos and len(pos) != len(col)) or len({p[0] for p in pos}) > 1:
            labels.append(_NO)
        elif len(col) > 1 and pos:  # one dim in several orders: the in-order one, where the rest are translations
            keep = pos[0][0] in col and all(p[1] == 1 for p in pos)
            labels.append(pos[0][0] if keep else _NO)
        else:
            labels.append(next(iter(col), None) if len(col) < 2 else _NO)
    return tuple(labels)


def _joined(args, kwargs, ins: list, out: Tensor) -> tuple | None:
    """The labels of ``torch.cat(pieces, dim)``: the pieces' own on the other dims; a positional dim they are joined
    along lies in no order of the input's (a class token ahead of the patches, a piece of no input, pieces of it in
    another order), whatever its size: the 1 + T / P tokens of a 1-D patch transformer were stretched over the series
    one patch late wherever their count divides T (probe S26 P4 finding 1). Except padding: one piece of the input
    joined along its last dim (channels first) with constant pieces (a causal conv's ``cat([zeros, x], -1)``) keeps
    its order, as ``F.pad``'s (review R4 finding 1); tokens ``[B, N, C]`` are joined along a dim before their units."""
    pieces = args[0] if args else kwargs.get("tensors", ())
    dim = args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis", 0))
    labels = _merge([(x, lab) for x, lab in ins if x.dim() == out.dim()], out)
    if labels is None or not isinstance(dim, int) or isinstance(dim, bool):
        return None if labels is None else tuple(_NO if _parts(a) is not None else a for a in labels)
    d, own = dim % out.dim(), {id(x): lab for x, lab in ins}
    kept = [p for p in pieces if isinstance(p, Tensor) and p.dim() == out.dim() and p.shape[d]]  # empty ones add nothing
    along = [own[id(p)][d] if id(p) in own else None for p in kept]
    if len(kept) > 1 and any(a == _NO or _parts(a) is not None for a in along):
        one = [(p, a) for p, a in zip(kept, along) if a is not None]
        if d == out.dim() - 1 and len(one) == 1 and _parts(one[0][1]) is not None and all(
                _constant(p) for p in kept if p is not one[0][0]):  # padding (a causal conv's zeros): as F.pad's
            return (*labels[:d], _resized(one[0][1], one[0][0].shape[d], out.shape[d]))
        return (*labels[:d], _NO, *labels[d + 1:])
    return labels


def _constant(t: Tensor) -> bool:
    """Whether ``t`` holds one value throughout, none of the input's, and is no parameter or view of one (a cat's
    padding; a class token, zeros before training, is learned)."""
    learned = any(isinstance(b, torch.nn.Parameter) for b in (t, t._base))
    return not learned and t.numel() > 0 and not t.is_complex() and bool((t == t.flatten()[0]).all())


def _squeezed(op: str, args, kwargs, t: Tensor, lab: tuple, out: Tensor) -> tuple | None:
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if op == "unsqueeze":
        return (*lab[:dim % out.dim()], None, *lab[dim % out.dim():]) if isinstance(dim, int) else None
    dims = range(t.dim()) if dim is None else dim if isinstance(dim, (tuple, list)) else (dim,)
    if not all(isinstance(d, int) for d in dims):
        return None
    gone = {d % t.dim() for d in dims if t.shape[d] == 1}
    return tuple(a for d, a in enumerate(lab) if d not in gone)


def _module_call(net, site):
    """The module a site's hook sits on (the object the network hooked, :func:`~neuroview.core.edits.site_module`: not
    what its name reaches now) and the call of it that is the site (``act:1``: its second)."""
    members = getattr(net, "members", None) is not None  # an ensemble's sites name its members' modules
    name, mod = (site.name.split(".", 2)[2], site.module.split(".", 3)[3]) if members else (site.name, site.module)
    suffix = name[len(mod):] if name.startswith(mod) else ""  # a module's own name may hold ':'
    return site_module(net, site), int(suffix.lstrip(":")) if suffix.lstrip(":").isdigit() else 0


def position_orders(net, sites, x: Tensor) -> dict[str, tuple[int, ...] | None]:
    """Per site of ``sites`` (of ``net``), the order of its map's positional dims (units first ``[C, *positions]``) over
    the spatial dims of ``x`` (one sample ``[1, C, *spatial]``, run once): ``(0, 1)`` in the input's order, ``(1, 0)``
    swapped (``.mT``); None where they lie in no order of the input's positions. A site left out: not followed (a
    reshape of tokens, folded windows). A series' one positional dim is followed too: ``(0,)``, or
    ``((0, sign, offset),)`` where a flip or roll moved it (it returned ``{}``: a flipped series map was stretched
    mirrored, probe S26 P4 finding 2); an input of no positions (``[1, F]``): ``{}``."""
    if x.dim() < 3:
        return {}
    got, seen, handles = {}, {}, []
    mode = _Order()

    def grab(site, call, module, t):
        seen[site.name] = seen.get(site.name, -1) + 1
        if seen[site.name] == call and isinstance(t, Tensor):
            got[site.name] = mode.get(t)

    for site in sites:
        module, call = _module_call(net, site)
        if site.from_input:
            handles.append(module.register_forward_pre_hook(lambda m, a, s=site, c=call: grab(s, c, m, a[0] if a else None)))
        else:
            handles.append(module.register_forward_hook(lambda m, a, o, s=site, c=call: grab(s, c, m, o)))
    x = x.detach().clone()
    mode.put(x, ("b", "c", *range(x.dim() - 2)))
    try:
        with torch.no_grad(), mode:
            net.codes(x)
    finally:
        for h in handles:
            h.remove()
    return {s.name: _order(s, got[s.name]) for s in sites if got.get(s.name) is not None
            and not s.positions_first and s.folds == 1}


def _order(site, labels: tuple) -> tuple[int, ...] | None:
    """The order of a site's positional labels (its sample-first view less its unit axis), None: no order of the
    input's positional dims."""
    n = len(labels)
    view = [site.sample_dim] + [d for d in range(n) if d != site.sample_dim]  # sample-first, as the codes read it
    pos = [labels[view[j]] for j in range(1, n) if j != site.axis % n]
    base = [p[0] for a in pos if (p := _parts(a)) is not None]
    return tuple(pos) if len(base) == len(pos) and sorted(base) == list(range(len(pos))) else None


def in_input_order(cmap: Tensor, order) -> Tensor | None:
    """The code maps ``cmap [B, *positions]`` with their positions moved back into the input's ``order``
    (:func:`position_orders`: a dim ``(i, sign, offset)`` flipped or rolled back first; ``()``: not followed, as they
    are); None where they lie in no order of the input's."""
    if order is None:
        return None
    if not order or cmap.dim() - 1 != len(order):
        return cmap
    for j, a in enumerate(order):
        if not isinstance(a, int):  # cell q = sign * p + off holds the input's position p
            n = cmap.shape[1 + j]
            idx = (a[1] * torch.arange(n, device=cmap.device) + a[2]) % n
            cmap = cmap.index_select(1 + j, idx)
    base = [_parts(a)[0] for a in order]
    return cmap if base == sorted(base) else cmap.permute(0, *[1 + base.index(i) for i in range(len(base))])
