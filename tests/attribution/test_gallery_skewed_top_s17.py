"""A CNN gallery where one sample is the top of every unit: its windows cost as if it ran alone.

Review revC of ccce40f, finding 5: a chunk's backward rounds each ran through all of the chunk's (up to 32) samples,
and a chunk has as many rounds as its most-shown sample has places; one sample at the top of every unit made its chunk
run ``units`` rounds through 32 samples (2.5x the cost of spread-out tops). The network here is hand-built, so the
top samples, positions and windows are known in closed form.
"""

from __future__ import annotations

import torch
from torch import nn

import neuroview as nv
from neuroview.attribution import gallery as gallery_module

UNITS, K, STEPS = 40, 3, 8


def _net_and_data() -> tuple[nv.NeuroViewCNN, torch.Tensor]:
    """Unit u reads input channel u at one step (an identity 1x1 convolution; the ``none`` quantizer: the code is the
    mean of ReLU over the steps). Sample 0 is 10 everywhere: the top of every unit, its peak at step 0 (the first of
    equal maxima). Samples 1 + 2u + j (j = 0, 1) are 0 but for 5 - j on channel u at step (u + j) % 8: unit u's second
    and third, each shown by that unit only."""
    conv = nn.Conv1d(UNITS, UNITS, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(UNITS)[:, :, None])
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, input_shape=(UNITS, STEPS), quantizer="none",
                          normalize=False).eval()
    x = torch.zeros(1 + 2 * UNITS, UNITS, STEPS)
    x[0] = 10.0
    for u in range(UNITS):
        for j in range(2):
            x[1 + 2 * u + j, u, (u + j) % STEPS] = 5.0 - j
    return net, x


def test_a_sample_at_the_top_of_every_unit_runs_its_backward_rounds_alone(monkeypatch):
    net, x = _net_and_data()
    work = []
    original = gallery_module.windows

    def spy(net, site, chs, xs, sample=None):  # rounds x samples each windows() call runs backward through
        work.append(int(torch.bincount(sample).max()) * len(xs))
        return original(net, site, chs, xs, sample)

    monkeypatch.setattr(gallery_module, "windows", spy)
    g = nv.unit_gallery(net, [(x, torch.zeros(len(x), dtype=torch.long))], units=list(range(UNITS)), k=K)
    u = torch.arange(UNITS)
    assert g.index[:, 0].tolist() == [0] * UNITS
    assert g.index[:, 1:].tolist() == torch.stack([1 + 2 * u, 2 + 2 * u], 1).tolist()
    assert g.position[:, 0].tolist() == [0] * UNITS
    assert g.position[:, 1:].tolist() == torch.stack([u % STEPS, (u + 1) % STEPS], 1).tolist()
    # a 1x1 convolution reads the peak's step alone
    assert torch.equal(g.window[..., 0, 0], g.position) and torch.equal(g.window[..., 0, 1], g.position + 1)
    # each place's sample once: 40 rounds through sample 0 alone, one round through the 80 others (was 32 x 40 for the
    # chunk of sample 0, 31 samples of one place each beside it, then 32 + 17: 1,329)
    assert sum(work) == UNITS * K
