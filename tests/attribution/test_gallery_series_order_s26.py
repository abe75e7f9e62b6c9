"""Probe S26 P4, findings 1 and 2: the gallery's heat over a series.

1. Tokens were told from a grid by whether their count divides the series' length: a 1-D patch transformer's tokens
   (class token first) were stretched over the series one patch late whenever ``1 + T / P`` divides ``T``, and a
   channels-last strided convolution whose map does not divide ``T`` lost its heat. The order of the positions is
   now followed from the input (:mod:`neuroview.core.map_order`): a class token concatenated ahead of the patches
   leaves them in no order of the input's, whatever its size.
2. ``position_orders`` followed images only: a flipped or rolled map over a series was stretched unmoved (the heat
   at the mirrored or shifted steps while the window was right).

Every expected step is computed here by hand from the bright step each detector fires on; the window (measured by
gradient) must hold it too.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from nets import Tiny1D

# one bright step (patch) per sample: the codes tie, which the gallery warns of
pytestmark = pytest.mark.filterwarnings("ignore:units.*the code was the same")


@pytest.mark.parametrize("t,p", [(16, 2), (12, 4), (20, 5), (6, 3)])
def test_the_heat_of_a_class_token_site_over_a_series_is_nan_at_every_size(t, p):
    """At (12, 4), (20, 5) and (6, 3) the token count divides the length: the heat marked steps P-1.. 2P-1, one patch
    late, outside the measured window [0, P)."""
    torch.manual_seed(0)
    net = nv.wrap(Tiny1D(p), num_classes=2).eval()
    x = torch.zeros(1, 1, t)
    x[:, 0, :p] = 1.0  # only the first patch is bright
    g = nv.unit_gallery(net, [(x, torch.zeros(1, dtype=torch.long))], units=[("act", 0)], k=1)
    assert [(s.name, s.axis) for s in net.sites] == [("act", -1)]
    assert g.window[0, 0].tolist() == [[0, p]] and int(g.position[0, 0]) == 1  # token 1 is patch 0
    assert bool(g.heat.isnan().all())


class ChannelsLast1D(nn.Module):
    """A ConvNeXt-style channels-last block: a strided, padded depthwise-like conv, then a Linear over the channels (the
    identity) and the activation. Unit 0 is on at output position q only where input step 2q is bright."""

    def __init__(self, c: int = 4):
        super().__init__()
        self.dw, self.pw, self.act, self.head = nn.Conv1d(1, c, 3, stride=2, padding=1), nn.Linear(c, c), nn.ReLU(), \
            nn.Linear(c, 2)
        with torch.no_grad():
            self.dw.weight.fill_(0.05)
            self.dw.weight[:, 0, 1] = 1.0
            self.dw.bias.fill_(-0.5)
            self.pw.weight.copy_(torch.eye(c)), self.pw.bias.zero_()

    def forward(self, x):
        return self.head(self.act(self.pw(self.dw(x).transpose(1, 2))).mean(1))


@pytest.mark.parametrize("t", [15, 16, 13])
def test_a_channels_last_strided_conv_keeps_its_heat_on_the_bright_step(t):
    """On T=15 (8 positions, no divisor of 15) its heat was all NaN, taken for tokens."""
    bright = [2, 8, 12]
    x = torch.zeros(3, 1, t)
    for i, s in enumerate(bright):
        x[i, 0, s] = 1.0 + 0.1 * i
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(ChannelsLast1D().eval(), 2, quantizer="hard", example_input=x).eval()
    assert [s.axis for s in net.sites] == [-1]
    g = nv.unit_gallery(net, [x], units=[("act", 0)], k=3)
    assert not bool(g.heat.isnan().any())
    for j in range(3):
        i = int(g.index[0, j])
        hot = set((g.heat[0, j] > 0.5).nonzero().flatten().tolist())
        (a, b), = g.window[0, j].tolist()
        assert bright[i] in hot, (t, i, sorted(hot))  # the unit's on-cell covers its bright step
        assert hot <= set(range(a, b)), (t, i, sorted(hot), (a, b))  # and lies in the window it reads
        assert len(hot) <= -(-t // ((t - 1) // 2 + 1))  # one cell of the map's (t - 1) // 2 + 1 over the series


class Moves1D(nn.Module):
    """A detector on at a bright step only (3 taps, centre 1), its map moved over the series by ``kind``."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.c0, self.act, self.fc = nn.Conv1d(1, 1, 3, padding=1), nn.ReLU(), nn.Linear(1, 2)
        with torch.no_grad():
            self.c0.weight.fill_(0.1)
            self.c0.weight[0, 0, 1] = 1.0
            self.c0.bias.fill_(-0.5)

    def pre(self, x):
        c0, k = self.c0, self.kind
        return {"plain": lambda: c0(x), "flip": lambda: c0(x).flip(-1), "roll": lambda: torch.roll(c0(x), 3, -1),
                "rollback": lambda: torch.roll(c0(torch.roll(x, 2, -1)), -2, -1),
                "flip_roll": lambda: torch.roll(c0(x.flip(-1)), -1, 2),
                "flip_twice": lambda: c0(x.flip(-1)).flip(-1),
                "mixed": lambda: c0(x) + c0(x).flip(-1)}[k]()

    def forward(self, x):
        return self.fc(self.act(self.pre(x)).mean(-1))


