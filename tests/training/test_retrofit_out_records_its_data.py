"""``neuroview retrofit CKPT --out FILE`` records how to rebuild the network and the data its head was fitted on, as
it was read: the file of a Lightning checkpoint's retrofit recorded only its source, so ``neuroview explain --model
nv_lite --weights FILE --data mine.npz`` needed builder arguments it could not guess and read the file by the
defaults (normalized by its own channel statistics, not one series at a time as the network was trained): 30% for a
network at 100%, with nothing said."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors import safe_open

from neuroview.training import retrofit as rf
from neuroview.training.cli import cli_main
from neuroview.viz.report import main as explain_main

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkpoint_s_retrofit_is_explained_as_it_was_fitted(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1, 30)) * rng.uniform(0.5, 20, (40, 1, 1)) + rng.uniform(-50, 50, (40, 1, 1))
    np.savez(tmp_path / "mine.npz", X=x.astype(np.float32), y=np.arange(40) % 2)
    cli_main(["fit", "--config", str(ROOT / "recipes" / "ucr_cnn.yaml"), "--data", "neuroview.data.NpzDataModule",
              "--data.init_args.path", str(tmp_path / "mine.npz"), "--trainer.default_root_dir", str(tmp_path / "run"),
              "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--test_after_fit", "false",
              "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    out = tmp_path / "nv.safetensors"
    assert rf.main([str(tmp_path / "run" / "checkpoints" / "last.ckpt"), "--data", str(tmp_path / "mine.npz"),
                    "--epochs", "5", "--out", str(out)]) == 0
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
    assert meta["neuroview.architecture"] == "nv_lite"
    data = json.loads(meta["neuroview.data"])
    assert data["init_args"]["normalize"] == "sample" and data["init_args"]["resample"] is True
    assert explain_main(["--model", "nv_lite", "--weights", str(out), "--data", str(tmp_path / "mine.npz"),
                         "--samples", "6", "--examples", "0", "--no-progress", "--no-gallery", "--dpi", "30",
                         "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["read_as"]["normalize"] == "sample" and report["read_as"]["resample"] is True
    # the classes its outputs index travel too: a file with class 0 renamed 5 numbers 1, 5 as 0, 1, and was explained
    assert json.loads(meta["neuroview.classes"]) == ["0", "1"]
    np.savez(tmp_path / "renamed.npz", X=x.astype(np.float32), y=np.where(np.arange(40) % 2 == 0, 5, 1))
    capsys.readouterr()
    assert explain_main(["--model", "nv_lite", "--weights", str(out), "--data", str(tmp_path / "renamed.npz"),
                         "--no-progress", "--no-gallery", "--out", str(tmp_path / "r2")]) != 0
    assert ("expected labels among the classes of the model the data is read for ['0', '1'], got ['5']"
            in capsys.readouterr().err)  # '1' is the model's class 1; '5' is none of its classes


def test_a_checkpoint_is_retrofitted_on_the_data_it_records(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "mine.npz", X=rng.normal(size=(40, 1, 30)).astype(np.float32), y=np.arange(40) % 2)
    cli_main(["fit", "--config", str(ROOT / "recipes" / "ucr_cnn.yaml"), "--data", "neuroview.data.NpzDataModule",
              "--data.init_args.path", str(tmp_path / "mine.npz"), "--trainer.default_root_dir", str(tmp_path / "run"),
              "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--test_after_fit", "false",
              "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    capsys.readouterr()
    assert rf.main([str(tmp_path / "run" / "checkpoints" / "last.ckpt"), "--epochs", "5"]) == 0  # no --data needed
    assert "retrofit of" in capsys.readouterr().out
