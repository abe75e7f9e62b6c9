"""neuroview.viz.plots: every function returns a Figure with the expected axes, labels and numbers."""

import copy

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.viz import plots  # noqa: E402
from neuroview.attribution.importance import class_means, layer_shares  # noqa: E402
from nets import with_running_stats  # noqa: E402

NAMES = ["cat", "dog", "owl"]




@pytest.fixture(scope="module")
def cnn2d():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
    net = nv.NeuroViewCNN(backbone, 3, input_shape=(1, 8, 8))
    x = torch.rand(5, 1, 8, 8)
    return with_running_stats(net, x), x


@pytest.fixture(scope="module")
def cnn1d():
    torch.manual_seed(1)
    backbone = nn.Sequential(nn.Conv1d(2, 4, 5, padding=2), nn.ReLU(), nn.Conv1d(4, 3, 3), nn.ReLU())
    net = nv.NeuroViewCNN(backbone, 3, input_shape=(2, 20))
    x = torch.randn(4, 2, 20)
    return with_running_stats(net, x), x


@pytest.fixture(scope="module")
def rnn():
    torch.manual_seed(2)
    net = nv.NeuroViewRNN(nn.GRU(2, 4, num_layers=2, batch_first=True), num_classes=3, max_len=12)
    x = torch.randn(6, 12, 2)
    return with_running_stats(net, x), x, torch.tensor([12, 9, 12, 5, 12, 12]), torch.tensor([0, 1, 2, 0, 1, 2])


def _hand_rnn_explanation() -> nv.RNNExplanation:
    """B=2, C=2, L=2, D=1, T=3, H=1 with known numbers."""
    contrib = torch.tensor([
        [[[1.0, -2.0, 0.5]], [[0.0, 0.5, 0.0]]],
        [[[-1.0, 0.0, 0.0]], [[2.0, 0.0, 0.0]]],
    ])[None].repeat(2, 1, 1, 1, 1)[..., None]  # [B, C, L, D, T, H]
    contrib[1] *= -1
    bias = torch.tensor([0.25, -0.5])
    logits = contrib.flatten(2).sum(-1) + bias
    return nv.RNNExplanation(logits, bias, contrib, torch.zeros(2, 2, 1, 3, 1), time_importance=contrib.sum(dim=(2, 3, 5)),
                             lengths=torch.tensor([3, 2]))


@pytest.fixture(autouse=True)
def _no_pyplot_figures():
    """The plots never go through pyplot: nothing to show, nothing left open."""
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before


def _close(actual, expected, **kw):
    kw = {"atol": 1e-6, "rtol": 1e-5} | kw
    torch.testing.assert_close(torch.as_tensor(actual).double(), torch.as_tensor(expected).double(), **kw)


def _bars(ax):
    return [p for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle)]


def _ticks(labels):
    return [t.get_text() for t in labels]


# --------------------------------------------------------------------------- CNN
def test_unit_heatmap_one_panel_per_site_sorted_columns(cnn2d):
    net, _ = cnn2d
    fig = plots.unit_heatmap(net, class_names=NAMES)
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == len(net.sites)
    w = net.unit_importance(standardized=True)
    for ax, (site, sl) in zip(panels, net.site_slices.items()):
        assert site in ax.get_title() and f"{sl.stop - sl.start} units" in ax.get_title()
        assert _ticks(ax.get_yticklabels()) == NAMES
        shown = torch.as_tensor(ax.images[0].get_array().data)
        channels = [int(t) for t in _ticks(ax.get_xticklabels())]
        _close(shown, w[:, sl][:, channels].float())
        # grouped by the class each unit weighs most, strongest first within a group
        top = shown.argmax(0)
        assert top.tolist() == sorted(top.tolist())
        norm = ax.images[0].norm
        assert norm.vmin == -norm.vmax  # diverging scale centred at 0
    assert "unit" in panels[-1].get_xlabel()


def test_unit_heatmap_caps_units_and_selects_sites(cnn2d):
    net, _ = cnn2d
    site = list(net.site_slices)[1]
    # the fixture's statistics come from one pass, which cannot be told from statistics set at once: no unit of it
    # is flagged constant (tests/core/test_constant_units_dtype_s17.py), so the 2 of 6 drawn are the strongest
    fig = plots.unit_heatmap(net, sites=[site], max_units=2)
    (ax,) = [a for a in fig.axes if a.images]
    assert ax.images[0].get_array().shape == (3, 2) and "the 2 strongest" in ax.get_title()
    with pytest.raises(ValueError, match="sites"):
        plots.unit_heatmap(net, sites=["nope"])
    with pytest.raises(ValueError, match="class_names"):
        plots.unit_heatmap(net, class_names=["a"])


