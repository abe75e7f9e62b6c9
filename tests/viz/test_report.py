"""Importance as data (tables, CSV, pandas, save/load) and the `neuroview explain` report."""

import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview import _io
from neuroview.attribution import export  # noqa: E402
from neuroview.cli import main as cli  # noqa: E402
from neuroview.attribution.importance import layer_shares  # noqa: E402
from neuroview.viz.report import pick_examples, write_report  # noqa: E402
from nets import saved_cnn, with_running_stats  # noqa: E402, F401 - saved_cnn: a fixture

NAMES = ["cat", "dog", "owl"]




@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU())
    net = nv.NeuroViewCNN(backbone, 3, input_shape=(1, 8, 8))
    x = torch.rand(9, 1, 8, 8)
    return with_running_stats(net, x), x, torch.arange(9) % 3


@pytest.fixture(scope="module")
def rnn():
    torch.manual_seed(1)
    net = nv.NeuroViewRNN(nn.GRU(2, 3, num_layers=2, batch_first=True), num_classes=3, max_len=10)
    x = torch.randn(7, 10, 2)
    lengths = torch.tensor([10, 6, 10, 3, 10, 8, 10])
    return with_running_stats(net, x, lengths=lengths), x, lengths, torch.tensor([0, 1, 2, 0, 1, 2, 0])


def _f32(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).float()


# ---------------------------------------------------------------------- tables
def test_unit_records_are_the_weights_and_survive_csv_exactly(cnn, tmp_path):
    net, _, _ = cnn
    rows = export.unit_records(net, NAMES)
    w = net.unit_importance(standardized=True)
    assert [(r["site"], r["channel"]) for r in rows] == net.units
    assert list(rows[0]) == ["site", "channel", *NAMES]
    path = export.write_csv(tmp_path / "units.csv", rows)
    back = export.read_csv(path)
    assert [(r["site"], r["channel"]) for r in back] == net.units
    # the shortest round-trip repr: the float32 numbers come back bit for bit
    assert torch.equal(_f32([[r[c] for c in NAMES] for r in back]).T, w)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_time_and_layer_time_records_equal_the_tensors(rnn):
    net, x, lengths, y = rnn
    assert torch.equal(_f32([[r[f"class_{c}"] for c in range(3)] for r in export.time_records(net)]).T, net.time_importance())
    exp = net.explain(x, lengths=lengths)
    rows = export.layer_time_records(exp, NAMES, y=y)
    assert [(r["layer"], r["step"]) for r in rows[:3]] == [(0, 0), (0, 1), (0, 2)] and len(rows) == 2 * 10
    lt = _f32([[r[c] for c in NAMES] for r in rows]).T.reshape(3, 2, 10)
    want = torch.stack([exp.layer_time()[y == c, c].mean(0) for c in range(3)])
    assert torch.equal(lt, want)
    with pytest.raises(ValueError, match="class_names"):
        export.time_records(net, ["a", "a", "b"])
    with pytest.raises(ValueError, match="clash"):
        export.time_records(net, ["step", "b", "c"])


def test_explanation_records_long_table_sums_to_the_logits(cnn, rnn):
    net, x, _ = cnn
    exp = net.explain(x[:2])
    rows = exp.to_records(NAMES)
    assert len(rows) == 2 * 3 * len(net.units)
    assert list(rows[0]) == ["sample", "class", "site", "channel", "code", "contribution"]
    total = sum(r["contribution"] for r in rows if r["sample"] == 1 and r["class"] == "dog")
    assert total + float(exp.bias[1]) == pytest.approx(float(exp.logits[1, 1]), abs=1e-4)

    net_r, xr, lengths, _ = rnn
    er = net_r.explain(xr[:2], lengths=lengths[:2])
    rows = er.to_records()
    assert list(rows[0]) == ["sample", "class", "layer", "direction", "step", "contribution"]
    assert len(rows) == 2 * 3 * 2 * 1 * 10
    padded = [r["contribution"] for r in rows if r["sample"] == 1 and r["step"] >= 6]
    assert padded and all(v == 0.0 for v in padded)

    base = nv.Explanation(torch.ones(1, 2), torch.zeros(2), torch.ones(1, 2, 3), torch.ones(1, 3))
    assert base.to_records()[0] == {"sample": 0, "class": 0, "feature": 0, "contribution": 1.0}


def test_to_frame_with_and_without_pandas(cnn, monkeypatch):
    net, x, _ = cnn
    exp = net.explain(x[:2])
    pd = pytest.importorskip("pandas")
    frame = exp.to_frame(NAMES)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2 * 3 * len(net.units)
    sums = frame.groupby(["sample", "class"])["contribution"].sum()
    assert sums[(0, "owl")] + float(exp.bias[2]) == pytest.approx(float(exp.logits[0, 2]), abs=1e-4)
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(ImportError, match="pip install pandas"):
        exp.to_frame()


