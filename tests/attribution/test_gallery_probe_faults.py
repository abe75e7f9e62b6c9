"""neuroview.attribution.gallery and its figures, as probed a second time: windows do not depend on the
caller's grad mode; empty batches are skipped; an RNN's class means leave padding out (NaN where no series
reaches); a sparse class's negative weights are among its top units; only a window read through circular
padding is refused; a report over an MLP leaves the thumbnails out; lengths as a list; batches of two sizes,
``units=1.0``, ``thumbs=0`` named; ``k`` larger than the samples read. Expected answers are computed here,
by hand or with torch's own layers, not with the gallery."""

from __future__ import annotations

import json
import re

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.viz import plots  # noqa: E402
from neuroview.viz.gallery import unit_gallery_plot  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402

torch.set_num_threads(1)


def _sign_net() -> nv.NeuroViewCNN:
    """Conv1d(1, 2, 1) of weights +1 and -1, no bias, then a ReLU: unit 0's code is the share of positive
    samples of a series, unit 1's the share of negative ones."""
    conv = nn.Conv1d(1, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[1.0]], [[-1.0]]]))
    return nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, input_shape=(1, 10)).eval()


def _positives(counts: list[int]) -> torch.Tensor:
    """One series of 10 per count, with exactly that many positive samples (the rest negative)."""
    x = -torch.rand(len(counts), 1, 10) - 0.1
    for i, n in enumerate(counts):
        x[i, 0, torch.randperm(10)[:n]] *= -1
    return x


def _thumbs(fig) -> int:
    return sum(1 for ax in fig.axes for p in ax.patches if p.get_gid() == "thumbnail")


def test_windows_are_the_same_under_no_grad_and_inference_mode():
    """Under no_grad every window was the whole input (0, 12): the pre-activation was indexed without a graph."""
    torch.manual_seed(0)
    conv = nn.Conv1d(1, 3, 3)
    net = nv.NeuroViewCNN(nn.Sequential(conv, nn.ReLU()), 2, input_shape=(1, 12)).eval()
    x = torch.randn(6, 1, 12)
    z = F.conv1d(x, conv.weight, conv.bias).detach()  # [6, 3, 10] the pre-activations, by torch's own conv
    for mode in (torch.enable_grad, torch.no_grad, torch.inference_mode):
        with mode():
            g = nv.unit_gallery(net, x, units=[0, 1, 2], k=3)
        for u in range(3):
            peak = z[g.index[u], u].argmax(-1)  # the strongest position of each of its samples
            assert torch.equal(g.window[u, :, 0], torch.stack([peak, peak + 3], -1)), mode.__name__


def test_an_empty_batch_is_skipped_not_the_end_of_the_data():
    """An empty middle batch ended the scan (samples 4..9 never ranked); an empty first one was "no samples"."""
    torch.manual_seed(1)
    counts = [3, 1, 2, 0, 9, 4, 8, 2, 6, 5]
    x, y = _positives(counts), torch.arange(10) % 2
    by_hand = sorted(range(10), key=lambda i: (-counts[i], i))  # most positives first, ties to the lower index
    for batches in ([(x[:4], y[:4]), (x[4:4], y[4:4]), (x[4:], y[4:])], [(x[:0], y[:0]), (x, y)]):
        g = nv.unit_gallery(_sign_net(), batches, units=[0], k=4)
        assert g.index[0].tolist() == by_hand[:4]
    # max_samples still stops the scan, empty batches on the way not counted
    g = nv.unit_gallery(_sign_net(), [(x[:4], y[:4]), (x[:0], y[:0]), (x[4:], y[4:])], [0], k=3, max_samples=6)
    assert g.index[0].tolist() == sorted(range(6), key=lambda i: (-counts[i], i))[:3]


def test_rnn_class_means_leave_padding_out_and_are_nan_where_no_series_reaches():
    """NaN padding made the means NaN from the first padded position on; positions no series of the class
    reaches were 0.0 (a flat line at 0) where importance.class_means says NaN."""
    torch.manual_seed(2)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), num_classes=3, max_len=10).eval()
    lengths, y = torch.tensor([10, 4, 6, 10, 3, 8, 10, 5, 2]), torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 2])
    x = torch.randn(9, 1, 10)
    x = x.masked_fill(torch.arange(10) >= lengths[:, None, None], float("nan"))  # NaN padding (explain takes it)
    g = nv.unit_gallery(net, [(x, lengths, y)], units=[0], k=2)
    want = torch.full((3, 1, 10), float("nan"))
    for c in range(3):
        for t in range(10):
            vals = [float(x[i, 0, t]) for i in range(9) if int(y[i]) == c and int(lengths[i]) > t]
            if vals:
                want[c, 0, t] = sum(vals) / len(vals)
    torch.testing.assert_close(g.class_means, want, equal_nan=True)
    assert g.class_means[2, 0, 2:].isnan().all() and g.class_means[0].isfinite().all()
    # drawn: each class's curve has its reached positions, the NaN ones left as gaps (not every point NaN)
    means_ax = unit_gallery_plot(g).axes[0]
    ys = [torch.as_tensor(line.get_ydata()) for line in means_ax.lines]
    assert [int(v.isfinite().sum()) for v in ys] == [10, 10, 2]


