"""R12: a user's own data module (no ``val_fraction``) whose validation split is empty is told so, not advised "a
larger val_fraction" it does not have (``loop_guards._empty_split``)."""

import torch
from torch.utils.data import DataLoader, TensorDataset

from neuroview.training.loop_guards import _empty_split


def test_an_own_module_s_empty_split_is_not_advised_a_val_fraction():
    empty = DataLoader(TensorDataset(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)), batch_size=4)
    why, fix = _empty_split(None, empty)
    assert "val_fraction" not in why + fix
    assert why == "the data module's validation split is empty"


def test_a_fraction_s_empty_split_still_names_the_fraction():
    empty = DataLoader(TensorDataset(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)), batch_size=4)
    why, fix = _empty_split(0.2, empty)
    assert "val_fraction=0.2" in why and "val_fraction" in fix
