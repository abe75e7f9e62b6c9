"""Wrapping faults found by probing unusual user networks (session 16): a registered activation holding an
activation module inside was two sites (every unit counted twice); a pooling, crop or upsampling between the conv
and its activation made a Linear reading the output over time decide the units (positions read as units); a module
named 'relu:1' shared its site name with the second call of a reused 'relu'; a first batch of 3+ identical float
samples was refused with advice to give 'at least 2'.

Every check compares with codes computed here from the pre-activations (forward-pre hooks of the test's own on a
copy of the backbone): the hard code of a ReLU-like unit is ``1[z > 0]`` averaged over positions, its units on the
axis the test names."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv

from test_sites import PositionsFolded, TokensFolded


def _reference(backbone: nn.Module, x: torch.Tensor, modules: list[str], axes: dict | None = None) -> torch.Tensor:
    """``[B, U]``: ``1[z > 0]`` averaged over positions at every call of ``modules`` (in call order), units on dim 1
    unless ``axes`` names another axis (by module name) for that module."""
    bb, calls = copy.deepcopy(backbone).eval(), []
    named = dict(bb.named_modules())
    hooks = [named[n].register_forward_pre_hook(lambda m, a, n=n: calls.append((n, a[0].detach().clone())))
             for n in modules]
    with torch.no_grad():
        bb(x)
    for h in hooks:
        h.remove()
    codes = []
    for n, z in calls:
        z = z.movedim((axes or {}).get(n, 1), 1)
        codes.append((z > 0).float().flatten(2).mean(-1) if z.dim() > 2 else (z > 0).float())
    return torch.cat(codes, 1)


def _wrap(backbone, x, **kw):
    net = nv.wrap(backbone, 3, example_input=x, quantizer="hard", **kw).eval()
    return net


# ------------------------------------------------------------ 1. an activation holding an activation module
class GatedSwish(nn.Module):
    """x * sigmoid(x), the sigmoid a module of its own (timm's StarReLU is built the same way)."""

    def __init__(self):
        super().__init__()
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(x)


class SquaredReLU(nn.Module):
    def __init__(self, relu: nn.Module | None = None):
        super().__init__()
        self.relu = relu if relu is not None else nn.ReLU()

    def forward(self, x):
        return self.relu(x) ** 2


nv.register_activation(GatedSwish, breakpoints=(0.0,))
nv.register_activation(SquaredReLU, breakpoints=(0.0,))


@pytest.mark.parametrize("act", [GatedSwish, SquaredReLU])
def test_a_registered_activation_holding_an_activation_module_is_one_site_per_call(act):
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(3, 4, 3), act(), nn.Conv2d(4, 5, 3), act(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                       nn.Linear(5, 2))
    x = torch.randn(4, 3, 8, 8)
    net = _wrap(bb, x)
    assert [(s.name, s.channels) for s in net.sites] == [("1", 4), ("3", 5)]
    assert net.num_units == 9  # 4 + 5 conv channels, each once
    torch.testing.assert_close(net.explain(x).codes, _reference(bb, x, ["1", "3"]), rtol=0, atol=0)
    net.train()(x).sum().backward()  # a training pass reads the same two sites (the inner module has no hook)
    assert net.backbone[0].weight.grad is not None


class SharedInside(nn.Module):
    """One ReLU called at the top level and inside a registered SquaredReLU: its top-level calls stay sites."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 5, 3), nn.Conv2d(5, 6, 1)
        self.relu = nn.ReLU()
        self.sq = SquaredReLU(self.relu)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        h = self.relu(self.c1(x))
        h = self.sq(self.c2(h))  # calls self.relu inside: the same pre-activation as sq's
        return self.fc(self.relu(self.c3(h)).mean((2, 3)))


def test_a_module_shared_between_the_top_level_and_inside_an_activation_is_a_clear_error():
    """Its calls inside the activation read the activation's own pre-activation again: said, not counted twice."""
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"backbone: the activation 'relu' runs inside the activation 'sq' \(call 1 "
                                         r"of 'relu', inside 'sq'\) and is registered outside too.*give 'sq' a module "
                                         r"of its own"):
        _wrap(SharedInside(), torch.randn(4, 3, 8, 8))


