"""The importance-map probe's faults (s16, /tmp/probes/maps): a negative ``sample`` titled "sample -1" where the
tables number that sample 5; ``CNNExplanation.to_records()`` against a baseline gave ``contribution = W (code -
baseline)`` beside the raw code with no baseline column; an RNN's global per-step weights ranked steps no training
series reaches first (their weights keep their initial values, scaled up by the floored variance); and a windowed
RNN's steps were labelled as time steps everywhere, though each reads ``window`` input samples."""

import json
import math
import warnings

import matplotlib
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.export import read_csv
from neuroview.attribution.importance import _check_sample
from neuroview.core.explanation import CNNExplanation
from neuroview.viz import decision, temporal, units
from neuroview.viz.report_writer import write_report

matplotlib.use("Agg")


# ----------------------------------------------------------------- 4: a negative sample index is named by position
def test_check_sample_gives_the_position_of_a_negative_index():
    assert [_check_sample(i, 6) for i in (-1, -6, 0, 5)] == [5, 0, 0, 5]
    with pytest.raises(IndexError, match="sample"):
        _check_sample(-7, 6)


def test_titles_name_a_negative_sample_by_its_position_in_the_batch():
    torch.manual_seed(0)
    x = torch.randn(6, 1, 12)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU()), 3, example_input=x).eval()
    e = net.explain(x, maps=True)
    # before: "sample -1: ...", a number no table gives; predictions.csv and to_records call the last of 6 samples 5
    assert decision.waterfall(e, -1).axes[0].get_title().startswith("sample 5:")
    assert units.spatial_maps(e, x, -1)._suptitle.get_text().startswith("Sample 5:")
    rnn = nv.NeuroViewRNN(nn.GRU(1, 3, batch_first=True), 2, max_len=5).eval()
    er = rnn.explain(torch.randn(4, 5, 1))
    assert temporal.sample_time(er, -1)._suptitle.get_text().startswith("Sample 3:")
    fig = temporal.time_importance(er, sample=-1)
    assert "contributions of sample 3" in fig._suptitle.get_text()
    heights = [b.get_height() for b in fig.axes[0].patches]
    assert heights == pytest.approx(er.time_importance[3, 0].tolist())  # and it is the last sample's bars
    assert "contributions of sample 3" in temporal.layer_time(er, sample=-1)._suptitle.get_text()


# ------------------------------------------------------------ 3: to_records says what a contribution is taken against
def test_cnn_records_against_a_baseline_carry_it_and_recompute_by_hand():
    w = torch.tensor([[2.0, -1.0], [0.5, 3.0]])  # [C, U], set by hand
    codes = torch.tensor([[0.0, 1.0], [0.25, 0.5]])
    base = torch.tensor([0.5, 0.25])
    e = CNNExplanation(logits=torch.zeros(2, 2), bias=torch.zeros(2), codes=codes, weight=w, baseline=base,
                       units=[("a", 0), ("a", 1)], site_slices={"a": slice(0, 2)})
    rows = e.to_records()
    assert list(rows[0]) == ["sample", "class", "site", "channel", "code", "baseline", "contribution"]
    for r in rows:  # every row recomputes from the table's own numbers: W[class, unit] * (code - baseline)
        u = r["channel"]
        assert r["baseline"] == float(base[u])
        assert r["contribution"] == pytest.approx(float(w[r["class"], u]) * (r["code"] - r["baseline"]))
    # sample 0, class 0, unit 0 is off (code 0): its contribution 2 * (0 - 0.5) = -1 is now readable from the row
    assert rows[0]["code"] == 0.0 and rows[0]["contribution"] == pytest.approx(-1.0)
    plain = CNNExplanation(logits=torch.zeros(2, 2), bias=torch.zeros(2), codes=codes, weight=w,
                           units=[("a", 0), ("a", 1)], site_slices={"a": slice(0, 2)}).to_records()
    assert list(plain[0]) == ["sample", "class", "site", "channel", "code", "contribution"]


