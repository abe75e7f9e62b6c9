"""The regularization path of :func:`neuroview.sparsify`: validation accuracy against units per class.

Imports: torch, :mod:`neuroview.training.sparsify` and :mod:`._style`; matplotlib only when drawing.

>>> import torch
>>> from neuroview.training.sparsify import SparsityPath
>>> p = SparsityPath(torch.tensor([1.0, 0.1]), torch.tensor([80.0, 95.0]), torch.tensor([85.0, 99.0]),
...                  torch.tensor([2.0, 30.0]), torch.tensor([2.0, 30.0]), 1, 95.0, 1.0, "held out")
>>> path_plot(p).axes[0].get_xlabel()
'units per class (mean over classes)'
"""

from __future__ import annotations

from ..training import sparsify
from ._style import _figure

__all__ = ["path_plot"]


def path_plot(path, *, title: str | None = None):
    """Validation (and training) accuracy along the path against the features each class reads;
    the point kept is marked, and the band is the tolerance below the reference. Under a readability
    budget (``max_k90``, ``max_k90_steps``) the points it ruled out are drawn hollow; the points where a class reads
    no unit (``min_units_per_class == 0``, never kept) are crossed; the kept point's label says when it is over the
    budget (``budget_met`` False)."""
    if not isinstance(path, sparsify.SparsityPath):  # else a bare AttributeError on its first field
        raise TypeError(f"path: expected a SparsityPath (sparse.sparsity_path), got {type(path).__name__}")
    fig = _figure(5.5, 3.6)
    ax = fig.subplots()
    x = path.units_per_class.numpy()
    ax.plot(x, path.val_acc.numpy(), "o-", ms=3, lw=1.4, label="validation")
    ax.plot(x, path.train_acc.numpy(), "-", lw=1, color="0.6", label="training (fitted on)")
    ax.axhspan(path.reference - path.tolerance, path.reference, color="#4daf4a", alpha=0.15,
               label=f"within {path.tolerance:g} points of the reference")
    ax.axhline(path.reference, color="#4daf4a", lw=0.8)
    over = _over_budget(path)
    if over is not None and over.any():  # the points the budget ruled out, whatever their accuracy
        ax.plot(x[over], path.val_acc.numpy()[over], "o", ms=5, mfc="white", mec="0.35", mew=1, ls="none",
                label="outside the readability budget (" + ", ".join(_budget_names(path)) + ")")
    none = path.min_units_per_class
    none = (none == 0).numpy() if none is not None else None
    if none is not None and none.any():  # choose_point passes these over: drawn as in-budget points they read as kept
        ax.plot(x[none], path.val_acc.numpy()[none], "x", ms=6, mew=1.2, color="0.2", ls="none",
                label="a class reads no unit" if path.groups == "unit" else "a class reads no feature")
    i = path.chosen
    over_note = " (over the budget)" if path.budget_met is False else ""  # no point met it: the smallest k90 was kept
    ax.plot([x[i]], [float(path.val_acc[i])], "*", ms=12, color="#e41a1c",
            label=f"kept: {x[i]:.1f} per class, {float(path.val_acc[i]):.1f}%{over_note}")
    ax.set_xscale("symlog", linthresh=1.0)
    what = "units" if path.groups == "unit" else "features"
    ax.set_xlabel(f"{what} per class (mean over classes)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Sparse global classifier: the regularization path" if title is None else title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def _budget_names(path) -> list[str]:
    return [f"k90{what} > {m:g}" for what, m in (("", path.max_k90), (" in steps", path.max_k90_steps)) if m is not None]


def _over_budget(path):
    """``[P]`` bool (numpy): the points whose k90 (or k90 in steps) is over its budget; None without a budget."""
    over = None
    for k, m in ((path.k90, path.max_k90), (path.k90_steps, path.max_k90_steps)):
        if m is not None and k is not None:
            over = (k > m) if over is None else over | (k > m)
    return None if over is None else over.numpy()


sparsify.register_plotter(path_plot)
