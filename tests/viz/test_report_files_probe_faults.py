"""What a probe found wrong with the files the report (and its neighbours) write: another tool's report.json
trusted for deletion, a "$" in a class name read as mathtext, an explanation saved beside a folder, the --out
folder swapped by a rename (a mount point refused it, a shared folder lost its group), a label past the last
class, a class named like a table column, the model's zoo folder and the data file left unrecorded, the
confusion matrix written in the locale's encoding, a title cut off a small figure."""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import struct
import types
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview import _io  # noqa: E402
from neuroview.attribution.export import read_csv  # noqa: E402
from neuroview.viz import plots  # noqa: E402
from neuroview.viz import report as report_cli  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402
from nets import small_report_cnn  # noqa: E402


def _cnn3():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()
    return net, torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])


def test_overwrite_keeps_the_files_another_tool_s_report_json_lists(tmp_path):
    net, x, y = small_report_cnn()
    out = tmp_path / "experiment"
    out.mkdir()
    (out / "report.json").write_text(json.dumps({"title": "my pipeline's", "figures": [{"file": "loss_curve.png"}],
                                                 "tables": [{"file": "results.csv"}]}))
    (out / "results.csv").write_text("epoch,acc\n1,0.9\n")
    (out / "loss_curve.png").write_bytes(b"\x89PNG mine")
    write_report(net, x, y, out, examples=0, progress=False, dpi=30, overwrite=True)
    # before: both deleted, listed by a report.json that is no neuroview report's
    assert (out / "results.csv").read_text() == "epoch,acc\n1,0.9\n" and (out / "loss_curve.png").read_bytes() == b"\x89PNG mine"
    # a neuroview report's own files still go when the next one does not rewrite them
    meta = json.loads((out / "report.json").read_text())
    meta["figures"].append({"file": "waterfall_7.png"})
    meta["tables"].append({"file": "results.csv"})  # a name no report writes: never removed, even if listed
    (out / "report.json").write_text(json.dumps(meta))
    (out / "waterfall_7.png").write_bytes(b"old")
    write_report(net, x, y, out, examples=0, progress=False, dpi=30, overwrite=True)
    assert not (out / "waterfall_7.png").exists() and (out / "results.csv").exists()


def test_a_dollar_in_a_class_name_is_drawn_as_it_is(tmp_path):
    net, x, y = _cnn3()
    # before: ValueError (matplotlib's ParseFatalException) after the explanation was computed
    files = write_report(net, x, y, tmp_path / "r", class_names=["$\\foo$", "a$^$", "c"], progress=False, examples=1, dpi=30)
    assert "index.html" in files
    fig = plots.unit_heatmap(net, class_names=["US$5-US$10", "b", "c"])
    texts = [t for ax in fig.axes for t in ax.get_xticklabels() + ax.get_yticklabels() if "US" in t.get_text()]
    assert texts and all(t._preprocess_math(t.get_text()) == ("US$5-US$10", False) for t in texts)


def test_save_refuses_a_folder_and_an_empty_path(tmp_path):
    net, x, _ = _cnn3()
    exp = net.explain(x[:2])
    (tmp_path / "results").mkdir()
    for bad in (tmp_path / "results", str(tmp_path / "results") + "/", str(tmp_path / "new") + os.sep):
        with pytest.raises(ValueError, match=r"path: expected a file name .* a folder"):
            exp.save(bad)  # before: results.safetensors and results.json written beside the folder, no word
    for call in (lambda: exp.save(""), lambda: nv.Explanation.load("")):
        with pytest.raises(ValueError, match="path: expected a file name .* an empty path"):
            call()  # before: "PosixPath('.') has an empty name", from pathlib
    assert sorted(os.listdir(tmp_path)) == ["results"] and os.listdir(tmp_path / "results") == []


def test_an_existing_out_folder_keeps_its_identity(tmp_path, monkeypatch):
    net, x, y = small_report_cnn()
    out = tmp_path / "shared"
    out.mkdir()
    ino = out.stat().st_ino
    real = os.replace

    def no_rename_of_out(a, b):  # a mount point: renaming the folder itself fails (EBUSY), as across devices
        if out in (Path(a), Path(b)):
            raise OSError(errno.EBUSY, "Device or resource busy", str(a))
        return real(a, b)

    monkeypatch.setattr(_io.os, "replace", no_rename_of_out)
    files = write_report(net, x, y, out, examples=0, progress=False, dpi=30)  # before: OSError EBUSY
    (out / "notes.txt").write_text("mine")
    again = write_report(net, x[:4], y[:4], out, examples=0, progress=False, dpi=30, overwrite=True)
    monkeypatch.undo()
    assert out.stat().st_ino == ino  # before: a new folder renamed into place, its group and inode another's
    assert sorted(os.listdir(out)) == sorted(set(files) | set(again) | {"notes.txt"})  # no staging folder left
    assert sorted(os.listdir(tmp_path)) == ["shared"] and (out / "notes.txt").read_text() == "mine"


def test_explain_names_an_os_error_and_exits_2(tmp_path, monkeypatch, capsys):
    def busy(*a, **k):
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(tmp_path / "mnt"))

    monkeypatch.setattr(report_cli, "write_report", busy)
    rc = report_cli.main(["--model", "nv_small_cnn.digits", "--out", str(tmp_path / "mnt"), "--samples", "4",
                          "--examples", "0", "--no-gallery", "--no-progress"])
    assert rc == 2  # before: the OSError's traceback
    assert "neuroview explain: [Errno 18] Invalid cross-device link" in capsys.readouterr().err


