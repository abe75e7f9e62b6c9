"""The regularization path :func:`neuroview.sparsify` walked, as data (:class:`SparsityPath`), the
rule that chooses its point (:func:`choose_point`), and what each point is measured and cut by:
its accuracy and losses, the cross-validation folds, the caps per class (:func:`cap_weights`).

Imports only torch and the leaf :mod:`neuroview._batch`; :mod:`neuroview.viz.sparsity` registers the drawing
of ``.plot()`` here on import (the training layer may not import viz).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .._batch import caller_stacklevel

__all__ = ["SparsityPath", "choose_point", "cap_weights", "group_ids", "point_accuracy", "point_losses", "point_sparsity",
           "stratified_folds", "register_plotter", "walked_path", "Walk"]

_plotter = None


def register_plotter(fn) -> None:
    global _plotter
    _plotter = fn


@dataclass(eq=False)  # by identity, as Explanation: tensors of many values gave torch's bare error
class SparsityPath:
    """The regularization path :func:`neuroview.sparsify` walked, sparsest first."""

    lambdas: Tensor  # [P] penalties
    val_acc: Tensor  # [P] validation accuracy, % (the mean over folds with cross-validation)
    train_acc: Tensor  # [P] accuracy on the codes the point was fitted on, %
    units_per_class: Tensor  # [P] mean number of features with a nonzero weight, per class
    groups_per_class: Tensor  # [P] mean number of groups (steps, hidden units) used per class; = units for "unit"
    chosen: int  # index of the point kept
    reference: float  # the validation accuracy the points are held against, %
    tolerance: float
    validation: str  # how the validation accuracy was measured
    groups: str = "unit"
    num_features: int = 0
    val_loss: Tensor | None = None  # [P] mean validation cross-entropy
    k90: Tensor | None = None  # [P] k90 of each point's decisions on the training split (predicted logit, training
    # mean code): its k90_quantile over the decisions, the median by default
    max_k90: float | None = None  # the readability budget the point was kept under, if any
    k90_steps: Tensor | None = None  # [P] the same counted in time steps (RNNs)
    max_k90_steps: float | None = None  # the budget in steps, if any
    k90_quantile: float = 0.5  # the share of the training decisions the budget holds for
    max_units_per_class: int | None = None  # the cap on the features any class reads, if any
    max_steps_per_class: int | None = None  # the cap on the time steps any class reads (RNNs), if any
    distill: float | None = None  # the temperature of the dense network's probabilities fitted, None: the labels
    min_units_per_class: Tensor | None = None  # [P] the fewest features any one class reads (0: a class reads none)
    extra: dict = field(default_factory=dict)
    # how the point was chosen (None in a path made before they were recorded: a class default, so an older pickle loads)
    deviance: float | None = None  # the share of the path's drop in validation loss a point must keep
    folds: int | None = None  # the cross-validation folds; None where validation data was given
    seed: int | None = None  # the folds' shuffle

    @property
    def deviance_met(self) -> bool | None:
        """Whether the chosen point keeps ``deviance`` of the path's largest drop in mean validation loss (the rule
        :func:`choose_point` holds points to); None where either was not recorded. False where no point within
        ``tolerance`` (and the budget) met it: the most accurate was kept, and :func:`neuroview.sparsify` warned."""
        if self.deviance is None or self.val_loss is None:
            return None
        loss = self.val_loss
        return bool((loss[0] - loss[self.chosen]) >= self.deviance * (loss[0] - loss.min()))

    @property
    def budget_met(self) -> bool | None:
        """Whether the chosen point's k90 (and k90 in steps) is within its budget; None without a budget.
        False where no point of the path met it (:func:`neuroview.sparsify` then keeps the smallest k90, and warns)."""
        budgets = self._budgets()
        return None if not budgets else all(k <= m for _, k, m, _ in budgets)

    def _budgets(self) -> list[tuple[str, float, float, str]]:
        """``(name, k90 of the chosen point, budget, what it counts)`` of each budget set."""
        return [(name, float(k[self.chosen]), m, what) for name, k, m, what in
                (("max_k90", self.k90, self.max_k90, ""), ("max_k90_steps", self.k90_steps, self.max_k90_steps, " steps"))
                if m is not None]

    def to_records(self) -> list[dict]:
        """One dict per point: ``lambda, val_acc, train_acc, units_per_class, groups_per_class, chosen``
        (and ``val_loss``, ``k90``, ``k90_steps`` where they were measured: the deviance rule reads ``val_loss``)."""
        out = [{"lambda": float(lam), "val_acc": float(v), "train_acc": float(t), "units_per_class": float(u),
                "groups_per_class": float(g), "chosen": i == self.chosen}
               for i, (lam, v, t, u, g) in enumerate(zip(self.lambdas, self.val_acc, self.train_acc,
                                                         self.units_per_class, self.groups_per_class))]
        for name in ("val_loss", "k90", "k90_steps"):
            if getattr(self, name) is not None:
                for rec, k in zip(out, getattr(self, name).tolist()):
                    rec[name] = k
        return out

    def plot(self, **kw):
        """:func:`neuroview.viz.sparsity.path_plot`: validation accuracy against units per class (a Figure)."""
        if _plotter is None:
            raise ImportError("sparsity paths are drawn by neuroview.viz.sparsity; import neuroview.viz.sparsity")
        return _plotter(self, **kw)

    def __str__(self) -> str:
        i = self.chosen
        what = "units" if self.groups == "unit" else f"features ({self.groups_per_class[i]:.1f} {self.groups}s)"
        of = "" if self.k90_quantile == 0.5 else f" (for {100 * self.k90_quantile:g}% of the training decisions)"
        budget = "".join(f", k90 {k:g}{what} {'within' if k <= m else 'over the budget of'} {m:g}{of}"
                         for _, k, m, what in self._budgets())
        for cap, of_what in ((self.max_units_per_class, "units"), (self.max_steps_per_class, "steps")):
            budget += "" if cap is None else f", at most {cap} {of_what} per class"
        budget += "" if self.distill is None else f", fitted to the dense network's probabilities at T = {self.distill:g}"
        seed = "" if self.folds is None or self.seed is None else f", folds shuffled by seed {self.seed}"
        met = self.deviance_met
        rule = "" if met is None else f"; deviance rule ({self.deviance:g} of the loss drop) {'met' if met else 'NOT met'}"
        return (f"sparse head: {self.units_per_class[i]:.1f} {what} per class of {self.num_features}; validation "
                f"{self.val_acc[i]:.1f}%{budget} against {self.reference:.1f}% ({self.validation}{seed}; tolerance "
                f"{self.tolerance:g} point{'' if self.tolerance == 1 else 's'}{rule})")


@dataclass(eq=False)  # by identity, as SparsityPath
class Walk:
    """A walk of :func:`neuroview.sparsify`'s path: its points and what they were measured (:func:`walked_path`)."""

    sparse: "torch.nn.Module"  # the copy whose head is filled in, its normalization set to the training codes'
    z: Tensor  # [N, F] the standardized training features
    y: Tensor
    path: list  # [(w, b)] the points walked, sparsest first
    lambdas: Tensor
    val_acc: Tensor
    val_loss: Tensor  # [P, N_val] per-sample validation cross-entropy
    k90: Tensor  # [P] k90 of each point's decisions on the training split (the k90_quantile, default the median)
    k90_steps: Tensor | None  # [P] the same counted in time steps (RNNs)
    reference: float
    how: str
    units: Tensor
    grp: Tensor
    fewest: Tensor  # [P] the fewest features any one class reads

    @property
    def cross_validated(self) -> bool:
        """Whether the validation was carved from the training split by folds (no validation data)."""
        return "cross-validation" in self.how


