"""Deletion curves: remove what an order ranks first and record what is left of the decision.

Holds the results (:class:`DeletionCurve`, :class:`DeletionCurves`), unit ablation inside a
NeuroView-CNN (:func:`ablate_units`, :func:`unit_deletion_curve`) and time-step deletion in the
input of a sequence model (:func:`delete_steps`, :func:`step_deletion_curve`). Where the orders
come from is :mod:`neuroview.attribution.faithfulness`; drawing the curves is
:mod:`neuroview.viz.faithfulness`, which registers itself here (this layer never imports viz).

Imports: torch, :mod:`neuroview.core`, the argument checks of :mod:`~neuroview.attribution.checks` and the hooks
of :mod:`~neuroview.attribution.ablation_hooks`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from .._batch import takes_lengths
from ..core.cnn import NeuroViewCNN
from ..core.edits import site_module
from ..core.hooks import CodesHooks, _remove as remove_hook
from .ablation_hooks import AblationHook, UnitAblation
from .checks import (
    check_baseline, check_counts, check_k, check_labels, check_lengths, check_sequences, check_xy, cnn_layout, eval_mode,
    num_classes_of, unit_mask,
)

__all__ = [
    "DeletionCurve", "DeletionCurves", "ablate_units", "unit_deletion_curve", "delete_steps", "step_deletion_curve",
    "order_from_scores", "register_plotter",
]

METRICS = ("accuracy", "true_logit")


# ----------------------------------------------------------------------------- results
@dataclass(eq=False)  # by identity, as Explanation: tensors of many values gave torch's bare error
class DeletionCurve:
    """Accuracy and mean true-class logit after removing the ``count[i]`` most important items.

    ``count[0] == 0`` (the intact network) and ``count[-1]`` is every unit or step.
    """

    method: str
    count: Tensor  # [K + 1] items removed
    fraction: Tensor  # [K + 1] count / total, from 0 to 1
    accuracy: Tensor  # [K + 1]
    true_logit: Tensor  # [K + 1]

    def auc(self, metric: str = "accuracy") -> float:
        """Area under ``metric`` over the fraction removed (trapezoids on [0, 1]); lower = more faithful."""
        if metric not in METRICS:
            raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")
        return float(torch.trapezoid(getattr(self, metric).double(), self.fraction.double()))


# Drawing needs matplotlib, which only neuroview.viz may import; viz.faithfulness hands its
# plotting function over when it is imported (neuroview/__init__ does), so results can draw
# themselves without this layer importing the one above it.
_plotter: Callable | None = None


def register_plotter(fn: Callable) -> None:
    """Set the function :meth:`DeletionCurves.plot` draws with (``neuroview.viz.faithfulness`` does)."""
    global _plotter
    _plotter = fn


def plotter() -> Callable:
    """The registered drawing function: :func:`neuroview.viz.faithfulness.plot_deletion_curves`."""
    if _plotter is None:
        raise ImportError("deletion curves are drawn by neuroview.viz.faithfulness; import neuroview.viz.faithfulness")
    return _plotter


@dataclass(eq=False)  # by identity, as DeletionCurve
class DeletionCurves:
    """The curves of several orders on the same network and data (``random:<seed>`` per seed)."""

    kind: str  # "units" or "steps"
    curves: dict[str, DeletionCurve]
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it was not run
    notes: dict[str, str] = field(default_factory=dict)  # method -> what to know when reading its curve

    def aucs(self, metric: str = "accuracy") -> dict[str, float]:
        """AUC per method; the random seeds are averaged into ``random`` (their spread in ``random_std``)."""
        out, rand = {}, []
        for name, c in self.curves.items():
            if name.startswith("random:"):
                rand.append(c.auc(metric))
            else:
                out[name] = c.auc(metric)
        if rand:
            t = torch.tensor(rand, dtype=torch.float64)
            out["random"] = float(t.mean())
            out["random_std"] = float(t.std()) if len(rand) > 1 else 0.0
        return out

    def plot(self, metric: str = "accuracy", **kw):
        """:func:`neuroview.viz.faithfulness.plot_deletion_curves` of these curves (a matplotlib Figure)."""
        return plotter()(self, metric, **kw)


# ------------------------------------------------------------------------ orders, masks
def order_from_scores(scores: Tensor, seed: int = 0) -> Tensor:
    """Indices of ``scores`` (last dim) from the highest to the lowest; ties in a random order.

    Ties are common (a hard code of 0 gives a contribution of exactly 0), and breaking them by
    index would remove the first site's units first, a bias of its own.

    >>> order_from_scores(torch.tensor([0.5, 2.0, -1.0]))
    tensor([1, 0, 2])
    """
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(scores.shape[-1], generator=g).to(scores.device)
    idx = scores[..., perm].argsort(dim=-1, descending=True, stable=True)
    return perm[idx]


def _first_k(order: Tensor, k: int) -> Tensor:
    """Bool mask, True at the first ``k`` indices of each row of ``order``."""
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(order.shape[-1], device=order.device).expand_as(order).contiguous())
    return rank < k


def _counts(total: int, steps: int) -> Tensor:
    (steps,) = check_counts(steps=steps)  # points on the curve after 0 (True was read as 1, a numpy 3 refused)
    # Spacing >= 1 before rounding keeps the counts distinct, from 0 to total.
    return torch.linspace(0, total, min(steps, total) + 1).round().long()


def _check_order(order: Tensor, b: int, n: int, what: str) -> Tensor:
    if not isinstance(order, Tensor) or order.dtype.is_floating_point or order.shape not in ((n,), (b, n)):
        got = f"dtype {order.dtype}, shape {tuple(order.shape)}" if isinstance(order, Tensor) else type(order).__name__
        raise ValueError(f"order: expected an integer tensor [{n}] or [{b}, {n}] ranking the {what}, got {got}")
    if not bool((order.sort(-1).values == torch.arange(n, device=order.device)).all()):
        raise ValueError(f"order: expected each row to be a permutation of 0..{n - 1} (the {what})")
    return order.expand(b, n).long()  # an int32/int16/uint8 order failed inside scatter_


# -------------------------------------------------------------------------- unit ablation
@contextmanager
def ablate_units(net: NeuroViewCNN, units) -> Iterator[Tensor]:
    """Remove units of a NeuroView-CNN for the forward passes inside the ``with``.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU()), 2, input_shape=(2,)).eval()
    >>> with ablate_units(net, [("1", 0), ("3", 1)]):
    ...     codes = net.codes(torch.randn(4, 2))
    >>> codes[:, [0, 4]].abs().sum().item()
    0.0

    A removed unit
      - outputs 0 at every position of its site (its activation's output, also for an
        in-place activation), so every layer after it computes with a dead unit and the codes of
        later units change accordingly;
      - has a code of 0, so it adds nothing to any logit (``W[c, u] * 0``). For ReLU-like
        units with ``hard`` or ``soft`` codes this is the state of a unit that is off at every
        position; with ``none`` the code is the output itself.
    Sites are calls: a module called twice has two sites, and only the named call is touched.

    ``units``: code-vector indices, ``(site name, channel)`` pairs (see ``net.units``), or a
    bool mask ``[U]`` (the same units for every sample) or ``[B, U]`` (per sample; the batch
    must then have ``B`` rows). Yields the mask. Nothing is left on the network afterwards, nor on a deep copy of it
    made inside the ``with`` (``copy.deepcopy``, :func:`neuroview.sparsify`, a copy of such a copy), which is ablated
    until then as the network was when copied; an ablation of such a copy is the copy's own (the network's passes are
    not ablated by it), and the ``with`` ends may come in any order. Pickling the network (``torch.save``) inside the
    ``with`` is an error. (A shallow ``copy.copy`` shares the network's modules, so it is ablated as the network is; it
    may keep an emptied holder of the codes hook, which reads and pickles as the hook it held before.) Each pass is
    ablated whole, also a bare call of the backbone (``net.backbone(x)``, the model wrapped) inside the ``with``: a pass
    started inside it (a hook of the user's calling the network, the model or a copy again on another batch) counts its
    sites apart; a backbone whose forward calls itself (a multi-scale network) makes one pass.
    """
    if not isinstance(net, NeuroViewCNN):
        raise TypeError(f"net: expected a NeuroViewCNN, got {type(net).__name__}")
    mask = unit_mask(net, units)
    p = next(net.parameters(), None)
    if p is not None:
        mask = mask.to(p.device)
    hooks = UnitAblation(net, ~mask)
    modules = {s.module: site_module(net, s) for s in net.sites}  # the hooked objects: a name may have moved since
    # the passes of the thread that entered only: another thread's explain of the network is no ablation's
    hooks.here = CodesHooks.enter(net, hooks.zero_codes)
    # prepend=True: our output hook runs before NeuroViewCNN's own (registered during forward),
    # so a code read from a site's output sees the zeroed output.
    handles = []
    try:
        handles.append(net.backbone.register_forward_pre_hook(AblationHook(hooks, net.backbone, None), prepend=True))
        for name in hooks.by_module:
            handles.append(modules[name].register_forward_hook(AblationHook(hooks, modules[name], name), prepend=True))
        yield mask
    finally:
        CodesHooks.leave(net, hooks.here)
        for h in handles:
            h.remove()
        for ref, hook in hooks.copies:  # copies made inside: their hooks go too
            if (module := ref()) is not None:
                remove_hook(module, hook)


@torch.no_grad()
def unit_deletion_curve(net: NeuroViewCNN, x: Tensor, y: Tensor, order: Tensor, *, steps: int = 20,
                        batch_size: int = 256, method: str = "") -> DeletionCurve:
    """Remove units in ``order`` (``[U]`` for all samples, or ``[B, U]`` per sample), most important first.

    The curve has ``min(steps, U) + 1`` points: 0 units removed (the intact network) up to all
    ``U`` (every logit is then the bias).

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(4, 6), nn.ReLU()), 3, input_shape=(4,)).eval()
    >>> c = unit_deletion_curve(net, torch.randn(8, 4), torch.zeros(8, dtype=torch.long), torch.arange(6), steps=3)
    >>> c.count.tolist(), c.fraction.tolist()
    ([0, 2, 4, 6], [0.0, 0.3333333432674408, 0.6666666865348816, 1.0])

    Runs in eval mode; every submodule is left in the mode it was in.
    """
    if not isinstance(net, NeuroViewCNN):
        raise TypeError(f"net: expected a NeuroViewCNN, got {type(net).__name__}")
    rank, layout = cnn_layout(net)
    y = check_xy(x, y, net.num_classes, rank=rank, layout=layout)  # x's rank first: a missing batch axis named as x
    (batch_size,) = check_counts(batch_size=batch_size)
    u = net.num_units
    order = _check_order(order, len(y), u, "units").to(x.device)
    counts = _counts(u, steps)
    acc, logit = [], []
    with eval_mode(net):
        for k in counts.tolist():
            hits, total_logit = 0.0, 0.0
            for xb, yb, ob in zip(x.split(batch_size), y.split(batch_size), order.split(batch_size)):
                with ablate_units(net, _first_k(ob, k)):
                    out = net(xb)
                hits += (out.argmax(1) == yb).sum().item()
                total_logit += out.gather(1, yb[:, None]).sum().item()
            acc.append(hits / len(y))
            logit.append(total_logit / len(y))
    return DeletionCurve(method, counts, counts.float() / u, torch.tensor(acc), torch.tensor(logit))


# ------------------------------------------------------------------------ time steps
def rnn_forward(net: nn.Module, x: Tensor, lengths: Tensor | None) -> Tensor:
    """Logits of a batch-first ``x``, whatever layout the network reads."""
    if getattr(net, "batch_first", True) is False:
        x = x.transpose(0, 1)
    return net(x) if lengths is None else net(x, lengths)


@torch.no_grad()
def step_labels(net: nn.Module, x: Tensor, y: Tensor, lengths) -> tuple[Tensor, Tensor | None]:
    """``(y, lengths)`` of a batch-first ``x [B, T, F]``, checked: labels in ``[0, num_classes)`` of a network
    that names its classes, else of its logits' width (one sample's forward pass, in eval mode)."""
    check_sequences(x)  # first: one series [T, F] is named as x, not as one label per step
    y = check_xy(x, y, num_classes_of(net))
    lengths = check_lengths(x, lengths)
    if lengths is not None and not takes_lengths(net):  # rnn_forward's net(x, lengths) was a bare TypeError
        raise ValueError(f"lengths: expected None for a {type(net).__name__}, whose forward takes no lengths (it reads "
                         "every step of x as given), got a tensor of lengths")
    if num_classes_of(net) is None and len(y):
        with eval_mode(net):
            width = rnn_forward(net, x[:1], None if lengths is None else lengths[:1]).shape[-1]
        check_labels(y, width, "the width of the network's logits")
    return y, lengths


def valid_steps(x: Tensor, lengths: Tensor | None) -> Tensor:
    """``[B, T]`` bool: True at the steps inside each sequence's length."""
    b, t = x.shape[:2]
    if lengths is None:
        return torch.ones(b, t, dtype=torch.bool, device=x.device)
    return torch.arange(t, device=x.device) < torch.as_tensor(lengths, device=x.device)[:, None]


