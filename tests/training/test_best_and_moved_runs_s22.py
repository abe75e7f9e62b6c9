"""``--ckpt_path best`` reads the run's best checkpoint (the one its last.ckpt ranks best), not the newest best file;
a run folder moved or copied resumes with its ranking of best files in that folder; ``fit --ckpt_path best`` resumes
the best file, and a ``max_epochs``/``max_steps`` that ends before the checkpoint is refused by name.

The checkpoints rank by ``epoch`` with mode ``min``: the best is always the epoch-0 file, and every later save is newer
(known answers, whatever the network learns)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch

from neuroview import cli
from neuroview.training.best_checkpoint import best_checkpoint
from neuroview.training.cli import cli_main

DIGITS = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
         "--model.scheduler", "none", "--checkpoint.monitor", "epoch", "--checkpoint.mode", "min"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)


def fit(root: Path, epochs: int, *extra: str):
    return cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--test_after_fit", "false",
                     "--trainer.max_epochs", str(epochs), *extra])


def test_test_ckpt_path_best_reads_the_best_ranked_file_not_the_newest(tmp_path):
    root = tmp_path / "run"
    fit(root, 3, "--checkpoint.save_top_k", "3")
    names = sorted(p.name for p in (root / "checkpoints").glob("best*.ckpt"))
    assert len(names) == 3 and names[0].startswith("best-epoch000")  # epoch 2's is the newest
    cli = cli_main(["test", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--checkpoint.save_top_k", "3",
                    "--ckpt_path", "best"])
    assert Path(cli.trainer.ckpt_path).name == names[0]
    assert best_checkpoint(root / "checkpoints", "test").name == names[0]


def test_several_best_files_and_no_record_of_the_best_is_refused(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    for name in ("best-a.ckpt", "best-b.ckpt"):
        torch.save({"state_dict": {}}, folder / name)
    with pytest.raises(ValueError, match=r"ckpt_path: 'best' .* no checkpoint there records which of its 2 best files "
                                         r"\(best-a.ckpt, best-b.ckpt\) is the best"):
        best_checkpoint(folder, "test")
    (folder / "best-b.ckpt").unlink()
    assert best_checkpoint(folder, "test").name == "best-a.ckpt"  # one file: no choice to make


@pytest.mark.parametrize("how", ["moved", "copied, original removed", "copied"])
def test_a_moved_or_copied_run_resumes_with_its_best_in_its_own_folder(tmp_path, how):
    """Lightning reloaded only best_model_path of another dirpath: the moved run's first new save ranked as the best
    (two best files left), a copy tested the original folder's file, or died in FileNotFoundError once it was gone."""
    first, second = tmp_path / "first", tmp_path / "second"
    fit(first, 2)
    best = next((first / "checkpoints").glob("best*.ckpt")).name
    assert best.startswith("best-epoch000")
    if how == "moved":
        shutil.move(str(first), str(second))
    else:
        shutil.copytree(first, second)
        if how != "copied":
            shutil.rmtree(first)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*dirpath has changed.*")
        cli = fit(second, 4, "--ckpt_path", "last", "--test_after_fit", "true")
    cb = cli.trainer.checkpoint_callback
    assert cb.best_model_path == str((second / "checkpoints" / best).resolve())
    assert float(cb.best_model_score) == 0.0
    assert sorted(p.name for p in (second / "checkpoints").glob("best*.ckpt")) == [best]
    assert cli.trainer.global_step == 12


def test_a_moved_run_whose_best_is_gone_ranks_afresh_with_a_warning(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    fit(first, 2)
    shutil.move(str(first), str(second))
    for p in (second / "checkpoints").glob("best*.ckpt"):
        p.unlink()
    with pytest.warns(UserWarning, match=r"lacks best-epoch000.*ranks its best afresh"):
        cli = fit(second, 3, "--ckpt_path", "last", "--test_after_fit", "true")
    assert Path(cli.trainer.checkpoint_callback.best_model_path).name.startswith("best-epoch002")


def test_fit_ckpt_path_best_resumes_the_best_file(tmp_path):
    root = tmp_path / "run"
    fit(root, 2, "--checkpoint.save_top_k", "2")
    best = root / "checkpoints" / next(p.name for p in (root / "checkpoints").glob("best-epoch000*.ckpt"))
    cli = fit(root, 2, "--checkpoint.save_top_k", "2", "--ckpt_path", "best")
    assert cli.trainer.ckpt_path == str(best)
    assert cli.trainer.global_step == 6  # from step 3 (epoch 0's end), one more epoch


@pytest.mark.parametrize("budget, said", [(["--trainer.max_epochs", "1"], r"--trainer.max_epochs 1, and it has run 3 epochs"),
                                          (["--trainer.max_epochs", "2"], r"--trainer.max_epochs 2, and it has run 3 epochs"),
                                          (["--trainer.max_steps", "4"], r"--trainer.max_steps 4, and it has run 9 steps")])
def test_a_budget_that_ends_before_the_checkpoint_is_one_line_exit_2(tmp_path, capsys, budget, said):
    """max_epochs 1 ended in Lightning's bare MisconfigurationException; max_epochs 2 trained nothing without a word."""
    root = tmp_path / "run"
    fit(root, 3)
    args = ["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--test_after_fit", "false",
            "--trainer.max_epochs", "3", *budget, "--ckpt_path", "last"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 2 and "Traceback" not in err
    import re
    assert re.search(said, err), err
    assert fit(root, 3, "--ckpt_path", "last").trainer.global_step == 9  # its own budget: nothing left, no refusal


def test_a_budget_below_a_save_within_an_epoch_is_refused_and_its_own_budget_resumes(tmp_path):
    """max_steps 4 of 3 batches an epoch stops one batch into epoch 1, saved there: max_epochs 1 would end before it."""
    root = tmp_path / "run"
    fit(root, 3, "--trainer.max_steps", "4")
    saved = torch.load(root / "checkpoints" / "last.ckpt", weights_only=True)
    assert (saved["epoch"], saved["global_step"], saved["neuroview_mid_epoch"]) == (1, 4, 1)
    with pytest.raises(ValueError, match=r"--trainer.max_epochs 1, and it has run 2 epochs \(saved in its epoch 1\)"):
        fit(root, 1, "--ckpt_path", "last")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the resume says it cannot replay the rest of the epoch exactly
        assert fit(root, 3, "--trainer.max_steps", "4", "--ckpt_path", "last").trainer.global_step == 4
