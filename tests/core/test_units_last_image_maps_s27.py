"""A ConvNeXt-style 2-D block, units last over the image's own grid (probe S27 P4 finding 2).

``act(fc(conv(x).permute(0, 2, 3, 1)))`` holds its units on the last dim and its positions on the image's
``H x W``, in the input's order (``position_orders`` finds ``(0, 1)``), but its code maps were flattened to
``[B, C, H * W]``: the gallery's heat was all NaN without a word, ``spatial_map`` gave ``[B, C, H * W]`` and
``spatial_maps(..., net=)`` refused ("no site has 2-D code maps like the input"). Checked against the same network
written channels first, whose maps and heat are a convolution's.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import neuroview as nv
from neuroview.core.map_order import position_orders

H, W = 10, 12


class Block(nn.Module):
    """A depthwise-style conv, then a Linear over the channels and GELU: ``last`` applies them channels-last
    (``[B, H, W, C]``, or ``[B, W, H, C]`` with ``swap``), else channels-first through the same weights."""

    def __init__(self, last: bool, swap: bool = False):
        super().__init__()
        self.last, self.swap = last, swap
        self.dw, self.fc, self.act, self.head = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 12), nn.GELU(), nn.Linear(12, 4)

    def forward(self, x):
        h = self.fc(self.dw(x).permute(0, 3, 2, 1) if self.swap else self.dw(x).permute(0, 2, 3, 1))
        if not self.last:  # the same numbers, units moved to dim 1 before the activation: a conv site
            h = h.permute(0, 3, 2, 1) if self.swap else h.permute(0, 3, 1, 2)
            if self.swap:
                h = h.mT
        h = self.act(h)
        return self.head(h.mean((2, 3)) if not self.last else h.mean((1, 2)))


def _pair(quantizer="hard", swap=False):
    torch.manual_seed(0)
    x = torch.randn(16, 3, H, W)
    nets = []
    for last in (True, False):
        torch.manual_seed(1)
        nets.append(nv.wrap(Block(last, swap), num_classes=4, example_input=x[:4], quantizer=quantizer).eval())
    with torch.no_grad():  # the same weights (load_state_dict rightly refuses a head of units on another axis)
        for a, b in zip([*nets[0].parameters(), *nets[0].buffers()], [*nets[1].parameters(), *nets[1].buffers()]):
            b.copy_(a)
    return nets, x


@pytest.mark.parametrize("quantizer", ["hard", "none"])
def test_a_units_last_site_over_an_image_has_the_maps_of_the_same_conv_site(quantizer):
    (last, first), x = _pair(quantizer)
    assert [s.axis for s in last.sites] == [-1] and [s.axis for s in first.sites] == [1]
    assert position_orders(last, last.sites, x[:1]) == {"act": (0, 1)}
    e_last, e_first = last.explain(x[:4], maps=True), first.explain(x[:4], maps=True)
    tol = 0 if quantizer == "hard" else 1e-6  # GELU's own rounding on a strided tensor (the codes of 'none')
    assert e_last.code_maps["act"].shape == (4, 12, H, W)
    torch.testing.assert_close(e_last.code_maps["act"], e_first.code_maps["act"], rtol=0, atol=tol)
    m = e_last.spatial_map("act", 2)
    assert m.shape == (4, 12, H, W)
    torch.testing.assert_close(m, e_first.spatial_map("act", 2), rtol=0, atol=tol)
    # the maps still sum to each unit's contribution, the one recipe of spatial_map
    torch.testing.assert_close(m.flatten(2).sum(-1), e_last.for_class(2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("swap", [False, True])
def test_a_units_last_site_over_an_image_has_the_heat_of_the_same_conv_site(swap):
    """``swap``: the grid laid ``[B, W, H, C]``, moved back into the input's order as a conv map's ``.mT``."""
    (last, first), x = _pair(swap=swap)
    y = torch.arange(16) % 4
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    g_last = nv.unit_gallery(last, loader, units=[0, 3, 7], k=3)
    g_first = nv.unit_gallery(first, loader, units=[0, 3, 7], k=3)
    assert not torch.isnan(g_last.heat).any()
    assert torch.equal(g_last.index, g_first.index) and torch.equal(g_last.window, g_first.window)
    torch.testing.assert_close(g_last.heat, g_first.heat, rtol=0, atol=0)
    # the heat of the top sample of unit 3 is its code map laid on the image, rows on H
    cmap = first.explain(x, maps=True).code_maps["act"][int(g_first.index[1, 0]), 3]
    torch.testing.assert_close(g_last.heat[1, 0], cmap.mT if swap else cmap, rtol=0, atol=0)


def test_spatial_maps_draw_a_units_last_site_over_an_image():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuroview.viz import plots
    from neuroview.viz.report_writer import _maps_like_input

    (last, first), x = _pair(swap=True)
    exp = last.explain(x[:2], maps=True)
    assert _maps_like_input(exp, x[:2], last)  # the report writes its spatial_maps_<i>.png
    fig = plots.spatial_maps(exp, x[:2], 0, k=3, net=last)
    ref = plots.spatial_maps(first.explain(x[:2], maps=True), x[:2], 0, k=3, net=first)
    titles = [a.get_title() for a in fig.axes if a.get_title().startswith("act")]
    assert len(titles) == 3 and titles == [a.get_title() for a in ref.axes if a.get_title().startswith("act")]
    drawn = [a.images[-1].get_array() for a in fig.axes[1:4]]
    want = [a.images[-1].get_array() for a in ref.axes[1:4]]
    for d, w in zip(drawn, want):
        assert d.shape == (H, W)
        assert (d == w).all()
    plt.close(fig)
    plt.close(ref)


class TokenGrid(nn.Module):
    """Patches as tokens ``[B, N, C]``, reshaped back into a grid ``[B, h, w, C]`` (Swin's layout): the reshape is not
    followed, so the grid's order over the image is not known."""

    def __init__(self):
        super().__init__()
        self.patch, self.fc, self.act, self.head = nn.Conv2d(3, 8, 2, stride=2), nn.Linear(8, 12), nn.GELU(), nn.Linear(12, 4)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)  # [B, N, C]
        h = self.act(self.fc(t.reshape(len(x), H // 2, W // 2, 8)))
        return self.head(h.mean((1, 2)))


def test_a_units_last_grid_in_no_followed_order_still_has_no_heat_and_is_left_out():
    """Its grid kept ([B, C, h, w]) but not drawn: stretched unmoved it could sit transposed or scrambled."""
    from neuroview.viz import plots

    torch.manual_seed(0)
    x = torch.randn(8, 3, H, W)
    net = nv.wrap(TokenGrid(), num_classes=4, example_input=x[:4]).eval()
    assert position_orders(net, net.sites, x[:1]) == {}  # not followed
    exp = net.explain(x[:2], maps=True)
    assert exp.spatial_map("act", 1).shape == (2, 12, H // 2, W // 2)
    g = nv.unit_gallery(net, [(x, torch.zeros(8, dtype=torch.long))], units=[0], k=2)
    assert bool(g.heat.isnan().all())
    with pytest.raises(ValueError, match=r"no site has 2-D code maps like the input .*\['act'\] lie over tokens"):
        plots.spatial_maps(exp, x[:2], 0, net=net)


class ScrambledGrid(TokenGrid):
    """The patch tokens reshaped into ``[B, W/2, H/2, C]`` (review S27 R6 finding 3): a grid in no order of the image's."""

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        return self.head(self.act(self.fc(t.reshape(len(x), W // 2, H // 2, 8))).mean((1, 2)))


def test_spatial_maps_without_net_refuse_a_units_last_grid_whose_order_is_not_known():
    """Without ``net`` a scrambled token grid was drawn stretched over the image (refused before 7b9c97b flattened it
    no more, and with ``net``); ConvNeXt's grid, in order, is drawn given ``net`` and refused without it, as before."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuroview.viz import plots

    torch.manual_seed(0)
    x = torch.randn(8, 3, H, W)
    net = nv.wrap(ScrambledGrid(), num_classes=4, example_input=x[:4]).eval()
    exp = net.explain(x[:2], maps=True)
    assert exp.code_maps["act"].shape == (2, 12, W // 2, H // 2)
    with pytest.raises(ValueError, match=r"no site has 2-D code maps like the input .*\['act'\].*pass net="):
        plots.spatial_maps(exp, x[:2], 0, k=2)
    with pytest.raises(ValueError, match=r"\['act'\] lie over tokens"):
        plots.spatial_maps(exp, x[:2], 0, k=2, net=net)
    (last, _), xs = _pair()
    e_last = last.explain(xs[:2], maps=True)
    with pytest.raises(ValueError, match=r"pass net="):
        plots.spatial_maps(e_last, xs[:2], 0, k=2)
    plt.close(plots.spatial_maps(e_last, xs[:2], 0, k=2, net=last))


def test_spatial_maps_without_net_still_draw_a_conv_site():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neuroview.viz import plots

    torch.manual_seed(0)
    x = torch.randn(4, 3, H, W)
    net = nv.wrap(nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU()), num_classes=4, example_input=x).eval()
    fig = plots.spatial_maps(net.explain(x, maps=True), x, 0, k=2)
    assert [a.images[-1].get_array().shape for a in fig.axes[1:3]] == [(H, W)] * 2
    plt.close(fig)
