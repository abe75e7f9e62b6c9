"""The review of the session-16 wrapping probe (unit axis through pooling and crops, registered activations,
unique site names, random batch-mates for float copies), each finding checked against codes or pre-activations
computed here from hand-built networks:

1. the gallery read call 0 of every site of an Ensemble (the suffix was parsed from the renamed site);
2. a hint left by the ``F.linear`` inside an ``nn.Linear`` outlived the Linear's own width: a Linear over time then
   ``layer_norm`` was refused, naming the wrong op;
3. ``.mT`` reached the lineage as ``__get__``, so a square conv map made channels-last was refused;
4. a Linear over time done functionally (``F.linear``, ``@``, ``einsum``) was refused;
5. a pooling returning its indices, and ``split``/``chunk`` crops, were not followed (positions read as units);
6. random batch-mates of float copies broke a model reading float-coded ids (``x.long()`` into an embedding);
7. the ``layers=[...]`` advice of a refused state dict cut a module named ``relu:1`` to ``relu``;
8. the message of a module shared with activations named the inner module's call as the outer one's, and advised
   a module of its own for one of several owners.

Codes: the hard code of a ReLU is ``1[z > 0]`` averaged over positions, its units on the axis the test names."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.core.ensemble import Ensemble

from test_wrapping_probe_s16 import NameClash, SharedInside, SquaredReLU, _reference


def _wrap(backbone, x, **kw):
    return nv.wrap(backbone, 3, example_input=x, quantizer="hard", **kw).eval()


def _sites(net):
    return [(s.name, s.channels, s.axis) for s in net.sites]


# ------------------------------------------------------------ 1. the gallery of an Ensemble's reused module
class Reused(nn.Module):
    """One ReLU called twice: site 'relu' reads c1(x) (4 channels), site 'relu:1' reads c2(relu(c1(x))) (6)."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.relu, self.fc = nn.Conv1d(3, 4, 3), nn.Conv1d(4, 6, 3), nn.ReLU(), nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(self.relu(self.c2(self.relu(self.c1(x)))).mean(-1))


def test_the_gallery_reads_each_call_of_an_ensemble_member_s_reused_module():
    from neuroview.attribution.gallery_windows import preactivation

    torch.manual_seed(0)
    x = torch.randn(4, 3, 12)
    ens = Ensemble([nv.wrap(Reused(), 2, example_input=x) for _ in range(2)]).eval()
    with torch.no_grad():
        ens(x)
    assert [s.name for s in ens.sites] == ["members.0.relu", "members.0.relu:1", "members.1.relu", "members.1.relu:1"]
    for site in ens.sites:
        bb = ens.members[int(site.name.split(".")[1])].backbone
        with torch.no_grad():
            want = bb.c1(x) if site.name.endswith(".relu") else bb.c2(torch.relu(bb.c1(x)))
        torch.testing.assert_close(preactivation(ens, site, x), want, rtol=0, atol=1e-6)


# ------------------------------------------------------------ 2-4. a Linear over time, in every form
class TimeMix(nn.Module):
    """conv (8 channels, T = 10) -> a Linear over time to 5 features (``how``) -> ``then`` -> ReLU -> Linear(5, 3):
    the units of 'act' are the 5 time features on dim -1."""

    def __init__(self, how: str = "module", then: str = "none"):
        super().__init__()
        self.how, self.then = how, then
        self.conv, self.mix, self.act, self.fc = nn.Conv1d(3, 8, 3, padding=1), nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 3)

    def forward(self, x):
        z, w = self.conv(x), self.mix.weight
        z = {"module": lambda: self.mix(z), "F.linear": lambda: F.linear(z, w, self.mix.bias),
             "matmul": lambda: z @ w.T, "einsum": lambda: torch.einsum("bct,kt->bck", z, w)}[self.how]()
        z = {"none": lambda: z, "layer_norm": lambda: F.layer_norm(z, (5,)),
             "normalize": lambda: F.normalize(z, dim=-1)}[self.then]()
        return self.fc(self.act(z)).mean(1)


