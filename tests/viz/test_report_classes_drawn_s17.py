"""Which classes the report's weight figures draw, and what ``unit_heatmap``'s titles count with ``classes=``.

Review revC of e03e98e, findings 2 and 3: ``unit_heatmap.png`` and ``top_units.png`` draw the model's weights, not the
batch, yet a 10-class model's report drew only the classes in the explained labels (3 of 10; no labels: the predicted
ones), captioned "the 1 classes"; every class is drawn up to 30 classes, as before e03e98e, and only above 30 the
classes present (at most the 30 most frequent). ``unit_heatmap(classes=[1])`` titled a site that class 0 reads "none
read by any class". The weights are set by hand, so the rows, panels and counts each figure must show are known.
"""

from __future__ import annotations

import matplotlib
import torch
from torch import nn

matplotlib.use("Agg")

import neuroview as nv  # noqa: E402
from neuroview.viz import plots  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402


def _net(classes: int, winner: int | None = None) -> nv.NeuroViewCNN:
    """Two sites of 3 units; weight [c, u] = c * 10 + u + 1, bias 0 (no normalization: the raw weights are drawn);
    ``winner``: a bias of 1e6 on that class, so every sample is predicted as it."""
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU(), nn.Conv1d(3, 3, 3), nn.ReLU()), classes,
                          input_shape=(1, 16), normalize=False).eval()
    with torch.no_grad():
        net.classifier.weight.copy_(torch.arange(classes)[:, None] * 10.0 + torch.arange(6) + 1)
        net.classifier.bias.zero_()
        if winner is not None:
            net.classifier.bias[winner] = 1e6
    return net


def _report(tmp_path, monkeypatch, net, y, n: int = 12):
    """``write_report`` of ``net`` on ``n`` samples: (the heatmap's class rows by their first weight, the top_units
    panels' titles, the page's text)."""
    drawn = {}
    for name in ("unit_heatmap", "top_units"):
        original = getattr(plots, name)

        def spy(*a, _f=original, _n=name, **kw):  # read before the report closes the figure
            fig = _f(*a, **kw)
            drawn[_n] = (torch.as_tensor(fig.axes[0].images[0].get_array().data) if _n == "unit_heatmap" else
                         [ax.get_title() for ax in fig.axes if ax.get_title()])
            return fig
        monkeypatch.setattr(plots, name, spy)
    torch.manual_seed(0)
    write_report(net, torch.randn(n, 1, 16), y, tmp_path / "r", progress=False, dpi=30, examples=0)
    # a row's smallest weight is c * 10 + 1 (site "1" holds units 0..2): the class each row draws
    rows = [int(v) // 10 for v in drawn["unit_heatmap"].amin(1).tolist()]
    titles = drawn["top_units"]
    page = " ".join(p.read_text() for p in (tmp_path / "r").glob("*.html"))
    return rows, titles, page


def test_up_to_30_classes_the_weight_figures_draw_every_class_with_labels_of_3(tmp_path, monkeypatch):
    rows, titles, page = _report(tmp_path, monkeypatch, _net(10), torch.arange(12) % 3)
    assert rows == list(range(10))
    assert titles == [f"class {c}" for c in range(10)]
    assert "Drawn:" not in page


def test_up_to_30_classes_the_weight_figures_draw_every_class_without_labels(tmp_path, monkeypatch):
    rows, titles, page = _report(tmp_path, monkeypatch, _net(10, winner=4), None)
    assert rows == list(range(10)) and len(titles) == 10
    assert "Drawn:" not in page


def test_at_30_classes_one_labelled_class_still_draws_all_30(tmp_path, monkeypatch):
    rows, titles, page = _report(tmp_path, monkeypatch, _net(30), torch.full((12,), 4))
    assert rows == list(range(30)) and len(titles) == 30
    assert "Drawn:" not in page


def test_above_30_classes_one_labelled_class_is_drawn_and_the_caption_says_one_class(tmp_path, monkeypatch):
    rows, titles, page = _report(tmp_path, monkeypatch, _net(31), torch.full((12,), 4))
    assert rows == [4] and titles == ["class 4"]
    assert "Drawn: the 1 class with a sample here, of 31." in page
    assert "1 classes" not in page


def test_above_30_classes_without_labels_the_predicted_classes_are_drawn(tmp_path, monkeypatch):
    rows, titles, page = _report(tmp_path, monkeypatch, _net(31, winner=7), None)
    assert rows == [7] and titles == ["class 7"]
    assert "Drawn: the 1 class predicted for a sample here, of 31." in page


def test_above_30_classes_three_labelled_classes_are_drawn_in_index_order(tmp_path, monkeypatch):
    rows, titles, page = _report(tmp_path, monkeypatch, _net(31), torch.tensor([20, 5, 9] * 4))
    assert rows == [5, 9, 20] and titles == ["class 5", "class 9", "class 20"]
    assert "Drawn: the 3 classes with a sample here, of 31." in page


def _sparse() -> nv.NeuroViewCNN:
    """Two sites of 6 units, 3 classes: class 0 reads every unit of site "1" (weights 1..6), class 1 every unit of
    site "3" (weights 1..6), class 2 none."""
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 6, 3), nn.ReLU(), nn.Conv1d(6, 6, 3), nn.ReLU()), 3,
                          input_shape=(1, 16), normalize=False).eval()
    with torch.no_grad():
        net.classifier.weight.zero_()
        net.classifier.weight[0, :6] = torch.arange(1.0, 7.0)
        net.classifier.weight[1, 6:] = torch.arange(1.0, 7.0)
    return net


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.images]


def test_unit_heatmap_titles_count_the_units_other_classes_read_when_some_classes_are_drawn():
    net = _sparse()
    assert _titles(plots.unit_heatmap(net, max_units=4, standardized=False)) == [
        "site 1: 6 units, the 4 strongest", "site 3: 6 units, the 4 strongest"]
    # class 1 reads no unit of site "1", but class 0 reads all 6 of them: not "none read by any class"
    assert _titles(plots.unit_heatmap(net, classes=[1], max_units=4, standardized=False)) == [
        "site 1: 6 units, none read by the class drawn (6 by other classes)",
        "site 3: 6 units, the 4 strongest for the class drawn"]
    assert _titles(plots.unit_heatmap(net, classes=[2, 0], max_units=4, standardized=False)) == [
        "site 1: 6 units, the 4 strongest for the classes drawn",
        "site 3: 6 units, none read by the classes drawn (6 by other classes)"]
    # every class drawn, in another order: the titles of all classes
    assert _titles(plots.unit_heatmap(net, classes=[2, 1, 0], max_units=4, standardized=False)) == [
        "site 1: 6 units, the 4 strongest", "site 3: 6 units, the 4 strongest"]


def test_unit_heatmap_says_none_read_by_any_class_only_where_no_class_reads_the_site():
    net = _sparse()
    with torch.no_grad():
        net.classifier.weight[0, :6] = 0.0
    assert _titles(plots.unit_heatmap(net, classes=[2], max_units=4, standardized=False))[0] == (
        "site 1: 6 units, none read by any class")
    assert _titles(plots.unit_heatmap(net, max_units=4, standardized=False))[0] == (
        "site 1: 6 units, none read by any class")
