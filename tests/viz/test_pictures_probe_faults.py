"""Faults a probe found in the pictures: padded steps drawn as evidence by time_importance / layer_time of one sample,
the waterfall's padding marks lost under unit_names, unit_names given as one string, a "$" in the user's labels read
as mathtext, and path_plot's bare AttributeError on something other than a SparsityPath."""

import io

import pytest
import torch
from torch import nn

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import neuroview as nv  # noqa: E402
from neuroview.viz import plots  # noqa: E402
from neuroview.viz.sparsity import path_plot  # noqa: E402


@pytest.fixture(scope="module")
def padded():
    """A GRU over 8 steps; sample 1 is 5 steps long, explained against a baseline (its padded steps add -W baseline)."""
    torch.manual_seed(0)
    rnn = nv.wrap(nn.GRU(1, 4, batch_first=True), num_classes=3, max_len=8).eval()
    x = torch.randn(3, 8, 1)
    return rnn.explain(x, lengths=torch.tensor([8, 5, 3]), baseline=torch.randn(1, 1, 8, 4) * 0.5)


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU()), 3).eval()
    x = torch.rand(4, 1, 8, 8)
    return net, x, net.explain(x)


def _ticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def _hatched_spans(ax) -> list[tuple[float, float]]:
    """The x extents of the hatched, unfilled patches (a padding span; the bars are filled)."""
    out = []
    for p in ax.patches:
        if p.get_hatch() and p.get_facecolor()[3] == 0:  # axvspan: a Rectangle (matplotlib >= 3.9) or a Polygon
            xs = [p.get_x(), p.get_x() + p.get_width()] if hasattr(p, "get_width") else list(p.get_xy()[:, 0])
            out.append((round(float(min(xs)), 3), round(float(max(xs)), 3)))
    return out


def test_time_importance_of_one_sample_marks_its_padded_steps(padded):
    fig = plots.time_importance(padded, sample=1, classes=[0])
    ax = fig.axes[0]
    bars = [p for p in ax.patches if p.get_facecolor()[3] > 0]
    assert len(bars) == 8
    assert [bool(b.get_hatch()) for b in bars] == [False] * 5 + [True] * 3  # steps 5-7 are past the series' end
    assert (4.5, 7.5) in _hatched_spans(ax)
    assert "padding" in fig._suptitle.get_text() and "from step 5" in fig._suptitle.get_text()


def test_layer_time_of_one_sample_marks_its_padded_steps(padded):
    fig = plots.layer_time(padded, sample=2, classes=[0, 1])
    for ax in fig.axes[:2]:
        assert (2.5, 7.5) in _hatched_spans(ax)  # sample 2 is 3 steps long
    assert "from step 3: padding" in fig._suptitle.get_text()


def test_class_means_and_a_full_length_sample_get_no_padding_mark(padded):
    y = torch.tensor([0, 1, 2])
    for fig in (plots.time_importance(padded, y=y), plots.layer_time(padded, y=y), plots.time_importance(padded, sample=0)):
        assert "padding" not in fig._suptitle.get_text()
        assert not any(_hatched_spans(ax) for ax in fig.axes)


def test_waterfall_keeps_the_padding_marks_under_unit_names(padded):
    names = [f"t={10 * i}ms" for i in range(8)]
    plain = _ticks(plots.waterfall(padded, 1, k=3).axes[0])
    named = _ticks(plots.waterfall(padded, 1, k=3, unit_names=names).axes[0])
    # steps 5-7 are one bar, their sum (as k90 counts them), here in the others' bar; told by index, not by label text
    assert named[4] == plain[4] == "2 other steps and padding, steps 5-7"
    assert named[1:4] == ["t=30ms", "t=0ms", "t=10ms"]  # steps within the series: the user's label alone
    full = _ticks(plots.waterfall(padded, 1, k=6, unit_names=names).axes[0])
    assert full[-2] == "padding, steps 5-7" and not any(n in full for n in names[5:])  # the padding keeps its label


def test_waterfall_refuses_unit_names_given_as_one_string(cnn):
    _, _, exp = cnn
    assert len(exp.units) == len("kernel_1x9")  # as long as the units: read one character per unit before
    with pytest.raises(TypeError, match=r"unit_names: expected a sequence of labels, one per unit, got str 'kernel_1x9'"):
        plots.waterfall(exp, 0, k=3, unit_names="kernel_1x9")


def _save(fig) -> None:
    fig.savefig(io.BytesIO(), format="png")


def test_a_dollar_in_unit_names_or_sample_id_is_drawn_as_it_is(cnn, padded):
    net, x, exp = cnn
    fig = plots.waterfall(exp, 0, k=2, unit_names=[f"US$5-US$10 #{i}" for i in range(10)], sample_id="$\\foo$")
    _save(fig)  # was matplotlib's ParseFatalException
    assert all(r"US\$5-US\$10" in t for t in _ticks(fig.axes[0])[1:3])
    assert fig.axes[0].get_title().startswith(r"sample \$\foo\$:")
    fig = plots.spatial_maps(net.explain(x, maps=True), x, 0, sample_id="$\\foo$")
    _save(fig)
    assert fig._suptitle.get_text().startswith(r"Sample \$\foo\$:")
    fig = plots.sample_time(padded, 0, sample_id="$\\foo$")
    _save(fig)
    assert fig._suptitle.get_text().startswith(r"Sample \$\foo\$:")


@pytest.mark.parametrize("bad", [None, {"val_acc": [90.0]}])
def test_path_plot_refuses_what_is_not_a_sparsity_path_by_name(bad):
    with pytest.raises(TypeError, match=rf"path: expected a SparsityPath \(sparse.sparsity_path\), got {type(bad).__name__}"):
        path_plot(bad)
