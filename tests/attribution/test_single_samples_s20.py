"""Samples handed one at a time, as a dataset gives them (P5 finding 2; R3 findings 1-3): ``DataLoader(batch_size=None)``,
a list, tuple or generator of ``(x_i, y_i)`` items, an IterableDataset's items. Before: the gallery blamed the labels
("expected one class index per sample, shape [1], got labels of shape ()"), and mean_codes, readability and sparsify
named an ``x`` of the wrong rank, an argument none of them takes. Now one message naming the argument, the cause and
the fix, judged on each batch as the reader unpacks it (x of the network's sample rank, no batch axis, and a scalar
label), never by a look into the loader: whole batches given with batch_size=None (a dataset of batches, a
BatchSampler as the sampler) read as before, each item once, and no random number is drawn for the check."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset, SequentialSampler, TensorDataset

import neuroview as nv
from neuroview import _batch
from neuroview._batch import unpack

ADVICE = (r"its batches are single samples as a dataset gives them \(x of shape \(1, 16\), one sample without its batch "
          r"axis, and a scalar label\): samples handed one at a time \(a DataLoader with batch_size=None, a list or "
          r"generator of dataset items\); pass DataLoader\(dataset, batch_size=\.\.\.\), whose batches \(x, y\) hold "
          r"one label per sample$")


def _net(seed: int = 0) -> nv.NeuroViewCNN:
    torch.manual_seed(seed)
    return nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2, input_shape=(1, 16), quantizer="hard").eval()


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(12, 1, 16, generator=g), torch.arange(12) % 2


def _hard_codes(net, x):
    """By hand: the hard code of each conv channel (on: > 0), averaged over positions and samples."""
    with torch.no_grad():
        return (net.backbone[0](x) > 0).float().mean((0, 2))


class _Items(IterableDataset):
    def __iter__(self):
        x, y = _data()
        return iter(list(zip(x, y)))


def _sources():
    x, y = _data()
    ds = TensorDataset(x, y)
    return {"loader": lambda: DataLoader(ds, batch_size=None), "pairs": lambda: [ds[i] for i in range(len(ds))],
            "int labels": lambda: [(x[i], int(y[i])) for i in range(len(ds))],
            "numpy 0-d labels": lambda: [(x[i], np.array(int(y[i]))) for i in range(len(ds))],
            "tuple": lambda: tuple(ds[i] for i in range(len(ds))),
            "generator": lambda: (ds[i] for i in range(len(ds))),
            "IterableDataset": lambda: DataLoader(_Items(), batch_size=None)}


CALLS = {
    "loader": lambda net, d: nv.unit_gallery(net, d, units=[0], k=2),
    "train": lambda net, d: nv.mean_codes(net, d),
    "batches": lambda net, d: nv.readability(net, d),
}


@pytest.mark.parametrize("source", sorted(_sources()))
@pytest.mark.parametrize("what", sorted(CALLS))
def test_single_samples_are_named_as_such_with_the_argument(what, source):
    with pytest.raises(ValueError, match=rf"^{what}: {ADVICE}"):
        CALLS[what](_net(), _sources()[source]())


def test_sparsify_names_its_training_and_its_validation_data():
    x, y = _data()
    with pytest.raises(ValueError, match=rf"^train: {ADVICE}"):
        nv.sparsify(_net(), _sources()["loader"]())
    with pytest.raises(ValueError, match=rf"^val: {ADVICE}"):
        nv.sparsify(_net(), [(x, y)], val=_sources()["generator"]())


def test_an_rnn_names_series_handed_one_at_a_time():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 3, batch_first=True), 2, max_len=6).eval()
    x = torch.randn(4, 2, 6)  # channels-first series [B, C, T], as the data modules give them
    with pytest.raises(ValueError, match=r"^train: its batches are single samples .*\(x of shape \(2, 6\), one sample"):
        nv.mean_codes(net, [(x[i], torch.tensor(i % 2)) for i in range(4)])
    assert nv.mean_codes(net, [(x, torch.tensor(1))]).shape == net.feature_shape  # a whole batch, one tag: read


def test_sample_rank_is_the_networks_and_none_where_not_known():
    assert _batch.sample_rank(_net()) == 2  # [C, L]
    assert _batch.sample_rank(nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2)) is None  # lazy: not yet
    assert _batch.sample_rank(nv.NeuroViewRNN(nn.GRU(2, 3, batch_first=True), 2, max_len=6)) == 2  # [C, T]
    assert _batch.sample_rank(nv.Ensemble([_net(), _net(1)])) == 2
    assert _batch.sample_rank(None) is None


def test_unpack_names_a_single_sample_of_the_network_and_reads_a_batch():
    x, y = _data()
    net = _net()
    with pytest.raises(ValueError, match=rf"^batch: {ADVICE}"):
        unpack((x[0], y[0]), net=net)
    with pytest.raises(ValueError, match=r"^val: its batches are single samples .*\(x of shape \(1, 16\), one sample"):
        unpack((x[0], torch.tensor(5), y[0]), what="val", net=net)
    a, lengths, b = unpack((x[:3], y[:3]), net=net)  # a batch of 3, and a batch of 1: read as before
    assert torch.equal(a, x[:3]) and lengths is None and b.tolist() == [0, 1, 0]
    assert unpack((x[:1], y[:1]), net=net)[2].tolist() == [0]
    a, _, b = unpack((x[:4], y[0]), net=net)  # a whole batch with one 0-d tag: x has a batch axis, read as given
    assert a.shape == (4, 1, 16) and b.dim() == 0
    a, _, b = unpack((x[0], y[0]))  # no network: no sample rank to judge by, read as given (the reader's checks follow)
    assert a.shape == (1, 16) and b.dim() == 0


class _Batches(Dataset):
    """A dataset whose items are whole batches, read with batch_size=None (a legitimate use); each read is counted and
    augments with a numpy and a ``random`` draw, as an augmenting dataset does (torch's RNG is the reader's own inside)."""

    def __init__(self):
        self.x, self.y = _data()
        self.reads: list[int] = []

    def __len__(self):
        return 3

    def __getitem__(self, i):
        self.reads.append(i)
        shift = float(np.random.standard_normal()) + random.random()
        return self.x[4 * i: 4 * i + 4] + shift, self.y[4 * i: 4 * i + 4]


def _seed():
    torch.manual_seed(5), np.random.seed(5), random.seed(5)


def _augmented(ds) -> torch.Tensor:
    """What one plain read of the loader gives, from the same seed, by hand."""
    _seed()
    return torch.cat([ds.x[4 * i: 4 * i + 4] + (float(np.random.standard_normal()) + random.random()) for i in range(3)])


def _draws():
    return float(np.random.random()), random.random()


def test_a_loader_of_whole_batches_reads_each_item_once_and_draws_nothing_extra():
    ds, net = _Batches(), _net()
    want = _hard_codes(net, _augmented(ds))
    after = _draws()  # the next draw of each generator after one plain read of the loader
    _seed()
    codes = nv.mean_codes(net, DataLoader(ds, batch_size=None))
    assert ds.reads == [0, 1, 2]  # before: [0, 0, 1, 2], item 0 peeked at first
    assert _draws() == after  # numpy's and random's streams as one read leaves them (before: one draw on)
    assert torch.allclose(codes, want, atol=1e-6)


def test_readability_and_sparsify_read_every_item_as_often():
    ds, net = _Batches(), _net()
    nv.readability(net, DataLoader(ds, batch_size=None))
    assert ds.reads == [0, 1, 2]  # before: [0, 0, 1, 2]
    ds.reads.clear()
    nv.sparsify(net, DataLoader(ds, batch_size=None), val=DataLoader(ds, batch_size=None), points=4)
    assert len(ds.reads) % 3 == 0 and ds.reads == [0, 1, 2] * (len(ds.reads) // 3)  # before: item 0 twice per look


def test_a_batch_sampler_as_the_sampler_reads_whole_batches():
    x, y = _data()
    loader = DataLoader(TensorDataset(x, y), sampler=BatchSampler(SequentialSampler(range(12)), 4, False), batch_size=None)
    assert [tuple(t.shape) for t in next(iter(loader))] == [(4, 1, 16), (4,)]
    net = _net()
    assert torch.allclose(nv.mean_codes(net, loader), _hard_codes(net, x), atol=1e-6)  # before: refused as single samples
    r = nv.readability(net, loader, baseline=None)
    with torch.no_grad():
        right = int((net(x).argmax(1) == y).sum())
    assert r["samples"] == 12 and r["accuracy"] == pytest.approx(100.0 * right / 12)
    # the gallery names a sample by its index: a sampler of its own is refused by its kind, as before 23d3838 (which
    # said single samples; before that it named a NoneType)
    with pytest.raises(ValueError, match=r"^loader: expected a DataLoader that reads its dataset in order, .*got one "
                                         r"with a BatchSampler; "):
        nv.unit_gallery(net, loader, units=[0], k=2)


def test_whole_batches_with_a_scalar_second_item_read_as_batches():
    x, _ = _data()
    net = _net()
    codes = nv.mean_codes(net, [(x[:6], torch.tensor(0)), (x[6:], 1)])  # one tag per batch: mean_codes reads no label
    assert torch.allclose(codes, _hard_codes(net, x), atol=1e-6)  # before: refused as single samples of shape (6, 1, 16)


def test_finetune_sparse_names_its_training_data_handed_one_sample_at_a_time():
    net = _net()
    x, y = _data()
    with pytest.raises(ValueError, match=r"^train: its batches are single samples as a dataset gives them \(x of shape "):
        nv.finetune_sparse(net, DataLoader(TensorDataset(x, y), batch_size=None))
