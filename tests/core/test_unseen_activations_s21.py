"""Activations the wrapper did not see, said (s21: P1 finding 2, P3 findings 2 and 4).

- Activation functions written in other forms than the ones named before (``x.clip(0)``, the erf GELU,
  ``torch.maximum(x, 0)``, ``x * (x > 0)``, ``torch.where(x > 0, x, 0)``, ``F.glu``, ``F.softsign``, ``F.logsigmoid``)
  cut the layers after the last site off the decision without a word.
- An activation module whose class no table knows and whose name reads like none (BigVGAN's ``Snake``, SIREN's ``Sine``)
  after the last site did the same; it is now told by what it does (each output value a nonlinear function of its own
  input value), so ordinary layers after the last site (a pooling, a drop path, a permute, a layer scale, a norm) are
  never named.
- Those warnings, and the gradient-checkpointing one, point at the user's line, not into neuroview.

Every expectation is by hand: which calls are activations, how many run after the last site, which layers are cut.
"""

from __future__ import annotations

import inspect
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

import neuroview as nv


def _caught(fn):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        out = fn()
    return out, got


# ------------------------------------------------------------------ P1 finding 2: functional forms
class Late(nn.Module):
    """One nn.ReLU after conv1 (the only site), then conv2 and conv3, each followed by the function ``op``: by hand,
    2 activation calls run after the last site, and conv2, conv3 and fc are cut off the decision."""

    def __init__(self, op):
        super().__init__()
        self.op = op
        self.c1, self.r1 = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()
        self.c2, self.c3, self.fc = nn.Conv2d(4, 6, 3, padding=1), nn.Conv2d(6, 5, 3, padding=1), nn.Linear(5, 3)

    def forward(self, x):
        x = self.r1(self.c1(x))
        x = self.op(self.c2(x))
        x = self.op(self.c3(x))
        return self.fc(x.mean((2, 3)))


