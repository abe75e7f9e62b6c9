"""neuroview.attribution.gallery: a unit's gallery holds the samples of highest code (checked against
codes known in closed form, and against ``net.codes`` sorted here), the window each unit reads
(a dilated convolution's taps; the RNN step's slice), and clear errors for units that do not exist."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv
from neuroview.attribution.gallery import UnitGallery, waterfall_units

torch.manual_seed(0)


def _sign_net() -> nv.NeuroViewCNN:
    """Conv1d(1, 2, 1) with weights +1 and -1, no bias, then a ReLU: unit 0's hard code is the share
    of positive samples of the series, unit 1's the share of negative ones."""
    conv = nn.Conv1d(1, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[1.0]], [[-1.0]]]))
    return nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, input_shape=(1, 10)).eval()


def _series_with_positives(counts: list[int]) -> torch.Tensor:
    """One series of 10 per count, with exactly that many positive samples (the rest negative)."""
    x = -torch.rand(len(counts), 1, 10) - 0.1
    for i, n in enumerate(counts):
        x[i, 0, torch.randperm(10)[:n]] *= -1
    return x


def _in_batches(x, y, size):
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def test_gallery_of_known_codes():
    counts = [3, 7, 7, 1, 9, 0, 7, 5, 9, 2]
    x, y = _series_with_positives(counts), torch.arange(10) % 2
    g = nv.unit_gallery(_sign_net(), _in_batches(x, y, 3), units=[0, 1], k=4)
    assert isinstance(g, UnitGallery) and g.kind == "units" and g.names == ["1 #0", "1 #1"]
    # by hand: most positives first, ties to the lower index
    assert g.index[0].tolist() == [4, 8, 1, 2]
    assert g.index[1].tolist() == [5, 3, 9, 0]
    assert torch.allclose(g.value[0], torch.tensor([0.9, 0.9, 0.7, 0.7]))
    assert torch.equal(g.x[0], x[[4, 8, 1, 2]]) and torch.equal(g.y[1], y[[5, 3, 9, 0]])
    # a 1x1 convolution reads one sample: the one where its pre-activation (+x or -x) is largest
    for row, sign in ((0, 1.0), (1, -1.0)):
        peak = (sign * x[g.index[row], 0]).argmax(-1)
        assert torch.equal(g.position[row], peak)
        assert torch.equal(g.window[row, :, 0], torch.stack([peak, peak + 1], -1))


def test_gallery_matches_codes_sorted_independently():
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2), nn.ReLU())
    net = nv.NeuroViewCNN(cnn, 3, quantizer="soft", input_shape=(1, 9, 9)).eval()
    x, y = torch.randn(23, 1, 9, 9), torch.arange(23) % 3
    units = [7, ("3", 0), 2]
    g = net.unit_gallery(_in_batches(x, y, 5), units, k=6)
    codes = net.codes(x).detach()
    for row, u in enumerate([7, 4, 2]):
        order = sorted(range(len(x)), key=lambda i: (-float(codes[i, u]), i))[:6]
        assert g.index[row].tolist() == order
        assert torch.allclose(g.value[row], codes[order, u])
        assert torch.equal(g.x[row], x[order]) and torch.equal(g.y[row], y[order])
    assert g.heat.shape == (3, 6, 9, 9) and not g.heat.isnan().any()
    # one batch, or a different batching, gives the same gallery
    assert torch.equal(nv.unit_gallery(net, (x, y), units, k=6).index, g.index)


def test_window_is_the_receptive_field_of_a_dilated_convolution():
    conv = nn.Conv1d(1, 3, 5, dilation=2)
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, quantizer="none", input_shape=(1, 30)).eval()
    x = torch.randn(12, 1, 30)
    g = nv.unit_gallery(net, [x], units=[0, 1, 2], k=5)
    z = F.conv1d(x, conv.weight, conv.bias, dilation=2).detach()  # [12, 3, 22]
    for u in range(3):
        peak = z[g.index[u], u].argmax(-1)
        assert torch.equal(g.position[u], peak)
        # five taps two apart: samples p .. p + 8 of the input (no padding)
        assert torch.equal(g.window[u, :, 0], torch.stack([peak, peak + 9], -1))
    assert g.y is None


