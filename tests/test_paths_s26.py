"""Paths as users have them (probe P1 of s26):

1. a path on the report's page (the checkpoint, the data file) in a folder whose name is not UTF-8 (a latin-1 ``caf\\xe9``
   unpacked from an old zip: Python reads it with a lone surrogate) made ``write_report`` fail on ``index.html`` after
   all the work, in a bare codec error;
2. a JSON ``--data`` spec's relative ``init_args.path`` was recorded as typed by sparsify, minirocket and retrofit
   (a plain ``--data`` path is recorded absolute), so the entry read another file, or none, from another folder;
3. the training file a checkpoint or zoo entry records, moved since, was refused as ``path: ... (no such file)``,
   naming neither where the path came from nor ``--data``, the option that reads it in its new place;
4. ``write_csv``, ``write_json``, ``read_csv`` and ``write_report`` read a leading ``~`` as a folder name (``./~``);
   and a table written into a folder that takes no new file named the writer's hidden temporary file, not the path.

Review R3 (F4): a class name that is not UTF-8 (a latin-1 folder's, read by ``os.listdir``) still crashed the report
after all the work, in a bare UnicodeEncodeError from ``write_csv``: only the page showed such a name escaped.
"""

from __future__ import annotations

import json
import os
from argparse import Namespace

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution import export
from neuroview.viz.report_writer import write_report

LATIN1 = os.fsdecode(b"/data/caf\xe9/last.ckpt")  # what Python hands over for such a name: '/data/caf\udce9/last.ckpt'


def _net():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3)
    net(torch.randn(8, 1, 8, 8))  # in training mode: its normalization has seen a batch
    return net.eval()


def _npz(path, n: int = 24) -> None:
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, X=rng.standard_normal((n, 1, 8, 8)).astype("float32"), y=np.arange(n) % 3)


# ----------------------------------------------------------------------------- finding 1: a non-UTF-8 name on the page
def test_a_path_of_a_non_utf8_name_is_shown_on_the_page_not_a_crash(tmp_path):
    files = write_report(_net(), torch.randn(6, 1, 8, 8), None, tmp_path / "rep", examples=0, progress=False, baseline=None, dpi=30,
                         about={"checkpoint": LATIN1, "data file": os.fsdecode(b"/d/\xff.npz")})
    assert files[-1] == "index.html"
    page = (tmp_path / "rep" / "index.html").read_bytes().decode("utf-8")  # a valid UTF-8 page
    assert "/data/caf\\xe9/last.ckpt" in page and "/d/\\xff.npz" in page  # the bytes shown as Python shows them
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["checkpoint"] == LATIN1  # the exact name, as JSON escapes it


# ------------------------------------------------------------------ finding 2: a JSON spec's relative path, recorded
SPEC = '{"class_path": "NpzDataModule", "init_args": {"path": "data/gp.npz"}}'


def test_a_json_spec_s_relative_path_is_recorded_absolute_by_sparsify_and_minirocket(tmp_path, monkeypatch):
    from neuroview.training.minirocket_cli import data_spec
    from neuroview.training.sparsify_cli import _data_spec

    monkeypatch.chdir(tmp_path)
    want = str(tmp_path / "data" / "gp.npz")
    assert _data_spec(SPEC, None)["init_args"]["path"] == want  # sparsify's (and retrofit's) record
    assert data_spec(SPEC)["init_args"]["path"] == want  # minirocket's
    csv = ('{"class_path": "CsvDataModule", "init_args": {"path": "a.csv", "test_path": "b.csv", "val_path": "c.csv"}, '
           '"read_like": {"class_path": "NpzDataModule", "init_args": {"path": "t.npz"}}}')
    got = _data_spec(csv, None)
    assert [got["init_args"][k] for k in ("path", "test_path", "val_path")] == [str(tmp_path / f) for f in ("a.csv", "b.csv", "c.csv")]
    assert got["read_like"]["init_args"]["path"] == str(tmp_path / "t.npz")
    mnist = data_spec('{"class_path": "neuroview.data.MNISTDataModule", "init_args": {"root": "mn"}}')
    assert mnist["init_args"]["root"] == str(tmp_path / "mn")


def test_a_json_spec_s_tilde_path_is_recorded_as_the_home_folder_s(home):
    from neuroview.training.sparsify_cli import _data_spec

    got = _data_spec('{"class_path": "NpzDataModule", "init_args": {"path": "~/gp.npz"}}', None)
    assert got["init_args"]["path"] == str(home / "gp.npz")