def test_network_records_against_a_baseline_sum_to_the_logit():
    torch.manual_seed(0)
    x = torch.randn(4, 1, 12)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU()), 2, example_input=x, normalize=False).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e = net.explain(x, baseline=torch.full((3,), 0.5))
    w, b = (t.detach() for t in net.effective_classifier())
    rows = e.to_records()
    for r in rows:
        assert r["baseline"] == 0.5
        assert r["contribution"] == pytest.approx(float(w[r["class"], r["channel"]]) * (r["code"] - 0.5), abs=1e-6)
    logit = float(net(x)[1, 0].detach())  # bias + W * baseline is the baseline's logit: the rows add the rest
    base_logit = float(b[0] + 0.5 * w[0].sum())
    assert base_logit + sum(r["contribution"] for r in rows if r["sample"] == 1 and r["class"] == 0) == pytest.approx(logit, abs=1e-5)


# ------------------------------------------------------------ 1: steps no training series reached rank last (0)
def _trained_on_short_series(normalize: bool = True):
    """A GRU over 10 steps whose 64 training series all end by step 6 (steps 6..9 are padding in every batch)."""
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 8, batch_first=True), 2, max_len=10, normalize=normalize)
    x, lengths = torch.randn(64, 10, 1), torch.randint(3, 7, (64,))
    assert int(lengths.max()) <= 6
    net.train()
    with torch.no_grad():
        for _ in range(50):
            net(x, lengths=lengths)
    return net.eval(), x, lengths


def test_global_time_importance_reports_unreached_steps_as_zero():
    net, _, _ = _trained_on_short_series()
    assert net.unreached_steps().tolist() == [False] * 6 + [True] * 4
    ti = net.time_importance()
    # before: [1.45, 1.94, 1.49, 0.81, 1.35, 1.43, 1.77, 2.36, 3.08, 3.15]: steps 8 and 9, never reached, on top
    assert torch.equal(ti[:, 6:], torch.zeros(2, 4))
    assert bool((ti.argmax(1) < 6).all())
    w = net.effective_classifier()[0].detach().reshape(2, 1, 1, 10, 8)  # the reached steps keep their norm of weights
    assert torch.allclose(ti[:, :6], w[:, 0, 0, :6].norm(dim=-1))
    assert torch.equal(net.time_importance("sum", per_layer=True)[..., 6:], torch.zeros(2, 1, 4))


def test_unreached_steps_is_none_where_nothing_records_the_training_data():
    fresh = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 2, max_len=5).eval()  # no batch seen yet
    assert fresh.unreached_steps() is None and bool((fresh.time_importance() > 0).all())
    plain, _, _ = _trained_on_short_series(normalize=False)
    assert plain.unreached_steps() is None
    w = plain.classifier.weight.detach().reshape(2, 10, 8)
    assert torch.allclose(plain.time_importance(), w.norm(dim=-1))  # raw weights, said so in the plot's title
    assert "no normalization" in temporal.time_importance(plain)._suptitle.get_text()


def test_plot_of_global_weights_says_which_steps_no_series_reached():
    net, _, _ = _trained_on_short_series()
    fig = temporal.time_importance(net)
    assert "4 steps no training series reached" in fig._suptitle.get_text()
    assert [b.get_height() for b in fig.axes[0].patches if b.get_height() == 0.0] == [0.0] * 4
    assert "4 steps no training series reached" in temporal.layer_time(net)._suptitle.get_text()


def test_report_time_weights_say_which_steps_no_series_reached(tmp_path):
    net, x, lengths = _trained_on_short_series()
    y = torch.arange(12) % 2
    write_report(net, x[:12], y, tmp_path / "r", lengths=lengths[:12], examples=1, progress=False, dpi=30)
    rows = read_csv(tmp_path / "r" / "time_weights.csv")
    assert [float(r["0"]) for r in rows[6:]] == [0.0] * 4 and all(float(r["0"]) > 0 for r in rows[:6])
    meta = json.loads((tmp_path / "r" / "report.json").read_text())
    caption = next(t["description"] for t in meta["tables"] if t["file"] == "time_weights.csv")
    assert "steps 6-9: no training series reached them" in caption and meta["window"] == 1


