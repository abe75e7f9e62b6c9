"""A sparse entry made on other data (``neuroview sparsify SOURCE --data FILE``) records how that data was read: the
splits it was carved into and, as ``read_like``, the data its source was trained on, whose channel statistics and
series length it was read by. Rebuilt from the file alone (the manifest kept only ``normalize`` and ``resample``),
``neuroview explain`` of the entry read its data by its own statistics (a mean of 2.67 for the head's 1.40) and
carved it with seed 0 where the fit had seed 2."""

from __future__ import annotations

import json

import numpy as np
import torch

from neuroview.data import NpzDataModule, read_as_trained
from neuroview.training.sparsify_cli import _data_spec
from neuroview.zoo.evaluate import make_datamodule


def test_the_entry_s_data_spec_rebuilds_the_data_as_the_fit_read_it(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mine.npz", X=rng.normal(1.5, 1.8, (40, 2, 30)).astype(np.float32), y=np.arange(40) % 2)
    np.savez(tmp_path / "other.npz", X=rng.normal(2.7, 1.4, (50, 2, 30)).astype(np.float32), y=np.arange(50) % 2)
    trained = {"class_path": "neuroview.data.NpzDataModule",
               "init_args": {"path": str(tmp_path / "mine.npz"), "seed": 2, "val_fraction": 0}}
    dm = NpzDataModule(str(tmp_path / "other.npz"), seed=3)
    read_as_trained(dm, trained)
    dm.setup("fit")
    spec = json.loads(json.dumps(_data_spec(str(tmp_path / "other.npz"), dm, trained)))  # as the manifest keeps it
    assert spec["read_like"] == trained and spec["init_args"]["seed"] == 3
    again = make_datamodule(spec)
    again.setup("fit")
    for split in ("train", "test"):
        got, want = (torch.stack([s[0] for s in m._dataset(split)]) for m in (again, dm))
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    mine = NpzDataModule(str(tmp_path / "mine.npz"), seed=2, val_fraction=0)
    mine.setup("fit")
    torch.testing.assert_close(again._mean, mine._mean)  # the source's training statistics, not the file's own
