"""Probe P4's findings on the pictures: a site (module) name holding ``$`` drawn as written (it was mathtext, and
``\\foo`` ended savefig), a non-finite decision refused (it was drawn as an empty waterfall "adding nothing"), one
colour per site past 20 sites, a constant image drawn in its own shade (it was black), titles that fit a plainly saved
figure, a one-step decision drawn as points on whole steps, and class names that print alike refused."""

import io
import unicodedata
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import to_hex, to_rgb  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from neuroview.viz import plots  # noqa: E402


def _cnn(names=("conv", "act"), classes: int = 3, cin: int = 1) -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    bb = nn.Sequential(OrderedDict([(names[0], nn.Conv2d(cin, 4, 3, padding=1)), (names[1], nn.ReLU())]))
    return nv.NeuroViewCNN(bb, classes, input_shape=(cin, 8, 8)).eval()


def _rnn(classes: int = 3, steps: int = 6, **kw) -> nv.NeuroViewRNN:
    torch.manual_seed(0)
    return nv.NeuroViewRNN(nn.GRU(2, 5, batch_first=True), classes, max_len=steps, **kw).eval()


def _drawn(text_obj) -> tuple[str, bool]:
    """What matplotlib draws for a Text: ``(string, as mathtext)``."""
    return text_obj._preprocess_math(text_obj.get_text())


def _texts(fig) -> list:
    return [t for t in fig.findobj(Text) if t.get_text()]


# --- 1. site names with "$" -----------------------------------------------------------------------------------------

SITE = "act$\\foo$"  # a legal module name: nn.Module refuses only "" and names with "."


def test_site_names_with_dollar_are_drawn_as_written_and_save():
    net = _cnn(("conv", SITE))
    x = torch.rand(4, 1, 8, 8)
    exp = net.explain(x, maps=True)
    g = nv.unit_gallery(net, [x], units=[0, 1], k=2)
    figs = {"waterfall": plots.waterfall(exp, 0), "top_units": plots.top_units(net, k=2),
            "heatmap": plots.unit_heatmap(net), "spatial": plots.spatial_maps(exp, x, 0),
            "summary": plots.class_layer_summary(net), "gallery": plots.unit_gallery_plot(g),
            "waterfall_gallery": plots.waterfall(exp, 0, gallery=g, k=2)}
    for name, fig in figs.items():
        fig.savefig(io.BytesIO(), format="png")  # matplotlib's ParseFatalException on "\foo" before
        shown = [_drawn(t) for t in _texts(fig) if "foo" in t.get_text()]
        assert shown, name
        for s, math in shown:
            assert not math and "act$\\foo$" in s, (name, s)
    ticks = [_drawn(t)[0] for t in figs["top_units"].axes[0].get_yticklabels()]
    assert all(t.startswith("act$\\foo$ #") for t in ticks), ticks


# --- 2. a non-finite decision ---------------------------------------------------------------------------------------

def _nan_head(net):
    with torch.no_grad():
        net.classifier.weight[0, 0] = float("nan")
    return net


def test_a_nan_head_weight_is_refused_by_the_cnn_pictures_not_drawn_blank():
    net = _nan_head(_cnn())
    x = torch.rand(2, 1, 8, 8)
    exp = net.explain(x, maps=True)
    assert torch.isnan(exp.logits[:, 0]).all()  # the known answer: class 0's logit is NaN
    with pytest.raises(ValueError, match=r"sample 0's logit of class 0 is nan.*non-finite decision"):
        plots.waterfall(exp, 0)
    with pytest.raises(ValueError, match=r"sample 0's logit of class 0 is nan"):
        plots.waterfall(exp, 0, target=1)  # "predicted class 0" is argmax's reading of NaN
    with pytest.raises(ValueError, match=r"sample 1's logit of class 0 is nan"):
        plots.spatial_maps(exp, x, 1)
    with pytest.raises(ValueError, match=r"source: expected finite classifier weights, got 1 NaN.*class 0's weight"):
        plots.top_units(net)
    with pytest.raises(ValueError, match=r"source: expected finite classifier weights"):
        plots.unit_heatmap(net)
    with pytest.raises(ValueError, match=r"source: the weights of classes \[0\] hold NaN or Inf"):
        plots.class_layer_summary(net)  # drawn as "class 0 (no sample)" before
    with pytest.raises(ValueError, match=r"source: samples \[0, 1\] have NaN or Inf logits"):
        plots.class_layer_summary(exp, y=torch.tensor([0, 1]))


def test_a_finite_head_still_draws():
    net = _cnn()
    exp = net.explain(torch.rand(2, 1, 8, 8))
    assert plots.waterfall(exp, 0).axes and plots.top_units(net).axes and plots.unit_heatmap(net).axes