def test_window_of_a_stacked_strided_network():
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.Tanh(), nn.Conv2d(4, 4, 3), nn.Tanh())
    net = nv.NeuroViewCNN(cnn, 2, input_shape=(1, 15, 15)).eval()
    g = nv.unit_gallery(net, [torch.randn(8, 1, 15, 15)], units=[4, 5], k=3)
    size = g.window[..., 1] - g.window[..., 0]
    assert torch.equal(size, torch.full_like(size, 7))  # 3 + 2 * (3 - 1): tanh cuts no path
    pos = g.position
    assert torch.equal(g.window[..., 0, 0], 2 * (pos // 5)) and torch.equal(g.window[..., 1, 0], 2 * (pos % 5))


def test_rnn_step_window_ranking_and_class_means():
    gen = torch.Generator().manual_seed(0)  # the lengths decide which series reach step 4: fixed, whatever ran before
    net = nv.NeuroViewRNN(nn.GRU(6, 8, batch_first=True), num_classes=3, max_len=14, window=3).eval()
    x, y = torch.randn(25, 2, 14, generator=gen), torch.arange(25) % 3
    lengths = torch.randint(4, 15, (25,), generator=gen)
    lengths[:2] = 14  # at least two series reach the last step
    batches = [(x[i:i + 7], lengths[i:i + 7], y[i:i + 7]) for i in range(0, 25, 7)]
    g = net.unit_gallery(batches, [4, 1], k=5)
    assert g.kind == "steps" and g.names == ["step 4", "step 1"]
    # step 4 of window 3 reads samples 12, 13 (the last window is cut at max_len); step 1 reads 3..5; each
    # series' window stops at its own end; only series that reach the step are ranked, and where fewer than
    # k do, the last places are empty (index -1)
    assert g.reads.tolist() == [[12, 14], [3, 6]]
    exp = net.explain(x.transpose(1, 2), lengths)
    share = exp.time_importance[torch.arange(25), exp.predicted]  # [B, steps]
    for row, t in enumerate([4, 1]):
        reach = [i for i in range(25) if int(lengths[i]) > 3 * t]
        order = sorted(reach, key=lambda i: (-abs(float(share[i, t])), i))[:5]
        assert g.index[row].tolist() == order + [-1] * (5 - len(order))
        assert torch.allclose(g.value[row, :len(order)], share[order, t])
        assert torch.equal(g.lengths[row, :len(order)], lengths[order])
        assert g.window[row, :len(order), 0].tolist() == [[3 * t, min(3 * t + 3, 14, int(lengths[i]))] for i in order]
    for c in range(3):
        rows = (y == c).nonzero().flatten()
        for t in (0, 13):
            valid = rows[lengths[rows] > t]
            want = x[valid, :, t].mean(0) if len(valid) else torch.zeros(2)
            assert torch.allclose(g.class_means[c, :, t], want, atol=1e-6)


def test_rnn_reads_channels_first_and_batch_second_models():
    net = nv.NeuroViewRNN(nn.LSTM(2, 4), num_classes=2, max_len=10).eval()  # batch_first=False
    x, y = torch.randn(9, 2, 10), torch.arange(9) % 2
    g = nv.unit_gallery(net, (x, y), [9], k=3)
    xt = x.permute(2, 0, 1)  # [T, B, F]
    share = net.explain(xt).time_importance[torch.arange(9), net(xt).argmax(1), 9].detach()
    assert g.index[0].tolist() == sorted(range(9), key=lambda i: (-abs(float(share[i])), i))[:3]
    with pytest.raises(ValueError, match=r"loader: expected channels-first series \[B, 2, T\]"):
        nv.unit_gallery(net, (x.transpose(1, 2), y), [0])


def test_ensemble_units_are_their_members_units():
    ens = nv.create_model("nv_lite", num_classes=3, members=2).eval()
    x, y = torch.randn(10, 1, 24), torch.arange(10) % 3
    ens(x)  # the members find their sites
    n0 = ens.members[0].num_units
    g = ens.unit_gallery([(x, y)], [3, n0 + 5], k=3)
    assert g.names == [f"members.0.{ens.members[0].units[3][0]} #{ens.members[0].units[3][1]}",
                       f"members.1.{ens.members[1].units[5][0]} #{ens.members[1].units[5][1]}"]
    codes = ens.codes(x).detach()
    for row, u in enumerate([3, n0 + 5]):
        assert g.index[row].tolist() == sorted(range(10), key=lambda i: (-float(codes[i, u]), i))[:3]
    alone = nv.unit_gallery(ens.members[1], [(x, y)], [5], k=3)  # the member's own unit, found alone
    assert torch.equal(alone.index[0], g.index[1]) and torch.equal(alone.window[0], g.window[1])
    assert torch.equal(alone.heat[0], g.heat[1]) and torch.equal(alone.position[0], g.position[1])


class _DataModule:
    """What the gallery reads of a data module (the real ones are tested through `neuroview explain`):
    ``setup``, a shuffled ``train_dataloader`` and the ordered ``_loader("train")``."""

    def __init__(self, x, y):
        self.x, self.y, self.stages = x, y, []

    def setup(self, stage):
        self.stages.append(stage)

    def train_dataloader(self):
        perm = torch.randperm(len(self.x))
        return [(self.x[perm[i:i + 4]], self.y[perm[i:i + 4]]) for i in range(0, len(self.x), 4)]

    def _loader(self, split):
        assert split == "train"
        return [(self.x[i:i + 4], self.y[i:i + 4]) for i in range(0, len(self.x), 4)]


def test_data_module_reads_the_training_split_in_order():
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU()), 10, input_shape=(1, 8, 8)).eval()
    x, y = torch.randn(30, 1, 8, 8), torch.arange(30) % 10
    dm = _DataModule(x, y)
    g = nv.unit_gallery(net, dm, [1], k=3, max_samples=18)
    assert dm.stages == ["fit"] and g.index.max() < 18
    codes = net.codes(x[:18]).detach()[:, 1]
    assert g.index[0].tolist() == sorted(range(18), key=lambda i: (-float(codes[i]), i))[:3]
    assert torch.equal(g.x[0], x[g.index[0]]) and torch.equal(g.y[0], y[g.index[0]])