def walked_path(run, chosen: int, **settings) -> SparsityPath:
    """The :class:`SparsityPath` of a walk of :func:`neuroview.sparsify` (its :class:`Walk`: the points and what
    they were measured), the point ``chosen``, and the ``settings`` it was chosen under (tolerance, budgets, caps)."""
    return SparsityPath(
        lambdas=run.lambdas, val_acc=run.val_acc, train_acc=point_accuracy(run.path, run.z, run.y), units_per_class=run.units,
        groups_per_class=run.grp, chosen=chosen, reference=run.reference, validation=run.how, num_features=run.z.shape[1],
        val_loss=run.val_loss.mean(1), k90=run.k90, k90_steps=run.k90_steps, min_units_per_class=run.fewest, **settings)


def group_ids(net, groups: str, rnn: bool) -> Tensor | None:
    """Each feature's group (``[F]``) of a NeuroView-RNN ``net`` (``rnn``) for ``groups`` ``"step"`` or ``"hidden"``;
    None for ``"unit"`` (each feature alone)."""
    if groups == "unit":
        return None
    if not rnn:
        raise ValueError(f"groups: a NeuroView-CNN's groups are its units ('unit'), got {groups!r}")
    n_l, n_d, n_t, n_h = net.feature_shape
    idx = torch.arange(n_l * n_d * n_t * n_h)  # flat feature index, (l, d, t, h) in C order
    if groups == "step":
        return (idx // n_h) % n_t  # the step t of feature (l, d, t, h)
    return (idx // (n_t * n_h)) * n_h + idx % n_h  # the hidden unit (l, d, h)


def point_accuracy(points: list[tuple[Tensor, Tensor]], x: Tensor, y: Tensor) -> Tensor:
    """``[P]`` each point's accuracy (%) on the features ``x``."""
    return torch.tensor([100.0 * float(((x @ w.T + b).argmax(1) == y).float().mean()) for w, b in points])


def point_losses(points: list[tuple[Tensor, Tensor]], x: Tensor, y: Tensor) -> Tensor:
    """``[P, N]`` each point's cross-entropy on each sample."""
    return torch.stack([torch.nn.functional.cross_entropy(x @ w.T + b, y, reduction="none") for w, b in points]).float()


def point_sparsity(ws: list[Tensor], gid: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``[P]`` each point's mean features per class, mean groups per class (``gid``: each feature's
    group; None: the features themselves), and the fewest features any one class reads."""
    units = torch.tensor([float((w != 0).sum(1).float().mean()) for w in ws])
    fewest = torch.tensor([float((w != 0).sum(1).min()) for w in ws])
    if gid is None:
        return units, units.clone(), fewest
    n_g = int(gid.max()) + 1
    grp = [float((w.new_zeros(w.shape[0], n_g).index_add_(1, gid, (w != 0).to(w.dtype)) > 0).sum(1).float().mean()) for w in ws]
    return units, torch.tensor(grp), fewest


def stratified_folds(y: Tensor, k: int, seed: int) -> list[Tensor]:
    """``k`` stratified folds of the sample indices (every class spread over the folds), fixed by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    out = [[] for _ in range(k)]
    start = 0
    for c in torch.unique(y).tolist():
        idx = (y == c).nonzero()[:, 0].cpu()
        idx = idx[torch.randperm(len(idx), generator=g)]
        for j, i in enumerate(idx.tolist()):
            out[(start + j) % k].append(i)
        start += len(idx)
    return [torch.tensor(sorted(f), dtype=torch.long) for f in out]


def cap_weights(w: Tensor, steps: Tensor | None = None, max_units: int | None = None,
                max_steps: int | None = None) -> Tensor:
    """``w [C, F]`` with each class cut to at most ``max_steps`` time steps (``steps``: each feature's
    step; the steps of largest summed |weight| stay) and then at most ``max_units`` features (the
    largest |weight|): the others set to 0. The features are standardized, so |weight| compares."""
    w = w.clone()
    if max_steps is not None:
        mass = w.new_zeros(len(w), int(steps.max()) + 1).index_add_(1, steps.to(w.device), w.abs())
        top = mass.topk(min(max_steps, mass.shape[1]), dim=1).indices
        w *= torch.zeros_like(mass).scatter_(1, top, 1.0)[:, steps.to(w.device)]
    if max_units is not None:
        top = w.abs().topk(min(max_units, w.shape[1]), dim=1).indices
        w *= torch.zeros_like(w).scatter_(1, top, 1.0)
    return w


def choose_point(val_acc: Tensor, val_loss: Tensor, units: Tensor, reference: float, tolerance: float,
                 deviance: float, groups: Tensor | None = None, k90: Tensor | None = None,
                 max_k90: float | None = None, fewest: Tensor | None = None) -> int:
    """The index of the path point :func:`sparsify` keeps: the sparsest (fewest groups, then fewest
    units) whose validation accuracy is within ``tolerance`` of ``reference`` and that keeps
    ``deviance`` of the largest drop in mean validation cross-entropy (``val_loss [P, N]``) the
    path achieves, from its first point to its best (the first: the whole training split's largest penalty,
    no unit read; under cross-validation a fold's head there may read a few, and is scored so, as
    ``cv.glmnet`` scores the whole data's penalties: the drop counts from their loss). A point whose head reads no unit is
    a constant, never kept; when no point qualifies, the most accurate one.

    ``fewest [P]`` (the fewest features any one class reads, :func:`point_sparsity`): only points where
    every class reads at least one count. A class that reads none has a constant logit: its decisions
    are made by the other classes' logits, and count k90 0, which would meet any budget. Where no
    point has every class read one, the points that read any unit count, with a warning.

    With ``max_k90`` only points whose median k90 (``k90 [P]``) is within it count: the
    rule above among them, else the most accurate of them (ties: the lower validation loss). The
    budget wins over ``tolerance``; when no point meets it, the point of smallest k90 is kept (the
    most accurate of those): :func:`sparsify` warns, and its path's ``budget_met`` is False."""
    groups = units if groups is None else groups
    mean_loss = val_loss.mean(1)
    kept = (mean_loss[0] - mean_loss) >= deviance * (mean_loss[0] - mean_loss.min())
    reads = units > 0
    if fewest is not None:
        if bool((fewest > 0).any()):
            reads = fewest > 0
        else:
            warnings.warn("sparsify: no point of the path has every class read a unit; kept among the points that "
                          "read any (a class that reads none is decided by the other classes' logits alone, and "
                          "its decisions count k90 0)", UserWarning, stacklevel=caller_stacklevel())
    if max_k90 is not None:
        if k90 is None:
            raise ValueError("k90: choose_point needs each point's validation k90 to keep within max_k90")
        pool = reads & (k90 <= max_k90)
        if not bool(pool.any()):  # no point meets it: of the smallest k90, the most accurate (ties: the lower loss)
            pool = reads & (k90 == k90[reads].min())
            best = (pool & (val_acc == val_acc[pool].max())).nonzero()[:, 0].tolist()
            return min(best, key=lambda i: float(mean_loss[i]))
        ok = ((val_acc >= reference - tolerance) & pool & kept).nonzero()[:, 0]
        if not len(ok):
            best = (pool & (val_acc == val_acc[pool].max())).nonzero()[:, 0].tolist()
            return min(best, key=lambda i: float(mean_loss[i]))
    else:
        ok = ((val_acc >= reference - tolerance) & reads & kept).nonzero()[:, 0]
    if not len(ok):
        ok = ((val_acc == val_acc[reads].max()) & reads).nonzero()[:, 0]
        if float(val_acc[ok[0]]) < reference - tolerance:  # kept below the tolerance, which said it would not be
            warnings.warn(f"sparsify: no point of the path it may keep is within tolerance={tolerance:g} points of the "
                          f"reference ({reference:.1f}%); kept the most accurate, {float(val_acc[ok[0]]):.1f}% on "
                          "validation (sparse.sparsity_path has every point)", UserWarning, stacklevel=caller_stacklevel())
    key = [(float(groups[i]), float(units[i]), -float(val_acc[i])) for i in ok.tolist()]
    return int(ok[min(range(len(key)), key=key.__getitem__)])
