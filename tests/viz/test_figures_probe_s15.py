"""Faults a probe found in the figures: another network's gallery drawn beside bars by code index, thumbnails beside
padding bars, a class with no sample drawn as a mean of zeros, path_plot unmarking the points where a class reads no
unit (and not saying the kept point is over the budget), and a class that reads no unit left unsaid."""

import pytest
import torch
from torch import nn

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import neuroview as nv  # noqa: E402
from neuroview.attribution.gallery import waterfall_units  # noqa: E402
from neuroview.training.sparsify import SparsityPath  # noqa: E402
from neuroview.viz import plots  # noqa: E402
from neuroview.viz.sparsity import path_plot  # noqa: E402


def _handnet(c=4, extra=2, t=16, seed=0):
    """One site '1' of c + extra units; unit k (k < c) fires only on class k and weighs most for it."""
    torch.manual_seed(seed)
    conv = nn.Conv1d(c, c + extra, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for k in range(c):
            conv.weight[k, k, 0] = 1.0
        for e in range(extra):
            conv.weight[c + e].normal_()
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), c, input_shape=(c, t), normalize=False).eval()
    with torch.no_grad():
        w = torch.randn(c, c + extra) * 0.3
        for k in range(c):
            w[k, k] = 2.0 + k
        net.classifier.weight.copy_(w)
        net.classifier.bias.zero_()
    return net


def _handdata(c=4, n_per=3, t=16):
    g = torch.Generator().manual_seed(1)
    xs, ys = [], []
    for _ in range(n_per):
        for k in range(c):
            x = -torch.rand(c, t, generator=g) - 0.1
            x[k] = torch.rand(t, generator=g) + 0.1 + k
            xs.append(x)
            ys.append(k)
    return torch.stack(xs), torch.tensor(ys)


def _thumb_rows(tax) -> list[int]:
    return sorted({round(p.get_y() + p.get_height() / 2) for p in tax.patches if p.get_gid() == "thumbnail"})


def test_another_networks_gallery_is_refused_naming_the_row_and_the_bar():
    x, y = _handdata()
    net = _handnet()  # units '1 #0'..'1 #5'
    other = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(4, 3, 1), nn.ReLU(), nn.Conv1d(3, 3, 1), nn.ReLU()), 4,
                            input_shape=(4, 16)).eval()  # code index 3 is its unit '3 #0'
    g = nv.unit_gallery(other, [(x, y)], units=[3], k=2)
    assert g.names == ["3 #0"]
    with pytest.raises(ValueError, match=r"gallery: row '3 #0' for bar '1 #3'; make it from the same network"):
        plots.waterfall(net.explain(x), 3, target=3, k=2, gallery=g)
    with pytest.raises(ValueError, match=r"gallery: row '3 #0' for bar '1 #3'"):
        plots.top_units(net, k=2, classes=[3], gallery=g)
    # the network's own gallery still gives the bar '1 #3' its thumbnails, unit_names or not
    own = nv.unit_gallery(net, [(x, y)], units=[3], k=2)
    fig = plots.waterfall(net.explain(x), 3, target=3, k=2, gallery=own, unit_names=[f"u{i}" for i in range(6)])
    ax, tax = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert [labels[r] for r in _thumb_rows(tax)] == ["u3"]


def test_an_ensemble_members_gallery_is_refused_beside_the_ensembles_waterfall():
    x, y = _handdata()
    ens = nv.Ensemble([_handnet(seed=0), _handnet(seed=1)]).eval()
    gm = nv.unit_gallery(ens.members[1], [(x, y)], units=[1], k=2)  # the member's '1 #1', the ensemble's index 1
    with pytest.raises(ValueError, match=r"gallery: row '1 #1' for bar 'members\.0\.1 #1'"):
        plots.waterfall(ens.explain(x), 1, target=1, k=2, gallery=gm)


@pytest.fixture(scope="module")
def padded_rnn():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 3, max_len=8)
    x = torch.randn(30, 8, 1)
    y = torch.arange(30) % 3
    lengths = torch.tensor([8, 3] * 15)
    net.train()
    with torch.no_grad():
        net(x, lengths)
    net.eval()
    return net, x, y, lengths


def test_padding_bars_get_no_thumbnails_and_waterfall_units_leaves_padded_steps_out(padded_rnn):
    net, x, y, lengths = padded_rnn
    exp = net.explain(x, lengths, baseline="mean")
    g = nv.unit_gallery(net, [(x.transpose(1, 2), lengths, y)], units=list(range(8)), k=2, baseline="mean")
    fig = plots.waterfall(exp, 1, k=8, gallery=g)  # sample 1 is 3 steps long
    ax, tax = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "padding, steps 3-7" in labels  # the series' 5 padded steps: one bar, as k90 counts them
    drawn = [labels[r] for r in _thumb_rows(tax)]
    assert drawn and not [lab for lab in drawn if "padding" in lab]
    assert sorted(drawn) == ["step 0", "step 1", "step 2"]
    assert all(u < 3 for u in waterfall_units(exp, [1], k=8))
    assert max(waterfall_units(exp, [0], k=8)) >= 3  # a full-length sample keeps its late steps


