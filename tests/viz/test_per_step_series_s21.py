"""A windowed RNN's plots refuse its raw series and advise ``per_step(series, window)``: that advice works on the
``[T]`` / ``[T, F]`` series the plotting docstrings take (it was a bare "not enough values to unpack"), and the
message names the network's own window (P5 finding 1)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import re  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.attribution.importance import per_step  # noqa: E402
from neuroview.viz import plots  # noqa: E402

S = torch.arange(7.0)  # windows of 3: (0+1+2)/3, (3+4+5)/3, (6+0+0)/3 (the last window's padding counted)
FOLDED = [1.0, 4.0, 2.0]


def test_per_step_folds_a_single_series():
    assert per_step(S, 3).tolist() == FOLDED  # [T] -> [steps]
    two = torch.stack([S, 10 * S], -1)  # [T, F] -> [steps, F]
    assert per_step(two, 3).tolist() == [[1.0, 10.0], [4.0, 40.0], [2.0, 20.0]]
    batch = torch.stack([two, -two])  # [B, T, F] as before
    assert per_step(batch, 3).tolist() == [[[1.0, 10.0], [4.0, 40.0], [2.0, 20.0]], [[-1.0, -10.0], [-4.0, -40.0], [-2.0, -20.0]]]
    assert per_step(S, 1).tolist() == S.tolist() and per_step(two, 1).shape == (7, 2)
    assert per_step(np.arange(7), 3).tolist() == FOLDED  # a numpy series of integers, averaged as float


@pytest.mark.parametrize("xb", [torch.zeros(2, 7, 1, 1), torch.tensor(3.0)])
def test_per_step_refuses_other_ranks_by_name(xb):
    with pytest.raises(ValueError, match=rf"xb: expected \[T\], \[T, F\] or \[B, T, F\].*got shape {re.escape(str(tuple(xb.shape)))}"):
        per_step(xb, 3)


@pytest.mark.parametrize("window", [0, -2, True, 1.5, "3"])
def test_per_step_refuses_a_window_that_is_no_positive_int(window):
    with pytest.raises(ValueError, match=r"window: expected a positive int"):
        per_step(S, window)


@pytest.fixture(scope="module")
def windowed():
    """A NeuroView-GRU whose step reads 3 samples of 2 features: 12 samples, 4 steps."""
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2 * 3, 4, batch_first=True), num_classes=2, max_len=12, window=3).eval()
    x = torch.randn(3, 12, 2)
    return net, x, net.explain(x)


def _lines(fig, n):
    return [line.get_ydata() for ax in fig.axes for line in ax.get_lines() if len(line.get_ydata()) == n]


def test_the_advice_of_the_refusal_works_on_the_series_the_docstrings_take(windowed):
    net, x, exp = windowed
    raw = x[0, :, 0]  # one sample's first feature, [T] = [12]
    for draw in (lambda s: plots.time_importance(exp, series=s), lambda s: plots.time_importance(net, series=s),
                 lambda s: plots.sample_time(exp, 0, series=s)):
        with pytest.raises(ValueError, match=r"series: 12 values for 4 steps; .* 3 samples.*per_step\(series, 3\)"):
            draw(raw)
    want = [float(raw[i:i + 3].mean()) for i in range(0, 12, 3)]  # hand-folded windows
    folded = per_step(raw, 3)  # the advice, taken as given
    assert folded.tolist() == pytest.approx(want)
    drawn = _lines(plots.time_importance(exp, series=folded), 4)  # one series line under each class's bars
    assert len(drawn) == 2 and all(np.allclose(np.ravel(d), want, atol=1e-6) for d in drawn)
    drawn = plots.sample_time(exp, 0, series=folded).axes[2].get_lines()  # the input panel
    assert len(drawn) == 1 and np.allclose(np.ravel(drawn[0].get_ydata()), want, atol=1e-6)
    both = per_step(x[0], 3)  # [T, F] -> [4, 2]
    fig = plots.sample_time(exp, 0, series=both)
    assert np.allclose(np.stack([np.ravel(d.get_ydata()) for d in fig.axes[2].get_lines()], -1), x[0].unflatten(0, (4, 3)).mean(1))


def test_a_series_longer_than_the_network_reads_is_not_sent_to_per_step_alone(windowed):
    net, _, exp = windowed
    with pytest.raises(ValueError, match=r"series: 15 values for 4 steps; .*12 samples in all.*per_step\(series\[:12\], 3\)"):
        plots.sample_time(exp, 0, series=torch.randn(15))


def test_a_network_reading_one_sample_a_step_is_not_said_to_read_windows():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 3, batch_first=True), num_classes=2, max_len=8).eval()
    exp = net.explain(torch.randn(2, 8, 2))
    with pytest.raises(ValueError, match=r"series: 24 values for 8 steps; this network reads one sample a step") as err:
        plots.sample_time(exp, 0, series=torch.randn(24))
    assert "a step of this network reads a window" not in str(err.value)
    with pytest.raises(ValueError, match=r"series: 24 values for 8 steps: expected at most one value per step"):
        plots.time_importance(torch.randn(2, 8), series=torch.randn(24))  # a tensor of weights: no network to name
