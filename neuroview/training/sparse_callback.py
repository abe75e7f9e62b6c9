"""``Sparsify``: the recipe option that ends a NeuroView run with a sparse global classifier.

Added to a run with ``neuroview fit --config <recipe> --trainer.callbacks+=neuroview.training.sparse_callback.Sparsify``
(``--trainer.callbacks.init_args.tolerance 0.5`` to change its tolerance). When the test split is
about to be evaluated (after fitting, on the checkpoint the run tests: ``--test_ckpt best`` or
``last``; or in ``neuroview test --ckpt_path ...``), the network's head is refitted by
:func:`neuroview.sparsify` on the data module's training split (validation from that split, as
``sparsify`` does; the test split is not read to choose), the module's network is replaced by the
sparse one, which is what the test then scores, and the run's folder gets ``sparse.safetensors``
(its weights) and ``sparse_path.json`` (the regularization path). ``neuroview predict`` (the test
split, too) writes the sparse network's predictions the same way: refitted when prediction starts,
unless the network is sparse already (a test ran before, in the same run). ``neuroview validate``
scores the dense network, and says so: the refit is no part of training.

May import Lightning, torch, ``neuroview._io``, :mod:`.sparsify` and ``neuroview.zoo.build``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from .._io import atomic_write
from .._io import safetensors_bytes as save_bytes
from .sparse_finetune import finetune_sparse
from .sparsify import DEVIANCE, sparsify

__all__ = ["Sparsify"]


class Sparsify(pl.Callback):
    """Refit the global classifier sparse before the test split is scored (see the module docstring).

    Args:
        tolerance, groups, seed, deviance, max_k90, max_k90_steps, k90_quantile, max_units_per_class,
            max_steps_per_class, distill: as in :func:`neuroview.sparsify`.
        finetune: epochs of :func:`neuroview.finetune_sparse` after the refit (0, the default: none;
            the zoo's sparse entries use 5), within the same budget; the test then scores the
            fine-tuned network.
    """

    def __init__(self, tolerance: float = 1.0, groups: str | None = None, seed: int = 0, deviance: float = DEVIANCE,
                 max_k90: float | None = None, max_k90_steps: float | None = None, k90_quantile: float = 0.5,
                 finetune: int = 0, max_units_per_class: int | None = None, max_steps_per_class: int | None = None,
                 distill: float | None = None):
        if isinstance(finetune, bool) or not isinstance(finetune, int) or finetune < 0:
            raise ValueError(f"finetune: expected an int >= 0 (epochs), got {finetune!r}")
        self.finetune = finetune
        self.tolerance, self.groups, self.seed, self.deviance = tolerance, groups, seed, deviance
        self.max_k90, self.max_k90_steps, self.k90_quantile = max_k90, max_k90_steps, k90_quantile
        self.options = {"max_units_per_class": max_units_per_class, "max_steps_per_class": max_steps_per_class, "distill": distill}

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._refit(trainer, pl_module)

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._refit(trainer, pl_module)  # predict wrote the dense network's predictions, without a word

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING and not _is_sparse(pl_module):
            rank_zero_warn("Sparsify: applies to test and predict, not validate: `validate` scores the dense network "
                           "(the sparse head is fitted with validation from the training split)")

    def _refit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if _is_sparse(pl_module):
            return  # refitted already (a test before a predict in one run): the same network again
        if trainer.datamodule is None:
            raise ValueError("Sparsify: needs a data module (the training split to refit on)")
        # every rank refits the same deterministic path, so all keep the same network
        sparse = sparsify(pl_module.model, trainer.datamodule, tolerance=self.tolerance, groups=self.groups,
                          seed=self.seed, deviance=self.deviance, max_k90=self.max_k90,
                          max_k90_steps=self.max_k90_steps, k90_quantile=self.k90_quantile, **self.options)
        if self.finetune:
            # the test loop runs under inference mode; every rank trains the same seeded copy
            with torch.inference_mode(False), torch.enable_grad():
                sparse = finetune_sparse(sparse, trainer.datamodule, epochs=self.finetune, seed=self.seed,
                                         max_k90=self.max_k90, max_k90_steps=self.max_k90_steps,
                                         k90_quantile=self.k90_quantile)
            rank_zero_info(f"Sparsify: fine-tuned {sparse.finetuned['epochs_kept']} of {self.finetune} epochs")
        pl_module.model = sparse
        path = sparse.sparsity_path
        rank_zero_info(f"Sparsify: {path}")
        log_dir = trainer.log_dir  # a broadcast under DDP: every rank must ask (rank 0 alone waited there for ever)
        if trainer.is_global_zero:
            out = Path(log_dir or trainer.default_root_dir)
            out.mkdir(parents=True, exist_ok=True)
            state = {k: v.detach().cpu().contiguous() for k, v in sparse.state_dict().items()}
            atomic_write(out / "sparse.safetensors", save_bytes(state, metadata=_built(pl_module, trainer.datamodule)))
            record = {"summary": str(path), "points": path.to_records(), "finetuned": getattr(sparse, "finetuned", None)}
            atomic_write(out / "sparse_path.json", (json.dumps(record, indent=1) + "\n").encode())


def _built(pl_module: pl.LightningModule, dm) -> dict[str, str]:
    """How ``sparse.safetensors`` is rebuilt and what data it read, as ``neuroview retrofit --out`` records them:
    ``neuroview explain --model ARCH --weights sparse.safetensors`` then needs no ``--model-args`` and reads the
    data as the run did (a file that recorded nothing was read by the data module's defaults)."""
    from ..zoo.build import arch_kwargs  # noqa: PLC0415

    hp, meta = pl_module.hparams, {}
    if all(k in hp for k in ("arch", "num_classes", "in_channels")):  # a NeuroViewModule's (another module: no record)
        kw = arch_kwargs(hp["arch"], num_classes=hp["num_classes"], in_channels=hp["in_channels"],
                         max_len=hp.get("max_len"), model_kwargs=hp.get("model_kwargs"))
        meta = {"neuroview.architecture": hp["arch"], "neuroview.arch_kwargs": json.dumps(kw, sort_keys=True, default=str)}
    if type(dm).__module__.startswith("neuroview.data") and getattr(dm, "hparams", None) is not None:
        args = {k: v for k, v in dict(dm.hparams).items() if not k.startswith("_")}
        meta["neuroview.data"] = json.dumps({"class_path": f"neuroview.data.{type(dm).__name__}", "init_args": args},
                                            sort_keys=True, default=str)
    if getattr(dm, "class_names", None) is not None:  # what its outputs index: explain --weights checks other data's
        meta["neuroview.classes"] = json.dumps([str(c) for c in dm.class_names])
    return meta


def _is_sparse(pl_module: pl.LightningModule) -> bool:
    """Whether the module's network is one :func:`.sparsify` returned (it keeps its ``sparsity_path``)."""
    return getattr(getattr(pl_module, "model", None), "sparsity_path", None) is not None
