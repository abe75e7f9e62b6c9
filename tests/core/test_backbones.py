"""Modern backbones, no hints given: look-alikes of torchvision's and timm's layouts.

For each: the number of units equals the sum of the producing layers' feature counts, computed
here from the modules themselves (not by the wrapper); the contributions of the asked classes
plus the bias equal ``net(x)`` in eval mode; where the backbone accepts two input sizes, both
give the same units.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv


# ---------------------------------------------------------------- look-alike layouts
class LayerNorm2d(nn.LayerNorm):
    """timm/torchvision's channels-first LayerNorm: permute, normalize the last dim, permute back."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Permute(nn.Module):
    def __init__(self, *dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return x.permute(*self.dims)


class ConvNeXtBlock(nn.Module):
    """torchvision's CNBlock: depthwise conv, Permute, LayerNorm, Linear, GELU, Linear, Permute."""

    def __init__(self, dim):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(dim, dim, 7, padding=3, groups=dim), Permute(0, 2, 3, 1), nn.LayerNorm(dim),
                                   nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), Permute(0, 3, 1, 2))

    def forward(self, x):
        return x + self.block(x)


class ConvNeXt(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, dim, 4, stride=4), LayerNorm2d(dim))
        self.blocks = nn.Sequential(ConvNeXtBlock(dim), ConvNeXtBlock(dim))
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class MLP(nn.Module):
    def __init__(self, dim, hidden, act=nn.GELU):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), act(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, dim, heads=2):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


