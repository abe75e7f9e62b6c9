"""Parts the libraries do: torch's schedulers, Lightning's public checkpoint hooks, and one temp-and-rename writer."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from neuroview.data import DigitsDataModule
from neuroview.training.callbacks import Checkpoint
from neuroview.training.module import NeuroViewModule, warmup_cosine

REPO = Path(__file__).resolve().parents[2]


def _hand_written(step: int, warmup: int, total: int) -> float:
    """The learning-rate factor of the scheduler torch's now replaces (module.py before SequentialLR)."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    t = min((step - warmup) / max(total - warmup, 1), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * t))


@pytest.mark.parametrize("warmup, total", [(0, 1), (0, 30), (1, 2), (1, 30), (5, 30), (29, 30), (50, 5000)])
def test_warmup_cosine_is_the_same_curve(warmup, total):
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=3e-3)
    sched = warmup_cosine(opt, warmup, total)
    got = []
    for _ in range(total):
        got.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    got.append(opt.param_groups[0]["lr"])  # after the last step: 0
    want = [3e-3 * _hand_written(s, warmup, total) for s in range(total + 1)]
    assert got == pytest.approx(want, abs=1e-12)


class _Lrs(pl.Callback):
    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_the_lightning_module_steps_the_schedule_once_per_optimizer_step(tmp_path):
    module = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4]},
                             lr=1e-2, scheduler="cosine", warmup_epochs=1)
    lrs = _Lrs()
    trainer = pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", max_epochs=3, limit_train_batches=4,
                         limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[lrs])
    trainer.fit(module, datamodule=DigitsDataModule(batch_size=32))
    assert isinstance(trainer.lr_scheduler_configs[0].scheduler, torch.optim.lr_scheduler.SequentialLR)
    assert lrs.lrs == pytest.approx([1e-2 * _hand_written(s, 4, 12) for s in range(12)], abs=1e-12)


def test_checkpoint_overrides_one_private_member_and_says_why():
    private = [n for n in vars(Checkpoint) if n.startswith("_") and not n.startswith("__")]
    assert private == ["_save_checkpoint"]
    source = (REPO / "neuroview" / "training" / "callbacks.py").read_text()
    assert "The one private member overridden, and why no public one does" in source


def test_one_temp_and_rename_writer():
    """Files are renamed into place by neuroview._io only; the Lightning checkpoint says why next to the code
    (so does data/images.py, whose download streams to disk: data/ is left as it is)."""
    allowed = {"neuroview/_io.py": "", "neuroview/training/callbacks.py": "Not neuroview._io.atomic_write",
               "neuroview/data/images.py": ""}
    renames = re.compile(r"\bos\.(replace|rename)\(|\.rename\(|\bmkstemp\(")
    found = {}
    for path in [*(REPO / "neuroview").rglob("*.py"), *(REPO / "benchmarks").rglob("*.py")]:
        rel = path.relative_to(REPO).as_posix()
        code = path.read_text()
        if renames.search(code):
            found[rel] = code
    assert set(found) <= set(allowed), sorted(set(found) - set(allowed))
    for rel, why in allowed.items():
        assert rel not in found or why in found[rel], rel
