"""The `neuroview explain` report shows the gallery of every unit (step) in its waterfalls, from the
training data: beside each bar, in unit_gallery.png, and as the unit_gallery.csv table."""

import json
import re

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.attribution import export  # noqa: E402
from neuroview.attribution.gallery import waterfall_units  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402
from nets import with_running_stats  # noqa: E402


def _check(out, files, kind: str, net, train, picks_exp):
    meta = json.loads((out / "report.json").read_text())
    faces = [f for f in meta["figures"] if f["section"] == "Units with a face"]
    assert [f["file"] for f in faces] == ["unit_gallery.png"] and (out / "unit_gallery.png").stat().st_size > 0
    assert "unit_gallery.csv" in files and "unit_gallery.png" in (out / "index.html").read_text()
    waterfalls = [f for f in meta["figures"] if f["file"].startswith("waterfall_")]
    assert waterfalls and all("top training samples" in f["caption"] for f in waterfalls)
    # the gallery covers exactly the units of the waterfalls, and is nv.unit_gallery's on the training data
    units = waterfall_units(picks_exp, meta["examples"], k=8)
    g = nv.unit_gallery(net, train, units, k=4, baseline=picks_exp.baseline)  # ranked against the waterfalls' baseline
    rows = export.read_csv(out / "unit_gallery.csv")
    assert [r["unit"] for r in rows] == [n for n in g.names for _ in range(g.k)]
    assert [r["sample"] for r in rows] == g.index.flatten().tolist()
    assert g.kind == kind


def test_report_of_a_cnn_shows_each_waterfall_unit_with_its_gallery(tmp_path, capsys):
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 5, 3), nn.ReLU())
    net = with_running_stats(nv.NeuroViewCNN(backbone, 3, input_shape=(1, 8, 8)), torch.rand(16, 1, 8, 8))
    x, y = torch.rand(9, 1, 8, 8), torch.arange(9) % 3
    train = [(torch.rand(10, 1, 8, 8), torch.arange(10) % 3), (torch.rand(7, 1, 8, 8), torch.arange(7) % 3)]
    out = tmp_path / "r"
    files = write_report(net, x, y, out, examples=1, batch_size=4, progress=True, dpi=30, gallery_data=train)
    _check(out, files, "units", net, train, net.explain(x, baseline=nv.mean_codes(net, train)))  # the report reads against the training mean code
    err = capsys.readouterr().err
    done, total = map(int, re.findall(r"(\d+)/(\d+)", err)[-1])
    figures = sum(f.endswith(".png") for f in files)
    assert done == total == 3 + 1 + 1 + figures + 1  # batches, the gallery, tables, figures, the page


def test_report_of_an_rnn_shows_each_waterfall_step_with_its_window(tmp_path):
    torch.manual_seed(1)
    net = nv.NeuroViewRNN(nn.GRU(2, 3, batch_first=True), num_classes=3, max_len=10, window=2)
    x, lengths, y = torch.randn(7, 10, 1), torch.tensor([10, 6, 10, 3, 10, 8, 10]), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    with_running_stats(net, x, lengths=lengths)
    train = [(torch.randn(12, 1, 10), torch.full((12,), 10), torch.arange(12) % 3)]  # channels-first, as data modules give
    out = tmp_path / "r"
    files = write_report(net, x, y, out, lengths=lengths, examples=1, progress=False, dpi=30, gallery_data=train)
    _check(out, files, "steps", net, train, net.explain(x, lengths=lengths, baseline=nv.mean_codes(net, train)))
    rows = export.read_csv(out / "unit_gallery.csv")
    step = int(rows[0]["unit"].split()[1])
    assert rows[0]["window"] == f"{2 * step}:{2 * step + 2}"


def test_no_gallery_without_training_data(tmp_path):
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU()), 2, input_shape=(1, 6, 6)).eval()
    files = write_report(net, torch.rand(4, 1, 6, 6), torch.tensor([0, 1, 0, 1]), tmp_path / "r", examples=1,
                         progress=False, dpi=30)
    assert not any(f.startswith("unit_gallery") for f in files)


def test_cli_explain_takes_the_gallery_from_the_training_split(tmp_path, capsys):
    from safetensors.torch import save_file

    from neuroview.cli import main as cli

    torch.manual_seed(0)
    net = nv.create_model("nv_small_cnn", num_classes=10, in_channels=1, widths=(4, 8))
    with_running_stats(net, torch.randn(16, 1, 8, 8))
    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    out = tmp_path / "out"
    rc = cli(["explain", "--model", "nv_small_cnn", "--model-args", '{"widths": [4, 8]}', "--weights", str(weights),
              "--data", "digits", "--samples", "12", "--examples", "1", "--no-progress", "--dpi", "30",
              "--gallery-samples", "300", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    rows = export.read_csv(out / "unit_gallery.csv")
    assert (out / "unit_gallery.png").is_file() and rows
    assert all(0 <= r["sample"] < 300 for r in rows) and len(rows) == 4 * len({r["unit"] for r in rows})
    # the samples are the training split's, in order (the data module's own, unshuffled)
    from neuroview.data import DigitsDataModule

    dm = DigitsDataModule()
    dm.setup("fit")
    train = dm._dataset("train")
    assert all(r["class"] == str(int(train[r["sample"]][-1])) for r in rows)