def test_retrofit_records_a_json_spec_s_path_absolute(tmp_path, monkeypatch):
    from neuroview.training.data_arg import data_module
    from neuroview.training.retrofit_out import _built

    _npz(tmp_path / "data" / "gp.npz")
    monkeypatch.chdir(tmp_path)
    dm = data_module(SPEC)
    args = Namespace(source="std.pt", arch=None, arch_kwargs=None, data=SPEC)
    meta = _built(nn.Linear(16, 3), nn.Linear(16, 3), args, dm)
    assert json.loads(meta["neuroview.data"])["init_args"]["path"] == str(tmp_path / "data" / "gp.npz")


# ------------------------------------------------------------- finding 3: the recorded training file, moved since
def _entry_on(tmp_path, data_file):
    """A zoo entry (in ``tmp_path/zoo``) whose recorded training data is ``data_file``, then moved away."""
    from neuroview.zoo import pretrained as zoo

    _npz(data_file)
    torch.manual_seed(0)
    net = nv.create_model("nv_small_cnn", widths=[4], in_channels=1, num_classes=3)
    net.discover(torch.randn(2, 1, 8, 8))
    spec = {"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": str(data_file)}}
    zoo.save_pretrained(net, "nv_small_cnn.moved", architecture="nv_small_cnn",
                        arch_kwargs={"widths": [4], "in_channels": 1, "num_classes": 3},
                        dataset={"name": "gp", "split": "test", "data_module": spec, "class_names": ["0", "1", "2"]},
                        recipe=None, seed=0, metrics={}, root=tmp_path / "zoo")
    os.rename(data_file.parent, data_file.parent.with_name("data new"))


