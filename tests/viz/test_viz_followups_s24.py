"""Follow-ups of session 24's fixes in the pictures, the tables and the report (M1).

1. ``Explanation.predicted`` refuses a batch that holds a NaN decision: the plots that name one drawn sample's predicted
   class read it for the whole batch, so a finite sample of such a batch was refused too. They now read the sample
   drawn; the NaN sample itself is still refused by name.
2. ``to_records`` refuses class names that read alike once written (``1`` and ``'1'``, ``' a'`` and ``'a'``,
   ``core.explanation_checks.table_names``); the plots, ``export``'s tables and the report take the same rule (the
   tables of ``export`` took ``[' a', 'a']``: two columns one reader reads as one).
3. An RNN gallery keeps each series once and forms ``x [steps, k, C, T]`` when read; drawing it read ``x``, so a
   gallery of every step still formed the T-squared tensor. Drawn now from ``g.sample``: the same pictures.
4. ``neuroview explain --data`` takes the training commands' check of a JSON spec (every unknown key named).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.explanation import RNNExplanation

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.lines import Line2D  # noqa: E402

from neuroview.attribution import export  # noqa: E402
from neuroview.viz import plots  # noqa: E402

NAMES = ["cat", "dog", "eel"]


# ------------------------------------------------------------------ 1. a finite sample beside a NaN one draws
def _cnn_with_an_overflowed_sample():
    """Sample 1 is 3e38 everywhere: its conv output overflows to inf, and W times inf codes of both signs is NaN."""
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
    net = nv.NeuroViewCNN(bb, 3, input_shape=(1, 8, 8), quantizer="none").eval()
    net.check_finite = False  # let the overflowed sample through, as a user may
    x = torch.rand(3, 1, 8, 8)
    x[1] = 3e38
    exp = net.explain(x, maps=True)
    assert torch.isnan(exp.logits[1]).any() and torch.isfinite(exp.logits[[0, 2]]).all()  # the known answer
    return exp, x


def _rnn_with_a_nan_sample() -> RNNExplanation:
    """Codes ``[B, L, D, T, H]``: sample 0's steps 1, 2, 3; sample 1's first step NaN. Class 0 weighs every step 1,
    class 1 weighs them 1, -1, 0.5: sample 0's logits are 6 and 0.5 (class 0 predicted), sample 1's are NaN."""
    codes = torch.tensor([[1.0, 2.0, 3.0], [float("nan"), 1.0, 1.0]]).reshape(2, 1, 1, 3, 1)
    weight = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, 0.5]]).reshape(2, 1, 1, 3, 1)
    logits = torch.tensor([[6.0, 0.5], [float("nan"), float("nan")]])
    return RNNExplanation(logits=logits, bias=torch.zeros(2), codes=codes, weight=weight)


def _texts(fig) -> str:
    return " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))


def test_waterfall_draws_a_finite_sample_of_a_batch_that_holds_a_nan_decision():
    exp, _ = _cnn_with_an_overflowed_sample()
    with pytest.raises(ValueError, match="NaN"):
        exp.predicted  # the batch's: refused (F5)
    pred = max(range(3), key=lambda c: float(exp.logits[0, c]))  # sample 0's largest logit, read by hand
    fig = plots.waterfall(exp, 0, class_names=NAMES)
    assert f"predicted {NAMES[pred]}" in _texts(fig)
    assert f"predicted {NAMES[2]}" in _texts(plots.waterfall(exp, 2, class_names=NAMES, target=0))
    with pytest.raises(ValueError, match=r"^exp: sample 1's logit of class \d is (nan|inf).*non-finite decision"):
        plots.waterfall(exp, 1)


def test_spatial_maps_draws_a_finite_sample_of_a_batch_that_holds_a_nan_decision():
    exp, x = _cnn_with_an_overflowed_sample()
    pred = max(range(3), key=lambda c: float(exp.logits[0, c]))
    fig = plots.spatial_maps(exp, x, 0, class_names=NAMES)
    assert f"predicted {NAMES[pred]}" in _texts(fig)
    with pytest.raises(ValueError, match=r"^exp: sample 1's logit of class \d is (nan|inf).*non-finite decision"):
        plots.spatial_maps(exp, x, 1)


def test_sample_time_draws_a_finite_sample_of_a_batch_that_holds_a_nan_decision():
    exp = _rnn_with_a_nan_sample()
    fig = plots.sample_time(exp, 0, class_names=["up", "down"], label=1)
    text = _texts(fig)
    assert "predicted up" in text and "predicted: up (logit 6)" in text and "true: down (logit 0.5)" in text
    drawn = [line.get_ydata() for line in fig.axes[0].get_lines() if len(line.get_ydata()) == 3]
    assert [list(d) for d in drawn[:2]] == [[1.0, 2.0, 3.0], [1.0, -2.0, 1.5]]  # per-step contributions, by hand
    with pytest.raises(ValueError, match=r"^exp: sample 1's logit of class 0 is nan.*non-finite decision"):
        plots.sample_time(exp, 1)


# ------------------------------------------------------------------ 2. look-alike class names, one rule everywhere
ALIKE = [([1, "1", "b"], r"1 at 0 and '1' at 1 read '1'"), ([" a", "a", "b"], r"' a' at 0 and 'a' at 1 read 'a'"),
         (["b", "a\t", "a"], r"'a\\t' at 1 and 'a' at 2 read 'a'")]
NUMBER_SPACED = ([" 1", "1", "b"], r"' 1' at 0 and '1' at 1 read '1'")  # drawn "class  1" and "class 1"
RULE = r"^class_names: expected names that differ once written \(str\(\), surrounding spaces stripped\), got "


def _cnn() -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    return nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()


def _rnn() -> nv.NeuroViewRNN:
    torch.manual_seed(0)
    return nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 3, max_len=6).eval()


@pytest.mark.parametrize("names, clash", ALIKE + [NUMBER_SPACED])
def test_unit_and_time_tables_refuse_names_that_read_alike_by_name(names, clash):
    """``[' a', 'a']`` made two columns a reader that strips (a CSV's) reads as one."""
    with pytest.raises(ValueError, match=RULE + clash):
        export.unit_records(_cnn(), names)
    with pytest.raises(ValueError, match=RULE + clash):
        export.time_records(_rnn(), names)
    with pytest.raises(ValueError, match=RULE + clash):
        export.layer_time_records(_rnn(), names)


def test_tables_keep_distinct_names_as_given():
    rows = export.unit_records(_cnn(), [" cat", "dog", 3])
    assert list(rows[0])[2:] == [" cat", "dog", "3"]


def _draws(names):
    net, rnn = _cnn(), _rnn()
    x = torch.rand(2, 1, 8, 8)
    exp, rexp = net.explain(x, maps=True), rnn.explain(torch.rand(2, 6, 1))
    return {"waterfall": lambda: plots.waterfall(exp, 0, class_names=names),
            "spatial_maps": lambda: plots.spatial_maps(exp, x, 0, class_names=names),
            "top_units": lambda: plots.top_units(net, class_names=names),
            "unit_heatmap": lambda: plots.unit_heatmap(net, class_names=names),
            "class_layer_summary": lambda: plots.class_layer_summary(net, class_names=names),
            "sample_time": lambda: plots.sample_time(rexp, 0, class_names=names),
            "time_importance": lambda: plots.time_importance(rexp, class_names=names),
            "layer_time": lambda: plots.layer_time(rexp, class_names=names)}


def test_the_plots_refuse_names_the_tables_refuse_by_the_tables_rule():
    names, clash = NUMBER_SPACED
    for name, draw in _draws(names).items():
        with pytest.raises(ValueError, match=RULE + clash):
            draw()
            pytest.fail(f"{name} drew {names}")


@pytest.mark.parametrize("names, clash", ALIKE)
def test_the_plots_still_refuse_names_that_read_alike(names, clash):
    """Refused before too, each in the plots' own words (whitespace, Unicode forms: ``test_pictures_p4_s22``)."""
    for name, draw in _draws(names).items():
        with pytest.raises(ValueError, match=r"^class_names: expected (distinct names|names that print apart), got "):
            draw()
            pytest.fail(f"{name} drew {names}")


def test_the_report_refuses_names_the_tables_refuse_by_the_tables_rule(tmp_path):
    from neuroview.viz.report import write_report

    x, y = torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match=RULE + NUMBER_SPACED[1]):
        write_report(_cnn(), x, y, tmp_path / "r", class_names=NUMBER_SPACED[0], progress=False, examples=1)
    assert not (tmp_path / "r").exists()  # refused before anything is written


