"""What the fitting tools read of a loader: the samples, not how the loader deals them. A shuffling DataLoader gave
``nv.sparsify(val=None)`` other cross-validation folds at each call (GunPoint: chosen points 18, 19, 19, 18 with the
same ``seed``); ``nv.retrofit`` on a user's own LightningDataModule fitted its head on a shuffled, drop_last loader
(32 of 40 samples at batch size 16); and such a module was a bare ``TypeError: ... not iterable`` for sparsify,
fit_ridge_head and mean_codes. Each is now read whole and in order (a shuffled DataLoader rebuilt over its dataset)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import neuroview as nv
from neuroview.training.ridge import fit_ridge_head


@pytest.fixture(autouse=True)
def _threads(one_thread):
    yield


@pytest.fixture(scope="module")
def gunpoint():
    pytest.importorskip("aeon.datasets")
    from neuroview.data import UCRDataModule

    dm = UCRDataModule("GunPoint")
    dm.setup("fit")
    x, y = map(torch.cat, zip(*dm._loader("train")))
    net = nv.create_model("nv_lite.gunpoint", pretrained=True).eval()
    net(x[:4])
    return net, x, y


class Counting(Dataset):
    def __init__(self, x, y):
        self.x, self.y, self.seen = x, y, set()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        self.seen.add(i)
        return self.x[i], self.y[i]


class OwnModule(pl.LightningDataModule):
    """A user's data module: its training loader shuffles and drops the last partial batch, as training wants."""

    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def setup(self, stage=None):
        self.train_set = Counting(self.x, self.y)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, drop_last=True)


def test_sparsify_cross_validates_the_same_folds_from_a_shuffled_loader(gunpoint):
    net, x, y = gunpoint
    ref = nv.sparsify(net, [(x[i:i + 32], y[i:i + 32]) for i in range(0, len(x), 32)], seed=0)
    for state in (100, 101, 102, 103):  # the caller's RNG, as it differs from one call to the next in a session
        torch.manual_seed(state)
        got = nv.sparsify(net, DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True), seed=0)
        assert got.sparsity_path.chosen == ref.sparsity_path.chosen
        torch.testing.assert_close(got.classifier.weight, ref.classifier.weight, rtol=0, atol=1e-6)


def test_retrofit_fits_on_every_sample_of_a_users_data_module():
    torch.manual_seed(0)
    x, y = torch.randn(40, 1, 60), torch.arange(40) % 2
    x[y == 1, :, 20:30] += 2.0
    std = nn.Sequential(nn.Conv1d(1, 8, 7, stride=2), nn.ReLU(), nn.Conv1d(8, 8, 5, stride=2), nn.ReLU(),
                        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 2)).eval()
    dm = OwnModule(x, y, batch_size=16)  # shuffled and drop_last: 32 of 40 samples a pass
    res = nv.retrofit(std, dm, num_classes=2)
    assert dm.train_set.seen == set(range(40))
    with torch.no_grad():
        codes = res.model.codes(x).double()  # the fitted network's codes of all 40, the head's training mean by hand
    torch.testing.assert_close(res.model.norm.running_mean.double(), codes.mean(0), rtol=0, atol=1e-6)


def test_a_users_data_module_reads_as_its_batches_do(gunpoint):
    net, x, y = gunpoint
    dm = OwnModule(x, y, batch_size=16)
    torch.testing.assert_close(nv.mean_codes(net, dm), nv.mean_codes(net, [(x, y)]), rtol=0, atol=1e-6)
    a, b = nv.sparsify(net, dm, seed=0), nv.sparsify(net, [(x, y)], seed=0)
    torch.testing.assert_close(a.classifier.weight, b.classifier.weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(fit_ridge_head(net, dm)(x), fit_ridge_head(net, [(x, y)])(x), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match=r"train: expected a data module, a DataLoader or an iterable of batches .*got "
                                         r"a int"):
        nv.mean_codes(net, 3)
