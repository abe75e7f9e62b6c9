"""The pictures and tables show the numbers they say they show (found by probing them against the
explanation's own tensors): a class given by name is not read as an index, a sparse head's zero-weight
units are not "top units", the report's maps and galleries take the waterfalls' baseline, a running logit
ends at the logit, and a series drawn on the steps' axis has one value per step."""

from __future__ import annotations

import traceback

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.viz import plots  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402
from nets import small_report_cnn, small_report_rnn, with_running_stats  # noqa: E402


@pytest.fixture(scope="module")
def cnn():
    return small_report_cnn()


@pytest.fixture(scope="module")
def rnn():
    return small_report_rnn()


def test_a_class_name_is_not_read_as_its_index(cnn, rnn):
    """int("1") made the name "1" class index 1 (GunPoint's classes are "1" and "2"): a waterfall of class "2"."""
    net, x, _ = cnn
    exp = net.explain(x)
    names = ["1", "2"]
    with pytest.raises(TypeError, match=r"target: expected class indices, got the string '1'.*class_names.index"):
        plots.waterfall(exp, 0, target="1", class_names=names)
    with pytest.raises(TypeError, match=r"classes: expected class indices, got the string '1'"):
        plots.top_units(net, classes=["1"], class_names=names)
    with pytest.raises(TypeError, match=r"target: expected class indices, got the string"):
        exp.for_class("1")
    with pytest.raises(ValueError, match=r"target: expected integer class labels.*1.7"):
        plots.waterfall(exp, 0, target=1.7)  # was class 1
    with pytest.raises(ValueError, match=r"label: expected a class index in \[0, 2\), got -1"):
        plots.waterfall(exp, 0, label=-1)  # was "true 2", names[-1]
    rexp = rnn[0].explain(rnn[1])
    with pytest.raises(TypeError, match=r"label: expected class indices, got the string '1'"):
        plots.sample_time(rexp, 0, label="1")
    with pytest.raises(TypeError, match=r"classes: expected class indices, got the string"):
        plots.time_importance(rexp, classes=["1"], class_names=names)
    assert plots.waterfall(exp, 0, target=1.0, class_names=names) is not None  # a whole-number float is its class


def test_a_sparse_heads_zero_weights_are_not_top_units(cnn):
    net, x, _ = cnn
    sparse = nv.NeuroViewCNN(net.backbone, 2, input_shape=(1, 6, 6), normalize=False)
    with torch.no_grad():
        w = torch.zeros(2, 9)
        w[0, [1, 6]] = torch.tensor([0.5, -0.2])  # class 0 reads two units; class 1 one
        w[1, 3] = 0.7
        sparse.classifier.weight.copy_(w)
    tops = sparse.top_units(k=5, standardized=False)
    # every unit a class reads, largest weight first, zeros left out (before: unit 1, then four units of weight 0
    # ranked above the -0.2, which were then dropped: the -0.2 unit class 0 reads was never shown)
    assert [[(s, c) for s, c, _ in t] for t in tops] == [[sparse.units[1], sparse.units[6]], [sparse.units[3]]]
    fig = plots.top_units(sparse, k=5, standardized=False)
    bars = [[p.get_width() for p in ax.patches] for ax in fig.axes[:2]]
    assert bars == [pytest.approx([0.5, -0.2]), pytest.approx([0.7])]
    labels = [[t.get_text() for t in ax.get_yticklabels()] for ax in fig.axes[:2]]
    want = [[sparse.units[1], sparse.units[6]], [sparse.units[3]]]
    assert sorted(labels[0]) == sorted(f"{s} #{c}" for s, c in want[0]) and labels[1] == [f"{s} #{c}" for s, c in want[1]]


