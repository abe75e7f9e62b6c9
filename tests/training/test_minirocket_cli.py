"""`neuroview minirocket` on a user's own .npz: a zoo entry and its sparse variant that load, decide
as the fitted network did, and explain themselves with bars named by kernel."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import neuroview as nv
from neuroview.cli import main as cli
from neuroview.zoo.pretrained import read_manifest


def _recordings(path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 1, 48)).astype(np.float32)
    y = (x[:, 0, 10:20].mean(1) > 0).astype(int)
    x[y == 1, 0, 30:34] += 2.0  # a bump where class 1 lives
    np.savez(path, X=(x * rng.uniform(0.5, 3, (60, 1, 1))).astype(np.float32), y=np.array(["off", "on"])[y])
    return path


def test_minirocket_command_writes_entries_that_load_and_explain(tmp_path, capsys):
    data, out = _recordings(tmp_path / "my.npz"), tmp_path / "zoo"
    assert cli(["minirocket", "--data", str(data), "--num-features", "168", "--max-k90", "10", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "neuroview explain --model nv_minirocket.my_sparse" in printed
    manifest = read_manifest(out)
    dense, sparse = manifest["nv_minirocket.my"], manifest["nv_minirocket.my_sparse"]
    assert dense["arch_kwargs"] == {"num_classes": 2, "in_channels": 1, "max_len": 48, "num_features": 168, "seed": 0}
    assert dense["dataset"]["data_module"]["init_args"] == {"path": str(data), "val_fraction": 0.0, "normalize": "sample",
                                                            "resample": True}
    assert sparse["metrics"]["units_per_class"] < dense["metrics"]["units_per_class"]
    assert cli(["minirocket", "--data", str(data), "--num-features", "84", "--normalize", "none", "--out", str(tmp_path / "raw")]) == 0
    assert read_manifest(tmp_path / "raw")["nv_minirocket.my"]["dataset"]["data_module"]["init_args"]["normalize"] is False
    net = nv.create_model("nv_minirocket.my_sparse", pretrained=True, root=out)
    x = torch.as_tensor(np.load(data)["X"][:8])
    exp = net.explain(x, baseline="mean")
    torch.testing.assert_close(exp.for_class().sum(-1) + exp.bias[exp.target], net(x).gather(1, exp.target[:, None])[:, 0],
                               atol=1e-4, rtol=1e-5)
    from neuroview.viz.report import main as explain  # matplotlib: the dev extra

    assert explain(["--model", "nv_minirocket.my_sparse", "--zoo", str(out), "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["max_abs_residual"] < 1e-4 and any(f["file"].startswith("waterfall_") for f in report["figures"])


def test_minirocket_command_errors_write_nothing(tmp_path, capsys):
    assert cli(["minirocket", "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "zoo")]) == 2
    assert "--data: no such file" in capsys.readouterr().err
    assert cli(["minirocket", "--data", "NoSuchSet", "--out", str(tmp_path / "zoo")]) == 2
    assert "--data: expected mnist1d, one of" in capsys.readouterr().err
    assert cli(["minirocket", "--data", str(_recordings(tmp_path / "my.npz")), "--num-features", "10",
                "--out", str(tmp_path / "zoo")]) == 2
    assert "num_features: expected an int >= 84, got 10" in capsys.readouterr().err
    assert not (tmp_path / "zoo").exists()


def test_entries_already_in_out_are_kept_unless_overwrite(tmp_path, capsys):
    """A second run into the same --out replaced the first one's entries without a word."""
    data, out = _recordings(tmp_path / "my.npz"), tmp_path / "zoo"
    assert cli(["minirocket", "--data", str(data), "--num-features", "84", "--out", str(out)]) == 0
    before = (out / "manifest.json").read_bytes(), (out / "nv_minirocket.my.safetensors").read_bytes()
    assert cli(["minirocket", "--data", str(data), "--num-features", "168", "--out", str(out)]) == 2
    assert f"out: {out} already holds nv_minirocket.my (an earlier run's)" in capsys.readouterr().err
    assert ((out / "manifest.json").read_bytes(), (out / "nv_minirocket.my.safetensors").read_bytes()) == before
    # the sparse entry it would add is new, but the dense one is not: still refused as a whole
    assert cli(["minirocket", "--data", str(data), "--max-k90", "10", "--out", str(out)]) == 2
    assert cli(["minirocket", "--data", str(data), "--num-features", "168", "--out", str(out), "--overwrite"]) == 0
    assert read_manifest(out)["nv_minirocket.my"]["arch_kwargs"]["num_features"] == 168