def test_unit_heatmap_cut_to_the_strongest_draws_no_unit_that_no_class_reads(cnn2d):
    # a sparse head: a site of 4 units with 2 read (by one class each); cut to 3 columns it drew the 2 and
    # a zero column picked among ties; a site read by no class draws one column and says so
    net, _ = cnn2d
    net = copy.deepcopy(net)
    a, b = list(net.site_slices)[:2]
    with torch.no_grad():
        net.classifier.weight.zero_()
        sa = net.site_slices[a]
        for cls, u in enumerate((0, 2)):
            net.classifier.weight[cls, sa.start + u] = 1.0 + cls
    assert sa.stop - sa.start == 4 and net.site_slices[b].stop - net.site_slices[b].start == 6
    fig = plots.unit_heatmap(net, sites=[a, b], max_units=3)
    ax_a, ax_b = [x for x in fig.axes if x.images]
    assert sorted(int(t) for t in _ticks(ax_a.get_xticklabels())) == [0, 2]
    assert "the 2 read by a class" in ax_a.get_title()
    assert ax_b.images[0].get_array().shape[1] == 1 and "none read by any class" in ax_b.get_title()


def test_unit_heatmap_from_explanation_uses_its_weight(cnn2d):
    net, x = cnn2d
    exp = net.explain(x)
    fig = plots.unit_heatmap(exp, max_units=None)
    ax = [a for a in fig.axes if a.images][0]
    sl = next(iter(net.site_slices.values()))
    channels = [int(t) for t in _ticks(ax.get_xticklabels())]
    _close(torch.as_tensor(ax.images[0].get_array().data), exp.weight[:, sl][:, channels])


def test_top_units_bars_are_the_top_weights_labelled_by_site(cnn2d):
    net, _ = cnn2d
    fig = plots.top_units(net, k=3, class_names=NAMES)
    assert [ax.get_title() for ax in fig.axes] == NAMES
    w = net.unit_importance(standardized=True)
    for c, ax in enumerate(fig.axes):
        widths = [b.get_width() for b in _bars(ax)]
        # the top 3 among the units the class reads (a unit flagged constant over training reads 0, 0d816df,
        # and a 0 is no top unit above a negative weight)
        _close(torch.tensor(widths), w[c][w[c] != 0].topk(3).values)
        labels = _ticks(ax.get_yticklabels())
        assert all(lab.split(" #")[0] in net.site_slices for lab in labels)
    assert fig.legends and fig.legends[0].get_title().get_text() == "site (layer)"
    assert len(plots.top_units(net, k=1, classes=[2]).axes) == 1
    with pytest.raises(ValueError, match="classes"):
        plots.top_units(net, classes=[5])
    with pytest.raises(ValueError, match="k"):
        plots.top_units(net, k=0)


def test_waterfall_bars_add_up_to_the_logit(cnn2d):
    net, x = cnn2d
    exp = net.explain(x)
    fig = plots.waterfall(exp, sample=2, k=4, class_names=NAMES, label=1)
    (ax,) = fig.axes
    bars = _bars(ax)
    pred = int(exp.predicted[2])
    labels = _ticks(ax.get_yticklabels())
    assert labels[0] == "bias" and labels[-1] == "logit" and "other units" in labels[-2]
    assert len(bars) == 4 + 3  # bias, 4 units, the rest, the logit
    _close(torch.tensor(bars[0].get_width()), exp.bias[pred])
    steps = torch.tensor([b.get_width() for b in bars[:-1]], dtype=torch.float64)
    logit = exp.logits[2, pred].double()
    _close(steps.sum(), logit, atol=1e-5, rtol=1e-5)
    _close(torch.tensor(bars[-1].get_width(), dtype=torch.float64), logit)
    assert NAMES[pred] in ax.get_xlabel() and "true dog" in ax.get_title()
    with pytest.raises(IndexError, match="sample"):
        plots.waterfall(exp, sample=99)
    with pytest.raises(ValueError, match="target"):
        plots.waterfall(exp, target=7)
    with pytest.raises(TypeError, match="exp"):
        plots.waterfall(torch.zeros(2, 3))