@pytest.mark.parametrize("how,then", [("module", "layer_norm"), ("module", "normalize"),
                                      ("F.linear", "none"), ("matmul", "none"), ("einsum", "none"),
                                      ("F.linear", "layer_norm")])
def test_a_linear_over_time_is_read_over_its_features_whatever_follows_it(how, then):
    """Refused with 'unit_axis: cannot tell ... (linear)' (2: a stale hint of the Linear's own F.linear; 4: the
    functional forms), though nn.Linear alone gave (5, -1)."""
    torch.manual_seed(0)
    bb, x = TimeMix(how, then), torch.randn(4, 3, 10)
    net = _wrap(bb, x)
    assert _sites(net) == [("act", 5, -1)]
    torch.testing.assert_close(net.explain(x).codes, _reference(bb, x, ["act"], {"act": -1}), rtol=0, atol=0)


class ChannelsLast(nn.Module):
    """Conv1d(3, 16) on T = 16, made channels-last, ReLU, Linear(16, 3) over the channels: units on dim -1."""

    def __init__(self, how: str):
        super().__init__()
        self.how, self.conv, self.act, self.fc = how, nn.Conv1d(3, 16, 3, padding=1), nn.ReLU(), nn.Linear(16, 3)

    def forward(self, x):
        z = self.conv(x)
        z = {"mT": lambda: z.mT, "mH": lambda: z.mH, "transpose": lambda: z.transpose(1, 2)}[self.how]()
        return self.fc(self.act(z)).mean(1)


@pytest.mark.parametrize("how", ["mT", "mH", "transpose"])
def test_a_square_conv_map_made_channels_last_by_a_property_takes_the_reader_s_axis(how):
    """``.mT`` reached the lineage as ``__get__``: refused, '(__get__)' named as the op."""
    torch.manual_seed(0)
    bb, x = ChannelsLast(how), torch.randn(4, 3, 16)
    net = _wrap(bb, x)
    assert _sites(net) == [("act", 16, -1)]
    torch.testing.assert_close(net.explain(x).codes, _reference(bb, x, ["act"], {"act": -1}), rtol=0, atol=0)


class SquareTimeMix(nn.Module):
    """conv (8 channels) -> ``z @ A`` with a square [T, T] matrix (keeps every dim: the units may have moved) -> ReLU
    -> a Linear over time: still an op that may move them, refused."""

    def __init__(self):
        super().__init__()
        self.conv, self.act, self.mix = nn.Conv1d(3, 8, 3, padding=1), nn.ReLU(), nn.Linear(6, 4)
        self.a = nn.Parameter(torch.randn(6, 6))

    def forward(self, x):
        return self.mix(self.act(self.conv(x) @ self.a)).mean((1, 2))


def test_a_contraction_that_keeps_the_last_dim_still_asks_for_the_unit_axis():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"unit_axis: cannot tell where the units of site 'act' lie: .*8 features on "
                                         r"dim 1 before an op that may move them \(matmul\).*6 on dim -1"):
        _wrap(SquareTimeMix(), torch.randn(4, 3, 6))