def test_the_reports_maps_and_gallery_take_the_waterfalls_baseline(cnn, rnn, tmp_path, monkeypatch):
    """The maps were explained against zero codes (a unit's map summed to another number than its bar), the
    RNN gallery ranked series by contributions against zero states beside bars against the training mean."""
    for name, (net, x, y) in (("cnn", cnn), ("rnn", rnn)):
        calls = []
        real = net.explain

        def spy(*a, _real=real, **kw):
            caller = traceback.extract_stack()[-2].filename
            if not caller.endswith("gallery.py") or name == "rnn":  # a CNN gallery reads code maps: no baseline in them
                calls.append(kw.get("baseline"))
            return _real(*a, **kw)

        monkeypatch.setattr(net, "explain", spy)
        faces = ([(x, y)] if name == "cnn" else [(x.transpose(1, 2), y)], None)
        write_report(net, x, y, tmp_path / name, examples=2, progress=False, dpi=30, gallery_data=faces[0])
        monkeypatch.undo()
        assert calls and all(isinstance(b, torch.Tensor) or b == "mean" for b in calls), (name, calls)


def test_a_running_logit_ends_at_the_logit_of_a_padded_series(rnn):
    """Steps past a series' end add their -W baseline against a baseline; the line left them out (it ended
    0.23 off the dashed logit), and the waterfall drew them as plain steps."""
    net, x, _ = rnn
    lengths = torch.tensor([5, 8, 3, 8, 8, 8, 8])
    exp = net.explain(x, lengths, baseline="mean")
    fig = plots.sample_time(exp, 0)
    line = fig.axes[1].get_lines()[0]
    assert float(line.get_ydata()[-1]) == pytest.approx(float(exp.logits[0, exp.predicted[0]]), abs=1e-5)
    assert len(line.get_xdata()) == 5
    labels = [t.get_text() for t in plots.waterfall(exp, 0, k=8).axes[0].get_xticklabels()
              + plots.waterfall(exp, 0, k=8).axes[0].get_yticklabels()]
    assert any("padding, steps 5-7" in s for s in labels) and not any("step 6" in s for s in labels)


def test_a_series_drawn_on_the_steps_axis_has_one_value_per_step(rnn):
    """A network whose step reads 3 samples has a third as many steps as samples: the raw series was drawn a
    third of its length under the wrong steps."""
    net, x, _ = rnn
    exp = net.explain(x)
    with pytest.raises(ValueError, match=r"series: 24 values for 8 steps.*per_step"):
        plots.sample_time(exp, 0, series=torch.randn(24))
    with pytest.raises(ValueError, match=r"series: 24 values for 8 steps"):
        plots.time_importance(exp, series=torch.randn(24))
    assert plots.sample_time(exp, 0, series=x[0]) is not None  # one value per step


def test_an_rnn_gallery_ranks_by_the_contributions_against_its_baseline(rnn):
    net, x, y = rnn
    got = nv.unit_gallery(net, [(x.transpose(1, 2), y)], [2, 5], k=3, baseline="mean")
    exp = net.explain(x, baseline="mean")
    value = exp.time_importance[torch.arange(len(x)), exp.predicted]
    for r, step in enumerate([2, 5]):
        want = value[:, step].abs().argsort(descending=True, stable=True)[:3]
        assert got.index[r].tolist() == want.tolist()
        torch.testing.assert_close(got.value[r], value[want, step])
    assert got.ranked_by.endswith("against the baseline")


def test_a_class_with_no_sample_here_is_left_out_of_the_reports_per_class_tables(tmp_path):
    """Its mean over no samples was written as a row (a column) of zeros, under "rows sum to 1"."""
    from neuroview.attribution import export

    torch.manual_seed(1)
    net = nv.NeuroViewRNN(nn.GRU(2, 3, batch_first=True), num_classes=3, max_len=8)
    x, y = torch.randn(6, 8, 2), torch.tensor([0, 1, 0, 1, 0, 1])  # class 2 has no sample
    with_running_stats(net, x)
    write_report(net, x, y, tmp_path / "r", class_names=["a", "b", "c"], examples=1, progress=False, dpi=30)
    shares = export.read_csv(tmp_path / "r" / "layer_shares.csv")
    assert [r["class"] for r in shares] == ["a", "b"] and all(abs(sum(v for k, v in r.items() if k != "class") - 1) < 1e-6
                                                              for r in shares)
    steps = export.read_csv(tmp_path / "r" / "time_importance.csv")
    assert set(steps[0]) == {"step", "a", "b"}
