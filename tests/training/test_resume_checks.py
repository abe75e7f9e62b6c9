"""`--ckpt_path` names a file that is there, and a resume (or a test of a checkpoint) runs with the options the
checkpoint was made with: another budget for its schedule, other data splits and batches, or model options the
checkpoint's model would drop are refused by name."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from neuroview import cli
from neuroview.training.cli import cli_main

DIGITS = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
         "--test_after_fit", "false"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)


def one_epoch(root: Path, *extra: str) -> list[str]:
    args = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, *extra]
    cli_main([*args, "--trainer.max_epochs", "1"])
    return args


@pytest.mark.parametrize("scheduler", ["cosine", "onecycle"])
def test_a_resume_with_another_budget_is_refused_when_the_schedule_depends_on_it(scheduler, tmp_path):
    """Lightning restores the checkpoint's scheduler, built for the old budget: a cosine reached 0 and climbed back
    to the peak, onecycle died with torch's bare "Tried to step 7 times"."""
    args = one_epoch(tmp_path / "run", "--model.scheduler", scheduler)
    with pytest.raises(ValueError, match=rf"--trainer.max_epochs/--trainer.max_steps: the checkpoint's {scheduler} schedule "
                                         r"runs over 3 optimizer steps \(it was started with max_epochs 1, max_steps -1\), "
                                         r"and this run's budget \(max_epochs 2, max_steps -1\) gives 6; .*--model.init_weights"):
        cli_main([*args, "--trainer.max_epochs", "2", "--ckpt_path", "last"])
    with pytest.raises(ValueError, match=r"\(max_epochs 3, max_steps 5\) gives 5"):
        cli_main([*args, "--trainer.max_epochs", "3", "--trainer.max_steps", "5", "--ckpt_path", "last"])
    cli = cli_main([*args, "--trainer.max_epochs", "1", "--ckpt_path", "last"])  # its own budget: nothing left to do
    assert cli.trainer.global_step == 3


def test_a_resume_with_a_schedule_that_reads_no_budget_may_extend_it(tmp_path):
    args = one_epoch(tmp_path / "run", "--model.scheduler", "none")
    cli = cli_main([*args, "--trainer.max_epochs", "2", "--ckpt_path", "last"])
    assert cli.trainer.global_step == 6


def test_a_resume_with_other_data_options_is_refused_by_name(tmp_path):
    """Another seed, val_fraction or batch size gave other splits mid-run: a validation split overlapping the samples
    trained on, without a word. Compared with the checkpoint's datamodule_hyper_parameters (a data module that saves
    its init args; put there by hand when this one does not yet)."""
    root = tmp_path / "run"
    args = one_epoch(root)
    last = root / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    if not ckpt.get("datamodule_hyper_parameters"):
        ckpt["datamodule_hyper_parameters"] = {"_class_path": "neuroview.data.DigitsDataModule", "test_fraction": 0.2,
                                               "batch_size": 64, "val_fraction": 0.1, "seed": 0, "val_fold": None,
                                               "normalize": True, "num_workers": 0, "eval_batch_size": None}
        torch.save(ckpt, last)
    with pytest.raises(ValueError, match=r"ckpt_path: .*last.ckpt resumes a run trained on other data options "
                                         r"\(--data.init_args.batch_size 16 asked, 64 in the checkpoint; "
                                         r"--data.init_args.seed 1 asked, 0 in the checkpoint; "
                                         r"--data.init_args.val_fraction 0.3 asked, 0.1 in the checkpoint\); "
                                         r"its splits and batches would change"):
        cli_main([*args, "--trainer.max_epochs", "1", "--ckpt_path", "last", "--data.init_args.seed", "1",
                  "--data.init_args.val_fraction", "0.3", "--data.init_args.batch_size", "16"])
    # what changes neither the splits nor the batches is fine
    cli = cli_main([*args, "--trainer.max_epochs", "1", "--ckpt_path", "last", "--data.init_args.eval_batch_size", "32"])
    assert cli.trainer.global_step == 3


