"""NeuroView-CNN: sites, codes, exact explanations, and clear errors."""

import copy
import io
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.zoo.architectures.cnn import ResNet

QUANTIZERS = ["hard", "soft", "none"]


def _hooks(module: nn.Module) -> int:
    """Hooks on ``module`` other than the site hooks a NeuroView network keeps while it wraps it."""
    from neuroview.core.hooks import Hook as SiteHook

    return sum(not isinstance(h, SiteHook) for m in module.modules() for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values()))


def _all_hooks(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def _warm_up(net: nv.NeuroViewCNN, x: torch.Tensor, steps: int = 3) -> None:
    """A few SGD steps in train mode so the running statistics and weights are not trivial."""
    if net.sites is None:
        net.discover(x)  # sites and classifier come from the first batch: before the optimizer is built
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(x), torch.arange(len(x)) % net.num_classes).backward()
        opt.step()
    net.eval()


# ------------------------------------------------------------------ hand-set weights
def _identity_mlp(activation: nn.Module) -> nn.Sequential:
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(2))
        lin.bias.zero_()
    return nn.Sequential(lin, activation)


def _set_head(net: nv.NeuroViewCNN, w: list, b: list) -> None:
    with torch.no_grad():
        net.classifier.weight.copy_(torch.tensor(w))
        net.classifier.bias.copy_(torch.tensor(b))


@pytest.mark.parametrize(
    "quantizer, codes",
    [
        ("hard", [1.0, 0.0]),
        ("soft", [torch.sigmoid(torch.tensor(1.0 / 0.5)).item(), torch.sigmoid(torch.tensor(-2.0 / 0.5)).item()]),
        ("none", [1.0, 0.0]),
    ],
)
def test_closed_form_mlp(quantizer, codes):
    net = nv.NeuroViewCNN(_identity_mlp(nn.ReLU()), 3, quantizer=quantizer, tau=0.5, normalize=False,
                          example_input=torch.zeros(1, 2)).eval()
    w = [[1.0, 2.0], [-1.0, 0.5], [0.0, 3.0]]
    _set_head(net, w, [0.1, 0.2, 0.3])
    exp = net.explain(torch.tensor([[1.0, -2.0]]))
    want = torch.tensor(w) * torch.tensor(codes)  # contributions[c, u] = W[c, u] * code_u
    torch.testing.assert_close(exp.codes[0], torch.tensor(codes))
    torch.testing.assert_close(exp.contributions[0], want)
    torch.testing.assert_close(exp.logits[0], want.sum(1) + torch.tensor([0.1, 0.2, 0.3]))
    assert exp.units == [("1", 0), ("1", 1)]


def test_closed_form_conv_maps_and_positions():
    conv = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x = torch.tensor([[[[1.0, -1.0], [2.0, -3.0]]]])
    for quantizer, code in [("hard", 0.5), ("none", 0.75)]:
        net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, quantizer=quantizer, normalize=False, input_shape=(1, 2, 2))
        _set_head(net, [[2.0], [-4.0]], [0.0, 1.0])
        exp = net.explain(x, maps=True)
        torch.testing.assert_close(exp.codes, torch.tensor([[code]]))
        torch.testing.assert_close(exp.logits, torch.tensor([[2 * code, 1 - 4 * code]]))
        m = exp.spatial_map("1", target=1)  # [B, C_s, H, W]: code map * W / #positions
        on = torch.tensor([[1.0, 0.0], [1.0, 0.0]]) if quantizer == "hard" else torch.tensor([[1.0, 0.0], [2.0, 0.0]])
        torch.testing.assert_close(m[0, 0], on * -4.0 / 4)
        torch.testing.assert_close(m.flatten(2).sum(-1), exp.contributions[:, 1])


def test_region_codes_of_multi_breakpoint_activations():
    # ReLU6 has regions (-inf, 0], (0, 6], (6, inf): codes 0, 1, 2.
    net = nv.NeuroViewCNN(_identity_mlp(nn.ReLU6()), 2, quantizer="hard", normalize=False)
    exp = net.explain(torch.tensor([[-1.0, 3.0], [7.0, 0.5]]))
    torch.testing.assert_close(exp.codes, torch.tensor([[0.0, 1.0], [2.0, 1.0]]))


def test_codes_come_from_the_pre_activation_even_with_inplace_relu():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 4, 3, padding=1)
    x = torch.randn(3, 2, 5, 5)
    z = conv(x).detach()
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU(inplace=True)), 2, quantizer="soft", tau=0.3, normalize=False)
    torch.testing.assert_close(net.codes(x), torch.sigmoid(z / 0.3).mean((2, 3)))
    hard = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU(inplace=True)), 2, quantizer="hard", normalize=False)
    torch.testing.assert_close(hard.codes(x), (z > 0).float().mean((2, 3)))