FORMS = {  # the call as written -> what the warning calls it
    "x.clip(0)": (lambda z: z.clip(0), "clip(min=0)"),
    "torch.clip(x, min=0)": (lambda z: torch.clip(z, min=0), "clip(min=0)"),
    "x.clip_(min=0)": (lambda z: z.clip_(min=0), "clip(min=0)"),
    "erf GELU": (lambda z: 0.5 * z * (1 + torch.erf(z / math.sqrt(2))), "erf() (GELU's erf form)"),
    "torch.maximum(x, 0)": (lambda z: torch.maximum(z, torch.zeros_like(z)), "maximum(x, 0)"),
    "torch.max(0, x)": (lambda z: torch.max(torch.zeros_like(z), z), "max(x, 0)"),
    "x * (x > 0)": (lambda z: z * (z > 0), "x * (x > 0)"),
    "(x > 0).float() * x": (lambda z: (z > 0).float() * z, "x * (x > 0)"),
    "torch.where(x > 0, x, 0)": (lambda z: torch.where(z > 0, z, 0.0), "where(x > 0, x, ...)"),
    "x.where(x > 0, 0.1 * x)": (lambda z: z.where(z > 0, 0.1 * z), "where(x > 0, x, ...)"),
    "F.glu": (lambda z: F.glu(torch.cat([z, z], 1), 1), "glu()"),
    "F.softsign": (F.softsign, "softsign()"),
    "F.logsigmoid": (F.logsigmoid, "log_sigmoid()"),
    "F.softshrink": (F.softshrink, "softshrink()"),
    "F.tanhshrink": (F.tanhshrink, "tanhshrink()"),
    # the mirror forms (review R9 #4): a mask by the other sign, masked_fill, a LeakyReLU as a max, torch.special
    "torch.where(x < 0, 0, x)": (lambda z: torch.where(z < 0, 0.0, z), "where(x < 0, ...)"),
    "torch.where(x <= 0, zeros, x)": (lambda z: torch.where(z <= 0, torch.zeros_like(z), z), "where(x < 0, ...)"),
    "x.masked_fill(x < 0, 0)": (lambda z: z.masked_fill(z < 0, 0), "masked_fill(x, x < 0, 0)"),
    "torch.maximum(x, 0.2 * x)": (lambda z: torch.maximum(z, 0.2 * z), "maximum(x, a * x)"),
    "torch.max(0.01 * x, x)": (lambda z: torch.max(0.01 * z, z), "max(x, a * x)"),
    "x * special.ndtr(x)": (lambda z: z * torch.special.ndtr(z), "ndtr() (GELU's normal-CDF form)"),
    "erfc GELU": (lambda z: 0.5 * z * torch.erfc(-z / math.sqrt(2)), "erfc() (GELU's erf form)"),
    "special.erf GELU": (lambda z: 0.5 * z * (1 + torch.special.erf(z / math.sqrt(2))), "erf() (GELU's erf form)"),
    "x * special.expit(x)": (lambda z: z * torch.special.expit(z), "expit() (sigmoid)"),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_activation_functions_in_other_forms_are_named_with_the_layers_they_cut(form):
    op, said = FORMS[form]
    torch.manual_seed(0)
    net, got = _caught(lambda: nv.wrap(Late(op), 3, example_input=torch.randn(4, 1, 8, 8)))
    assert [s.name for s in net.sites] == ["r1"]
    assert net.unreached == ["backbone.c2", "backbone.c3", "backbone.fc"]  # by hand: all after r1
    msgs = [str(w.message) for w in got if "activation functions outside" in str(w.message)]
    assert len(msgs) == 1, [str(w.message) for w in got]
    assert f"{said} in the backbone's own forward (2 calls)" in msgs[0]
    assert "2 of those calls come after the last site" in msgs[0]


MASKS = {  # the same shapes, no activation: a mask or floor that is not the sign of its own input
    "torch.where(mask, x, 0)": lambda z: torch.where(_mask(z), z, 0.0),
    "x * mask": lambda z: z * _mask(z),
    "x * mask.float()": lambda z: z * _mask(z).float(),
    "x.clip(min=1e-6)": lambda z: z.clip(min=1e-6),
    "torch.maximum(x, 0.5)": lambda z: torch.maximum(z, torch.full_like(z, 0.5)),
    "x * 2": lambda z: z * 2,
    "softmax(x) * ones": lambda z: F.softmax(z, 1) * torch.ones_like(z),  # a mask beside values of one sign
    "0 * x * mask": lambda z: (0 * z) * _mask(z).float() + z,  # a mask beside zeros
    "x * x": lambda z: z * z,
    # (review R9 #4) the mirror forms' look-alikes: a padding mask filled with 0, an in-place mask on values of one sign,
    # a max with another tensor, a max with a scale of x that differs by position (no one slope)
    "x.masked_fill(mask, 0)": lambda z: z.masked_fill(_mask(z), 0),
    "softmax(x) *= keep": lambda z: _imul(F.softmax(z, 1), _mask(z)),
    "torch.maximum(x, x.flip(1))": lambda z: torch.maximum(z, z.flip(1)),
    "torch.maximum(x, x * r)": lambda z: torch.maximum(z, z * torch.rand(z.shape, generator=torch.Generator().manual_seed(2))),
}


def _imul(a, m):
    a *= m
    return a


def _mask(z):
    g = torch.Generator().manual_seed(1)
    return torch.rand(z.shape, generator=g) < 0.5  # a padding-like mask, independent of z's sign


@pytest.mark.parametrize("form", list(MASKS))
def test_masks_and_floors_that_are_no_activation_are_not_named(form):
    torch.manual_seed(0)
    _, got = _caught(lambda: nv.wrap(Late(MASKS[form]), 3, example_input=torch.randn(4, 1, 8, 8)))
    assert not [w for w in got if "activation functions outside" in str(w.message)]


class ChannelNorm(nn.Module):
    """LayerNorm2d over channels written by hand; ``floor`` keeps the variance >= 0, which it is already: the floor
    clips nothing and acts as no activation (review R9 #3)."""

    def __init__(self, c, floor):
        super().__init__()
        self.floor, self.w, self.b = floor, nn.Parameter(torch.ones(c, 1, 1)), nn.Parameter(torch.zeros(c, 1, 1))

    def forward(self, x):
        var = self.floor(x.var(1, keepdim=True, unbiased=False))
        return (x - x.mean(1, keepdim=True)) / torch.sqrt(var + 1e-5) * self.w + self.b


FLOORS = {"var.clamp(min=0)": lambda v: v.clamp(min=0), "var.clip(min=0)": lambda v: v.clip(min=0),
          "torch.clip(var, 0)": lambda v: torch.clip(v, 0), "var.clamp_(min=0)": lambda v: v.clamp_(min=0),
          "torch.maximum(var, zeros)": lambda v: torch.maximum(v, torch.zeros_like(v)),
          "torch.fmax(zeros, var)": lambda v: torch.fmax(torch.zeros_like(v), v)}


@pytest.mark.parametrize("form", list(FLOORS))
def test_a_floor_at_0_of_a_tensor_of_one_sign_is_no_activation_and_is_not_named(form):
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), ChannelNorm(8, FLOORS[form]), nn.ReLU(),
                       nn.Conv2d(8, 8, 3, padding=1), ChannelNorm(8, FLOORS[form]), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                       nn.Flatten(), nn.Linear(8, 3))
    net, got = _caught(lambda: nv.wrap(bb, 3, example_input=torch.randn(4, 1, 8, 8)))
    assert [s.name for s in net.sites] == ["2", "5"]
    assert not [w for w in got if "activation functions outside" in str(w.message)], [str(w.message) for w in got]


