"""Probe P6 (findings 1-3) and P3 (finding 7): grey images one pixel tall or wide in ``spatial_maps``, long class
names in figures saved plainly (``fig.savefig(path)``, as the docs say), numeric names whose "class " prefix
collides with another name, and a gallery plot given more names than the network has classes."""

import warnings

import pytest
import torch
from torch import nn

import neuroview as nv

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from neuroview.viz import plots  # noqa: E402

BIRDS = ["Northern cardinal (Cardinalis cardinalis), adult male in breeding plumage",
         "Summer tanager (Piranga rubra), adult male in breeding plumage, eastern population",
         "Scarlet tanager (Piranga olivacea), adult male in breeding plumage",
         "House finch (Haemorhous mexicanus), adult male, red morph"]


def _one_unit_net(x: torch.Tensor) -> nv.NeuroViewCNN:
    """A 1x1 convolution that passes the grey value (weight 1, bias 0) to one ReLU unit, hard codes 1[x > 0], no
    normalization, and a head of weights (2, -1), bias 0: class 0's contribution per input position is 2 / #positions
    where the pixel is > 0 and 0 where it is 0."""
    conv = nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, normalize=False, example_input=x).eval()
    with torch.no_grad():
        net.classifier.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        net.classifier.bias.zero_()
    return net


@pytest.mark.parametrize("shape", [(1, 1, 6), (1, 6, 1)])
def test_spatial_maps_draws_grey_images_one_pixel_tall_or_wide(shape):
    row = torch.tensor([1.0, 0.0, 0.5, 0.0, 0.25, 1.0])  # min 0 < max 1: the contour branch was taken, and crashed
    x = row.reshape(1, *shape).repeat(2, 1, 1, 1)
    net = _one_unit_net(x)
    exp = net.explain(x, maps=True)
    fig = plots.spatial_maps(exp, x, 0)  # was matplotlib's bare "Input z must be at least a (2, 2) shaped array"
    panel = fig.axes[1]
    want = torch.where(row > 0, 2.0 / 6, 0.0).reshape(shape[1:])
    assert torch.tensor(panel.images[0].get_array()).float() == pytest.approx(want)
    assert not [c for c in panel.collections if isinstance(c, matplotlib.contour.ContourSet)]  # no lines on one row
    # a 2x3 image still gets its contour lines
    x2 = row.reshape(1, 1, 2, 3).repeat(2, 1, 1, 1)
    fig2 = plots.spatial_maps(_one_unit_net(x2).explain(x2, maps=True), x2, 0)
    assert [c for c in fig2.axes[1].collections if isinstance(c, matplotlib.contour.ContourSet)]


def _cnn(classes: int) -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
    net = nv.NeuroViewCNN(backbone, classes, example_input=torch.rand(2, 1, 8, 8))
    with torch.no_grad():  # a training batch sets the head's statistics (drawn untrained, its importance warns)
        net.train()(torch.rand(8, 1, 8, 8))
    return net.eval()