@pytest.mark.parametrize("t", [16, 11])
@pytest.mark.parametrize("kind", ["plain", "flip", "roll", "rollback", "flip_roll", "flip_twice", "mixed"])
def test_a_flipped_or_rolled_map_over_a_series_is_moved_back(kind, t):
    """flip: the heat was on at step T-1-s for a unit on step s; roll 3: at s+3. ``mixed`` (a map plus its flip) lies
    in no order: NaN, as on images."""
    bright = [1, 4, 9, t - 2]
    x = torch.zeros(4, 1, t)
    for i, s in enumerate(bright):
        x[i, 0, s] = 1.0 + 0.1 * i
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(Moves1D(kind).eval(), 2, quantizer="hard", example_input=x, unit_axis={"act": 1}).eval()
    g = nv.unit_gallery(net, [x], units=[0], k=4)
    for j in range(4):
        i = int(g.index[0, j])
        (a, b), = g.window[0, j].tolist()
        assert a <= bright[i] < b, (kind, i, (a, b))  # the window, measured, is right
        if kind == "mixed":
            assert bool(g.heat[0, j].isnan().all()), (kind, i)
        else:
            assert (g.heat[0, j] > 0).nonzero().flatten().tolist() == [bright[i]], (kind, t, i)


def test_position_orders_follow_one_positional_dim():
    """The orders themselves: a series' site is no longer left out (``{}``)."""
    from neuroview.core.map_order import position_orders

    x = torch.zeros(1, 1, 16)
    got = {}
    for kind in ("plain", "flip", "roll", "mixed"):
        net = nv.NeuroViewCNN(Moves1D(kind).eval(), 2, quantizer="hard", example_input=x, unit_axis={"act": 1}).eval()
        got[kind] = position_orders(net, net.sites, x)["act"]
    assert got == {"plain": (0,), "flip": ((0, -1, 15),), "roll": ((0, 1, 3),), "mixed": None}
    net = nv.wrap(Tiny1D(4), num_classes=2).eval()
    net(torch.zeros(1, 1, 12))
    assert position_orders(net, net.sites, torch.zeros(1, 1, 12)) == {"act": None}  # the class token's cat


# Review R4 of bcd094e, findings 1 and 2: series whose order was lost by the lineage rule, drawn as before bcd094e.


class Causal1D(nn.Module):
    """A TCN's causal conv, left-padded by ``torch.cat`` (or ``F.pad``): a 3-tap detector of a bright step."""

    def __init__(self, pad: str):
        super().__init__()
        self.pad = pad
        self.c0, self.act, self.fc = nn.Conv1d(1, 1, 3), nn.ReLU(), nn.Linear(1, 2)
        with torch.no_grad():
            self.c0.weight.fill_(0.1), self.c0.bias.fill_(-0.5)
            self.c0.weight[0, 0, 2] = 1.0  # output step t reads steps t-2..t; on only where step t is bright

    def forward(self, x):
        pad = x.new_zeros(len(x), x.shape[1], 2)
        x = torch.cat([pad, x], -1) if self.pad == "cat" else nn.functional.pad(x, (2, 0))
        return self.fc(self.act(self.c0(x)).mean(-1))


def _bright(t, steps):
    x = torch.zeros(len(steps), 1, t)
    for i, s in enumerate(steps):
        x[i, 0, s] = 1.0 + 0.1 * i
    return x


