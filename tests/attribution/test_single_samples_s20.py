"""Samples handed one at a time, as a dataset gives them (P5 finding 2): ``DataLoader(batch_size=None)`` or a list of
``(x_i, y_i)`` pairs. Before: the gallery blamed the labels ("expected one class index per sample, shape [1], got
labels of shape ()"), and mean_codes, readability and sparsify named an ``x`` of the wrong rank, an argument none of
them takes. Now one message naming the argument, the cause and the fix."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import neuroview as nv
from neuroview._batch import as_batches, unpack


def _net() -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    return nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2, input_shape=(1, 16), quantizer="hard").eval()


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(12, 1, 16, generator=g), torch.arange(12) % 2


def _sources():
    x, y = _data()
    ds = TensorDataset(x, y)
    return {"loader": DataLoader(ds, batch_size=None), "pairs": [ds[i] for i in range(len(ds))],
            "int labels": [(x[i], int(y[i])) for i in range(len(ds))]}


CALLS = {
    "loader": lambda net, d: nv.unit_gallery(net, d, units=[0], k=2),
    "train": lambda net, d: nv.mean_codes(net, d),
    "batches": lambda net, d: nv.readability(net, d),
}


@pytest.mark.parametrize("source", ["loader", "pairs", "int labels"])
@pytest.mark.parametrize("what", sorted(CALLS))
def test_single_samples_are_named_as_such_with_the_argument(what, source):
    with pytest.raises(ValueError, match=rf"^{what}: its batches are single samples as a dataset gives them \(x of shape "
                                         r"\(1, 16\), a scalar label\): a DataLoader with batch_size=None, or a list of "
                                         r"dataset items; pass DataLoader\(dataset, batch_size=\.\.\.\)"):
        CALLS[what](_net(), _sources()[source])


def test_sparsify_names_its_training_data():
    with pytest.raises(ValueError, match=r"^train: its batches are single samples .*\(x of shape \(1, 16\), a scalar label\)"):
        nv.sparsify(_net(), _sources()["loader"])


def test_unpack_names_a_single_sample_and_reads_a_batch():
    x, y = _data()
    with pytest.raises(ValueError, match=r"^batch: its batches are single samples .*\(x of shape \(1, 16\), a scalar label\)"):
        unpack((x[0], y[0]))
    with pytest.raises(ValueError, match=r"^val: its batches are single samples .*\(x of shape \(1, 16\)"):
        unpack((x[0], torch.tensor(5), y[0]), what="val")
    a, lengths, b = unpack((x[:3], y[:3]))  # a batch of 3, and a batch of 1: read as before
    assert a is x[:3] or torch.equal(a, x[:3])
    assert lengths is None and b.tolist() == [0, 1, 0]
    assert unpack((x[:1], y[:1]))[2].tolist() == [0]


class _Batches(Dataset):
    """A dataset whose items are whole batches, read with batch_size=None (a legitimate use); each read draws."""

    def __init__(self):
        self.x, self.y = _data()

    def __len__(self):
        return 3

    def __getitem__(self, i):
        torch.rand(1)  # an augmenting dataset's draw: the check's look at item 0 must leave the caller's RNG alone
        return self.x[4 * i: 4 * i + 4], self.y[4 * i: 4 * i + 4]


def test_a_loader_of_whole_batches_with_batch_size_none_still_reads():
    loader = DataLoader(_Batches(), batch_size=None)
    state = torch.get_rng_state()
    assert as_batches(loader, "train") is loader
    assert torch.equal(torch.get_rng_state(), state)
    net = _net()
    x, _ = _data()
    codes = nv.mean_codes(net, loader)
    assert torch.allclose(codes, nv.mean_codes(net, [(x, torch.arange(12) % 2)]), atol=1e-6)
    with torch.no_grad():  # by hand: the hard code of each conv channel (on: > 0), averaged over positions and samples
        want = (net.backbone[0](x) > 0).float().mean((0, 2))
    assert torch.allclose(codes, want, atol=1e-6)
