"""Pictures of importance: each function takes a network or an explanation, returns a Figure.

Nothing here computes importance (that is :mod:`neuroview.attribution.importance` and the explanations)
and nothing calls ``plt.show()``: figures are built without pyplot, so they never pile up in
pyplot's global state; save them with ``fig.savefig(path)``, or let a notebook display them.
Signed importance uses a diverging colormap centred at 0 (red adds to the logit, blue takes
from it). matplotlib is an optional extra: ``pip install 'neuroview[plots]'``.

>>> import torch, neuroview as nv
>>> from torch import nn
>>> net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU()), 3).eval()
>>> x = torch.rand(2, 1, 8, 8)
>>> from neuroview.viz import plots
>>> fig = plots.waterfall(net.explain(x), sample=0, class_names=["a", "b", "c"])
>>> type(fig).__name__
'Figure'

CNN: :func:`unit_heatmap`, :func:`top_units`, :func:`waterfall`, :func:`spatial_maps`.
RNN: :func:`time_importance`, :func:`layer_time`, :func:`sample_time` (and :func:`waterfall`
over time steps). Both: :func:`class_layer_summary`, :func:`unit_gallery_plot` (what each unit
or step responds to in the training data; ``waterfall`` and ``top_units`` take it as ``gallery=``). Faithfulness: :func:`plot_deletion_curves`.

The functions live by subject in :mod:`~neuroview.viz.units` (CNN), :mod:`~neuroview.viz.temporal`
(RNN), :mod:`~neuroview.viz.decision` (both) and :mod:`~neuroview.viz.faithfulness`, with the
shared look in :mod:`~neuroview.viz._style`; this module gathers them. Imports: those modules only.
"""

from __future__ import annotations

from .decision import class_layer_summary, waterfall
from .faithfulness import plot_deletion_curves
from .gallery import unit_gallery_plot
from .temporal import layer_time, sample_time, time_importance
from .units import spatial_maps, top_units, unit_heatmap

__all__ = [
    "unit_heatmap",
    "top_units",
    "waterfall",
    "spatial_maps",
    "time_importance",
    "layer_time",
    "sample_time",
    "class_layer_summary",
    "plot_deletion_curves",
    "unit_gallery_plot",
]