def split_lengths(lengths, b: int, batch_size: int) -> list:
    """``lengths`` in the chunks ``x.split(batch_size)`` makes of ``b`` samples (Nones without lengths)."""
    if lengths is None:
        return [None] * len(range(0, b, batch_size))
    return list(torch.as_tensor(lengths).split(batch_size))


def step_baseline(x: Tensor, baseline, lengths: Tensor | None) -> Tensor:
    """What a deleted step of ``x [B, T, F]`` becomes: zeros, each series' mean over its valid steps
    (whatever its padding holds, NaN included), or a given tensor broadcastable to ``x``."""
    if isinstance(baseline, Tensor):
        return check_baseline(x, baseline).to(x).expand_as(x)
    if isinstance(baseline, str) and baseline == "zero":
        return torch.zeros_like(x)
    if isinstance(baseline, str) and baseline == "mean":
        valid = valid_steps(x, lengths)[..., None]
        # where, not a product: padding may hold NaN (NeuroViewRNN ignores it), and NaN * 0 is NaN
        mean = torch.where(valid, x, x.new_zeros(())).sum(1, keepdim=True) / valid.sum(1, keepdim=True)
        return mean.expand_as(x)
    raise ValueError(f"baseline: expected 'zero', 'mean' or a tensor broadcastable to x, got {baseline!r}")