def test_an_in_place_floor_at_0_of_values_of_both_signs_is_named():
    torch.manual_seed(0)
    _, got = _caught(lambda: nv.wrap(Late(lambda z: z.clamp_(min=0)), 3, example_input=torch.randn(4, 1, 8, 8)))
    (msg,) = [str(w.message) for w in got if "activation functions outside" in str(w.message)]
    assert "clamp(min=0) in the backbone's own forward (2 calls)" in msg


# ------------------------------------------------------------------ P3 finding 2: unknown activation modules
class Snake(nn.Module):  # BigVGAN's Snake, alpha = 1, parameter-free
    def forward(self, x):
        return x + torch.sin(x) ** 2


class Sine(nn.Module):  # SIREN's activation
    def forward(self, x):
        return torch.sin(30 * x)


class AlphaSnake(nn.Module):  # BigVGAN's Snake as it ships: a trainable alpha per channel
    def __init__(self, channels):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(channels) * 0.5)

    def forward(self, x):
        a = self.alpha[None, :, None]
        return x + torch.sin(a * x) ** 2 / a


def _series(act):
    return nn.Sequential(nn.Conv1d(1, 8, 5), nn.ReLU(), nn.Conv1d(8, 16, 5), act(), nn.Conv1d(16, 16, 5), act(),
                         nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(16, 4))


def _cut_warnings(got):
    return [str(w.message) for w in got if "nonlinear function of its own input value" in str(w.message)]


@pytest.mark.parametrize("act", [Snake, Sine, lambda: AlphaSnake(16)], ids=["Snake", "Sine", "AlphaSnake"])
def test_an_unknown_activation_module_after_the_last_site_is_named_with_the_fix(act):
    torch.manual_seed(0)
    net, got = _caught(lambda: nv.wrap(_series(act), 4, example_input=torch.randn(5, 1, 40)))
    assert [s.name for s in net.sites] == ["1"]
    # by hand: the two convs after the ReLU, the Linear head and (AlphaSnake) the activations' own alpha are cut
    assert set(net.unreached) >= {"backbone.2", "backbone.4", "backbone.8"}
    (msg,) = _cut_warnings(got)
    kind = type(act()).__name__
    assert "['3', '5']" in msg and kind in msg and f"nv.register_activation({kind}" in msg
    assert "at '2'" in msg and "backbone.2" in msg  # where the decision stops, and what it cut
    # the fix it names works: registered, the class's calls are sites, the layers are read, and nothing is said
    cls = type(act())
    sub = type(f"Registered{cls.__name__}", (cls,), {})
    nv.register_activation(sub)
    net, got = _caught(lambda: nv.wrap(_series(lambda: sub(16) if cls is AlphaSnake else sub()), 4,
                                       example_input=torch.randn(5, 1, 40)))
    # (the last site reads its pre-activation: an AlphaSnake's own alpha there is no part of the decision)
    assert [s.name for s in net.sites] == ["1", "3", "5"]
    assert net.unreached == (["backbone.5", "backbone.8"] if cls is AlphaSnake else ["backbone.8"])
    assert not _cut_warnings(got)


