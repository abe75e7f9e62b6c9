"""Two ``neuroview explain`` runs into one ``--out`` (probe P8, finding 1). The other run's report is forced in at
the worst moment (written into ``--out`` after this run's start-up check, while this one draws), never by timing:

- into an existing empty folder both runs exited 0 and left a mix of two reports: now the later one is refused,
  naming the folder, what it found and ``--overwrite``, and moves nothing in;
- into a new folder the later one died with a bare ``[Errno 39] Directory not empty``, and where it had made the
  folder's parents it removed them, the other run's report inside, on the way out.
"""

from __future__ import annotations

import json
import os

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview.viz import report_writer  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402

THEIRS = {"index.html": "<title>the other run's report</title>", "report.json": '{"model": "theirs"}',
          "time_importance.csv": "step,a\n0,1\n"}


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU())
    net = nv.NeuroViewCNN(backbone, 2, input_shape=(1, 6, 6)).eval()
    return net, torch.rand(4, 1, 6, 6), torch.tensor([0, 1, 0, 1])


def _other_run_writes(monkeypatch, out, theirs=THEIRS):
    """While this run writes its report, another run's whole report lands in ``out`` (made where there is none)."""
    real = report_writer._write_all

    def meanwhile(*args, **kwargs):
        files = real(*args, **kwargs)
        out.mkdir(parents=True, exist_ok=True)
        for name, text in theirs.items():
            (out / name).write_text(text)
        return files

    monkeypatch.setattr(report_writer, "_write_all", meanwhile)


def _left(folder):
    return {name: (folder / name).read_text() for name in os.listdir(folder)}


@pytest.mark.parametrize("made", ["empty folder", "new folder", "new folder in new parents"])
def test_the_later_report_is_refused_and_the_other_kept_whole(cnn, tmp_path, monkeypatch, made):
    net, x, y = cnn
    out = tmp_path / "a" / "b" / "report" if made == "new folder in new parents" else tmp_path / "report"
    if made == "empty folder":
        out.mkdir()
    _other_run_writes(monkeypatch, out)
    with pytest.raises(FileExistsError) as err:
        write_report(net, x, y, out, progress=False, dpi=20, examples=1)
    message = str(err.value)
    assert "out_dir (--out)" in message and str(out) in message and "another run" in message, message
    assert "--overwrite" in message and "index.html" in message and "Errno" not in message, message
    assert _left(out) == THEIRS  # the other report whole, nothing of this one beside it
    assert sorted(os.listdir(tmp_path)) == (["a"] if "parents" in made else ["report"])  # no temporary folder left
    assert sorted(os.listdir(out.parent)) == ["report"]


#: another run's whole RNN report, as report_files reads one: its report.json lists its figures and tables
AN_RNN_REPORT = {"index.html": "<title>the other run's report</title>", "time_importance.csv": "step,a\n0,1\n",
                 "sample_time_0.png": "png", "predictions.csv": "sample\n0\n",
                 "report.json": json.dumps({"neuroview": "0", "kind": "rnn", "sample_indices": [0],
                                            "figures": [{"file": "sample_time_0.png"}],
                                            "tables": [{"file": "time_importance.csv"}, {"file": "predictions.csv"}]})}


@pytest.mark.parametrize("made", ["empty folder", "new folder"])
def test_with_overwrite_the_later_report_replaces_the_other(cnn, tmp_path, monkeypatch, made):
    """review R9, finding 1: the files to clean up were listed at this run's start, before the other run's report
    came, so its time tables and time figures stayed beside this CNN's page (both exit 0): one report, whole, now."""
    net, x, y = cnn
    out = tmp_path / "report"
    if made == "empty folder":
        out.mkdir()
    _other_run_writes(monkeypatch, out, AN_RNN_REPORT)
    files = write_report(net, x, y, out, progress=False, dpi=20, examples=1, overwrite=True)
    assert "the other run's" not in (out / "index.html").read_text()
    assert json.loads((out / "report.json").read_text())["kind"] == "cnn"
    assert sorted(os.listdir(out)) == sorted(files)  # this report's files, and only they
    assert not {"time_importance.csv", "sample_time_0.png"} & set(files)  # the other's names this one does not write
    assert sorted(os.listdir(tmp_path)) == ["report"]


def test_the_refusal_names_the_out_as_given(cnn, tmp_path, monkeypatch):
    """review R9, finding 4: it named the folder's real path (a symlink's target), not the --out given."""
    net, x, y = cnn
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "link")
    monkeypatch.chdir(tmp_path)
    _other_run_writes(monkeypatch, tmp_path / "real")
    with pytest.raises(FileExistsError) as err:
        write_report(net, x, y, "link", progress=False, dpi=20, examples=1)
    assert str(err.value).startswith("out_dir (--out): 'link' was written by another run meanwhile (index.html, "), err.value
    assert _left(tmp_path / "real") == THEIRS


def test_an_empty_folder_is_still_written(cnn, tmp_path):
    net, x, y = cnn
    (out := tmp_path / "report").mkdir()
    files = write_report(net, x, y, out, progress=False, dpi=20, examples=1)
    assert sorted(os.listdir(out)) == sorted(files)
