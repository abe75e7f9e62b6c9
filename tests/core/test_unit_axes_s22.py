"""P6 (session 22) findings on which axis holds a site's units: a residual sum's operand order, ``nn.LayerNorm(T)``
over a conv map's time steps, a ``unit_axis`` against a moved width on a square map (and the saved head's axes),
channels moved to a middle dim, and the gallery heat of a site whose positions were swapped by ``.mT``.

Every expected answer is computed here from the network's own layers (the pre-activation taken by hand), never from
the code under test."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv


def _sites(net):
    return [(s.name, s.channels, s.axis) for s in net.sites]


def _channel_codes(z):
    """Hard codes per channel (dim 1) of a pre-activation ``[B, C, *positions]``: the on-bit averaged over positions."""
    return (z > 0).double().flatten(2).mean(-1)


class Residual(nn.Module):
    """A conv's 4 channels plus a Linear over time (token mixing, no transpose), summed in either order, read by a
    conv over the channels."""

    def __init__(self, branch_first: bool, steps: int):
        super().__init__()
        self.branch_first = branch_first
        self.c0, self.mix = nn.Conv1d(2, 4, 3, padding=1), nn.Linear(steps, steps)
        self.act, self.c2 = nn.ReLU(), nn.Conv1d(4, 3, 1)

    def pre(self, x):
        h = self.c0(x)
        return self.mix(h) + h if self.branch_first else h + self.mix(h)

    def forward(self, x):
        return self.c2(self.act(self.pre(x))).mean(-1)


@pytest.mark.parametrize("steps", [7, 4])
def test_a_residual_sum_reads_the_conv_channels_whichever_operand_comes_first(steps):
    """P6 finding 1: ``mix(h) + h`` read the T time steps as the units, ``h + mix(h)`` the 4 channels (at T=4 both
    gave 4 "units"). The conv reading the sum takes the channels: both orders read them."""
    torch.manual_seed(0)
    x = torch.randn(6, 2, steps, dtype=torch.float64)
    for first in (False, True):
        torch.manual_seed(1)
        bb = Residual(first, steps).double().eval()
        net = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x).eval()
        assert _sites(net) == [("act", 4, 1)], first
        with torch.no_grad():
            assert torch.equal(net.codes(x).double(), _channel_codes(bb.pre(x))), first


class NormOverTime(nn.Module):
    """conv -> a normalization of each channel's series over its T steps -> ReLU -> conv over the 4 channels."""

    def __init__(self, steps: int, functional: bool, affine: bool = True):
        super().__init__()
        self.steps, self.functional = steps, functional
        self.c1, self.norm = nn.Conv1d(2, 4, 3, padding=1), nn.LayerNorm(steps, elementwise_affine=affine)
        self.act, self.c2 = nn.ReLU(), nn.Conv1d(4, 3, 1)

    def pre(self, x):
        h = self.c1(x)
        return F.layer_norm(h, (self.steps,)) if self.functional else self.norm(h)

    def forward(self, x):
        return self.c2(self.act(self.pre(x))).mean(-1)


@pytest.mark.parametrize("steps", [7, 4])
@pytest.mark.parametrize("functional, affine", [(False, True), (False, False), (True, True)])
def test_a_layernorm_over_a_conv_maps_time_steps_keeps_the_conv_channels(steps, functional, affine):
    """P6 finding 2: ``nn.LayerNorm(T)`` made the T time steps the units, ``F.layer_norm(h, (T,))`` (the same
    function) kept the conv's channels. A normalization moves no units: both read the 4 channels."""
    torch.manual_seed(0)
    x = torch.randn(6, 2, steps, dtype=torch.float64)
    bb = NormOverTime(steps, functional, affine).double().eval()
    with torch.no_grad():
        bb.norm.weight.uniform_(0.5, 1.5) if affine else None
    net = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x).eval()
    assert _sites(net) == [("act", 4, 1)]
    with torch.no_grad():
        assert torch.equal(net.codes(x).double(), _channel_codes(bb.pre(x)))


class ChannelsLastNorm(nn.Module):
    """ConvNeXt's MLP: conv, channels-last, LayerNorm over the channels, Linear to 8 hidden units, ReLU."""

    def __init__(self, size: int):
        super().__init__()
        self.c, self.ln, self.fc1 = nn.Conv2d(2, size, 3, padding=1), nn.LayerNorm(size), nn.Linear(size, 8)
        self.act, self.fc2 = nn.ReLU(), nn.Linear(8, size)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(self.ln(self.c(x).permute(0, 2, 3, 1))))).mean((1, 2))