# ------------------------------------------------------------------ save / load
def _same(a, b):
    assert type(a) is type(b)
    for name in ("logits", "bias", "contributions", "codes"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_save_load_round_trip_every_kind(cnn, rnn, tmp_path):
    net, x, _ = cnn
    exp = net.explain(x[:3], maps=True)
    exp.save(tmp_path / "cnn.safetensors")
    back = nv.Explanation.load(tmp_path / "cnn.safetensors")
    _same(exp, back)
    assert back.units == exp.units and back.site_slices == exp.site_slices and torch.equal(back.weight, exp.weight)
    assert list(back.code_maps) == list(exp.code_maps)
    assert all(torch.equal(back.code_maps[k], exp.code_maps[k]) for k in exp.code_maps)
    torch.testing.assert_close(back.spatial_map(net.sites[0].name, 1), exp.spatial_map(net.sites[0].name, 1))

    net_r, xr, lengths, _ = rnn
    er = net_r.explain(xr, lengths=lengths)
    er.save(tmp_path / "rnn")  # no suffix: .safetensors is added
    back = nv.RNNExplanation.load(tmp_path / "rnn.safetensors")
    _same(er, back)
    assert torch.equal(back.lengths, er.lengths) and torch.equal(back.time_importance, er.time_importance)
    with pytest.raises(TypeError, match="holds a RNNExplanation"):
        nv.CNNExplanation.load(tmp_path / "rnn.safetensors")

    base = nv.Explanation(torch.ones(1, 2), torch.zeros(2), torch.ones(1, 2, 3), torch.ones(1, 3))
    base.save(tmp_path / "base.safetensors")
    _same(base, nv.Explanation.load(tmp_path / "base.safetensors"))
    meta = json.loads((tmp_path / "cnn.json").read_text())
    assert meta["format"] == "neuroview.explanation" and meta["type"] == "CNNExplanation"
    assert sorted(os.listdir(tmp_path)) == ["base.json", "base.safetensors", "cnn.json", "cnn.safetensors", "rnn.json", "rnn.safetensors"]


def test_load_refuses_a_mismatched_pair_and_bad_paths(cnn, tmp_path):
    net, x, _ = cnn
    net.explain(x[:1]).save(tmp_path / "a.safetensors")
    net.explain(x[1:2]).save(tmp_path / "b.safetensors")
    (tmp_path / "a.safetensors").write_bytes((tmp_path / "b.safetensors").read_bytes())  # a stale pair
    with pytest.raises(ValueError, match="does not match its sidecar"):
        nv.Explanation.load(tmp_path / "a.safetensors")
    with pytest.raises(ValueError, match="path: expected a file name ending in .safetensors"):
        net.explain(x[:1]).save(tmp_path / "a.pt")
    with pytest.raises(FileNotFoundError, match="sidecar|.json"):
        nv.Explanation.load(tmp_path / "missing.safetensors")


def test_a_crash_while_saving_leaves_the_old_file_whole(cnn, tmp_path, monkeypatch):
    net, x, _ = cnn
    path = tmp_path / "exp.safetensors"
    net.explain(x[:1]).save(path)
    before = path.read_bytes()

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(_io.os, "replace", crash)  # the rename into place fails
    with pytest.raises(OSError, match="disk full"):
        net.explain(x[:2]).save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["exp.json", "exp.safetensors"]  # no temporary left behind
    monkeypatch.undo()
    assert nv.Explanation.load(path).logits.shape[0] == 1


# ------------------------------------------------------------------- the report
def _listed(out) -> set[str]:
    page = (out / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # opens offline, no server, no network
    return set(re.findall(r'(?:src|href)="([^"]+)"', page))


def _check_index(out, files):
    listed = _listed(out)
    assert listed, "index.html lists nothing"
    for name in listed:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert listed <= set(files)
    assert set(files) <= {p.name for p in out.iterdir()}
    return listed


def test_write_report_cnn_lists_every_file_and_the_csv_equals_the_tensors(cnn, tmp_path):
    net, x, y = cnn
    out = tmp_path / "report"
    files = write_report(net, x, y, out, class_names=NAMES, examples=2, progress=False, batch_size=4, dpi=40)
    listed = _check_index(out, files)
    assert {"unit_heatmap.png", "top_units.png", "class_layer_summary.png", "unit_importance.csv",
            "predictions.csv", "layer_shares.csv", "explanation.safetensors", "report.json"} <= listed
    assert sum(f.startswith("waterfall_") for f in listed) == 2 and sum(f.startswith("spatial_maps_") for f in listed) == 2
    units = export.read_csv(out / "unit_importance.csv")
    assert torch.equal(_f32([[r[c] for c in NAMES] for r in units]).T, net.unit_importance(standardized=True))
    exp = nv.Explanation.load(out / "explanation.safetensors")
    # no training data given: contributions against the normalization's running mean code, as the page says
    assert torch.equal(exp.contributions, net.explain(x, baseline="mean").contributions)
    assert torch.equal(exp.baseline, net.norm.running_mean)
    page = (out / "index.html").read_text()
    assert "Readability: 90% of a decision" in page and "running estimate" in page
    a = exp.contributions[torch.arange(len(y)), exp.logits.argmax(1)].flatten(1).abs().double()
    top = 100 * float((a.sort(1, descending=True).values[:, :10].sum(1) / a.sum(1)).median())  # 9 samples: the middle one
    assert f"the 10 largest carry {top:.0f}% (median)" in page  # a median over the samples, as k90, and says so
    preds = export.read_csv(out / "predictions.csv")
    assert torch.equal(_f32([[r[f"logit {c}"] for c in NAMES] for r in preds]), exp.logits)
    assert [r["true"] for r in preds] == [NAMES[int(c)] for c in y]
    shares = export.read_csv(out / "layer_shares.csv")
    assert torch.equal(_f32([[r[s] for s in net.site_slices] for r in shares]), layer_shares(exp, y=y)[0])
    meta = json.loads((out / "report.json").read_text())
    assert meta["samples"] == 9 and meta["class_names"] == NAMES and meta["max_abs_residual"] < 1e-4
    assert {f["file"] for f in meta["figures"]} <= listed


def test_write_report_refuses_a_non_empty_folder(cnn, tmp_path):
    net, x, y = cnn
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_report(net, x, y, tmp_path, progress=False)
    assert os.listdir(tmp_path) == ["notes.txt"]
    files = write_report(net, x[:3], None, tmp_path, overwrite=True, examples=1, progress=False, dpi=40)
    assert (tmp_path / "notes.txt").read_text() == "mine" and "index.html" in files


def test_write_report_rnn_time_tables(rnn, tmp_path):
    net, x, lengths, y = rnn
    out = tmp_path / "r"
    files = write_report(net, x, y, out, lengths=lengths, class_names=NAMES, examples=2, progress=False, dpi=40)
    listed = _check_index(out, files)
    assert {"time_importance.png", "layer_time.png", "class_layer_summary.png", "time_importance.csv",
            "layer_time.csv", "time_weights.csv"} <= listed
    assert sum(f.startswith("sample_time_") for f in listed) == 2
    exp = net.explain(x, lengths=lengths, baseline="mean")  # what the report shows without training data
    ti = export.read_csv(out / "time_importance.csv")
    assert [r["step"] for r in ti] == list(range(10))
    want = torch.stack([exp.time_importance[y == c, c].mean(0) for c in range(3)])
    assert torch.equal(_f32([[r[c] for c in NAMES] for r in ti]).T, want)
    tw = export.read_csv(out / "time_weights.csv")
    assert torch.equal(_f32([[r[c] for c in NAMES] for r in tw]).T, net.time_importance())
    back = nv.Explanation.load(out / "explanation.safetensors")
    assert torch.equal(back.lengths, lengths)


def test_write_report_rnn_reading_windows_draws_one_input_point_a_step(tmp_path, monkeypatch):
    from neuroview.attribution.importance import per_step
    from neuroview.viz import report_writer

    torch.manual_seed(2)
    net = nv.NeuroViewRNN(nn.GRU(2 * 3, 4, batch_first=True), num_classes=3, max_len=10, window=3).eval()
    x, lengths, y = torch.randn(6, 10, 2), torch.tensor([10, 7, 10, 2, 10, 5]), torch.arange(6) % 3
    # the mean of each window of samples, the last window's padding counted: (x8 + x9 + 0) / 3
    steps = per_step(x, 3)
    assert steps.shape == (6, 4, 2) and torch.allclose(steps[:, 3], x[:, 9] / 3) and torch.allclose(steps[:, 0], x[:, :3].mean(1))
    seen = []
    real = report_writer.plots.sample_time
    monkeypatch.setattr(report_writer.plots, "sample_time", lambda exp, i, **kw: seen.append(kw["series"].shape) or real(exp, i, **kw))
    files = write_report(net, x, y, tmp_path / "r", lengths=lengths, class_names=NAMES, examples=2, progress=False, dpi=40)
    assert "time_importance.png" in files and len(seen) == 2
    # each picked sample's series is drawn over its own steps (windows), 2 features each, never its raw samples
    assert all(s[0] <= net.steps and s[1] == 2 for s in seen)


def test_pick_examples_prefers_distinct_classes_and_one_mistake():
    pred, y = torch.tensor([0, 0, 1, 2, 1, 2]), torch.tensor([0, 0, 1, 1, 1, 2])
    assert pick_examples(pred, y, 3) == [0, 2, 3]  # class 0, class 1, and the mistake at 3
    assert pick_examples(pred, None, 2) == [0, 2]
    assert pick_examples(pred, y, 0) == []


# ---------------------------------------------------------------- the command
def test_cli_explain_writes_every_file_it_lists(saved_cnn, tmp_path, capsys):
    net, weights = saved_cnn
    out = tmp_path / "out"
    args = ["explain", "--model", "nv_small_cnn", "--model-args", '{"widths": [4, 8]}', "--weights", str(weights),
            "--data", "digits", "--samples", "20", "--examples", "1", "--no-progress", "--dpi", "40", "--out", str(out)]
    assert cli(args) == 0
    assert "index.html" in capsys.readouterr().out
    files = [p.name for p in out.iterdir()]
    _check_index(out, files)
    units = export.read_csv(out / "unit_importance.csv")
    names = [str(c) for c in range(10)]
    assert torch.equal(_f32([[r[c] for c in names] for r in units]).T, net.unit_importance(standardized=True))
    meta = json.loads((out / "report.json").read_text())
    assert meta["data"] == "digits" and meta["split"] == "test" and meta["samples"] == 20

    # a second run into the same folder needs --overwrite (write_report's test covers writing over)
    assert cli(args) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cli_explain_errors_name_the_option(saved_cnn, tmp_path, capsys):
    _, weights = saved_cnn
    base = ["explain", "--model", "nv_small_cnn", "--model-args", '{"widths": [4, 8]}', "--weights", str(weights),
            "--no-progress", "--out", str(tmp_path / "o")]
    assert cli(base + ["--data", "nosuchset"]) == 2
    assert "--data" in capsys.readouterr().err
    assert cli(base + ["--data", "GunPoint"]) == 2  # 2 classes, the model has 10
    assert "--data: GunPoint has 2 classes (1, 2), the model 10" in capsys.readouterr().err  # which classes: named
    assert cli(["explain", "--model", "small_cnn", "--weights", str(weights), "--out", str(tmp_path / "p")]) == 2
    assert cli(["explain", "--ckpt", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "q")]) == 2
    assert "--ckpt" in capsys.readouterr().err
    # 10 classes as the model, another shape: named as --data (it was the model's "x: ... failed")
    assert cli(["explain", "--model", "nv_small_cnn.mnist1d", "--data", "digits", "--no-progress", "--out", str(tmp_path / "r")]) == 2
    assert "--data: digits gives samples of shape (1, 8, 8), which the model does not read" in capsys.readouterr().err
    # JSON that does not parse, an --out that is a file: named as the options (the parser's message alone; out_dir)
    assert cli(["explain", "--model", "nv_small_cnn", "--model-args", "{bad json", "--weights", str(weights),
                "--out", str(tmp_path / "s")]) == 2
    assert "--model-args: expected a JSON object of builder arguments, got '{bad json'" in capsys.readouterr().err
    (tmp_path / "afile").write_text("mine")
    assert cli(base[:-1] + [str(tmp_path / "afile")]) == 2
    assert "out_dir (--out): expected a folder, got the file" in capsys.readouterr().err


def test_cli_explain_lightning_checkpoint_of_a_sequence_model(tmp_path, capsys):
    """`neuroview fit` writes Lightning checkpoints: explain one of an nv_gru on variable-length data."""
    pl = pytest.importorskip("pytorch_lightning")
    from neuroview.data import NpzDataModule
    from neuroview.training.module import NeuroViewModule

    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 1, 12)).astype(np.float32)
    y = np.arange(24) % 2
    lengths = np.where(np.arange(24) % 3 == 0, 8, 12)
    np.savez(tmp_path / "seq.npz", X=X, y=y, lengths=lengths)
    dm = NpzDataModule(str(tmp_path / "seq.npz"), batch_size=8)
    dm.setup("fit")
    module = NeuroViewModule("nv_gru", num_classes=2, in_channels=1, max_len=dm.max_len, model_kwargs={"hidden_size": 3})
    trainer = pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=dm)
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    out = tmp_path / "out"
    rc = cli(["explain", "--ckpt", str(ckpt), "--data", str(tmp_path / "seq.npz"), "--examples", "1", "--no-progress",
              "--dpi", "40", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    listed = _check_index(out, [p.name for p in out.iterdir()])
    assert {"time_importance.png", "time_importance.csv", "layer_time.csv"} <= listed
    exp = nv.Explanation.load(out / "explanation.safetensors")
    assert isinstance(exp, nv.RNNExplanation) and set(exp.lengths.tolist()) == {8, 12}
    model = NeuroViewModule.load_from_checkpoint(ckpt).model.eval()
    tw = export.read_csv(out / "time_weights.csv")
    assert torch.equal(_f32([[r[c] for c in ("0", "1")] for r in tw]).T, model.time_importance())


def _zoo_entries() -> list[str]:
    """One trained NeuroView CNN, one RNN and one transformer (token sites) of the zoo (each takes seconds to explain)."""
    names = nv.list_models("nv_*", pretrained=True)
    rnn = [n for n in names if n.split(".")[0] in ("nv_rnn", "nv_gru", "nv_lstm")]
    vit = [n for n in names if n.split(".")[0].startswith("nv_vit")]
    cnn = [n for n in names if n not in rnn and n not in vit]
    return cnn[:1] + rnn[:1] + vit[:1]


@pytest.mark.parametrize("name", _zoo_entries() or [pytest.param(None, marks=pytest.mark.skip(reason="no zoo checkpoints yet"))])
def test_cli_explain_on_a_zoo_checkpoint(name, tmp_path, capsys):
    out = tmp_path / "zoo"
    rc = cli(["explain", "--model", name, "--samples", "16", "--examples", "1", "--no-progress", "--dpi", "40", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    listed = _check_index(out, [p.name for p in out.iterdir()])
    model = nv.create_model(name, pretrained=True)
    exp = nv.Explanation.load(out / "explanation.safetensors")
    meta = json.loads((out / "report.json").read_text())
    names = meta["class_names"]
    if "unit_importance.csv" in listed:
        rows = export.read_csv(out / "unit_importance.csv")
        assert torch.equal(_f32([[r[c] for c in names] for r in rows]).T, model.unit_importance(standardized=True))
    else:
        rows = export.read_csv(out / "time_weights.csv")
        assert torch.equal(_f32([[r[c] for c in names] for r in rows]).T, model.time_importance())
    preds = export.read_csv(out / "predictions.csv")
    assert torch.equal(_f32([[r[f"logit {c}"] for c in names] for r in preds]), exp.logits)


def _k90_by_hand(values) -> tuple[int, np.ndarray]:
    """How many of ``values``, largest |value| first, reach 90% of their sum (independently of k_share)."""
    order = np.sort(np.abs(np.asarray(values, dtype=np.float64)))[::-1]
    return int(np.searchsorted(np.cumsum(order), 0.9 * order.sum() - 1e-12) + 1), order


def test_waterfall_bars_leave_at_most_a_tenth_of_the_evidence_to_other_units(rnn):
    from neuroview.viz.report_writer import MAX_BARS, WATERFALL_BARS, waterfall_bars

    torch.manual_seed(3)
    # a hand-built head: 60 codes, the predicted logit's evidence spread over many of them
    backbone = nn.Sequential(nn.Conv1d(1, 60, 1), nn.ReLU())
    net = nv.NeuroViewCNN(backbone, 2, input_shape=(1, 5), normalize=False).eval()
    with torch.no_grad():
        net.classifier.weight.copy_(torch.randn(2, 60) * torch.logspace(0, -2, 60))
    exp = net.explain(torch.randn(6, 1, 5))
    needs = []
    for i in range(6):
        need, order = _k90_by_hand(exp.for_class()[i].numpy())
        needs.append(need)
        k = waterfall_bars(exp, range(6))[i]
        assert k == min(MAX_BARS, max(WATERFALL_BARS, need))
        if need <= MAX_BARS:  # the bars drawn leave at most 10% to "other units"
            assert order[k:].sum() <= 0.1 * order.sum() + 1e-9
    assert max(needs) > WATERFALL_BARS  # the case the rule is for: more bars than the fewest
    # an RNN's bars are steps, each the sum of its hidden states' contributions
    net, x, lengths, _ = rnn
    e = net.explain(x, lengths)
    for i in range(len(x)):
        need, _ = _k90_by_hand(e.for_class()[i].sum(dim=(0, 1, 3)).numpy())
        assert waterfall_bars(e, range(len(x)))[i] == min(MAX_BARS, max(WATERFALL_BARS, need))
