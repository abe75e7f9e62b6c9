"""Faithfulness: does removing what an importance ranking calls important hurt the decision?

Two deletion tests, each comparing NeuroView's own importance with what users would use
instead, on the same network and the same data:

- **Unit ablation** (NeuroView-CNN, :func:`unit_ablation`): units are removed *inside* the
  backbone (see :func:`ablate_units`), most important first, and accuracy and the mean
  true-class logit are recorded as more are removed. Orders: ``neuroview`` (each sample's
  exact contributions to its true class), ``neuroview_global`` (the true class's standardized
  global weights, :meth:`NeuroViewCNN.unit_importance`), ``random`` (several seeds) and, when
  captum is installed, ``layer_grad_x_act`` / ``layer_conductance`` (Captum's
  LayerGradientXActivation / LayerConductance of the same units, summed over positions).
- **Time-step deletion** (RNNs, :func:`time_step_deletion`): the most important input steps
  are replaced by a baseline (zeros or each series' mean). Orders: ``neuroview`` (each
  sample's per-step contributions), ``neuroview_global`` (:meth:`NeuroViewRNN.time_importance`),
  ``random``, ``integrated_gradients`` (Captum, summed over features per step) and
  ``permutation`` (drop of the true-class logit when a step is swapped with another sample's).

The lower the area under a curve (:meth:`DeletionCurve.auc`, fraction removed on [0, 1]),
the sooner the order found what the decision rests on.

>>> import torch, neuroview as nv
>>> from torch import nn
>>> from neuroview.attribution.faithfulness import unit_ablation
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 16)).eval()
>>> x, y = torch.randn(32, 1, 16), torch.randint(0, 3, (32,))
>>> res = unit_ablation(net, x, y, methods=["neuroview", "random"], seeds=[0, 1])
>>> sorted(res.curves), res.curves["neuroview"].accuracy.shape   # 4 units: 0..4 removed
(['neuroview', 'random:0', 'random:1'], torch.Size([5]))
"""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

from ..core.cnn import NeuroViewCNN

__all__ = [
    "DeletionCurve", "DeletionCurves", "ablate_units", "unit_scores", "unit_deletion_curve", "unit_ablation",
    "delete_steps", "step_scores", "step_deletion_curve", "time_step_deletion", "order_from_scores",
    "plot_deletion_curves", "UNIT_METHODS", "STEP_METHODS",
]

UNIT_METHODS = ("neuroview", "neuroview_global", "random", "layer_grad_x_act", "layer_conductance")
STEP_METHODS = ("neuroview", "neuroview_global", "random", "integrated_gradients", "permutation")
_CAPTUM = {"layer_grad_x_act", "layer_conductance", "integrated_gradients"}
_METRICS = ("accuracy", "true_logit")


def has_captum() -> bool:
    return importlib.util.find_spec("captum") is not None


# ----------------------------------------------------------------------------- results
@dataclass
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
        if metric not in _METRICS:
            raise ValueError(f"metric: expected one of {_METRICS}, got {metric!r}")
        return float(torch.trapezoid(getattr(self, metric).double(), self.fraction.double()))


@dataclass
class DeletionCurves:
    """The curves of several orders on the same network and data (``random:<seed>`` per seed)."""

    kind: str  # "units" or "steps"
    curves: dict[str, DeletionCurve]
    skipped: dict[str, str] = field(default_factory=dict)  # method -> why it was not run

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
        """:func:`plot_deletion_curves` of these curves."""
        return plot_deletion_curves(self, metric, **kw)


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
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected a positive int (points on the curve after 0), got {steps!r}")
    # Spacing >= 1 before rounding keeps the counts distinct, from 0 to total.
    return torch.linspace(0, total, min(steps, total) + 1).round().long()


def _check_order(order: Tensor, b: int, n: int, what: str) -> Tensor:
    if not isinstance(order, Tensor) or order.dtype.is_floating_point or order.shape not in ((n,), (b, n)):
        got = f"dtype {order.dtype}, shape {tuple(order.shape)}" if isinstance(order, Tensor) else type(order).__name__
        raise ValueError(f"order: expected an integer tensor [{n}] or [{b}, {n}] ranking the {what}, got {got}")
    if not bool((order.sort(-1).values == torch.arange(n, device=order.device)).all()):
        raise ValueError(f"order: expected each row to be a permutation of 0..{n - 1} (the {what})")
    return order.expand(b, n)