def test_naming_an_activation_and_the_one_inside_it_warns_of_the_duplicate():
    torch.manual_seed(0)
    bb = nn.Sequential(nn.Conv2d(3, 4, 3), SquaredReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    with pytest.warns(UserWarning, match=r"layers: \['1.relu'\] run inside the activation '1'"):
        net = _wrap(bb, torch.randn(4, 3, 8, 8), layers=["1", "1.relu"])
    assert [s.name for s in net.sites] == ["1", "1.relu"]  # named, so kept: the user asked for both
    net.train()(torch.randn(2, 3, 8, 8)).sum().backward()


# ------------------------------------------------------------ 2. the unit axis behind pooling, crops, upsampling
class PoolThenTimeMix(nn.Module):
    """conv (8 channels) -> pool/crop/upsample -> ReLU -> a Linear mixing time (over the last dim) -> ReLU."""

    def __init__(self, hide: str, steps: int):
        super().__init__()
        self.hide, self.conv, self.act = hide, nn.Conv1d(3, 8, 3, padding=1), nn.ReLU()
        self.mix, self.act2, self.fc = nn.Linear(steps, 5), nn.ReLU(), nn.Linear(8 * 5, 2)

    def forward(self, x):
        z = self.conv(x)
        z = {"maxpool": lambda: F.max_pool1d(z, 2), "avgpool": lambda: F.avg_pool1d(z, 2),
             "crop": lambda: z[:, :, :-2].contiguous(), "upsample": lambda: F.interpolate(z, scale_factor=2),
             "pad": lambda: F.pad(z, (1, 1)), "adaptive": lambda: F.adaptive_max_pool1d(z, 6)}[self.hide]()
        return self.fc(self.act2(self.mix(self.act(z))).flatten(1))


@pytest.mark.parametrize("hide,steps,t", [("maxpool", 6, 12), ("avgpool", 6, 12), ("crop", 8, 10), ("crop", 6, 8),
                                          ("upsample", 8, 4), ("pad", 10, 8), ("adaptive", 6, 9)])
def test_the_conv_s_channels_are_the_units_behind_pooling_crops_and_upsampling(hide, steps, t):
    torch.manual_seed(0)
    bb, x = PoolThenTimeMix(hide, steps), torch.randn(4, 3, t)
    net = _wrap(bb, x)
    assert [(s.name, s.channels, s.axis) for s in net.sites] == [("act", 8, 1), ("act2", 5, -1)]
    torch.testing.assert_close(net.explain(x).codes, _reference(bb, x, ["act", "act2"], {"act2": -1}), rtol=0, atol=0)


class LeNet(nn.Module):
    """PyTorch's MNIST example, its F.relu made modules: the ReLUs read max-pooled conv maps."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 10, 5), nn.Conv2d(10, 20, 5)
        self.fc1, self.fc2 = nn.Linear(320, 50), nn.Linear(50, 10)
        self.r1, self.r2, self.r3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def forward(self, x):
        x = self.r1(F.max_pool2d(self.conv1(x), 2))
        x = self.r2(F.max_pool2d(self.conv2(x), 2))
        return self.fc2(self.r3(self.fc1(x.view(-1, 320))))


def test_lenet_wraps_without_unit_axis():
    torch.manual_seed(0)
    bb, x = LeNet(), torch.randn(4, 1, 28, 28)
    net = _wrap(bb, x)
    assert [(s.name, s.channels, s.axis) for s in net.sites] == [("r1", 10, 1), ("r2", 20, 1), ("r3", 50, 1)]
    torch.testing.assert_close(net.explain(x).codes, _reference(bb, x, ["r1", "r2", "r3"]), rtol=0, atol=0)


class RolledThenTimeMix(nn.Module):
    """conv (8 channels) -> an op the wrapper does not follow (a roll in time) -> ReLU -> a Linear over time."""

    def __init__(self):
        super().__init__()
        self.conv, self.act, self.mix = nn.Conv1d(3, 8, 3, padding=1), nn.ReLU(), nn.Linear(6, 4)

    def forward(self, x):
        return self.mix(self.act(torch.roll(self.conv(x), 1, dims=-1))).mean((1, 2))


def test_a_conv_map_hidden_by_an_op_not_followed_and_read_over_time_is_a_clear_error():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 6)
    with pytest.raises(ValueError, match=r"unit_axis: cannot tell where the units of site 'act' lie: its input has "
                                         r"shape \(2, 8, 6\), .*8 features on dim 1.*roll.*6 on dim -1.*"
                                         r"pass unit_axis=\{'act': 1 or -1\}"):
        _wrap(RolledThenTimeMix(), x)
    bb = RolledThenTimeMix()
    net = _wrap(bb, x, unit_axis={"act": 1})
    assert [(s.channels, s.axis) for s in net.sites] == [(8, 1)]
    torch.testing.assert_close(net.explain(x).codes, _reference(bb, x, ["act"]), rtol=0, atol=0)


class Tokens(nn.Module):
    """A conv stem made tokens (flatten + transpose, as ViT's patch embedding), a ReLU, then a Linear over channels:
    the layout changes, so the Linear reading the output still decides, as before."""

    def __init__(self):
        super().__init__()
        self.stem, self.act, self.fc = nn.Conv2d(3, 6, 2, stride=2), nn.ReLU(), nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(self.act(self.stem(x).flatten(2).transpose(1, 2))).mean(1)


def test_tokens_after_a_transpose_still_take_the_reader_s_axis():
    torch.manual_seed(0)
    bb, x = Tokens(), torch.randn(4, 3, 8, 8)
    net = _wrap(bb, x)
    assert [(s.channels, s.axis) for s in net.sites] == [(6, -1)]
    torch.testing.assert_close(net.explain(x).codes, _reference(bb, x, ["act"], {"act": -1}), rtol=0, atol=0)


# ------------------------------------------------------------ 3. a module named like the k-th call of another
class NameClash(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 5, 3), nn.Conv2d(5, 6, 1)
        self.acts = nn.ModuleDict({"relu": nn.ReLU(), "relu:1": nn.ReLU()})  # keys as a config might spell them
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        x = self.acts["relu"](self.c1(x))
        x = self.acts["relu"](self.c2(x))
        x = self.acts["relu:1"](self.c3(x))
        return self.fc(x.mean((2, 3)))


def test_a_module_named_like_the_second_call_of_another_gets_a_site_name_of_its_own():
    torch.manual_seed(0)
    bb, x = NameClash(), torch.randn(4, 3, 8, 8)
    with pytest.warns(UserWarning, match=r"call 1 of 'acts.relu' is site 'acts.relu::1'.*'acts.relu:1' names another"):
        net = _wrap(bb, x)
    names = [s.name for s in net.sites]
    assert names == ["acts.relu", "acts.relu::1", "acts.relu:1"] and len(set(names)) == 3
    assert [(s.module, s.channels) for s in net.sites] == [("acts.relu", 4), ("acts.relu", 5), ("acts.relu:1", 6)]
    exp = net.explain(x)
    torch.testing.assert_close(exp.codes, _reference(bb, x, ["acts.relu", "acts.relu:1"]), rtol=0, atol=0)
    with torch.no_grad():
        logits = net(x)
    torch.testing.assert_close(exp.by_site().sum(-1) + exp.bias, logits, rtol=0, atol=1e-5)  # every unit in a site
    assert len(set(exp.units)) == net.num_units == 15


# ------------------------------------------------------------ 4. a first batch of identical float samples
@pytest.mark.parametrize("copies", [3, 4, 8])
def test_a_first_batch_of_float_copies_gets_random_batch_mates(copies):
    torch.manual_seed(0)
    one = torch.randn(1, 3, 10)
    for first in (one.expand(copies, 3, 10).clone(), torch.zeros(copies, 3, 10)):
        net = nv.wrap(PositionsFolded(), 3, example_input=first).eval()
        assert net.sites[0].positions_first  # rows t * B + b, as PositionsFolded lays them
        x = torch.randn(4, 3, 10)
        torch.testing.assert_close(net(x), torch.cat([net(x[i:i + 1]) for i in range(4)]), rtol=0, atol=1e-6)


def test_copies_of_one_integer_sample_ask_for_different_samples():
    x = torch.randint(0, 20, (1, 7)).expand(4, 7).clone()
    with pytest.raises(ValueError, match=r"copies of one.*a first batch of at least 2 different samples"):
        nv.wrap(TokensFolded(), 2)(x)


def test_the_gallery_reads_each_call_of_a_module_named_with_a_colon():
    """The gallery's pre-activation hook counts a site's call from the module's own name: 'acts.relu:1' (a module, its
    first call) is call 0, 'acts.relu::1' call 1 (it parsed the last ':' of the site's name: call 1 of a module
    called once, an IndexError)."""
    from neuroview.attribution.gallery_windows import preactivation

    torch.manual_seed(0)
    bb, x = NameClash(), torch.randn(4, 3, 8, 8)
    with pytest.warns(UserWarning, match="acts.relu::1"):
        net = _wrap(bb, x)
    want = {"acts.relu": bb.c1(x), "acts.relu::1": bb.c2(torch.relu(bb.c1(x))),
            "acts.relu:1": bb.c3(torch.relu(bb.c2(torch.relu(bb.c1(x)))))}
    for site in net.sites:
        torch.testing.assert_close(preactivation(net, site, x), want[site.name], rtol=0, atol=1e-6)