# ------------------------------------------------------------ 5. pooling with indices, split and chunk crops
class HiddenThenTimeMix(nn.Module):
    """conv (8 channels) -> a pooling returning its indices (or of the map unsqueezed), or a split/chunk crop -> ReLU
    -> Linear over time (``steps`` -> 5) -> ReLU: the units of 'act' are the conv's 8 channels (dim 1), those of 'act2'
    the 5 (dim -1)."""

    def __init__(self, hide: str, steps: int):
        super().__init__()
        self.hide, self.conv, self.act = hide, nn.Conv1d(3, 8, 3, padding=1), nn.ReLU()
        self.pool = nn.MaxPool1d(2, return_indices=True)
        self.mix, self.act2, self.fc = nn.Linear(steps, 5), nn.ReLU(), nn.Linear(8 * 5, 2)

    def forward(self, x):
        z = self.conv(x)
        z = {"module_indices": lambda: self.pool(z)[0],
             "max_pool_indices": lambda: F.max_pool1d(z, 2, return_indices=True)[0],
             "adaptive_indices": lambda: F.adaptive_max_pool1d(z, 6, return_indices=True)[0],
             "split": lambda: z.split([8, 2], dim=-1)[0], "torch.split": lambda: torch.split(z, 6, -1)[1],
             "chunk": lambda: z.chunk(2, dim=2)[0], "tensor_split": lambda: z.tensor_split([2], dim=-1)[1],
             "unsqueeze_pool": lambda: F.max_pool2d(z.unsqueeze(-1), (2, 1)).squeeze(-1),
             "squeeze_all": lambda: F.avg_pool2d(z.unsqueeze(2), (1, 2)).squeeze()}[self.hide]()
        return self.fc(self.act2(self.mix(self.act(z))).flatten(1))


@pytest.mark.parametrize("hide,steps,t", [("module_indices", 6, 12), ("max_pool_indices", 6, 12),
                                          ("adaptive_indices", 6, 9), ("split", 8, 10), ("torch.split", 6, 12),
                                          ("chunk", 6, 12), ("tensor_split", 8, 10), ("unsqueeze_pool", 6, 12),
                                          ("squeeze_all", 6, 12)])
def test_the_conv_s_channels_are_the_units_behind_pooling_with_indices_and_split_crops(hide, steps, t):
    """Not followed (the op returns a tuple; an unsqueeze changes the rank): the time positions were read as the
    units, with no word."""
    torch.manual_seed(0)
    bb, x = HiddenThenTimeMix(hide, steps), torch.randn(4, 3, t)
    net = _wrap(bb, x)
    assert _sites(net) == [("act", 8, 1), ("act2", 5, -1)]
    torch.testing.assert_close(net.explain(x).codes, _reference(bb, x, ["act", "act2"], {"act2": -1}), rtol=0, atol=0)


class Pool2dIndicesWidthMix(nn.Module):
    """Conv2d (6 channels) -> MaxPool2d(return_indices=True) -> ReLU -> a Linear over the width (4 -> 6)."""

    def __init__(self):
        super().__init__()
        self.conv, self.pool, self.act = nn.Conv2d(3, 6, 3, padding=1), nn.MaxPool2d(2, return_indices=True), nn.ReLU()
        self.mix = nn.Linear(4, 6)

    def forward(self, x):
        return self.mix(self.act(self.pool(self.conv(x))[0])).mean((1, 2))


def test_a_2d_pooling_with_indices_keeps_the_conv_s_channels():
    torch.manual_seed(0)
    bb, x = Pool2dIndicesWidthMix(), torch.randn(4, 3, 8, 8)
    net = _wrap(bb, x)
    assert _sites(net) == [("act", 6, 1)]
    torch.testing.assert_close(net.explain(x).codes, _reference(bb, x, ["act"]), rtol=0, atol=0)


# ------------------------------------------------------------ 6. float-coded ids on a zero-padded first batch
class IdsAsFloat(nn.Module):
    """Token ids handed over as floats (a DataLoader of a float array), embedded: random batch-mates index outside
    the table; the units of 'act' are fc1's 6 features (dim -1)."""

    def __init__(self):
        super().__init__()
        self.emb, self.fc1, self.act, self.fc2 = nn.Embedding(10, 4), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(self.emb(x.long())))).mean(1)


@pytest.mark.parametrize("first", [torch.zeros(8, 7), torch.zeros(4, 7), torch.zeros(2, 7),
                                   torch.tensor([[1., 2, 3, 0, 0, 0, 0]] * 4)])
