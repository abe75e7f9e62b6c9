"""Review of 25c62ff (lineage follows permute/transpose): a residual stream summed with a transposed branch kept its
channels (the moved branch's tag won: a Mixer's stream read its 16 tokens as units), and a concatenation of the input
with a conv's map still checks a key against the conv's channels (one piece of input made the whole cat "the input")."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv

C, N = 8, 16


def _by_hand(bb, x, spec):
    """Per-unit codes of a ReLU site read by hand: 1[z > 0] averaged over positions, units on the axis named."""
    bb, got = copy.deepcopy(bb).eval(), {}
    named = dict(bb.named_modules())
    hooks = [named[n].register_forward_pre_hook(lambda m, a, n=n: got.setdefault(n, a[0].detach())) for n, _ in spec]
    with torch.no_grad():
        bb(x)
    for h in hooks:
        h.remove()
    return torch.cat([(got[n].movedim(ax, 1) > 0).float().flatten(2).mean(-1) for n, ax in spec], 1)


class Mixer(nn.Module):  # tokens [B, N, C]; token mixing through a transpose; act_out on the residual stream
    def __init__(self, functional_norm=False):
        super().__init__()
        self.pe, self.ln1, self.t1, self.tact, self.t2 = nn.Conv2d(1, C, 2, 2), nn.LayerNorm(C), nn.Linear(N, N), nn.ReLU(), nn.Linear(N, N)
        self.act_out, self.f3, self.fc, self.functional_norm = nn.ReLU(), nn.Linear(C, C), nn.Linear(C, 2), functional_norm

    def forward(self, x):
        x = self.pe(x).flatten(2).transpose(1, 2)
        x = x + self.t2(self.tact(self.t1(self.ln1(x).transpose(1, 2)))).transpose(1, 2)
        if self.functional_norm:
            x = F.layer_norm(x, (C,))
        return self.fc(self.f3(self.act_out(x)).mean(1))


@pytest.mark.parametrize("functional_norm", [False, True])
def test_a_residual_stream_beside_a_transposed_branch_keeps_its_channels(functional_norm):
    torch.manual_seed(0)
    bb, x = Mixer(functional_norm), torch.randn(6, 1, 8, 8)
    net = nv.NeuroViewCNN(bb, num_classes=2).eval()
    net(x)
    assert [(s.name, s.channels, s.axis) for s in net.sites] == [("tact", N, -1), ("act_out", C, -1)]
    assert torch.equal(net.codes(x), _by_hand(bb, x, [("tact", -1), ("act_out", -1)]))


class Dense(nn.Module):  # a site on torch.cat([x, conv(x)], 1): 3 input channels and the conv's 5
    def __init__(self):
        super().__init__()
        self.c, self.act, self.c2, self.r, self.fc = nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.r(self.c2(self.act(torch.cat([x, self.c(x)], 1)))).mean((2, 3)))


def test_a_key_against_a_concatenation_of_input_and_a_layer_is_still_checked():
    x = torch.randn(4, 3, 8, 6)
    with pytest.raises(ValueError, match=r"unit_axis: got -1 for site 'act'.*made by a layer with 8 features, which fit dim 1"):
        nv.NeuroViewCNN(Dense(), 2, unit_axis={"act": -1})(x)
    net = nv.NeuroViewCNN(Dense(), 2)
    net(x)
    assert [(s.name, s.channels, s.axis) for s in net.sites] == [("act", 8, 1), ("r", 4, 1)]


class StemMixer(nn.Module):  # a Conv1d stem moved to [B, N, C] (its channels keep a moved tag), token mixing moved back
    def __init__(self, branch_first):
        super().__init__()
        self.pe, self.ln1, self.t1, self.tact, self.t2 = nn.Conv1d(1, C, 2, 2), nn.LayerNorm(C), nn.Linear(N, N), nn.ReLU(), nn.Linear(N, N)
        self.act_out, self.f3, self.fc, self.branch_first = nn.ReLU(), nn.Linear(C, C), nn.Linear(C, 2), branch_first

    def forward(self, x):
        x = self.pe(x).transpose(1, 2)
        b = self.t2(self.tact(self.t1(self.ln1(x).transpose(1, 2)))).transpose(1, 2)
        return self.fc(self.f3(self.act_out(b + x if self.branch_first else x + b)).mean(1))


@pytest.mark.parametrize("branch_first", [False, True])
def test_two_moved_widths_in_a_sum_tag_it_only_where_they_agree(branch_first):
    # the rule compared the tags' call indices, not their widths: `branch + x` read the 16 tokens as act_out's units
    torch.manual_seed(0)
    bb, x = StemMixer(branch_first), torch.randn(6, 1, 2 * N)
    net = nv.NeuroViewCNN(bb, num_classes=2).eval()
    net(x)
    assert [(s.name, s.channels, s.axis) for s in net.sites] == [("tact", N, -1), ("act_out", C, -1)]
    assert torch.equal(net.codes(x), _by_hand(bb, x, [("tact", -1), ("act_out", -1)]))
