"""A checkpoint or sparse zoo entry and the training file it was made on (probe P10, findings 2 and 3): a checkpoint
written before neuroview recorded the fingerprint of its training split was scored on the changed file without a word
(5 of 8 "test" series trained on); a sparse entry made from a checkpoint on a file kept no fingerprint, so
`explain --model ENTRY` scored the reordered file's "test" split, training series among them, as unseen. Expected
values are computed here: the checkpoint's own record, read from the file, and the test split's rows before and after
the file is reordered."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from neuroview.data import NpzDataModule
from neuroview.data.file_record import RECORD, hold_to_checkpoint
from neuroview.data.splits import whole_files
from neuroview.training.cli import cli_main
from neuroview.training.sparsify_cli import main as sparsify_main
from neuroview.viz.report import main as explain_main
from neuroview.zoo.evaluate import make_datamodule

NO_RECORD = r"records no fingerprint of its training split"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def _write(path: Path, order=None) -> None:
    """40 series of 16 steps, series ``i`` all ``i`` plus a bump for class 1 (its row readable after the carve, with
    normalize off), class ``i % 2``; ``order``: its rows written in that order."""
    i = np.arange(40) if order is None else np.asarray(order)
    x = np.repeat(i[:, None, None].astype(np.float32), 16, axis=2)
    x[i % 2 == 1, :, 4:9] += 0.5
    np.savez(path, X=x, y=np.array(["a", "b"])[i % 2])


def _config(tmp_path: Path, name: str, path: Path) -> str:
    cfg = {"seed_everything": 0, "torch_threads": 1,
           "model": {"arch": "nv_small_cnn", "model_kwargs": {"widths": [4], "dims": 1}, "lr": 0.05, "scheduler": "none"},
           "data": {"class_path": "neuroview.data.NpzDataModule",
                    "init_args": {"path": str(path), "batch_size": 8, "normalize": False}},
           "trainer": {"max_epochs": 1, "accelerator": "cpu", "enable_progress_bar": False,
                       "enable_model_summary": False, "default_root_dir": str(tmp_path / name)}}
    out = tmp_path / f"{name}.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return str(out)


@pytest.fixture
def run(tmp_path):
    """``(training file, config, checkpoint)`` of a one-epoch fit on a tiny .npz (its test split carved)."""
    path = tmp_path / "train.npz"
    _write(path)
    cfg = _config(tmp_path, "fit", path)
    cli_main(["fit", "--config", cfg, "--test_after_fit", "false"])
    return path, cfg, str(tmp_path / "fit" / "checkpoints" / "last.ckpt")


def _old_style(ckpt: str, out: Path) -> str:
    """The checkpoint as the previous version wrote it: its data-module state without the file's record."""
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert RECORD in saved["NpzDataModule"]  # this version records it
    saved["NpzDataModule"].pop(RECORD)
    torch.save(saved, out)
    return str(out)


def _test_rows(dm) -> list[int]:
    dm.setup("test")
    return sorted(int(round(float(dm._dataset("test")[j][0][0, 0]))) for j in range(len(dm._dataset("test"))))


def _said(caught, pattern: str = NO_RECORD) -> list[str]:
    import re

    return [str(w.message) for w in caught if issubclass(w.category, UserWarning) and re.search(pattern, str(w.message))]


def test_a_sparse_entry_keeps_the_checkpoint_s_record_and_refuses_its_file_changed(run, tmp_path, capsys):
    path, _, ckpt = run
    assert sparsify_main([ckpt, "--out", str(tmp_path / "zoo"), "--name", "nv_small_cnn.mine"]) == 0
    entry = json.loads((tmp_path / "zoo" / "manifest.json").read_text())["entries"]["nv_small_cnn.mine"]
    spec = entry["dataset"]["data_module"]
    trained = torch.load(ckpt, map_location="cpu", weights_only=False)["NpzDataModule"][RECORD]
    assert spec[RECORD]["series_sha256"] == trained["series_sha256"] and spec[RECORD]["path"] == str(path)
    before = _test_rows(make_datamodule(spec))  # unchanged: read as it is, nothing refused
    order = np.random.default_rng(5).permutation(40)
    _write(path, order)  # the same 40 series, another order
    plain = {k: v for k, v in spec.items() if k != RECORD}  # what the entry held before: carved otherwise, unsaid
    assert set(_test_rows(make_datamodule(plain))) - set(before)  # the fault is real: other rows in its test split
    with pytest.raises(ValueError, match=r"path: .*train\.npz is the file the zoo entry nv_small_cnn\.mine was trained "
                                         r"on, but its training split changed since"):
        _test_rows(make_datamodule(spec))
    capsys.readouterr()
    rc = explain_main(["--model", "nv_small_cnn.mine", "--zoo", str(tmp_path / "zoo"), "--out", str(tmp_path / "rep"),
                       "--no-progress", "--no-gallery", "--samples", "8"])
    err = capsys.readouterr().err
    assert rc == 2 and "train.npz is the file the zoo entry nv_small_cnn.mine was trained on" in err, err
    assert not (tmp_path / "rep" / "report.json").exists()
    rc = explain_main(["--model", "nv_small_cnn.mine", "--zoo", str(tmp_path / "zoo"), "--out", str(tmp_path / "rep"),
                       "--no-progress", "--no-gallery", "--samples", "8", "--data", str(path)])  # named as --data
    err = capsys.readouterr().err
    assert rc == 2 and "train.npz is the file the zoo entry nv_small_cnn.mine was trained on" in err, err
    new = tmp_path / "new.npz"
    _write(new, order)  # the new contents under another name, the training file restored: new data, read whole
    _write(path)
    rc = explain_main(["--model", "nv_small_cnn.mine", "--zoo", str(tmp_path / "zoo"), "--out", str(tmp_path / "rep"),
                       "--no-progress", "--no-gallery", "--samples", "8", "--data", str(new)])
    assert rc == 0, capsys.readouterr().err