def test_top_units_shows_every_unit_a_sparse_class_reads():
    """topk over signed weights ranked zero weights above -0.5, then dropped them: the class's -0.5 vanished."""
    torch.manual_seed(3)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU()), 3, input_shape=(1, 12), normalize=False).eval()
    w = torch.zeros(3, 8)
    w[0, 2], w[0, 5] = 1.0, -0.5  # reads 2 units
    w[1, 1] = 0.7
    w[2] = torch.tensor([0.3, -0.9, 0.0, 0.8, -0.1, 0.2, 0.5, -0.4])  # reads 7: the 5 largest shown
    with torch.no_grad():
        net.classifier.weight.copy_(w)
    fig = plots.top_units(net, k=5, standardized=False)
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_title().startswith("class")}
    want = {"class 0": [2, 5], "class 1": [1], "class 2": [3, 6, 0, 5, 4]}  # by hand: largest signed, zeros out
    for title, units in want.items():
        ax = panels[title]
        assert [t.get_text() for t in ax.get_yticklabels()] == [f"1 #{u}" for u in units]
        assert [p.get_width() for p in ax.patches] == pytest.approx([float(w[int(title[-1]), u]) for u in units])


def _circular(dilation: int, padding: int, mode: str, after: bool) -> nv.NeuroViewCNN:
    """A 3-tap all-ones conv of ``dilation``; ``after``: a circular conv follows it (after its site)."""
    layers = [nn.Conv1d(1, 1, 3, dilation=dilation, padding=padding, padding_mode=mode, bias=False), nn.ReLU()]
    if after:
        layers += [nn.Conv1d(1, 2, 3, padding=1, padding_mode="circular"), nn.ReLU()]
    with torch.no_grad():
        layers[0].weight.fill_(1.0)
    return nv.NeuroViewCNN(nn.Sequential(*layers), 2, input_shape=(1, 20)).eval()


def test_only_a_window_read_through_circular_padding_is_refused():
    """Any circular module anywhere refused every unit, and a dilated unit's gaps read as a wrap."""
    x = torch.zeros(1, 1, 20)
    x[0, 0, [2, 10, 18]] = 1.0
    # a dilated conv, no padding, a circular layer after its site: taps 2, 10, 18 of output position 2
    g = nv.unit_gallery(_circular(8, 0, "zeros", after=True), x, units=[("1", 0)], k=1)
    assert g.window[0, 0, 0].tolist() == [2, 19] and int(g.position[0, 0]) == 2
    # a circular dilated conv at output position 10 reads 2, 10 and 18: inside the input, no wrap
    g = nv.unit_gallery(_circular(8, 8, "circular", after=False), x, units=[0], k=1)
    assert g.window[0, 0, 0].tolist() == [2, 19] and int(g.position[0, 0]) == 10
    # at output position 0 it reads -8 (= 12 around the end), 0 and 8: a wrap, refused
    x2 = torch.zeros(1, 1, 20)
    x2[0, 0, [0, 8, 12]] = 1.0
    with pytest.raises(ValueError, match=r"net: unit '1 #0' .* reads input positions \[0, 8, 12\] of input dimension 0, "
                                         r"around the input's end \(padding_mode='circular' of module 'backbone.0'\)"):
        nv.unit_gallery(_circular(8, 8, "circular", after=False), x2, units=[0], k=1)