def test_a_nan_head_weight_is_refused_by_sample_time():
    net = _rnn()
    with torch.no_grad():
        net.classifier.weight[1, 0] = float("nan")
    exp = net.explain(torch.rand(2, 6, 2))
    with pytest.raises(ValueError, match=r"sample 0's logit of class 1 is nan"):
        plots.sample_time(exp, 0)


# --- 3. one colour per site past 20 sites ---------------------------------------------------------------------------

def test_top_units_gives_each_site_drawn_its_own_colour_past_20_sites():
    torch.manual_seed(0)
    layers = [nn.Conv2d(1, 3, 3, padding=1), nn.ReLU()]
    for _ in range(24):
        layers += [nn.Conv2d(3, 3, 3, padding=1), nn.ReLU()]
    net = nv.NeuroViewCNN(nn.Sequential(*layers), 3, input_shape=(1, 8, 8)).eval()
    fig = plots.top_units(net, k=25)
    leg = fig.legends[0]
    key = {t.get_text(): to_hex(h.get_facecolor()) for h, t in zip(leg.legend_handles, leg.get_texts())}
    assert len(set(key.values())) == len(key)  # tab20 gave '3' and '43' one light blue
    drawn = set()
    for ax in fig.axes:
        for bar, tick in zip(ax.patches, ax.get_yticklabels()):
            site = tick.get_text().split(" #")[0]
            drawn.add(site)
            assert to_hex(bar.get_facecolor()) == key[site], site  # the bar's colour is its site's in the key
    assert drawn == set(key)  # the key lists the sites drawn, no other
    assert len(drawn) > 20


def test_top_units_key_lists_only_the_sites_drawn():
    net = _cnn()
    with torch.no_grad():  # class reads units of one site only: site "act" has units 0-3
        net.classifier.weight.zero_()
        net.classifier.weight[:, 1] = 1.0
    fig = plots.top_units(net, k=2, standardized=False)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["act"]



def _key(fig) -> dict[str, str]:
    leg = fig.legends[0]
    return {t.get_text(): to_hex(h.get_facecolor()) for h, t in zip(leg.legend_handles, leg.get_texts())}


def test_top_units_gives_a_site_one_colour_in_every_figure_of_a_network():
    # sites "1", "3", "5" (4, 6, 6 units); class 0 reads site "3" alone, class 1 site "5", class 2 site "1"
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                       nn.Conv2d(6, 6, 3, padding=1), nn.ReLU())
    net = nv.NeuroViewCNN(bb, 3, input_shape=(1, 8, 8)).eval()
    with torch.no_grad():
        net.classifier.weight.zero_()
        net.classifier.weight[0, 5], net.classifier.weight[1, 12], net.classifier.weight[2, 0] = 1.0, 2.0, 3.0
    tab10 = matplotlib.colormaps["tab10"]
    want = {"1": to_hex(tab10(0)), "3": to_hex(tab10(1)), "5": to_hex(tab10(2))}  # the site's place in the network
    assert _key(plots.top_units(net, k=1, classes=[0], standardized=False)) == {"3": want["3"]}  # was tab10(0), blue
    assert _key(plots.top_units(net, k=1, classes=[1], standardized=False)) == {"5": want["5"]}  # was blue too
    assert _key(plots.top_units(net, k=1, standardized=False)) == want


def _deep_net(n_sites: int = 25, classes: int = 2):
    layers = [nn.Conv2d(1, 3, 3, padding=1), nn.ReLU()]
    for _ in range(n_sites - 1):
        layers += [nn.Conv2d(3, 3, 3, padding=1), nn.ReLU()]
    return nv.NeuroViewCNN(nn.Sequential(*layers), classes, input_shape=(1, 8, 8)).eval()  # sites "1", "3", ...


def test_top_units_past_20_sites_gives_a_site_one_colour_in_every_figure():
    torch.manual_seed(0)
    net = _deep_net()
    with torch.no_grad():  # class 0 reads site "5" (units 6-8) and "45" (66-68), class 1 site "45" alone
        net.classifier.weight.zero_()
        net.classifier.weight[0, 6], net.classifier.weight[0, 66], net.classifier.weight[1, 67] = 1.0, 0.5, 1.0
    both = _key(plots.top_units(net, k=2, classes=[0], standardized=False))
    assert set(both) == {"5", "45"} and both["5"] != both["45"]
    assert _key(plots.top_units(net, k=1, classes=[1], standardized=False)) == {"45": both["45"]}


