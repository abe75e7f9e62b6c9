"""The run's ``config.yaml``: Lightning's ``SaveConfigCallback``, never over a file the run did not write, and for
``fit`` written once training starts. May import Lightning and ``neuroview.training.outputs``.
"""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning.cli import SaveConfigCallback
from pytorch_lightning.utilities import rank_zero_info

from .outputs import fresh_name

__all__ = ["SaveRunConfig"]


class SaveRunConfig(SaveConfigCallback):
    """``config.yaml`` in the run's log folder, or ``config-v<N>.yaml`` beside a ``config.yaml`` already there: with
    ``--trainer.logger false`` the log folder is ``default_root_dir``, and the user's own recipe given as ``--config``
    there (its comments, its notes) was replaced by the resolved config. ``fit`` writes it once training starts
    (``on_train_start``, after :class:`.earlier_runs.KeepEarlierRuns` set an ``init_weights`` it moved to its kept
    name), or at its end where it trained no step: written at the setup, a run refused in it left a ``logs/version_N``
    holding only it, and written before the renames, the config named a file the run then moved."""

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage != "fit":
            self._save(trainer, pl_module, stage)

    def on_train_start(self, trainer, pl_module) -> None:
        self._save(trainer, pl_module, "fit")

    def on_fit_end(self, trainer, pl_module) -> None:  # a fit of no training step (max_epochs 0, limit_train_batches 0)
        self._save(trainer, pl_module, "fit")

    def _save(self, trainer, pl_module, stage: str) -> None:
        if not self.already_saved and self.save_to_log_dir:
            log_dir = trainer.log_dir  # a broadcast: every rank asks
            name = fresh_name(Path(log_dir) / self.config_filename).name if trainer.is_global_zero else None
            name = trainer.strategy.broadcast(name)
            if name != self.config_filename:
                rank_zero_info(f"neuroview: {Path(log_dir) / self.config_filename} is not this run's (kept); the run's "
                               f"config written to {name}")
                self.config_filename = name
        super().setup(trainer, pl_module, stage)
