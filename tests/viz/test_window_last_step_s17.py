"""A windowed NeuroView-RNN's last step, where ``max_len`` is no multiple of ``window``, is labelled with the samples
it really reads (session 17, fault 2).

A series of 10 samples read 4 at a time is 3 steps: samples 0-3, 4-7 and 8-9 (the third step's window runs on into
2 samples of zero padding). Every label said "8:12" (samples 8-11) for the last step: the records, the report's time
tables, the waterfall's bars and the steps' axis.
"""

from __future__ import annotations

import csv
import json

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.explanation import RNNExplanation, step_reads
from neuroview.viz.decision import _samples_of_steps
from neuroview.viz.report_data import step_samples
from neuroview.viz.temporal import step_label


def _net(max_len: int = 10, window: int = 4) -> nv.NeuroViewRNN:
    torch.manual_seed(0)
    return nv.NeuroViewRNN(nn.GRU(window, 3, batch_first=True), num_classes=2, max_len=max_len, window=window).eval()


def test_step_reads_cuts_the_last_window_at_max_len():
    assert [step_reads(t, 4, 10) for t in range(3)] == [(0, 4), (4, 8), (8, 10)]
    assert [step_reads(t, 5, 10) for t in range(2)] == [(0, 5), (5, 10)]  # a multiple: nothing cut
    assert step_reads(2, 4) == (8, 12)  # no length known: the window as it is


def test_records_label_the_last_step_with_its_real_end():
    net = _net()
    exp = net.explain(torch.randn(2, 10, 1))
    assert exp.time_importance.shape[-1] == 3 and exp.max_len == 10
    steps = {r["step"]: r["input_samples"] for r in exp.to_records()}
    assert steps == {0: "0:4", 1: "4:8", 2: "8:10"}  # was 8:12: samples 10 and 11 are padding


def test_a_saved_explanation_keeps_the_real_end(tmp_path):
    exp = _net().explain(torch.randn(2, 10, 1))
    exp.save(tmp_path / "e")
    back = RNNExplanation.load(tmp_path / "e")
    assert back.max_len == 10 and back.to_records()[2]["input_samples"] == "8:10"


def test_waterfall_bars_and_the_axis_say_the_last_step_is_padded():
    net = _net()
    exp = net.explain(torch.randn(2, 10, 1))
    labels = _samples_of_steps(exp, ["step 0", "step 1", "step 2"], "steps", set())  # no series padded: every step is read
    assert labels == ["step 0 (samples 0-3)", "step 1 (samples 4-7)", "step 2 (samples 8-9, then 2 of padding)"]
    assert step_label(exp) == step_label(net) == "step (4 input samples each; the last 2, then padding)"
    assert step_label(_net(12, 4)) == "step (4 input samples each)"  # a multiple: nothing to say


def test_time_tables_stop_at_max_len():
    rows = step_samples([{"step": t, "class 0": 0.0} for t in range(3)], 4, 10)
    assert [r["input_samples"] for r in rows] == ["0:4", "4:8", "8:10"]


def test_report_tables_label_the_last_step_with_its_real_end(tmp_path):
    pytest.importorskip("matplotlib")
    from neuroview.viz.report import write_report

    net = _net()
    x = torch.randn(6, 10, 1)  # the network's own layout, [B, T, F]
    write_report(net, x, torch.tensor([0, 1] * 3), tmp_path / "r", examples=1, progress=False)
    for name in ("time_importance.csv", "time_weights.csv", "layer_time.csv"):
        with open(tmp_path / "r" / name) as f:
            got = {r["step"]: r["input_samples"] for r in csv.DictReader(f)}
        assert got == {"0": "0:4", "1": "4:8", "2": "8:10"}, name
    meta = json.loads((tmp_path / "r" / "report.json").read_text())
    caption = next(t["description"] for t in meta["tables"] if t["file"] == "time_importance.csv")
    assert caption.startswith("one row per step (each reads 4 input samples; the last step reads 2, then zero padding: ")
