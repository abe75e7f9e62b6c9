"""Probe S26 P4, findings 1 and 3: where ``plots.spatial_maps`` (the report's ``spatial_maps_<i>.png``) draws a map.

1. A 1-D patch transformer's tokens (class token first) were drawn over the series one patch late wherever their
   count divides the length; a channels-last strided convolution whose map does not divide it was refused as tokens.
3. A map moved by ``flip``, ``roll``, ``rot90`` or ``.mT`` was drawn as the site holds it: the unit's contribution on
   the mirrored, shifted or transposed pixel. With ``net`` each map is now moved back into the input's order, and a
   site whose positions lie in no order of the input's is left out.

Each detector fires at one bright pixel (step) only; the panel's hottest cell is located from the drawn image's own
array and extent, and must cover that pixel (step), computed by hand.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.viz import plots
from neuroview.viz.report_writer import _maps_like_input
from nets import Tiny1D

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _hot_cell(ax):
    """The span ``((top, bottom), (left, right))`` of the hottest cell of the map drawn in ``ax``, in input units (a
    series' panel: ``(left, right)`` only)."""
    img = ax.get_images()[-1]  # over a colour image the map is drawn last
    a = torch.as_tensor(img.get_array().filled(0) if hasattr(img.get_array(), "filled") else img.get_array()).float()
    left, right, bottom, top = img.get_extent()
    if a.shape[0] == 1:  # a series: one row over the steps
        c, w = int(a[0].abs().argmax()), (right - left) / a.shape[1]
        return left + c * w, left + (c + 1) * w
    r, c = divmod(int(a.abs().flatten().argmax()), a.shape[1])
    h, w = (bottom - top) / a.shape[0], (right - left) / a.shape[1]
    return (top + r * h, top + (r + 1) * h), (left + c * w, left + (c + 1) * w)


def _covers(span, p):
    """Whether the cell ``span`` holds the centre of pixel / step ``p``."""
    return span[0] <= p + 0.5 < span[1]


# ----------------------------------------------------------------------------------------------- finding 1
@pytest.mark.parametrize("t,p", [(16, 2), (12, 4), (20, 5), (6, 3)])
def test_spatial_maps_leave_out_a_class_token_site_over_a_series_at_every_size(t, p):
    """At (12, 4), (20, 5) and (6, 3) the class token's code was drawn over the first steps, each patch one late."""
    torch.manual_seed(0)
    net = nv.wrap(Tiny1D(p), num_classes=2).eval()
    x = torch.zeros(2, 1, t)
    x[:, 0, :p] = 1.0
    net(x)
    exp = net.explain(x, maps=True)
    with pytest.raises(ValueError, match=rf"no site has 1-D code maps like the input \(2, 1, {t}\): the maps of "
                                         r"\['act'\] lie over tokens"):
        plots.spatial_maps(exp, x, 0, k=1, net=net)
    assert not _maps_like_input(exp, x, net)  # the report writes no spatial_maps_<i>.png for it


class ChannelsLast1D(nn.Module):
    """A ConvNeXt-style channels-last block: a strided, padded conv, a Linear over the channels (the identity), the
    activation. Unit c is on at output position q only where input step 2q is bright."""

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
def test_a_channels_last_strided_conv_over_a_series_is_drawn_on_its_bright_step(t):
    """On T=15 and 13 (8 and 7 positions) it was refused: 'the maps of ['act'] lie over tokens'."""
    bright = [2, 8, 12]
    x = torch.zeros(3, 1, t)
    for i, s in enumerate(bright):
        x[i, 0, s] = 1.0 + 0.1 * i
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(ChannelsLast1D().eval(), 2, quantizer="hard", example_input=x).eval()
    assert [s.axis for s in net.sites] == [-1]
    exp = net.explain(x, maps=True)
    assert _maps_like_input(exp, x, net)
    for i, s in enumerate(bright):
        fig = plots.spatial_maps(exp, x, i, k=1, net=net)
        assert _covers(_hot_cell(fig.axes[1]), s), (t, s, _hot_cell(fig.axes[1]))


# ----------------------------------------------------------------------------------------------- finding 3
class Moved(nn.Module):
    """A 3x3 detector on at a bright pixel only; its map moved by ``kind`` before the activation."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.c0, self.act, self.fc = nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Linear(2, 2)
        with torch.no_grad():
            self.c0.weight.fill_(0.05)
            self.c0.weight[:, 0, 1, 1] = 1.0
            self.c0.bias.fill_(-0.5)
            self.fc.weight.fill_(1.0)

    def forward(self, x):
        z = self.c0(x)
        z = {"plain": lambda: z, "flip": lambda: z.flip(-1), "mT": lambda: z.mT, "roll": lambda: torch.roll(z, 2, -1),
             "rot90": lambda: torch.rot90(z, 1, (2, 3)), "roll2d": lambda: torch.roll(z, (1, -2), (2, 3)),
             "flip_mT": lambda: z.flip(-2).mT, "mixed": lambda: z + z.flip(-1)}[self.kind]()
        return self.fc(self.act(z).mean((2, 3)))


@pytest.mark.parametrize("kind,hw", [("plain", (6, 8)), ("flip", (6, 8)), ("mT", (7, 7)), ("mT", (6, 8)),
                                     ("roll", (6, 8)), ("rot90", (6, 6)), ("rot90", (5, 7)), ("roll2d", (6, 8)),
                                     ("flip_mT", (5, 7))])
def test_spatial_maps_move_a_moved_image_map_back(kind, hw):
    """flip drew the unit at (1, 3) for a pixel at (1, 4), .mT at (4, 1) (on 6x8 an 8x6 map stretched over the 6x8
    extent), roll at (1, 6)."""
    pixels = [(1, 4), (4, 2), (2, 5)]
    x = torch.zeros(3, 1, *hw)
    for i, (r, c) in enumerate(pixels):
        x[i, 0, r, c] = 1.0 + 0.2 * i
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(Moved(kind).eval(), 2, quantizer="hard", example_input=x, unit_axis={"act": 1}).eval()
    exp = net.explain(x, maps=True)
    assert _maps_like_input(exp, x, net)
    for i, (r, c) in enumerate(pixels):
        fig = plots.spatial_maps(exp, x, i, k=1, net=net)
        rows, cols = _hot_cell(fig.axes[1])
        assert _covers(rows, r) and _covers(cols, c), (kind, hw, (r, c), rows, cols)
        assert fig.axes[1].get_images()[-1].get_array().shape == hw  # the map in the input's shape, not stretched


class Moves1D(nn.Module):
    """A 3-tap detector on at a bright step only, its map moved over the series by ``kind``."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.c0, self.act, self.fc = nn.Conv1d(1, 1, 3, padding=1), nn.ReLU(), nn.Linear(1, 2)
        with torch.no_grad():
            self.c0.weight.fill_(0.1)
            self.c0.weight[0, 0, 1] = 1.0
            self.c0.bias.fill_(-0.5)

    def forward(self, x):
        c0, k = self.c0, self.kind
        z = {"plain": lambda: c0(x), "flip": lambda: c0(x).flip(-1), "roll": lambda: torch.roll(c0(x), 3, -1),
             "rollback": lambda: torch.roll(c0(torch.roll(x, 2, -1)), -2, -1),
             "flip_roll": lambda: torch.roll(c0(x.flip(-1)), -1, 2)}[k]()
        return self.fc(self.act(z).mean(-1))


@pytest.mark.parametrize("t", [16, 11])
@pytest.mark.parametrize("kind", ["plain", "flip", "roll", "rollback", "flip_roll"])
def test_spatial_maps_move_a_moved_series_map_back(kind, t):
    """The flipped series' map was drawn hot at step 14 for a unit on step 1."""
    bright = [1, 4, t - 2]
    x = torch.zeros(3, 1, t)
    for i, s in enumerate(bright):
        x[i, 0, s] = 1.0 + 0.1 * i
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(Moves1D(kind).eval(), 2, quantizer="hard", example_input=x, unit_axis={"act": 1}).eval()
    exp = net.explain(x, maps=True)
    for i, s in enumerate(bright):
        span = _hot_cell(plots.spatial_maps(exp, x, i, k=1, net=net).axes[1])
        assert _covers(span, s), (kind, t, s, span)


class TwoSites(nn.Module):
    """Site ``a0`` in the input's order; site ``a1`` reads a map summed with its mirror image (no order of the input's)."""

    def __init__(self):
        super().__init__()
        self.c0, self.a0, self.a1, self.fc = nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.ReLU(), nn.Linear(4, 2)
        with torch.no_grad():
            self.c0.weight.fill_(0.05)
            self.c0.weight[:, 0, 1, 1] = 1.0
            self.c0.bias.fill_(-0.3)  # z + z.flip(-1) is on at the bright pixel and its mirror image: 0.7 - 0.3
            self.fc.weight.fill_(1.0)

    def forward(self, x):
        z = self.c0(x)
        h = torch.cat([self.a0(z).mean((2, 3)), self.a1(z + z.flip(-1)).mean((2, 3))], 1)
        return self.fc(h)


def test_a_site_whose_positions_lie_in_no_order_is_left_out():
    x = torch.zeros(2, 1, 6, 8)
    x[:, 0, 1, 1] = 1.0
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(TwoSites().eval(), 2, quantizer="hard", example_input=x,
                          unit_axis={"a0": 1, "a1": 1}).eval()
    exp = net.explain(x, maps=True)
    v = exp.for_class(int(exp.target[0]))[0]
    assert bool((v[exp.site_slices["a1"]] != 0).all())  # a1's units add to the logit: only its order leaves it out
    fig = plots.spatial_maps(exp, x, 0, k=4, net=net)
    titles = [ax.get_title() for ax in fig.axes[1:] if ax.get_images()]
    assert titles and all(t.startswith("a0 #") for t in titles), titles  # a1's mirrored sum is not drawn
    assert _maps_like_input(exp, x, net)


def test_a_network_whose_only_site_lies_in_no_order_draws_no_spatial_maps():
    x = torch.zeros(2, 1, 6, 8)
    x[:, 0, 1, 1] = 1.0
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(Moved("mixed").eval(), 2, quantizer="hard", example_input=x, unit_axis={"act": 1}).eval()
    exp = net.explain(x, maps=True)
    with pytest.raises(ValueError, match=r"no site has 2-D code maps like the input \(2, 1, 6, 8\): the maps of "
                                         r"\['act'\] lie in no order of the input's positions"):
        plots.spatial_maps(exp, x, 0, k=1, net=net)
    assert not _maps_like_input(exp, x, net)  # the report writes no spatial_maps_<i>.png for it
