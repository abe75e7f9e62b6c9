"""The MiniRocket probe's faults: a centre unit's maps placed on the steps it reads (gallery heat, spatial maps),
batches with lengths refused by the ridge head, aeon's parameters checked against the network's channels,
``nv.minirocket`` under a float64 default dtype, and named errors for ``max_dilations_per_kernel`` and ``seed``."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

import neuroview as nv
from neuroview.training.ridge import fit_ridge_head

T = 40


@pytest.fixture(scope="module")
def fitted():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 1, T, generator=g)
    y = (x[:, 0, 10:20].mean(1) > 0).long()
    return nv.minirocket([(x, y)], num_features=168), x, y


def _on(x: np.ndarray, d: dict) -> np.ndarray:
    """``[T]`` 1 where the unit's convolution (zero "same" padding, by hand) exceeds its bias, NaN where its PPV
    does not read (a centre unit: outside steps 4d .. T - 4d)."""
    w = -np.ones(9)
    w[list(d["taps"])] = 2.0
    pad = 4 * d["dilation"]
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    conv = np.array([sum(w[k] * xp[t + k * d["dilation"]] for k in range(9)) for t in range(len(x))])
    on = (conv > d["bias"]).astype(float)
    if not d["whole"]:
        on[:pad], on[len(x) - pad:] = np.nan, np.nan
    return on


def test_a_centre_units_gallery_heat_lies_on_the_steps_it_reads(fitted):
    net, x, y = fitted
    bb = net.backbone
    mid = next(u for u in range(bb.num_features) if not bb.describe(u)["whole"] and bb.describe(u)["dilation"] > 1)
    whole = next(u for u in range(bb.num_features) if bb.describe(u)["whole"] and bb.describe(u)["dilation"] > 1)
    g = nv.unit_gallery(net, [(x, y)], units=[mid, whole], k=3)
    for row, u in enumerate((mid, whole)):
        d = bb.describe(u)
        for j in range(3):
            want = _on(g.x[row, j, 0].double().numpy(), d)
            heat = g.heat[row, j].double().numpy()
            assert np.array_equal(np.isnan(heat), np.isnan(want)), (u, j)  # stretched, the map covered every step
            assert np.array_equal(heat[~np.isnan(want)], want[~np.isnan(want)]), (u, j)
            assert float(np.nanmean(heat)) == pytest.approx(float(g.value[row, j]), abs=1e-6)  # the code itself
    from neuroview.core.sites import input_span

    pad = 4 * bb.describe(mid)["dilation"]
    assert input_span(net, net.units[mid][0], T) == (pad, T - 2 * pad)
    assert input_span(net, net.units[whole][0], T) is None
    ens = nv.Ensemble([net, copy.deepcopy(net)])  # an ensemble's sites ask their member's backbone
    assert input_span(ens, f"members.1.{net.units[mid][0]}", T) == (pad, T - 2 * pad)


def test_a_centre_units_thumbnail_draws_its_band_on_its_steps_only(fitted):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from neuroview.viz.gallery import unit_gallery_plot

    net, x, y = fitted
    mid = next(u for u in range(net.num_units) if not net.backbone.describe(u)["whole"])
    g = nv.unit_gallery(net, [(x, y)], units=[mid], k=2)
    bands = [im.get_array() for ax in unit_gallery_plot(g).axes for im in ax.get_images()]
    assert bands and all(np.ma.getmaskarray(b).any() for b in bands)  # NaN off the centre: nothing drawn there


def test_spatial_maps_draws_a_centre_sites_map_on_its_steps(fitted):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from neuroview.viz import plots

    net, x, _ = fitted
    exp = net.explain(x[:1], maps=True)
    spans = net.backbone.input_spans()
    fig = plots.spatial_maps(exp, x[:1], 0, k=40, net=net)
    kinds = set()
    for ax in fig.axes[1:]:
        for im in ax.get_images():
            site = ax.get_title().split(" #")[0]
            ch = int(ax.get_title().split(" #")[1].split(":")[0])
            first, steps = spans.get(site, (0, T))
            assert tuple(im.get_extent()[:2]) == (first, first + steps) and ax.get_xlim() == (0, T)
            kinds.add(site in spans)
            # one value a step it covers: the map sums to the unit's contribution
            u = net.units.index((site, ch))
            assert float(np.sum(im.get_array())) * steps / im.get_array().shape[-1] == pytest.approx(
                float(exp.for_class(exp.targets())[0, u]), rel=1e-5, abs=1e-7)
    assert kinds == {True, False}
    plain = nv.NeuroViewCNN(torch.nn.Sequential(torch.nn.Conv1d(1, 3, 5), torch.nn.ReLU()), 2, input_shape=(1, T))
    plain.eval()
    pexp = plain.explain(x[:1], maps=True)
    for ax in plots.spatial_maps(pexp, x[:1], 0, k=2, net=plain).axes[1:]:
        # other networks' maps: stretched over the whole series, as before
        assert all(tuple(im.get_extent()[:2]) == (0, T) for im in ax.get_images())


def test_fit_ridge_head_refuses_batches_with_lengths_on_minirocket(fitted):
    net, x, y = fitted
    lengths = torch.full((len(x),), T)
    lengths[::2] = T - 5  # padded series: whole lengths alone would leave no padding to read
    with pytest.raises(ValueError, match=r"train: MiniRocket reads series of one length; got batches with lengths"):
        fit_ridge_head(net, [(x, lengths, y)])
    from neuroview._batch import refuse_lengths

    assert fit_ridge_head(net, [(x, y)]).ridge.alpha in net.ridge.alphas
    # the check sparsify shares: MiniRocket (alone or in an ensemble) refuses lengths, other networks take them
    for m in (net, net.backbone, nv.Ensemble([net, copy.deepcopy(net)])):
        with pytest.raises(ValueError, match=r"val: MiniRocket reads series of one length"):
            refuse_lengths(m, lengths, "val")
        refuse_lengths(m, None, "val")
    plain = nv.NeuroViewCNN(torch.nn.Sequential(torch.nn.Conv1d(1, 3, 5), torch.nn.ReLU()), 2, input_shape=(1, T))
    refuse_lengths(plain, lengths)
    fit_ridge_head(plain, [(x, lengths, y)])  # a CNN that reads no lengths still takes them


def test_load_aeon_checks_the_channels():
    aeon = pytest.importorskip("aeon.transformations.collection.convolution_based")
    net = nv.create_model("nv_minirocket", num_classes=2, in_channels=4, max_len=50, num_features=168, seed=0)
    rs = np.random.RandomState(0)
    six = aeon.MiniRocket(n_kernels=168, random_state=1).fit(rs.randn(6, 6, 50).astype(np.float32))
    with pytest.raises(ValueError, match=r"parameters: aeon's channel subsets read channels up to 5, this network "
                                         r"has 4 \(in_channels\)"):
        net.backbone.load_aeon(six.parameters)
    three = aeon.MiniRocket(n_kernels=168, random_state=1).fit(rs.randn(6, 3, 50).astype(np.float32))
    with pytest.warns(UserWarning, match=r"parameters: aeon's channel subsets read none of channels \[3\] of this "
                                         r"network's 4 \(in_channels\)"):
        net.backbone.load_aeon(three.parameters)
    with pytest.raises(ValueError, match=r"parameters: aeon's MiniRocket was fitted on series of 3 channels, this "
                                         r"network reads 4 \(in_channels\)"):
        net.backbone.load_aeon(three)
    four = aeon.MiniRocket(n_kernels=168, random_state=1).fit(rs.randn(6, 4, 50).astype(np.float32))
    a, b = copy.deepcopy(net.backbone), copy.deepcopy(net.backbone)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a.load_aeon(four)
    b.load_aeon(four.parameters)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.biases, b.biases)


def test_minirocket_builds_under_a_float64_default_dtype():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(24) % 3
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for dt in (torch.float64, torch.float32):
            x = torch.randn(24, 2, 30, generator=g, dtype=dt)
            net = nv.minirocket([(x, y)], num_features=168)
            assert net.classifier.weight.dtype == torch.float64
            assert net(x.double()).shape == (24, 3)
    finally:
        torch.set_default_dtype(before)
    assert torch.get_default_dtype() == before


@pytest.mark.parametrize("kw, match", [
    ({"max_dilations_per_kernel": 0}, r"max_dilations_per_kernel: expected an int >= 1, got 0"),
    ({"max_dilations_per_kernel": -1}, r"max_dilations_per_kernel: expected an int >= 1, got -1"),
    ({"max_dilations_per_kernel": 2.5, "num_features": 840},
     r"max_dilations_per_kernel: expected an int >= 1, got 2\.5"),
    ({"max_dilations_per_kernel": True}, r"max_dilations_per_kernel: expected an int >= 1, got True"),
    ({"seed": -1}, r"seed: expected an int in \[0, 2\*\*32\) .*got -1"),
    ({"seed": 2 ** 32}, r"seed: expected an int in \[0, 2\*\*32\) .*got 4294967296"),
    ({"seed": 1.5}, r"seed: expected an int in \[0, 2\*\*32\) .*got 1\.5"),
])
def test_create_model_names_bad_dilation_and_seed_arguments(kw, match):
    args = dict(num_classes=2, in_channels=1, max_len=40, num_features=168) | kw
    with pytest.raises(ValueError, match=match):
        nv.create_model("nv_minirocket", **args)


def test_create_model_takes_numpy_integers_for_dilations_and_seed():
    kw = dict(num_classes=2, max_len=40, num_features=168)
    a = nv.create_model("nv_minirocket", **kw, max_dilations_per_kernel=np.int64(2), seed=np.int64(3))
    b = nv.create_model("nv_minirocket", **kw, max_dilations_per_kernel=2, seed=3)
    assert a.backbone.dilations == b.backbone.dilations and a.backbone.seed == 3


def test_sparsify_refuses_batches_with_lengths_on_minirocket(fitted):
    net, x, y = fitted
    with pytest.raises(ValueError, match=r"train: MiniRocket reads series of one length"):
        nv.sparsify(net, [(x, torch.full((len(x),), x.shape[-1] - 3), y)])
    with pytest.raises(ValueError, match=r"train: MiniRocket reads series of one length"):
        nv.mean_codes(net, [(x, torch.full((len(x),), x.shape[-1] - 3), y)])
