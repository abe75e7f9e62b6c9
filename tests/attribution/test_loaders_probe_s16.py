"""Loaders beyond the defaults (probe "loaders", session 16) and a NaN named as a sample of the data (probe
"numerics", finding 2). Every answer here is computed apart from the code under test: the network's own forward pass
and codes over the whole tensor, counts of samples, or the same call over plain batches ``[(x, y)]``."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset, get_worker_info

import neuroview as nv

N, CLASSES = 60, 3


def _cnn():
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU(), nn.Conv1d(8, 8, 3), nn.ReLU()), CLASSES,
                          input_shape=(1, 12))
    return net.eval()


def _data(n: int = N):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 1, 12, generator=g), torch.arange(n) % CLASSES


def _accuracy(net, x, y) -> float:
    with torch.no_grad():
        return 100.0 * float((net(x).argmax(1) == y).float().mean())


class _Stream(IterableDataset):
    """Every sample once per iteration, with no sharding of its own: each worker of a loader reads all of it."""

    def __init__(self, x, y, shard: bool = False):
        self.x, self.y, self.shard = x, y, shard

    def __iter__(self):
        info = get_worker_info() if self.shard else None
        rows = range(len(self.x)) if info is None else range(info.id, len(self.x), info.num_workers)
        return iter([(self.x[i], self.y[i]) for i in rows])


# ------------------------------------------------------------------ 1. an IterableDataset read by several workers
@pytest.mark.parametrize("shard", [False, True])
def test_readability_reads_each_sample_of_an_iterable_dataset_once_under_workers(shard):
    net, (x, y) = _cnn(), _data()
    r = nv.readability(net, DataLoader(_Stream(x, y, shard), batch_size=16, num_workers=2), baseline=None)
    assert r["samples"] == N  # 120 without sharding: every worker read all of it
    assert r["accuracy"] == pytest.approx(_accuracy(net, x, y))


@pytest.mark.filterwarnings("ignore:sparsify")  # random labels: no point keeps the deviance rule
def test_sparsify_cross_validates_an_iterable_dataset_read_by_workers_on_its_own_samples():
    net, (x, y) = _cnn(), _data()
    sparse = nv.sparsify(net, DataLoader(_Stream(x, y), batch_size=16, num_workers=2), folds=3, points=6)
    plain = nv.sparsify(net, [(x, y)], folds=3, points=6)
    assert f"on the {N} training samples" in sparse.sparsity_path.validation  # the record said 120
    assert torch.equal(sparse.classifier.weight, plain.classifier.weight)


# ------------------------------------------------------------------ 2. persistent workers and a seed
def _loader(**kw):
    x, y = _data()
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True, num_workers=2, **kw)


def test_finetune_sparse_gives_one_network_for_a_seed_over_a_persistent_loader():
    net = _cnn()
    persistent = _loader(persistent_workers=True)
    first = nv.finetune_sparse(net, persistent, epochs=2, lr=1e-2, seed=3)
    second = nv.finetune_sparse(net, persistent, epochs=2, lr=1e-2, seed=3)  # its iterator kept from the first call
    fresh = nv.finetune_sparse(net, _loader(), epochs=2, lr=1e-2, seed=3)  # workers started afresh at every pass
    for a, b, c in zip(first.parameters(), second.parameters(), fresh.parameters()):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert len(list(persistent)) == len(persistent)  # the caller's loader still reads


def test_readability_over_a_persistent_shuffling_loader_is_the_same_at_every_call():
    net, (x, y) = _cnn(), _data()
    loader = _loader(persistent_workers=True, drop_last=True)  # each pass dealt 56 of the 60, other ones each call
    first, second = nv.readability(net, loader), nv.readability(net, loader)
    assert first == second and first["samples"] == N and first["accuracy"] == pytest.approx(_accuracy(net, x, y))


# ------------------------------------------------------------------ 3. one batch as a DataLoader gives it: a list
@pytest.mark.filterwarnings("ignore:sparsify")
def test_one_batch_as_a_dataloader_gives_it_is_read_as_one_batch():
    net, (x, y) = _cnn(), _data()
    batch = next(iter(DataLoader(TensorDataset(x, y), batch_size=N)))
    assert isinstance(batch, list)
    assert torch.allclose(nv.mean_codes(net, batch), net.codes(x).mean(0))
    r = nv.readability(net, batch, baseline=None)
    assert r["samples"] == N and r["accuracy"] == pytest.approx(_accuracy(net, x, y))
    sparse, plain = nv.sparsify(net, batch, folds=3, points=6), nv.sparsify(net, [(x, y)], folds=3, points=6)
    assert torch.equal(sparse.classifier.weight, plain.classifier.weight)


def test_a_list_of_bare_batches_is_still_read_as_batches():
    net, (x, _) = _cnn(), _data()
    assert torch.allclose(nv.mean_codes(net, [x[:20], x[20:]]), net.codes(x).mean(0), atol=1e-6)


# ------------------------------------------------------------------ 4. readability over a training loader
def test_readability_reads_a_shuffled_drop_last_loader_whole():
    net, (x, y) = _cnn(), _data(50)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, drop_last=True)
    r = nv.readability(net, loader, baseline=None)
    assert r["samples"] == 50  # 48 dealt
    assert r["accuracy"] == pytest.approx(_accuracy(net, x, y))


# ------------------------------------------------------------------ 5. labelled and unlabelled batches mixed
@pytest.mark.parametrize("labelled_first", [True, False])
def test_readability_refuses_batches_with_and_without_labels(labelled_first):
    net, (x, y) = _cnn(), _data()
    batches = [(x[:10], y[:10]), (x[10:],)] if labelled_first else [(x[:10],), (x[10:], y[10:])]
    was, now = ("with", "without") if labelled_first else ("without", "with")
    with pytest.raises(ValueError, match=f"batches: expected every batch to carry labels or none, got batches {was} "
                                         f"labels, then one {now} them at sample 10"):
        nv.readability(net, batches)


# ------------------------------------------------------------------ 6. an RNN given (x, y, lengths)
def _rnn():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), num_classes=CLASSES, max_len=12)
    net.train()
    net(torch.randn(4, 12, 2))
    return net.eval()


def _series():
    g = torch.Generator().manual_seed(2)
    s, y = torch.randn(24, 2, 12, generator=g), torch.arange(24) % CLASSES  # a label 0: no length
    return s, y, torch.randint(1, 13, (24,), generator=g)


@pytest.mark.parametrize("call, what", [
    (lambda net, b: nv.readability(net, b), "batches"),
    (lambda net, b: nv.mean_codes(net, b), "train"),
    (lambda net, b: nv.sparsify(net, b, folds=2, points=4), "train"),
    (lambda net, b: nv.finetune_sparse(net, b, epochs=1), "train"),
    (lambda net, b: nv.unit_gallery(net, b, [0], k=2), "loader"),
])
def test_an_rnn_given_x_y_lengths_is_told_the_order_of_a_batch(call, what):
    s, y, lengths = _series()
    with pytest.raises(ValueError, match=fr"{what}: a batch of 3 items is read as \(x, lengths, y\), and its middle item "
                                         r"is not lengths .*values 0 to 2.*if they are \(x, y, lengths\), pass "
                                         r"\(x, lengths, y\)"):
        call(_rnn(), [(s, y, lengths)])


def test_an_rnn_given_x_lengths_y_still_reads_its_lengths():
    net, (s, y, lengths) = _rnn(), _series()
    r = nv.readability(net, [(s, lengths, y)], baseline=None)
    with torch.no_grad():
        expected = 100.0 * float((net(s.transpose(1, 2), lengths=lengths).argmax(1) == y).float().mean())
    assert r["accuracy"] == pytest.approx(expected) and r["samples"] == 24


# ------------------------------------------------------------------ numerics 2: a NaN named as a sample
def _with_nan():
    x, y = _data(64)
    x[37, 0, 5] = float("nan")
    return DataLoader(TensorDataset(x, y), batch_size=16), x


@pytest.mark.parametrize("call, what", [
    (lambda net, dl: nv.readability(net, dl), "batches"),
    (lambda net, dl: nv.mean_codes(net, dl), "train"),
    (lambda net, dl: nv.sparsify(net, dl, folds=2, points=4), "train"),
    (lambda net, dl: nv.finetune_sparse(net, dl, epochs=1), "train"),
    (lambda net, dl: nv.unit_gallery(net, dl, [0], k=2), "loader"),
])
def test_a_loader_function_names_the_sample_that_holds_nan(call, what):
    dl, _ = _with_nan()
    with pytest.raises(ValueError, match=fr"^{what}: sample 37 \(batch 2, counted from 0 in the order read\) contains "
                                         "NaN or Inf"):
        call(_cnn(), dl)


def test_an_rnn_loader_function_names_the_sample_that_holds_nan():
    s, y, _ = _series()
    s[13, 1, 4] = float("inf")
    with pytest.raises(ValueError, match=r"^batches: sample 13 \(batch 1, counted from 0"):
        nv.readability(_rnn(), DataLoader(TensorDataset(s, y), batch_size=8))
    with pytest.raises(ValueError, match=r"^loader: sample 13 \(batch 1, counted from 0"):
        nv.unit_gallery(_rnn(), DataLoader(TensorDataset(s, y), batch_size=8), [0], k=2)


def test_the_network_s_own_error_names_the_rows():
    _, x = _with_nan()
    x[3, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"x: contains NaN or Inf \(2 of 768 values\) in samples \[3, 37\]"):
        _cnn().explain(x)


# ------------------------------------------------------------------ review of 1d40e87 (rev16/core)
def _drawn(sampler) -> torch.Tensor:
    return torch.tensor(list(sampler))


@pytest.mark.parametrize("replacement", [False, True])
def test_readability_reads_a_random_subsample_as_the_loader_draws_it(replacement):
    # F1: RandomSampler(num_samples=k) (or with replacement) was read as the whole dataset: 2000 samples for 100
    from torch.utils.data import RandomSampler

    net, (x, y) = _cnn(), _data(200)
    ds = TensorDataset(x, y)

    def sampler():
        return RandomSampler(ds, replacement=replacement, num_samples=40, generator=torch.Generator().manual_seed(4))

    rows = _drawn(sampler())
    r = nv.readability(net, DataLoader(ds, batch_size=16, sampler=sampler()), baseline=None)
    assert r["samples"] == 40 and r["accuracy"] == pytest.approx(_accuracy(net, x[rows], y[rows]))
    codes = nv.mean_codes(net, DataLoader(ds, batch_size=16, sampler=sampler()))
    torch.testing.assert_close(codes, net.codes(x[rows]).mean(0))
    with pytest.raises(ValueError, match=r"^train: expected a DataLoader that reads its dataset in order.*RandomSampler "
                                         r"that draws 40 of its 200 samples"):
        nv.sparsify(net, DataLoader(ds, batch_size=16, sampler=sampler()), folds=2, points=4)


def test_a_random_sampler_that_draws_each_sample_once_is_still_read_in_order():
    from torch.utils.data import RandomSampler

    from neuroview._batch import in_order

    x, y = _data(50)
    ds = TensorDataset(x, y)
    for s in (RandomSampler(ds), RandomSampler(ds, num_samples=50)):
        read = torch.cat([b[0] for b in in_order(DataLoader(ds, batch_size=16, sampler=s), strict="once")])
        assert torch.equal(read, x)


def test_a_list_of_x_and_one_hot_labels_is_one_batch():
    # F4: [x, y_onehot] (as a DataLoader yields it) was iterated as two bare batches, the labels read as an input x
    net, (x, y) = _cnn(), _data()
    onehot = torch.nn.functional.one_hot(y, CLASSES).float()
    torch.testing.assert_close(nv.mean_codes(net, [x, onehot]), net.codes(x).mean(0))
    with pytest.raises(ValueError, match=r"batches: expected one class index per sample.*one-hot"):
        nv.readability(net, [x, onehot])
    # two bare batches have one rank: still two batches, whatever their rows
    torch.testing.assert_close(nv.mean_codes(net, [x[:30], x[30:]]), net.codes(x).mean(0))


def test_finetune_sparse_names_the_dataset_row_of_a_nan_in_a_shuffled_loader():
    # F3: "train: sample 3 (batch 0, ...)" was a place in this epoch's shuffled order, no row of the data
    x, y = _data(32)
    x[13, 0, 4] = float("nan")
    ds = TensorDataset(x, y)
    with pytest.raises(ValueError, match=r"^train: sample 13 of the dataset \(the loader shuffles: .*batch \d+ of "
                                         r"this epoch\) contains NaN or Inf"):
        nv.finetune_sparse(_cnn(), DataLoader(ds, batch_size=4, shuffle=True), epochs=1)

    class Rows(torch.utils.data.Sampler):  # an order of one's own, no permutation to undo: said so
        def __iter__(self):
            return iter([5, 13, 0, 1])

        def __len__(self):
            return 4

    with pytest.raises(ValueError, match=r"^train: sample 1 of batch 0 in the order the loader deals them \(its Rows "
                                         r"is not the dataset's order.*shuffle=False.*\) contains NaN or Inf"):
        nv.finetune_sparse(_cnn(), DataLoader(ds, batch_size=4, sampler=Rows()), epochs=1)


def test_readability_numbers_batches_as_the_user_gave_them_empty_ones_too():
    # rev16/core F9: an empty first batch was not counted, so a NaN in list element 2 was said to be in "batch 1"
    x, y = _data(20)
    x[13, 0, 2] = float("nan")
    batches = [(x[:0], y[:0]), (x[:10], y[:10]), (x[10:], y[10:])]
    with pytest.raises(ValueError, match=r"^batches: sample 13 \(batch 2, counted from 0 in the order read\)"):
        nv.readability(_cnn(), batches)
