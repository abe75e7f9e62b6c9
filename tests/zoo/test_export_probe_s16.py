"""The export probe's MiniRocket faults (s16): a state dict of a MiniRocket of other dilations (another
``max_dilations_per_kernel`` at the same series length and features) loaded without a word, through ``load_state_dict``
and through ``save_pretrained``; and ``torch.export`` of a NeuroView-MiniRocket always failed with torch's
data-dependent guard error (its finite and fitted checks read tensors as Python bools)."""

import warnings

import pytest
import torch

import neuroview as nv
from neuroview.zoo.architectures.rocket import MiniRocket
from neuroview.zoo.pretrained import ArchitectureError, load_pretrained, save_pretrained

KW = dict(num_classes=2, in_channels=1, max_len=150, num_features=504, seed=0)


def _fitted(x: torch.Tensor, **kw) -> nv.NeuroViewCNN:
    net = nv.create_model("nv_minirocket", **{**KW, **kw})
    net.backbone.fit(x)
    with torch.no_grad():
        net(x[:2])  # sites found
    return net.eval()


def _series(n: int = 12, t: int = 150) -> torch.Tensor:
    return torch.randn(n, 1, t, generator=torch.Generator().manual_seed(0)).cumsum(-1)


def test_the_two_builds_differ_only_in_dilations_no_shape_tells():
    # the premise, by hand from fit_dilations' formula: 504 features = 6 per kernel; at most 5 dilations spread
    # 2**linspace(0, log2(149 / 8), 5) = 1, 2.07, 4.3, 8.9, 18.6 -> [1, 2, 4, 8, 18]; the default's 6 -> 1, 1.79, 3.2,
    # 5.7, 10.3, 18.6 -> [1, 3, 5, 10, 18] with 1 twice (2 biases there)
    a, b = MiniRocket(input_length=150, num_features=504, max_dilations_per_kernel=5), MiniRocket(input_length=150, num_features=504)
    assert (a.dilations, a.per_dilation) == ([1, 2, 4, 8, 18], [2, 1, 1, 1, 1])
    assert (b.dilations, b.per_dilation) == ([1, 3, 5, 10, 18], [2, 1, 1, 1, 1])
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}


@pytest.mark.parametrize("lazy", [True, False])
def test_a_state_dict_of_other_dilations_is_refused_by_name(lazy):
    x = _series()
    sd = _fitted(x, max_dilations_per_kernel=5).state_dict()
    other = nv.create_model("nv_minirocket", **KW)  # the default max_dilations_per_kernel=32
    if not lazy:
        other.backbone.fitted.fill_(True)
        with torch.no_grad():
            other(x[:2])
    before = other.backbone.biases.clone()
    with pytest.raises(RuntimeError, match=r"dilations.*\[1, 2, 4, 8, 18\].*\[1, 3, 5, 10, 18\].*max_dilations_per_kernel"):
        other.load_state_dict(sd)
    assert torch.equal(other.backbone.biases, before)  # nothing copied


def test_other_biases_per_dilation_at_the_same_dilations_are_refused_at_load():
    # 30 steps, 840 features (10 per kernel): max 4 dilations -> [1, 2, 3] x [6, 2, 2]; the default -> [5, 3, 2]
    a = MiniRocket(input_length=30, num_features=840, max_dilations_per_kernel=4)
    b = MiniRocket(input_length=30, num_features=840)
    assert (a.dilations, a.per_dilation, b.dilations, b.per_dilation) == ([1, 2, 3], [6, 2, 2], [1, 2, 3], [5, 3, 2])
    with pytest.raises(RuntimeError, match=r"biases per dilation \[6, 2, 2\].*\[5, 3, 2\].*num_features"):
        b.load_state_dict(a.state_dict())


def test_the_same_build_and_old_state_dicts_still_load():
    x = _series()
    net = _fitted(x, max_dilations_per_kernel=5)
    sd = net.state_dict()
    assert sd._metadata["backbone"]["per_dilation"] == [2, 1, 1, 1, 1]
    same = nv.create_model("nv_minirocket", **KW, max_dilations_per_kernel=5).eval()
    same.load_state_dict(sd)
    assert torch.equal(same(x), net(x))
    for old in (dict(sd), sd.copy()):  # a plain dict; a state dict saved before the record (dilations only) was kept
        if hasattr(old, "_metadata"):
            old._metadata = {k: dict(v) for k, v in sd._metadata.items()}
            old._metadata["backbone"].pop("per_dilation")
        fresh = nv.create_model("nv_minirocket", **KW, max_dilations_per_kernel=5).eval()
        fresh.load_state_dict(old)
        assert torch.equal(fresh(x), net(x))