def _check_xy(x: Tensor, y: Tensor) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    y = torch.as_tensor(y, device=x.device)
    if y.dtype.is_floating_point or y.shape != (x.shape[0],):
        raise ValueError(f"y: expected integer class labels of shape [{x.shape[0]}], got dtype {y.dtype} and shape {tuple(y.shape)}")
    return y.long()


# -------------------------------------------------------------------------- unit ablation
def _unit_mask(net: NeuroViewCNN, units) -> Tensor:
    u = net.num_units
    if isinstance(units, Tensor) and units.dtype == torch.bool:
        if units.dim() not in (1, 2) or units.shape[-1] != u:
            raise ValueError(f"units: expected a bool mask [{u}] or [B, {u}], got shape {tuple(units.shape)}")
        return units
    index = {unit: i for i, unit in enumerate(net.units)}
    mask = torch.zeros(u, dtype=torch.bool)
    for item in (units.tolist() if isinstance(units, Tensor) else units):
        if isinstance(item, tuple):
            if item not in index:
                raise ValueError(f"units: no unit {item!r}; expected (site name, channel) from net.units, e.g. {net.units[0]}")
            mask[index[item]] = True
        elif isinstance(item, int) and 0 <= item < u:
            mask[item] = True
        else:
            raise ValueError(f"units: expected code-vector indices in [0, {u}), (site, channel) pairs or a bool mask, got {item!r}")
    return mask


@contextmanager
def ablate_units(net: NeuroViewCNN, units) -> Iterator[Tensor]:
    """Remove units of a NeuroView-CNN for the forward passes inside the ``with``.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU()), 2).eval()
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
    must then have ``B`` rows). Yields the mask. Nothing is left on the network afterwards.
    """
    if not isinstance(net, NeuroViewCNN):
        raise TypeError(f"net: expected a NeuroViewCNN, got {type(net).__name__}")
    mask = _unit_mask(net, units)
    p = next(net.parameters(), None)
    if p is not None:
        mask = mask.to(p.device)
    keep = ~mask
    slices = list(net.site_slices.values())
    by_module: dict[str, list[int]] = {}
    for k, s in enumerate(net.sites):
        by_module.setdefault(s.module, []).append(k)
    modules = dict(net.backbone.named_modules())
    calls: dict[str, int] = {}

    def view(k: int, t: Tensor) -> Tensor:
        m = keep[..., slices[k]]
        if m.dim() == 2 and m.shape[0] != t.shape[0]:
            raise ValueError(f"units: a per-sample mask has {m.shape[0]} rows, the batch has {t.shape[0]} samples")
        m = m if m.dim() == 2 else m[None]
        return m.reshape(*m.shape, *([1] * (t.dim() - 2)))

    def reset(module, args):
        calls.clear()

    def zero_output(module, args, output, name):
        j = calls.get(name, 0)
        calls[name] = j + 1
        if j >= len(by_module[name]) or not isinstance(output, Tensor):
            return None  # a call that is no site: NeuroViewCNN's own check reports a changed path
        k = by_module[name][j]
        if bool(keep[..., slices[k]].all()):
            return None
        # where, not a product: an activation may give inf, and inf * 0 is NaN
        return torch.where(view(k, output), output, output.new_zeros(()))

    def zero_codes(codes: Tensor, maps: list[Tensor]):
        if keep.dim() == 2 and keep.shape[0] != codes.shape[0]:
            raise ValueError(f"units: a per-sample mask has {keep.shape[0]} rows, the batch has {codes.shape[0]} samples")
        codes = torch.where(keep, codes, codes.new_zeros(()))
        maps = [torch.where(view(k, m), m, m.new_zeros(())) for k, m in enumerate(maps)]
        return codes, maps

    # prepend=True: our output hook runs before NeuroViewCNN's own (registered during forward),
    # so a code read from a site's output sees the zeroed output.
    handles = [net.backbone.register_forward_pre_hook(reset, prepend=True)]
    try:
        for name in by_module:
            handles.append(modules[name].register_forward_hook(
                lambda mod, a, out, name=name: zero_output(mod, a, out, name), prepend=True))
        previous = net._codes_hook
        net._codes_hook = zero_codes if previous is None else (lambda c, m: zero_codes(*previous(c, m)))
        try:
            yield mask
        finally:
            net._codes_hook = previous
    finally:
        for h in handles:
            h.remove()


