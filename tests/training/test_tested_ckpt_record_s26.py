"""The run's log folder names the file a test (or validate) scored, with that file's epoch and step (probe s26 P5,
finding 1): fit's own test of its best checkpoint was logged on the row of fit's last step (epoch 4, step 80 for the
epoch-2 / step-60 weights of ``best-epoch002-step000060-*.ckpt``), and nothing in the run folder named the file."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from neuroview.training.cli import cli_main

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
BATCHES = 3  # training batches an epoch: the step of a checkpoint is epochs * BATCHES, counted here, not read
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", str(BATCHES),
         "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false"]
# validation after epoch 2 only (of 0..3): the best checkpoint is epoch 2's, last.ckpt epoch 3's
FIT = ["fit", "--config", DIGITS, "--trainer.max_epochs", "4", "--trainer.check_val_every_n_epoch", "3", *QUICK]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def _rows(log: Path, column: str) -> list[dict]:
    with open(log / "metrics.csv") as f:
        return [r for r in csv.DictReader(f) if r.get(column)]


def _record(log: Path) -> dict:
    return json.loads((log / "tested_checkpoint.json").read_text(encoding="utf-8"))


def test_fit_records_the_best_file_it_tested_and_that_files_step_not_the_last(tmp_path, capsys):
    root = tmp_path / "run"
    cli_main([*FIT, "--trainer.default_root_dir", str(root)])
    best = next((root / "checkpoints").glob("best-epoch002-*.ckpt"))
    assert re.search(rf"-step{3 * BATCHES:06d}-", best.name)  # the file the test must name: epoch 2, step 9
    log = root / "logs" / "version_0"
    rec = _record(log)
    assert Path(rec["ckpt_path"]) == best and rec["stage"] == "test"
    assert (rec["epoch"], rec["global_step"]) == (2, 3 * BATCHES)  # not last.ckpt's (3, 12)
    row = _rows(log, "test_acc")[0]
    assert float(row["tested_epoch"]) == 2 and float(row["tested_step"]) == 3 * BATCHES  # beside test_acc
    assert float(row["step"]) == 4 * BATCHES  # the row's own step is still fit's last: hence the columns
    err = capsys.readouterr().err
    assert f"tested {best} (epoch 2, step {3 * BATCHES})" in err


def test_fit_with_test_ckpt_last_records_the_weights_it_ended_with(tmp_path, capsys):
    root = tmp_path / "run"
    cli_main([*FIT, "--trainer.default_root_dir", str(root), "--test_ckpt", "last"])
    log = root / "logs" / "version_0"
    rec = _record(log)
    # the weights in memory are last.ckpt's: the last epoch (3 of 0..3) after its last step
    assert rec["ckpt_path"] is None and (rec["epoch"], rec["global_step"]) == (3, 4 * BATCHES)
    row = _rows(log, "test_acc")[0]
    assert (float(row["tested_epoch"]), float(row["tested_step"])) == (3, 4 * BATCHES)
    assert f"(epoch 3, step {4 * BATCHES})" in capsys.readouterr().err


@pytest.mark.parametrize(("sub", "which", "epoch", "column"), [("test", "best", 2, "test_acc"),
                                                                ("validate", "last", 3, "val_acc")])
def test_test_and_validate_with_ckpt_path_record_the_file_they_scored(tmp_path, capsys, sub, which, epoch, column):
    root = tmp_path / "run"
    cli_main([*FIT, "--trainer.default_root_dir", str(root), "--test_after_fit", "false"])
    capsys.readouterr()
    cli_main([sub, "--config", DIGITS, "--trainer.default_root_dir", str(root), "--ckpt_path", which, *QUICK[2:]])
    scored = next((root / "checkpoints").glob("best-*.ckpt")) if which == "best" else root / "checkpoints" / "last.ckpt"
    log = root / "logs" / "version_1"  # the evaluation's own log folder
    rec = _record(log)
    assert Path(rec["ckpt_path"]).resolve() == scored.resolve() and rec["stage"] == sub
    assert (rec["epoch"], rec["global_step"]) == (epoch, (epoch + 1) * BATCHES)
    row = _rows(log, column)[0]
    assert (float(row["tested_epoch"]), float(row["tested_step"])) == (epoch, (epoch + 1) * BATCHES)
    assert f"(epoch {epoch}, step {(epoch + 1) * BATCHES})" in capsys.readouterr().err
    assert not (root / "logs" / "version_0" / "tested_checkpoint.json").exists()  # the fit tested nothing


@pytest.mark.parametrize("option", ["--ckpt_path", "--model.init_weights"])
def test_a_relative_path_is_recorded_absolute(tmp_path, capsys, monkeypatch, option):
    # probe s26 R2, finding 2: the path was recorded as typed, relative to the working folder of the test
    root = tmp_path / "run"
    cli_main([*FIT, "--trainer.default_root_dir", str(root), "--test_after_fit", "false"])
    best = next((root / "checkpoints").glob("best-*.ckpt"))
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    typed = f"run/checkpoints/{best.name}"  # relative to tmp_path
    # init_weights loads into the network the command builds: its widths too
    cli_main(["test", "--config", DIGITS, "--trainer.default_root_dir", str(root), option, typed,
              *(QUICK if option == "--model.init_weights" else QUICK[2:])])
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # read from another folder, as a later reader of the log folder does
    rec = _record(root / "logs" / "version_1")
    assert rec["ckpt_path"] == str(tmp_path / "run" / "checkpoints" / best.name)  # absolute, built here from tmp_path
    assert Path(rec["ckpt_path"]).is_file() and (rec["epoch"], rec["global_step"]) == (2, 3 * BATCHES)
    assert f"tested {tmp_path / 'run' / 'checkpoints' / best.name}" in capsys.readouterr().err


def test_fit_with_sparsify_records_the_sparse_network_it_scored_not_the_dense_file(tmp_path, capsys):
    # probe s26 R2, finding 1: Sparsify swaps the network for a sparse one before the test; the record named the dense
    # best file (which scores otherwise), and stamped the scores with that file's epoch and step
    root = tmp_path / "run"
    cli_main([*FIT, "--trainer.default_root_dir", str(root),
              "--trainer.callbacks+=neuroview.training.sparse_callback.Sparsify"])
    best = next((root / "checkpoints").glob("best-epoch002-*.ckpt"))
    log = root / "logs" / "version_0"
    sparse = log / "sparse.safetensors"
    assert sparse.is_file()  # the callback's own file, where it says it writes it
    rec = _record(log)
    assert rec["ckpt_path"] == str(sparse)
    assert "Sparsify" in rec["weights"] and str(best) in rec["weights"]
    assert (rec["epoch"], rec["global_step"]) == (None, None)  # a head fitted after training: no step of its own
    back = rec["backbone"]  # the restored file the head was fitted on, with that file's epoch and step
    assert back["ckpt_path"] == str(best) and (back["epoch"], back["global_step"]) == (2, 3 * BATCHES)
    row = _rows(log, "test_acc")[0]
    assert not row.get("tested_epoch") and not row.get("tested_step")  # no epoch beside the sparse network's scores
    err = capsys.readouterr().err
    assert f"tested {sparse}" in err and f"tested {best} (" not in err


def _spawn_trainer(tmp_path):
    import pytorch_lightning as pl  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    from neuroview.training.tested_ckpt import TestedCheckpoint  # noqa: PLC0415

    ckpt = pl.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "checkpoints"), save_last=True)
    tested = TestedCheckpoint()
    trainer = pl.Trainer(strategy="ddp_spawn", devices=2, accelerator="cpu", callbacks=[ckpt, tested], logger=False)
    module = pl.LightningModule()
    module.model = nn.Linear(3, 2)
    return trainer, module, ckpt, tested


@pytest.mark.parametrize("same", [True, False])
def test_a_spawned_fit_tested_as_it_ended_reads_the_step_from_last_ckpt_when_its_weights_are_those(tmp_path, same):
    # probe s26 R2, finding 3: after a ddp_spawn fit the main process counted no step: --test_ckpt last recorded
    # "unknown" though last.ckpt holds the weights recovered from the workers, with their epoch and step
    import torch  # noqa: PLC0415

    from neuroview.training.tested_ckpt import mark_fit_weights  # noqa: PLC0415

    trainer, module, ckpt, tested = _spawn_trainer(tmp_path)
    assert trainer.global_step == 0  # as after a spawned fit, in the main process
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    state = {k: v.clone() + (0 if same else 1) for k, v in module.state_dict().items()}
    torch.save({"epoch": 2, "global_step": 9, "state_dict": state}, last)
    mark_fit_weights(trainer, module, ckpt)
    if same:  # the weights tested are that file's: its epoch and step, the file named
        assert tested.fit_weights == (str(last), 2, 9)
    else:  # other weights (a step after the file was written): not known, said so
        assert tested.fit_weights == (None, None, None)
