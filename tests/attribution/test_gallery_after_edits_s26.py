"""The gallery, the ablation and Captum's layer scores read a site through the module the network hooked (probe S26
P3 finding 2): after an edit that moves the site names they refuse by name, as the network's pass does (not another
module's windows, another layer's channel zeroed, or a bare IndexError); a backbone compiled in place or put in
DataParallel gives what the plain one gives (not a bare KeyError)."""

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import neuroview as nv
from neuroview.attribution.ablation import ablate_units
from neuroview.attribution.baselines import captum_unit_scores, has_captum
from neuroview.attribution.gallery_windows import windows
from neuroview.core.hooks import PathChanged


def _net(bb, x):
    net = nv.wrap(bb, num_classes=3, example_input=x)
    net.train()
    net(x)  # statistics for the head's normalization
    return net.eval()


def _image(flip=False):
    torch.manual_seed(0)
    bb = nn.Sequential((_Flipped2d if flip else nn.Conv2d)(1, 4, 3), nn.ReLU(), nn.Dropout(0.1), nn.Conv2d(4, 4, 3), nn.ReLU(),
                       nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(32, 1, 10, 10)
    return bb, _net(bb, x), x


def _loader(x):
    return DataLoader(TensorDataset(x, torch.randint(0, 3, (len(x),))), batch_size=16)


@pytest.mark.parametrize("edit", ["insert", "delete"])
def test_gallery_and_ablation_after_an_edit_that_moves_site_names_refuse_by_name(edit):
    bb, net, x = _image()
    if edit == "insert":
        bb.insert(0, nn.BatchNorm2d(1).eval())  # identity at its initial statistics: the codes are unchanged
    else:
        del bb[2]  # the Dropout, identity in eval
    with pytest.raises(PathChanged, match=r"site '4' \(ReLU\) is now at '(5|3)'.*wrap the edited model again"):
        nv.unit_gallery(net, _loader(x), units=[("4", 0), ("4", 1)], k=3)
    with pytest.raises(PathChanged, match=r"site '4' \(ReLU\) is now at"):
        with torch.no_grad(), ablate_units(net, [("4", 0)]):
            net(x)
    with pytest.raises(PathChanged, match=r"site '4' \(ReLU\) is now at"):
        windows(net, net.sites[1], torch.tensor([0]), x[:1])


def _in_place(net, how):
    n = copy.deepcopy(net)
    n.backbone = torch.compile(n.backbone, backend="eager") if how == "compile" else nn.DataParallel(n.backbone)
    return n


@pytest.mark.parametrize("how", ["compile", "dataparallel"])
def test_windows_and_ablation_of_a_backbone_wrapped_in_place_are_the_plain_ones(how):
    _, net, x = _image()
    n = _in_place(net, how)
    site, chs, units = net.sites[1], torch.tensor([0, 1, 2]), [("1", 0), ("4", 1)]
    w0, p0 = windows(net, site, chs, x[:3])
    w1, p1 = windows(n, n.sites[1], chs, x[:3])
    assert torch.equal(w0, w1) and torch.equal(p0, p1)
    with torch.no_grad():
        with ablate_units(net, units):
            a0 = net(x)
        with ablate_units(n, units):
            a1 = n(x)
        assert not torch.allclose(a0, net(x))  # the ablation removes something
    assert torch.allclose(a0, a1, atol=1e-6)


@pytest.mark.skipif(not has_captum(), reason="captum is an optional extra")
def test_captum_scores_of_a_backbone_in_dataparallel_in_place_are_the_plain_ones():
    # (compiled, the hard code's surrogate gradient keeps 8 bits of state where eager keeps 4, README "Lean training
    # state": a few % apart, and each of Captum's hooks recompiles; the lookup is the same one)
    _, net, x = _image()
    y = torch.zeros(4, dtype=torch.long)
    s0 = captum_unit_scores(net, x[:4], y, "layer_grad_x_act", 4, 4)
    assert torch.allclose(s0, captum_unit_scores(_in_place(net, "dataparallel"), x[:4], y, "layer_grad_x_act", 4, 4),
                          atol=1e-6)


def _series(flip=False):
    torch.manual_seed(0)
    bb = nn.Sequential((_Flipped1d if flip else nn.Conv1d)(2, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 3), nn.ReLU(),
                       nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(32, 2, 16)
    return bb, _net(bb, x), x


class _Flipped1d(nn.Conv1d):
    """A conv whose map comes out flipped: the gallery's heat must move it back, also through a wrapper in place."""

    def forward(self, x):
        return super().forward(x).flip(-1)


class _Flipped2d(nn.Conv2d):
    def forward(self, x):
        return super().forward(x).flip(-1)


@pytest.mark.parametrize("model,how", [("series", "compile"), ("series", "dataparallel"), ("image", "compile"),
                                      ("image", "dataparallel")])
def test_the_gallery_of_a_backbone_wrapped_in_place_is_the_plain_ones(model, how):
    _, net, x = _series(flip=True) if model == "series" else _image(flip=True)  # a flipped map: the order matters
    units = [("3", 0), ("3", 1), ("1", 2)] if model == "series" else [("4", 0), ("4", 1)]
    g0 = nv.unit_gallery(net, _loader(x), units=units, k=3)
    g1 = nv.unit_gallery(_in_place(net, how), _loader(x), units=units, k=3)
    assert torch.equal(g0.index, g1.index) and torch.equal(g0.window, g1.window)
    assert torch.equal(g0.position, g1.position)
    assert not g0.heat.isnan().all() and torch.equal(g0.heat.nan_to_num(-9), g1.heat.nan_to_num(-9))
