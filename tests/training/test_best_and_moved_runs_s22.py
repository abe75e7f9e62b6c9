"""``--ckpt_path best`` reads the run's best checkpoint (the one its last.ckpt ranks best; without it, the best of the
scores its files record of themselves), not the newest best file; a run folder moved or copied resumes with its ranking
of the best files it brought along (a test of a file of another folder ranks nothing, and warns of nothing); ``fit
--ckpt_path best`` resumes the best file, and a ``max_epochs``/``max_steps`` that ends before the checkpoint is refused
by name.

The checkpoints rank by ``epoch`` with mode ``min``: the best is always the epoch-0 file, and every later save is newer
(known answers, whatever the network learns)."""

from __future__ import annotations

import os
import re
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
    with pytest.warns(UserWarning, match=r"lacks best-epoch000.*: the resumed run ranks its best afresh"):
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


def test_a_run_moved_with_only_its_best_and_last_keeps_its_best(tmp_path):
    """Two lesser top-k files left behind sent the resume to rank afresh: its first new save counted as the best."""
    first, second = tmp_path / "first", tmp_path / "second"
    fit(first, 3, "--checkpoint.save_top_k", "3")
    names = sorted(p.name for p in (first / "checkpoints").glob("best*.ckpt"))
    assert len(names) == 3 and names[0].startswith("best-epoch000")  # ranked by epoch, mode min: epoch 0 is the best
    (second / "checkpoints").mkdir(parents=True)
    for name in (names[0], "last.ckpt"):
        shutil.copy2(first / "checkpoints" / name, second / "checkpoints" / name)
    with pytest.warns(UserWarning, match=r"lacks best-epoch001.*, best-epoch002.* of its top-k") as said:
        cli = fit(second, 5, "--checkpoint.save_top_k", "3", "--ckpt_path", "last", "--test_after_fit", "true")
    assert not [w for w in said if "afresh" in str(w.message)]
    cb = cli.trainer.checkpoint_callback
    assert cb.best_model_path == str((second / "checkpoints" / names[0]).resolve()) and float(cb.best_model_score) == 0.0
    kept = sorted(p.name for p in (second / "checkpoints").glob("best*.ckpt"))  # the best and the two epochs to come
    assert [n[:13] for n in kept] == ["best-epoch000", "best-epoch003", "best-epoch004"]
    assert Path(cli.trainer.ckpt_path).name == names[0]  # fit's test scored the run's best


def test_testing_a_file_of_another_folder_warns_of_no_resume(tmp_path):
    """`neuroview test --ckpt_path FILE` of a file saved in another folder warned that it 'resumes ... ranks its best
    afresh': nothing resumes in a test."""
    first = tmp_path / "first"
    fit(first, 2, "--checkpoint.save_top_k", "2")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=r".*(ranks its best afresh|dirpath has changed|resumes in).*")
        cli = cli_main(["test", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path / "elsewhere"), *QUICK,
                        "--ckpt_path", str(first / "checkpoints" / "last.ckpt")])
    assert Path(cli.trainer.ckpt_path).name == "last.ckpt"


