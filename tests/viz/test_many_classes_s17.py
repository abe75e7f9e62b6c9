"""The report's figures of every class's units at many classes, and ``unit_heatmap``'s ``classes=``.

Scale probe s17, finding 3: ``top_units`` drew every class (1,000: unfinished after 400 s) and ``unit_heatmap`` had
no ``classes=`` (1,000 class rows of 1.5 px, their labels one black bar), while the report drew its other figures
for the classes present only. The weights here are set by hand, so the rows each figure must hold are known.
"""

from __future__ import annotations

import matplotlib
import pytest
import torch
from torch import nn

matplotlib.use("Agg")

import neuroview as nv  # noqa: E402
from neuroview.viz import plots  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402


def _net(classes: int) -> nv.NeuroViewCNN:
    """Two sites of 3 units; weight [c, u] = c * 10 + u + 1 (no normalization: the raw weights are drawn)."""
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU(), nn.Conv1d(3, 3, 3), nn.ReLU()), classes,
                          input_shape=(1, 16), normalize=False).eval()
    with torch.no_grad():
        net.classifier.weight.copy_(torch.arange(classes)[:, None] * 10.0 + torch.arange(6) + 1)
    return net


def test_unit_heatmap_draws_the_classes_asked_in_their_order():
    fig = plots.unit_heatmap(_net(12), classes=[7, 2, 9], standardized=False, class_names=[f"c{i}" for i in range(12)])
    ax = fig.axes[0]
    block = torch.as_tensor(ax.images[0].get_array().data)
    assert block.shape == (3, 3)
    # each row's weights are c * 10 + u + 1: row order 7, 2, 9; units of site "1" are 1..3 (sorted: any order)
    assert sorted(block[0].tolist()) == [71, 72, 73] and sorted(block[1].tolist()) == [21, 22, 23]
    assert sorted(block[2].tolist()) == [91, 92, 93]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c7", "c2", "c9"]
    with pytest.raises(ValueError, match="classes"):
        plots.unit_heatmap(_net(12), classes=[12])


def test_unit_heatmap_names_one_class_in_n_where_every_name_cannot_be_read():
    fig = plots.unit_heatmap(_net(1000), standardized=False)
    for ax in fig.axes[:2]:
        labels = ax.get_yticklabels()
        every = int(ax.get_ylabel().split("1 in ")[1].split()[0])
        assert ax.get_ylabel() == f"class (1 in {every} named)"
        assert [t.get_text() for t in labels] == [f"class {c}" for c in range(0, 1000, every)]
        height_pt = ax.get_position().height * fig.get_figheight() * 72
        assert height_pt / len(labels) >= 7  # 7 pt labels that do not run into one another
    few = plots.unit_heatmap(_net(10), standardized=False)
    assert few.axes[0].get_ylabel() == "class" and len(few.axes[0].get_yticklabels()) == 10


def test_the_report_draws_every_class_figure_for_the_classes_present_at_most_30(tmp_path, monkeypatch):
    """40 classes; labels: classes 0..29 three samples each, 30..33 one each (34 present): the 30 most frequent are
    drawn, in both figures, and the page says so."""
    net = _net(40)
    y = torch.cat([torch.arange(30).repeat(3), torch.arange(30, 34)])
    x = torch.randn(len(y), 1, 16)
    asked = {}
    for name in ("unit_heatmap", "top_units"):
        original = getattr(plots, name)
        monkeypatch.setattr(plots, name, lambda *a, _f=original, _n=name, **kw: asked.setdefault(_n, kw) and _f(*a, **kw))
    write_report(net, x, y, tmp_path / "r", progress=False, dpi=30, examples=0)
    assert asked["unit_heatmap"]["classes"] == list(range(30))
    assert asked["top_units"]["classes"] == list(range(30))
    page = " ".join(p.read_text() for p in (tmp_path / "r").glob("*.html"))
    assert "Drawn: the 30 classes with the most samples here (34 have one), of 40." in page


def test_unit_heatmap_of_many_sites_puts_panels_side_by_side_each_tall_enough_to_read():
    """24 sites of 4 units, 20 classes: in one column of the figure's 60 in each panel had under 2 in, its 20 labels
    printed over one another (150 sites: titles over the neighbours, the layout collapsed). Side by side, each keeps
    its 20 rows 8 pt apart at least."""
    layers = [nn.Conv1d(1, 4, 3, padding=1), nn.ReLU()]
    for _ in range(23):
        layers += [nn.Conv1d(4, 4, 1), nn.ReLU()]
    net = nv.NeuroViewCNN(nn.Sequential(*layers), 20, input_shape=(1, 16)).eval()
    fig = plots.unit_heatmap(net)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 24
    fig.get_layout_engine().execute(fig)
    for ax in panels:
        assert ax.get_position().height * fig.get_figheight() * 72 >= 20 * 8  # 20 class rows, 8 pt each at least
        assert ax.get_ylabel() == "class"  # every class named
    assert len({round(ax.get_position().x0, 3) for ax in panels}) > 1  # more than one column