class EncoderBlock(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.n1, self.attn, self.n2, self.mlp = nn.LayerNorm(dim), Attention(dim), nn.LayerNorm(dim), MLP(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        return x + self.mlp(self.n2(x))


class ViT(nn.Module):
    """Patch embedding, class token, position embedding of a fixed grid, and an input-size assert."""

    def __init__(self, size=16, patch=4, dim=12, hidden=20, depth=2):
        super().__init__()
        self.size = size
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, (size // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, hidden) for _ in range(depth)])
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        assert x.shape[-2:] == (self.size, self.size), f"expected {self.size}x{self.size} input"
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(len(t), -1, -1), t], 1) + self.pos
        return self.head(self.blocks(t)[:, 0])


class SwinBlock(nn.Module):
    """Windowed attention on [B*nW, N, C], then the MLP on the [B, H, W, C] map (torchvision's Swin)."""

    def __init__(self, dim, window=2):
        super().__init__()
        self.w = window
        self.n1, self.attn, self.n2, self.mlp = nn.LayerNorm(dim), Attention(dim), nn.LayerNorm(dim), MLP(dim, 3 * dim)

    def forward(self, x):  # [B, H, W, C]
        b, h, w, c = x.shape
        win = x.reshape(b, h // self.w, self.w, w // self.w, self.w, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, self.w * self.w, c)
        win = self.attn(self.n1(win))
        x = x + win.reshape(b, h // self.w, w // self.w, self.w, self.w, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        return x + self.mlp(self.n2(x))


class Swin(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.embed = nn.Sequential(nn.Conv2d(3, dim, 2, stride=2), Permute(0, 2, 3, 1), nn.LayerNorm(dim))
        self.blocks = nn.Sequential(SwinBlock(dim), SwinBlock(dim))

    def forward(self, x):
        return self.blocks(self.embed(x)).mean((1, 2))


class MixerBlock(nn.Module):
    """MLP-Mixer: a token-mixing MLP on [B, C, N] (units: its hidden token features), then channel mixing."""

    def __init__(self, tokens, dim):
        super().__init__()
        self.n1, self.tok, self.n2, self.ch = nn.LayerNorm(dim), MLP(tokens, 2 * tokens), nn.LayerNorm(dim), MLP(dim, 3 * dim)

    def forward(self, x):  # [B, N, C]
        x = x + self.tok(self.n1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.ch(self.n2(x))


class Mixer(nn.Module):
    def __init__(self, size=8, patch=2, dim=6):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, patch, stride=patch)
        self.blocks = nn.Sequential(MixerBlock((size // patch) ** 2, dim), MixerBlock((size // patch) ** 2, dim))

    def forward(self, x):
        return self.blocks(self.patch(x).flatten(2).transpose(1, 2)).mean(1)


class MobileViTBlock(nn.Module):
    """Conv, unfold into patches folded into the batch ([B * P, N, C], sample-major), a transformer, fold back."""

    def __init__(self, cin, dim, patch=2):
        super().__init__()
        self.p = patch
        self.local = nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1), nn.BatchNorm2d(cin), nn.SiLU(), nn.Conv2d(cin, dim, 1))
        self.transformer = EncoderBlock(dim, 2 * dim)
        self.proj = nn.Sequential(nn.Conv2d(dim, cin, 1), nn.BatchNorm2d(cin), nn.SiLU())

    def forward(self, x):
        y = self.local(x)
        b, c, h, w = y.shape
        p = self.p
        t = y.reshape(b, c, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1).reshape(b * p * p, (h // p) * (w // p), c)
        t = self.transformer(t)
        y = t.reshape(b, p, p, h // p, w // p, c).permute(0, 5, 3, 1, 4, 2).reshape(b, c, h, w)
        return x + self.proj(y)


class SqueezeExcite(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.fc1, self.act, self.fc2, self.gate = nn.Conv2d(c, c // r, 1), nn.SiLU(), nn.Conv2d(c // r, c, 1), nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))


class TimmGELU(nn.Module):
    """What timm.layers.activations.GELU looks like: its own class, not nn.GELU."""

    def forward(self, x):
        return F.gelu(x)


class TimmHardSwish(nn.Module):
    def forward(self, x):
        return F.hardswish(x)


TimmGELU.__module__ = TimmHardSwish.__module__ = "timm.layers.activations"
TimmGELU.__name__, TimmHardSwish.__name__ = "GELU", "HardSwish"


def _lenet():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 5 * 5, 12), nn.ReLU(), nn.Linear(12, 10))


def _effnet():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.SiLU(), SqueezeExcite(8), nn.Conv2d(8, 6, 1), nn.ReLU6())


def _timm_style():
    return nn.Sequential(nn.Conv2d(3, 8, 3), TimmHardSwish(), nn.Conv2d(8, 4, 1), TimmGELU())


# name: (backbone factory, input sizes it accepts, expected units from the producing layers)
def _units(model: nn.Module, kinds) -> int:
    return sum(getattr(m, "out_features", 0) or getattr(m, "out_channels", 0) for m in model.modules() if isinstance(m, kinds))


def _mlps(model) -> int:
    return sum(m.fc1.out_features for m in model.modules() if isinstance(m, MLP))


CASES = {
    "convnext": (ConvNeXt, [(3, 16, 16), (3, 24, 24)], lambda m: _mlps_convnext(m)),
    "vit": (ViT, [(3, 16, 16)], _mlps),
    "swin": (Swin, [(3, 8, 8), (3, 12, 12)], _mlps),
    "mixer": (Mixer, [(3, 8, 8)], _mlps),
    "mobilevit": (lambda: nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.SiLU(), MobileViTBlock(6, 8)), [(3, 8, 8), (3, 12, 12)],
                  lambda m: 6 + 6 + _mlps(m) + 6),
    "squeeze_excite": (_effnet, [(3, 9, 9), (3, 12, 12)], lambda m: 8 + 2 + 8 + 6),
    "lenet_fixed_head": (_lenet, [(1, 12, 12)], lambda m: 4 + 12),
    "timm_activations": (_timm_style, [(3, 7, 7), (3, 9, 9)], lambda m: 8 + 4),
}


def _mlps_convnext(m) -> int:
    return sum(b.block[3].out_features for b in m.modules() if isinstance(b, ConvNeXtBlock))


@pytest.mark.parametrize("name", list(CASES))
def test_units_follow_the_producing_layer_and_explanations_are_exact(name):
    torch.manual_seed(0)
    factory, sizes, expected = CASES[name]
    backbone = factory()
    net = nv.wrap(backbone, 5)  # no hints: the sites come from the first batch
    x = torch.randn(4, *sizes[0])
    net.train()(x)  # first batch, in training mode: finds the sites, builds the classifier
    assert net.num_units == expected(backbone), [(s.name, s.channels, s.axis) for s in net.sites]
    net.eval()
    for size in sizes:
        xs = torch.randn(3, *size)
        exp = net.explain(xs)
        assert len(exp.units) == expected(backbone)  # a second input size: the same units
        want = net(xs)
        got = exp.for_class().sum(-1) + exp.bias[exp.target]
        torch.testing.assert_close(got, want[torch.arange(3), exp.target], rtol=0, atol=1e-5)
        torch.testing.assert_close(exp.logits, want, rtol=0, atol=1e-5)
        torch.testing.assert_close(exp.for_class(2).sum(-1) + exp.bias[2], want[:, 2], rtol=0, atol=1e-5)


def test_token_and_channels_last_sites_record_their_axis():
    vit = nv.wrap(ViT(), 3, example_input=torch.randn(2, 3, 16, 16))
    assert {s.axis for s in vit.sites} == {-1} and all(s.channels == 20 for s in vit.sites)
    cnx = nv.wrap(ConvNeXt(), 3, example_input=torch.randn(2, 3, 16, 16))
    assert [s.axis for s in cnx.sites] == [-1, -1] and [s.channels for s in cnx.sites] == [32, 32]
    se = nv.wrap(_effnet(), 3, example_input=torch.randn(2, 3, 9, 9))
    assert [s.axis for s in se.sites] == [1, 1, 1, 1]


def test_token_maps_are_over_tokens_and_sum_to_the_unit_share():
    torch.manual_seed(0)
    net = nv.wrap(ViT(), 3, example_input=torch.randn(2, 3, 16, 16)).eval()
    exp = net.explain(torch.randn(2, 3, 16, 16), maps=True)
    site = net.sites[0].name
    m = exp.spatial_map(site, target=1)
    assert m.shape == (2, 20, 17)  # units x tokens (16 patches and the class token)
    torch.testing.assert_close(m.sum(-1), exp.for_class(1)[:, exp.site_slices[site]], rtol=0, atol=1e-6)


def test_unit_axis_override_and_clear_error():
    class Odd(nn.Module):
        """The activation reads a tensor whose dims match neither the producer's width."""

        def __init__(self):
            super().__init__()
            self.fc, self.act = nn.Linear(4, 12), nn.ReLU()

        def forward(self, x):
            return self.act(self.fc(x).reshape(len(x), 3, 2, 2))

    with pytest.raises(ValueError, match=r"unit_axis: cannot tell where the units of site 'act' lie.*unit_axis=\{'act'"):
        nv.wrap(Odd(), 2, example_input=torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"unit_axis: \['ac'\] name no site; the sites are \['act'\]"):
        nv.wrap(Odd(), 2, example_input=torch.randn(2, 4), unit_axis={"ac": 1, "act": 1})
    net = nv.wrap(Odd(), 2, example_input=torch.randn(2, 4), unit_axis={"act": 1})
    assert [(s.channels, s.axis) for s in net.sites] == [(3, 1)]


def test_registered_activation_becomes_a_site_and_unknown_ones_are_reported():
    class Squared(nn.Module):
        def forward(self, x):
            return x.relu() ** 2

    class MyAct(nn.Module):
        def forward(self, x):
            return x.clamp(min=0)

    backbone = nn.Sequential(nn.Conv2d(1, 3, 3), Squared(), nn.Conv2d(3, 2, 1), MyAct(), nn.Conv2d(2, 2, 1), nn.ReLU())
    with pytest.warns(UserWarning, match=r"left out.*'MyAct'"):
        net = nv.wrap(backbone, 2)
    assert net.left_out == [("3", "MyAct")]
    nv.register_activation(MyAct, breakpoints=(0.0,))
    net = nv.wrap(backbone, 2, example_input=torch.randn(2, 1, 6, 6))
    assert [s.name for s in net.sites] == ["3", "5"]


def test_lazy_wrap_checkpoint_loads_into_a_fresh_wrap():
    torch.manual_seed(0)
    net = nv.wrap(ViT(), 4)
    x = torch.randn(3, 3, 16, 16)
    net.train()(x)
    net.eval()
    fresh = nv.wrap(ViT(), 4)
    fresh.load_state_dict(net.state_dict())
    torch.testing.assert_close(fresh.eval()(x), net(x))
    assert fresh.units == net.units


def test_explain_leaves_each_submodule_in_its_mode():
    backbone = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    net = nv.wrap(backbone, 2, example_input=torch.randn(2, 1, 5, 5))
    net.train()
    backbone.eval()  # a frozen backbone inside a training head
    before = backbone[1].running_mean.clone()
    net.explain(torch.randn(4, 1, 5, 5) * 3 + 2)
    assert net.training and not backbone.training and not backbone[1].training
    net(torch.randn(4, 1, 5, 5) * 3 + 2)
    assert torch.equal(backbone[1].running_mean, before)  # its statistics never moved


def test_explain_allocates_no_dense_contribution_tensor():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Largest(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    Largest.largest = max(Largest.largest, t.numel())
            return out

    x = torch.randn(8, 3, 16, 16)
    net = nv.wrap(ViT(), 200, example_input=x).eval()
    b, c, u = 8, 200, net.num_units
    with Largest():
        exp = net.explain(x)
        exp.for_class().sum()
        exp.by_site()
    assert Largest.largest < b * c * u / 4  # the [B, C, U] tensor is never formed...
    assert exp.contributions.shape == (b, c, u)  # ...until asked for


class BatchNormAct2d(nn.BatchNorm2d):
    """timm's norm + activation in one module: the activation runs inside the norm's own forward."""

    def __init__(self, c):
        super().__init__(c)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(super().forward(x))


class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.norm, self.conv = BatchNormAct2d(cin), nn.Conv2d(cin, growth, 3, padding=1)

    def forward(self, x):
        return torch.cat([x, self.conv(self.norm(x))], 1)  # the norm reads a concatenation no layer produced


def test_an_activation_inside_a_norms_forward_takes_the_norms_width():
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3), DenseLayer(4, 3), DenseLayer(7, 3))
    net = nv.wrap(backbone, 2, example_input=torch.randn(2, 3, 8, 8))
    assert [(s.channels, s.axis) for s in net.sites] == [(4, 1), (7, 1)]


class PositionBiasMLP(nn.Module):
    """Swin-V2's continuous position bias: an MLP on a coordinate table, with no sample axis."""

    def __init__(self, dim=6):
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, dim, 3, padding=1), nn.ReLU()
        self.cpb = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
        self.register_buffer("table", torch.randn(1, 5, 2))

    def forward(self, x):
        return self.act(self.conv(x)) + self.cpb(self.table).mean()


class WindowConv(nn.Module):
    """Windows folded into the batch, channels first ([B * 4, C, h, w]), as in EfficientViT-M."""

    def __init__(self, c=5):
        super().__init__()
        self.conv, self.act = nn.Conv2d(3, c, 1), nn.Hardswish()

    def forward(self, x):
        b, c, h, w = x.shape
        win = x.reshape(b, c, 2, h // 2, 2, w // 2).permute(0, 2, 4, 1, 3, 5).reshape(b * 4, c, h // 2, w // 2)
        return self.act(self.conv(win))


def test_calls_without_a_sample_axis_are_not_sites_and_folded_windows_are():
    net = nv.wrap(PositionBiasMLP(), 2, example_input=torch.randn(2, 3, 6, 6))
    assert [s.name for s in net.sites] == ["act"] and list(net.not_sites) == [("cpb.1", 0)]
    net.eval()(torch.randn(1, 3, 6, 6))  # a batch of one later: the table call is still skipped
    win = nv.wrap(WindowConv(), 3, example_input=torch.randn(2, 3, 8, 8)).eval()
    assert [(s.channels, s.axis) for s in win.sites] == [(5, 1)]
    x = torch.randn(3, 3, 8, 8)
    exp = win.explain(x, maps=True)
    torch.testing.assert_close(exp.for_class(1).sum(-1) + exp.bias[1], win(x)[:, 1], rtol=0, atol=1e-5)
    assert exp.spatial_map("act", 1).shape == (3, 5, 64)
