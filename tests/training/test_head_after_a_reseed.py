"""A lazily built head draws what one process of the same seed draws, even where Lightning reseeded every process
before ``setup`` (DDP's ``reset_seed``): under DDP the NeuroView-CNN's classifier started 0.13 away from a single
process's, the backbone identical, so a seeded run was another run on two devices."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from pytorch_lightning.strategies import DDPStrategy, SingleDeviceStrategy

from neuroview.data import DigitsDataModule
from neuroview.training.module import NeuroViewModule


def _built(reseed: int | None, draw_between: bool = False, ddp: bool = True) -> dict:
    torch.manual_seed(0)
    m = NeuroViewModule(arch="nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8]})
    if draw_between:
        torch.rand(3)  # something drew after the module was built: the generator is left alone
    if reseed is not None:
        torch.manual_seed(reseed)  # 0: what Lightning's DDP setup does in every process; another: the user's seed
    dm = DigitsDataModule(batch_size=16)
    dm.setup("fit")
    strategy = DDPStrategy() if ddp else SingleDeviceStrategy("cpu")
    m._trainer = SimpleNamespace(datamodule=dm, strategy=strategy)
    m.setup("fit")
    return {k: v.clone() for k, v in m.state_dict().items() if k.startswith("model.classifier")}


def _same(a: dict, b: dict) -> bool:
    return bool(a) and all(torch.equal(a[k], b[k]) for k in a)


def test_the_head_after_lightning_s_reseed_is_the_head_of_one_process():
    assert _same(_built(None, ddp=False), _built(0))


def test_a_seed_of_the_user_s_or_draws_since_the_build_are_kept():
    one = _built(None, ddp=False)
    assert not _same(one, _built(None, draw_between=True))  # not set back: only a reseed is undone
    # seed_everything(s) after building, as a seed sweep does: s decides, one process or several (the first version set
    # the generator back and every seed of a sweep gave one run)
    assert _same(_built(1, ddp=False), _built(1)) and not _same(_built(1), _built(2))
    assert not _same(_built(0, ddp=False), one)  # one process is never set back, even after a reseed with its seed
