"""The unreached-trainable warning (``neuroview.core.reach``) under ``NeuroViewModule`` (review R4 of 05b1080, finding
4): it pointed into Lightning (``pytorch_lightning/strategies/strategy.py``), and its advice named ``net``, which there
is ``module.model``."""

from __future__ import annotations

import inspect
import warnings

import pytorch_lightning as pl

from neuroview.data import DigitsDataModule
from neuroview.training.module import NeuroViewModule


class _Unfreeze(pl.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        pl_module.model.requires_grad_(True)  # a fine-tuning schedule's unfreezing (BaseFinetuning.make_trainable)


def test_under_neuroviewmodule_the_warning_points_at_the_fit_call_and_says_module_model(tmp_path):
    pl.seed_everything(0)
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8]})
    tr = pl.Trainer(enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1, logger=False,
                    enable_checkpointing=False, max_epochs=1, limit_train_batches=1, limit_val_batches=0,
                    default_root_dir=str(tmp_path), callbacks=[_Unfreeze()])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = inspect.currentframe().f_lineno + 1
        tr.fit(m, datamodule=DigitsDataModule(batch_size=8))
    assert m.model.frozen  # the zoo CNN's own head: never reached, frozen, then unfrozen by the callback
    said = [w for w in caught if "require grad, but the decision never reaches them" in str(w.message)]
    assert len(said) == 1
    assert (said[0].filename, said[0].lineno) == (__file__, line)  # the user's fit call (was: Lightning's strategy.py)
    text = str(said[0].message)
    assert text.startswith("net (the NeuroView network; module.model under NeuroViewModule): [")
    want = [f"backbone.{n}" for n in m.model.frozen]
    assert f"{want} require grad" in text