@pytest.mark.parametrize("size", [4, 5])
def test_a_layernorm_over_channels_last_channels_still_reads_the_hidden_units(size):
    torch.manual_seed(0)
    x = torch.randn(4, 2, 4, 4)
    net = nv.NeuroViewCNN(ChannelsLastNorm(size), 3, example_input=x).eval()
    assert _sites(net) == [("act", 8, -1)]


class SharedSquare(nn.Module):
    """One ReLU at two calls: a conv map ``[B, 4, T]``, then another conv's map made channels-last by ``.mT``."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.act, self.fc = nn.Conv1d(2, 4, 3, padding=1), nn.Conv1d(4, 4, 3, padding=1), nn.ReLU(), nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.act(self.c2(self.act(self.c1(x))).mT)).mean(1)


@pytest.mark.parametrize("key", ["act", "act:1"])
def test_a_unit_axis_against_a_moved_width_is_refused_on_a_square_map_too(key):
    """P6 finding 3: at T=4 the map ``[B, 4, 4]`` is square and the check was skipped, so ``act:1`` read its time
    steps as units; at T=6 it was refused. The lineage knows the channels lie on dim -1 either way."""
    torch.manual_seed(0)
    for steps in (6, 4):
        x = torch.randn(4, 2, steps)
        assert _sites(nv.NeuroViewCNN(SharedSquare(), 3, example_input=x)) == [("act", 4, 1), ("act:1", 4, -1)]
        with pytest.raises(ValueError, match=r"unit_axis: got 1 for site 'act:1'.*made by a layer with 4 features"):
            nv.NeuroViewCNN(SharedSquare(), 3, example_input=x, unit_axis={key: 1})


class Flat(nn.Module):
    """A conv map ``[B, 4, 2, 2]`` flattened to ``[B, 4, 4]``: no layer tells which axis holds the units."""

    def __init__(self):
        super().__init__()
        self.c, self.act = nn.Conv2d(1, 4, 1), nn.ReLU()

    def forward(self, x):
        return self.act(self.c(x).flatten(2)).mean((1, 2))


def test_a_head_saved_with_one_unit_axis_is_refused_by_a_wrap_reading_the_other():
    """P6 finding 3 (load): the state dict recorded ``[name, units]`` only, so a head trained on the 4 channels of a
    square map loaded into a wrap reading its 4 positions. The axes are recorded now; a file without them loads."""
    torch.manual_seed(0)
    x = torch.randn(4, 1, 2, 2)
    a = nv.NeuroViewCNN(Flat(), 3, example_input=x, unit_axis={"act": 1}).eval()
    b = nv.NeuroViewCNN(Flat(), 3, example_input=x, unit_axis={"act": -1}).eval()
    assert _sites(a) == [("act", 4, 1)] and _sites(b) == [("act", 4, -1)]
    sd = a.state_dict()
    assert sd._metadata[""]["sites"] == [["act", 4]] and sd._metadata[""]["axes"] == [1]
    with pytest.raises((ValueError, RuntimeError), match=r"sites: .*another unit axis at 'act' \(dim 1 in the file, -1 "
                                                         r"here\).*unit_axis=\{'act': 1\}"):
        b.load_state_dict(sd)
    same = nv.NeuroViewCNN(Flat(), 3, example_input=x, unit_axis={"act": 1}).eval()
    same.load_state_dict(sd)
    assert torch.equal(same(x), a(x))
    del sd._metadata[""]["axes"]  # a file saved before the axes were recorded: unknown, loaded as before
    b.load_state_dict(sd)


class Axial(nn.Module):
    """A conv map ``[B, 4, H, W]`` with its channels moved to dim 2 by ``transpose(1, 2)``, then a ReLU."""

    def __init__(self):
        super().__init__()
        self.c, self.act = nn.Conv2d(2, 4, 3, padding=1), nn.ReLU()

    def forward(self, x):
        return self.act(self.c(x).transpose(1, 2)).mean((1, 2, 3))


def test_channels_moved_to_a_middle_dim_are_a_clear_error_naming_the_move():
    """P6 finding 4: the error said "no layer produced it" and advised ``unit_axis`` 1 or -1, which read the 5 rows or
    the 6 columns as units. It names the dim the channels lie on, and how to move them; a key is refused."""
    torch.manual_seed(0)
    x = torch.randn(3, 2, 5, 6)
    with pytest.raises(ValueError) as e:
        nv.NeuroViewCNN(Axial(), 3, example_input=x)
    assert "4 features of the layer that produced it lie on dim 2 after transpose" in str(e.value)
    assert ".movedim(2, -1)" in str(e.value) and "1 or -1" not in str(e.value)
    for axis in (1, -1):
        with pytest.raises(ValueError, match=r"lie on dim 2 after transpose \(unit_axis=\{'act': \.\.\.\} reads dim 1 "
                                             r"or the last dim, which hold 5 and 6 positions, not its units\)"):
            nv.NeuroViewCNN(Axial(), 3, example_input=x, unit_axis={"act": axis})


class Swapped(nn.Module):
    """``ReLU(conv(x))``, or with the map's H and W swapped by ``.mT`` (channels kept on dim 1)."""

    def __init__(self, swap: bool):
        super().__init__()
        self.swap, self.c0, self.act, self.fc = swap, nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Linear(4, 3)

    def forward(self, x):
        z = self.c0(x)
        return self.fc(self.act(z.mT if self.swap else z).mean((2, 3)))


