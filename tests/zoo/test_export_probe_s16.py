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