def test_an_unknown_activation_before_the_last_site_or_after_the_head_cuts_nothing_and_is_not_named():
    before = nn.Sequential(nn.Conv1d(1, 8, 5), Sine(), nn.Conv1d(8, 8, 5), nn.ReLU(), nn.AdaptiveAvgPool1d(1),
                           nn.Flatten(), nn.Linear(8, 4))
    after_head = nn.Sequential(nn.Conv1d(1, 8, 5), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 4),
                               Snake())
    for backbone, unreached in ((before, ["backbone.6"]), (after_head, ["backbone.4"])):
        net, got = _caught(lambda: nv.wrap(backbone, 4, example_input=torch.randn(5, 1, 20)))
        assert net.unreached == unreached and not _cut_warnings(got)


@pytest.mark.parametrize("tail", ["none", "pool"])
def test_an_unknown_activation_ending_a_headless_backbone_is_named_with_the_layer_it_cuts(tail):
    """A feature extractor (no head of its own): conv '2' runs between the last site '1' and the Snake '3', and is cut
    (review R9 #1: it was silent, the check looking for a layer after the Snake)."""
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv1d(1, 8, 5), nn.ReLU(), nn.Conv1d(8, 8, 5), Snake(),
                       *([nn.AdaptiveAvgPool1d(1), nn.Flatten()] if tail == "pool" else []))
    net, got = _caught(lambda: nv.wrap(bb, 4, example_input=torch.randn(5, 1, 20)))
    assert [s.name for s in net.sites] == ["1"] and net.unreached == ["backbone.2"]
    (msg,) = _cut_warnings(got)
    assert msg.startswith("wrap: ['3'] (Snake) runs after the last site") and "(['backbone.2'])" in msg


class FakeQuant(nn.Module):  # a fixed int8 fake-quantize leaf, as custom QAT code puts after every ReLU
    def forward(self, x):
        return torch.fake_quantize_per_tensor_affine(x, 0.05, 0, -128, 127)


@pytest.mark.parametrize("act", [Snake, FakeQuant])
def test_an_unknown_activation_right_after_the_last_site_gains_nothing_and_is_not_named(act):
    """Only pool and head follow it: registered, its calls would be sites and still no layer would join the decision
    (by hand: the head alone is unreached either way), so naming it is a false alarm (review R9 #1)."""
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv1d(1, 8, 5), nn.ReLU(), nn.Conv1d(8, 8, 5), nn.ReLU(), act(), nn.AdaptiveAvgPool1d(1),
                       nn.Flatten(), nn.Linear(8, 4))
    net, got = _caught(lambda: nv.wrap(bb, 4, example_input=torch.randn(5, 1, 20)))
    assert [s.name for s in net.sites] == ["1", "3"] and net.unreached == ["backbone.7"]
    assert not _cut_warnings(got), _cut_warnings(got)


def test_an_unknown_activation_in_a_backbone_the_user_froze_is_named():
    """A linear probe on a frozen backbone: the parameters the user froze are not in net.frozen (they stay the user's),
    but the convs between the ReLU and the Snakes are cut all the same (review R9 #2: it was silent)."""
    torch.manual_seed(0)
    bb = _series(Snake).requires_grad_(False)
    net, got = _caught(lambda: nv.wrap(bb, 4, example_input=torch.randn(5, 1, 40)))
    assert net.frozen == () and [s.name for s in net.sites] == ["1"]
    (msg,) = _cut_warnings(got)
    assert msg.startswith("wrap: ['3', '5'] (Snake) run after the last site") and "(['backbone.2', 'backbone.4'])" in msg


