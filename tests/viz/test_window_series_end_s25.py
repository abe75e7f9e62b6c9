"""A windowed NeuroView-RNN's steps are labelled with the samples they read up to each series' *own* end, not only
up to ``max_len`` (session 25, probe P7 finding 1).

At ``window=3, max_len=13`` a series of 8 samples (0-7) is 3 steps: samples 0-2, 3-5 and 6-7 (the third step's window
runs on into 1 sample of zero padding); its steps 3 and 4 read no sample of it. The records said "6:9", "9:12" and
"12:13" for those steps, the waterfall "step 2 (samples 6-8)", while ``unit_gallery`` cut the same step at (6, 8).
The expected labels below are written out by hand, from the series' length, not from the code's rule.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.explanation import RNNExplanation


def _net(max_len: int = 13, window: int = 3) -> nv.NeuroViewRNN:
    torch.manual_seed(0)
    return nv.NeuroViewRNN(nn.GRU(window, 4, batch_first=True), 2, max_len=max_len, window=window).eval()


def _short(max_len: int = 13):
    """Two series, of 13 and 8 samples; the second one's padding is 0, as a data module serves it."""
    torch.manual_seed(1)
    x = torch.randn(2, max_len, 1)
    x[1, 8:] = 0
    return x, torch.tensor([max_len, 8])


def _reads(exp, sample: int) -> dict[int, str]:
    return {r["step"]: r["input_samples"] for r in exp.to_records() if r["sample"] == sample and r["class"] == 0}


def _bar_labels(exp, sample: int) -> list[str]:
    pytest.importorskip("matplotlib")
    from neuroview.viz import plots

    fig = plots.waterfall(exp, sample, k=5)
    return [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]


def test_records_of_a_short_series_stop_at_its_own_end():
    x, lengths = _short()
    exp = _net().explain(x, lengths=lengths)
    assert exp.input_lengths.tolist() == [13, 8]
    assert _reads(exp, 1) == {0: "0:3", 1: "3:6", 2: "6:8", 3: "padding", 4: "padding"}  # were 6:9, 9:12, 12:13
    assert _reads(exp, 0) == {0: "0:3", 1: "3:6", 2: "6:9", 3: "9:12", 4: "12:13"}  # the full series: as before
    rows = [r for r in exp.to_records() if r["sample"] == 1 and r["input_samples"] == "padding"]
    assert rows and all(r["contribution"] == 0.0 for r in rows)  # no input there: exactly 0 against zero codes


def test_records_against_a_baseline_flag_the_same_steps_as_padding():
    x, lengths = _short()
    net = _net()
    exp = net.explain(x, lengths=lengths, baseline=torch.full(net.feature_shape, 0.1))
    rows = [r for r in exp.to_records() if r["sample"] == 1 and r["class"] == 0]
    assert [(r["step"], r["input_samples"], r["padding"]) for r in rows] == [
        (0, "0:3", False), (1, "3:6", False), (2, "6:8", False), (3, "padding", True), (4, "padding", True)]


def test_waterfall_bar_names_the_padding_a_short_series_last_step_reads():
    x, lengths = _short()
    exp = _net().explain(x, lengths=lengths)
    labels = _bar_labels(exp, 1)
    assert "step 2 (samples 6-7, then 1 of padding)" in labels  # was "step 2 (samples 6-8)"
    assert not any("samples 6-8" in s or "samples 9" in s or "samples 12" in s for s in labels)
    assert any("padding, steps 3-4" in s for s in labels)
    assert "step 2 (samples 6-8)" in _bar_labels(exp, 0)  # the full series reads 6-8


def test_records_waterfall_and_gallery_agree_on_what_step_2_reads():
    x, lengths = _short()
    net = _net()
    exp = net.explain(x, lengths=lengths)
    g = nv.unit_gallery(net, [(x.transpose(1, 2), lengths, torch.tensor([0, 1]))], units=[2], k=2)
    windows = {s: tuple(w) for s, w in zip(g.index[0].tolist(), g.window[0, :, 0].tolist())}
    assert windows == {0: (6, 9), 1: (6, 8)}
    for s in (0, 1):
        a, b = map(int, _reads(exp, s)[2].split(":"))
        assert (a, b) == windows[s]
        assert any(lab.startswith(f"step 2 (samples {a}-{b - 1}") for lab in _bar_labels(exp, s))