def _sites_called_once(net: NeuroViewCNN) -> str | None:
    seen: dict[str, int] = {}
    for s in net.sites:
        seen[s.module] = seen.get(s.module, 0) + 1
    twice = [m for m, n in seen.items() if n > 1]
    return (f"modules {twice} are called more than once per forward pass, and Captum's layer attribution "
            "attaches to a module, not to one call") if twice else None


def unit_scores(net: NeuroViewCNN, x: Tensor, y: Tensor, method: str, *, seed: int = 0, n_steps: int = 50,
                batch_size: int = 256) -> Tensor:
    """``[B, U]`` importance of each unit for each sample's true class ``y`` by ``method``.

    ``neuroview``: the exact contributions ``W[y, u] * c_u(x)``; ``neuroview_global``: the
    standardized weights ``unit_importance(standardized=True)[y]``; ``random``: uniform noise;
    ``layer_grad_x_act`` / ``layer_conductance`` (captum): the attribution of each site's
    unit (its pre-activation when the code is read from there, else its output) to ``y``,
    summed over positions (LayerConductance with ``n_steps`` and a zero baseline).

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(4, 6), nn.ReLU()), 3).eval()
    >>> unit_scores(net, torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]), "neuroview").shape
    torch.Size([5, 6])
    """
    y = _check_xy(x, y)
    if method not in UNIT_METHODS:
        raise ValueError(f"method: expected one of {UNIT_METHODS}, got {method!r}")
    net.eval()
    if method == "neuroview":
        return torch.cat([net.explain(xb).contributions[torch.arange(len(yb)), yb]
                          for xb, yb in zip(x.split(batch_size), y.split(batch_size))])
    if method == "neuroview_global":
        return net.unit_importance(standardized=True).to(x.device)[y]
    if method == "random":
        return torch.rand(len(y), net.num_units, generator=torch.Generator().manual_seed(seed)).to(x.device)
    if not has_captum():
        raise ImportError(f"method={method!r} needs captum (pip install 'neuroview[bench]')")
    why = _sites_called_once(net)
    if why:
        raise ValueError(f"method={method!r}: {why}; compare on a network whose activation modules are each called once")
    return _captum_unit_scores(net, x, y, method, n_steps, batch_size)


def _captum_unit_scores(net, x, y, method, n_steps, batch_size) -> Tensor:
    from captum.attr import LayerConductance, LayerGradientXActivation  # noqa: PLC0415

    modules = dict(net.backbone.named_modules())
    # The code of an activation site (hard/soft) is read from the pre-activation, which also
    # feeds everything downstream: attributing to the layer input covers both paths.
    to_input = [s.from_input and net.quantizer != "none" for s in net.sites]
    per_site: list[list[Tensor]] = [[] for _ in net.sites]
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        for k, s in enumerate(net.sites):
            layer = modules[s.module]
            if method == "layer_grad_x_act":
                a = LayerGradientXActivation(net, layer).attribute(xb, target=yb, attribute_to_layer_input=to_input[k])
            else:
                a = LayerConductance(net, layer).attribute(
                    xb, target=yb, n_steps=n_steps, attribute_to_layer_input=to_input[k],
                    internal_batch_size=max(2 * len(yb), 512))  # Captum needs >= 2 x the batch here
            a = a[0] if isinstance(a, (tuple, list)) else a
            per_site[k].append((a.flatten(2).sum(-1) if a.dim() > 2 else a).detach())
    return torch.cat([torch.cat(parts) for parts in per_site], 1)


@torch.no_grad()
def unit_deletion_curve(net: NeuroViewCNN, x: Tensor, y: Tensor, order: Tensor, *, steps: int = 20,
                        batch_size: int = 256, method: str = "") -> DeletionCurve:
    """Remove units in ``order`` (``[U]`` for all samples, or ``[B, U]`` per sample), most important first.

    The curve has ``min(steps, U) + 1`` points: 0 units removed (the intact network) up to all
    ``U`` (every logit is then the bias).

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(4, 6), nn.ReLU()), 3).eval()
    >>> c = unit_deletion_curve(net, torch.randn(8, 4), torch.zeros(8, dtype=torch.long), torch.arange(6), steps=3)
    >>> c.count.tolist(), c.fraction.tolist()
    ([0, 2, 4, 6], [0.0, 0.3333333432674408, 0.6666666865348816, 1.0])
    """
    y = _check_xy(x, y)
    u = net.num_units
    order = _check_order(order, len(y), u, "units").to(x.device)
    counts = _counts(u, steps)
    net.eval()
    acc, logit = [], []
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


