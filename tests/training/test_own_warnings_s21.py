"""False alarms on every run of the README's main command and of the ``ucr_*`` recipes: Lightning's warnings about
choices neuroview makes on purpose (its module's batch hook beside a data module; an empty list of validation loaders
for "no validation split"; the checkpoint folder of a recipe an earlier run of it filled, whose files the command
keeps aside) were left unfiltered. They are now filtered narrowly (message and category) while neuroview's own module,
data module or command causes them; the same warnings caused by a user's own hook, data module or folder stay."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.connectors import data_connector
from torch.utils.data import DataLoader, TensorDataset

from neuroview.data import DigitsDataModule
from neuroview.training.cli import cli_main
from neuroview.training.module import NeuroViewModule

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
TINY = {"widths": [4, 8]}
HOOK = r"You have overridden `on_before_batch_transfer` in"
EMPTY_LIST = "Total length of `list` across ranks is zero"
NOT_EMPTY = r"Checkpoint directory .* exists and is not empty"


@pytest.fixture(autouse=True)
def _fresh_notes(monkeypatch):
    """Lightning says each hook note once a process (its warning cache): cleared, so that each test sees what it
    would see first."""
    monkeypatch.setattr(data_connector, "warning_cache", type(data_connector.warning_cache)())


def _said(caught, pattern: str) -> list[str]:
    return [str(w.message) for w in caught if re.search(pattern, str(w.message))]


def _run(module, dm, test: bool = False, **kw):
    """Fit (and test) with every warning recorded; returns the warnings and whether the filters are as they were."""
    before = list(warnings.filters)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, limit_test_batches=1,
                         enable_progress_bar=False, logger=False, enable_checkpointing=False,
                         enable_model_summary=False, accelerator="cpu", **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inner = list(warnings.filters)
        try:
            trainer.fit(module, dm)
            if test:
                trainer.test(module, dm, verbose=False)
        finally:
            kept = list(warnings.filters) == inner  # nothing of the module's left behind
    assert list(warnings.filters) == before
    return caught, kept


def _module(cls=NeuroViewModule):
    torch.manual_seed(0)
    return cls("nv_small_cnn", num_classes=10, model_kwargs=TINY)


@pytest.mark.parametrize("sanity", [0, 2])
def test_a_fit_of_neuroviews_module_and_data_module_without_a_validation_split_raises_no_hook_note(sanity):
    caught, kept = _run(_module(), DigitsDataModule(val_fraction=0.0), test=True, num_sanity_val_steps=sanity)
    assert kept
    assert _said(caught, HOOK) == []
    # stays in Python, as before these filters (the `neuroview` command filters it for its run): a filter per stage
    # made Python show every once-a-place warning again at each stage, and the message cannot tell whose list it is
    assert _said(caught, EMPTY_LIST)


class _Hooked(pl.LightningDataModule):
    """A user's data module with its own batch hook, and, with ``no_val``, an empty list of validation loaders."""

    def __init__(self, no_val: bool = False):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.data, self.no_val = TensorDataset(torch.randn(32, 1, 8, 8, generator=g), torch.arange(32) % 10), no_val

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=16)

    def val_dataloader(self):
        return [] if self.no_val else DataLoader(self.data, batch_size=16)

    def test_dataloader(self):
        return DataLoader(self.data, batch_size=16)

    def on_before_batch_transfer(self, batch, dataloader_idx):
        return batch


def test_a_users_data_module_hook_beside_the_modules_checks_is_no_false_alarm():
    """Lightning's "both ... It will use the implementation from LightningDataModule": the module's checks now run
    after the user's hook, so the note said what no longer happens."""
    caught, kept = _run(_module(), _Hooked(), test=True)
    assert kept and _said(caught, HOOK) == []


class _OwnHook(NeuroViewModule):
    def on_before_batch_transfer(self, batch, dataloader_idx):
        return batch


def test_the_warnings_a_users_own_setup_causes_stay():
    caught, _ = _run(_module(_OwnHook), DigitsDataModule(val_fraction=0.0))  # the user's hook: Lightning's note stays
    assert _said(caught, HOOK + " `LightningModule` but have passed in a `LightningDataModule`")
    caught, _ = _run(_module(_OwnHook), _Hooked())
    assert _said(caught, HOOK + " both `LightningModule` and `LightningDataModule`")
    caught, _ = _run(_module(), _Hooked(no_val=True))  # the user's own data module's empty list
    assert _said(caught, EMPTY_LIST)


def test_a_fit_that_fails_leaves_the_warning_filters_as_they_were():
    g = torch.Generator().manual_seed(0)
    bad = TensorDataset(torch.randn(32, 1, 8, 8, generator=g), torch.arange(32) % 10 + 1)  # labels counted from 1

    class _Bad(DigitsDataModule):
        def train_dataloader(self):
            return DataLoader(bad, batch_size=16)

    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, enable_progress_bar=False, logger=False,
                         enable_checkpointing=False, enable_model_summary=False, accelerator="cpu",
                         num_sanity_val_steps=0)
    with warnings.catch_warnings():
        inner = list(warnings.filters)
        with pytest.raises(ValueError, match=r"y: labels must lie in \[0, 10\)"):
            trainer.fit(_module(), _Bad(val_fraction=0.0))  # failed after the stage's filters were added
        assert list(warnings.filters) == inner


QUICK = ["--model.model_kwargs", "{widths: [4, 8]}", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches",
         "1", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary",
         "false", "--test_after_fit", "false"]


def _cli(*args: str) -> list:
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli_main(["fit", "--config", DIGITS, *QUICK, *args])
    assert list(warnings.filters) == before
    return caught


