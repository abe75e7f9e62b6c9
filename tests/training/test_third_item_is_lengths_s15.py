"""A batch of three items is read as ``(x, lengths, y)``: for a CNN, whose batches carry lengths only as padded series
do, a middle item that is no lengths is named (``(x, y, other)`` was scored, or trained, against ``other``). The
gallery, ``readability`` and ``mean_codes`` refused such batches already; ``retrofit``'s test read, ``finetune_sparse``
and the zoo's ``evaluate`` did not."""

from __future__ import annotations

import pytest
import torch

import neuroview as nv
from neuroview.zoo.evaluate import evaluate


def _data():
    torch.manual_seed(0)
    x, y = torch.randn(24, 1, 16), torch.arange(24) % 3
    return x, y, torch.arange(24) % 2 + 20  # the third: no lengths of 16 steps (in [1, 16]), no labels of 3 classes


def _net():
    net = nv.create_model("nv_fcn1d", num_classes=3, widths=(4, 4), kernels=(3, 3))
    with torch.no_grad():
        net(torch.randn(2, 1, 16))
    return net.eval()


def test_the_zoo_s_evaluate_names_a_middle_item_that_is_no_lengths():
    x, y, other = _data()
    with pytest.raises(ValueError, match=r"batch: a batch of 3 items is read as \(x, lengths, y\)"):
        evaluate(_net(), [(x, y, other)])
    assert evaluate(_net(), [(x, torch.full((24,), 16), y)])[1] == 24  # true lengths still read


def test_finetune_sparse_names_a_middle_item_that_is_no_lengths():
    x, y, other = _data()
    sparse = nv.sparsify(_net(), [(x, y)], folds=2, points=4)
    with pytest.raises(ValueError, match=r"train: a batch of 3 items is read as \(x, lengths, y\)"):
        nv.finetune_sparse(sparse, [(x, y, other)], epochs=1)


def test_retrofit_s_test_read_names_a_middle_item_that_is_no_lengths():
    x, y, other = _data()
    std = nv.create_model("fcn1d", num_classes=3, widths=(4, 4), kernels=(3, 3))
    with pytest.raises(ValueError, match=r"test: a batch of 3 items is read as \(x, lengths, y\)"):
        nv.retrofit(std, [(x, y)], test=[(x, y, other)], epochs=1)


def test_the_lightning_module_names_a_middle_item_that_is_no_lengths(tmp_path):
    # neuroview fit/test on a LightningDataModule of one's own: trained and scored against `other` (a review)
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from neuroview.training.module import NeuroViewModule

    x, y, other = _data()
    m = NeuroViewModule("nv_fcn1d", num_classes=3, in_channels=1, model_kwargs={"widths": [4, 4], "kernels": [3, 3]})
    m.build(x[:2])
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", devices=1, max_steps=1, default_root_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"batch: a batch of 3 items is read as \(x, lengths, y\)"):
        trainer.fit(m, DataLoader(TensorDataset(x, y, other), batch_size=8))
    trainer.fit(m, DataLoader(TensorDataset(x, torch.full((24,), 16), y), batch_size=8))  # true lengths still read
