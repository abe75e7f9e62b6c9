"""Pictures of units with a face: the gallery plot has one row of k thumbnails per unit (an RNN step's
row starts with the class means), and the waterfall and top-units figures draw each unit's
thumbnails beside its bar, for exactly the bars whose unit the gallery holds."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.gallery import largest, decision_items, waterfall_units
from neuroview.viz.gallery import unit_gallery_plot
from neuroview.viz.plots import top_units, waterfall

torch.manual_seed(0)


def _thumbs(fig) -> int:
    """The thumbnails painted beside bars: each has one frame tagged ``thumbnail``."""
    return sum(p.get_gid() == "thumbnail" for ax in fig.axes for p in ax.patches)


@pytest.fixture(scope="module")
def cnn2d():
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3, stride=2), nn.ReLU())
    net = nv.NeuroViewCNN(cnn, 3, quantizer="soft", input_shape=(1, 10, 10)).eval()
    x, y = torch.randn(24, 1, 10, 10), torch.arange(24) % 3
    return net, x, y


@pytest.fixture(scope="module")
def rnn():
    net = nv.NeuroViewRNN(nn.GRU(2, 6, batch_first=True), num_classes=3, max_len=16, window=2).eval()
    x, y = torch.randn(18, 1, 16).cumsum(-1), torch.arange(18) % 3
    return net, x, y


def test_gallery_plot_of_images_series_and_steps(cnn2d, rnn):
    net, x, y = cnn2d
    g = nv.unit_gallery(net, [(x, y)], [0, 3, 8], k=4)
    fig = unit_gallery_plot(g, k=3)
    assert len(fig.axes) == 3 * 3
    assert [ax.get_ylabel() for ax in fig.axes[::3]] == g.names
    assert fig.axes[0].get_title().startswith(f"#{int(g.index[0, 0])} y={int(g.y[0, 0])}:")
    assert len(fig.axes[0].patches) == 1  # the window outlined
    conv1d = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 5), nn.ReLU()), 2, input_shape=(1, 20)).eval()
    g1 = nv.unit_gallery(conv1d, [torch.randn(7, 1, 20)], [1, 2], k=2)
    assert len(unit_gallery_plot(g1).axes) == 4
    net, x, y = rnn
    gs = nv.unit_gallery(net, [(x, y)], [0, 5], k=3)
    fig = unit_gallery_plot(gs, class_names=["a", "b", "c"])
    assert len(fig.axes) == 2 * (1 + 3)  # the class means, then the samples
    means = fig.axes[0]
    assert fig.axes[1].get_title().startswith(f"#{int(gs.index[0, 0])} {'abc'[int(gs.y[0, 0])]}: ")
    assert len(means.lines) == 3 and [t.get_text() for t in means.get_legend().get_texts()] == ["a", "b", "c"]
    span = means.patches[0]  # the shaded window of step 0: samples 0 and 1
    assert (span.get_x(), span.get_x() + span.get_width()) == (0.0, 2 / 16)  # of the 16 samples drawn
    with pytest.raises(TypeError, match="gallery: expected a UnitGallery"):
        unit_gallery_plot({"units": [0]})


def test_waterfall_draws_thumbnails_beside_the_bars_it_has(cnn2d):
    net, x, y = cnn2d
    exp = net.explain(x[:5])
    shown = waterfall_units(exp, [2], k=6)
    assert shown == largest(decision_items(exp, 2, int(exp.predicted[2])), 6)
    g = nv.unit_gallery(net, [(x, y)], shown[:4], k=5)  # the gallery lacks the last two bars' units
    fig = waterfall(exp, 2, k=6, gallery=g, thumbs=3)
    assert len(fig.axes) == 2 and _thumbs(fig) == 4 * 3
    # each thumbnail row sits on its bar, rows 1..4 (row 0 is the bias), on the bars' own y axis
    bars, host = fig.axes
    assert host.get_shared_y_axes().joined(bars, host)
    frames = [p for p in host.patches if p.get_gid() == "thumbnail"]
    assert sorted({p.get_y() + p.get_height() / 2 for p in frames}) == pytest.approx([1, 2, 3, 4])
    fig.draw_without_rendering()
    assert bars.get_ylim()[0] > 6 and bars.get_ylim()[1] < 0  # the images left the bars' limits alone
    assert len(waterfall(exp, 2, k=6).axes) == 1  # no gallery: the plain figure
    with pytest.raises(ValueError, match="gallery: holds units, the figure draws steps"):
        rnn_net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), num_classes=3, max_len=5).eval()
        waterfall(rnn_net.explain(torch.randn(2, 5, 1)), 0, gallery=g)


def test_waterfall_of_steps_with_class_means(rnn):
    net, x, y = rnn
    exp = net.explain(x.transpose(1, 2))
    g = nv.unit_gallery(net, [(x, y)], waterfall_units(exp, [0], k=4), k=2)
    fig = waterfall(exp, 0, k=4, gallery=g, thumbs=3)
    assert _thumbs(fig) == 4 * 3  # the class means and two samples per step
    assert len(fig.axes[1].lines) == 4 * (3 + 2)  # one mean curve per class, one curve per sample


def test_top_units_with_a_gallery(cnn2d):
    net, x, y = cnn2d
    w = net.unit_importance(standardized=True)
    top = w.topk(2, dim=1).indices  # [classes, 2]
    have = top[:2].flatten().unique().tolist()  # the third class's units may be missing
    g = nv.unit_gallery(net, [(x, y)], have, k=4)
    fig = top_units(net, k=2, gallery=g, thumbs=2)
    bars = [ax for ax in fig.axes if ax.get_title().startswith("class")]
    assert len(bars) == 3
    want = sum(2 for units in top.tolist() for u in units if u in have)
    assert _thumbs(fig) == want
    assert len(top_units(net, k=2).axes) == 3


def test_a_sparse_head_gets_bars_and_faces_only_for_the_units_it_reads():
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 6, 3), nn.ReLU()), 2, quantizer="soft", normalize=False,
                          input_shape=(1, 12)).eval()
    with torch.no_grad():
        net.classifier.weight.zero_()
        net.classifier.weight[:, [1, 4]] = torch.tensor([[2.0, -1.0], [-2.0, 1.0]])
    x = torch.randn(6, 1, 12)
    exp = net.explain(x)
    assert sorted(waterfall_units(exp, [0, 1], k=8)) == [1, 4]
    g = nv.unit_gallery(net, [x], waterfall_units(exp, [0], k=8), k=2)
    fig = waterfall(exp, 0, k=8, gallery=g, thumbs=2)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[1:3] == sorted(["1 #1", "1 #4"], key=lambda s: -abs(float(exp.for_class()[0, int(s[-1])])))
    assert labels[3:] == ["4 other units, adding nothing", "logit"] and _thumbs(fig) == 2 * 2  # zero weights