def test_a_second_run_of_a_recipe_into_its_own_folder_raises_no_false_alarm(tmp_path, one_thread):
    root = ["--trainer.default_root_dir", str(tmp_path / "run")]
    _cli(*root)
    caught = _cli(*root)
    assert (tmp_path / "run" / "checkpoints" / "last-v1.ckpt").is_file()  # the earlier run's file, kept aside
    assert _said(caught, NOT_EMPTY) == []
    assert _said(caught, HOOK) == []


def test_a_checkpoint_folder_of_the_users_choosing_keeps_lightnings_warning(tmp_path, one_thread):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("the user's own file")
    caught = _cli("--trainer.default_root_dir", str(tmp_path / "run"), "--checkpoint.dirpath", str(folder))
    assert _said(caught, NOT_EMPTY)


# ---- review R7 of 806968e: the notes kept quiet without touching the warning filters or hiding a user's own notes


def test_a_neuroview_run_leaves_lightnings_hook_note_for_a_users_own_hook_later_in_the_process():
    """Lightning says each hook note once a process (its cache): a note neuroview's run kept quiet used it up, and the
    user's own module hook, skipped later for their data module's, was never told about (one cache, not reset)."""
    caught, _ = _run(_module(), _Hooked())  # neuroview's hook beside the user's data module's: quiet
    assert _said(caught, HOOK) == []
    caught, _ = _run(_module(_OwnHook), _Hooked())  # the user's own hook, which Lightning skips: told
    assert _said(caught, HOOK + " both `LightningModule` and `LightningDataModule`")


def test_the_command_leaves_lightnings_hook_note_for_a_users_own_hook_later_in_the_process(tmp_path, one_thread):
    _cli("--trainer.default_root_dir", str(tmp_path / "run"))
    caught, _ = _run(_module(_OwnHook), DigitsDataModule(val_fraction=0.0))
    assert _said(caught, HOOK + " `LightningModule` but have passed in a `LightningDataModule`")


class _Mine(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        warnings.warn("my callback: lr schedule is experimental")  # one place: Python's default shows it once


def test_a_warning_python_shows_once_a_place_is_shown_once_across_stages_and_fits():
    """Each stage's filters added and removed reset Python's once-a-place record: the user's own warning (and
    Lightning's, torch's) came back at every stage of a sweep or notebook loop."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")  # a script's or notebook's: each place's warning once
        for _ in range(2):
            m = _module()
            trainer = pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, limit_test_batches=1,
                                 enable_progress_bar=False, logger=False, enable_checkpointing=False,
                                 enable_model_summary=False, accelerator="cpu", callbacks=[_Mine()])
            trainer.fit(m, DigitsDataModule())
            trainer.test(m, DigitsDataModule(), verbose=False)
    assert len(_said(caught, "my callback: lr schedule is experimental")) == 1


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_a_test_after_a_fit_logs_no_override_of_the_modules_own_callback():
    """The fit's callback was still attached when the test's configure_callbacks returned another: Lightning logged
    "will override existing callbacks passed to Trainer: OwnWarningFilters" (the README's command too)."""
    lines, log = _Lines(), logging.getLogger("pytorch_lightning")
    log.addHandler(lines)
    try:
        _run(_module(), DigitsDataModule(), test=True)
    finally:
        log.removeHandler(lines)
    assert any("`Trainer.fit` stopped" in line for line in lines.lines)  # the handler hears Lightning's info lines
    assert [line for line in lines.lines if "will override existing callbacks" in line] == []


# ---- review S7 of c6ea775: the note kept from Lightning's cache for each hook call, whatever ends the stage


class _BadOnException(pl.Callback):
    """A user's callback whose own on_exception fails (saving state on the way out): Lightning calls the callbacks a
    module adds after the user's, so theirs never ran, nor any teardown."""

    def on_exception(self, trainer, pl_module, exception):
        raise RuntimeError("my on_exception failed")


class _HookedFrom1(_Hooked):
    def train_dataloader(self):
        x, y = self.data.tensors
        return DataLoader(TensorDataset(x, y + 1), batch_size=16)  # labels counted from 1: the fit fails


def test_a_fit_whose_earlier_callback_fails_on_exception_leaves_no_hook_note_in_lightnings_cache():
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, enable_progress_bar=False,
                         logger=False, enable_checkpointing=False, enable_model_summary=False, accelerator="cpu",
                         num_sanity_val_steps=0, callbacks=[_BadOnException()])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RuntimeError, match="my on_exception failed"):
            trainer.fit(_module(), _HookedFrom1())
    assert _said(caught, HOOK) == []  # quiet while neuroview's hook ran
    assert [n for n in data_connector.warning_cache if re.match(HOOK, n)] == []
    caught, _ = _run(_module(_OwnHook), _Hooked())  # the user's own hook, later in the process: told
    assert _said(caught, HOOK + " both `LightningModule` and `LightningDataModule`")


def test_the_hook_note_is_in_lightnings_cache_only_while_neuroviews_hook_runs():
    """Lightning reads the note inside the hook call it makes: there, and only there, it is in its cache."""
    both = ("You have overridden `on_before_batch_transfer` in both `LightningModule` and `LightningDataModule`. "
            "It will use the implementation from `LightningDataModule` instance.")  # Lightning's words (2.6)
    seen = []

    class _Looking(_Hooked):
        def on_before_batch_transfer(self, batch, dataloader_idx):
            seen.append([n for n in data_connector.warning_cache if re.match(HOOK, n)])
            return batch

    caught, kept = _run(_module(), _Looking())
    assert kept and _said(caught, HOOK) == []
    assert len(seen) == 4 and all(s == [both] for s in seen)  # sanity check, 2 training, 1 validation batch
    assert [n for n in data_connector.warning_cache if re.match(HOOK, n)] == []
