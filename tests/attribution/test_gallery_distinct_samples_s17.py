"""A CNN gallery runs each distinct sample once (in chunks), not each of its ``units x k`` places.

Scale probe s17, finding 1: every place was rerun whole, with the code maps of every site, so that 1,000 units
of a 1,000-channel site took 18.8 GB and 83 s for a 6 MB gallery, the places repeating samples (1,200 places, 354
samples). The answers here are known by hand, or computed one place at a time by a reference of the old reading
(one backward pass per place), on integer weights and inputs, where float arithmetic is exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.attribution import gallery as gallery_module


def _spikes() -> tuple[nv.NeuroViewCNN, torch.Tensor]:
    """Unit 0 reads the centre tap ([0, 1, 0]), unit 1 sums three taps ([1, 1, 1]). Sample s is -1 but for a block
    of s twos from step o + 2 (o = s % 3): unit 0 is on at s of the 12 positions, first at its peak p = o + 1
    (window: input o + 2 alone); unit 1 is on where two twos or more fall in its taps (s positions, s >= 3) and peaks
    (6, three twos) first at p = o + 2, reading inputs o + 2 to o + 5."""
    conv = nn.Conv1d(1, 2, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[0.0, 1.0, 0.0]], [[1.0, 1.0, 1.0]]]))
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, input_shape=(1, 14)).eval()
    x = -torch.ones(8, 1, 14)
    for s in range(8):
        x[s, 0, s % 3 + 2: s % 3 + 2 + s] = 2.0
    return net, x


def test_each_unit_keeps_its_own_window_on_a_sample_it_shares_with_another(monkeypatch):
    """Both units' top 3 are samples 7, 6, 5 (so each sample is one place of each unit); chunks of 2 samples: the
    backward rounds of a chunk must keep unit 0's window apart from unit 1's on the same sample."""
    monkeypatch.setattr(gallery_module, "_CHUNK", 2, raising=False)
    net, x = _spikes()
    g = nv.unit_gallery(net, [(x[:5], torch.zeros(5, dtype=torch.long)), (x[5:], torch.ones(3, dtype=torch.long))],
                        units=[0, 1], k=3)
    assert g.index.tolist() == [[7, 6, 5], [7, 6, 5]]
    assert torch.allclose(g.value, torch.tensor([[7.0, 6, 5], [7, 6, 5]]) / 12)
    o = torch.tensor([7 % 3, 6 % 3, 5 % 3])
    assert g.position.tolist() == [(o + 1).tolist(), (o + 2).tolist()]
    assert g.window[0, :, 0].tolist() == torch.stack([o + 2, o + 3], 1).tolist()
    assert g.window[1, :, 0].tolist() == torch.stack([o + 2, o + 5], 1).tolist()
    assert torch.equal(g.x, x[g.index])
    assert g.y.tolist() == [[1, 1, 1], [1, 1, 1]]


def test_the_network_reads_each_distinct_sample_once_per_pass_in_chunks(monkeypatch):
    """8 samples scanned, then 3 distinct ones (of 6 places): the windows' pass and the maps' pass read 3 samples
    each, in batches of at most the chunk (before: 6 each, all at once)."""
    monkeypatch.setattr(gallery_module, "_CHUNK", 2, raising=False)
    net, x = _spikes()
    seen: list[int] = []
    handle = net.backbone[0].register_forward_hook(lambda m, a, out: seen.append(out.shape[0]))
    try:
        nv.unit_gallery(net, [(x, torch.zeros(8, dtype=torch.long))], units=[0, 1], k=3)
    finally:
        handle.remove()
    assert seen[0] == 8  # the scan
    # one sample to follow the order of the positions (core.map_order), then the windows' and the maps' passes
    assert seen[1] == 1 and sum(seen[2:]) == 2 * 3 and max(seen[2:]) <= 2


def _reference(net, g, x_all) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Window, position and heat of each place, one place at a time, as the old pass read them (the site is the
    first ReLU, its pre-activation the first conv's output)."""
    n, k = g.index.shape
    conv = net.backbone[0]
    win, pos, heat = torch.zeros(n, k, 1, 2, dtype=torch.long), torch.zeros(n, k, dtype=torch.long), torch.zeros(n, k, x_all.shape[-1])
    for r, u in enumerate(g.units):
        ch = net.units[u][1]
        for j in range(k):
            x = x_all[g.index[r, j]][None].clone().requires_grad_(True)
            z = conv(x)[0, ch]
            p = int(z.argmax())
            (grad,) = torch.autograd.grad(z[p], x)
            on = (grad[0].abs().sum(0) != 0).nonzero().flatten()
            win[r, j, 0] = torch.tensor([int(on.min()), int(on.max()) + 1])
            pos[r, j] = p
            heat[r, j] = F.interpolate((z.detach() > 0).float()[None, None], size=x_all.shape[-1], mode="nearest")[0, 0]
    return win, pos, heat


def test_windows_positions_and_heat_equal_the_one_place_at_a_time_reading(monkeypatch):
    """Integer weights and inputs (exact arithmetic), 60 units of one site, k=5 of 40 samples: the places repeat
    samples; chunks of 7. Every window, position and heat equals the one-place-at-a-time reference bit for bit."""
    monkeypatch.setattr(gallery_module, "_CHUNK", 7, raising=False)
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv1d(2, 60, 5, padding=2, dilation=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-2, 3, conv.weight.shape, generator=gen).float())
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU(), nn.Conv1d(60, 4, 3), nn.ReLU()), 3, input_shape=(2, 30)).eval()
    x = torch.randint(-3, 4, (40, 2, 30), generator=gen).float()
    g = nv.unit_gallery(net, [(x[i:i + 16],) for i in range(0, 40, 16)], units=[("1", c) for c in range(60)], k=5)
    assert g.index.unique().numel() < g.index.numel()  # places repeat samples
    codes = (conv(x) > 0).float().mean(-1).T  # [units, samples], the ranking by hand
    want = torch.sort(codes, dim=1, descending=True, stable=True).indices[:, :5]
    assert torch.equal(g.index, want)
    win, pos, heat = _reference(net, g, x)
    assert torch.equal(g.window, win)
    assert torch.equal(g.position, pos)
    assert torch.equal(g.heat, heat)
