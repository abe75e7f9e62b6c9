"""``unit_gallery`` keeps one row per unit asked, in the order asked, repeats included, as ``x[[3, 0, 3]]`` does
for a torch or numpy user (probe s20 P5, finding 3: ``[3, 0, 3, 1]`` gave three rows, row 2 unit 1's).

A hand-set network: a 1x1 convolution with weights +1 and -1 (no bias), ReLU, codes its mean (``quantizer="none"``),
on constant series of value ``v_i``: unit 0's code is ``max(v_i, 0)``, unit 1's ``max(-v_i, 0)``, so unit 0 ranks
the samples by ``v`` descending, unit 1 by ``v`` ascending, known without the gallery.
"""

import pytest
import torch
from torch import nn

import neuroview as nv

V = torch.tensor([0.5, -2.0, 3.0, -1.0, 1.0, -3.0])  # sample i is the series of constant value V[i]
TOP = {0: [2, 4, 0], 1: [5, 1, 3]}  # by hand: unit 0 by V descending, unit 1 by V ascending


def _net() -> nv.NeuroViewCNN:
    conv = nn.Conv1d(1, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1))
    return nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, quantizer="none", input_shape=(1, 5)).eval()


def _data():
    return [(V[:, None, None].expand(6, 1, 5).clone(), torch.tensor([0, 1, 0, 1, 0, 1]))]


@pytest.mark.parametrize("asked", [[1, 0, 1], [0, 0], [("1", 1), 0, 1, ("1", 0)], torch.tensor([1, 1, 0])],
                         ids=["1-0-1", "0-0", "pairs-and-indices", "tensor"])
def test_one_row_per_unit_asked_in_the_order_asked(asked):
    net = _net()
    sites = [s.name for s in net.sites]
    assert sites == ["1"]  # the ReLU, module "1" of the Sequential
    g = nv.unit_gallery(net, _data(), units=asked, k=3)
    want = [u if isinstance(u, int) else (u[1] if isinstance(u, tuple) else int(u)) for u in
            (asked.tolist() if isinstance(asked, torch.Tensor) else asked)]
    assert g.units == want and len(g) == len(want)
    assert g.names == [f"1 #{u}" for u in want]
    assert g.index.tolist() == [TOP[u] for u in want]
    for r, u in enumerate(want):  # every per-row field follows its unit
        assert torch.equal(g.x[r, :, 0, 0], V[TOP[u]])
        assert g.y[r].tolist() == [i % 2 for i in TOP[u]]
        torch.testing.assert_close(g.value[r], V[TOP[u]].abs())
    assert g.window.shape[0] == g.heat.shape[0] == g.position.shape[0] == len(want)
    assert g.row(want[0]) == 0  # a repeated unit's row: its first


def test_an_rnn_gallery_keeps_repeated_steps_too():
    torch.manual_seed(0)
    net = nv.wrap(nn.GRU(1, 3, batch_first=True), num_classes=2, max_len=4).eval()
    x = torch.randn(5, 1, 4)
    g = nv.unit_gallery(net, [(x, torch.tensor([0, 1, 0, 1, 0]))], units=[2, 0, 2], k=2)
    assert g.units == [2, 0, 2] and g.names == ["step 2", "step 0", "step 2"]
    assert torch.equal(g.index[0], g.index[2]) and torch.equal(g.value[0], g.value[2])
    assert g.reads.tolist() == [[2, 3], [0, 1], [2, 3]]
    single = nv.unit_gallery(net, [(x, torch.tensor([0, 1, 0, 1, 0]))], units=[0], k=2)
    assert torch.equal(g.index[1], single.index[0])
