"""A user's LightningDataModule is set up at most once by the fitting tools, and one already set up is read as it is.

``setup("fit")`` was called again at every read: a module that splits its data in ``setup`` with ``random_split``
(as Lightning's docs show) dealt each read another split, so ``nv.sparsify(net, dm, val=dm)`` scored its validation
on 31 of 40 samples it had fitted on, ``finetune_sparse(epochs=3)`` trained on 4 splits, and the caller's module held
another split afterwards (4 of its 40 validation samples the same).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

import neuroview as nv


class RandomSplit(pl.LightningDataModule):
    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.splits = x, y, []

    def setup(self, stage=None):
        self.train_ds, self.val_ds = random_split(TensorDataset(self.x, self.y), [len(self.y) - 20, 20])
        self.splits.append(frozenset(self.val_ds.indices))

    def train_dataloader(self):
        return DataLoader(self.train_ds, batch_size=16, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_ds, batch_size=16)


def _data_and_net():
    torch.manual_seed(0)
    x = torch.randn(100, 1, 20)
    y = (x[:, 0, 5:10].mean(1) > 0).long()
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU()), 2, input_shape=(1, 20))
    net.train()
    with torch.no_grad():
        net(x)
    return x, y, net.eval()


def _indices(loader):
    return {int(i) for i in loader.dataset.indices}


def test_a_module_already_set_up_is_read_as_it_is(one_thread):
    x, y, net = _data_and_net()
    dm = RandomSplit(x, y)
    dm.setup("fit")
    val = set(dm.val_ds.indices)
    sparse = nv.sparsify(net, dm, val=dm, tolerance=5.0)
    nv.finetune_sparse(sparse, dm, epochs=2)
    nv.mean_codes(net, dm)
    assert len(dm.splits) == 1  # the user's own call only
    assert set(dm.val_ds.indices) == val


def test_a_module_not_set_up_is_set_up_once_for_every_read(one_thread):
    x, y, net = _data_and_net()
    dm = RandomSplit(x, y)
    sparse = nv.sparsify(net, dm, val=dm, tolerance=5.0)
    assert len(dm.splits) == 1
    # the validation it scored and the training split it fitted are the one split's two disjoint parts
    assert not _indices(dm.train_dataloader()) & _indices(dm.val_dataloader())
    nv.finetune_sparse(sparse, dm, epochs=3)
    nv.mean_codes(net, dm)
    assert len(dm.splits) == 1


class NoneUntilSetUp(RandomSplit):
    """Its datasets are None until setup: a loader over None is built without an error, and reads nothing."""

    def __init__(self, x, y):
        super().__init__(x, y)
        self.train_ds = self.val_ds = None

    def train_dataloader(self):
        return DataLoader(self.train_ds, batch_size=16)  # no shuffle: DataLoader(None) builds without an error


def test_a_module_whose_datasets_are_none_until_set_up_is_set_up(one_thread):
    x, y, net = _data_and_net()
    dm = NoneUntilSetUp(x, y)
    nv.mean_codes(net, dm)
    nv.sparsify(net, dm, val=dm, tolerance=5.0)
    assert len(dm.splits) == 1


def test_a_dataclass_module_with_its_own_eq_is_read(one_thread):
    import dataclasses

    @dataclasses.dataclass(eq=True)
    class Plain(pl.LightningDataModule):
        x: torch.Tensor
        y: torch.Tensor

        def __post_init__(self):
            super().__init__()

        def setup(self, stage=None):
            self.ds = TensorDataset(self.x, self.y)

        def train_dataloader(self):
            return DataLoader(self.ds, batch_size=16)

    x, y, net = _data_and_net()
    torch.testing.assert_close(nv.mean_codes(net, Plain(x, y)), nv.mean_codes(net, [(x, y)]), rtol=0, atol=1e-6)
