"""Review R1 of 7b5a825, findings 2, 3 and 8: the gallery's heat and the order of a site's positions.

7b5a825 left the heat NaN wherever a gradient check of one sample's map corners failed: on every map larger than the
input (an upsampling decoder, a conv with ``k=2, padding=1``) and on images with a blank border, where nothing had
moved; and it passed (a transposed heat) where every corner read the whole input (deep backbones). The order is now
followed from the input (:mod:`neuroview.core.map_order`). Each expected heat is the unit's on-map computed here from
the backbone's own layers, stretched by hand (nearest) over the input."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv


class Up(nn.Module):
    """A decoder: conv, upsample x2, conv, ReLU: the site's map is 2H x 2W, in the input's order."""

    def __init__(self):
        super().__init__()
        self.c0, self.up, self.c1, self.act = nn.Conv2d(2, 4, 3, padding=1), nn.Upsample(scale_factor=2), \
            nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()

    def pre(self, x):
        return self.c1(self.up(self.c0(x)))

    def forward(self, x):
        return self.act(self.pre(x)).mean((2, 3))


class Plus1(nn.Module):
    """``Conv2d(k=2, padding=1)``: an (H+1) x (W+1) map, in the input's order."""

    def __init__(self):
        super().__init__()
        self.c0, self.act = nn.Conv2d(2, 4, 2, padding=1), nn.ReLU()

    def pre(self, x):
        return self.c0(x)

    def forward(self, x):
        return self.act(self.pre(x)).mean((2, 3))


class Deep(nn.Module):
    """``act(convs(x))`` or ``act(convs(x).mT)``: after 6 stacked 3x3 convs every position reads the whole input."""

    def __init__(self, swap: bool, depth: int = 6, flip: bool = False):
        super().__init__()
        self.swap, self.flip = swap, flip
        self.convs = nn.Sequential(*[nn.Conv2d(2 if i == 0 else 4, 4, 3, padding=1) for i in range(depth)])
        self.act, self.fc = nn.ReLU(), nn.Linear(4, 3)

    def pre(self, x):
        z = self.convs(x)
        return z.flip(-1) if self.flip else z.mT if self.swap else z

    def forward(self, x):
        return self.fc(self.act(self.pre(x)).mean((2, 3)))


def _on(pre, x, size, swap=False):
    """Where unit 0 is on, as the input's [H, W] shows it: the map moved back by hand (``.mT``), stretched (nearest)."""
    with torch.no_grad():
        m = (pre(x)[:, :1] > 0).float()
        m = m.mT if swap else m
        return F.interpolate(m, size=size, mode="nearest")[0, 0]


@pytest.mark.parametrize("cls", [Up, Plus1])
def test_a_map_larger_than_the_input_keeps_its_heat(cls):
    torch.manual_seed(0)
    x, y = torch.randn(12, 2, 6, 6), torch.arange(12) % 3
    torch.manual_seed(1)
    bb = cls().eval()
    net = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x).eval()
    g = nv.unit_gallery(net, [(x, y)], units=[("act", 0)], k=3)
    for j in range(3):
        i = int(g.index[0, j])
        assert torch.equal(g.heat[0, j].float(), _on(bb.pre, x[i:i + 1], (6, 6))), (cls.__name__, i)


class Border(nn.Module):
    """conv 3x3 -> ReLU -> conv 7x7 'same' -> ReLU; the first conv's bias -0.5 keeps a blank border off."""

    def __init__(self):
        super().__init__()
        self.c0, self.a0, self.c1, self.a1 = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 7, padding=3), nn.ReLU()
        with torch.no_grad():
            self.c0.bias.fill_(-0.5)

    def forward(self, x):
        return self.a1(self.c1(self.a0(self.c0(x)))).mean((2, 3))


def test_images_with_a_blank_border_keep_the_heat_of_every_site():
    torch.manual_seed(0)
    x = torch.zeros(12, 1, 12, 12)
    x[:, :, 4:8, 4:8] = torch.randn(12, 1, 4, 4) * 3  # MNIST-like: the digit in the middle, a blank border
    y = torch.arange(12) % 3
    torch.manual_seed(1)
    bb = Border().eval()
    net = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x).eval()
    g = nv.unit_gallery(net, [(x, y)], units=[("a0", 0), ("a1", 0)], k=3)
    pres = [bb.c0, lambda z: bb.c1(bb.a0(bb.c0(z)))]
    for u in range(2):
        for j in range(3):
            i = int(g.index[u, j])
            assert torch.equal(g.heat[u, j].float(), _on(pres[u], x[i:i + 1], (12, 12))), (u, i)


@pytest.mark.parametrize("hw", [(6, 6), (5, 7)])
def test_a_swapped_map_of_a_deep_backbone_is_moved_back(hw):
    """Finding 3: every corner of a 6-conv map reads the whole input, so the gradient check passed and the heat was
    drawn transposed (on 6x6) or misplaced (5x7)."""
    torch.manual_seed(0)
    x, y = torch.randn(12, 2, *hw), torch.arange(12) % 3
    for swap in (False, True):
        torch.manual_seed(1)
        bb = Deep(swap).eval()
        net = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x).eval()
        g = nv.unit_gallery(net, [(x, y)], units=[("act", 0)], k=2)
        for j in range(2):
            i = int(g.index[0, j])
            assert torch.equal(g.heat[0, j].float(), _on(bb.pre, x[i:i + 1], hw, swap)), (hw, swap, i)


