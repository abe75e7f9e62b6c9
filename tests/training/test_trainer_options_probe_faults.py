"""Trainer options and call orders a user chooses give what they say, or a named refusal (a probe's faults, each
failing on the code before it): a loss monitored at its lowest, a smoke test that moves no checkpoint, every save of
an epoch kept, checkpointing off, thread counts checked, metrics usable after a validate, one loader a split,
unlabelled sequences not read as labels, schedules refused where their length is unknown, sparse heads of a test loop
usable afterwards, and Lightning's warning left on for other modules."""

from __future__ import annotations

import warnings

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from neuroview.data import DigitsDataModule
from neuroview.training.cli import cli_main
from neuroview.training.module import NeuroViewModule
from neuroview.training.sparse_callback import Sparsify
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
         "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def _trainer(**kw):
    return pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      accelerator="cpu", devices=1, **kw)


def _module(**kw):
    pl.seed_everything(0)
    return NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [8, 16]}, **kw)


def test_a_loss_monitored_with_the_accuracy_s_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="checkpoint.mode: 'max' keeps the checkpoint of the highest val_loss .* "
                                         "--checkpoint.mode min"):
        cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--checkpoint.monitor",
                  "val_loss", *QUICK], run=False)
    cli = cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--checkpoint.monitor",
                    "val_loss", "--checkpoint.mode", "min", *QUICK], run=False)
    cb = cli.trainer.checkpoint_callback
    assert cb.mode == "min" and "val_loss{val_loss" in cb.filename  # named after what it ranks by, not val_acc


def test_every_save_of_an_epoch_is_kept(tmp_path):
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), *QUICK, "--trainer.max_epochs", "1",
              "--trainer.limit_train_batches", "4", "--trainer.val_check_interval", "2", "--checkpoint.save_top_k", "-1",
              "--test_after_fit", "false"])
    best = sorted(p.name for p in (tmp_path / "checkpoints").glob("best-*.ckpt"))
    assert len(best) == 2 and best[0] != best[1], best  # the two validations of epoch 0 wrote one file name


def test_a_smoke_test_moves_no_checkpoint_aside(tmp_path):
    args = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), *QUICK, "--trainer.max_epochs", "1",
            "--test_after_fit", "false"]
    cli_main(args)
    folder = tmp_path / "checkpoints"
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.ckpt")}
    cli_main([*args, "--trainer.fast_dev_run", "true"])
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.ckpt")} == before


def test_checkpointing_off_runs_without_the_command_s_checkpoint(tmp_path):
    cli = cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), *QUICK,
                    "--trainer.enable_checkpointing", "false"], run=False)
    assert cli.trainer.checkpoint_callback is None  # Lightning's raw MisconfigurationException before


@pytest.mark.parametrize("threads", ["0", "-1"])
def test_torch_threads_below_one_is_refused(tmp_path, threads):
    with pytest.raises(ValueError, match=f"torch_threads: expected an int >= 1 .*got {threads}"):
        cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), *QUICK, "--torch_threads",
                  threads], run=False)


def test_a_fit_after_a_validate_trains():
    dm, m = DigitsDataModule(batch_size=32), _module()
    _trainer().validate(m, datamodule=dm, verbose=False)  # its metric states became inference tensors
    _trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1).fit(m, datamodule=dm)
    assert not m.val_loss.mean_value.is_inference()


def test_several_validation_loaders_are_refused_by_name():
    dm, m = DigitsDataModule(batch_size=32), _module()
    dm.setup("fit")
    val = dm.val_dataloader()
    m.build(next(iter(val))[0])
    with pytest.raises(ValueError, match="validation dataloaders: NeuroViewModule scores one validation loader, got 2"):
        _trainer(limit_val_batches=1).validate(m, dataloaders=[val, val], verbose=False)


def test_unlabelled_sequences_are_not_read_as_labels():
    torch.manual_seed(0)
    m = NeuroViewModule("nv_gru", num_classes=3, in_channels=2, max_len=20)
    x, lengths = torch.randn(8, 2, 20), torch.tensor([20, 9, 19, 13, 14, 6, 20, 11])
    with pytest.raises(ValueError, match=r"a predict batch of 2 items is read as \(x, y\).*\(x, lengths\)\?"):
        _trainer().predict(m, DataLoader(TensorDataset(x, lengths), batch_size=8))
    out = _trainer().predict(m, DataLoader(TensorDataset(x, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])), batch_size=8))
    assert out[0]["probs"].shape == (8, 3)  # (x, y) with labels in range: read as before


def test_a_schedule_over_the_run_s_steps_needs_a_bound():
    dm, m = DigitsDataModule(batch_size=32), _module(scheduler="cosine")
    with pytest.raises(ValueError, match="scheduler: 'cosine' runs over the run's steps, and this run has no bound"):
        _trainer(max_epochs=-1, max_time="00:00:00:05").fit(m, datamodule=dm)


def test_plateau_with_validation_by_steps_is_refused():
    dm, m = DigitsDataModule(batch_size=32), _module(scheduler="plateau")
    with pytest.raises(ValueError, match="scheduler: 'plateau' .*check_val_every_n_epoch=None"):
        _trainer(max_epochs=2, limit_train_batches=2, check_val_every_n_epoch=None, val_check_interval=3,
                 limit_val_batches=1).fit(m, datamodule=dm)


def test_a_sparse_head_made_in_a_test_loop_loads_and_trains_afterwards():
    dm, m = DigitsDataModule(batch_size=32), _module()
    _trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=1).fit(m, datamodule=dm)
    _trainer(callbacks=[Sparsify()], limit_test_batches=1).test(m, datamodule=dm, verbose=False)
    w = m.model.classifier.weight
    assert not w.is_inference()
    m.model.load_state_dict(m.model.state_dict())  # "Inplace update to inference tensor outside InferenceMode" before


def test_a_frozen_backbone_leaves_lightning_s_warning_on_for_other_modules():
    before = list(warnings.filters)
    dm, m = DigitsDataModule(batch_size=32), _module(freeze_backbone=True)
    _trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1).fit(m, datamodule=dm)
    assert warnings.filters == before


def test_save_last_link_stays_a_link(tmp_path):
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), *QUICK, "--trainer.max_epochs", "2",
              "--checkpoint.save_last", "link", "--test_after_fit", "false"])
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert last.is_symlink() and last.resolve().name.startswith("best-")  # a regular file written over the link before


def test_predictions_of_two_loaders_are_written_one_file_each(tmp_path):
    from neuroview.training.outputs import PredictionWriter

    dm, m = DigitsDataModule(batch_size=32), _module()
    dm.setup("fit")
    loaders = [DataLoader(TensorDataset(*[t[:8] for t in dm._splits[s][:2]]), batch_size=4) for s in ("val", "test")]
    m.build(next(iter(loaders[0]))[0])
    _trainer(callbacks=[PredictionWriter(str(tmp_path))]).predict(m, loaders, return_predictions=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions_dl0.csv", "predictions_dl1.csv"]  # none before


def test_a_test_without_a_logger_writes_no_file_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "confusion_matrix.csv").write_text("the user's own\n")
    dm, m = DigitsDataModule(batch_size=32), _module()
    _trainer(limit_test_batches=1).test(m, datamodule=dm, verbose=False)
    assert (tmp_path / "confusion_matrix.csv").read_text() == "the user's own\n" and m.test_confusion is not None
