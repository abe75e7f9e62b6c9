"""Token sites ([B, N, C], sequence-first [N, B, C], windows folded into the samples) and the zoo's ViT: faults a
probe found and their fixes.

- a 1-D transformer's token maps (class token included) were stretched over the series: the gallery's heat and the
  spatial-map figures drew every token at the wrong steps;
- Captum's LayerConductance split a sequence-first or folded site's dim 0 as (steps x samples): a bare shape error,
  or, where N == n_steps + 1, silently wrong scores;
- ``unit_axis`` values of the wrong type (True, 1.0, "-1") were taken or refused in words that looked valid;
- ``ViT(heads=0, depth=0, mlp_ratio=0.01, ...)`` failed bare or late, or built a network without blocks.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import neuroview as nv
from nets import Tiny1D

T, P = 16, 2


def _tiny1d():
    torch.manual_seed(0)
    net = nv.wrap(Tiny1D(P), num_classes=2).eval()
    x = torch.zeros(2, 1, T)
    x[:, 0, 0:P] = 1.0  # only the first patch (samples 0..1) is bright
    net(x)
    return net, x


def test_gallery_heat_of_a_token_site_is_not_stretched_over_a_series():
    net, x = _tiny1d()
    assert [(s.name, s.axis) for s in net.sites] == [("act", -1)]
    g = nv.unit_gallery(net, [(x[:1], torch.zeros(1, dtype=torch.long))], units=[("act", 0)], k=1)
    assert g.window[0, 0].tolist() == [[0, P]]  # the measured window: the first patch
    # 9 tokens (class token first) stretched over 16 samples put the first patch's token at samples 2..3
    assert bool(g.heat.isnan().all())


def test_spatial_maps_leave_out_token_sites_of_a_series():
    from neuroview.viz import plots
    from neuroview.viz import units as vu
    from neuroview.viz.report_writer import _maps_like_input

    net, x = _tiny1d()
    exp = net.explain(x, maps=True)
    with pytest.raises(ValueError, match=r"no site has 1-D code maps like the input .*\['act'\] lie over tokens"):
        vu._top_maps(exp, x, 0, int(exp.target[0]), 1, net)
    with pytest.raises(ValueError, match="lie over tokens"):
        plots.spatial_maps(exp, x, 0, k=1, net=net)
    assert not _maps_like_input(exp, x, net)  # the report writes no spatial_maps_<i>.png for it
    # a convolution's map over a series still is drawn
    conv = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2, input_shape=(1, T)).eval()
    assert _maps_like_input(conv.explain(x, maps=True), x, conv)


class Tokens(nn.Module):
    """Patch tokens through one MLP in a layout of ``mode``: "bf" [B, N, C], "sf" sequence-first [N, B, C],
    "fold" windows of 4 tokens folded sample-major [B * 4, 4, C], "pf" the same windows ahead of the samples.
    All compute the same numbers; ``cls`` puts a class token first (bf and sf only)."""

    def __init__(self, mode="bf", cls=False):
        super().__init__()
        self.mode, self.cls = mode, cls
        self.pe = nn.Conv2d(1, 8, 2, stride=2)
        self.cls_token = nn.Parameter(torch.randn(1, 1, 8))
        self.fc1, self.act, self.fc2 = nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        t = self.pe(x).flatten(2).transpose(1, 2)  # [B, 16, 8]
        if self.cls:
            t = torch.cat([self.cls_token.expand(len(t), -1, -1), t], 1)
        b, n, c = t.shape
        mlp = lambda u: u + self.fc2(self.act(self.fc1(u)))  # noqa: E731
        if self.mode == "sf":
            t = mlp(t.transpose(0, 1)).transpose(0, 1)
        elif self.mode == "fold":
            t = mlp(t.reshape(b * 4, n // 4, c)).reshape(b, n, c)
        elif self.mode == "pf":
            t = mlp(t.reshape(b, 4, n // 4, c).transpose(0, 1).reshape(4 * b, n // 4, c))
            t = t.reshape(4, b, n // 4, c).transpose(0, 1).reshape(b, n, c)
        else:
            t = mlp(t)
        return self.head(t.mean(1))


def _pair(mode, cls=False, quantizer="hard"):
    torch.manual_seed(0)
    a = Tokens("bf", cls)
    b = copy.deepcopy(a)
    b.mode = mode
    na, nb = (nv.wrap(m, num_classes=3, quantizer=quantizer).eval() for m in (a, b))
    x = torch.randn(6, 1, 8, 8)
    na(x), nb(x)
    nb.load_state_dict(na.state_dict())
    return na, nb, x


# "none" reads the activation's output (Captum attributes to it), the others its input. Hard codes of windows ahead
# of the samples ("pf") are left out here: their permuted copy is not the GELU's own saved input, so the surrogate's
# slope is kept in 4 bits (grad_state="uint4", by design) and the gradients differ slightly from batch-first's.
@pytest.mark.parametrize("mode, quantizer", [("sf", "hard"), ("fold", "hard"), ("sf", "none"), ("fold", "none"),
                                             ("pf", "none")])
def test_layer_conductance_on_a_sample_first_view(mode, quantizer):
    pytest.importorskip("captum")
    from neuroview.attribution.faithfulness import unit_scores

    na, nb, x = _pair(mode, quantizer=quantizer)
    s = nb.sites[0]
    assert (s.sample_dim, s.folds > 1, s.positions_first) == {"sf": (1, False, False), "fold": (0, True, False),
                                                              "pf": (0, True, True)}[mode]
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    assert torch.allclose(na(x), nb(x), atol=1e-6)
    sa = unit_scores(na, x, y, "layer_conductance", n_steps=8)  # sf, fold, pf: Captum's bare "shape ... is invalid"
    sb = unit_scores(nb, x, y, "layer_conductance", n_steps=8)
    assert sa.abs().max() > 0
    torch.testing.assert_close(sb, sa, atol=1e-6, rtol=1e-4)
    two = unit_scores(nb, x[:2], y[:2], "layer_conductance", n_steps=8)  # the same sample, the same scores
    torch.testing.assert_close(two, sb[:2], atol=1e-6, rtol=1e-4)


def test_layer_conductance_with_windows_ahead_of_the_samples():
    pytest.importorskip("captum")
    from neuroview.attribution.faithfulness import unit_scores

    _, nb, x = _pair("pf")
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    s = unit_scores(nb, x, y, "layer_conductance", n_steps=8)  # was Captum's bare "shape ... is invalid"
    assert s.shape == (6, 16) and bool(s.isfinite().all()) and s.abs().max() > 0
    two = unit_scores(nb, x[:2], y[:2], "layer_conductance", n_steps=8)
    torch.testing.assert_close(two, s[:2], atol=1e-6, rtol=1e-4)


def test_layer_conductance_sequence_first_with_tokens_one_more_than_steps():
    pytest.importorskip("captum")
    from neuroview.attribution.faithfulness import unit_ablation, unit_scores

    na, nb, x = _pair("sf", cls=True)  # 17 tokens
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    # one sample, n_steps + 1 == 17 tokens: Captum's reshape fitted, and the scores were silently wrong
    sa = unit_scores(na, x[:1], y[:1], "layer_conductance", n_steps=16)
    sb = unit_scores(nb, x[:1], y[:1], "layer_conductance", n_steps=16)
    torch.testing.assert_close(sb, sa, atol=1e-6, rtol=1e-4)
    res = unit_ablation(nb, x, y, methods=None, seeds=[0], steps=2, n_steps=4)  # the default: every method
    assert "layer_conductance" in res.curves and "layer_conductance" not in res.skipped


def _tiny_vit():
    class TinyViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.pe = nn.Conv2d(1, 8, 2, stride=2)
            self.fc1, self.act, self.fc2 = nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            t = self.pe(x).flatten(2).transpose(1, 2)
            return self.head((t + self.fc2(self.act(self.fc1(t)))).mean(1))

    return TinyViT()


@pytest.mark.parametrize("axis", [True, 1.0, "-1", 1.5, 0])
def test_unit_axis_values_of_the_wrong_type_are_refused(axis):
    net = nv.wrap(_tiny_vit(), num_classes=3, unit_axis={"act": axis})
    with pytest.raises(ValueError, match=r"unit_axis: expected a mapping of site name to 1 or -1, got "
                                         + repr(axis).replace(".", r"\.") + " for site 'act'"):
        net(torch.randn(2, 1, 8, 8))


def test_unit_axis_ints_still_taken():
    net = nv.wrap(_tiny_vit(), num_classes=3, unit_axis={"act": -1})
    net(torch.randn(2, 1, 8, 8))
    assert (net.sites[0].axis, net.sites[0].channels) == (-1, 16)


@pytest.mark.parametrize("kw, what", [
    (dict(heads=0), r"heads: expected an int >= 1, got 0"),
    (dict(depth=0), r"depth: expected an int >= 1, got 0"),
    (dict(depth=-1), r"depth: expected an int >= 1, got -1"),
    (dict(dim=0), r"dim: expected an int >= 1, got 0"),
    (dict(heads=2.0), r"heads: expected an int >= 1, got 2\.0"),
    (dict(mlp_ratio=0.01), r"mlp_ratio: expected a number with int\(dim \* mlp_ratio\) >= 1 .*got 0\.01"),
    (dict(mlp_ratio=-1), r"mlp_ratio: .*got -1"),
    (dict(mlp_ratio=float("nan")), r"mlp_ratio: .*got nan"),
    (dict(dropout=2.0), r"dropout: expected a number in \[0, 1\), got 2\.0"),
    (dict(dropout=1.0), r"dropout: expected a number in \[0, 1\), got 1\.0"),
])
def test_vit_arguments_checked_by_name(kw, what):
    for name in ("vit_tiny", "nv_vit_tiny"):
        with pytest.raises(ValueError, match=what):
            nv.create_model(name, num_classes=3, **kw)


def test_vit_still_builds():
    m = nv.create_model("vit_tiny", num_classes=3, depth=1, heads=2, dim=8, mlp_ratio=0.5, dropout=0.1).eval()
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_vit_sizes_read_as_ints_and_img_size_named():
    """numpy's ints are ints (a patch size read from a config's array); img_size=8.0 met "'float' object is not
    subscriptable"."""
    import numpy as np

    net = nv.create_model("vit_tiny", num_classes=3, in_channels=1, img_size=8, patch_size=np.int64(2))
    assert net.patch_size == 2 and type(net.patch_size) is int
    for bad in (8.0, (8, 8, 8), "8"):
        with pytest.raises(ValueError, match=r"img_size: expected a positive int or two \(height, width\)"):
            nv.create_model("vit_tiny", num_classes=3, in_channels=1, img_size=bad)