def test_a_report_over_an_mlp_writes_the_gallery_table_and_says_why_no_thumbnails(tmp_path, capsys):
    """The whole report failed: "gallery: expected samples with 1 ... or 2 ... spatial dims to draw"."""
    torch.manual_seed(4)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5), nn.ReLU()), 3,
                          input_shape=(6,)).eval()
    x, y = torch.randn(30, 6), torch.arange(30) % 3
    out = tmp_path / "r"
    files = write_report(net, x[:9], y[:9], out, progress=True, examples=2, dpi=30, gallery_data=[(x, y)])
    assert "unit_gallery.csv" in files and "unit_gallery.png" not in files
    assert any(f.startswith("waterfall_") for f in files)
    rows = (out / "unit_gallery.csv").read_text().splitlines()
    assert rows[0] == "unit,rank,sample,value,class,window" and len(rows) > 1
    meta = json.loads((out / "report.json").read_text())
    assert not [f for f in meta["figures"] if f["section"] == "Units with a face"]
    assert "thumbnails are left out" in (out / "index.html").read_text()
    done, total = map(int, re.findall(r"(\d+)/(\d+)", capsys.readouterr().err)[-1])
    assert done == total  # the progress bar counts the figure left out no more


def test_rnn_lengths_as_a_list_are_read_as_explain_reads_them():
    """A bare AttributeError: 'list' object has no attribute 'to'."""
    torch.manual_seed(5)
    net = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), num_classes=2, max_len=10).eval()
    x, y, lengths = torch.randn(6, 1, 10), torch.arange(6) % 2, [10, 5, 3, 10, 1, 2]
    g = nv.unit_gallery(net, [(x, lengths, y)], units=[1], k=3)
    exp = net.explain(x.transpose(1, 2), torch.tensor(lengths))
    value = exp.time_importance[torch.arange(6), exp.predicted][:, 1]
    order = sorted([i for i in range(6) if lengths[i] > 1], key=lambda i: (-abs(float(value[i])), i))[:3]
    assert g.index[0].tolist() == order and g.lengths[0].tolist() == [lengths[i] for i in order]


def test_batches_of_two_sizes_are_named():
    """A bare "Sizes of tensors must match" from the running top k's pool of samples."""
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU()), 2, input_shape=(1, 12)).eval()
    a, b = torch.randn(4, 1, 12), torch.randn(4, 1, 16)
    with pytest.raises(ValueError, match=r"loader: expected samples of one shape, got \(1, 12\) in the first batch and "
                                         r"\(1, 16\) from sample 4 on; .* pad or crop them to one size"):
        nv.unit_gallery(net, [(a, torch.zeros(4).long()), (b, torch.ones(4).long())], units=[0, 1], k=3)


def test_units_that_are_no_list_nor_index_are_named():
    """A bare TypeError: object of type 'float' has no len()."""
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU()), 2, input_shape=(1, 12)).eval()
    for bad in (1.0, True, None):
        with pytest.raises(ValueError, match=r"units: expected a non-empty list of unit indices .*got " + re.escape(repr(bad))):
            nv.unit_gallery(net, torch.randn(4, 1, 12), units=bad, k=2)


def test_thumbs_must_be_a_positive_int():
    """0, -2 and True drew one thumbnail per bar; 2.5 a bare TypeError."""
    torch.manual_seed(7)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 3, 3), nn.ReLU()), 2, input_shape=(1, 12)).eval()
    x = torch.randn(4, 1, 12)
    g, exp = nv.unit_gallery(net, x, units=[0, 1, 2], k=3), net.explain(x)
    for bad in (0, -2, True, 2.5):
        with pytest.raises(ValueError, match=r"thumbs: expected a positive int, got " + re.escape(repr(bad))):
            plots.waterfall(exp, 0, gallery=g, thumbs=bad)
        with pytest.raises(ValueError, match=r"thumbs: expected a positive int, got " + re.escape(repr(bad))):
            plots.top_units(net, k=2, gallery=g, thumbs=bad)
    bars = int((exp.for_class()[0] != 0).sum())  # every unit with a bar is in the gallery
    assert _thumbs(plots.waterfall(exp, 0, gallery=g, thumbs=2)) == bars * 2


def test_k_above_the_samples_read_gives_as_many_places_as_samples_cnn_and_rnn_alike():
    """Documented: g.k == min(k, samples read); an RNN step's places past the series that reach it are empty."""
    torch.manual_seed(6)
    counts = [3, 7, 1, 9, 5]
    g = nv.unit_gallery(_sign_net(), _positives(counts), units=[0], k=8)
    assert g.k == 5 and g.index[0].tolist() == [3, 1, 4, 0, 2]  # by hand: most positives first
    rnn = nv.NeuroViewRNN(nn.GRU(1, 4, batch_first=True), num_classes=2, max_len=10).eval()
    lengths = torch.tensor([10, 10, 2, 10, 10])
    g = nv.unit_gallery(rnn, [(torch.randn(5, 1, 10), lengths, torch.arange(5) % 2)], units=[5], k=8)
    assert g.k == 5 and g.index[0, -1] == -1 and sorted(g.index[0, :4].tolist()) == [0, 1, 3, 4]