def delete_steps(x: Tensor, order: Tensor, k: int, baseline="zero", lengths: Tensor | None = None) -> Tensor:
    """``x [B, T, F]`` with the first ``k`` steps of ``order`` (``[T]`` or ``[B, T]``) set to ``baseline``.

    ``baseline``: ``"zero"``, ``"mean"`` (each series' mean over its valid steps) or a tensor.

    >>> delete_steps(torch.arange(4.0).reshape(1, 4, 1), torch.tensor([2, 0, 1, 3]), 2, "mean").flatten().tolist()
    [1.5, 1.0, 1.5, 3.0]
    """
    check_sequences(x)
    k = check_k(k, x.shape[1])
    order = _check_order(order, x.shape[0], x.shape[1], "time steps").to(x.device)
    return torch.where(_first_k(order, k)[..., None], step_baseline(x, baseline, check_lengths(x, lengths)), x)


@torch.no_grad()
def step_deletion_curve(net: nn.Module, x: Tensor, y: Tensor, order: Tensor, *, lengths: Tensor | None = None,
                        baseline="zero", steps: int = 20, batch_size: int = 256, method: str = "") -> DeletionCurve:
    """Replace the input steps of ``x [B, T, F]`` in ``order`` (most important first) by ``baseline``.

    ``min(steps, T) + 1`` points, from 0 steps replaced (the intact network) to all ``T``.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=10).eval()
    >>> c = step_deletion_curve(net, torch.randn(6, 10, 2), torch.zeros(6, dtype=torch.long), torch.arange(10), steps=5)
    >>> c.count.tolist()
    [0, 2, 4, 6, 8, 10]

    Runs in eval mode; every submodule is left in the mode it was in.
    """
    y, lengths = step_labels(net, x, y, lengths)
    (batch_size,) = check_counts(batch_size=batch_size)
    t = x.shape[1]
    order = _check_order(order, len(y), t, "time steps").to(x.device)
    counts = _counts(t, steps)
    base = step_baseline(x, baseline, lengths)
    acc, logit = [], []
    with eval_mode(net):
        for k in counts.tolist():
            xk = torch.where(_first_k(order, k)[..., None], base, x)
            out = torch.cat([rnn_forward(net, xb, lb) for xb, lb in zip(xk.split(batch_size), split_lengths(lengths, len(xk), batch_size))])
            acc.append((out.argmax(1) == y).float().mean().item())
            logit.append(out.gather(1, y[:, None]).mean().item())
    return DeletionCurve(method, counts, counts.float() / t, torch.tensor(acc), torch.tensor(logit))
