"""Fixes of a probe of the command lines: `neuroview retrofit --data` read as the network was trained and its classes
checked, --arch/--arch-kwargs refused where they do not apply; data paths recorded absolute; `neuroview explain
--split val` without a validation split and options it ignored; default entry names of odd file names."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np
import pytest
from torch import nn

from neuroview.data import CsvDataModule, NpzDataModule
from neuroview.training import minirocket_cli, sparsify_cli
from neuroview.training import retrofit as rf
from neuroview.viz import report


def _npz(path, *, lengths: bool = False, classes=(0, 1), n: int = 40, steps: int = 12):
    r = np.random.default_rng(0)
    y = np.array([classes[i % len(classes)] for i in range(n)])
    x = r.normal(size=(n, 1, steps)).astype("float32")
    arrays = {"X": x, "y": y}
    if lengths:
        arrays["lengths"] = np.array([steps if i % 2 else steps // 2 for i in range(n)])
    np.savez(path, **arrays)
    return path


def _args(source: str, data: str, **kw) -> argparse.Namespace:
    return argparse.Namespace(source=source, data=data, arch=None, arch_kwargs=None, max_len=None, **kw)


class _Net(nn.Module):
    num_classes = 2

    def forward(self, x):  # pragma: no cover - _prepare reads num_classes only
        return x


# ------------------------------------------------------------------------- F3: retrofit --data read as trained
def test_retrofit_data_path_is_read_as_the_network_was_trained(tmp_path, monkeypatch):
    path = _npz(tmp_path / "mine.npz", lengths=True)
    trained = {"name": "x", "data_module": {"class_path": "neuroview.data.NpzDataModule",
                                            "init_args": {"path": "elsewhere.npz", "normalize": "sample", "resample": True}}}
    monkeypatch.setattr(rf, "_load_standard", lambda source, arch, kw: (_Net(), trained))
    _, dm = rf._prepare(_args("nv_x.entry", str(path)))
    # the module's own defaults are normalize=True, resample=False: the entry's are carried over
    assert NpzDataModule(str(path)).resample is False and NpzDataModule(str(path)).normalize is True
    assert (dm.resample, dm.normalize) == (True, "sample")
    assert (dm.hparams["resample"], dm.hparams["normalize"]) == (True, "sample")
    x, *rest = next(iter(dm.test_dataloader()))
    assert x.shape[-1] == 12 and len(rest) == 1  # stretched to the longest: no lengths left to pass


def test_retrofit_data_of_other_classes_is_refused(tmp_path, monkeypatch):
    path = _npz(tmp_path / "mine.npz", classes=(3, 7))
    trained = {"data_module": None, "class_names": ["0", "1"]}  # a checkpoint's record: no spec, its classes
    monkeypatch.setattr(rf, "_load_standard", lambda source, arch, kw: (_Net(), trained))
    with pytest.raises(ValueError, match=r"--data: .*mine.npz: its classes, in order, are \['3', '7'\]"):
        rf._prepare(_args("run.ckpt", str(path)))


# ------------------------------------------------------------------------- F4: retrofit --arch refused
@pytest.mark.parametrize("source, extra, option", [
    ("small_cnn.digits", ["--arch", "lite"], "--arch"),
    ("small_cnn.digits", ["--arch-kwargs", '{"widths": [8, 8, 8]}'], "--arch-kwargs"),
    ("nowhere/run.ckpt", ["--data", "digits", "--arch", "small_cnn"], "--arch"),
])
def test_retrofit_refuses_arch_options_where_they_do_not_apply(source, extra, option, capsys):
    assert rf.main([source, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"neuroview retrofit: {option}: applies to a .safetensors/.pt weight file only; {source} is ")


# ------------------------------------------------------------------------- F5: absolute data paths
def test_data_paths_are_recorded_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _npz(tmp_path / "data.npz")
    (tmp_path / "a.csv").write_text("0,1,2\n1,3,4\n")
    want = str(tmp_path / "data.npz")
    dm = NpzDataModule("data.npz")
    assert str(dm.path) == want and dm.hparams["path"] == want
    csv = CsvDataModule("a.csv", test_path="a.csv")
    assert csv.hparams["path"] == str(tmp_path / "a.csv") and csv.hparams["test_path"] == str(tmp_path / "a.csv")
    assert CsvDataModule("a.csv").hparams["val_path"] is None
    assert sparsify_cli._data_spec("data.npz", dm)["init_args"]["path"] == want
    assert minirocket_cli.data_spec("data.npz")["init_args"]["path"] == want


# ------------------------------------------------------------------------- F6: explain --split val, none there
def test_explain_split_val_without_a_validation_split_is_named(tmp_path):
    dm = NpzDataModule(str(_npz(tmp_path / "d.npz")), val_fraction=0.0)
    with pytest.raises(ValueError, match=r"^--split: val: the data has no validation split \(val_fraction 0\); "
                                         r"use train or test$"):
        report.load_batch(dm, "val", 8)
    x, _, y = report.load_batch(dm, "train", 100)
    assert len(y) == 32  # 40 samples, 20% held out for the test split, none for validation


# ------------------------------------------------------------------------- F9: explain options it ignored
@pytest.mark.parametrize("argv, option", [
    (["--ckpt", "run.ckpt", "--zoo", "z"], "--zoo"),
    (["--model", "nv_small_cnn", "--weights", "w.safetensors", "--zoo", "z"], "--zoo"),
    (["--model", "nv_small_cnn", "--no-gallery", "--gallery-samples", "5"], "--gallery-samples"),
])
def test_explain_refuses_options_it_would_ignore(tmp_path, argv, option, capsys):
    with pytest.raises(SystemExit) as e:
        report.main([*argv, "--out", str(tmp_path / "r")])
    assert e.value.code == 2
    assert f"error: {option}: " in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


# ------------------------------------------------------------------------- F10: default names of odd file names
def test_default_entry_names_are_cleaned():
    args = SimpleNamespace(name=None, data=None, source="my run.ckpt")
    assert sparsify_cli._entry_name(args, {"architecture": "nv_small_cnn"}, "my run") == "nv_small_cnn.my_run_sparse"
    assert sparsify_cli._entry_name(args, {"architecture": "nv_lite"}, "a+b(1)") == "nv_lite.a_b_1__sparse"
    from neuroview.training.cli_hints import entry_tag

    assert entry_tag("some/dir/Tiny Data.npz") == "tiny_data"
    assert entry_tag("GunPoint") == "gunpoint"
    assert entry_tag('{"class_path": "x"}') == "data"


def test_minirocket_names_and_quotes_a_file_name_with_a_space(tmp_path, capsys):
    import json
    import shlex

    data, out = _npz(tmp_path / "Tiny Data.npz", n=24), tmp_path / "my zoo"
    assert minirocket_cli.main(["--data", str(data), "--num-features", "84", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed.endswith(f"--model nv_minirocket.tiny_data --zoo {shlex.quote(str(out))} --out report/nv_minirocket.tiny_data")
    assert shlex.split(printed)[-3] == str(out)  # a shell reads the folder as one argument
    entry = json.loads((out / "manifest.json").read_text())["entries"]["nv_minirocket.tiny_data"]
    assert entry["dataset"]["data_module"]["init_args"]["path"] == str(data)


def test_fit_says_when_test_ckpt_best_tests_the_last_weights(tmp_path, monkeypatch):
    from pathlib import Path

    from neuroview.training.cli import cli_main

    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    recipe = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")
    with pytest.warns(UserWarning, match=r"test_ckpt: 'best', but the run kept no best checkpoint .* the last weights "
                                         r"are tested; pass --test_ckpt last"):
        cli_main(["fit", "--config", recipe, "--trainer.default_root_dir", str(tmp_path / "run"), "--test_ckpt", "best",
                  "--data.init_args.val_fraction", "0", "--model.model_kwargs", "{widths: [8, 16]}",
                  "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.accelerator", "cpu",
                  "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
