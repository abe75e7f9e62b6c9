"""A LayerNorm subclass with a forward of its own (torchvision's and timm's LayerNorm2d: [B, C, H, W] permuted to
normalize C last, and back) says its width, not its axis. On C x C maps (32 channels of 32 x 32, CIFAR's size) both
dims fit, and the wrapper took LayerNorm's natural -1: each code averaged one column over the channels (codes 0.16
off per channel, logits 0.09). Now the axis is read off the norm's output, and where it cannot be, the tie is an error
naming unit_axis; where only one dim fits, it is found."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv


class LayerNorm2d(nn.LayerNorm):  # as torchvision.models.convnext.LayerNorm2d
    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class LayerNormAct2d(LayerNorm2d):  # timm's pattern: the activation inside the norm
    def __init__(self, c):
        super().__init__(c)
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(super().forward(x))


def _net(norm, size):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), norm, *([] if isinstance(norm, LayerNormAct2d) else [nn.GELU()]),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    return m, torch.randn(4, 3, size, size)


@pytest.mark.parametrize("norm", [LayerNorm2d, LayerNormAct2d])
def test_a_tie_is_read_off_the_norm_s_output(norm):
    # along the axis a LayerNorm normalized, (out - bias) / weight has mean 0 and variance 1 at every position
    m, x = _net(norm(8), 8)
    net = nv.wrap(m, 4, normalize=False, example_input=x).eval()
    with torch.no_grad():
        z = LayerNorm2d.forward(m[1], m[0](x))
    assert net.sites[0].axis == 1
    torch.testing.assert_close(net.codes(x), (z > 0).float().mean((2, 3)))  # per channel, by hand


@pytest.mark.parametrize("norm", [LayerNorm2d, LayerNormAct2d])
def test_a_tie_the_output_cannot_tell_is_refused_and_the_override_gives_the_channels(norm):
    m, x = _net(norm(8), 8)
    with torch.no_grad():
        m[1].weight[3] = 0.0  # a unit scaled to nothing: (out - bias) / weight tells no axis
    site = "2" if norm is LayerNorm2d else "1.act"
    why = r"has 8 features \(as many as dims 1 and -1 hold" if norm is LayerNorm2d else "no layer produced it as it is"
    with pytest.raises(ValueError, match=rf"unit_axis: cannot tell where the units of site '{site}' lie.*{why}.*"
                                         rf"pass unit_axis="):
        nv.wrap(m, 4, normalize=False, example_input=x)
    net = nv.wrap(m, 4, normalize=False, example_input=x, unit_axis={site: 1}).eval()
    with torch.no_grad():
        z = LayerNorm2d.forward(m[1], m[0](x))
    torch.testing.assert_close(net.codes(x), (z > 0).float().mean((2, 3)))


class CastingLayerNorm(nn.LayerNorm):  # CLIP's: a forward of its own that only casts, normalizing the last axis
    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


def test_a_layernorm_subclass_that_normalizes_the_last_axis_keeps_it_on_a_tie():
    # refused by the first version of the LayerNorm2d fix (the review): its forward is its own, its axis the last
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 8), CastingLayerNorm(8), nn.GELU()).eval()
    x = torch.randn(4, 8, 8)
    net = nv.wrap(m, 3, normalize=False, example_input=x).eval()
    with torch.no_grad():
        z = m[1](m[0](x))
    assert net.sites[0].axis == -1
    torch.testing.assert_close(net.codes(x), (z > 0).float().mean(1))


def test_where_one_dim_fits_the_channels_are_found():
    m, x = _net(LayerNorm2d(8), 6)
    net = nv.wrap(m, 4, normalize=False, example_input=x).eval()
    with torch.no_grad():
        z = LayerNorm2d.forward(m[1], m[0](x))
    assert net.sites[0].channels == 8
    torch.testing.assert_close(net.codes(x), (z > 0).float().mean((2, 3)))


def test_a_plain_layernorm_keeps_its_last_axis_on_a_tie():
    # nn.LayerNorm itself normalizes the last dim: on [B, N, C] tokens with N == C its units are the last dim
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 6), nn.LayerNorm(6), nn.GELU()).eval()
    x = torch.randn(4, 6, 6)
    net = nv.wrap(m, 3, normalize=False, example_input=x).eval()
    with torch.no_grad():
        z = m[1](m[0](x))
    torch.testing.assert_close(net.codes(x), (z > 0).float().mean(1))