# ------------------------------------------------------- 2: a windowed RNN's steps say which input samples they read
def _windowed():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 2, max_len=12, window=3).eval()  # 4 steps of 3 samples
    return net, torch.randn(5, 12, 1)


def test_windowed_records_and_saved_explanation_name_the_input_samples(tmp_path):
    net, x = _windowed()
    e = net.explain(x)
    assert e.window == 3
    rows = e.to_records()
    assert list(rows[0]) == ["sample", "class", "layer", "direction", "step", "input_samples", "contribution"]
    assert {r["step"]: r["input_samples"] for r in rows} == {0: "0:3", 1: "3:6", 2: "6:9", 3: "9:12"}
    e.save(tmp_path / "e.safetensors")
    assert nv.Explanation.load(tmp_path / "e.safetensors").window == 3
    plain = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 2, max_len=4).eval().explain(torch.randn(2, 4, 1))
    assert "input_samples" not in plain.to_records()[0] and plain.window == 1


def test_windowed_plots_label_steps_with_their_samples():
    net, x = _windowed()
    e = net.explain(x)
    label = "step (3 input samples each)"
    assert temporal.time_importance(net).axes[-1].get_xlabel() == label
    assert temporal.time_importance(e).axes[-1].get_xlabel() == label
    assert temporal.layer_time(e).axes[-2].get_xlabel() == label  # the last axis is the colour bar
    assert temporal.sample_time(e, 0).axes[-1].get_xlabel() == label
    ticks = [t.get_text() for t in decision.waterfall(e, 0, k=8).axes[0].get_yticklabels()]
    assert sorted(t for t in ticks if t.startswith("step")) == [
        "step 0 (samples 0-2)", "step 1 (samples 3-5)", "step 2 (samples 6-8)", "step 3 (samples 9-11)"]
    plain = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 2, max_len=4).eval()
    assert temporal.time_importance(plain).axes[-1].get_xlabel() == "time step"


def test_windowed_report_tables_and_json_say_the_window(tmp_path):
    net, x = _windowed()
    y = torch.tensor([0, 1, 0, 1, 0])
    write_report(net, x, y, tmp_path / "r", examples=1, progress=False, dpi=30)
    meta = json.loads((tmp_path / "r" / "report.json").read_text())
    assert meta["window"] == 3
    for name in ("time_importance.csv", "time_weights.csv", "layer_time.csv"):
        rows = read_csv(tmp_path / "r" / name)
        assert [r["input_samples"] for r in rows if r.get("layer", 0) == 0] == ["0:3", "3:6", "6:9", "9:12"], name
    caption = next(t["description"] for t in meta["tables"] if t["file"] == "time_importance.csv")
    assert caption.startswith("one row per step (each reads 3 input samples: input_samples gives their start:stop)")
    assert not math.isnan(float(read_csv(tmp_path / "r" / "time_weights.csv")[0]["0"]))


def test_a_step_reached_now_and_then_is_not_read_as_unreached():
    """A step reached only in some batches (series sorted by length: the long ones in an epoch's first batch) has a
    running mean decayed towards 0 between them, never to 0 itself; only a step whose features were 0 in every batch
    has a mean of exactly 0 (the rule read |mean| <= 1e-6 and zeroed a step that carried the largest contributions)."""
    from neuroview.core.head import CodeNorm
    from neuroview.core.rnn_steps import unreached_steps

    norm = CodeNorm(3 * 2)  # 3 steps of 2 features
    norm.num_batches_tracked += 200
    norm.running_var[:] = 1e-3  # every step's variance decayed
    norm.running_mean[:] = torch.tensor([0.5, 0.2, 0.3 * 0.9 ** 150, 0.0, 0.0, 0.0])  # step 1: last reached 150 batches ago (4e-8)
    assert unreached_steps(norm, (1, 1, 3, 2)).tolist() == [False, False, True]
