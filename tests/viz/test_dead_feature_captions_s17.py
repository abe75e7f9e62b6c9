"""The plot note of ``plots.time_importance`` / ``layer_time`` and the caption of the report's ``time_weights.csv``
say both kinds of weights ``time_importance()`` reports as 0: the steps no training series reached, and the hidden
features constant over training (dead; 0d816df zeroed them, and neither text said so: review of 0d816df, finding 5).

A hand-built ReLU RNN: hidden feature 0 dead (``relu(-1)``) at each of the 3 steps training reached, step 3 never
reached (all series of length 3): 3 dead features outside the unreached step."""

from __future__ import annotations

import copy
import json

import matplotlib
import torch
from torch import nn

import neuroview as nv
from neuroview.viz import temporal
from neuroview.viz.report_writer import write_report

matplotlib.use("Agg")


def _rnn(batches: int = 20) -> nv.NeuroViewRNN:
    rnn = nn.RNN(1, 3, nonlinearity="relu", batch_first=True)
    with torch.no_grad():  # hidden feature 0 dead, 1 = relu(1 + x_t), 2 = relu(x_t)
        rnn.weight_ih_l0.copy_(torch.tensor([[0.0], [1.0], [1.0]]))
        rnn.weight_hh_l0.zero_()
        rnn.bias_ih_l0.copy_(torch.tensor([-1.0, 1.0, 0.0]))
        rnn.bias_hh_l0.zero_()
    net = nv.NeuroViewRNN(rnn, 2, max_len=4).train()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(batches):
            net(torch.randn(16, 4, 1, generator=g), lengths=torch.full((16,), 3))
    return net.eval()


def test_plot_notes_say_dead_hidden_features_and_unreached_steps():
    net = _rnn()
    for fig in (temporal.time_importance(net), temporal.layer_time(net)):
        title = fig._suptitle.get_text()
        assert "1 steps no training series reached" in title
        assert "3 hidden features were constant over training (dead)" in title
    low = copy.deepcopy(net).bfloat16()
    title = temporal.time_importance(low)._suptitle.get_text()
    assert "1 steps no training series reached" in title and "cannot tell hidden features constant" in title


def test_plot_note_of_dead_features_without_unreached_steps():
    net = _rnn()
    with torch.no_grad():  # step 3 now reads as reached, its 3 features the constant 0.5: 3 + 3 dead features
        net.norm.running_mean.view(4, 3)[3] += 0.5
    title = temporal.time_importance(net)._suptitle.get_text()
    assert "no training series reached" not in title
    assert "6 hidden features were constant over training (dead)" in title


def test_report_time_weights_caption_says_dead_hidden_features(tmp_path):
    net = _rnn()
    x, y = torch.randn(6, 4, 1), torch.arange(6) % 2
    write_report(net, x, y, tmp_path / "r", lengths=torch.full((6,), 3), examples=1, progress=False, dpi=30)
    meta = json.loads((tmp_path / "r" / "report.json").read_text())
    caption = next(t["description"] for t in meta["tables"] if t["file"] == "time_weights.csv")
    assert "steps 3: no training series reached them" in caption
    assert "3 hidden features were constant over training (dead)" in caption