def unit_ablation(net: NeuroViewCNN, x: Tensor, y: Tensor, *, methods: Sequence[str] | None = None,
                  seeds: Sequence[int] = (0, 1, 2), steps: int = 20, n_steps: int = 50,
                  batch_size: int = 256) -> DeletionCurves:
    """Unit-ablation curves of several orders (default: every method that can run here).

    Captum methods are skipped, with the reason in ``.skipped``, when captum is not installed
    or a site module is called more than once; an explicitly requested one raises instead.
    """
    if not isinstance(net, NeuroViewCNN):
        raise TypeError(f"net: expected a NeuroViewCNN, got {type(net).__name__}")
    explicit = methods is not None
    methods = _check_methods(methods, UNIT_METHODS)
    curves, skipped = {}, {}
    for m in methods:
        if m in _CAPTUM and not explicit:
            why = "captum is not installed (pip install 'neuroview[bench]')" if not has_captum() else _sites_called_once(net)
            if why:
                skipped[m] = why
                continue
        for seed in (seeds if m == "random" else [0]):
            scores = unit_scores(net, x, y, m, seed=seed, n_steps=n_steps, batch_size=batch_size)
            name = f"random:{seed}" if m == "random" else m
            curves[name] = unit_deletion_curve(net, x, y, order_from_scores(scores, seed), steps=steps,
                                               batch_size=batch_size, method=name)
    return DeletionCurves("units", curves, skipped)


# ------------------------------------------------------------------------ time steps
def _rnn_forward(net: nn.Module, x: Tensor, lengths: Tensor | None) -> Tensor:
    """Logits of a batch-first ``x``, whatever layout the network reads."""
    if getattr(net, "batch_first", True) is False:
        x = x.transpose(0, 1)
    return net(x) if lengths is None else net(x, lengths)


def _valid_steps(x: Tensor, lengths: Tensor | None) -> Tensor:
    b, t = x.shape[:2]
    if lengths is None:
        return torch.ones(b, t, dtype=torch.bool, device=x.device)
    return torch.arange(t, device=x.device) < torch.as_tensor(lengths, device=x.device)[:, None]


def _split_lengths(lengths, b: int, batch_size: int) -> list:
    if lengths is None:
        return [None] * len(range(0, b, batch_size))
    return list(torch.as_tensor(lengths).split(batch_size))


def _baseline(x: Tensor, baseline, lengths: Tensor | None) -> Tensor:
    if isinstance(baseline, Tensor):
        return baseline.to(x).expand_as(x)
    if baseline == "zero":
        return torch.zeros_like(x)
    if baseline == "mean":
        valid = _valid_steps(x, lengths)[..., None]
        mean = (x * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True)
        return mean.expand_as(x)
    raise ValueError(f"baseline: expected 'zero', 'mean' or a tensor broadcastable to x, got {baseline!r}")