# ------------------------------------------------------------------ 3. an RNN gallery drawn without forming x
def _largest_held(g) -> int:
    """Elements of the largest tensor the gallery holds (its fields and what it keeps of them)."""
    held = list(vars(g).values())
    held += [e for v in held if isinstance(v, (tuple, list)) for e in v]
    return max(v.numel() for v in held if isinstance(v, torch.Tensor))


def _lines(fig) -> list[tuple[int, np.ndarray, np.ndarray]]:
    return [(i, np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float))
            for i, ax in enumerate(fig.axes) for line in ax.get_lines() if isinstance(line, Line2D)]


def _gallery_of_every_step():
    torch.manual_seed(0)
    t, n = 12, 10
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 2, max_len=t).eval()
    x, y = torch.randn(n, 1, t), torch.arange(n) % 2
    g = nv.unit_gallery(net, [(x[:5], y[:5]), (x[5:], y[5:])], units=list(range(t)), k=3)
    return net, x, y, g


def test_a_gallery_of_every_step_is_drawn_without_forming_x_and_draws_what_x_holds():
    net, x, y, g = _gallery_of_every_step()
    t, n = x.shape[-1], len(x)
    fig = plots.unit_gallery_plot(g)
    exp = net.explain(x[:2].transpose(1, 2))
    waterfall = plots.waterfall(exp, 0, gallery=g, k=4, thumbs=3)
    assert _largest_held(g) <= n * t  # drawn without forming [steps, k, C, T] (12 * 3 * 12 = 432 numbers)
    dense = dataclasses.replace(g, x=g.x)  # the same gallery, x formed: what drawing read before
    assert g.x.shape == (t, 3, 1, t) and torch.equal(g.x, x[g.index])
    for a, b in ((fig, plots.unit_gallery_plot(dense)), (waterfall, plots.waterfall(exp, 0, gallery=dense, k=4, thumbs=3))):
        got, want = _lines(a), _lines(b)
        assert len(got) == len(want) > 0
        for (i, gx, gy), (j, wx, wy) in zip(got, want):
            assert i == j and np.array_equal(gx, wx) and np.array_equal(gy, wy)
    # each thumbnail's curve is its sample of x, drawn highest on top (y runs down): an affine map of slope < 0
    axes = np.asarray(fig.axes).reshape(t, 4)  # the class means, then k = 3 thumbnails a row
    for row in range(t):
        for j in range(3):
            (curve,) = axes[row, j + 1].get_lines()
            v, drawn = g.x[row, j, 0].double().numpy(), np.asarray(curve.get_ydata(), dtype=float)
            slope = np.polyfit(v, drawn, 1)[0]
            assert slope < 0 and np.allclose(drawn, np.polyval(np.polyfit(v, drawn, 1), v), atol=1e-9)