def _texts_outside(fig) -> list[tuple[str, float, float]]:
    """Every text of ``fig`` drawn (as ``fig.savefig(path)`` draws it) past the figure's edges, and the bounds of
    all it draws (what ``bbox_inches="tight"`` would save) where they reach past them."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    out = []
    for t in [fig._suptitle, *fig.texts, *(x for ax in fig.axes for x in (ax.title, ax.xaxis.label, ax.yaxis.label))]:
        if t is None or not t.get_text() or not t.get_visible():
            continue
        bb = t.get_window_extent(r)
        if bb.x0 < -1 or bb.x1 > width + 1 or bb.y0 < -1 or bb.y1 > height + 1:
            out.append((t.get_text()[:40], round(bb.x0), round(bb.x1)))
    tight = fig.get_tightbbox(r).transformed(fig.dpi_scale_trans)  # inches -> pixels
    if tight.x0 < -1 or tight.x1 > width + 1 or tight.y0 < -1 or tight.y1 > height + 1:
        out.append(("everything drawn", round(tight.x0), round(tight.x1)))
    return out


def _rnn_explained():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 4, max_len=12).eval()
    return net.explain(torch.randn(16, 12, 1)), torch.arange(16) % 4


def _gallery(net):
    x, y = torch.rand(24, 1, 8, 8), torch.arange(24) % 4
    return nv.unit_gallery(net, [(x, y)], units=list(range(6)), k=3)


@pytest.mark.parametrize("draw", ["waterfall", "unit_heatmap", "top_units", "class_layer_summary",
                                  # review R7, finding 4: these drew past the edges (the row said they did not)
                                  "unit_gallery_plot", "time_importance", "sample_time",
                                  "top_units_gallery", "waterfall_gallery"])
def test_long_class_names_stay_on_a_plainly_saved_figure(draw):
    net = _cnn(4)
    exp = net.explain(torch.rand(2, 1, 8, 8))
    rnn = lambda: _rnn_explained()  # noqa: E731
    make = {"waterfall": lambda: plots.waterfall(exp, 0, class_names=BIRDS, label=1),
            "unit_heatmap": lambda: plots.unit_heatmap(net, class_names=BIRDS),
            "top_units": lambda: plots.top_units(net, class_names=BIRDS),
            "class_layer_summary": lambda: plots.class_layer_summary(net, class_names=BIRDS),
            "unit_gallery_plot": lambda: plots.unit_gallery_plot(_gallery(net), class_names=BIRDS),
            "time_importance": lambda: plots.time_importance(rnn()[0], y=rnn()[1], class_names=BIRDS),
            "sample_time": lambda: plots.sample_time(rnn()[0], 0, label=1, class_names=BIRDS),
            "top_units_gallery": lambda: plots.top_units(net, class_names=BIRDS, gallery=_gallery(net)),
            "waterfall_gallery": lambda: plots.waterfall(exp, 0, class_names=BIRDS, label=1, gallery=_gallery(net)),
            }[draw]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied because axes sizes collapsed to zero"
        fig = make()
        assert _texts_outside(fig) == []
    texts = [t.get_text().replace("\n", " ") for t in fig.findobj(matplotlib.text.Text)]
    starts = ["Northern cardinal", "Summer tanager", "Scarlet tanager", "House finch"]  # what tells the classes apart
    if draw.startswith("waterfall"):
        title = fig.axes[0].get_title().replace("\n", " ")
        assert title.startswith("sample 0: logit of ") and "true Summer tanager" in title
    elif draw == "sample_time":
        assert "true Summer tanager" in fig._suptitle.get_text().replace("\n", " ")
    elif draw == "unit_gallery_plot":  # each thumbnail's title names its sample's class (not every class has one)
        titles = [ax.get_title().replace("\n", " ") for ax in fig.axes if ax.get_title()]
        assert len(titles) == 18 and all(any(f" {s}" in t for s in starts) for t in titles), titles
    else:
        assert all(any(t.startswith(s) for t in texts) for s in starts)
    if draw == "unit_heatmap":
        rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        assert len(rows) == 4 and len(set(rows)) == 4 and all(len(r) <= 40 for r in rows)
        assert [r[:len(s)] for r, s in zip(rows, starts)] == starts and rows[2].endswith("breeding plumage")


def test_long_names_that_differ_in_the_middle_stay_apart():
    names = ["a" * 30 + " left " + "b" * 30, "a" * 30 + " right " + "b" * 30, "short"]
    rows = [t.get_text() for t in plots.unit_heatmap(_cnn(3), class_names=names).axes[0].get_yticklabels()]
    assert len(set(rows)) == 3 and rows[2] == "short"
    assert "left" in rows[0] and "right" in rows[1]  # cut where the names differ, they would read alike
    fig = plots.top_units(_cnn(3), class_names=names)
    assert [ax.get_title() for ax in fig.axes[:3]] == rows


def test_a_numeric_name_whose_prefix_collides_is_explained():
    net = _cnn(3)
    with pytest.raises(ValueError, match=r"class_names: expected distinct names, got \['1', 'class 1', 'other'\]"
                                          r".*'1' is drawn as 'class 1'.*which 'class 1' already is; rename one"):
        plots.top_units(net, class_names=["1", "class 1", "other"])
    # names distinct as the user gave them and as drawn pass, numbers prefixed
    fig = plots.top_units(net, class_names=["1", "class 2", "other"])
    assert [ax.get_title() for ax in fig.axes[:3]] == ["class 1", "class 2", "other"]


def test_gallery_plot_refuses_names_of_another_task_where_the_gallery_knows_the_classes():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()
    x, y = torch.randn(12, 1, 8, 8), torch.tensor([0, 1] * 6)  # class 2 has no sample
    g = nv.unit_gallery(net, [(x, y)], units=[0, 1], k=3)
    assert g.num_classes == 3
    with pytest.raises(ValueError, match=r"class_names: expected 3 names \(one per class\), got 5"):
        plots.unit_gallery_plot(g, class_names=["ant", "bee", "cat", "dog", "eel"])
    titles = [a.get_title() for a in plots.unit_gallery_plot(g, class_names=["ant", "bee", "cat"]).axes]
    assert titles[0] == f"#{int(g.index[0, 0])} {'ant bee cat'.split()[int(g.y[0, 0])]}: {float(g.value[0, 0]):+.2f}"


def test_gallery_plot_checks_a_recorded_class_count():
    """Too few names and too many, against the count the gallery records (set by hand here)."""
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()
    g = nv.unit_gallery(net, [(torch.randn(12, 1, 8, 8), torch.tensor([0, 1] * 6))], units=[0, 1], k=3)
    g.num_classes = 3
    with pytest.raises(ValueError, match=r"class_names: expected 3 names \(one per class\), got 5"):
        plots.unit_gallery_plot(g, class_names=["ant", "bee", "cat", "dog", "eel"])
    with pytest.raises(ValueError, match=r"class_names: expected 3 names \(one per class\), got 2"):
        plots.unit_gallery_plot(g, class_names=["ant", "bee"])
    assert len(plots.unit_gallery_plot(g, class_names=["ant", "bee", "cat"]).axes) == 6


def _extent(fig, text):
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return text.get_window_extent(fig.canvas.get_renderer())


def test_time_importance_keeps_each_class_name_beside_its_own_panel():
    """A class name is its panel's vertical y label: 40 characters stood 305 px tall beside a 124 px panel, over the
    panels above and below (review R7, finding 4). Each must span no more than its own panel."""
    exp, y = _rnn_explained()
    fig = plots.time_importance(exp, y=y, class_names=BIRDS)
    for ax, start in zip(fig.axes, ["Northern", "Summer", "Scarlet", "House"]):
        label = _extent(fig, ax.yaxis.label)
        assert ax.bbox.y0 - 1 <= label.y0 and label.y1 <= ax.bbox.y1 + 1, (ax.get_ylabel(), label, ax.bbox)
        assert ax.get_ylabel().startswith(start)
    short = plots.time_importance(exp, y=y, class_names=["ant", "bee", "cat", "dog"])
    assert [ax.get_ylabel() for ax in short.axes] == ["ant", "bee", "cat", "dog"]  # short names as before
    assert short.get_size_inches().tolist() == pytest.approx([9.0, 0.9 + 1.3 * 4])


def test_gallery_suptitle_stays_on_the_figure_with_short_names():
    """The gallery's own suptitle ran past a 3-column figure whatever the names (review R7, finding 4)."""
    g = _gallery(_cnn(4))
    fig = plots.unit_gallery_plot(g, class_names=["ant", "bee", "cat", "dog"])
    assert _texts_outside(fig) == []
    assert fig.axes[0].get_title() == f"#{int(g.index[0, 0])} {'ant bee cat dog'.split()[int(g.y[0, 0])]}: " \
                                      f"{float(g.value[0, 0]):+.2f}"  # a short title on one line, as before


@pytest.mark.parametrize("names", [None, [f"digit {i}" for i in range(10)], "birds"],
                         ids=["default", "digits", "birds"])
def test_the_waterfall_title_breaks_between_its_parts_never_inside_a_class_name(names):
    """Review R7, finding 5: 'true class\\n0)' read as if "true class" were the truth and "0)" a stray."""
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
    x = torch.rand(40, 1, 8, 8)
    net = nv.NeuroViewCNN(backbone, 10, example_input=x[:2]).eval()
    exp = net.explain(x)
    if names == "birds":
        names = [*BIRDS, *(f"{b} ({i})" for i, b in enumerate(BIRDS)), "x", "y"]
    for sid in (None, "train/000123"):
        title = plots.waterfall(exp, 0, label=0, sample_id=sid, class_names=names).axes[0].get_title()
        pred, tgt = int(exp.predicted[0]), int(exp.targets()[0])
        drawn = [t.get_text() for t in plots.unit_heatmap(net, class_names=names).axes[0].get_yticklabels()]
        for c in {pred, tgt, 0}:
            assert drawn[c] in title, (drawn[c], title)  # the name whole on one line
        assert f"true {drawn[0]})" in title.replace("\n", " ")