def test_explain_of_an_entry_whose_training_file_moved_names_the_entry_and_data(tmp_path, capsys):
    from neuroview.viz.report import main

    _entry_on(tmp_path, tmp_path / "data old" / "gp.npz")
    rc = main(["--model", "nv_small_cnn.moved", "--zoo", str(tmp_path / "zoo"), "--out", str(tmp_path / "rep"),
               "--no-progress", "--no-gallery", "--samples", "4"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--model" in err and "zoo entry" in err and str(tmp_path / "data old" / "gp.npz") in err, err
    assert "--data NEWPATH" in err, err


def test_sparsify_of_an_entry_whose_training_file_moved_names_the_entry_and_data(tmp_path, capsys):
    from neuroview.training.sparsify_cli import main

    _entry_on(tmp_path, tmp_path / "data old" / "gp.npz")
    rc = main(["nv_small_cnn.moved", "--zoo", str(tmp_path / "zoo"), "--out", str(tmp_path / "sp")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "source" in err and "zoo entry" in err and str(tmp_path / "data old" / "gp.npz") in err, err
    assert "--data NEWPATH" in err, err


def _checkpoint_on(tmp_path, data_file):
    """A `neuroview fit`-style checkpoint (its module's state and hyper-parameters, its data module's arguments) whose
    training file ``data_file`` has moved to ``data new/``."""
    from neuroview.training.module import NeuroViewModule

    _npz(data_file)
    torch.manual_seed(0)
    m = NeuroViewModule("nv_small_cnn", num_classes=3, in_channels=1, model_kwargs={"widths": [4]})
    m.model.discover(torch.randn(2, 1, 8, 8))
    torch.save({"state_dict": m.state_dict(), "pytorch-lightning_version": "2.6.6", "hyper_parameters": dict(m.hparams),
                "datamodule_hyper_parameters": {"_class_path": "neuroview.data.NpzDataModule", "path": str(data_file)}},
               tmp_path / "last.ckpt")
    os.rename(data_file.parent, data_file.parent.with_name("data new"))
    return str(tmp_path / "last.ckpt")


def test_a_checkpoint_s_moved_training_file_names_the_checkpoint_and_data(tmp_path, capsys):
    from neuroview.training.sparsify_cli import main as sparsify
    from neuroview.viz.report import main as explain

    ckpt = _checkpoint_on(tmp_path, tmp_path / "data old" / "gp.npz")
    gone = str(tmp_path / "data old" / "gp.npz")
    assert sparsify([ckpt, "--out", str(tmp_path / "sp")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"neuroview sparsify: source: the checkpoint {ckpt!r} records") and gone in err, err
    assert "--data NEWPATH" in err, err
    out = ["--out", str(tmp_path / "rep"), "--no-progress", "--no-gallery", "--samples", "4", "--examples", "0", "--dpi", "30"]
    assert explain(["--ckpt", ckpt, *out]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"neuroview explain: --ckpt: the checkpoint {ckpt!r} records") and gone in err, err
    assert "--data NEWPATH" in err, err
    with pytest.warns(UserWarning, match="training data cannot be read again"):  # the advice given works
        assert explain(["--ckpt", ckpt, "--data", str(tmp_path / "data new" / "gp.npz"), *out]) == 0


# ----------------------------------------------------------------------------------------------- finding 4: ~
def test_the_tables_and_the_report_read_tilde_as_the_home_folder(home):
    rows = [{"a": 1, "b": 0.5}]
    assert export.write_csv("~/t.csv", rows) == home / "t.csv"
    assert export.write_json("~/t.json", {"a": 1}) == home / "t.json"
    assert (home / "t.csv").is_file() and (home / "t.json").is_file()
    assert not (home.parent / "cwd" / "~").exists()
    assert export.read_csv("~/t.csv") == rows
    write_report(_net(), torch.randn(4, 1, 8, 8), None, "~/rep", examples=0, progress=False, baseline=None, dpi=30)
    assert (home / "rep" / "index.html").is_file() and not (home.parent / "cwd" / "~").exists()


def test_a_table_refused_by_its_folder_names_the_path_given(tmp_path, monkeypatch):
    hidden = str(tmp_path / ".t.csv.x1y2z3.tmp")

    def refuse(target, data, **kw):
        raise PermissionError(13, "Permission denied", hidden)  # the writer's own temporary file, as mkstemp names it

    monkeypatch.setattr(export, "atomic_write", refuse)
    for write, name in ((lambda p: export.write_csv(p, [{"a": 1}]), "t.csv"), (lambda p: export.write_json(p, {}), "t.json")):
        with pytest.raises(PermissionError) as e:
            write(tmp_path / name)
        assert e.value.filename == str(tmp_path / name) and hidden not in str(e.value), str(e.value)
        assert str(e.value).startswith("[Errno 13] path:"), str(e.value)


def test_retrofit_of_a_checkpoint_whose_training_file_moved_names_the_checkpoint_and_data(tmp_path, capsys):
    from neuroview.training.module import NeuroViewModule
    from neuroview.training.retrofit import main as retrofit

    data_file = tmp_path / "data old" / "gp.npz"
    _npz(data_file)
    torch.manual_seed(0)
    m = NeuroViewModule("small_cnn", num_classes=3, in_channels=1, model_kwargs={"widths": [4]})
    torch.save({"state_dict": m.state_dict(), "pytorch-lightning_version": "2.6.6", "hyper_parameters": dict(m.hparams),
                "datamodule_hyper_parameters": {"_class_path": "neuroview.data.NpzDataModule", "path": str(data_file)}},
               tmp_path / "last.ckpt")
    os.rename(data_file.parent, data_file.parent.with_name("data new"))
    ckpt = str(tmp_path / "last.ckpt")
    assert retrofit([ckpt, "--out", str(tmp_path / "rf.safetensors")]) == 2
    err = capsys.readouterr().err
    assert f"source: the checkpoint {ckpt!r} records" in err and str(data_file) in err, err
    assert "--data NEWPATH" in err, err


# --------------------------------------------------------------- review R3, F4: a non-UTF-8 class name in the tables
def test_a_table_of_a_non_utf8_name_is_written_escaped_as_the_page_shows_it(tmp_path):
    name = os.fsdecode(b"caf\xe9")  # 'caf\udce9'
    path = export.write_csv(tmp_path / "t.csv", [{"class": name, "x": 1}, {"class": "\ud800", "x": 2}])
    text = path.read_bytes().decode("utf-8")  # before: UnicodeEncodeError: 'utf-8' codec can't encode '\udce9'
    assert text == "class,x\ncaf\\xe9,1\n\\ud800,2\n", text  # as Python shows the bytes; any other lone one too
    assert export.read_csv(path) == [{"class": "caf\\xe9", "x": 1}, {"class": "\\ud800", "x": 2}]


def test_a_report_of_a_non_utf8_class_name_is_written(tmp_path):
    names = [os.fsdecode(b"caf\xe9"), "b", "c"]
    files = write_report(_net(), torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]), tmp_path / "rep",
                         class_names=names, examples=0, progress=False, baseline=None, dpi=30)
    assert files[-1] == "index.html"  # before: UnicodeEncodeError in write_csv, after the explanation
    rows = export.read_csv(tmp_path / "rep" / "predictions.csv")  # valid UTF-8: read_csv reads it strictly
    assert [r["true"] for r in rows] == ["caf\\xe9", "b", "c"] * 2 and "logit caf\\xe9" in rows[0]
