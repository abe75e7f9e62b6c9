"""neuroview.attribution.gallery, as probed: an RNN step's gallery holds only series that reach the step,
with windows cut at their ends; a window that wraps around the input (circular padding) is an error, not
the whole input; a shuffled loader or a user's data module is read in order and whole; integer inputs,
an MLP's [B, F] inputs, 3-D inputs in a plot and a tensor channel are named or handled."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, SubsetRandomSampler, TensorDataset  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.viz.gallery import thumbnails, unit_gallery_plot  # noqa: E402
from nets import with_running_stats  # noqa: E402

torch.set_num_threads(1)


def _padded_rnn():
    """A GRU of 4 steps of 3 samples whose states sit near +1 in every series, so that the training mean
    state is far from 0: against it, a padded step "contributes" -W @ mean, far more than any real step."""
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), num_classes=2, max_len=12, window=3)
    with torch.no_grad():
        net.rnn.bias_ih_l0[8:].fill_(3.0)  # candidate near +1
        net.rnn.bias_ih_l0[4:8].fill_(-5.0)  # update gate open to it
    for _ in range(40):
        with_running_stats(net, torch.randn(64, 12, 1))
    return net


def _series(lengths):
    x = torch.randn(len(lengths), 1, 12)
    for i, n in enumerate(lengths.tolist()):
        x[i, :, n:] = 0
    return x


def test_an_rnn_step_ranks_only_the_series_that_reach_it():
    """Step 3 reads samples 9..11: the 20 series of length 4 never reach it (before: all five places were
    length-4 series of value -3.7 against the mean, with windows [9, 12) over padding)."""
    net = _padded_rnn()
    lengths = torch.tensor([12] * 6 + [4] * 20 + [10] * 4)
    x, y = _series(lengths), torch.arange(30) % 2
    g = nv.unit_gallery(net, (x, lengths, y), [3, 2], k=5, baseline="mean")
    exp = net.explain(x.transpose(1, 2), lengths, baseline="mean")
    value = exp.time_importance[torch.arange(30), exp.predicted]
    for row, t in enumerate([3, 2]):
        reach = [i for i in range(30) if lengths[i] > 3 * t]  # by hand: series longer than the step's start
        order = sorted(reach, key=lambda i: (-abs(float(value[i, t])), i))[:5]
        assert g.index[row].tolist() == order
        torch.testing.assert_close(g.value[row], value[order, t])
        assert torch.equal(g.lengths[row], lengths[order]) and torch.equal(g.y[row], y[order])
    # each window is the step's samples cut at the series' end: [9, 12) of a 12, [9, 10) of a 10
    assert g.window[0, :, 0].tolist() == [[9, min(12, int(lengths[i]))] for i in g.index[0].tolist()]
    assert g.reads.tolist() == [[9, 12], [6, 9]]


def test_a_step_fewer_than_k_series_reach_leaves_its_last_places_empty():
    """Three series reach step 3 (before: two series of length 4, value 0, filled the gallery)."""
    torch.manual_seed(2)
    net = nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), num_classes=2, max_len=12, window=3).eval()
    lengths = torch.tensor([4, 12, 4, 7, 11, 4, 10, 4])
    x, y = _series(lengths), torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    g = nv.unit_gallery(net, [(x, lengths, y)], [3, 2], k=5)
    exp = net.explain(x.transpose(1, 2), lengths)
    value = exp.time_importance[torch.arange(8), exp.predicted, 3]
    order = sorted([1, 4, 6], key=lambda i: (-abs(float(value[i])), i))
    assert g.index[0].tolist() == order + [-1, -1]
    assert g.value[0, 3:].isnan().all() and g.y[0, 3:].tolist() == [-1, -1] and g.lengths[0, 3:].tolist() == [0, 0]
    assert (g.x[0, 3:] == 0).all() and g.window[0, 3:, 0].tolist() == [[9, 9], [9, 9]]
    # step 2 reads 6..8: the length-7 series gets [6, 7), not [6, 9)
    seven = g.index[1].tolist().index(3)
    assert g.window[1, seven, 0].tolist() == [6, 7]
    fig = unit_gallery_plot(g)  # the empty places are left blank
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(fig.axes) == 2 * 6 and len(titled) == 3 + 4  # step 3: 3 samples; step 2: 4 reach it
    host = Figure().add_subplot()
    assert thumbnails(host, g, {0.0: 3}, m=6) == 1 + 3  # the class means, then the 3 samples


def test_a_window_around_a_circular_input_is_an_error_not_the_whole_input():
    """Position 0 of a 3-tap circular convolution reads inputs 11, 0 and 1 (before: the window (0, 12))."""
    conv = nn.Conv1d(1, 1, 3, padding=1, padding_mode="circular", bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[0.1, 1.0, 0.1]]]))
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, input_shape=(1, 12), quantizer="none").eval()
    x = torch.rand(4, 1, 12)
    x[:, 0, 5] += 10  # the strongest position is 5: inside, the window is the three taps
    assert nv.unit_gallery(net, x, [0], k=2).window[0, :, 0].tolist() == [[4, 7], [4, 7]]
    x[:, 0, 5] -= 10
    x[:, 0, 0] += 10  # now it is 0, whose taps wrap around the end
    with pytest.raises(ValueError, match=r"net: unit '1 #0' .* reads input positions \[0, 1, 11\] .*"
                                         r"padding_mode='circular' of module 'backbone.0'"):
        nv.unit_gallery(net, x, [0], k=2)


def _codes_net():
    torch.manual_seed(0)
    return nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU()), 2, input_shape=(1, 10), quantizer="none").eval()


class _UserModule:
    """A user's data module: ``setup`` and a shuffled ``train_dataloader`` that drops its last batch."""

    def __init__(self, ds):
        self.ds = ds

    def setup(self, stage=None):
        pass

    def train_dataloader(self):
        return DataLoader(self.ds, batch_size=4, shuffle=True, drop_last=True)