def test_save_pretrained_refuses_arch_kwargs_that_rebuild_other_dilations(tmp_path):
    x = _series()
    net = _fitted(x, max_dilations_per_kernel=5)
    with pytest.raises(ArchitectureError, match=r"dilations: model \[1, 2, 4, 8, 18\], arch_kwargs build \[1, 3, 5, 10, 18\]"):
        save_pretrained(net, "nv_minirocket.t", architecture="nv_minirocket", arch_kwargs=KW, dataset={}, recipe=None,
                        seed=0, metrics={}, root=tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written
    save_pretrained(net, "nv_minirocket.t", architecture="nv_minirocket", arch_kwargs={**KW, "max_dilations_per_kernel": 5},
                    dataset={}, recipe=None, seed=0, metrics={}, root=tmp_path)
    loaded = load_pretrained("nv_minirocket.t", root=tmp_path)
    assert loaded.backbone.dilations == [1, 2, 4, 8, 18]
    assert torch.equal(loaded(x), net(x))


@pytest.mark.parametrize("strict", [False, True])
def test_torch_export_takes_a_neuroview_minirocket(strict):
    x = _series(8, 30)
    net = _fitted(x, max_len=30, num_features=168)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(net, (x[:4],), strict=strict)
    other = _series(20, 30)[12:16] * 0.5
    assert torch.allclose(ep.module()(other), net(other), atol=1e-6, rtol=0)
    bad = other.clone()
    bad[1, 0, 7] = float("nan")
    with pytest.raises(RuntimeError, match="NaN or Inf"):
        ep.module()(bad)


def test_an_exported_unfitted_minirocket_says_so_when_run():
    x = _series(8, 30)
    net = nv.create_model("nv_minirocket", **{**KW, "max_len": 30, "num_features": 168}).eval()
    net.backbone.fitted.fill_(True)
    with torch.no_grad():
        net(x[:2])
    net.backbone.fitted.fill_(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(net, (x[:4],))
    with pytest.raises(RuntimeError, match="biases are not fitted"):
        ep.module()(x[:4])


# ----------------------------------------------------------------------------------------------- review of 92a5f71
def _fcn_backbone(stride: int = 1) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1, stride=stride), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


def s16_fcn(*, num_classes: int = 3) -> nv.NeuroViewCNN:
    """A user's builder that finds its sites on a 32 x 32 probe (input_shape=), as the review's."""
    return nv.NeuroViewCNN(_fcn_backbone(), num_classes=num_classes, input_shape=(3, 32, 32), normalize=False)


def test_save_pretrained_takes_a_fully_convolutional_network_whose_sites_were_found_at_another_size(tmp_path):
    # the review's case: global pooling computes the same function at any size; the model's sites were found on
    # 64 x 64 data, its builder's on a 32 x 32 probe. The recorded input_shape is no setting: no argument sets it
    from neuroview.zoo import registry

    net = nv.NeuroViewCNN(_fcn_backbone(), num_classes=3, normalize=False).eval()
    x = torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        net(x)
        net.classifier.weight.copy_(torch.arange(12.0).view(3, 4) - 5), net.classifier.bias.copy_(torch.tensor([1.0, 0.0, -1.0]))
    assert net.input_shape == (3, 64, 64) and s16_fcn().input_shape == (3, 32, 32)
    nv.register_model(s16_fcn)
    try:
        save_pretrained(net, "s16_fcn.t", architecture="s16_fcn", arch_kwargs={"num_classes": 3}, dataset={}, recipe=None,
                        seed=0, metrics={}, root=tmp_path)
        back = load_pretrained("s16_fcn.t", root=tmp_path)
        # by hand: the hard code of each channel is the share of positions where its convolution is > 0
        conv = net.backbone[0]
        codes = (torch.nn.functional.conv2d(x, conv.weight, conv.bias, padding=1) > 0).float().mean((2, 3))
        with torch.no_grad():
            assert torch.allclose(back(x), codes @ net.classifier.weight.T + net.classifier.bias, atol=1e-5)
        # a setting that decides the function (a convolution's stride, the same tensors) is still compared
        strided = nv.NeuroViewCNN(_fcn_backbone(stride=2), num_classes=3, normalize=False).eval()
        with torch.no_grad():
            strided(x)
        with pytest.raises(ArchitectureError, match=r"backbone\.0\.stride: model \(2, 2\), arch_kwargs build \(1, 1\)"):
            save_pretrained(strided, "s16_fcn.u", architecture="s16_fcn", arch_kwargs={"num_classes": 3}, dataset={},
                            recipe=None, seed=0, metrics={}, root=tmp_path)
    finally:
        registry._MODELS.pop("s16_fcn", None)


def _trained_head(net: nv.NeuroViewCNN) -> nv.NeuroViewCNN:
    with torch.no_grad():
        for p in (net.classifier.weight, net.backbone.fc.weight):
            p.add_(1.0)
    return net


def _unchanged_after_refusal(model: torch.nn.Module, sd, match: str, strict: bool = True) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match=match):
        model.load_state_dict(sd, strict=strict)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed == [] and model.state_dict().keys() == before.keys()