def test_a_variable_length_npz_is_stretched_and_a_spec_without_resample_is_refused(tmp_path, capsys):
    path = tmp_path / "var.npz"
    rng = np.random.default_rng(1)
    np.savez(path, X=rng.normal(size=(30, 1, 40)).astype(np.float32), y=np.arange(30) % 2,
             lengths=rng.integers(20, 41, 30))
    assert cli(["minirocket", "--data", str(path), "--num-features", "84", "--out", str(tmp_path / "a")]) == 0
    spec = json.dumps({"class_path": "neuroview.data.NpzDataModule", "init_args": {"path": str(path), "val_fraction": 0.0}})
    assert cli(["minirocket", "--data", spec, "--num-features", "84", "--out", str(tmp_path / "b")]) == 2
    assert "MiniRocket reads series of one length" in capsys.readouterr().err and not (tmp_path / "b").exists()


def test_series_rescaled_one_by_one_give_the_same_accuracy(tmp_path):
    """Every GunPoint series times a random factor plus a random offset: the command's per-series
    normalization makes MiniRocket's features, so its accuracy, what they were (raw, they are not)."""
    from neuroview.data import NpzDataModule

    load_classification = pytest.importorskip("aeon.datasets").load_classification  # GunPoint ships inside aeon

    (xtr, ytr), (xte, yte) = (load_classification("GunPoint", split=s) for s in ("train", "test"))
    rng = np.random.default_rng(0)
    scale = lambda x: (x * rng.uniform(0.1, 10, (len(x), 1, 1)) + rng.uniform(-5, 5, (len(x), 1, 1))).astype(np.float32)
    accs = {}
    for tag, a, b in (("as is", xtr.astype(np.float32), xte.astype(np.float32)), ("rescaled", scale(xtr), scale(xte))):
        np.savez(tmp_path / f"{tag}.npz", X=a, y=ytr, X_test=b, y_test=yte)
        for norm in ("sample", False):
            dm = NpzDataModule(str(tmp_path / f"{tag}.npz"), val_fraction=0.0, normalize=norm)
            net = nv.minirocket(dm, num_features=840)
            dm.setup("test")
            accs[tag, norm] = torch.cat([(net(x).argmax(1) == y).float() for x, y in dm.test_dataloader()]).mean().item()
    assert abs(accs["rescaled", "sample"] - accs["as is", "sample"]) <= 1 / 150 + 1e-9  # at most one series of 150
    assert accs["rescaled", False] < accs["as is", False] - 0.05  # what the normalization is for


def test_a_minirocket_entry_records_its_classes_and_explain_refuses_data_of_others(tmp_path, capsys):
    """The entries recorded no class names, so `explain --data` read a file with class "off" renamed "idle" as the
    model's classes by position ("idle" scored as "off"'s index, "on" as another): accuracy 33% of a model at 100%."""
    data, out = _recordings(tmp_path / "my.npz"), tmp_path / "zoo"
    assert cli(["minirocket", "--data", str(data), "--num-features", "84", "--out", str(out)]) == 0
    assert read_manifest(out)["nv_minirocket.my"]["dataset"]["class_names"] == ["off", "on"]
    with np.load(data) as f:
        x, y = f["X"], f["y"]
    np.savez(tmp_path / "renamed.npz", X=x, y=np.where(y == "off", "zzz", y))  # the order: on, zzz
    capsys.readouterr()
    assert cli(["explain", "--model", "nv_minirocket.my", "--zoo", str(out), "--data", str(tmp_path / "renamed.npz"),
                "--no-gallery", "--no-progress", "--out", str(tmp_path / "r")]) != 0
    # a file of new series, read whole: its labels looked up by name among the entry's classes, 'zzz' is none of them
    assert ("among the classes of the model the data is read for ['off', 'on'], got ['zzz']"
            in capsys.readouterr().err)
    assert not (tmp_path / "r").exists()
