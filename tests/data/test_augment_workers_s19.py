"""A per-sample ``augmentation()`` must not draw other values with other ``num_workers`` (FD's 'still open' of session
19: workers draw from their own generators, seeded base_seed + worker id, so the augmented inputs, and the weights,
hung on num_workers although the order no longer did). :class:`SeededLoader` seeds each sample's draws from the epoch's
base seed and the sample's index."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neuroview.data import NpzDataModule
from neuroview.data.batches import ArrayDataset, SeededLoader, passthrough_collate

N = 24


def _noise(x: torch.Tensor) -> torch.Tensor:
    """Adds one draw of torch's generator: the sample's value minus its stored value is the draw."""
    return x + torch.rand(())


def _dataset() -> ArrayDataset:
    x = torch.arange(N, dtype=torch.float32).view(N, 1, 1).expand(N, 1, 3).contiguous()  # row i holds i
    return ArrayDataset(x, torch.arange(N), None, torch.zeros(1), torch.ones(1), augment=_noise)


def _epochs(workers: int, epochs: int = 3, loader=SeededLoader):
    """``{row: its draw}`` per epoch (rows recovered from the labels), the order served, and torch's state after."""
    torch.manual_seed(0)
    dl = loader(_dataset(), batch_size=5, shuffle=True, collate_fn=passthrough_collate, num_workers=workers)
    draws, orders = [], []
    for _ in range(epochs):
        d, order = {}, []
        for x, y in dl:
            for xi, yi in zip(x, y):
                assert torch.all(xi == xi[0, 0])  # one draw per sample, on all its values
                d[int(yi)] = float(xi[0, 0]) - int(yi)
                order.append(int(yi))
        draws.append(d)
        orders.append(order)
    return draws, orders, torch.get_rng_state()


def test_augmented_values_do_not_depend_on_num_workers():
    d0, o0, s0 = _epochs(0)
    d2, o2, s2 = _epochs(2)
    d1, o1, _ = _epochs(1)
    assert o0 == o1 == o2  # the order, as before
    assert d0 == d1 == d2  # each sample's draw: were the workers' own streams
    assert torch.equal(s0, s2)  # and the caller's generator ends where it did


def test_draws_differ_between_samples_and_between_epochs():
    draws, _, _ = _epochs(0)
    for d in draws:
        assert sorted(d) == list(range(N))
        assert all(0 <= v < 1 for v in d.values())
        assert len({round(v, 6) for v in d.values()}) == N  # no two samples share their draw
    assert all(draws[0][i] != draws[1][i] != draws[2][i] for i in range(N))  # a new draw each epoch, not a frozen one


def test_the_order_and_the_caller_s_stream_are_what_a_plain_loader_leaves():
    # the seed is read, not drawn, and augment's draws are taken out of the caller's stream
    _, seeded_order, seeded_state = _epochs(0)
    torch.manual_seed(0)
    plain = DataLoader(ArrayDataset(_dataset().x, torch.arange(N), None, torch.zeros(1), torch.ones(1)), batch_size=5,
                       shuffle=True, collate_fn=passthrough_collate)
    order = [[int(v) for _x, y in plain for v in y] for _ in range(3)]
    assert order == seeded_order
    assert torch.equal(torch.get_rng_state(), seeded_state)


def test_a_plain_loader_still_draws_from_the_generator_as_it_stands():
    # no seed set (a plain DataLoader sets none): the old behaviour, drawn in order from torch's generator
    torch.manual_seed(5)
    want = torch.rand(N)
    torch.manual_seed(5)
    x, y = _dataset().__getitems__(list(range(N)))
    assert torch.allclose(x[:, 0, 0] - y.float(), want, rtol=0, atol=1e-5)  # row i holds i: float32 rounding of i + u


def test_persistent_workers_are_refused_with_a_seeded_augment():
    dl = SeededLoader(_dataset(), batch_size=4, collate_fn=passthrough_collate, num_workers=1, persistent_workers=True)
    with pytest.raises(ValueError, match="persistent_workers: .* expected persistent_workers=False, got True"):
        iter(dl)


class _Augmented(NpzDataModule):
    def augmentation(self):
        return _noise


def test_a_data_module_s_augmentation_does_not_depend_on_num_workers(tmp_path):
    """A data module's ``augmentation()``: the same values and order with 0 workers and 2 (``_loader`` builds a
    SeededLoader)."""
    y = np.arange(40) % 2
    x = np.arange(40, dtype=np.float32).reshape(40, 1, 1).repeat(8, axis=2)
    np.savez(tmp_path / "d.npz", X=x, y=y, X_test=x[:8], y_test=y[:8])

    def served(workers):
        dm = _Augmented(str(tmp_path / "d.npz"), batch_size=4, val_fraction=0.2, num_workers=workers, normalize=False)
        dm.setup("fit")
        torch.manual_seed(0)
        loader = dm.train_dataloader()
        return [torch.cat([xb for xb, _ in loader]) for _ in range(2)]

    a, b = served(0), served(2)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0] - a[0].floor(), torch.zeros_like(a[0]))  # it did augment
