"""Where a unit responds in a sample: its strongest position and the input window it reads there
(:func:`windows`), for :func:`neuroview.attribution.gallery.unit_gallery`.

The window is measured, not derived from kernel sizes: the input positions on which the unit's
pre-activation at its strongest position has a non-zero gradient (:func:`preactivation` takes that
pre-activation with its graph), boxed per spatial dimension. A box cannot hold a window that wraps
around the input's end: where the gradient passes through the padding of a circular convolution
(``padding_mode="circular"``) that is an error, not the whole input. Gaps (a dilated layer's taps) are
no wrap.

Imports: torch and :mod:`neuroview.core`.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

from ..core.cnn import NeuroViewCNN
from ..core.edits import site_module
from ..core.ensemble import Ensemble
from ..core.quantize import units_first
from ..core.reach_graph import stand_ins
from ..core.recorder import sample_first

__all__ = ["windows", "preactivation"]


def windows(net: NeuroViewCNN, site, chs: Tensor, x: Tensor, sample: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(window [R, D, 2], strongest position [R])`` of unit ``chs[r]`` of ``site`` on sample ``x[sample[r]]``
    (``sample``: default ``r``). Each sample of ``x`` runs through the network once however many of its units are
    asked: one forward pass, then one backward pass per round of rows, a round taking at most one row of each sample
    (samples never depend on each other's batch, so a round's sum holds each row's own gradient). The same under the
    caller's ``no_grad`` or ``inference_mode``: the gradient is taken in a mode of its own, on a copy of ``x``, and for a
    model made under ``inference_mode`` on ordinary copies of its tensors (the windows of the same model built normally)."""
    device = next(net.parameters()).device
    spatial = x.shape[2:]
    sample = torch.arange(len(x)) if sample is None else torch.as_tensor(sample).cpu()
    # all of it with grad on: under the caller's no_grad the indexing below had no graph, and every window
    # was the whole input; an inference tensor cannot require grad, so x is copied out of inference mode, and a model made
    # under inference_mode runs on ordinary copies of its tensors (stand_ins: all of an Ensemble's members)
    with torch.inference_mode(False), torch.enable_grad(), stand_ins(net, "net"):
        x, chs, sample = x.to(device).clone().requires_grad_(True), chs.to(device).clone(), sample.clone()
        pads = _CircularPads(net)
        with pads if pads.handles else contextlib.nullcontext():  # no mode at all where nothing pads circularly
            z = preactivation(net, site, x)[sample.to(device), chs].reshape(len(sample), -1)  # [R, positions]
        pos = z.argmax(1)  # the first of equal maxima
        support = torch.zeros(len(sample), *spatial, dtype=torch.bool)
        wrapped: dict[tuple[int, int], str] = {}
        if z.requires_grad:
            peak, rounds = z.gather(1, pos[:, None])[:, 0], _rounds(sample)
            for r, rows in enumerate(rounds):
                g = torch.autograd.grad(peak[rows.to(device)].sum(), [x] + [p for _, p, _ in pads.got],
                                        allow_unused=True, retain_graph=r < len(rounds) - 1)
                support[rows] = (g[0].detach().abs().sum(1) > 0)[sample[rows].to(device)].cpu()  # [rows, *spatial]
                row = dict(zip(sample[rows].tolist(), rows.tolist()))  # this round's row of each sample
                for (i, d), what in pads.wrapped(g[1:], len(x), len(spatial)).items():
                    if i in row:
                        wrapped.setdefault((row[i], d), what)
    return _boxes(support, wrapped, site, chs.cpu()), pos.cpu()


def _rounds(sample: Tensor) -> list[Tensor]:
    """The rows of ``sample`` in rounds: round ``r`` holds the ``r``-th row of each sample that has one."""
    order = torch.sort(sample, stable=True).indices
    _, counts = torch.unique_consecutive(sample[order], return_counts=True)
    occurrence = torch.empty_like(order)
    occurrence[order] = torch.arange(len(sample)) - (counts.cumsum(0) - counts).repeat_interleave(counts)
    return [(occurrence == r).nonzero().flatten() for r in range(int(counts.max()) if len(counts) else 0)]