def test_a_flipped_map_is_flipped_back():
    """``flip`` of a positional dim is followed (review S1 finding 4): the map is flipped back before it is stretched
    (it was NaN; stretched as it is, the heat would be mirrored)."""
    torch.manual_seed(0)
    x, y = torch.randn(12, 2, 5, 7), torch.arange(12) % 3
    torch.manual_seed(1)
    bb = Deep(False, depth=1, flip=True).eval()
    net = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x,
                           unit_axis={"act": 1}).eval()  # (flip is not followed by the lineage)
    g = nv.unit_gallery(net, [(x, y)], units=[("act", 0)], k=2)
    for j in range(2):
        i = int(g.index[0, j])
        want = _on(lambda z: bb.pre(z).flip(-1), x[i:i + 1], (5, 7))  # flipped back by hand
        assert torch.equal(g.heat[0, j].float(), want), i
    assert g.window.shape == (1, 2, 2, 2)  # the rest of the gallery is there


class Moves(nn.Module):
    """Review S1 findings 1 and 4: flips and rolls of channels, undone flips and rolls, a residual shift branch. Each
    ``pre`` lies in the input's order (``back``: how to move it there by hand)."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.c0, self.c1, self.act, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 1), nn.ReLU(), nn.Linear(4, 3)

    def pre(self, x):
        k, c0 = self.kind, self.c0
        z = {"bgr": lambda: c0(x.flip(1)), "fliplr": lambda: c0(torch.fliplr(x)), "chroll": lambda: torch.roll(c0(x), 1, 1),
             "mirror": lambda: (c0(x) + c0(x.flip(-1)).flip(-1)) / 2,
             "shift": lambda: c0(x) + self.c1(torch.roll(c0(x), 1, -1)),
             "rollback": lambda: torch.roll(c0(torch.roll(x, 2, -1)), -2, -1),
             "roll2d": lambda: torch.roll(c0(x), (1, -2), (2, 3)), "rot90": lambda: torch.rot90(c0(x), 1, (2, 3)),
             "rot_back": lambda: torch.rot90(torch.rot90(c0(x), 1, (2, 3)), -1, (2, 3)),
             "pooled_roll": lambda: F.max_pool2d(torch.roll(c0(x), 2, -1), 2),
             "mixed": lambda: c0(x) + c0(x).flip(-1),
             "two_shifts": lambda: torch.roll(c0(x), 1, -1) + torch.roll(c0(x), -1, -1)}[k]()
        return z

    def back(self, m):
        """The site's map moved into the input's order by hand (None: it lies in none)."""
        k = self.kind
        if k in ("mixed", "two_shifts"):
            return None
        return {"roll2d": lambda: torch.roll(m, (-1, 2), (2, 3)), "rot90": lambda: torch.rot90(m, -1, (2, 3)),
                "pooled_roll": lambda: torch.roll(m, -1, -1)}.get(k, lambda: m)()

    def forward(self, x):
        return self.fc(self.act(self.pre(x)).mean((2, 3)))


@pytest.mark.parametrize("kind", ["bgr", "fliplr", "chroll", "mirror", "shift", "rollback", "roll2d", "rot90", "rot_back",
                                  "pooled_roll", "mixed", "two_shifts"])
def test_flips_and_rolls_are_followed_per_dim(kind):
    """A flip or roll of the channels keeps every position's order (it blanked every site's heat); a flip or roll undone
    restores it; a residual shift branch keeps the stream's; a rolled or rotated map is moved back. Positions of two
    orders in one sum (``z + z.flip(-1)``, or two rolls and no in-order operand) still have no heat."""
    torch.manual_seed(0)
    hw = (6, 6) if kind.startswith("rot") else (6, 8)
    x, y = torch.randn(12, 3, *hw), torch.arange(12) % 3
    torch.manual_seed(1)
    bb = Moves(kind).eval()
    net = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x, unit_axis={"act": 1}).eval()
    g = nv.unit_gallery(net, [(x, y)], units=[("act", 0)], k=3)
    for j in range(3):
        i = int(g.index[0, j])
        with torch.no_grad():
            m = bb.back((bb.pre(x[i:i + 1])[:, :1] > 0).float())
        if m is None:
            assert bool(g.heat[0, j].isnan().all()), (kind, i)
        else:
            assert torch.equal(g.heat[0, j].float(), F.interpolate(m, size=hw, mode="nearest")[0, 0]), (kind, i)


def test_the_order_is_followed_in_one_pass_of_one_sample_and_no_backward():
    """Finding 8: the check ran a forward pass per site and 2^d backward passes; now one forward of one sample."""
    torch.manual_seed(0)
    x = torch.randn(12, 1, 12, 12)
    bb = Border().eval()
    net = nv.NeuroViewCNN(bb, 3, quantizer="hard", example_input=x).eval()
    from neuroview.core.map_order import position_orders
    calls = []
    handle = bb.c0.register_forward_hook(lambda m, a, o: calls.append(len(a[0])))
    try:
        orders = position_orders(net, net.sites, x[:1])
    finally:
        handle.remove()
    assert calls == [1] and orders == {"a0": (0, 1), "a1": (0, 1)}