def test_waterfall_over_time_steps_of_an_rnn():
    exp = _hand_rnn_explanation()
    fig = plots.waterfall(exp, sample=0, target=0, k=2)
    labels = _ticks(fig.axes[0].get_yticklabels())
    # per-step contributions of sample 0 to class 0: [1, -1.5, 0.5]
    assert labels == ["bias", "step 1", "step 0", "1 other steps", "logit"]
    widths = [b.get_width() for b in _bars(fig.axes[0])]
    assert widths[-1] == pytest.approx(float(exp.logits[0, 0]))


def test_the_other_bar_says_what_is_padding_and_what_adds_nothing():
    exp = _hand_rnn_explanation()
    # sample 1 (2 steps long) to class 0: steps [-1, 1.5, -0.5], its step 2 past the end
    fig = plots.waterfall(exp, sample=1, target=0, k=1)
    assert _ticks(fig.axes[0].get_yticklabels())[2] == "1 other steps and padding, step 2"
    # sample 0 to class 1: steps [1, 0, 0]; a sparse head's zero weights were counted as "2 other steps"
    fig = plots.waterfall(exp, sample=0, target=1, k=1)
    assert _ticks(fig.axes[0].get_yticklabels())[2] == "2 other steps, adding nothing"
    fig = plots.waterfall(exp, sample=0, target=0, k=1)  # steps [1, -1.5, 0.5]: both others add something
    assert _ticks(fig.axes[0].get_yticklabels())[2] == "2 other steps"


@pytest.mark.parametrize("fixture", ["cnn2d", "cnn1d"])
def test_spatial_maps_one_panel_per_top_unit_summing_to_its_contribution(fixture, request):
    net, x = request.getfixturevalue(fixture)
    exp = net.explain(x, maps=True)
    k = 3
    fig = plots.spatial_maps(exp, x, sample=1, k=k, class_names=NAMES, label=0)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == k + 1 and panels[0].get_title().startswith("input")
    pred = int(exp.predicted[1])
    contrib = exp.contributions[1, pred]
    n_in = x[1, 0].numel()
    for ax in panels[1:]:
        site, rest = ax.get_title().split(" #")
        ch = int(rest.split(":")[0])
        u = exp.units.index((site, ch))
        assert contrib[u] >= contrib.sort(descending=True).values[k - 1] - 1e-7
        shown = torch.as_tensor(ax.images[-1].get_array().data).double()
        # drawn per input position: scaled back to the site's positions it sums to the contribution
        _close(shown.sum() * n_in / shown.numel(), contrib[u].double(), atol=1e-6, rtol=1e-5)
    assert fig.get_suptitle().startswith("Sample 1:")
    assert plots.spatial_maps(exp, x, 1, k=1, sample_id=41).get_suptitle().startswith("Sample 41:")
    if x.dim() == 3:
        assert panels[-1].get_xlabel() == "time step"
    assert any("input position" in ax.get_ylabel() for ax in fig.axes)


def test_spatial_maps_needs_code_maps_and_the_batch(cnn2d):
    net, x = cnn2d
    with pytest.raises(ValueError, match="maps=True"):
        plots.spatial_maps(net.explain(x), x)
    with pytest.raises(ValueError, match="x: expected the explained batch"):
        plots.spatial_maps(net.explain(x, maps=True), x[:2])


def test_class_layer_summary_rows_are_shares(cnn2d):
    net, x = cnn2d
    fig = plots.class_layer_summary(net, class_names=NAMES)
    ax = fig.axes[0]
    shares = torch.as_tensor(ax.images[0].get_array().data)
    _close(shares.sum(1), torch.ones(3, dtype=shares.dtype))
    assert _ticks(ax.get_xticklabels()) == list(net.site_slices)
    assert _ticks(ax.get_yticklabels()) == NAMES
    assert ax.get_xlabel() == "site (layer)" and ax.get_ylabel() == "class"
    exp = net.explain(x)
    fig = plots.class_layer_summary(exp, y=torch.tensor([0, 1, 2, 0, 1]))
    _close(torch.as_tensor(fig.axes[0].images[0].get_array().data),
                               layer_shares(exp, y=torch.tensor([0, 1, 2, 0, 1]))[0])
    assert "on the data" in fig.get_suptitle()