# ------------------------------------------------------------------ random networks
class SharedAct(nn.Module):
    """One activation module object called at three places."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 5, 3), nn.Conv2d(5, 6, 3)
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(self.c3(self.act(self.c2(self.act(self.c1(x)))))).mean((2, 3))


def _backbones():
    return {
        "shared_act": (SharedAct(), (3, 9, 9)),
        "resnet": (ResNet(depths=(1, 2), widths=(4, 8), in_channels=3), (3, 8, 8)),
        "conv1d": (nn.Sequential(nn.Conv1d(2, 6, 5), nn.BatchNorm1d(6), nn.SiLU(), nn.Conv1d(6, 4, 3), nn.LeakyReLU(0.1)), (2, 20)),
        "conv3d": (nn.Sequential(nn.Conv3d(1, 3, 3), nn.ReLU(), nn.Conv3d(3, 2, 3), nn.Hardswish()), (1, 6, 6, 6)),
        "mlp": (nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)), (7,)),
        "nested": (nn.Sequential(nn.Sequential(nn.Conv2d(1, 3, 3), nn.Sequential(nn.ReLU6())), nn.Conv2d(3, 2, 1), nn.ELU()), (1, 6, 6)),
    }


@pytest.mark.parametrize("quantizer", QUANTIZERS)
@pytest.mark.parametrize("arch", list(_backbones()))
def test_explanation_is_exact_on_random_networks(arch, quantizer):
    torch.manual_seed(1)
    backbone, shape = _backbones()[arch]
    net = nv.NeuroViewCNN(backbone, 4, quantizer=quantizer)
    x = torch.randn(6, *shape)
    _warm_up(net, x)
    exp = net.explain(x)
    assert exp.contributions.shape == (6, 4, net.num_units)
    assert len(exp.units) == net.num_units == sum(s.channels for s in net.sites)
    torch.testing.assert_close(exp.logits, net(x), rtol=0, atol=1e-5)
    torch.testing.assert_close(exp.contributions.sum(-1) + exp.bias, exp.logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(exp.by_site().sum(-1) + exp.bias, exp.logits, rtol=0, atol=1e-5)


def test_sites_one_per_call_in_execution_order():
    net = nv.NeuroViewCNN(SharedAct(), 2, example_input=torch.randn(2, 3, 9, 9))
    assert [(s.name, s.channels) for s in net.sites] == [("act", 4), ("act:1", 5), ("act:2", 6)]
    rn = nv.NeuroViewCNN(ResNet(depths=(1, 1), widths=(4, 8)), 2, example_input=torch.randn(2, 3, 8, 8))
    assert [s.name for s in rn.sites] == [
        "relu", "layers.0.0.relu", "layers.0.0.relu:1", "layers.1.0.relu", "layers.1.0.relu:1"]


def test_spatial_maps_sum_to_unit_contributions():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(ResNet(depths=(1, 1), widths=(4, 8)), 3)
    x = torch.randn(4, 3, 8, 8)
    _warm_up(net, x)
    exp = net.explain(x, maps=True)
    for site, sl in exp.site_slices.items():
        m = exp.spatial_map(site, target=2)
        assert m.shape[:2] == (4, sl.stop - sl.start)
        torch.testing.assert_close(m.flatten(2).sum(-1), exp.contributions[:, 2, sl], rtol=0, atol=1e-6)


def test_explicit_layers_use_module_outputs():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 3), nn.ReLU())
    net = nv.NeuroViewCNN(backbone, 2, layers=["1"], quantizer="hard", normalize=False, input_shape=(1, 6, 6))
    assert [(s.name, s.channels) for s in net.sites] == [("1", 3)]
    x = torch.randn(2, 1, 6, 6)
    backbone.eval()
    torch.testing.assert_close(net.codes(x), (backbone[1](backbone[0](x)) > 0).float().mean((2, 3)))


def test_backbone_head_does_not_take_part():
    class Head(nn.Module):
        def forward(self, x):
            raise AssertionError("the backbone's head ran")

    backbone = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), Head())
    with pytest.raises(ValueError, match="x: the backbone's forward pass on this batch failed.*the backbone's head ran"):
        # finding the sites runs the whole backbone once
        nv.NeuroViewCNN(backbone, 2, input_shape=(1, 5, 5))
    backbone[3] = nn.Identity()
    net = nv.NeuroViewCNN(backbone, 2, input_shape=(1, 5, 5))
    backbone[3] = Head()
    net(torch.randn(3, 1, 5, 5))  # every forward pass stops after the last site
    net.explain(torch.randn(3, 1, 5, 5))


def test_hard_codes_are_bits_and_gradients_flow():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2, quantizer="hard", normalize=False)
    x = torch.randn(5, 1, 10)
    codes = net.codes(x)
    assert torch.equal(codes * 8, (codes * 8).round())  # means of 0/1 bits over 8 positions
    net(x).sum().backward()
    assert net.backbone[0].weight.grad.abs().sum() > 0  # the sigmoid surrogate reaches the conv


def test_eval_decision_is_the_folded_normalization():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3)
    x = torch.randn(8, 1, 6, 6) * 3 + 1
    _warm_up(net, x)
    assert net.norm.running_mean.abs().sum() > 0
    codes = net.codes(x)
    torch.testing.assert_close(net(x), net.classifier(net.norm(codes)), rtol=0, atol=1e-5)
    w, b = net.effective_classifier()
    torch.testing.assert_close(net.unit_importance(), w)
    assert net.site_importance().shape == (3, 1)
    assert len(net.top_units(2)) == 3 and len(net.top_units(2)[0]) == 2


# ------------------------------------------------------------------ module behaviour
def test_hooks_never_leak_and_backbone_is_untouched():
    backbone = ResNet(depths=(1, 1), widths=(4, 8))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    modes = [m.training for m in backbone.modules()]
    a = nv.NeuroViewCNN(backbone, 2)
    b = nv.wrap(backbone, 3, quantizer="hard")  # wrapping twice is fine
    a.eval()(torch.randn(2, 3, 8, 8))
    b.explain(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError):
        a(torch.randn(2, 5, 8, 8))
    assert _hooks(backbone) == 0
    assert a.unwrap() is backbone and b.unwrap() is backbone
    assert _all_hooks(backbone) == 0  # unwrapped, the backbone is as it was given
    torch.testing.assert_close(a.eval()(torch.ones(2, 3, 8, 8)), a(torch.ones(2, 3, 8, 8)))  # and a still works
    b.train()
    assert [m.training for m in backbone.modules()] == modes
    for k, v in backbone.state_dict().items():
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("quantizer", QUANTIZERS)
def test_state_dict_deepcopy_pickle_dtype(quantizer):
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(ResNet(depths=(1, 1), widths=(4, 8)), 3, quantizer=quantizer)
    x = torch.randn(4, 3, 8, 8)
    _warm_up(net, x)
    want = net(x)
    fresh = nv.NeuroViewCNN(ResNet(depths=(1, 1), widths=(4, 8)), 3, quantizer=quantizer)
    fresh.load_state_dict(net.state_dict())
    torch.testing.assert_close(fresh.eval()(x), want)
    torch.testing.assert_close(copy.deepcopy(net)(x), want)
    torch.testing.assert_close(pickle.loads(pickle.dumps(net))(x), want)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    torch.testing.assert_close(fresh(x), want)
    net64 = copy.deepcopy(net).double()
    out64 = net64(x.double())
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), want, rtol=1e-4, atol=1e-4)
    exp = net64.explain(x.double())
    torch.testing.assert_close(exp.contributions.sum(-1) + exp.bias, exp.logits, rtol=0, atol=1e-10)


def test_explain_restores_training_mode():
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), 2).train()
    net.explain(torch.randn(2, 1, 5, 5))
    assert net.training and net.backbone.training


# ------------------------------------------------------------------ clear errors
def _small():
    return nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), 5, example_input=torch.randn(2, 3, 8, 8))


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.randn(3, 8, 8), r"x: expected a tensor of rank 4"),
        (torch.randn(2, 1, 3, 8, 8), r"x: expected a tensor of rank 4"),
        (torch.randn(2, 1, 8, 8), r"x: expected 3 channels at dim 1, got shape \(2, 1, 8, 8\)"),
        (torch.randn(0, 3, 8, 8), r"x: expected a non-empty batch"),
        (torch.full((2, 3, 8, 8), float("nan")), r"x: contains NaN or Inf"),
        (torch.tensor([[[[float("inf")]]]]).expand(1, 3, 8, 8), r"x: contains NaN or Inf"),
    ],
)
def test_bad_input_raises_clear_errors(x, match):
    net = _small()
    with pytest.raises(ValueError, match=match):
        net(x)
    with pytest.raises(ValueError, match=match):
        net.explain(x)


def test_bad_construction_raises_clear_errors():
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(ValueError, match=r"num_classes: expected an int >= 2, got 1"):
        nv.NeuroViewCNN(conv, 1)
    with pytest.raises(ValueError, match=r"quantizer: expected one of"):
        nv.NeuroViewCNN(conv, 2, quantizer="binary")
    with pytest.raises(ValueError, match=r"layers: no module named 'relu' in backbone"):
        nv.NeuroViewCNN(conv, 2, layers=["relu"])
    with pytest.raises(ValueError, match=r"layers: no module named 'features.l'.*did you mean.*'features.1'"):
        nv.NeuroViewCNN(_Named(conv), 2, layers=["features.l"])
    with pytest.raises(TypeError, match=r"backbone: expected an nn.Module"):
        nv.NeuroViewCNN("resnet", 2)


class _Named(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.features = features

    def forward(self, x):
        return self.features(x)


def test_functional_activations_give_a_helpful_error():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return F.relu(self.conv(x))

    with pytest.raises(ValueError, match=r"found no activation module.*F\.relu.*layers="):
        nv.NeuroViewCNN(Functional(), 2)
    net = nv.NeuroViewCNN(Functional(), 2, layers=["conv"])  # the suggested fix works
    net(torch.randn(2, 1, 5, 5))
    assert net.num_units == 2


def test_input_shape_errors():
    class NoConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(x)

    lazy = nv.NeuroViewCNN(NoConv(), 2)  # no shape is guessed: the sites come from the first batch
    assert lazy.sites is None
    with pytest.raises(RuntimeError, match=r"sites: not found yet.*example_input"):
        lazy.units
    lazy(torch.randn(2, 3))
    assert lazy.num_units == 3 and lazy.input_shape == (3,)
    assert nv.NeuroViewCNN(NoConv(), 2, input_shape=(3, 4)).num_units == 3
    flat = nn.Sequential(nn.Flatten(), nn.Linear(16, 4), nn.ReLU())
    with pytest.raises(ValueError, match=r"x: the backbone's forward pass on this batch failed"):
        nv.NeuroViewCNN(flat, 2, input_shape=(1, 3, 3))
    with pytest.raises(ValueError, match=r"x: the backbone's forward pass on this batch failed"):
        nv.NeuroViewCNN(flat, 2)(torch.randn(2, 1, 3, 3))


@pytest.mark.parametrize("points", [(0.0,), (0.0, 6.0), (-3.0, 3.0), (1.0,)])
@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_code_gradients_match_the_soft_closed_form(points, tau):
    from neuroview.core.quantize import _MeanCode, mean_code

    torch.manual_seed(0)
    z = (torch.randn(3, 4, 5, 6, dtype=torch.float64) * 4).requires_grad_()
    z.data[0, 0, 0, :3] = torch.tensor([0.0, points[0], -1e-30])  # exact breakpoints count as "off"
    ref = sum(torch.sigmoid((z - t) / tau) for t in points).flatten(2).mean(-1)
    soft = _MeanCode.apply(z.flatten(2), 2, points, tau, False)
    hard = _MeanCode.apply(z.flatten(2), 2, points, tau, True)
    torch.testing.assert_close(soft, ref)
    torch.testing.assert_close(hard, sum((z > t).double() for t in points).flatten(2).mean(-1))
    g = torch.randn_like(ref)
    (want,) = torch.autograd.grad(ref, z, g)
    for code in (soft, hard):  # hard's straight-through surrogate is soft's gradient
        (got,) = torch.autograd.grad(code, z, g)
        torch.testing.assert_close(got, want)
    with torch.no_grad():
        torch.testing.assert_close(mean_code(z, points, "soft", tau), ref)
        torch.testing.assert_close(mean_code(z, points, "hard", tau), hard)


def test_restore_modes_puts_back_each_module_s_own_mode_once(monkeypatch):
    from neuroview.core._utils import restore_modes

    class Keeps(torch.nn.Sequential):  # a module whose train() sets more than the modes
        def train(self, mode=True):
            self.scale = 2.0 if mode else 1.0
            return super().train(mode)

    net = torch.nn.Sequential(torch.nn.Sequential(Keeps(torch.nn.Linear(3, 3)), torch.nn.BatchNorm1d(3)),
                              torch.nn.Dropout(), torch.nn.Linear(3, 3)).train()
    net[0][1].eval()  # a BatchNorm its user froze
    was = [m.training for m in net.modules()]
    restore = restore_modes(net)
    net.eval()
    assert net[0][0].scale == 1.0
    calls, real = [], torch.nn.Module.train
    monkeypatch.setattr(torch.nn.Module, "train", lambda self, mode=True: calls.append(type(self).__name__) or real(self, mode))
    restore()
    assert [m.training for m in net.modules()] == was and not net[0][1].training
    assert net[0][0].scale == 2.0  # the module that overrides train() got its call
    assert calls == ["Keeps", "Linear"]  # its subtree alone: every other flag set once, no subtree walked again
