"""How many processes share a data module's training loader: Lightning splits it (its DistributedSampler) only for
the training loop of ``fit``; any other reader (``finetune_sparse`` under ``test``, a callback during validation)
reads the loader whole, and must batch it as one process would. May import nothing of neuroview."""

from __future__ import annotations

__all__ = ["training_shares"]


def training_shares(trainer, world: int) -> int:
    """The shares (processes) ``trainer``'s training loop splits a training loader into: ``world`` (its
    ``distributed_sampler_kwargs``' ``num_replicas``) while ``fit`` trains with Lightning's distributed sampler, else 1.
    A trainer that tells neither its state nor its sampler option (a stub) is taken to train: as before."""
    if world <= 1:
        return 1
    state = getattr(trainer, "state", None)
    if state is not None and (getattr(state, "fn", None) != "fit" or getattr(state, "stage", None) != "train"):
        return 1  # test, validate, predict, or fit's validation: nothing shards a training loader there
    # Lightning's own switch (Trainer(use_distributed_sampler=False): every process reads the loader whole); private,
    # and no public attribute says it
    connector = getattr(trainer, "_accelerator_connector", None)
    return world if getattr(connector, "use_distributed_sampler", True) else 1
