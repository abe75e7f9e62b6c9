"""The regularization path :func:`neuroview.sparsify` walked, as data (:class:`SparsityPath`).

Imports only torch; :mod:`neuroview.viz.sparsity` registers the drawing of ``.plot()`` here on
import (the training layer may not import viz).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

__all__ = ["SparsityPath", "register_plotter"]

_plotter = None


def register_plotter(fn) -> None:
    global _plotter
    _plotter = fn


@dataclass
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
    k90: Tensor | None = None  # [P] median k90 of each point's decisions on the training split (predicted logit, training mean code)
    max_k90: float | None = None  # the readability budget the point was kept under, if any
    extra: dict = field(default_factory=dict)

    def to_records(self) -> list[dict]:
        """One dict per point: ``lambda, val_acc, train_acc, units_per_class, groups_per_class, chosen``
        (and ``k90`` where it was measured)."""
        out = [{"lambda": float(lam), "val_acc": float(v), "train_acc": float(t), "units_per_class": float(u),
                "groups_per_class": float(g), "chosen": i == self.chosen}
               for i, (lam, v, t, u, g) in enumerate(zip(self.lambdas, self.val_acc, self.train_acc,
                                                         self.units_per_class, self.groups_per_class))]
        if self.k90 is not None:
            for rec, k in zip(out, self.k90.tolist()):
                rec["k90"] = k
        return out

    def plot(self, **kw):
        """:func:`neuroview.viz.sparsity.path_plot`: validation accuracy against units per class (a Figure)."""
        if _plotter is None:
            raise ImportError("sparsity paths are drawn by neuroview.viz.sparsity; import neuroview.viz.sparsity")
        return _plotter(self, **kw)

    def __str__(self) -> str:
        i = self.chosen
        what = "units" if self.groups == "unit" else f"features ({self.groups_per_class[i]:.1f} {self.groups}s)"
        budget = "" if self.max_k90 is None else f", k90 {float(self.k90[i]):g} within {self.max_k90:g}"
        return (f"sparse head: {self.units_per_class[i]:.1f} {what} per class of {self.num_features}; validation "
                f"{self.val_acc[i]:.1f}%{budget} against {self.reference:.1f}% ({self.validation}; tolerance "
                f"{self.tolerance:g} points)")
