"""The report's RNN explanation (``explain_batches``) forms its ``time_importance`` from its codes and weight, as
``net.explain`` does: nothing of it counts as given, so its file leaves it out and ``dataclasses.replace`` forms it
again (review R5 s20, finding 1: it was passed in as given, the file grew 7x and a replaced weight kept stale numbers).
"""

import dataclasses
import json

import torch
from torch import nn

import neuroview as nv
from neuroview.viz.report_data import explain_batches


def _rnn() -> nv.NeuroViewRNN:
    torch.manual_seed(0)
    return nv.NeuroViewRNN(nn.GRU(2, 3, batch_first=True), 3, max_len=6).eval()


def test_the_reports_rnn_explanation_forms_its_time_importance_and_saves_without_it(tmp_path):
    net, x = _rnn(), torch.randn(5, 6, 2)
    exp = explain_batches(net, x, batch_size=2)  # 3 batches
    with torch.no_grad():  # each batch explained apart, concatenated: the numbers the report showed before
        per_batch = torch.cat([net.explain(x[i:i + 2]).time_importance for i in range(0, 5, 2)])
    torch.testing.assert_close(exp.time_importance, per_batch)
    exp.save(tmp_path / "e")
    meta = json.loads((tmp_path / "e.json").read_text())
    assert "time_importance" not in meta["tensors"] and "given" not in meta
    # the decision is linear in the weight (no baseline): twice the weight, twice each step's contribution
    doubled = dataclasses.replace(exp, weight=exp.weight * 2)
    torch.testing.assert_close(doubled.time_importance, per_batch * 2)
    first = dataclasses.replace(exp, logits=exp.logits[:1], codes=exp.codes[:1], target=exp.target[:1],
                                lengths=exp.lengths[:1])
    torch.testing.assert_close(first.time_importance, per_batch[:1])