@pytest.mark.parametrize("pad", ["cat", "F.pad"])
def test_a_causal_conv_padded_by_cat_keeps_its_heat_on_the_bright_step(pad):
    """Review R4 finding 1: the zeros cat ahead of the series made its positions 'no order' (NaN heat, no maps)."""
    bright = [1, 4, 9, 14]
    x = _bright(16, bright)
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(Causal1D(pad).eval(), 2, quantizer="hard", example_input=x).eval()
    g = nv.unit_gallery(net, [x], units=[0], k=4)
    for j in range(4):
        i = int(g.index[0, j])
        assert (g.heat[0, j] > 0).nonzero().flatten().tolist() == [bright[i]], (pad, i)
    from neuroview.viz.map_sites import token_sites

    assert token_sites(net, net.explain(x, maps=True), x) == set()  # its maps are drawn


class Steps1D(nn.Module):
    """One token per step, units last, no class token: token t is step t. ``kind`` routes the tokens through an op the
    lineage does not follow (an einsum projection, a size-1 unfold). Unit 0 of ``act`` is on at a bright step."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.emb = nn.Conv1d(1, 4, 1)
        self.W = nn.Parameter(torch.eye(4))
        self.fc1, self.act, self.fc2 = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)
        with torch.no_grad():
            self.emb.weight.zero_(), self.emb.bias.zero_(), self.fc1.weight.zero_()
            self.emb.weight[0, 0, 0] = 1.0
            self.fc1.weight[0, 0] = 1.0
            self.fc1.bias.fill_(-0.5)

    def forward(self, x):
        h = self.emb(x).transpose(1, 2)  # [B, T, 4]
        if self.kind == "einsum":
            h = torch.einsum("btc,dc->btd", h, self.W)
        elif self.kind == "unfold":
            h = h.unfold(1, 1, 1).squeeze(-1)
        return self.fc2(self.act(self.fc1(h))).mean(1)


@pytest.mark.parametrize("kind", ["plain", "einsum", "unfold"])
def test_per_step_tokens_through_an_op_not_followed_keep_their_heat(kind):
    """Review R4 finding 2: 'order not followed' was read as 'no order' for units-last series sites (NaN heat)."""
    bright = [2, 5, 11]
    x = _bright(16, bright)
    torch.manual_seed(0)
    net = nv.wrap(Steps1D(kind).eval(), num_classes=2, layers=["act"], example_input=x).eval()
    assert net.sites[0].axis == -1
    g = nv.unit_gallery(net, [x], units=[("act", 0)], k=3)
    for j in range(3):
        i = int(g.index[0, j])
        assert (g.heat[0, j] > 0).nonzero().flatten().tolist() == [bright[i]], (kind, i)
    from neuroview.viz.map_sites import token_sites

    assert token_sites(net, net.explain(x, maps=True), x) == set()


class _Joined(nn.Module):
    """A site after a cat along the series: ``how`` says what is joined to the input's piece."""

    def __init__(self, how: str):
        super().__init__()
        self.how, self.c0, self.act, self.fc = how, nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Linear(2, 2)
        self.token = nn.Parameter(torch.zeros(1, 1, 1))  # a class token, zeros before training

    def forward(self, x):
        if self.how == "zeros":
            x = torch.cat([x.new_zeros(len(x), 1, 2), x], -1)
        elif self.how == "token":
            x = torch.cat([self.token.expand(len(x), -1, -1), x], -1)
        elif self.how == "itself":
            x = torch.cat([x, x], -1)
        elif self.how == "flipped":
            x = torch.cat([torch.zeros(len(x), 1, 2), x.flip(-1)], -1)
        return self.fc(self.act(self.c0(x)).mean(-1))


def test_position_orders_of_a_cat_along_a_series_keep_padding_only():
    """Constant padding of no parameter keeps the input's order (a flip in it too); a parameter (a class token, even
    while it is zeros) or a second piece of the input leaves none."""
    from neuroview.core.map_order import position_orders

    x = torch.zeros(1, 1, 16)
    x[0, 0, 3] = 1.0
    got = {}
    for how in ("zeros", "token", "itself", "flipped"):
        net = nv.NeuroViewCNN(_Joined(how).eval(), 2, example_input=torch.randn(4, 1, 16)).eval()
        got[how] = position_orders(net, net.sites, x)["act"]
    assert got == {"zeros": (0,), "token": None, "itself": None, "flipped": ((0, -1, 15),)}