def test_an_image_gallery_draws_as_before():
    net = _cnn()
    x = torch.rand(6, 1, 8, 8)
    g = nv.unit_gallery(net, [(x, torch.arange(6) % 3)], units=[0, 2], k=2)
    fig = plots.unit_gallery_plot(g)
    images = [im.get_array() for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 2 * 2 * 2  # each thumbnail: the input and its code map
    assert np.allclose(np.asarray(images[0]), g.x[0, 0, 0].numpy())  # one channel: drawn in grey, as it is


# ------------------------------------------------------------------ 4. explain --data: the shared check of a spec
def test_explain_names_every_unknown_key_of_a_json_spec():
    from neuroview.viz import explain_options
    from neuroview.viz.report import data_module

    assert not hasattr(explain_options, "check_spec_args")  # one check, the training commands'
    spec = '{"class_path": "neuroview.data.DigitsDataModule", "init_args": {"sed": 1, "batch_sizee": 8}}'
    with pytest.raises(ValueError, match=re.escape("--data: init_args: unexpected arguments 'sed', 'batch_sizee' of "
                                                   "DigitsDataModule")):
        data_module(spec)
    with pytest.raises(ValueError, match=r"^--data: unexpected key 'init_arg' of a JSON data-module spec"):
        data_module('{"class_path": "neuroview.data.DigitsDataModule", "init_arg": {"seed": 1}}')