@pytest.mark.parametrize("sub", ["test", "validate", "predict"])
def test_evaluating_a_checkpoint_with_model_options_it_would_drop_is_refused(sub, tmp_path):
    """Lightning rebuilds the checkpoint's model for test/validate/predict: `--model.model_kwargs.quantizer hard`
    or `--model.lr 0.1` were dropped without a word. The recipe's own options (another width here) are the
    checkpoint's business, as before."""
    root = tmp_path / "run"
    one_epoch(root)
    last = str(root / "checkpoints" / "last.ckpt")
    args = [sub, "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK[2:-2], "--ckpt_path", last]
    with pytest.raises(ValueError, match=r"ckpt_path: .*last.ckpt holds a model trained with other model options "
                                         r"\(model.model_kwargs \{'widths': \[32, 64, 128\], 'quantizer': 'hard'\} asked, "
                                         rf"\{{'widths': \[8, 16\]\}} in the checkpoint\); `neuroview {sub}`"):
        cli_main([*args, "--model.model_kwargs.quantizer", "hard"])
    with pytest.raises(ValueError, match=r"\(model.lr 0.1 asked, 0.003 in the checkpoint\)"):
        cli_main([*args, "--model.lr", "0.1"])
    if sub == "test":
        cli = cli_main(args)  # no model option named: the checkpoint's model, as it was
        assert "test_acc" in cli.trainer.callback_metrics


def test_a_checkpoint_that_is_not_there_is_one_line_exit_2(tmp_path, capsys):
    """A path that is no file printed Lightning's 41-line traceback (exit 1); `last` with no last.ckpt only warned
    and started a new run (fit) or ran untrained weights (test)."""
    root = ["--config", DIGITS, "--trainer.default_root_dir", str(tmp_path / "run"), *QUICK]
    assert cli.main(["fit", *root, "--ckpt_path", str(tmp_path / "nonexist.ckpt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"neuroview fit: ckpt_path: expected a checkpoint file, got '{tmp_path / 'nonexist.ckpt'}' "
                          "(no such file)\n") and "Traceback" not in err
    assert cli.main(["fit", *root, "--ckpt_path", "last"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuroview fit: ckpt_path: 'last' resumes the last checkpoint in ") and "(no last.ckpt)" in err
    assert "run without --ckpt_path to start a new run" in err and not (tmp_path / "run" / "checkpoints").exists()
    assert cli.main(["test", *root[:-2], "--ckpt_path", "last"]) == 2
    assert capsys.readouterr().err.startswith("neuroview test: ckpt_path: 'last' reads the last checkpoint in ")


def test_a_resume_from_a_save_within_an_epoch_says_it_cannot_continue_the_run_exactly(tmp_path):
    """A last.ckpt saved mid-epoch (max_steps, a validation or save within the epoch) resumed with other batches than
    the uninterrupted run (0 of 35 resumed batches the same in a probe), with only Lightning's warning naming nothing
    to do. A save at an epoch's end resumes exactly and says nothing."""
    args = one_epoch(tmp_path / "run", "--model.scheduler", "none")  # 3 batches: saved at the epoch's end
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        cli_main([*args, "--trainer.max_epochs", "2", "--ckpt_path", "last"])
    assert not [w for w in got if "saved within epoch" in str(w.message)]
    args = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path / "mid"), *QUICK, "--model.scheduler", "none"]
    cli_main([*args, "--trainer.max_steps", "2"])  # stopped after 2 of the epoch's 3 batches
    with pytest.warns(UserWarning, match=r"ckpt_path: saved within epoch 0, after 2 of its batches .*reads other batches "
                                         r"than the uninterrupted one would"):
        cli_main([*args, "--trainer.max_steps", "6", "--ckpt_path", "last"])
    # a save every 2 steps (at a batch's end, before Lightning counts the batch completed): 2 batches, not 1
    steps = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path / "steps"), *QUICK, "--model.scheduler",
             "none", "--checkpoint.every_n_train_steps", "2", "--checkpoint.save_top_k", "-1",
             "--checkpoint.monitor", "null", "--checkpoint.filename", "at-{step}"]
    cli_main([*steps, "--trainer.max_epochs", "1"])
    step2 = next((tmp_path / "steps").rglob("at-2.ckpt"))
    with pytest.warns(UserWarning, match=r"saved within epoch 0, after 2 of its batches"):
        cli_main([*steps, "--trainer.max_epochs", "2", "--ckpt_path", str(step2)])
