"""A lazily built head draws what one process of the same seed draws, even where Lightning reseeded every process
before ``setup`` (DDP's ``reset_seed``): under DDP the NeuroView-CNN's classifier started 0.13 away from a single
process's, the backbone identical, so a seeded run was another run on two devices."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from neuroview.data import DigitsDataModule
from neuroview.training.module import NeuroViewModule


def _built(reseed: bool, draw_between: bool = False) -> dict:
    torch.manual_seed(0)
    m = NeuroViewModule(arch="nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8]})
    if draw_between:
        torch.rand(3)  # something drew after the module was built: the generator is left alone
    if reseed:
        torch.manual_seed(0)  # what Lightning's DDP setup does in every process
    dm = DigitsDataModule(batch_size=16)
    dm.setup("fit")
    m._trainer = SimpleNamespace(datamodule=dm)
    m.setup("fit")
    return {k: v.clone() for k, v in m.state_dict().items() if k.startswith("model.classifier")}


def test_the_head_after_a_reseed_is_the_head_of_one_process():
    one, reseeded = _built(False), _built(True)
    assert one and all(torch.equal(one[k], reseeded[k]) for k in one)


def test_draws_made_after_the_module_was_built_are_kept():
    one, drawn = _built(False), _built(False, draw_between=True)
    assert not all(torch.equal(one[k], drawn[k]) for k in one)  # not set back: only a reseed is undone
