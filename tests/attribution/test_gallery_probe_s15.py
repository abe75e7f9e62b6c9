"""neuroview.attribution.gallery and write_report, as probed (s15): a CNN gallery's batch (x, y, other) is named
as readability names it, not read with ``other`` as the labels; batches with and without labels mixed are
named; a (site, channel) pair's channel must be an integer, and ``UnitGallery.row`` takes what ``units=``
takes and the gallery's own names; a CNN report checks its ``lengths`` and says it does not use them."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402

torch.set_num_threads(1)


def _cnn() -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    return nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 16)).eval()


def _data(n: int = 20):
    torch.manual_seed(1)
    return torch.randn(n, 1, 16), torch.arange(n) % 3


def test_a_cnn_gallery_names_a_batch_whose_middle_item_is_no_lengths():
    net, (x, y) = _cnn(), _data(25)
    # the lengths were read as the labels: g.y held 2s for samples of classes 1 and 0
    with pytest.raises(ValueError, match=r"loader: a batch of 3 items is read as \(x, lengths, y\).*pass batches"):
        nv.unit_gallery(net, [(x, y, torch.full((25,), 2))], units=[0], k=3)
    g = nv.unit_gallery(net, [(x, torch.full((25,), 16), y)], units=[0, 1], k=3)  # real lengths still pass
    assert torch.equal(g.y, y[g.index])


@pytest.mark.parametrize("order", ["labelled first", "unlabelled first"])
@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_batches_with_and_without_labels_mixed_are_named(order, kind):
    x, y = _data()
    net = _cnn() if kind == "cnn" else nv.create_model("nv_gru", num_classes=3, in_channels=1, max_len=16).eval()
    units = [0, 1] if kind == "cnn" else [3]
    batches = [(x[:10], y[:10]), x[10:]] if order == "labelled first" else [x[:10], (x[10:], y[10:])]
    # labelled first: g.y kept stale labels (wrong even for labelled samples); else a bare KeyError('y')
    with pytest.raises(ValueError, match="loader: expected every batch to carry labels or none.*at sample 10"):
        nv.unit_gallery(net, batches, units=units, k=3)
    g = nv.unit_gallery(net, [(x[:10], y[:10]), (x[10:], y[10:])], units=units, k=3)  # all labelled: right
    assert torch.equal(g.y, y[g.index])
    assert nv.unit_gallery(net, [x[:10], x[10:]], units=units, k=3).y is None


@pytest.mark.parametrize("units", [[("1", True)], [("1", False)], [("1", 2.0)], ("1", 1.0)])
def test_a_pairs_channel_must_be_an_integer(units):
    net, (x, y) = _cnn(), _data()
    with pytest.raises(ValueError, match=r"units: no unit \(.1., .*\): expected \(site, channel\) pairs with an int"):
        nv.unit_gallery(net, [(x, y)], units=units, k=2)
    g = nv.unit_gallery(net, [(x, y)], units=[("1", torch.tensor(2)), ("1", 3)], k=2)  # integers of any kind pass
    assert g.units == [2, 3]


def test_row_takes_what_units_takes_and_the_gallerys_names():
    net, (x, y) = _cnn(), _data()
    g = nv.unit_gallery(net, [(x, y)], units=[1, ("1", 2)], k=2)
    assert g.names == ["1 #1", "1 #2"]
    assert [g.row(u) for u in (1, 2, torch.tensor(2), ("1", 2), ["1", 1], "1 #2", "1 #1")] == [0, 1, 1, 1, 0, 1, 0]
    assert [g.row(u) for u in (0, 3, ("1", 0), "1 #0")] == [None] * 4  # valid, not in the gallery
    for text in ("0", "step 1"):  # an index as text was None without a word (a review); a step is no CNN unit
        with pytest.raises(ValueError, match=rf"unit: expected one of the gallery's names .*got the text '{text}'"):
            g.row(text)
    for bad in (1.7, 1.0, True, ("1", 2.0), ("1", True), None, [1, 2]):  # 1.7 and True were row 0, a pair a TypeError
        with pytest.raises(ValueError, match=r"unit: expected an integer index, a \(site, channel\) pair .*'1 #2'\]"):
            g.row(bad)
    rnn = nv.create_model("nv_gru", num_classes=3, in_channels=1, max_len=16).eval()
    s = nv.unit_gallery(rnn, [(x, y)], units=[3], k=2)
    assert (s.row(3), s.row("step 3"), s.row(2)) == (0, 0, None)
    with pytest.raises(ValueError, match=r"unit: expected an integer step or one of the gallery's names \['step 3'\]"):
        s.row(("1", 3))


@pytest.mark.parametrize("lengths", [[3, 16], [0, 99, 1, 1, 1, 1], [1.0] * 6, [[16] * 6]])
def test_a_cnn_report_refuses_malformed_lengths(tmp_path, lengths):
    net, (x, y) = _cnn(), _data(6)
    with pytest.raises(ValueError, match=r"lengths: expected one integer per sample of x \(6\) in \[1, 16\]"):
        write_report(net, x, y, tmp_path / "r", lengths=torch.tensor(lengths), progress=False, examples=0, dpi=20)
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_a_cnn_report_warns_once_that_it_does_not_use_lengths(tmp_path):
    net, (x, y) = _cnn(), _data(6)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        files = write_report(net, x, y, tmp_path / "r", lengths=torch.tensor([3, 16, 5, 16, 2, 9]), progress=False,
                             examples=0, dpi=20)
    said = [w for w in seen if "does not use lengths" in str(w.message)]
    assert len(said) == 1 and said[0].category is UserWarning and said[0].filename == __file__
    assert "index.html" in files
    with warnings.catch_warnings(record=True) as seen:  # no lengths: no word of them
        warnings.simplefilter("always")
        write_report(net, x, y, tmp_path / "n", progress=False, examples=0, dpi=20)
    assert not [w for w in seen if "lengths" in str(w.message)]