def test_a_class_without_a_sample_is_not_drawn_as_a_mean_of_zeros():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 3, max_len=12).eval()
    x = torch.randn(20, 1, 12) + 3.0
    y = torch.arange(20) % 2  # class 2 has no sample
    g = nv.unit_gallery(net, [(x, y)], units=[0, 5], k=2)
    ax = plots.unit_gallery_plot(g, class_names=["a", "b", "c"]).axes[0]
    lines = {ln.get_label(): torch.tensor(ln.get_ydata(), dtype=torch.float64) for ln in ax.lines}
    assert set(lines) == {"a", "b", "c (no sample)"}
    assert lines["c (no sample)"].isnan().all()
    # the scale is the measured classes': their highest and lowest reach the box's edges (0.92 bottom, 0.08 top)
    seen = torch.cat([lines["a"], lines["b"]])
    assert abs(float(seen.max()) - 0.92) < 1e-6 and abs(float(seen.min()) - 0.08) < 1e-6
    assert "c (no sample)" in [t.get_text() for t in ax.get_legend().get_texts()]
    x[y == 1] = 0.0  # a class of all-zero series (an idle class) has samples: drawn, not "(no sample)" (a review)
    g = nv.unit_gallery(net, [(x, y)], units=[0, 5], k=2)
    ax = plots.unit_gallery_plot(g, class_names=["a", "b", "c"]).axes[0]
    assert {ln.get_label() for ln in ax.lines} == {"a", "b", "c (no sample)"} and g.class_counts.tolist() == [10, 10, 0]


def _path(**kw) -> SparsityPath:
    units = torch.tensor([0.5, 2.0, 5.0, 12.0])
    return SparsityPath(torch.tensor([1.0, 0.3, 0.1, 0.01]), torch.tensor([80.0, 96.0, 92.0, 97.0]),
                        torch.tensor([85.0, 95.0, 99.0, 100.0]), units, units, 2, 97.0, 1.0, "held out", **kw)


def test_path_plot_marks_points_where_a_class_reads_no_unit_and_a_kept_point_over_the_budget():
    fig = path_plot(_path(min_units_per_class=torch.tensor([0, 0, 1, 3]), k90=torch.tensor([1.0, 2.0, 6.0, 9.0]),
                          max_k90=4.0))
    ax = fig.axes[0]
    (none,) = [ln for ln in ax.lines if ln.get_label() == "a class reads no unit"]
    assert none.get_xdata().tolist() == [0.5, 2.0] and none.get_ydata().tolist() == [80.0, 96.0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "a class reads no unit" in legend
    assert [t for t in legend if t.startswith("kept:")] == ["kept: 5.0 per class, 92.0% (over the budget)"]
    # every class reading a unit, the kept point in the budget: neither mark
    legend = [t.get_text() for t in path_plot(_path(min_units_per_class=torch.tensor([1, 1, 1, 3]),
                                                    k90=torch.tensor([1.0, 2.0, 3.0, 9.0]),
                                                    max_k90=4.0)).axes[0].get_legend().get_texts()]
    assert "a class reads no unit" not in legend and not [t for t in legend if "over the budget" in t]


def test_a_class_that_reads_no_unit_is_said_so_in_top_units_and_class_layer_summary():
    net = _handnet()
    with torch.no_grad():
        net.classifier.weight[2].zero_()
    fig = plots.top_units(net, k=3)
    (ax,) = [a for a in fig.axes if a.get_title() == "class 2"]
    assert any("reads no unit" in t.get_text() for t in ax.texts)
    assert not [a for a in fig.axes if a.get_title() == "class 0" and a.texts]
    torch.manual_seed(0)
    n2 = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(4, 5, 1), nn.ReLU(), nn.Conv1d(5, 3, 1), nn.ReLU()), 4,
                         input_shape=(4, 16), normalize=False).eval()
    with torch.no_grad():
        n2.classifier.weight[2].zero_()
    ax = plots.class_layer_summary(n2).axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows[2] == "class 2 (adds nothing)" and rows[0] == "class 0"
    cells = [t.get_text() for t in ax.texts]
    assert cells[4:6] == ["–", "–"] and "–" not in cells[:4] + cells[6:]
