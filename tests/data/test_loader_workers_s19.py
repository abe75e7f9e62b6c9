"""num_workers is a speed setting: the training batches, and so the weights, must not depend on it (probe P1 of session
19: persistent workers drew the loader's base seed from torch's global generator once instead of once an epoch, so
every later shuffle came from another point of the stream, and a resume with other num_workers left the run's order)."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch

from neuroview.data import NpzDataModule
from neuroview.training.module import NeuroViewModule


def _file(tmp_path) -> str:
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    x = rng.normal(size=(40, 1, 16)).astype(np.float32) + y[:, None, None]
    path = tmp_path / "d.npz"
    np.savez(path, X=x, y=y, X_test=x[:8], y_test=y[:8])
    return str(path)


def _epochs(path: str, workers: int, epochs: int = 3) -> tuple[list[list[int]], torch.Tensor]:
    """Each epoch's training rows in the order served (the labels are the rows' indices), reading the validation
    loader after each epoch as a trainer does, and torch's global generator state at the end."""
    dm = NpzDataModule(path, batch_size=4, val_fraction=0.2, num_workers=workers, normalize=False)  # served as stored
    dm.setup("fit")
    x = dm._prepared_splits()["train"][0]
    ident = {tuple(v.flatten().tolist()): i for i, v in enumerate(x)}  # each training series is distinct
    torch.manual_seed(0)
    train, val, orders = dm.train_dataloader(), dm.val_dataloader(), []
    for _ in range(epochs):
        order = []
        for xb, _yb in train:
            order += [ident[tuple(v.flatten().tolist())] for v in xb]
        orders.append(order)
        for _batch in val:
            pass
    return orders, torch.get_rng_state()


def test_the_training_batches_do_not_depend_on_num_workers(tmp_path):
    path = _file(tmp_path)
    orders0, state0 = _epochs(path, 0)
    orders2, state2 = _epochs(path, 2)
    assert sorted(orders0[0]) == list(range(32))  # every training series once an epoch (40 less 8 held out)
    assert orders0[0] != orders0[1] != orders0[2]  # a new order each epoch
    assert orders2 == orders0  # epochs 1 and 2 came from another point of the stream with persistent workers
    assert torch.equal(state2, state0)  # a resume restoring this state draws the same next epoch either way


def _fit(path: str, workers: int, root) -> dict[str, torch.Tensor]:
    pl.seed_everything(0)
    dm = NpzDataModule(path, batch_size=4, val_fraction=0.2, num_workers=workers)
    model = NeuroViewModule("small_cnn", num_classes=2, in_channels=1, model_kwargs={"widths": [4], "dims": 1})
    trainer = pl.Trainer(default_root_dir=root, max_epochs=3, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         deterministic=True)
    trainer.fit(model, dm)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_a_short_fit_gives_the_same_weights_with_0_and_2_workers(tmp_path):
    path = _file(tmp_path)
    a, b = _fit(path, 0, tmp_path / "a"), _fit(path, 2, tmp_path / "b")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def _served(workers: int, persistent: bool, epochs: int = 3) -> tuple[list[list[int]], torch.Tensor]:
    """Each epoch's rows in the order a shuffling :class:`SeededLoader` of 24 rows (row i labelled i) serves them,
    an unshuffled one (a validation loader) read after each epoch, and torch's global generator state at the end."""
    from neuroview.data.batches import ArrayDataset, SeededLoader, passthrough_collate

    ds = ArrayDataset(torch.zeros(24, 1, 2), torch.arange(24), None, torch.zeros(1), torch.ones(1))
    kw = {"collate_fn": passthrough_collate, "num_workers": workers, "persistent_workers": persistent and workers > 0}
    torch.manual_seed(0)
    train, val = SeededLoader(ds, batch_size=5, shuffle=True, **kw), SeededLoader(ds, batch_size=8, **kw)
    orders = []
    for _ in range(epochs):
        orders.append([int(i) for _x, y in train for i in y])
        for _batch in val:
            pass
    return orders, torch.get_rng_state()


def test_persistent_workers_serve_what_0_workers_serve():
    """Review R4 finding 5: workers started anew each epoch (a re-import of torch and neuroview per epoch and per
    validation pass under spawn, about 50 s an epoch on 2 cores). A kept iterator now draws the one number a new one
    draws, so the epochs' orders and the generator's state are 0 workers' (a plain persistent DataLoader's were not)."""
    orders0, state0 = _served(0, False)
    assert orders0[0] != orders0[1] != orders0[2] and sorted(orders0[1]) == list(range(24))
    orders2, state2 = _served(2, True)
    assert orders2 == orders0 and torch.equal(state2, state0)


def test_a_data_module_keeps_its_workers_where_it_does_not_augment_per_sample(tmp_path):
    """The training and validation loaders keep their workers between epochs (one iterator, reused), except where the
    module has a per-sample ``augmentation()``: its epoch seed reaches only workers started for the epoch."""
    class Augmented(NpzDataModule):
        def augmentation(self):
            return lambda x: x + torch.rand(())

    path = _file(tmp_path)
    dm = NpzDataModule(path, batch_size=4, val_fraction=0.2, num_workers=2)
    dm.setup("fit")
    train, val = dm.train_dataloader(), dm.val_dataloader()
    assert train.persistent_workers and val.persistent_workers
    assert iter(train) is iter(train)  # one iterator, its workers kept
    aug = Augmented(path, batch_size=4, val_fraction=0.2, num_workers=2)
    aug.setup("fit")
    assert not aug.train_dataloader().persistent_workers and aug.val_dataloader().persistent_workers
    assert not NpzDataModule(path, num_workers=0).train_dataloader().persistent_workers  # DataLoader's rule: none
