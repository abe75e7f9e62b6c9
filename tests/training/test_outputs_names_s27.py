"""A class name that is not UTF-8 (a latin-1 folder name as ``os.listdir`` / ImageFolder give it: ``caf\\udce9``)
in Lightning's ``confusion_matrix.csv`` and ``predictions.csv``: written as ``export.write_csv`` writes it
(``caf\\xe9``), not a bare UnicodeEncodeError after the work."""

from __future__ import annotations

import csv
import os

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from neuroview.training.module import NeuroViewModule
from neuroview.training.outputs import PredictionWriter

LATIN1 = os.fsdecode(b"caf\xe9")  # 'caf\udce9'
SHOWN = "caf\\xe9"  # written out: what the tables show for it (export.write_csv, the report)


class _Named(pl.LightningDataModule):
    """The user's own data module naming its classes as ImageFolder(...).classes would."""

    class_names = [LATIN1, "tea"]

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(8, 1, 24, generator=g), torch.arange(8) % 2

    def _dl(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=8)

    train_dataloader = test_dataloader = predict_dataloader = _dl


def _rows(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:  # strict UTF-8: a surrogate written would not decode
        return list(csv.reader(f))


def test_test_and_predict_write_a_non_utf8_class_name_as_the_tables_show_it(tmp_path):
    torch.manual_seed(0)
    m = NeuroViewModule(arch="nv_fcn1d", num_classes=2, in_channels=1, max_len=24)
    tr = pl.Trainer(max_steps=1, default_root_dir=str(tmp_path), enable_progress_bar=False, enable_model_summary=False,
                    accelerator="cpu", enable_checkpointing=False, num_sanity_val_steps=0, callbacks=[PredictionWriter()],
                    logger=CSVLogger(str(tmp_path / "logs")))
    tr.fit(m, datamodule=_Named())
    tr.test(m, datamodule=_Named(), verbose=False)
    tr.predict(m, datamodule=_Named())
    confusion = _rows(os.path.join(tr.log_dir, "confusion_matrix.csv"))
    assert confusion[0] == ["true\\predicted", SHOWN, "tea"]
    assert [r[0] for r in confusion[1:]] == [SHOWN, "tea"]
    preds = _rows(os.path.join(tr.log_dir, "predictions.csv"))
    assert preds[0][-2:] == [f"prob_{SHOWN}", "prob_tea"]
    at = preds[0].index("target")
    assert [r[at] for r in preds[1:]] == [SHOWN, "tea"] * 4