def _rgb_gap(a: str, b: str) -> float:
    """The largest difference of one RGB channel between two colours, 0..1."""
    return max(abs(x - y) for x, y in zip(to_rgb(a), to_rgb(b)))


def test_top_units_past_20_sites_draws_adjacent_sites_in_distinct_colours():
    """A ResNet-50's 49 sites: the top units mostly come from the last few; viridis by depth drew sites 46-48 in three
    yellows (largest channel difference 0.097 between any two)."""
    torch.manual_seed(0)
    net = _deep_net(49)
    with torch.no_grad():  # class 0 reads the last three sites, one unit each (units 138, 141, 144)
        net.classifier.weight.zero_()
        net.classifier.weight[0, 138], net.classifier.weight[0, 141], net.classifier.weight[0, 144] = 3.0, 2.0, 1.0
    key = _key(plots.top_units(net, k=3, classes=[0], standardized=False))
    assert list(key) == ["93", "95", "97"]
    gaps = [_rgb_gap(key[a], key[b]) for a, b in (("93", "95"), ("95", "97"), ("93", "97"))]
    assert min(gaps) >= 0.25, gaps
    # every pair of adjacent sites, and of sites up to 5 apart, of networks of 21 to 160 sites
    from neuroview.viz.units import _site_colors  # noqa: PLC0415
    for n in (21, 49, 160):
        sites = [str(i) for i in range(n)]
        cols = [to_hex(_site_colors(sites, set(sites))[s]) for s in sites]
        assert len(set(cols)) == n  # one colour each
        for apart in range(1, 6):
            gap = min(_rgb_gap(cols[i], cols[i + apart]) for i in range(n - apart))
            assert gap >= (0.5 if apart == 1 else 0.2), (n, apart, gap)

# --- 4. constant images ---------------------------------------------------------------------------------------------

def _centre(fig, ax) -> list[int]:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    img = torch.from_numpy(np.asarray(canvas.buffer_rgba()).copy())
    bb = ax.get_window_extent()
    return img[int(img.shape[0] - (bb.y0 + bb.y1) / 2), int((bb.x0 + bb.x1) / 2), :3].tolist()


@pytest.mark.parametrize("cin,value,rgb", [(1, 1.0, [255, 255, 255]), (1, 0.0, [0, 0, 0]),
                                           (3, 1.0, [255, 255, 255]), (3, 0.3, [76, 76, 76]), (1, 0.5, [127, 127, 127])])
def test_spatial_maps_draws_a_constant_image_in_its_own_shade(cin, value, rgb):
    net = _cnn(cin=cin)
    x = torch.full((2, cin, 8, 8), value)
    fig = plots.spatial_maps(net.explain(x, maps=True), x, 0)
    got = _centre(fig, fig.axes[0])
    assert all(abs(a - b) <= 1 for a, b in zip(got, rgb)), got  # all black before


def test_spatial_maps_says_a_constant_image_outside_0_1_is_drawn_grey():
    net = _cnn()
    x = torch.full((2, 1, 8, 8), 7.0)
    fig = plots.spatial_maps(net.explain(x, maps=True), x, 0)
    assert "constant input 7, drawn grey" in fig.axes[0].get_title().replace("\n", " ")
    assert all(abs(a - 127) <= 1 for a in _centre(fig, fig.axes[0]))


@pytest.mark.parametrize("cin,value", [(1, 1.0), (3, 0.3)])
def test_gallery_thumbnail_of_a_constant_image_keeps_its_shade(cin, value):
    net = _cnn(cin=cin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # every sample alike: the gallery says so
        g = nv.unit_gallery(net, [torch.full((4, cin, 8, 8), value)], units=[0], k=1)
    im = plots.unit_gallery_plot(g).axes[0].images[0]  # the input; the code map is drawn over it
    rgba = torch.as_tensor(im.to_rgba(im.get_array()))
    assert torch.allclose(rgba[..., :3].float(), torch.full_like(rgba[..., :3].float(), value), atol=0.01)


# --- 5. titles that fit ---------------------------------------------------------------------------------------------

def _inside(fig, text) -> bool:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    bb = text.get_window_extent(canvas.get_renderer())
    return bb.x0 >= 0 and bb.x1 <= fig.bbox.width


def test_unit_heatmap_of_a_small_network_keeps_its_axis_label_inside():
    # its title is left as it is: tests/viz/test_report_files_probe_faults.py needs it wider than this figure
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 16)).eval()
    fig = plots.unit_heatmap(net)
    assert _inside(fig, fig.axes[0].xaxis.label)
    assert fig.axes[0].get_xlabel().replace("\n", " ") == "unit (channel), grouped by the class it weighs most"


