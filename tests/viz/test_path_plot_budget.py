"""The sparsity path's figure shows which points a readability budget ruled out."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from neuroview.training.sparsify import SparsityPath  # noqa: E402
from neuroview.viz.sparsity import path_plot  # noqa: E402


def _path(**kw) -> SparsityPath:
    units = torch.tensor([2.0, 5.0, 12.0, 40.0])
    return SparsityPath(torch.tensor([1.0, 0.3, 0.1, 0.01]), torch.tensor([80.0, 92.0, 96.0, 97.0]),
                        torch.tensor([85.0, 95.0, 99.0, 100.0]), units, units, 1, 97.0, 1.0, "held out", **kw)


def _hollow(fig):
    return [ln for ln in fig.axes[0].lines if ln.get_markerfacecolor() == "white"]


def test_the_points_over_the_budget_are_drawn_hollow_and_only_they():
    # k90 per point 3, 6, 11, 25 against a budget of 10: the last two are out; in steps 2, 9, 4, 12 against 8:
    # the second and fourth; together points 1, 2 and 3
    fig = path_plot(_path(k90=torch.tensor([3.0, 6.0, 11.0, 25.0]), max_k90=10.0,
                          k90_steps=torch.tensor([2.0, 9.0, 4.0, 12.0]), max_k90_steps=8.0))
    (ln,) = _hollow(fig)
    assert ln.get_xdata().tolist() == [5.0, 12.0, 40.0] and ln.get_ydata().tolist() == [92.0, 96.0, 97.0]
    assert "k90 > 10" in ln.get_label() and "k90 in steps > 8" in ln.get_label()
    fig = path_plot(_path(k90=torch.tensor([3.0, 6.0, 11.0, 25.0]), max_k90=10.0))
    assert _hollow(fig)[0].get_xdata().tolist() == [12.0, 40.0]


def test_without_a_budget_or_with_every_point_inside_it_nothing_is_hollow():
    assert not _hollow(path_plot(_path()))
    assert not _hollow(path_plot(_path(k90=torch.tensor([3.0, 6.0, 11.0, 25.0]))))  # measured, no budget
    assert not _hollow(path_plot(_path(k90=torch.tensor([3.0, 6.0, 7.0, 9.0]), max_k90=10.0)))
