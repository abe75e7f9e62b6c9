"""What the report's tables and figures say their numbers are (a probe of 2026-12-06): a site named "class" wrote its
shares over the class column, raw weights of a network without normalization were called standardized, and tables
of a report without labels were described as class means. The numbers are checked against the network's own."""

from __future__ import annotations

from collections import OrderedDict

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.attribution.export import read_csv  # noqa: E402
from neuroview.viz import plots  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402
from nets import small_report_rnn, with_running_stats  # noqa: E402


def _report(net, x, y, out, **kw) -> str:
    write_report(net, x, y, out, examples=1, progress=False, dpi=30, **kw)
    return (out / "index.html").read_text()


def test_a_site_named_class_keeps_the_class_column(tmp_path):
    torch.manual_seed(0)
    backbone = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 3, 3), **{"class": nn.ReLU()}, c2=nn.Conv2d(3, 4, 3),
                                         act=nn.ReLU()))
    x, y = torch.rand(6, 1, 7, 7), torch.arange(6) % 2
    net = with_running_stats(nv.wrap(backbone, num_classes=2, input_shape=(1, 7, 7)), x)
    _report(net, x, y, tmp_path / "r", class_names=["cat", "dog"])
    rows = read_csv(tmp_path / "r" / "layer_shares.csv")
    assert [r["class"] for r in rows] == ["cat", "dog"]
    assert set(rows[0]) == {"class", "class (site)", "act"}
    for r in rows:
        assert abs(float(r["class (site)"]) + float(r["act"]) - 1) < 1e-5


def test_raw_weights_are_not_called_standardized(tmp_path):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 4, 3), nn.ReLU())
    x, y = torch.rand(6, 1, 7, 7), torch.arange(6) % 2
    raw = with_running_stats(nv.wrap(backbone, num_classes=2, input_shape=(1, 7, 7), normalize=False), x)
    page = _report(raw, x, y, tmp_path / "raw")
    assert "its raw effective weight for each class" in page and "units of different layers compare" not in page
    rows = read_csv(tmp_path / "raw" / "unit_importance.csv")
    w = raw.classifier.weight.detach()  # no normalization: the effective weight is the classifier's own
    assert abs(float(rows[0]["0"]) - float(w[0, 0])) < 1e-6
    fig = plots.top_units(raw, k=2)
    assert fig.axes[0].get_xlabel() == "weight (raw: no normalization)"
    normed = with_running_stats(nv.wrap(backbone, num_classes=2, input_shape=(1, 7, 7)), x)
    assert plots.top_units(normed, k=2).axes[0].get_xlabel() == "standardized weight"
    assert "units of different layers compare" in _report(normed, x, y, tmp_path / "normed")


def test_tables_without_labels_say_they_average_every_sample(tmp_path):
    net, x, y = small_report_rnn()
    page = _report(net, x, None, tmp_path / "none")
    assert "over all the explained samples (no labels given)" in page
    assert "over the samples of that class" not in page and "averaged over the samples of the class" not in page
    rows = read_csv(tmp_path / "none" / "time_importance.csv")
    exp = net.explain(x, baseline="mean")  # the report's contributions: against the mean code
    assert abs(float(rows[0]["0"]) - float(exp.time_importance[:, 0, 0].mean())) < 1e-5
    assert "over the samples of that class" in _report(net, x, y, tmp_path / "y")