@pytest.mark.parametrize("normalize,words", [(False, "(no normalization: nothing records"),
                                             (True, "(not trained yet: its normalization has seen no batch")])
def test_layer_time_title_fits_and_says_why_no_steps_are_known(normalize, words):
    fig = plots.layer_time(_rnn(normalize=normalize))
    assert _inside(fig, fig._suptitle)
    assert words in fig._suptitle.get_text().replace("\n", " ")


# --- 6. a one-step decision -----------------------------------------------------------------------------------------

def _visible(line) -> bool:
    return len(line.get_xdata()) > 1 or line.get_marker() not in ("None", "", None, " ")


@pytest.mark.parametrize("steps,lengths", [(1, None), (6, torch.tensor([1, 6]))])
def test_sample_time_draws_a_one_step_decision_as_points_on_whole_steps(steps, lengths):
    net = _rnn(steps=steps)
    x = torch.rand(2, steps, 2)
    exp = net.explain(x, lengths=lengths) if lengths is not None else net.explain(x)
    fig = plots.sample_time(exp, 0, series=x[0, :1])
    contrib, running, inputs = fig.axes[:3]
    solid = [ln for ln in running.get_lines() if ln.get_linestyle() != "--"]
    assert solid and all(_visible(ln) for ln in solid)
    assert inputs.get_lines() and all(_visible(ln) for ln in inputs.get_lines())
    FigureCanvasAgg(fig).draw()
    lo, hi = inputs.get_xlim()
    ticks = [t for t in inputs.get_xticks() if lo <= t <= hi]
    assert ticks == [0.0]  # -0.06 ... 0.06 before


def test_time_importance_of_one_step_ticks_whole_steps():
    fig = plots.time_importance(torch.tensor([[1.0], [-2.0]]))
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[-1]
    lo, hi = ax.get_xlim()
    assert [t for t in ax.get_xticks() if lo <= t <= hi] == [0.0]



def _step_ticks(fig) -> tuple[list[float], float]:
    """The step axis's ticks in view, and the axis's right end."""
    FigureCanvasAgg(fig).draw()
    ax = [a for a in fig.axes if a.get_xlabel()][-1]  # the step axis (the colour bar has no x label)
    lo, hi = ax.get_xlim()
    return [float(t) for t in ax.get_xticks() if lo <= t <= hi], hi


@pytest.mark.parametrize("steps,gap", [(2, 1), (26, 5), (70, 10), (140, 20)])
def test_step_axes_are_ticked_at_round_whole_steps(steps, gap):
    # matplotlib's own round ticks (multiples of 1, 2, 5 of a power of ten), as before the one-step fix: that fix's
    # locator took any multiplier 1..10 and ticked 0, 3, 6 ... 24 for 26 steps, 0, 8 ... 64 for 70, 0, 15 ... 135 for 140
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 2, max_len=steps).eval()
    exp = net.explain(torch.randn(3, steps, 2))
    for fig in (plots.time_importance(exp), plots.layer_time(exp), plots.sample_time(exp, 0)):
        ticks, hi = _step_ticks(fig)
        assert ticks == [float(t) for t in range(0, int(hi) + 1, gap)]  # every multiple of gap from step 0 in view
        assert ticks[-1] >= steps - gap  # the whole axis ticked (sample_time's axis runs a little past the last step)

# --- 7. class names that print alike --------------------------------------------------------------------------------

NFC, NFD = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")


@pytest.mark.parametrize("names,match", [(["cat", "cat ", "dog"], r"'cat' and 'cat '.*whitespace"),
                                         ([NFC, NFD, "dog"], r"two Unicode forms"),
                                         (["", " x", "dog"], r"got '' for class 0"),
                                         (["a", " ", "dog"], r"got ' ' for class 1")])
def test_plots_refuse_class_names_that_print_alike_or_not_at_all(names, match):
    net = _cnn()
    with pytest.raises(ValueError, match=r"class_names: expected .*" + match):
        plots.top_units(net, class_names=names)
    with pytest.raises(ValueError, match=r"class_names: expected .*" + match):
        plots.waterfall(net.explain(torch.rand(1, 1, 8, 8)), 0, class_names=names)


def test_write_report_refuses_names_that_print_alike_before_writing(tmp_path):
    from neuroview.viz.report_writer import write_report

    net = _cnn()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"class_names: expected names that print apart, got 'cat' and 'cat '"):
            write_report(net, torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2] * 2), tmp_path / "rep",
                         class_names=["cat", "cat ", "dog"], progress=False, examples=1)
    assert not (tmp_path / "rep").exists()