@pytest.mark.parametrize("hw", [(6, 6), (5, 6)])
def test_the_gallery_heat_of_a_map_with_swapped_positions_is_moved_back(hw):
    """P6 finding 5: the heat of ``act(conv(x).mT)`` was the unit's map stretched over the input unswapped: transposed
    on a square input, stretched wrongly on 5x6. The order of its positions is followed from the input, and the map
    moved back: the heat is where the unit is on, in input coordinates, swapped or not (review R1 of 7b5a825)."""
    torch.manual_seed(0)
    x, y = torch.randn(12, 2, *hw), torch.arange(12) % 3
    for swap in (False, True):
        torch.manual_seed(1)
        bb = Swapped(swap).eval()
        net = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x).eval()
        g = nv.unit_gallery(net, [(x, y)], units=[("act", 0)], k=3)
        for j in range(3):
            i = int(g.index[0, j])
            with torch.no_grad():
                on = (bb.c0(x[i:i + 1])[0, 0] > 0).float()  # [H, W]: where unit 0 is on, in input coordinates
            assert torch.equal(g.heat[0, j].float(), on), (hw, i, swap)


# ---------------------------------------------------------------- review R1 of 7b5a825 (session 22)
class AxialFixed(nn.Module):
    """:class:`Axial` with the middle-dim error's advice followed: ``.movedim(2, -1)``, or a transpose back."""

    def __init__(self, fix: str):
        super().__init__()
        self.fix, self.c, self.act = fix, nn.Conv2d(2, 4, 3, padding=1), nn.ReLU()

    def pre(self, x):
        z = self.c(x).transpose(1, 2)  # [B, H, C, W]: the 4 channels on dim 2
        return z.movedim(2, -1) if self.fix == "movedim" else z.transpose(1, 2)

    def forward(self, x):
        return self.act(self.pre(x)).mean((1, 2, 3))


@pytest.mark.parametrize("fix, axis", [("movedim", -1), ("transpose back", 1)])
def test_the_middle_dim_errors_advice_works_when_followed(fix, axis):
    """Review R1 finding 5: a move of a tensor whose units a move had left on a middle dim was not followed, so the
    advice ``.movedim(2, -1)`` (and a transpose back) gave a second error, "no layer produced it"."""
    torch.manual_seed(0)
    x = torch.randn(3, 2, 5, 6, dtype=torch.float64)
    bb = AxialFixed(fix).double().eval()
    net = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x).eval()
    assert _sites(net) == [("act", 4, axis)]
    with torch.no_grad():
        z = bb.c(x)  # [B, 4, H, W]: the conv's own channels on dim 1
        assert torch.equal(net.codes(x).double(), _channel_codes(z))


class MLP(nn.Module):
    """A Linear's 8 features at a ``[B, 8]`` site, where dim 1 is the last dim."""

    def __init__(self):
        super().__init__()
        self.f, self.act, self.o = nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 5)

    def forward(self, x):
        return self.o(self.act(self.f(x.flatten(1))))


class SharedFlat(nn.Module):
    """One ReLU on a functional conv map (no layer: MiniRocket-like, it needs ``{'act': 1}``), then in an MLP."""

    def __init__(self):
        super().__init__()
        self.w, self.act = nn.Parameter(torch.randn(6, 2, 3)), nn.ReLU()
        self.fc, self.o = nn.Linear(6, 8), nn.Linear(8, 3)

    def forward(self, x):
        return self.o(self.act(self.fc(self.act(F.conv1d(x, self.w, padding=1)).mean(-1))))