def test_float_ids_on_a_padded_first_batch_of_copies_still_wrap(first):
    """HEAD: 'x: the backbone's forward pass on this batch failed (IndexError ...)' for a batch that runs."""
    torch.manual_seed(0)
    bb = IdsAsFloat()
    net = _wrap(bb, first)
    assert _sites(net) == [("act", 6, -1)]
    x = torch.randint(0, 10, (5, 7)).float()
    torch.testing.assert_close(net.explain(x).codes, _reference(bb, x, ["act"], {"act": -1}), rtol=0, atol=0)


def test_a_batch_the_backbone_cannot_run_is_still_named():
    with pytest.raises(ValueError, match=r"x: the backbone's forward pass on this batch failed \(IndexError"):
        _wrap(IdsAsFloat(), torch.full((4, 7), 12.0))  # ids past the table, in the batch as given


# ------------------------------------------------------------ 7. the layers=[...] advice of a refused state dict
def test_the_layers_advice_of_a_refused_state_dict_names_a_module_called_relu_1():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8)
    with pytest.warns(UserWarning, match="acts.relu::1"):
        a = _wrap(NameClash(), x)
    sd = a.state_dict()
    assert sd._metadata[""]["sites"] == [["acts.relu", 4], ["acts.relu::1", 5], ["acts.relu:1", 6, "acts.relu:1"]]
    with pytest.warns(UserWarning, match="acts.relu::1"):
        b = _wrap(NameClash(), x, layers=["acts.relu"])
    with pytest.raises(RuntimeError, match=re.escape("(layers=['acts.relu', 'acts.relu:1'])")):
        b.load_state_dict(sd)
    with pytest.warns(UserWarning, match="acts.relu::1"):
        c = _wrap(NameClash(), x, layers=["acts.relu", "acts.relu:1"])  # the advice, followed
    c.load_state_dict(sd)
    with torch.no_grad():
        torch.testing.assert_close(c(x), a(x), rtol=0, atol=0)


def test_a_state_dict_with_the_two_element_sites_record_still_loads():
    from neuroview.core.settings import saved_sites, sites_clash

    assert saved_sites({"sites": [["1", 4], ["3", 5]]}) == [["1", 4], ["3", 5]]
    assert saved_sites({"sites": [["1", 4, 7]]}) is None  # not readable: the check is skipped, as before
    why = sites_clash([["blocks.relu", 4], ["blocks.relu:2", 5], ["acts.relu:b", 6]], [])
    assert why.endswith("(layers=['acts.relu:b', 'blocks.relu'])")  # a ':' not of a call stays (was 'acts.relu')


# ------------------------------------------------------------ 8. a module shared with registered activations
class SharedKeptOnlyInside(nn.Module):
    """``self.act`` handed to two SquaredReLUs and never called at the top level."""

    def __init__(self, own: bool = False):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 5, 3)
        self.act = nn.ReLU()
        self.sq1, self.sq2 = (SquaredReLU(), SquaredReLU()) if own else (SquaredReLU(self.act), SquaredReLU(self.act))
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(self.sq2(self.c2(self.sq1(self.c1(x)))).mean((2, 3)))


def test_a_module_shared_by_two_activations_names_both_and_the_call_of_its_own():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8)
    with pytest.raises(ValueError, match=re.escape(
            "backbone: the activation 'act' runs inside the activations 'sq1' and 'sq2' (call 0 of 'act', inside "
            "'sq1') and is registered outside too") + ".*give 'sq1' and 'sq2' modules of their own"):
        _wrap(SharedKeptOnlyInside(), x)
    with pytest.raises(ValueError, match=re.escape("runs inside the activation 'sq' (call 1 of 'relu', inside 'sq')")
                       + ".*give 'sq' a module of its own"):
        _wrap(SharedInside(), x)
    bb = SharedKeptOnlyInside(own=True)  # the advice, followed: one site per SquaredReLU, each unit once
    net = _wrap(bb, x)
    assert [(s.name, s.channels) for s in net.sites] == [("sq1", 4), ("sq2", 5)]
    torch.testing.assert_close(net.explain(x).codes, _reference(bb, x, ["sq1", "sq2"]), rtol=0, atol=0)
