"""The report on the edges of its data (P6 findings 3, 5; R4 findings 1, 2): an empty batch is refused by name before any work, and a
class that adds nothing is left out of ``layer_shares.csv`` (captioned "rows sum to 1") and named, not written as a
row of zeros. Expected values are built here by hand."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.attribution.export import read_csv  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402
from neuroview.viz.report_data import explain_batches  # noqa: E402


def _net(classes: int = 3):
    torch.manual_seed(0)
    x = torch.randn(12, 1, 16)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU(), nn.Conv1d(4, 4, 3), nn.ReLU()), classes,
                          normalize=False)
    net(x)
    return net.eval(), x, torch.arange(12) % classes


# ------------------------------------------------------------------- 3. an empty batch
def test_write_report_refuses_an_empty_batch_by_name(tmp_path):
    net, x, y = _net()
    keep = y == 5  # no sample of class 5: a filter that kept nothing
    out = tmp_path / "r"
    with pytest.raises(ValueError, match=r"^x: expected at least one sample to explain, got an empty batch of shape "
                                         r"\(0, 1, 16\)"):  # was a bare IndexError from inside explain_batches
        write_report(net, x[keep], y[keep], out, progress=False)
    assert not out.exists()


def test_explain_batches_refuses_an_empty_batch_by_name():
    net, x, _ = _net()
    with pytest.raises(ValueError, match=r"^x: expected at least one sample to explain, got an empty batch of shape "
                                         r"\(0, 1, 16\)"):
        explain_batches(net, x[:0])


# ------------------------------------------------------------------- 5. a class that adds nothing
def test_layer_shares_csv_leaves_out_and_names_a_class_that_adds_nothing(tmp_path):
    net, x, y = _net()
    with torch.no_grad():
        net.classifier.weight[2] = 0.0  # class 2 reads no unit, as a sparse head can leave one
    out = tmp_path / "r"
    write_report(net, x, y, out, examples=0, progress=False)
    rows = read_csv(out / "layer_shares.csv")
    assert [r["class"] for r in rows] == ["0", "1"]  # was also '2' with every share 0, under "rows sum to 1"
    for r in rows:
        assert sum(v for k, v in r.items() if k != "class") == pytest.approx(1.0)
    meta = json.loads((out / "report.json").read_text(encoding="utf-8"))
    caption = next(t["description"] for t in meta["tables"] if t["file"] == "layer_shares.csv")
    assert "rows sum to 1" in caption and "add nothing" in caption and caption.endswith("(2)")


def test_layer_shares_of_a_class_that_adds_nothing_is_a_row_of_zeros():
    """The function's own rows keep their shape, documented: zeros where nothing is shared (the figure and the report
    name such a class)."""
    from neuroview.attribution.importance import layer_shares  # noqa: PLC0415

    shares, _ = layer_shares(torch.tensor([[1.0, 3.0], [0.0, 0.0]]))
    assert shares.tolist() == [[0.25, 0.75], [0.0, 0.0]]
    assert "all zeros" in layer_shares.__doc__


# ------------------------------------------------------------------- R4 findings 1, 2: every class silent; captions
def test_write_report_of_only_classes_that_add_nothing_writes_layer_shares_with_its_header(tmp_path):
    net, x, y = _net()
    with torch.no_grad():
        net.classifier.weight[2] = 0.0
    out = tmp_path / "r"
    keep = y == 2  # the samples of the class that adds nothing: the filter the empty-batch refusal names
    write_report(net, x[keep], y[keep], out, examples=0, progress=False)  # was "records: expected at least one row"
    lines = (out / "layer_shares.csv").read_text(encoding="utf-8").splitlines()
    assert lines == ["class,1,3"]  # the header (class, then the net's two ReLU sites, modules 1 and 3), no row
    meta = json.loads((out / "report.json").read_text(encoding="utf-8"))
    caption = next(t["description"] for t in meta["tables"] if t["file"] == "layer_shares.csv")
    assert "no sample here are left out (0, 1)" in caption and "add nothing here" in caption and caption.endswith("(2)")


def test_write_report_of_an_all_zero_head_without_labels_is_written(tmp_path):
    net, x, _ = _net()
    with torch.no_grad():
        net.classifier.weight.zero_()
    out = tmp_path / "r"
    write_report(net, x, None, out, examples=0, progress=False)  # was "records: expected at least one row"
    assert read_csv(out / "layer_shares.csv") == []
    meta = json.loads((out / "report.json").read_text(encoding="utf-8"))
    caption = next(t["description"] for t in meta["tables"] if t["file"] == "layer_shares.csv")
    assert caption.endswith("add nothing here (every contribution 0) are left out (0, 1, 2)")


def test_rnn_time_tables_keep_a_class_that_adds_nothing_and_their_captions_say_so(tmp_path):
    torch.manual_seed(0)
    rnn = nv.wrap(nn.GRU(1, 4, batch_first=True), num_classes=3, max_len=6)
    x = torch.randn(9, 6, 1)
    rnn.train()
    with torch.no_grad():
        rnn(x)
    rnn.eval()
    with torch.no_grad():
        rnn.classifier.weight[2] = 0.0  # class 2 reads no hidden feature: every contribution of it is 0
    out = tmp_path / "r"
    write_report(rnn, x, torch.arange(9) % 3, out, examples=0, progress=False)
    captions = {t["file"]: t["description"]
                for t in json.loads((out / "report.json").read_text(encoding="utf-8"))["tables"]}
    assert [r["class"] for r in read_csv(out / "layer_shares.csv")] == ["0", "1"]
    assert "add nothing" in captions["layer_shares.csv"]
    for name in ("time_importance.csv", "layer_time.csv"):
        rows = read_csv(out / name)
        assert rows and all(r["2"] == 0 for r in rows)  # class 2's true signed mean: 0 at every step
        assert "add nothing" not in captions[name] and "left out" not in captions[name]  # was "... left out (2)"
