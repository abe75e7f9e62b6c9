"""A new ``neuroview fit`` of a recipe into the folder of an earlier run (the folder is one per recipe) kept
nothing of it: ``last.ckpt`` was written over (a run on other data replaced the earlier model without a word:
the ``ucr_*`` recipes save no best checkpoint, so not even Lightning's "not empty" warning came) and a best
checkpoint of the same name too. Each earlier file is now kept as ``<name>-v<N>.ckpt``; a resume writes on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from neuroview.training.cli import cli_main

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
         "--trainer.limit_test_batches", "1", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false", "--trainer.num_sanity_val_steps", "0"]


def _weights(path: Path) -> torch.Tensor:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return torch.cat([v.flatten().float() for k, v in sorted(state.items()) if v.is_floating_point()])


def test_a_new_run_keeps_the_earlier_runs_checkpoints(tmp_path, one_thread):
    folder = tmp_path / "checkpoints"
    runs = []
    for seed in (0, 1, 2):
        cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--seed_everything", str(seed),
                  *QUICK])
        runs.append(_weights(folder / "last.ckpt"))
    names = sorted(p.name for p in folder.glob("*.ckpt"))
    assert [n for n in names if n.startswith("last")] == ["last-v1.ckpt", "last-v2.ckpt", "last.ckpt"]
    assert len([n for n in names if n.startswith("best")]) == 3  # one a run, whatever their names
    for kept, run in zip(("last-v1.ckpt", "last-v2.ckpt", "last.ckpt"), runs):
        assert torch.equal(_weights(folder / kept), run)  # each run's own weights, none written over
    assert not torch.equal(runs[0], runs[1])
    # a resume continues the newest run in its own file (here a finished one: no step left): nothing is set aside
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--ckpt_path", "last",
              "--test_after_fit", "false", *QUICK])
    assert sorted(p.name for p in folder.glob("last*.ckpt")) == ["last-v1.ckpt", "last-v2.ckpt", "last.ckpt"]
    assert torch.equal(_weights(folder / "last-v2.ckpt"), runs[1])


def test_a_ddp_fine_tune_from_the_run_s_own_last_ckpt_reads_it_by_its_kept_name_on_every_rank(tmp_path, one_thread):
    """Rank 0 keeps the earlier last.ckpt as last-v1.ckpt before the weights load; the process Lightning starts after
    it, rank 1, looked for --model.init_weights last.ckpt and failed ("missing"). It takes the kept name from rank 0."""
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), *QUICK])
    first = _weights(tmp_path / "checkpoints" / "last.ckpt")
    args = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), *QUICK,
            "--model.init_weights", str(tmp_path / "checkpoints" / "last.ckpt"), "--test_after_fit", "false",
            "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("NEUROVIEW_KEPT_INIT_WEIGHTS", None)
    proc = subprocess.run([sys.executable, "-m", "neuroview.cli", *args], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert torch.equal(_weights(tmp_path / "checkpoints" / "last-v1.ckpt"), first)  # the earlier run, kept
    assert not torch.equal(_weights(tmp_path / "checkpoints" / "last.ckpt"), first)  # the fine-tuned one, its own


def test_the_kept_name_reaches_the_other_ranks_whatever_the_folder_s_name(tmp_path, monkeypatch):
    """The review: the names went to the other processes as "old:kept", split at the first ':' of a timestamped
    folder (run-2026-12-06T11:00), and rank 1 looked for the renamed last.ckpt again."""
    from types import SimpleNamespace

    from neuroview.training.earlier_runs import keep_earlier_checkpoints

    folder = tmp_path / "run-2026-12-06T11:00" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / "last.ckpt").write_bytes(b"weights")
    cb = SimpleNamespace(dirpath=str(folder), FILE_EXTENSION=".ckpt")

    def _run():
        model = SimpleNamespace(hparams={"init_weights": str(folder / "last.ckpt")})
        cfg = SimpleNamespace(model=SimpleNamespace(init_weights=str(folder / "last.ckpt")))
        keep_earlier_checkpoints(cb, model, cfg)
        return model.hparams["init_weights"], cfg.model.init_weights

    for k in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.delenv("NEUROVIEW_KEPT_INIT_WEIGHTS", raising=False)
    kept = str(folder / "last-v1.ckpt")
    assert _run() == (kept, kept)  # rank 0 renames
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert _run() == (kept, kept)  # rank 1 takes the name, renaming nothing
    assert sorted(p.name for p in folder.iterdir()) == ["last-v1.ckpt"]