# --------------------------------------------------------------------------- RNN
def test_time_importance_signed_per_class_with_series_underneath():
    exp = _hand_rnn_explanation()
    series = torch.arange(6.0).reshape(3, 2)
    fig = plots.time_importance(exp, series=series, class_names=["no", "yes"])
    main = [ax for ax in fig.axes if ax.get_ylabel()]
    assert [ax.get_ylabel() for ax in main] == ["no", "yes"]
    assert len(fig.axes) == 4  # one twin axis per class holds the series
    mean = exp.time_importance.mean(0)
    for c, ax in enumerate(main):
        _close(torch.tensor([b.get_height() for b in _bars(ax)]), mean[c])
    assert main[-1].get_xlabel() == "time step"
    # signed values: the diverging map, white at 0
    one = plots.time_importance(exp, sample=0)
    heights = torch.tensor([b.get_height() for b in _bars(one.axes[0])])
    _close(heights, exp.time_importance[0, 0])
    with pytest.raises(ValueError, match="series"):
        plots.time_importance(exp, series=torch.zeros(5, 3, 1))


def test_time_importance_class_means_with_labels(rnn):
    net, x, lengths, y = rnn
    exp = net.explain(x, lengths=lengths)
    fig = plots.time_importance(exp, y=y, series=class_means(x, y, 3), class_names=NAMES)
    main = fig.axes[:3]
    for c, ax in enumerate(main):
        want = exp.time_importance[y == c, c].mean(0)
        _close(torch.tensor([b.get_height() for b in _bars(ax)]), want)
    assert "samples of each class" in fig.get_suptitle()


def test_time_importance_of_a_network_is_its_global_weights(rnn):
    net = rnn[0]
    fig = plots.time_importance(net, classes=[1, 2])
    assert len(fig.axes) == 2 and "global weights" in fig.get_suptitle()
    _close(torch.tensor([b.get_height() for b in _bars(fig.axes[1])]), net.time_importance()[2])


def test_layer_time_heatmap_layers_by_steps(rnn):
    net, x, lengths, _ = rnn
    fig = plots.layer_time(net, class_names=NAMES)
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == NAMES
    assert _ticks(panels[0].get_yticklabels()) == ["layer 0", "layer 1"]
    assert panels[-1].get_xlabel() == "time step"
    _close(torch.as_tensor(panels[1].images[0].get_array().data), net.time_importance(per_layer=True)[1])
    assert panels[0].images[0].norm.vmin == 0  # a norm is never negative: sequential from 0
    exp = net.explain(x, lengths=lengths)
    one = plots.layer_time(exp, sample=3, classes=[0])
    shown = torch.as_tensor([a for a in one.axes if a.images][0].images[0].get_array().data)
    _close(shown, exp.layer_time()[3, 0])
    assert one.axes[0].images[0].norm.vmin == -one.axes[0].images[0].norm.vmax


def test_sample_time_predicted_and_true_class_running_logit_ends_at_logit(rnn):
    net, x, lengths, y = rnn
    exp = net.explain(x, lengths=lengths)
    pred = int(exp.predicted[3])
    label = (pred + 1) % 3
    fig = plots.sample_time(exp, 3, label=label, series=x[3], class_names=NAMES)
    assert len(fig.axes) == 3
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[0].startswith(f"predicted: {NAMES[pred]}") and legend[1].startswith(f"true: {NAMES[label]}")
    for line, cls in zip([l for l in fig.axes[1].lines if l.get_linestyle() == "-"], (pred, label)):
        ydata = line.get_ydata()
        assert len(ydata) == int(lengths[3])  # padded steps are not drawn
        assert ydata[-1] == pytest.approx(float(exp.logits[3, cls]), abs=1e-5)
    assert fig.axes[-1].get_xlabel() == "time step" and fig.axes[1].get_ylabel() == "running logit"
    same = plots.sample_time(exp, 0, label=int(exp.predicted[0]))
    assert len(same.axes) == 2 and "= true" in same.axes[0].get_legend().get_texts()[0].get_text()
    with pytest.raises(TypeError, match="exp"):
        plots.sample_time(object())


def test_class_layer_summary_of_an_rnn(rnn):
    net, x, lengths, y = rnn
    for source in (net, net.explain(x, lengths=lengths)):
        fig = plots.class_layer_summary(source, class_names=NAMES)
        ax = fig.axes[0]
        assert _ticks(ax.get_xticklabels()) == ["layer 0", "layer 1"] and ax.get_xlabel() == "layer"
        _close(torch.as_tensor(ax.images[0].get_array().data).sum(1), torch.ones(3))


def test_numeric_class_names_are_labelled_as_classes(cnn2d):
    net, x = cnn2d
    fig = plots.top_units(net, k=1, class_names=["1", "2", "owl"])
    assert [ax.get_title() for ax in fig.axes] == ["class 1", "class 2", "owl"]


def test_figures_save_to_png(tmp_path, cnn2d):
    net, _ = cnn2d
    path = tmp_path / "heat.png"
    plots.unit_heatmap(net).savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