def test_two_unknown_classes_are_each_given_their_registration():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv1d(1, 8, 5), nn.ReLU(), nn.Conv1d(8, 8, 5), Snake(), nn.Conv1d(8, 8, 5), Sine(),
                       nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 4))
    _, got = _caught(lambda: nv.wrap(bb, 4, example_input=torch.randn(5, 1, 40)))
    (msg,) = _cut_warnings(got)
    assert "['3', '5'] (Snake, Sine)" in msg
    assert ("nv.register_activation(Snake, breakpoints=(0.0,)); nv.register_activation(Sine, breakpoints=(0.0,))"
            in msg)


class Noisy(nn.Module):  # draws from the global generator at eval (MC sampling)
    def forward(self, x):
        return x + 0.01 * torch.randn_like(x)


class CountingSnake(Snake):  # a call counter (plain attribute) and a running max (a buffer), as an observer keeps
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.register_buffer("amax", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        self.amax = torch.maximum(self.amax, x.detach().abs().max())
        return super().forward(x)


def test_the_check_leaves_the_random_state_and_the_modules_state_as_they_were(monkeypatch):
    """The same wrap with the check switched off gives the reference (review R9 #6): the caller's next draws, the
    Snake's call count and its running max are the same with it, though it ran (it named the Snake)."""
    from neuroview.core import unseen

    def run():
        torch.manual_seed(0)
        bb = nn.Sequential(nn.Conv1d(1, 8, 5), nn.ReLU(), nn.Conv1d(8, 8, 5), CountingSnake(), Noisy(),
                           nn.Conv1d(8, 8, 5), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 4))
        x = torch.randn(5, 1, 40)
        torch.manual_seed(123)
        _, got = _caught(lambda: nv.wrap(bb, 4, example_input=x))
        return torch.rand(3), bb[3].calls, float(bb[3].amax), _cut_warnings(got)

    draws, calls, amax, said = run()
    monkeypatch.setattr(unseen, "warn_unseen_modules", lambda net, x: None)
    draws0, calls0, amax0, said0 = run()
    assert said and not said0  # the check ran, and named the Snake
    assert torch.equal(draws, draws0) and calls == calls0 and amax == amax0


# look-alikes of the layers that ordinary backbones run after their last site: none of them is an activation
class Swap(nn.Module):  # a permute by another name, on maps as wide as they are high and deep: the shape stays
    def forward(self, x):
        return x.permute(0, 2, 3, 1)


class Halve(nn.Module):  # a fixed scale (linear, pointwise)
    def forward(self, x):
        return 0.5 * x + 1.0


class LayerScale(nn.Module):  # timm's LayerScale: a per-channel scale with a weight
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-1))

    def forward(self, x):
        return x * self.gamma


class Skip(nn.Module):  # a drop path at eval by another name: the identity
    def forward(self, x):
        return x


class Center(nn.Module):  # a parameter-free norm (not pointwise)
    def forward(self, x):
        return x - x.mean(1, keepdim=True)


class Bottleneck(nn.Module):
    """torchvision's Bottleneck: conv-bn-relu x2, conv-bn, a residual add, then the shared relu."""

    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv3, self.bn3 = nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c)
        self.relu, self.drop = nn.ReLU(), Skip()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.drop(self.bn3(self.conv3(out))) + x)


class ViTBlock(nn.Module):
    """A pre-norm transformer block with layer scales and an MLP: its last fc2, layer scale and the model's final norm
    and head run after the last site (the GELU) and are cut, as they should be."""

    def __init__(self, d):
        super().__init__()
        self.n1, self.attn = nn.LayerNorm(d), nn.MultiheadAttention(d, 2, batch_first=True)
        self.n2, self.fc1, self.act, self.fc2 = nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d)
        self.ls1, self.ls2, self.drop = LayerScale(d), LayerScale(d), nn.Dropout(0.1)

    def forward(self, t):
        h = self.n1(t)
        t = t + self.ls1(self.attn(h, h, h, need_weights=False)[0])
        return t + self.ls2(self.drop(self.fc2(self.act(self.fc1(self.n2(t))))))