def test_a_label_past_the_last_class_is_refused_by_name(tmp_path):
    net, x, _ = _cnn3()
    with pytest.raises(ValueError, match=r"y: expected class indices in \[0, 3\).*\[3\]"):
        write_report(net, x, torch.tensor([0, 1, 2, 0, 1, 3]), tmp_path / "r", progress=False, examples=1)
    assert not (tmp_path / "r").exists()  # refused before any work; before: a bare IndexError, after it


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_a_class_named_like_a_table_column_gets_its_own_column(tmp_path, kind):
    torch.manual_seed(0)
    if kind == "cnn":
        net, x, _ = _cnn3()
        names, tables = ["walk", "site", "channel"], {"unit_importance.csv": ["site", "channel"]}
    else:
        net, x = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), 3, max_len=12).eval(), torch.randn(6, 12, 2)
        names, tables = ["walk", "step", "layer"], {"time_importance.csv": ["step"], "layer_time.csv": ["layer", "step"],
                                                   "time_weights.csv": ["step"]}
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    # before: ValueError "class_names: ['site'] clash with the table's own columns", after the explanation
    write_report(net, x, y, tmp_path / "r", class_names=names, progress=False, examples=1, dpi=30)
    for table, fixed in tables.items():
        rows = read_csv(tmp_path / "r" / table)
        assert list(rows[0]) == fixed + ["walk", f"{names[1]} (class)", f"{names[2]} (class)"]
        assert all(isinstance(r[fixed[-1]], int) for r in rows)  # the fixed column still holds its numbers


def test_the_report_records_the_zoo_folder_and_the_data_file(tmp_path):
    from neuroview.zoo.pretrained import MANIFEST, checkpoints_dir

    src = checkpoints_dir(None)
    manifest = json.loads((src / MANIFEST).read_text())
    entry = manifest["entries"]["nv_small_cnn.digits"]
    zoo = tmp_path / "my zoo"
    zoo.mkdir()
    shutil.copy(src / entry["file"], zoo / entry["file"])
    (zoo / MANIFEST).write_text(json.dumps({**manifest, "entries": {"nv_small_cnn.digits": entry}}))
    args = types.SimpleNamespace(model="nv_small_cnn.digits", zoo=str(zoo), weights=None, ckpt=None, model_args=None)
    _, about, _ = report_cli.resolve_model(args)
    assert about["zoo"] == str(zoo.resolve())  # before: no word of the folder, the installed entry's name alone

    from neuroview.zoo import create_model

    torch.manual_seed(0)
    torch.save(create_model("nv_small_cnn", num_classes=4, widths=[4, 8]).state_dict(), tmp_path / "w.pt")
    np.savez(tmp_path / "d.npz", X=np.random.default_rng(0).random((80, 1, 8, 8)).astype("float32"), y=np.arange(80) % 4)
    out = tmp_path / "out"
    assert report_cli.main(["--model", "nv_small_cnn", "--model-args", '{"num_classes": 4, "widths": [4, 8]}',
                            "--weights", str(tmp_path / "w.pt"), "--data", str(tmp_path / "d.npz"), "--out", str(out),
                            "--samples", "8", "--examples", "0", "--no-gallery", "--no-progress", "--dpi", "30"]) == 0
    meta = json.loads((out / "report.json").read_text())
    assert meta["data file"] == str((tmp_path / "d.npz").resolve())  # before: absent
    assert str((tmp_path / "d.npz").resolve()) in (out / "index.html").read_text()


def test_confusion_matrix_is_utf8_whatever_the_locale(tmp_path, monkeypatch):
    from neuroview.training import outputs as callbacks

    # an ASCII locale: open() without an encoding writes ASCII (what the module wrote through before)
    monkeypatch.setattr(callbacks, "open", lambda *a, **k: builtins.open(*a, **{"encoding": "ascii", **k}), raising=False)
    trainer = types.SimpleNamespace(log_dir=str(tmp_path), is_global_zero=True,
                                    datamodule=types.SimpleNamespace(class_names=["caf\u00e9", "\u65e5\u672c"]))
    callbacks.write_confusion(trainer, torch.tensor([[3, 1], [0, 4]]), 2)  # before: UnicodeEncodeError, an empty file
    text = (tmp_path / "confusion_matrix.csv").read_bytes().decode("utf-8")
    assert text.splitlines() == ["true\\predicted,caf\u00e9,\u65e5\u672c", "caf\u00e9,3,1", "\u65e5\u672c,0,4"]
    assert sorted(os.listdir(tmp_path)) == ["confusion_matrix.csv"]  # no temporary left


def test_a_title_wider_than_a_small_figure_is_not_cut_off(tmp_path):
    net, x, y = _cnn3()
    fig = plots.unit_heatmap(net)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.canvas.draw()
    box = fig._suptitle.get_window_extent(fig.canvas.get_renderer())
    title = box.width
    # the case: the title in one line is wider than this small figure; it wraps to the figure's width, inside it
    # (session 22: before, one line wider than the figure, cut off where the figure is saved plainly)
    assert "\n" in fig._suptitle.get_text() and fig._suptitle.get_text().replace("\n", " ") == (
        "Unit-class weights of the global classifier, per site")
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width
    write_report(net, x, y, tmp_path / "r", progress=False, examples=0, dpi=100)
    width = struct.unpack(">I", (tmp_path / "r" / "unit_heatmap.png").read_bytes()[16:20])[0]
    assert width >= title  # before: the figure's own width, the title cut off at both edges