def test_a_shuffled_loader_and_a_user_data_module_are_read_in_order_and_whole():
    """Before: the index named the shuffled order (index [15, 13, 19, 9], the samples shown rows [6, 2, 5, 12])
    and drop_last left one of 21 samples out."""
    net = _codes_net()
    x, y = torch.randn(21, 1, 10), torch.arange(21) % 2
    ds = TensorDataset(x, y)
    codes = net.codes(x).detach()[:, 1]
    want = sorted(range(21), key=lambda i: (-float(codes[i]), i))
    torch.manual_seed(3)
    for loader in (DataLoader(ds, batch_size=4, shuffle=True), DataLoader(ds, batch_size=4, drop_last=True),
                   _UserModule(ds)):
        g = nv.unit_gallery(net, loader, [1], k=21)
        assert g.k == 21 and g.index[0].tolist() == want
        assert torch.equal(g.x[0], x[want]) and torch.equal(g.y[0], y[want])
    subset = DataLoader(ds, batch_size=4, sampler=SubsetRandomSampler(range(10)))
    with pytest.raises(ValueError, match=r"loader: expected a DataLoader that reads its dataset in order.*SubsetRandomSampler"):
        nv.unit_gallery(net, subset, [1], k=3)


class _TokenCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.conv, self.act = nn.Embedding(20, 4), nn.Conv1d(4, 3, 3), nn.ReLU()

    def forward(self, ids):
        return self.act(self.conv(self.emb(ids).transpose(1, 2)))


def test_integer_inputs_are_named_by_their_dtype():
    """Before: a bare RuntimeError "only Tensors of floating point dtype can require gradients"."""
    ids = torch.randint(0, 20, (6, 12))
    net = nv.NeuroViewCNN(_TokenCNN(), 2, example_input=ids).eval()
    with pytest.raises(ValueError, match=r"loader: expected floating-point inputs .*got dtype torch.int64"):
        nv.unit_gallery(net, (ids, torch.arange(6) % 2), [0], k=2)


def test_an_mlp_gallery_ranks_by_code_and_has_no_map_to_stretch():
    """Before: a bare NotImplementedError of F.interpolate on a 2-D tensor."""
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU()), 2,
                          input_shape=(6,), quantizer="none").eval()
    x = torch.randn(8, 6)
    g = nv.unit_gallery(net, (x, torch.arange(8) % 2), [0, ("3", 2)], k=3)
    with torch.no_grad():
        h = torch.relu(net.backbone[0](x))
        second = torch.relu(net.backbone[2](h))[:, 2]  # channel 2 of the second layer, by hand
    assert g.index[1].tolist() == second.argsort(descending=True, stable=True)[:3].tolist()
    assert g.window.shape == (2, 3, 0, 2) and g.heat.shape == (2, 3) and g.heat.isnan().all()
    with pytest.raises(ValueError, match=r"gallery: expected samples with 1 .* or 2 .* spatial dims to draw, got 0"):
        unit_gallery_plot(g)


def test_a_plot_of_a_conv3d_gallery_names_the_input_rank():
    """Before: a bare ValueError "too many values to unpack (expected 1)"."""
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU()), 2, input_shape=(1, 4, 5, 5)).eval()
    g = nv.unit_gallery(net, torch.randn(5, 1, 4, 5, 5), [0, 1], k=2)
    with pytest.raises(ValueError, match=r"spatial dims to draw, got 3 \(samples of shape \(1, 4, 5, 5\)\)"):
        unit_gallery_plot(g)
    with pytest.raises(ValueError, match=r"spatial dims to draw, got 3"):
        thumbnails(Figure().add_subplot(), g, {0.0: 0})


def test_a_pair_with_a_tensor_channel_names_its_unit():
    """Before: "units: no unit ('3', tensor(1))" (a tensor hashes by identity)."""
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU(), nn.Conv1d(3, 2, 3), nn.ReLU()), 2,
                          input_shape=(1, 10)).eval()
    x = torch.randn(6, 1, 10)
    want = net.units.index(("3", 1))
    assert nv.unit_gallery(net, x, [("3", torch.tensor(1))], k=2).units == [want]
    with pytest.raises(ValueError, match=r"units: no unit"):
        nv.unit_gallery(net, x, [("3", torch.tensor(1.0))], k=2)
