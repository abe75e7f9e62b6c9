"""An RNN gallery of every step kept one whole series per (step, place): ``x [steps, k, C, T]``, memory in the square of
the series' length (0.8, 2.3, 8.2 MiB peak at T = 100, 200, 400 for 64 series, where the series read are 0.1 MiB at
T = 400). It now keeps each distinct series once and forms ``x`` from them when read; what it shows is the same, checked
here against a gallery computed by hand: each step's contribution to the predicted class from the hidden states and
the folded head, ranked by magnitude over the series that reach the step, ties to the lower index (session 24, F6)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv


def _net_and_data(seed: int, t: int = 12, n: int = 23):
    torch.manual_seed(seed)
    net = nv.NeuroViewRNN(nn.GRU(2, 5, batch_first=True, num_layers=2), 3, max_len=t).eval()
    x = torch.randn(n, 2, t)
    lengths = torch.randint(2, t + 1, (n,))
    lengths[0] = t  # one series reaches every step
    x = torch.where(torch.arange(t) < lengths[:, None, None], x, torch.zeros(()))  # padding as the data modules give it
    y = torch.randint(0, 3, (n,))
    return net, x, lengths, y


def _by_hand(net, x, lengths, y, steps, k):
    """The gallery's rows as its docstring states them, from the hidden states and the folded head."""
    with torch.no_grad():
        h = net.features(x.transpose(1, 2), lengths)  # [N, L, D, T, H], 0 past each series' end
        w, b = net.effective_classifier()
        pred = (h.flatten(1) @ w.T + b).argmax(1)
        per_step = (h * w.reshape(net.num_classes, *net.feature_shape)[pred]).sum(dim=(1, 2, 4))  # [N, T]
    kk = min(k, len(x))
    rows = {"index": [], "value": [], "x": [], "y": [], "lengths": []}
    for t in steps:
        reach = [i for i in range(len(x)) if int(lengths[i]) > t]
        reach.sort(key=lambda i: -abs(float(per_step[i, t])))  # a stable sort: ties keep the lower index first
        top = reach[:kk]
        pad = kk - len(top)
        rows["index"].append(top + [-1] * pad)
        rows["value"].append([float(per_step[i, t]) for i in top] + [float("nan")] * pad)
        rows["x"].append(torch.stack([x[i] for i in top] + [torch.zeros_like(x[0])] * pad))
        rows["y"].append([int(y[i]) for i in top] + [-1] * pad)
        rows["lengths"].append([int(lengths[i]) for i in top] + [0] * pad)
    return {key: torch.stack(v) if key == "x" else torch.tensor(v) for key, v in rows.items()}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_gallery_of_every_step_shows_what_a_gallery_by_hand_shows(seed):
    net, x, lengths, y = _net_and_data(seed)
    loader = [(x[i:i + 7], lengths[i:i + 7], y[i:i + 7]) for i in range(0, len(x), 7)]
    steps = list(range(net.steps))
    g = nv.unit_gallery(net, loader, units=steps, k=6)
    want = _by_hand(net, x, lengths, y, steps, 6)
    empty = (want["index"] == -1).nonzero()[0].tolist()
    assert torch.equal(g.sample(*empty), torch.zeros(2, net.max_len))  # an empty place: zeros, read alone
    assert torch.equal(g.index, want["index"])
    torch.testing.assert_close(g.value, want["value"].to(g.value.dtype), equal_nan=True, rtol=1e-5, atol=1e-6)
    assert torch.equal(g.x, want["x"]) and g.x.shape == (net.steps, 6, 2, net.max_len)
    assert torch.equal(g.y, want["y"]) and torch.equal(g.lengths, want["lengths"])
    start = torch.tensor(steps)[:, None]
    stop = torch.minimum(start + 1, want["lengths"]).clamp_min(start)  # a window of one sample, cut at the series' end
    assert torch.equal(g.window[:, :, 0, 0], start.expand(-1, 6)) and torch.equal(g.window[:, :, 0, 1], stop)
    assert (g.index == -1).any() and (g.index[0] >= 0).all()  # late steps few series reach: empty places were checked


def _largest_held(g) -> int:
    """Elements of the largest tensor the gallery holds (its fields and anything it keeps), none of them read as a
    field: what it costs in memory, before anyone asks for ``x``."""
    held = [v for v in vars(g).values()]
    held += [e for v in held if isinstance(v, (tuple, list)) for e in v]
    return max(v.numel() for v in held if isinstance(v, torch.Tensor))


def test_a_gallery_of_every_step_holds_each_series_read_at_most_once():
    """Before: x held steps * k whole series (here 40 * 6 = 240 of 40 samples), 10x the 24 series read."""
    torch.manual_seed(0)
    t, n = 40, 24
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 2, max_len=t).eval()
    x, y = torch.randn(n, 1, t), torch.arange(n) % 2
    g = nv.unit_gallery(net, [(x[i:i + 8], y[i:i + 8]) for i in range(0, n, 8)], units=list(range(t)), k=6)
    assert _largest_held(g) <= n * 1 * t  # at most the series read, each once (a [steps, k] table is 240 numbers)
    assert torch.equal(g.sample(7, 2), x[g.index[7, 2]]) and _largest_held(g) <= n * t  # one place: x not formed
    shown = g.x  # formed when read: every place its series, as before
    assert shown.shape == (t, 6, 1, t) and torch.equal(shown, x[g.index])
    assert g.x is shown  # formed once, kept
    one = nv.unit_gallery(net, [(x, y)], units=[5, 0, 5], k=3)  # repeated rows: the same series
    assert torch.equal(one.x[0], one.x[2]) and torch.equal(one.x[1], x[one.index[1]])
