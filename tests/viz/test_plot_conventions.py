"""The pictures as a matplotlib user reads them (a probe of 2026-12-06): a legend naming the baseline's logit as such,
one class given as a numpy integer, a class name given as one string, the Figure of axes in a subfigure, and an
empty title left empty. Expected labels come from the explanation's own tensors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.attribution.faithfulness import unit_ablation  # noqa: E402
from neuroview.training.sparsify import SparsityPath  # noqa: E402
from neuroview.viz import plots  # noqa: E402
from neuroview.viz.sparsity import path_plot  # noqa: E402
from nets import small_report_cnn, with_running_stats  # noqa: E402


def test_the_running_logit_starts_at_the_baselines_logit_where_there_is_one():
    torch.manual_seed(0)
    rnn = with_running_stats(nv.wrap(nn.GRU(2, 8, batch_first=True), num_classes=3, max_len=6), torch.randn(4, 6, 2))
    x = torch.randn(3, 6, 2)
    exp = rnn.explain(x, lengths=torch.tensor([6, 4, 2]), baseline=torch.rand(1, 1, 6, 8))
    cls = int(exp.targets()[2])
    fig = plots.sample_time(exp, 2)
    legends = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert any(t.startswith(f"starts at the baseline's logit {float(exp.bias[cls]):+.3g}") for t in legends), legends
    plt.close(fig)


def test_one_class_as_a_numpy_integer_and_names_as_one_string():
    net, x, y = small_report_cnn()
    exp = net.explain(x)
    fig = plots.class_layer_summary(exp, y=y, classes=np.int64(1))
    plt.close(fig)
    fig = plots.top_units(net, k=2, classes=np.int64(1))
    assert len(fig.axes[0].patches) > 0
    plt.close(fig)
    for draw in (lambda: plots.waterfall(exp, 0, class_names="ab"), lambda: plots.unit_heatmap(net, class_names="ab")):
        with pytest.raises(TypeError, match=r"class_names: expected a sequence of names, one per class, got str 'ab'"):
            draw()


def test_deletion_curves_in_a_subfigure_return_its_figure_and_an_empty_title_stays_empty():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 16)).eval()
    x, y = torch.randn(30, 1, 16), torch.randint(0, 3, (30,))
    curves = unit_ablation(net, x, y, methods=["neuroview", "random"], seeds=(0,), steps=4)
    fig = plt.figure()
    ax = fig.subfigures(1, 2)[0].subplots()
    assert plots.plot_deletion_curves(curves, ax=ax, title="") is fig and ax.get_title() == ""
    plt.close(fig)
    path = SparsityPath(torch.tensor([1.0, 0.1]), torch.tensor([80.0, 95.0]), torch.tensor([85.0, 99.0]),
                        torch.tensor([2.0, 30.0]), torch.tensor([2.0, 30.0]), 1, 95.0, 1.0, "held out")
    fig = path_plot(path, title="")
    assert fig.axes[0].get_title() == ""
    plt.close(fig)


def test_a_report_refuses_class_names_given_as_one_string(tmp_path):
    from neuroview.viz.report import write_report  # noqa: PLC0415

    net, x, y = small_report_cnn()
    with pytest.raises(TypeError, match=r"class_names: expected a sequence of names, one per class, got str 'ab'"):
        write_report(net, x, y, tmp_path / "r", class_names="ab", examples=1, progress=False, dpi=30)
    assert not (tmp_path / "r").exists()


def test_classes_as_an_array_of_several_and_bools_of_any_kind():
    # (the review) an array of several classes was read as one, and numpy's or torch's bools as classes 0 and 1
    from types import MappingProxyType  # noqa: PLC0415

    net, x, y = small_report_cnn()
    for several in (torch.tensor([0, 1]), np.array([0, 1]), [0, 1]):
        fig = plots.top_units(net, k=2, classes=several)
        assert len([a for a in fig.axes if a.get_title()]) == 2
        plt.close(fig)
    for flag in (np.True_, torch.tensor(True), True):
        with pytest.raises(TypeError, match=r"classes: expected a class index, got the bool True"):
            plots.top_units(net, k=2, classes=flag)
    with pytest.raises(TypeError, match=r"class_names: expected a sequence of names, one per class, got mappingproxy"):
        plots.unit_heatmap(net, class_names=MappingProxyType({0: "a", 1: "b"}))