def test_a_series_given_without_lengths_shorter_than_max_len_stops_at_its_end():
    torch.manual_seed(2)
    exp = _net().explain(torch.randn(2, 8, 1))  # 8 samples each, the network reads 13
    assert exp.input_lengths.tolist() == [8, 8] and exp.lengths.tolist() == [3, 3]
    assert _reads(exp, 1) == {0: "0:3", 1: "3:6", 2: "6:8", 3: "padding", 4: "padding"}


def test_a_series_that_reaches_every_step_still_stops_at_its_own_end():
    # 12 and 11 samples at max_len 12: both reach all 4 steps (lengths in steps say nothing), yet series 1's last
    # step reads samples 9-10 and then 1 of padding
    torch.manual_seed(3)
    x = torch.randn(2, 12, 1)
    x[1, 11:] = 0
    exp = _net(12).explain(x, lengths=torch.tensor([12, 11]))
    assert exp.input_lengths.tolist() == [12, 11]
    assert _reads(exp, 1)[3] == "9:11" and _reads(exp, 0)[3] == "9:12"
    assert "step 3 (samples 9-10, then 1 of padding)" in _bar_labels(exp, 1)


def test_full_length_series_are_unchanged_and_keep_no_input_lengths():
    torch.manual_seed(4)
    exp = _net().explain(torch.randn(2, 13, 1))
    assert exp.input_lengths is None  # every series max_len long
    assert _reads(exp, 1) == {0: "0:3", 1: "3:6", 2: "6:9", 3: "9:12", 4: "12:13"}
    labels = _bar_labels(exp, 1)  # k=5: every step a bar
    assert {"step 2 (samples 6-8)", "step 3 (samples 9-11)", "step 4 (samples 12-12, then 2 of padding)"} <= set(labels)


def test_only_labels_change_the_numbers_stay_exact():
    x, lengths = _short()
    exp = _net().explain(x, lengths=lengths)
    plain = dataclasses.replace(exp, input_lengths=None)
    assert torch.equal(exp.time_importance, plain.time_importance) and torch.equal(exp.logits, plain.logits)
    assert [r["contribution"] for r in exp.to_records()] == [r["contribution"] for r in plain.to_records()]
    assert exp.residual().abs().max() < 1e-5


def test_a_saved_explanation_keeps_each_series_end_and_an_old_file_still_loads(tmp_path):
    x, lengths = _short()
    exp = _net().explain(x, lengths=lengths)
    exp.save(tmp_path / "e")
    back = RNNExplanation.load(tmp_path / "e")
    assert back.input_lengths.tolist() == [13, 8] and _reads(back, 1)[2] == "6:8"
    # a file of an earlier neuroview holds no input_lengths: it loads, its steps past the end still read as padding
    dataclasses.replace(exp, input_lengths=None).save(tmp_path / "old")
    old = RNNExplanation.load(tmp_path / "old")
    assert old.input_lengths is None and _reads(old, 1)[3] == "padding"


def test_input_lengths_that_do_not_fit_are_refused_by_name():
    x, lengths = _short()
    exp = _net().explain(x, lengths=lengths)
    with pytest.raises(ValueError, match=r"input_lengths: expected an integer tensor of shape \[2\]"):
        dataclasses.replace(exp, input_lengths=torch.tensor([13]))
    with pytest.raises(ValueError, match=r"input_lengths: expected values in \[1, 13\]"):
        dataclasses.replace(exp, input_lengths=torch.tensor([14, 8]))
    with pytest.raises(ValueError, match=r"input_lengths: series 1 has 4 input samples \(2 steps of window 3\), "
                                         r"but lengths says 3 steps"):
        dataclasses.replace(exp, input_lengths=torch.tensor([13, 4]))


def test_joined_explanations_keep_each_series_end():
    from neuroview.core.explanation_rnn import joined_input_lengths

    net = _net()
    x, lengths = _short()
    parts = [net.explain(x, lengths=lengths), net.explain(x[:1]), net.explain(x[1:, :8])]
    assert joined_input_lengths(parts).tolist() == [13, 8, 13, 8]
    assert joined_input_lengths([net.explain(x[:1]), net.explain(x[:1])]) is None


