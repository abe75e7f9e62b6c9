"""Pictures of faithfulness: deletion curves (:mod:`neuroview.attribution.faithfulness`) as a Figure.

Importing this module hands :func:`plot_deletion_curves` to
:mod:`neuroview.attribution.ablation`, so that ``DeletionCurves.plot()`` draws with it while the
attribution layer never imports viz (``neuroview/__init__`` imports this module).

Imports: torch, :mod:`neuroview.attribution`; matplotlib only inside the drawing function.
"""

from __future__ import annotations

import torch

from ..attribution import ablation
from ..attribution.ablation import METRICS, DeletionCurves

__all__ = ["plot_deletion_curves"]

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
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")
    if not isinstance(curves, DeletionCurves):
        raise TypeError(f"curves: expected DeletionCurves (from unit_ablation or time_step_deletion), got {type(curves).__name__}")
    try:
        from matplotlib.figure import Figure  # noqa: PLC0415 - optional dependency, imported only when drawing
    except ImportError as e:
        raise ImportError("plot_deletion_curves: needs matplotlib (pip install 'neuroview[plots]')") from e
    if ax is None:
        fig = Figure(figsize=(5.5, 3.8), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure.figure  # the root Figure, also for axes in a subfigure (a SubFigure has no savefig)
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
    ax.set_title(("Unit ablation" if curves.kind == "units" else "Time-step deletion") if title is None else title)
    ax.legend(fontsize=7)
    return fig


ablation.register_plotter(plot_deletion_curves)