def delete_steps(x: Tensor, order: Tensor, k: int, baseline="zero", lengths: Tensor | None = None) -> Tensor:
    """``x [B, T, F]`` with the first ``k`` steps of ``order`` (``[T]`` or ``[B, T]``) set to ``baseline``.

    ``baseline``: ``"zero"``, ``"mean"`` (each series' mean over its valid steps) or a tensor.

    >>> delete_steps(torch.arange(4.0).reshape(1, 4, 1), torch.tensor([2, 0, 1, 3]), 2, "mean").flatten().tolist()
    [1.5, 1.0, 1.5, 3.0]
    """
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise ValueError(f"x: expected a batch-first tensor [B, T, F], got {tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    order = _check_order(order, x.shape[0], x.shape[1], "time steps").to(x.device)
    return torch.where(_first_k(order, k)[..., None], _baseline(x, baseline, lengths), x)


def step_scores(net: nn.Module, x: Tensor, y: Tensor, method: str, *, lengths: Tensor | None = None, seed: int = 0,
                baseline="zero", n_steps: int = 50, repeats: int = 1, batch_size: int = 256) -> Tensor:
    """``[B, T]`` importance of each input step of batch-first ``x [B, T, F]`` for the true class ``y``.

    ``neuroview``: each sample's exact step contributions (``explain(...).time_importance``);
    ``neuroview_global``: ``time_importance()[y]`` (the norm of the step's weights);
    ``random``; ``integrated_gradients`` (captum, from ``baseline``, summed over features);
    ``permutation``: the drop of the true-class logit when step t is swapped with the same
    step of other samples (a random permutation of the batch; ``repeats`` averaged). Steps past
    a sequence's length get ``-inf`` so they come last. The NeuroView methods need a
    NeuroViewRNN; the others take any network called as ``net(x[, lengths])``.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=10).eval()
    >>> step_scores(net, torch.randn(5, 10, 2), torch.tensor([0, 1, 2, 0, 1]), "permutation").shape
    torch.Size([5, 10])
    """
    from ..core.rnn import NeuroViewRNN  # noqa: PLC0415

    y = _check_xy(x, y)
    if method not in STEP_METHODS:
        raise ValueError(f"method: expected one of {STEP_METHODS}, got {method!r}")
    if x.dim() != 3:
        raise ValueError(f"x: expected a batch-first tensor [B, T, F], got shape {tuple(x.shape)}")
    b, t, _ = x.shape
    net.eval()
    if method.startswith("neuroview") and not isinstance(net, NeuroViewRNN):
        raise TypeError(f"method={method!r}: needs a NeuroViewRNN, got {type(net).__name__}")
    lchunks = _split_lengths(lengths, b, batch_size)
    if method == "neuroview":
        with torch.no_grad():
            s = torch.cat([
                net.explain(xb if net.batch_first else xb.transpose(0, 1), lb).time_importance[torch.arange(len(yb)), yb, :t]
                for xb, yb, lb in zip(x.split(batch_size), y.split(batch_size), lchunks)])
    elif method == "neuroview_global":
        s = net.time_importance().to(x.device)[y, :t]
    elif method == "random":
        s = torch.rand(b, t, generator=torch.Generator().manual_seed(seed)).to(x.device)
    elif method == "permutation":
        s = _permutation_scores(net, x, y, lengths, seed, repeats, batch_size)
    else:
        if not has_captum():
            raise ImportError(f"method={method!r} needs captum (pip install 'neuroview[bench]')")
        from captum.attr import IntegratedGradients  # noqa: PLC0415

        ig = IntegratedGradients(lambda inp, ln=None: _rnn_forward(net, inp, ln))
        parts = []
        for xb, yb, lb in zip(x.split(batch_size), y.split(batch_size), lchunks):
            base = _baseline(xb, baseline, lb).contiguous()
            a = ig.attribute(xb, baselines=base, target=yb, n_steps=n_steps, internal_batch_size=max(len(yb), 256),
                             additional_forward_args=None if lb is None else (lb,))
            parts.append(a.sum(-1).detach())
        s = torch.cat(parts)
    return torch.where(_valid_steps(x, lengths), s, s.new_full((), float("-inf")))


@torch.no_grad()
def _permutation_scores(net, x, y, lengths, seed, repeats, batch_size) -> Tensor:
    def true_logit(inp):
        ls = _split_lengths(lengths, len(inp), batch_size)
        return torch.cat([_rnn_forward(net, xb, lb).gather(1, yb[:, None])[:, 0]
                          for xb, yb, lb in zip(inp.split(batch_size), y.split(batch_size), ls)])

    g = torch.Generator().manual_seed(seed)
    base = true_logit(x)
    out = torch.zeros(x.shape[:2], device=x.device)
    for _ in range(repeats):
        for step in range(x.shape[1]):
            perm = torch.randperm(len(x), generator=g).to(x.device)
            xp = x.clone()
            xp[:, step] = x[perm, step]
            out[:, step] += base - true_logit(xp)
    return out / repeats


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
    """
    y = _check_xy(x, y)
    if x.dim() != 3:
        raise ValueError(f"x: expected a batch-first tensor [B, T, F], got shape {tuple(x.shape)}")
    t = x.shape[1]
    order = _check_order(order, len(y), t, "time steps").to(x.device)
    counts = _counts(t, steps)
    base = _baseline(x, baseline, lengths)
    net.eval()
    acc, logit = [], []
    for k in counts.tolist():
        xk = torch.where(_first_k(order, k)[..., None], base, x)
        out = torch.cat([_rnn_forward(net, xb, lb) for xb, lb in zip(xk.split(batch_size), _split_lengths(lengths, len(xk), batch_size))])
        acc.append((out.argmax(1) == y).float().mean().item())
        logit.append(out.gather(1, y[:, None]).mean().item())
    return DeletionCurve(method, counts, counts.float() / t, torch.tensor(acc), torch.tensor(logit))


def time_step_deletion(net: nn.Module, x: Tensor, y: Tensor, *, lengths: Tensor | None = None,
                       methods: Sequence[str] | None = None, seeds: Sequence[int] = (0, 1, 2), baseline="zero",
                       steps: int = 20, n_steps: int = 50, repeats: int = 1, batch_size: int = 256) -> DeletionCurves:
    """Time-step deletion curves of several orders on batch-first ``x [B, T, F]``.

    Default methods: every one that can run (the NeuroView ones need a NeuroViewRNN,
    ``integrated_gradients`` needs captum); what was skipped, and why, is in ``.skipped``.
    """
    from ..core.rnn import NeuroViewRNN  # noqa: PLC0415

    explicit = methods is not None
    methods = _check_methods(methods, STEP_METHODS)
    curves, skipped = {}, {}
    for m in methods:
        if not explicit:
            if m in _CAPTUM and not has_captum():
                skipped[m] = "captum is not installed (pip install 'neuroview[bench]')"
                continue
            if m.startswith("neuroview") and not isinstance(net, NeuroViewRNN):
                skipped[m] = f"needs a NeuroViewRNN, got {type(net).__name__}"
                continue
        for seed in (seeds if m == "random" else [0]):
            scores = step_scores(net, x, y, m, lengths=lengths, seed=seed, baseline=baseline, n_steps=n_steps,
                                 repeats=repeats, batch_size=batch_size)
            name = f"random:{seed}" if m == "random" else m
            curves[name] = step_deletion_curve(net, x, y, order_from_scores(scores, seed), lengths=lengths,
                                               baseline=baseline, steps=steps, batch_size=batch_size, method=name)
    return DeletionCurves("steps", curves, skipped)


# ------------------------------------------------------------------------------ plots
_LABELS = {
    "neuroview": "NeuroView (per sample)", "neuroview_global": "NeuroView (global)", "random": "random",
    "layer_grad_x_act": "Captum LayerGradientXActivation", "layer_conductance": "Captum LayerConductance",
    "integrated_gradients": "Captum IntegratedGradients", "permutation": "permutation importance",
}


def plot_deletion_curves(curves: DeletionCurves, metric: str = "accuracy", *, ax=None, title: str | None = None):
    """A matplotlib ``Figure``: ``metric`` against the fraction removed, one line per order.

    Random seeds are drawn as their mean with a band from their min to their max; the legend
    gives each order's AUC. Needs matplotlib (``pip install 'neuroview[plots]'``); no pyplot.
    """
    if metric not in _METRICS:
        raise ValueError(f"metric: expected one of {_METRICS}, got {metric!r}")
    if not isinstance(curves, DeletionCurves):
        raise TypeError(f"curves: expected DeletionCurves (from unit_ablation or time_step_deletion), got {type(curves).__name__}")
    try:
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError as e:
        raise ImportError("plot_deletion_curves: needs matplotlib (pip install 'neuroview[plots]')") from e
    if ax is None:
        fig = Figure(figsize=(5.5, 3.8), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    aucs = curves.aucs(metric)
    rand = [c for n, c in curves.curves.items() if n.startswith("random:")]
    for name, c in curves.curves.items():
        if name.startswith("random:"):
            continue
        ax.plot(c.fraction.numpy(), getattr(c, metric).numpy(), label=f"{_LABELS.get(name, name)} (AUC {aucs[name]:.3f})",
                lw=2 if name == "neuroview" else 1.3)
    if rand:
        vals = torch.stack([getattr(c, metric) for c in rand])
        f = rand[0].fraction.numpy()
        line, = ax.plot(f, vals.mean(0).numpy(), color="gray", ls="--",
                        label=f"random, {len(rand)} seeds (AUC {aucs['random']:.3f})")
        ax.fill_between(f, vals.min(0).values.numpy(), vals.max(0).values.numpy(), color=line.get_color(), alpha=0.2)
    what = "units removed" if curves.kind == "units" else "time steps replaced"
    ax.set_xlabel(f"fraction of {what}, most important first")
    ax.set_ylabel("accuracy" if metric == "accuracy" else "mean true-class logit")
    ax.set_title(title or ("Unit ablation" if curves.kind == "units" else "Time-step deletion"))
    ax.legend(fontsize=7)
    return fig


def _check_methods(methods, allowed: tuple[str, ...]) -> list[str]:
    """``methods`` as a list (all of ``allowed`` when None), refusing unknown names."""
    methods = list(allowed if methods is None else methods)
    bad = [m for m in methods if m not in allowed]
    if bad:
        raise ValueError(f"methods: expected names from {allowed}, got {bad}")
    return methods