def test_the_report_s_batched_explanation_keeps_each_series_end():
    """``neuroview explain``'s report explains in batches and joins them (``explain_batches``): the join dropped
    ``input_lengths``, so its waterfalls labelled a short series' last step up to ``max_len`` again."""
    from neuroview.viz.report_data import explain_batches

    x, lengths = _short()
    x3, lengths3 = torch.cat([x, x[1:]]), torch.tensor([13, 8, 8])
    exp = explain_batches(_net(), x3, lengths=lengths3, batch_size=2)  # two batches: [13, 8] and [8]
    assert exp.input_lengths.tolist() == [13, 8, 8]
    assert _reads(exp, 1) == _reads(exp, 2) == {0: "0:3", 1: "3:6", 2: "6:8", 3: "padding", 4: "padding"}


# ------------------------------------------------------------------ review R3 s25, finding 5: dataclasses.replace
@pytest.mark.parametrize("window", [3, 1])
def test_the_first_series_taken_with_replace_is_explained_without_error(window):
    """ERRORS.md: ``dataclasses.replace`` of the first samples' ``logits``/``codes``/``target`` (and ``lengths``) gives
    no error. The ``input_lengths`` carried with them (never touched by the user) were refused as not ``[1]``."""
    x, lengths = _short()
    exp = _net(window=window).explain(x, lengths=lengths)
    assert exp.input_lengths is None if window == 1 else exp.input_lengths.tolist() == [13, 8]
    first = dataclasses.replace(exp, logits=exp.logits[:1], codes=exp.codes[:1], target=exp.target[:1],
                                lengths=exp.lengths[:1])
    assert first.input_lengths is None and first.residual().abs().max() < 1e-5
    if window == 3:  # series 0 is 13 long: max_len's cut is its own
        assert _reads(first, 0) == {0: "0:3", 1: "3:6", 2: "6:9", 3: "9:12", 4: "12:13"}
        second = dataclasses.replace(exp, logits=exp.logits[1:], codes=exp.codes[1:], target=exp.target[1:],
                                     lengths=exp.lengths[1:], input_lengths=exp.input_lengths[1:])
        assert _reads(second, 0) == {0: "0:3", 1: "3:6", 2: "6:8", 3: "padding", 4: "padding"}
    else:
        assert len(first.to_records()) == 2 * 13  # 2 classes x 13 steps, one layer and direction


# ------------------------------------------------------------------ review R3 s25, finding 6: per-sample time plots
def _xlabels(fig) -> set[str]:
    return {ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()}


@pytest.mark.parametrize(("max_len", "ends", "want"), [
    (13, (13, 8), ("step (3 input samples each; the last 1, then padding)",
                   "step (3 input samples each; the last 2, then padding)")),
    (12, (12, 8), ("step (3 input samples each)", "step (3 input samples each; the last 2, then padding)")),
    (13, (13, 9), ("step (3 input samples each; the last 1, then padding)", "step (3 input samples each)")),
])
def test_per_sample_time_plots_say_what_the_series_own_last_step_reads(max_len, ends, want):
    """Series 1 of 8 samples at window 3: its last step (2) reads samples 6-7, then 1 of padding, whatever max_len's
    own last step reads; a series of 9 ends on a whole window."""
    pytest.importorskip("matplotlib")
    from neuroview.viz.temporal import layer_time, sample_time, time_importance

    torch.manual_seed(1)
    x = torch.randn(2, max_len, 1)
    x[1, ends[1]:] = 0
    exp = _net(max_len).explain(x, lengths=torch.tensor(ends))
    for sample in (0, 1):
        assert _xlabels(sample_time(exp, sample)) == {want[sample]}
        assert _xlabels(time_importance(exp, sample=sample)) == {want[sample]}
        assert _xlabels(layer_time(exp, sample=sample)) == {want[sample]}
    assert _xlabels(sample_time(exp, -1)) == {want[1]}  # the last sample, by its position
    mean = "step (3 input samples each; the last 1, then padding)" if max_len == 13 else "step (3 input samples each)"
    assert _xlabels(time_importance(exp)) == {mean}  # the batch mean: the network's steps, cut at max_len