@pytest.mark.parametrize("strict", [True, False])
def test_a_refused_minirocket_load_copies_nothing_top_level_alone_or_nested(strict):
    x = _series()
    sd = _trained_head(_fitted(x, max_dilations_per_kernel=5)).state_dict()
    dilations = r"backbone\.dilations: .*\[1, 2, 4, 8, 18\]"
    _unchanged_after_refusal(_fitted(x), sd, dilations, strict)  # the same sites: the MiniRocket refuses it
    _unchanged_after_refusal(nv.create_model("nv_minirocket", **KW), sd, dilations, strict)  # lazy: head not built
    src = MiniRocket(input_length=150, num_features=504, max_dilations_per_kernel=5).fit(x)
    dst = MiniRocket(input_length=150, num_features=504).fit(x)
    _unchanged_after_refusal(dst, src.state_dict(), r"^Error.*\n\tdilations: ", strict)  # alone: its fc not copied
    outer = torch.nn.ModuleDict({"net": _fitted(x, max_dilations_per_kernel=5), "after": torch.nn.Linear(2, 2)})
    inner = torch.nn.ModuleDict({"net": _fitted(x), "after": torch.nn.Linear(2, 2)})
    _unchanged_after_refusal(inner, outer.state_dict(), r"net\.backbone\.dilations: ", strict)


def test_nested_other_biases_per_dilation_get_the_minirocket_s_advice_not_the_sites_one():
    # 30 steps, 840 features: max 4 -> biases per dilation [6, 2, 2], the default [5, 3, 2]: the sites' widths differ
    x = _series(12, 30)
    kw = dict(max_len=30, num_features=840)
    outer = torch.nn.ModuleDict({"net": _fitted(x, **kw, max_dilations_per_kernel=4)})
    inner = torch.nn.ModuleDict({"net": _fitted(x, **kw)})
    with pytest.raises(RuntimeError, match=r"biases per dilation \[6, 2, 2\].*max_dilations_per_kernel=4") as e:
        inner.load_state_dict(outer.state_dict())
    assert "layers=" not in str(e.value)


def test_the_advice_names_what_the_record_keeps():
    x = _series()
    sd = _fitted(x, max_dilations_per_kernel=5).state_dict()
    assert {k: sd._metadata["backbone"][k] for k in ("num_features", "max_dilations_per_kernel")} == \
        {"num_features": 504, "max_dilations_per_kernel": 5}
    with pytest.raises(RuntimeError, match=r"build it with num_features=504, max_dilations_per_kernel=5"):
        _fitted(x).load_state_dict(sd)
    # records of 92a5f71 (no arguments) and of the commit before (dilations only): no "None", and the advice is
    # derived from what they record: max_dilations_per_kernel=5 gives [1, 2, 4, 8, 18] at 150 steps and 504 features
    # (the first test, by hand; 1 to 4 give fewer dilations)
    for drop, shown in ((("num_features", "max_dilations_per_kernel"), "x biases per dilation [2, 1, 1, 1, 1], this"),
                        (("per_dilation", "num_features", "max_dilations_per_kernel"), "(biases per dilation not recorded)")):
        old = sd.copy()
        old._metadata = {k: dict(v) for k, v in sd._metadata.items()}
        for k in drop:
            old._metadata["backbone"].pop(k)
        with pytest.raises(RuntimeError) as e:
            _fitted(x).load_state_dict(old)
        msg = str(e.value)
        assert "None" not in msg and f"dilations [1, 2, 4, 8, 18] {shown}" in msg
        assert "build it with num_features=504, max_dilations_per_kernel=5: at 150 steps" in msg
