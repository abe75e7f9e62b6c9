"""The report's renaming of a name that is a fixed column (a site ``class`` -> ``class (site)``, a class ``step`` ->
``step (class)``) picks a name free of every other one: a site already named ``class (site)`` had its share written
twice and the other's lost (rows summing to 1.12); classes ``step`` and ``step (class)`` were refused after the
explanation naming a name never given. And class names given as a tensor are drawn and reported as their values."""

from __future__ import annotations

import csv
import json
from collections import OrderedDict

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.importance import layer_shares
from neuroview.viz import plots
from neuroview.viz.report import write_report
from neuroview.viz.report_data import table_names


def _rows(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_a_site_named_like_the_renamed_class_column_keeps_its_own_share(tmp_path):
    torch.manual_seed(0)
    bb = nn.Sequential(OrderedDict([("c1", nn.Conv1d(1, 3, 3)), ("class", nn.ReLU()), ("c2", nn.Conv1d(3, 3, 3)),
                                    ("class (site)", nn.ReLU()), ("c3", nn.Conv1d(3, 3, 3)), ("act3", nn.ReLU())]))
    net, x, y = nv.NeuroViewCNN(bb, 3), torch.randn(12, 1, 20), torch.arange(12) % 3
    net.train()
    net(x)
    net.eval()
    write_report(net, x, y, tmp_path / "r", progress=False, examples=0)
    rows = _rows(tmp_path / "r" / "layer_shares.csv")
    header = rows[0]
    assert len(set(header)) == len(header) == 4 and header[0] == "class" and header[2:] == ["class (site)", "act3"]
    shares, _ = layer_shares(net.explain(x, baseline="mean"), y=y)
    for row, want in zip(rows[1:], shares.tolist()):
        assert [float(v) for v in row[1:]] == pytest.approx(want, abs=1e-6)  # the site 'class''s own share, not lost
        assert sum(float(v) for v in row[1:]) == pytest.approx(1.0, abs=1e-6)


def test_the_renamed_class_columns_are_free_of_every_other_name():
    assert table_names(["step", "step (class)"]) == ["step (class) 2", "step (class)"]
    assert table_names(["site", "site (class)", "site (class) 2", "a"]) == ["site (class) 3", "site (class)",
                                                                            "site (class) 2", "a"]
    assert table_names(["step", "cat"]) == ["step (class)", "cat"]  # as before where nothing clashes


def test_an_rnn_report_of_classes_step_and_step_class_is_written(tmp_path):
    torch.manual_seed(0)
    rnn = nv.wrap(nn.GRU(1, 4, batch_first=True), num_classes=2, max_len=10)
    xs = torch.randn(8, 10, 1)
    rnn.train()
    rnn(xs)
    rnn.eval()
    write_report(rnn, xs, torch.arange(8) % 2, tmp_path / "r", class_names=["step", "step (class)"], progress=False,
                 examples=0)
    header = _rows(tmp_path / "r" / "time_importance.csv")[0]
    assert len(set(header)) == len(header) and "step (class)" in header and "step (class) 2" in header


def test_a_tensor_of_class_names_is_drawn_and_reported_as_its_values(tmp_path):
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3)
    x = torch.randn(12, 1, 16)
    net.train()
    net(x)
    net.eval()
    names = torch.tensor([1, 5, 7] * 4).unique()
    fig = plots.waterfall(net.explain(x), 0, class_names=names)
    text = " ".join([fig._suptitle.get_text() if fig._suptitle else ""] + [a.get_title() for a in fig.axes])
    assert "tensor" not in text and any(f"class {n}" in text for n in (1, 5, 7))
    write_report(net, x, torch.arange(12) % 3, tmp_path / "r", class_names=names, progress=False, examples=0)
    assert json.loads((tmp_path / "r" / "report.json").read_text())["class_names"] == ["1", "5", "7"]
    assert "logit 1,logit 5,logit 7" in (tmp_path / "r" / "predictions.csv").read_text().splitlines()[0]