@pytest.mark.parametrize("units, match", [
    ([14], r"units: expected indices into the code vector \(net.units\) in \[0, 14\), got 14"),
    ([-1], r"in \[0, 14\), got -1"),
    ([("1", 9)], r"units: no unit \('1', 9\); the sites and their channel counts are \{'1': 6, '3': 8\}"),
    ([("nope", 0)], r"units: no unit"),
    ([], r"units: expected a non-empty list"),
    (["1"], r"units: expected"),
    ((3, 99), r"units: expected indices into the code vector \(net.units\) in \[0, 14\), got 99"),
    ([2.0], r"got 2.0"),
])
def test_units_that_do_not_exist(units, match):
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 6, 3), nn.ReLU(), nn.Conv1d(6, 8, 3), nn.ReLU()), 2,
                          input_shape=(1, 12)).eval()
    with pytest.raises(ValueError, match=match):
        nv.unit_gallery(net, [torch.randn(4, 1, 12)], units)


def test_units_of_every_spelling():
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 6, 3), nn.ReLU(), nn.Conv1d(6, 8, 3), nn.ReLU()), 2,
                          input_shape=(1, 12)).eval()
    x = [torch.randn(4, 1, 12)]
    want = [7, 2]
    for units in ([7, 2], (7, 2), torch.tensor([7, 2]), np.array([7, 2]), [("3", 1), 2]):
        assert nv.unit_gallery(net, x, units, k=1).units == want
    assert nv.unit_gallery(net, x, [7, 2, 7], k=1).units == [7, 2, 7]  # one row per unit asked, repeats too
    assert nv.unit_gallery(net, x, ("3", 1), k=1).units == [7] and nv.unit_gallery(net, x, 7, k=1).units == [7]