def test_a_unit_axis_key_on_a_2d_site_is_taken_either_way_and_its_heads_load_across():
    """Review R1 finding 1: on ``[B, 8]`` dims 1 and -1 are one; 7b5a825 refused ``{'act': 1}`` (its dim 1 "holds as
    many, not its units"), refused a module key reaching a 2-D call, and refused loading a head saved with -1 into a
    wrap with no key (the axes were compared as written)."""
    torch.manual_seed(0)
    x, bb = torch.randn(4, 3, 4, dtype=torch.float64), MLP().double()
    nets = [nv.NeuroViewCNN(bb, 5, quantizer="hard", example_input=x, unit_axis=ua).eval()
            for ua in (None, {"act": 1}, {"act": -1})]
    with torch.no_grad():
        want = (bb.f(x.flatten(1)) > 0).double()  # [B, 8]: the Linear's 8 features, on or off
    for net in nets:
        assert _sites(net) == [("act", 8, 1)]
        with torch.no_grad():
            assert torch.equal(net.codes(x).double(), want)
    for a in nets:  # each head loads into each wrap, with the same logits
        for b in nets:
            b.load_state_dict(a.state_dict())
            with torch.no_grad():
                assert torch.equal(b(x), a(x))
    torch.manual_seed(1)
    shared = nv.NeuroViewCNN(SharedFlat(), 3, example_input=torch.randn(4, 2, 10), unit_axis={"act": 1})
    assert _sites(shared) == [("act", 6, 1), ("act:1", 8, 1)]


class LNTime(nn.Module):
    """conv -> ``nn.LayerNorm(T)`` over its time steps -> ReLU, read by no layer (pooled)."""

    def __init__(self, steps: int = 16):
        super().__init__()
        self.c, self.ln, self.act = nn.Conv1d(2, 4, 3, padding=1), nn.LayerNorm(steps), nn.ReLU()

    def forward(self, x):
        return self.act(self.ln(self.c(x))).mean(-1)


def test_a_head_saved_before_7b5a825_on_a_layernorm_over_time_loads_with_the_advised_unit_axis():
    """Review R1 finding 4: a head saved before 7b5a825 read the LayerNorm's 16 steps (dim -1); the load advised
    ``unit_axis={'act': 1 or -1}, the axis that holds 16 units``, and -1 was refused (the conv's 4 channels lie on dim
    1). The norm's own axis is taken for a key: the advice works when followed."""
    torch.manual_seed(0)
    x = torch.randn(4, 2, 16, dtype=torch.float64)
    bb = LNTime().double().eval()
    with torch.no_grad():
        bb.ln.weight.uniform_(0.5, 1.5)
    old = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x, unit_axis={"act": -1}).eval()
    with torch.no_grad():
        assert torch.equal(old.codes(x).double(), (bb.ln(bb.c(x)) > 0).double().mean(1))  # [B, 16]: per step
    sd = old.state_dict()
    del sd._metadata[""]["axes"]  # as saved before 7b5a825: the sites alone, [['act', 16]]
    assert sd._metadata[""]["sites"] == [["act", 16]]
    new = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x).eval()
    assert _sites(new) == [("act", 4, 1)]
    with pytest.raises((ValueError, RuntimeError), match=r"\(16 units in the file, 4 here\).*unit_axis=\{'act': 1 or "
                                                         r"-1\}, the axis that holds 16 units"):
        new.load_state_dict(sd)
    advised = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x, unit_axis={"act": -1}).eval()
    advised.load_state_dict(sd)  # -1: the axis of x's 16 steps
    with torch.no_grad():
        assert torch.equal(advised(x), old(x))
    one = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x, unit_axis={"act": 1})  # the conv's, as found
    assert _sites(one) == [("act", 4, 1)]


class SumPooled(nn.Module):
    """``act(h + Linear(T)(h))`` of a conv map ``h [B, 4, 16]``, pooled: no layer reads the sum."""

    def __init__(self):
        super().__init__()
        self.c, self.mix, self.act = nn.Conv1d(2, 4, 3, padding=1), nn.Linear(16, 16), nn.ReLU()

    def forward(self, x):
        h = self.c(x)
        return self.act(h + self.mix(h)).mean(-1)


def test_a_sum_of_two_layers_on_other_axes_read_by_no_layer_is_said_as_such():
    """Review R1 finding 6: the error said "no layer produced it as it is"; two did. It names both, and the advice works
    either way."""
    torch.manual_seed(0)
    x = torch.randn(4, 2, 16)
    with pytest.raises(ValueError, match=r"its input has shape \(\d, 4, 16\), a sum of a layer's map with 4 features on "
                                         r"dim 1 and one with 16 on dim -1, and no layer reads the output as it is; pass "
                                         r"unit_axis=\{'act': 1 \(the 4\) or -1 \(the 16\)\}"):
        nv.NeuroViewCNN(SumPooled(), 3, example_input=x)
    for axis, units in ((1, 4), (-1, 16)):
        assert _sites(nv.NeuroViewCNN(SumPooled(), 3, example_input=x, unit_axis={"act": axis})) == [("act", units, axis)]