class _ConvNeXt1D(nn.Module):
    """A channels-last convolution block over a series: its GELU site's units are last, its positions the steps."""

    def __init__(self, c=8):
        super().__init__()
        self.stem, self.dw = nn.Conv1d(1, c, 5, padding=2), nn.Conv1d(c, c, 7, padding=3, groups=c)
        self.norm, self.pw1, self.act, self.pw2 = nn.LayerNorm(c), nn.Linear(c, 16), nn.GELU(), nn.Linear(16, c)

    def forward(self, x):
        h = self.dw(self.stem(x)).transpose(1, 2)  # [B, T, C]
        return self.pw2(self.act(self.pw1(self.norm(h)))).transpose(1, 2)


def test_a_channels_last_convolution_over_a_series_keeps_its_heat_and_spatial_maps():
    """The review: every units-last site was taken for tokens, so a ConvNeXt-style 1-D block lost its gallery heat
    (all NaN) and its spatial maps ("lie over tokens"), though its map [B, C, T] is the series' own grid."""
    from neuroview.viz import plots

    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 40), torch.arange(16) % 2
    net = nv.wrap(_ConvNeXt1D(), 2, example_input=x[:4])
    assert [s.axis for s in net.sites] == [-1]
    g = nv.unit_gallery(net, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8),
                        units=[("act", 3)], k=2)
    cmap = net.explain(x, maps=True).code_maps["act"][:, 3]
    assert not torch.isnan(g.heat).any()
    torch.testing.assert_close(g.heat[0, 0], cmap[int(g.index[0, 0])])  # the same grid: the map is the heat
    plots.spatial_maps(net.explain(x[:2], maps=True), x[:2], 0, net=net)  # drawn, not refused as tokens


def test_vit_takes_numpy_floats_and_an_array_of_sizes():
    """The review: np.float32(2.0) as mlp_ratio or dropout and np.array([8, 8]) as img_size built before the checks."""
    import numpy as np

    net = nv.create_model("vit_tiny", num_classes=3, in_channels=1, img_size=np.array([8, 8]),
                          mlp_ratio=np.float32(2.0), dropout=np.float32(0.1))
    assert net.grid == (4, 4) or net.grid[0] * net.patch_size == 8