def test_other_bad_arguments():
    rnn = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), num_classes=2, max_len=8).eval()
    with pytest.raises(ValueError, match=r"units: expected steps of this NeuroView-RNN in \[0, 8\), got 8"):
        rnn.unit_gallery([torch.randn(3, 1, 8)], [8])
    with pytest.raises(ValueError, match="k: expected a positive int"):
        rnn.unit_gallery([torch.randn(3, 1, 8)], [0], k=0)
    with pytest.raises(TypeError, match="net: expected a NeuroViewCNN, a NeuroViewRNN or an Ensemble"):
        nv.unit_gallery(nn.Linear(2, 2), [torch.randn(3, 2)], [0])
    with pytest.raises(ValueError, match="loader: gave no samples"):
        rnn.unit_gallery([], [0])
    with pytest.raises(ValueError, match="max_samples: expected a positive int"):
        rnn.unit_gallery([torch.randn(3, 1, 8)], [0], max_samples=0)


def test_a_lazily_wrapped_network_finds_its_units_on_the_first_batch():
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU()), 2).eval()
    assert net.sites is None
    g = nv.unit_gallery(net, [torch.randn(5, 1, 9)], [("1", 2)], k=2)
    assert g.units == [2] and net.sites is not None


def test_gallery_keeps_k_at_most_the_samples_and_the_modes():
    net = _sign_net().train()
    g = net.unit_gallery([_series_with_positives([1, 2])], [0], k=6)
    assert g.k == 2 and len(g) == 1 and g.row(0) == 0 and g.row(1) is None
    assert net.training and all(m.training for m in net.modules())


def test_waterfall_units_are_the_bars_of_each_waterfall():
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 6, 3), nn.ReLU()), 3, input_shape=(1, 12)).eval()
    exp = net.explain(torch.randn(5, 1, 12))
    got = waterfall_units(exp, [0, 3], k=2)
    want = []
    for s in (0, 3):
        v = exp.contributions[s, exp.predicted[s]]
        want += [u for u in v.abs().topk(2).indices.tolist() if u not in want]
    assert got == want


class _SequenceFirst(nn.Module):
    """A conv, then ``[T, B, C]`` (nn.Transformer's layout) through an MLP; ``folded``: as ``[T * B, C]`` rows."""

    def __init__(self, folded: bool):
        super().__init__()
        self.folded, self.stem, self.fc1, self.act = folded, nn.Conv1d(2, 6, 3, padding=1), nn.Linear(6, 5), nn.ReLU()

    def forward(self, x):
        t = self.stem(x).permute(2, 0, 1)
        return self.act(self.fc1(t.reshape(-1, 6) if self.folded else t))


@pytest.mark.parametrize("folded", [False, True])
def test_positions_and_windows_of_sequence_first_sites_are_the_sample_s_own(folded):
    """The gallery's strongest position and input window of a site whose samples are not on dim 0 (it read
    another sample's rows: positions off, windows of 0 or 12 steps where a 3-tap conv reads 3)."""
    torch.manual_seed(1)
    bb, x = _SequenceFirst(folded), torch.randn(8, 2, 12)
    net = nv.wrap(bb, num_classes=2, example_input=x).eval()
    g = nv.unit_gallery(net, [(x, torch.arange(8) % 2)], units=[0, 3], k=3)
    with torch.no_grad():
        z = bb.fc1(bb.stem(x).permute(2, 0, 1))  # [T, B, 5], computed here without the gallery's code
    for r, u in enumerate([0, 3]):
        want = torch.stack([z[:, i, u].argmax() for i in g.index[r].tolist()])
        assert torch.equal(g.position[r], want)
        lo, hi = (want - 1).clamp(min=0), (want + 2).clamp(max=12)  # the 3 steps the conv reads, cut at the ends
        assert torch.equal(g.window[r, :, 0], torch.stack([lo, hi], 1))