def test_a_head_saved_before_7b5a825_on_a_square_layernorm_over_time_is_refused_naming_both_keys():
    """Review S1 finding 2: with C = T = 16 the old head (the norm's 16 steps, no ``axes`` in its file) loaded without
    a word into a wrap reading the conv's 16 channels, and its logits changed. The load is refused naming the key that
    reads the file as it was trained (-1) and the one that reads the channels now found (1)."""
    torch.manual_seed(0)
    x = torch.randn(4, 2, 16, dtype=torch.float64)
    bb = NormOverTimeSquare().double().eval()
    old = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x, unit_axis={"act": -1}).eval()
    with torch.no_grad():  # the old reading: per step (dim -1), averaged over the 16 channels
        assert torch.equal(old.codes(x).double(), (bb.ln(bb.c(x)) > 0).double().mean(1))
        old.classifier.weight.normal_()
    sd = old.state_dict()
    del sd._metadata[""]["axes"]  # as saved before 7b5a825
    new = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x).eval()
    assert _sites(new) == [("act", 16, 1)]
    with pytest.raises((ValueError, RuntimeError), match=r"records no unit axes.*'act' \(dim -1 then, 1 now\).*"
                                                         r"unit_axis=\{'act': -1\} to read the file as it was trained.*"
                                                         r"unit_axis=\{'act': 1\}"):
        new.load_state_dict(sd)
    for key in (-1, 1):  # either key is the user's statement: it loads
        net = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x, unit_axis={"act": key}).eval()
        net.load_state_dict(sd)
        if key == -1:
            with torch.no_grad():
                assert torch.equal(net(x), old(x))
    saved = new.state_dict()  # a file that records its axes loads as it was saved, and records plain ints
    assert saved._metadata[""]["axes"] == [1] and type(saved._metadata[""]["axes"][0]) is int
    nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x).load_state_dict(saved)


class NormOverTimeSquare(nn.Module):
    """conv (16 channels) -> ``nn.LayerNorm(16)`` over its 16 time steps -> ReLU, pooled: a square map."""

    def __init__(self):
        super().__init__()
        self.c, self.ln, self.act = nn.Conv1d(2, 16, 3, padding=1), nn.LayerNorm(16), nn.ReLU()

    def forward(self, x):
        return self.act(self.ln(self.c(x))).mean(-1)


class MiddleRead(nn.Module):
    """An axial MLP's step: conv (6 channels), ``permute(0, 2, 1, 3)`` to ``[B, H, C, W]``, ReLU, ``Linear(W=8)``."""

    def __init__(self):
        super().__init__()
        self.c, self.act, self.fc = nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Linear(8, 3)

    def pre(self, x):
        return self.c(x).permute(0, 2, 1, 3)

    def forward(self, x):
        return self.fc(self.act(self.pre(x))).mean((1, 2))


def test_an_axial_backbone_wraps_with_a_key_naming_the_reader_s_axis():
    """Review S1 finding 3: refused with every key (its heads saved before b1769e3, which read the Linear's 8 inputs,
    could not be loaded). No key: still refused, now naming the key that reads the reader's inputs; that key wraps and
    reads them; the other key is still refused."""
    torch.manual_seed(0)
    x, bb = torch.randn(4, 1, 5, 8, dtype=torch.float64), MiddleRead().double().eval()
    with pytest.raises(ValueError, match=r"lie on dim 2 after permute.*\.movedim\(2, -1\).*to take the 8 inputs of the "
                                         r"layer that reads the output as its units.*unit_axis=\{'act': -1\}"):
        nv.NeuroViewCNN(bb, 3, example_input=x)
    net = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x, unit_axis={"act": -1}).eval()
    assert _sites(net) == [("act", 8, -1)]
    with torch.no_grad():
        assert torch.equal(net.codes(x).double(), (bb.pre(x) > 0).double().mean((1, 2)))  # per column, [B, 8]
    with pytest.raises(ValueError, match=r"reads dim 1 or the last dim, which hold 5 and 8 positions"):
        nv.NeuroViewCNN(bb, 3, example_input=x, unit_axis={"act": 1})
