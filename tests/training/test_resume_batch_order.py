"""A run cut short and resumed draws what the uninterrupted run draws: the training loader shuffles with torch's
global generator, which `seed_everything` reset on resume, so the resumed epochs replayed the first epochs' order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuroview.training.cli import cli_main

DIGITS = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")

RECORDER = '''
import json
import pytorch_lightning as pl

class Cut(Exception):
    pass

class FirstBatches(pl.Callback):
    """Append each epoch's first batch labels to `out`; raise Cut at the start of epoch `cut_at`."""
    def __init__(self, out: str, cut_at: int = -1):
        self.out, self.cut_at = out, cut_at

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.cut_at:
            raise Cut(trainer.current_epoch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            with open(self.out, "a") as f:
                f.write(json.dumps([trainer.current_epoch, batch[-1][:8].tolist()]) + "\\n")
'''


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def firsts(path: Path) -> dict[int, list[int]]:
    return {e: y for e, y in (json.loads(line) for line in path.read_text().splitlines())}


def test_a_resumed_run_sees_the_batch_order_of_the_uninterrupted_run(tmp_path, monkeypatch):
    (tmp_path / "nvrec.py").write_text(RECORDER)
    monkeypatch.syspath_prepend(str(tmp_path))

    def run(name: str, *extra: str):
        root = tmp_path / name
        return cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "4",
                         "--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "3",
                         "--trainer.limit_val_batches", "1", "--trainer.accelerator", "cpu", "--trainer.deterministic", "true",
                         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                         "--test_after_fit", "false", "--trainer.callbacks+=nvrec.FirstBatches",
                         "--trainer.callbacks.out", str(tmp_path / f"{name}.jsonl"), *extra])

    whole = run("whole")
    with pytest.raises(Exception, match="2") as e:
        run("cut", "--trainer.callbacks.cut_at", "2")  # epochs 0 and 1 done, cut as epoch 2 starts
    assert type(e.value).__name__ == "Cut"
    resumed = run("cut", "--ckpt_path", "last")
    assert resumed.trainer.current_epoch == whole.trainer.current_epoch == 4
    a, b = firsts(tmp_path / "whole.jsonl"), firsts(tmp_path / "cut.jsonl")
    assert sorted(a) == sorted(b) == [0, 1, 2, 3]
    assert a[2] != a[0] and a[3] != a[1]  # the uninterrupted run draws a new order each epoch
    assert b == a, (a, b)  # the resumed epochs 2 and 3 draw it too (they replayed epochs 0 and 1)
