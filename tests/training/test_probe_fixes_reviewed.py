"""The review of this session's probe fixes: what the fixes refused or changed that had worked before."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import neuroview as nv

T = 20


def _series():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 1, T, generator=g)
    return x, (x[:, 0, 5:10].mean(1) > 0).long()


def test_a_data_module_set_up_without_a_val_split_is_cross_validated():
    """Its val_dataloader() reads a dataset its setup never made: no split (it was an AttributeError)."""
    x, y = _series()
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 6, 3), nn.ReLU()), 2, input_shape=(1, T)).eval()
    net(x[:2])

    class DM(pl.LightningDataModule):
        def setup(self, stage=None):
            self.train_ds = TensorDataset(x, y)

        def train_dataloader(self):
            return DataLoader(self.train_ds, batch_size=8)

        def val_dataloader(self):
            return DataLoader(self.val_ds, batch_size=8)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = nv.sparsify(net, DM(), points=5)
    assert "cross-validation" in s.sparsity_path.validation


@pytest.fixture(scope="module")
def rocket():
    x, y = _series()
    return nv.minirocket([(x, y)], num_features=168), x, y


def test_minirocket_names_a_middle_item_that_is_not_lengths(rocket):
    net, x, y = rocket
    with pytest.raises(ValueError, match="middle item is not lengths"):
        nv.mean_codes(net, [(x, y, torch.rand(len(x)))])


def test_minirocket_takes_lengths_that_are_every_series_whole_length(rocket):
    net, x, y = rocket
    whole = torch.full((len(x),), T)
    torch.testing.assert_close(nv.mean_codes(net, [(x, whole, y)]), nv.mean_codes(net, [(x, y)]))
    with pytest.raises(ValueError, match="MiniRocket reads series of one length"):
        nv.mean_codes(net, [(x, whole - 1, y)])  # padding: refused


def test_numpy_members_and_batched_pass_as_the_values_they_are():
    assert isinstance(nv.create_model("nv_gru", max_len=20, members=np.int64(1)), nv.NeuroViewRNN)
    ens = nv.create_model("nv_lite", members=np.int64(2), batched=np.False_)
    assert len(ens.members) == 2


def test_fit_ridge_head_takes_numpy_and_list_lengths_on_an_rnn():
    """The MiniRocket check read every network's lengths and refused numpy's and lists, which an RNN took before."""
    from neuroview.training.ridge import fit_ridge_head

    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 12, generator=g)
    y = torch.arange(16) % 2
    net = nv.create_model("nv_gru", in_features=1, num_classes=2, max_len=12, hidden_size=4)
    lengths = np.full(16, 12)
    lengths[::2] = 9
    for given in (lengths, lengths.tolist()):
        fit_ridge_head(net, [(x, given, y)])


def test_minirocket_takes_whole_lengths_as_numpy_in_every_fit(rocket):
    net, x, y = rocket
    whole = np.full(len(x), T)
    nv.minirocket([(x, whole, y)], num_features=168)  # nv.fit_minirocket's reader, as fit_ridge_head's
    nv.fit_ridge_head(net, [(x, torch.as_tensor(whole), y)])


def test_an_ensemble_takes_numpy_s_bool_for_batched():
    ens = nv.Ensemble([nv.create_model("nv_lite"), nv.create_model("nv_lite")], batched=np.False_)
    assert len(ens.members) == 2


def test_own_val_split_names_a_user_loader_s_own_failure_and_skips_a_dataset_never_made():
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from neuroview._batch import own_val_split

    x, y = torch.randn(16, 1, 8), torch.arange(16) % 2

    class Failing(pl.LightningDataModule):
        def setup(self, stage=None):
            self.tr = TensorDataset(x, y)

        def train_dataloader(self):
            return DataLoader(self.tr, batch_size=8)

        def val_dataloader(self):
            raise RuntimeError("val.csv: permission denied")  # a real failure of the user's own loader

    class NoVal(Failing):
        def val_dataloader(self):
            return DataLoader(self.va, batch_size=8)  # self.va never made by setup: no validation split

    with pytest.raises(ValueError, match=r"train: Failing.val_dataloader\(\) failed \(RuntimeError: val.csv: permission "
                                         "denied\)"):  # before: None (cross-validated instead, without a word)
        own_val_split(Failing())
    assert own_val_split(NoVal()) is None

    class NotImplemented_(Failing):
        def val_dataloader(self):
            raise NotImplementedError  # a common way to say "no validation split"

    assert own_val_split(NotImplemented_()) is None


def test_minirocket_takes_whole_numpy_lengths_in_fit_ridge_head_and_sparsify(rocket):
    net, x, y = rocket
    whole = np.full(len(x), T)
    nv.fit_ridge_head(net, [(x, whole, y)])
    nv.mean_codes(net, [(x, whole.tolist(), y)])
