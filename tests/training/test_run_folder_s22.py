"""The run folder and what a run kept: a ``default_root_dir`` given as ``~/...`` (quoted, or in a config) is one run
under ``$HOME``, not split with a folder named ``~`` in the working directory; a smoke test of ``predict`` writes no
``predictions.csv``; ``--ckpt_path best`` of a run whose ``last.ckpt`` records no best is refused rather than reading
an earlier run's kept best file; a fit that kept no best checkpoint names the real reason."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from neuroview.training.cli import cli_main

DIGITS = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
         "--trainer.limit_test_batches", "1", "--trainer.limit_predict_batches", "1",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
         "--model.scheduler", "none"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)


def test_a_tilde_root_is_one_run_under_home(tmp_path, monkeypatch):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", "~/exp", *QUICK, "--trainer.max_epochs", "1"])
    cli = cli_main(["test", "--config", DIGITS, "--trainer.default_root_dir", "~/exp", *QUICK, "--ckpt_path", "last"])
    assert Path(cli.trainer.ckpt_path) == home / "exp" / "checkpoints" / "last.ckpt"
    assert not (cwd / "~").exists() and list(cwd.iterdir()) == []  # nothing in the working folder
    assert (home / "exp" / "logs" / "version_0" / "confusion_matrix.csv").is_file()  # test-after-fit's
    assert (home / "exp" / "logs" / "version_1" / "confusion_matrix.csv").is_file()  # the test command's


def test_a_smoke_test_of_predict_writes_no_predictions(tmp_path, monkeypatch):
    root = tmp_path / "run"
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--trainer.max_epochs", "1",
              "--test_after_fit", "false"])
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    cli_main(["predict", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--ckpt_path", "last",
              "--trainer.fast_dev_run", "true"])
    assert list(cwd.iterdir()) == []
    assert not list(root.rglob("predictions*.csv"))


def test_best_of_a_run_with_no_best_is_refused_not_an_earlier_runs_kept_best(tmp_path):
    root = tmp_path / "run"
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--trainer.max_epochs", "1",
              "--test_after_fit", "false"])
    first = [p.name for p in (root / "checkpoints").glob("best*.ckpt")]
    assert len(first) == 1
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--trainer.max_epochs", "1",
              "--trainer.limit_val_batches", "0", "--test_after_fit", "false"])
    kept = [p.name for p in (root / "checkpoints").glob("best*.ckpt")]
    assert kept == [first[0][:-len(".ckpt")] + "-v1.ckpt"]  # the first run's, kept aside: the second ran no validation
    with pytest.raises(ValueError, match=r"ckpt_path: 'best' reads the run's best checkpoint, and the run of .*last\.ckpt "
                                         r"kept none .* pass --ckpt_path last"):
        cli_main(["test", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--ckpt_path", "best"])


@pytest.mark.parametrize("extra, why", [
    (["--trainer.limit_val_batches", "0"], r"no validation ran: limit_val_batches 0"),
    (["--trainer.enable_checkpointing", "false"], r"checkpointing is off: enable_checkpointing false"),
    (["--trainer.check_val_every_n_epoch", "5"], r"no validation ran: it stopped after 1 epoch\(s\), 2 step\(s\), "
                                                 r"before the first validation \(check_val_every_n_epoch 5"),
    (["--checkpoint.save_top_k", "0"], r"checkpoint.save_top_k 0"),
])
def test_a_fit_with_no_best_checkpoint_names_the_real_reason(tmp_path, extra, why):
    with pytest.warns(UserWarning, match=r"test_ckpt: 'best', but the run kept no best checkpoint \(" + why):
        cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path / "run"), *QUICK,
                  "--trainer.max_epochs", "1", *extra])


def test_a_fit_with_no_validation_split_keeps_its_reason(tmp_path):
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path / "run"), *QUICK,
                  "--trainer.max_epochs", "1", "--data.init_args.val_fraction", "0"])
    texts = [str(w.message) for w in said if "test_ckpt" in str(w.message)]
    assert texts and "(no validation split to rank by" in texts[0], texts