def _boxes(support: Tensor, wrapped: dict[tuple[int, int], str], site, chs: Tensor) -> Tensor:
    """``[R, D, 2]``: per row and input dim, the start and stop (exclusive) of the positions ``support [R, *spatial]``
    marks (none: the whole dim); a row read around the input's end (``wrapped``) is an error unless it reads all of it."""
    spatial = support.shape[1:]
    box = torch.zeros(len(support), len(spatial), 2, dtype=torch.long)
    for d, size in enumerate(spatial):
        other = [e + 1 for e in range(len(spatial)) if e != d]
        on = support.any(dim=other) if other else support  # [R, size]
        for i in sorted(i for i, e in wrapped if e == d):
            idx = on[i].nonzero().flatten()
            if len(idx) < size:  # reading all of the dimension, the box (0, size) is right
                raise ValueError(
                    f"net: unit '{site.name} #{int(chs[i])}' at its strongest position reads input positions "
                    f"{idx.tolist()} of input dimension {d}, around the input's end ({wrapped[i, d]}); a (start, "
                    "stop) window cannot hold that, and the gallery would show the whole input")
        has, first = on.any(1), on.int().argmax(1)  # argmax: the first of equal maxima
        last = size - on.flip(1).int().argmax(1)
        box[:, d, 0] = torch.where(has, first, 0)
        box[:, d, 1] = torch.where(has, last, size)
    return box


class _CircularPads(TorchFunctionMode):
    """The pads of a forward pass by its modules of ``padding_mode="circular"`` (``got``: which module, the padded
    tensor, the pad): a gradient on their pad cells is a reading across the input's end."""

    def __init__(self, net):
        super().__init__()
        self.got: list[tuple[str, Tensor, tuple]] = []
        self.at: list[str] = []
        self.handles = []
        for name, m in net.named_modules():
            if getattr(m, "padding_mode", None) == "circular":
                self.handles += [m.register_forward_pre_hook(lambda m, a, n=name: self._enter(n)),
                                 m.register_forward_hook(lambda m, a, o: self._leave())]

    def _enter(self, name: str) -> None:
        self.at.append(name)

    def _leave(self) -> None:  # a hook that returns something replaces the module's output
        self.at.pop()

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        circular = func is F.pad and kwargs.get("mode", args[2] if len(args) > 2 else None) == "circular"
        if circular and self.at and isinstance(out, Tensor) and out.requires_grad:
            what = f"padding_mode='circular' of module {self.at[-1]!r}"
            self.got.append((what, out, tuple(kwargs.get("pad", args[1] if len(args) > 1 else ()))))
        return out

    def wrapped(self, grads, b: int, dims: int) -> dict[tuple[int, int], str]:
        """``{(sample, input dim): what wrapped it}`` where a gradient reached a pad cell (the first that did)."""
        out: dict[tuple[int, int], str] = {}
        for (what, p, pad), g in zip(self.got, grads):
            if g is None:  # the pad is no part of the unit's path (a layer after its site)
                continue
            g = g.detach().abs()
            for j in range(len(pad) // 2):  # pad runs from the last dim: (left, right) of each
                dim, lo, hi = p.dim() - 1 - j, pad[2 * j], pad[2 * j + 1]
                cells = torch.cat([g.narrow(dim, 0, lo), g.narrow(dim, p.shape[dim] - hi, hi)], dim)
                hit = cells.flatten(1).sum(1) > 0 if g.shape[0] == b else (cells.sum() > 0).expand(b)
                # a pad of the input's rank wraps the same input dim; of another rank, any of them
                to = [dims - 1 - j] if p.dim() - 2 == dims and j < dims else range(dims)
                for i in hit.nonzero().flatten().tolist():
                    for d in to:
                        out.setdefault((i, d), what)
        return out


def preactivation(net: NeuroViewCNN, site, x: Tensor) -> Tensor:
    """The pre-activation of ``site`` on ``x``, units first ``[B, C_s, *positions]``, with its graph.

    Taken by a hook of its own on the site's module (the object the network hooked), at the site's call number
    (``name:1`` is the second call; ``name::1`` where ``name:1`` is another module's name), and cloned before an
    in-place activation can overwrite it.
    """
    # the object the network hooked (an ensemble's: its member's), not what its name reaches now: a module inserted
    # before it since (refused: PathChanged), the backbone compiled or in DataParallel in place (names moved)
    module = site_module(net, site)
    name, mod = site.name, site.module
    if isinstance(net, Ensemble):  # members.<i>.<name> of members.<i>.backbone.<module>: the member's own names
        name, mod = name.split(".", 2)[2], mod.split(".", 3)[3]
    suffix = name[len(mod):] if name.startswith(mod) else ""  # a module's own name may hold ':'
    call = int(suffix.lstrip(":")) if suffix.lstrip(":").isdigit() else 0
    seen, got = [0], []

    def grab(z):
        if seen[0] == call:
            got.append(z.clone())
        seen[0] += 1

    if site.from_input:
        handle = module.register_forward_pre_hook(lambda m, args: grab(args[0]))
    else:
        handle = module.register_forward_hook(lambda m, args, out: grab(out))
    try:
        with torch.enable_grad():
            net.codes(x)
            # reshaped with grad on too: under the caller's no_grad the view had no graph
            return units_first(sample_first(got[0], site, len(x)), site.axis, len(x))  # [T, B, C] and [T * B, C] sites too
    finally:
        handle.remove()