def test_an_old_style_checkpoint_warns_once_where_its_file_is_carved(run, tmp_path, capsys):
    path, cfg, ckpt = run
    old = _old_style(ckpt, tmp_path / "old.ckpt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli_main(["test", "--config", cfg, "--ckpt_path", old])
    said = _said(caught)
    assert len(said) == 1 and "old.ckpt" in said[0] and "train.npz" in said[0] and "A fit with this version" in said[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = explain_main(["--ckpt", old, "--out", str(tmp_path / "rep"), "--no-progress", "--no-gallery",
                           "--samples", "8"])
    assert rc == 0 and len(_said(caught)) == 1, capsys.readouterr().err
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = sparsify_main([old, "--out", str(tmp_path / "zoo"), "--name", "nv_small_cnn.old"])
    assert rc == 0 and len(_said(caught)) == 1, capsys.readouterr().err


def test_no_warning_for_a_recorded_checkpoint_or_a_file_read_whole(run, tmp_path):
    path, cfg, ckpt = run
    old = _old_style(ckpt, tmp_path / "old.ckpt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli_main(["test", "--config", cfg, "--ckpt_path", ckpt])  # the record is there, and held: nothing to say
        dm = NpzDataModule(str(path), normalize=False)
        hold_to_checkpoint(dm, ckpt)
        dm.setup("test")
        new = tmp_path / "new.npz"
        _write(new, np.arange(10))
        with whole_files():  # new data, scored whole: not the model's own file
            other = NpzDataModule(str(new), normalize=False, val_fraction=0)
            hold_to_checkpoint(other, old)
            other.setup("test")
    assert _said(caught) == []
    dm = NpzDataModule(str(path), normalize=False)
    with pytest.warns(UserWarning, match=NO_RECORD):
        hold_to_checkpoint(dm, old)
        dm.setup("test")


def test_an_old_checkpoint_on_another_file_carved_is_not_warned_of(run, tmp_path):
    """Another file carved with the old checkpoint (validate, sparsify --data) is not the model's own: nothing to say
    of a change to it since training (the warning named that file as if it were the trained one)."""
    path, cfg, ckpt = run
    old = _old_style(ckpt, tmp_path / "old.ckpt")
    other = tmp_path / "other.npz"
    _write(other, np.arange(40)[::-1])
    dm = NpzDataModule(str(other), normalize=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hold_to_checkpoint(dm, old)
        dm.setup("fit")
    assert _said(caught) == []
    copy = tmp_path / "copy.npz"  # a copy of the trained file is carved as the model's own: said
    copy.write_bytes(Path(path).read_bytes())
    dm = NpzDataModule(str(copy), normalize=False)
    with pytest.warns(UserWarning, match=NO_RECORD):
        hold_to_checkpoint(dm, old)
        dm.setup("fit")


def test_an_old_checkpoint_with_a_relative_training_path_still_warns(run, tmp_path, monkeypatch):
    """Checkpoints of before 43f626c saved the path as given (relative): of a working folder not known here, so the
    file cannot be told another and the warning is said, as before the own-file rule."""
    path, cfg, ckpt = run
    saved = torch.load(_old_style(ckpt, tmp_path / "old.ckpt"), map_location="cpu", weights_only=False)
    saved["datamodule_hyper_parameters"]["path"] = Path(path).name  # relative, as an old run from its folder saved it
    rel = tmp_path / "rel.ckpt"
    torch.save(saved, rel)
    monkeypatch.chdir(tmp_path)  # another folder than the training file's
    dm = NpzDataModule(str(path), normalize=False)
    with pytest.warns(UserWarning, match=NO_RECORD):
        hold_to_checkpoint(dm, str(rel))
        dm.setup("fit")


def test_an_old_checkpoint_given_as_init_weights_warns_too(run, tmp_path):
    """--model.init_weights carves the model's own file as --ckpt_path does, and was silent (P11 #2)."""
    path, cfg, ckpt = run
    old = _old_style(ckpt, tmp_path / "old.ckpt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli_main(["test", "--config", cfg, "--model.init_weights", old])
    said = _said(caught)
    assert len(said) == 1 and "old.ckpt" in said[0] and "train.npz" in said[0]