def _record(folder: Path, name: str, step: int, score, mode="max", monitor="val_acc", best=None):
    """A best file as a ModelCheckpoint saves it: its own score, and the best as of its save."""
    key = f"Checkpoint{{'monitor': {monitor!r}, 'mode': {mode!r}, 'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}}"
    state = {"dirpath": str(folder), "current_score": None if score is None else torch.tensor(score),
             "best_model_path": str(folder / (best or name)), "best_k_models": {}}
    torch.save({"global_step": step, "epoch": step // 5, "state_dict": {}, "callbacks": {key: state}}, folder / name)


def test_best_without_last_ckpt_reads_each_files_own_score_not_its_time(tmp_path):
    """Without last.ckpt the newest file's record was taken: a copy's times made the worst top-k file the 'best'."""
    folder = tmp_path / "ck"
    folder.mkdir()
    _record(folder, "best-a.ckpt", 10, 0.70)  # each file's record names the best as of its save: itself
    _record(folder, "best-b.ckpt", 15, 0.88)
    _record(folder, "best-c.ckpt", 20, 0.84, best="best-b.ckpt")
    for i, name in enumerate(["best-b.ckpt", "best-c.ckpt", "best-a.ckpt"]):  # best-a.ckpt the newest file
        os.utime(folder / name, (1_000_000 + i, 1_000_000 + i))
    assert best_checkpoint(folder, "test").name == "best-b.ckpt"
    for name in ("best-a.ckpt", "best-b.ckpt", "best-c.ckpt"):  # mode min: the lowest score
        _record(folder, name, 10, {"best-a.ckpt": 0.3, "best-b.ckpt": 0.1, "best-c.ckpt": 0.2}[name], mode="min", monitor="val_loss")
    assert best_checkpoint(folder, "test").name == "best-b.ckpt"
    _record(folder, "best-c.ckpt", 20, 0.05, mode="max", monitor="val_acc")  # another rule: which is best cannot be told
    with pytest.raises(ValueError, match=r"they rank by different rules.*best-a.ckpt ranks by val_loss \(min\).*best-c.ckpt by val_acc \(max\)"):
        best_checkpoint(folder, "test")
    _record(folder, "best-c.ckpt", 20, None, mode="min", monitor="val_loss")  # no score of its own
    with pytest.raises(ValueError, match=r"of its 3 best files .* is the best \(no last.ckpt, or one of another run; best-c.ckpt records no score of its own\)"):
        best_checkpoint(folder, "test")


def test_best_without_last_ckpt_finds_files_of_a_custom_name(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    _record(folder, "ep0-1.90.ckpt", 5, 1.9, mode="min", monitor="val_loss")
    _record(folder, "ep2-1.69.ckpt", 15, 1.69, mode="min", monitor="val_loss")
    _record(folder, "ep1-1.75.ckpt", 10, 1.75, mode="min", monitor="val_loss")
    torch.save({"state_dict": {}}, folder / "last-v1.ckpt")  # an earlier run's kept last: no candidate
    assert best_checkpoint(folder, "test").name == "ep2-1.69.ckpt"


# --- second review (/tmp/s22/S2, findings 1-3) ---

def test_best_without_last_ckpt_never_reads_an_earlier_runs_kept_file(tmp_path):
    """Two fits into one folder with --checkpoint.save_last false: run 1's best, kept as best-...-v1.ckpt, was ranked
    with run 2's files (and here, by another rule, the command refused as 'files of different runs')."""
    root = tmp_path / "run"
    fit(root, 2, "--checkpoint.save_last", "false")  # epoch min: its best is epoch 0, score 0
    fit(root, 2, "--checkpoint.save_last", "false", "--checkpoint.mode", "max")  # epoch max: its best is epoch 1
    folder = root / "checkpoints"
    names = sorted(p.name for p in folder.glob("*.ckpt"))
    assert not (folder / "last.ckpt").exists() and len(names) == 2
    assert names[0].startswith("best-epoch000") and names[0].endswith("-v1.ckpt"), names  # run 1's, kept
    assert names[1].startswith("best-epoch001") and not names[1].endswith("-v1.ckpt"), names  # run 2's own
    cli = cli_main(["test", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--checkpoint.mode", "max",
                    "--checkpoint.save_last", "false", "--ckpt_path", "best"])
    assert Path(cli.trainer.ckpt_path).name == names[1]


def test_best_reads_no_kept_file_of_an_earlier_run_and_refuses_where_only_those_are_there(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    _record(folder, "best-a-v1.ckpt", 10, 0.95)  # an earlier run's best, better than any of this run's
    _record(folder, "best-b.ckpt", 10, 0.50)
    _record(folder, "best-c.ckpt", 15, 0.60)
    assert best_checkpoint(folder, "test").name == "best-c.ckpt"
    for name in ("best-b.ckpt", "best-c.ckpt"):
        (folder / name).unlink()
    with pytest.raises(FileNotFoundError, match=r"the best files there \(best-a-v1.ckpt\) are earlier runs'"):
        best_checkpoint(folder, "test")


def test_best_of_a_last_ckpt_whose_recorded_best_is_gone_is_refused_by_name(tmp_path):
    """The earlier runs' kept -vN files were ranked in its place."""
    folder = tmp_path / "ck"
    folder.mkdir()
    _record(folder, "last.ckpt", 20, 0.5, best="best-gone.ckpt")
    _record(folder, "best-old-v1.ckpt", 10, 0.95)
    with pytest.raises(FileNotFoundError, match=r"records as best-gone.ckpt, and that file is not in"):
        best_checkpoint(folder, "test")



def test_best_of_a_run_moved_with_part_of_its_top_k_is_the_best_it_brought(tmp_path):
    """Review U1: a run of save_top_k 3 moved with last.ckpt and 2 of its 3 top-k files (its best, 0.95, left behind)
    was refused, while `fit --ckpt_path last` ranks on from the files brought: the best of those last.ckpt ranks."""
    key = "Checkpoint{'monitor': 'val_acc', 'mode': 'max', 'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}"
    old = "/somewhere/else/run/checkpoints"
    scores = {"best-e1.ckpt": 0.8, "best-e3.ckpt": 0.9, "best-e4.ckpt": 0.95}
    top = {f"{old}/{n}": torch.tensor(v) for n, v in scores.items()}
    folder = tmp_path / "ck"
    folder.mkdir()
    state = {"best_model_path": f"{old}/best-e4.ckpt", "current_score": torch.tensor(0.93), "best_k_models": top}
    torch.save({"callbacks": {key: state}}, folder / "last.ckpt")
    for name in ("best-e1.ckpt", "best-e3.ckpt"):  # brought along
        torch.save({"callbacks": {key: {**state, "best_model_path": f"{old}/{name}"}}}, folder / name)
    assert best_checkpoint(folder, "test").name == "best-e3.ckpt"  # 0.9, the best of those here, by last.ckpt's record
    (folder / "best-e3.ckpt").unlink()
    (folder / "best-e1.ckpt").rename(folder / "best-e1-v1.ckpt")  # no file the record ranks: refused as before
    with pytest.raises(FileNotFoundError, match=r"records as best-e4.ckpt, and that file is not in"):
        best_checkpoint(folder, "test")

def _two_states(folder: Path, name: str, own: float, user_current: float):
    """A best file of the --checkpoint callback (val_acc, max) saved with a user's ModelCheckpoint (val_loss, min) in
    the same folder: LightningCLI lists the user's first, whose state records its own files and score."""
    user = "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}"
    ours = "Checkpoint{'monitor': 'val_acc', 'mode': 'max', 'every_n_train_steps': 0, 'every_n_epochs': 1, 'train_time_interval': None}"
    states = {user: {"dirpath": str(folder), "current_score": torch.tensor(user_current),
                     "best_model_path": str(folder / "vl-epoch=5.ckpt"), "best_k_models": {str(folder / "vl-epoch=5.ckpt"): torch.tensor(0.8)}},
              ours: {"dirpath": str(folder), "current_score": torch.tensor(own), "best_model_path": str(folder / name),
                     "best_k_models": {str(folder / name): torch.tensor(own)}}}
    torch.save({"global_step": 1, "epoch": 0, "state_dict": {}, "callbacks": states}, folder / name)


def test_best_without_last_ckpt_reads_the_score_of_the_callback_that_wrote_the_file(tmp_path):
    """Each file was read by the user's callback's stale current_score (the same in every file): the tie went to the
    first name, a val_acc 0.53 file over one of 0.60."""
    folder = tmp_path / "ck"
    folder.mkdir()
    _two_states(folder, "best-epoch006.ckpt", 0.5333, user_current=0.889)
    _two_states(folder, "best-epoch008.ckpt", 0.6000, user_current=0.889)
    _two_states(folder, "best-epoch010.ckpt", 0.5667, user_current=0.889)
    assert best_checkpoint(folder, "test").name == "best-epoch008.ckpt"
    user = "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}"  # two states, neither naming the file: refused
    ours = "Checkpoint{'monitor': 'val_acc', 'mode': 'max'}"
    torch.save({"callbacks": {user: {"current_score": torch.tensor(0.1), "best_model_path": "vl.ckpt", "best_k_models": {}},
                              ours: {"current_score": torch.tensor(0.9), "best_model_path": "", "best_k_models": {}}}},
               folder / "best-epoch009.ckpt")
    with pytest.raises(ValueError, match=r"best-epoch009.ckpt records no score of its own"):
        best_checkpoint(folder, "test")


def test_a_moved_run_resumed_with_a_smaller_save_top_k_goes_on(tmp_path):
    """Moved with 2 of its 3 top-k files and resumed with save_top_k 1: a bare KeyError '' at the first validation."""
    first, second = tmp_path / "first", tmp_path / "second"
    fit(first, 3, "--checkpoint.save_top_k", "3")
    names = sorted(p.name for p in (first / "checkpoints").glob("best*.ckpt"))  # epochs 0, 1, 2; epoch 0 the best
    (second / "checkpoints").mkdir(parents=True)
    for name in (names[0], names[1], "last.ckpt"):
        shutil.copy2(first / "checkpoints" / name, second / "checkpoints" / name)
    with pytest.warns(UserWarning, match=r"lacks best-epoch002.* of its top-k"):
        cli = fit(second, 5, "--checkpoint.save_top_k", "1", "--ckpt_path", "last")
    cb = cli.trainer.checkpoint_callback
    assert cli.trainer.global_step == 15
    assert cb.best_model_path == str((second / "checkpoints" / names[0]).resolve()) and float(cb.best_model_score) == 0.0
    # epochs 3 and 4 (scores 3, 4) rank below the k-th best kept (epoch 1): nothing new saved, as Lightning's own resume
    assert sorted(p.name for p in (second / "checkpoints").glob("best*.ckpt")) == names[:2]