def _resnet():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), Bottleneck(8), Bottleneck(8),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 10))


class _ViT(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.patch, self.blocks = nn.Conv2d(3, d, 2, stride=2), nn.Sequential(ViTBlock(d), ViTBlock(d))
        self.norm, self.skip, self.head = nn.LayerNorm(d), Skip(), nn.Linear(d, 10)

    def forward(self, x):
        return self.head(self.skip(self.norm(self.blocks(self.patch(x).flatten(2).transpose(1, 2)))).mean(1))


class _ConvNeXtSquare(nn.Module):
    """The last block's pointwise MLP runs channels-last; after its GELU: a Linear, a Swap back (whose shape stays, the
    map being 8 x 8 x 8), a fixed scale, a parameter-free centering and the head."""

    def __init__(self, d=8):
        super().__init__()
        self.stem, self.dw = nn.Conv2d(3, d, 2, stride=2), nn.Conv2d(d, d, 3, padding=1, groups=d)
        self.fc1, self.act, self.fc2 = nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d)
        self.swap, self.halve, self.center, self.head = Swap(), Halve(), Center(), nn.Linear(d, 10)

    def forward(self, x):
        y = self.dw(self.stem(x)).permute(0, 2, 3, 1)
        y = self.swap(self.fc2(self.act(self.fc1(y))).permute(0, 3, 1, 2))  # [B, H, W, C] again, by Swap
        return self.head(self.center(self.halve(y)).mean((1, 2)))


@pytest.mark.parametrize("make, size", [(_resnet, 8), (_ViT, 8), (_ConvNeXtSquare, 16)], ids=["resnet", "vit", "convnext"])
def test_ordinary_layers_after_the_last_site_are_not_named(make, size):
    torch.manual_seed(0)
    net, got = _caught(lambda: nv.wrap(make(), 10, example_input=torch.randn(4, 3, size, size)))
    assert net.unreached  # by hand: each has layers with weights after its last site (a head at least)
    assert not _cut_warnings(got), [str(w.message) for w in got]


# ------------------------------------------------------------------ P3 finding 4: at the user's line
class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.a, self.c2, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(F.relu(self.c2(self.a(self.c1(x)))).mean((2, 3)))


class Checkpointed(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(checkpoint(self.block, x, use_reentrant=False).mean((2, 3)))


def _left_out():  # nn.Softsign: an activation-like module no table registers (neuroview.core.targets)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Softsign(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3))


@pytest.mark.parametrize("kind, make, said", [
    ("functional", Mixed, "activation functions outside"),
    ("module", lambda: _series(Sine), "nonlinear function of its own input value"),
    ("checkpoint", Checkpointed, "torch.utils.checkpoint"),
    ("left out", _left_out, "left out (not registered)"),
], ids=["functional", "module", "checkpoint", "left-out"])
def test_warnings_of_what_the_sites_cannot_see_point_at_the_users_line(kind, make, said):
    """The file and the line of the call (review R9 #5: one frame too far out, _caught's own line, passed before)."""
    x = torch.randn(4, 1, 8, 8) if kind != "module" else torch.randn(4, 1, 40)
    for how in ("wrap", "first batch"):
        torch.manual_seed(0)
        if how == "wrap":
            line = inspect.currentframe().f_lineno + 1
            _, got = _caught(lambda: nv.wrap(make(), 3, example_input=x))
        else:
            line = inspect.currentframe().f_lineno + 1
            net, got0 = _caught(lambda: nv.wrap(make(), 3))
            if not [w for w in got0 if said in str(w.message)]:  # (said at the first batch, where the sites are found)
                line = inspect.currentframe().f_lineno + 1
                _, got = _caught(lambda: net(x))
            else:
                got = got0
        hits = [w for w in got if said in str(w.message)]
        assert len(hits) == 1, (how, [str(w.message) for w in got])
        assert (hits[0].filename, hits[0].lineno) == (__file__, line), (how, hits[0].filename, hits[0].lineno)
