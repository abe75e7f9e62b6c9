"""Lightning adapter: one LightningModule that trains any zoo model, and the ``neuroview`` fit/test CLI.

Plain models never import Lightning; this module is the only place that does. The module
builds its network through :func:`neuroview.create_model`, so a checkpoint rebuilds its own
model from its hyper-parameters (``NeuroViewModule.load_from_checkpoint(path).model``).

Batches follow :mod:`neuroview.data`: ``(x, y)``, or ``(x, lengths, y)`` for variable-length
sequences, with ``x`` channels-first. Models whose ``forward`` takes ``lengths`` (the RNN
family, which reads ``[B, T, F]``) get ``x.transpose(1, 2)`` and the lengths.

>>> import torch
>>> m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [8, 16]})
>>> m(torch.randn(4, 1, 8, 8)).shape
torch.Size([4, 10])
>>> m.classifier is m.model.classifier, m.unreached   # the backbone's own head never decides: frozen
(True, ['backbone.fc'])
"""

from __future__ import annotations

import csv
import inspect
import io
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import BasePredictionWriter, LearningRateMonitor, ModelCheckpoint
from jsonargparse import Namespace
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from ..core.cnn import NeuroViewCNN
from ..data import ArrayDataModule
from .._io import atomic_write
from ..zoo import create_model
from ..zoo.registry import _MODELS

__all__ = ["NeuroViewModule", "Checkpoint", "PredictionWriter", "NeuroViewCLI", "cli_main", "load_model", "OPTIMIZERS", "SCHEDULERS"]

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("none", "cosine", "onecycle", "plateau")
_HEAD_NAMES = ("classifier", "norm", "fc", "head")


class NeuroViewModule(pl.LightningModule):
    """Train a zoo architecture (``arch``) with cross-entropy, AdamW/Adam/SGD and a scheduler.

    Args:
        arch: a registered name (``neuroview.list_models()``): a NeuroView model (``nv_*``) or
            its standard counterpart.
        num_classes, in_channels, max_len: the data's shape; the command line links them from
            the data module. ``in_channels`` is passed as ``in_features`` to RNN builders and
            ``max_len`` only to builders that take it (NeuroView-RNNs).
        model_kwargs: extra keyword arguments of the builder (``widths``, ``quantizer``,
            ``hidden_size``, ``dims``...).
        optimizer: ``"adamw"``, ``"adam"`` or ``"sgd"`` (Nesterov, ``momentum``).
        lr: peak learning rate.
        weight_decay: decoupled weight decay of weight matrices and kernels (biases and
            normalization parameters are never decayed).
        classifier_weight_decay: weight decay of the global classifier (the head of a standard
            model); default ``weight_decay``.
        scheduler: ``"cosine"`` (per step, after ``warmup_epochs`` of linear warm-up),
            ``"onecycle"``, ``"plateau"`` (halve when ``val_acc`` stalls) or ``"none"``.
        label_smoothing: cross-entropy label smoothing.
        l1_classifier: L1 penalty on the global classifier's weight: sparse unit/step importance.
        group_l1_classifier: group-lasso penalty on its columns (one group per unit or feature):
            switches whole units off.
        freeze_backbone: train only the head (global classifier and its normalization); the
            backbone stays in eval mode, so its BatchNorm statistics do not move either. With
            ``init_weights`` this is the retrofit of an already trained network.
        init_weights: weights to start from, loaded at the start of ``fit``: a Lightning
            checkpoint, a ``.pt`` state dict or a ``.safetensors`` file, of the same
            architecture or of its backbone (a trained ``small_cnn`` into ``nv_small_cnn``).
    """

    def __init__(
        self,
        arch: str = "nv_small_cnn",
        num_classes: int = 10,
        in_channels: int = 1,
        max_len: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
        *,
        optimizer: str = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        classifier_weight_decay: float | None = None,
        momentum: float = 0.9,
        scheduler: str = "cosine",
        warmup_epochs: float = 0.0,
        label_smoothing: float = 0.0,
        l1_classifier: float = 0.0,
        group_l1_classifier: float = 0.0,
        freeze_backbone: bool = False,
        init_weights: str | None = None,
    ):
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {optimizer!r}")
        if scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler: expected one of {SCHEDULERS}, got {scheduler!r}")
        if not lr > 0:
            raise ValueError(f"lr: expected a positive number, got {lr!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing: expected a number in [0, 1), got {label_smoothing!r}")
        for name, v in (("weight_decay", weight_decay), ("l1_classifier", l1_classifier),
                        ("group_l1_classifier", group_l1_classifier), ("warmup_epochs", warmup_epochs)):
            if v < 0:
                raise ValueError(f"{name}: expected a number >= 0, got {v!r}")
        self.save_hyperparameters()
        self.model = build_model(arch, num_classes=num_classes, in_channels=in_channels, max_len=max_len,
                                 model_kwargs=model_kwargs)
        self.sequence_input = "lengths" in inspect.signature(self.model.forward).parameters
        self.head_names = [n for n in _HEAD_NAMES if isinstance(getattr(self.model, n, None), nn.Module)]
        if not any(isinstance(getattr(self.model, n), nn.Linear) for n in self.head_names):
            raise ValueError(f"arch: {arch!r} has no classifier/fc/head attribute, which freezing, the classifier "
                             "penalties and its weight decay need")
        self.unreached = _freeze_unreached(self.model)
        if freeze_backbone:
            for name, child in self.model.named_children():
                if name not in self.head_names:
                    child.requires_grad_(False)
            self.train(self.training)  # Lightning keeps each submodule's mode: set the backbone's once here
            warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
        self._init_loaded = False
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_f1 = MulticlassF1Score(num_classes, average="macro")
        self.test_confmat = MulticlassConfusionMatrix(num_classes)
        self.test_confusion: Tensor | None = None

    # ------------------------------------------------------------------ model
    @property
    def classifier(self) -> nn.Linear:
        """The global linear classifier (``fc`` of a standard CNN)."""
        return next(getattr(self.model, n) for n in self.head_names if isinstance(getattr(self.model, n), nn.Linear))

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if self.sequence_input:
            return self.model(x.transpose(1, 2), lengths=lengths)
        return self.model(x)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.hparams.freeze_backbone:
            # a frozen backbone must not move either: BatchNorm statistics and dropout stay in eval mode
            for name, child in self.model.named_children():
                if name not in self.head_names:
                    child.eval()
        return self

    def on_train_epoch_start(self) -> None:
        if self.hparams.freeze_backbone:
            self.train()  # in case anything switched the whole module to train mode since

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.init_weights and not self._init_loaded:
            # here rather than in __init__: load_from_checkpoint must not need the file any more
            load_weights(self.model, self.hparams.init_weights)
            self._init_loaded = True

    # ------------------------------------------------------------------- steps
    @staticmethod
    def _unpack(batch) -> tuple[Tensor, Tensor | None, Tensor | None]:
        if isinstance(batch, Tensor):
            return batch, None, None
        if len(batch) == 3:
            return batch[0], batch[1], batch[2]
        if len(batch) == 2:
            return batch[0], None, batch[1]
        if len(batch) == 1:
            return batch[0], None, None
        raise ValueError(f"batch: expected (x, y) or (x, lengths, y), got a {type(batch).__name__} of {len(batch)} items")

    def penalty(self) -> Tensor:
        """The classifier penalties added to the loss (0 when both are off)."""
        w = self.classifier.weight
        out = w.new_zeros(())
        if self.hparams.l1_classifier:
            out = out + self.hparams.l1_classifier * w.abs().sum()
        if self.hparams.group_l1_classifier:
            out = out + self.hparams.group_l1_classifier * w.norm(dim=0).sum()
        return out

    def _loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, lengths, y = self._unpack(batch)
        logits = self(x, lengths)
        loss = self._loss(logits, y)
        total = loss + self.penalty()
        self.train_acc(logits, y)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        return total

    def validation_step(self, batch, batch_idx: int) -> None:
        x, lengths, y = self._unpack(batch)
        logits = self(x, lengths)
        self.val_acc(logits, y)
        self.val_f1(logits, y)
        self.log("val_loss", self._loss(logits, y), prog_bar=True, batch_size=len(y), sync_dist=True)
        self.log("val_acc", self.val_acc, prog_bar=True, batch_size=len(y))
        self.log("val_f1", self.val_f1, batch_size=len(y))

    def test_step(self, batch, batch_idx: int) -> None:
        x, lengths, y = self._unpack(batch)
        logits = self(x, lengths)
        self.test_acc(logits, y)
        self.test_f1(logits, y)
        self.test_confmat.update(logits, y)
        self.log("test_loss", self._loss(logits, y), batch_size=len(y), sync_dist=True)
        self.log("test_acc", self.test_acc, batch_size=len(y))
        self.log("test_f1", self.test_f1, batch_size=len(y))

    def on_test_epoch_end(self) -> None:
        self.test_confusion = self.test_confmat.compute().cpu()  # rows: true class, columns: predicted
        self.test_confmat.reset()
        log_dir = self.trainer.log_dir  # a broadcast under DDP: every rank must ask, not only rank 0
        if self.trainer.is_global_zero and log_dir:
            path = Path(log_dir) / "confusion_matrix.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            names = _class_names(self.trainer, self.hparams.num_classes)
            with open(path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["true\\predicted", *names])
                for name, row in zip(names, self.test_confusion.tolist()):
                    w.writerow([name, *row])
            rank_zero_info(f"confusion matrix (rows: true class) written to {path}")

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        x, lengths, y = self._unpack(batch)
        probs = self(x, lengths).softmax(-1)
        out = {"preds": probs.argmax(-1), "probs": probs}
        if y is not None:
            out["target"] = y
        return out

    # ------------------------------------------------------------- optimizers
    def parameter_groups(self) -> list[dict]:
        """Trainable parameters in three groups: weights, classifier weight, and never-decayed ones."""
        hp = self.hparams
        head_w = self.classifier.weight
        cls_wd = hp.weight_decay if hp.classifier_weight_decay is None else hp.classifier_weight_decay
        decay, no_decay = [], []
        for p in self.model.parameters():
            if not p.requires_grad or p is head_w:
                continue
            (decay if p.dim() >= 2 else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": hp.weight_decay},
                  {"params": [head_w] if head_w.requires_grad else [], "weight_decay": cls_wd},
                  {"params": no_decay, "weight_decay": 0.0}]
        return [g for g in groups if g["params"]]

    def configure_optimizers(self):
        hp = self.hparams
        groups = self.parameter_groups()
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum, nesterov=hp.momentum > 0)
        elif hp.optimizer == "adam":
            opt = torch.optim.Adam(groups, lr=hp.lr)
        else:
            opt = torch.optim.AdamW(groups, lr=hp.lr)
        if hp.scheduler == "none":
            return opt
        if hp.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_acc", "interval": "epoch"}}
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        if hp.scheduler == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=hp.lr, total_steps=total)
        else:
            per_epoch = total / max(self.trainer.max_epochs or 1, 1)
            warmup = min(int(hp.warmup_epochs * per_epoch), total - 1)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(warmup, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _warmup_cosine(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        t = min((step - warmup) / max(total - warmup, 1), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


def _class_names(trainer: pl.Trainer, num_classes: int) -> list[str]:
    dm = getattr(trainer, "datamodule", None)
    names = getattr(dm, "class_names", None) if dm is not None else None
    return list(names) if names is not None and len(names) == num_classes else [str(i) for i in range(num_classes)]


# ----------------------------------------------------------------- building
def build_model(arch: str, *, num_classes: int, in_channels: int, max_len: int | None = None,
                model_kwargs: dict | None = None) -> nn.Module:
    """``create_model`` with the data's shape routed to the arguments each builder takes.

    >>> build_model("nv_gru", num_classes=3, in_channels=2, max_len=30).max_len
    30
    """
    if arch not in _MODELS:
        create_model(arch)  # raises the registry's error, with its suggestions
    params = inspect.signature(_MODELS[arch]).parameters
    kw: dict[str, Any] = {"num_classes": num_classes}
    kw["in_features" if "in_features" in params else "in_channels"] = in_channels
    if "max_len" in params:
        if max_len is None and "max_len" not in (model_kwargs or {}):
            raise ValueError(f"max_len: {arch!r} needs the longest sequence length; got None (use a sequence data module)")
        kw["max_len"] = max_len
    return create_model(arch, **(kw | dict(model_kwargs or {})))


def _freeze_unreached(model: nn.Module) -> list[str]:
    """Freeze parameters the decision never reaches; return their module names.

    A NeuroView CNN stops its backbone after the last site, so the backbone's own head gets no
    gradient. Left trainable, DDP would wait for its gradients forever (or need
    ``find_unused_parameters``), and AdamW would keep it in its state for nothing.
    """
    if not isinstance(model, NeuroViewCNN):
        return []
    called: set[nn.Module] = set()
    handles = [m.register_forward_pre_hook(lambda mod, args: called.add(mod)) for m in model.backbone.modules()]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(2, *model.input_shape, device=p.device, dtype=p.dtype))
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode
    names = []
    # only the backbone: at eval the global classifier is applied as a folded F.linear, not called
    for name, m in model.backbone.named_modules():
        own = list(m.parameters(recurse=False))
        if own and m not in called:
            for q in own:
                q.requires_grad_(False)
            names.append(f"backbone.{name}" if name else "backbone")
    return names


def _read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"init_weights: expected a checkpoint or state-dict file, got {str(path)!r} (no such file)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file  # noqa: PLC0415

        try:
            return load_file(str(path))
        except Exception as e:  # SafetensorError: truncated or not a safetensors file
            raise ValueError(f"init_weights: expected a safetensors file, got {str(path)!r}, which is truncated or not one ({e})") from e
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle.UnpicklingError for code or foreign objects, RuntimeError/EOFError for truncation
        raise ValueError(f"init_weights: expected a checkpoint or state dict of tensors, got {str(path)!r}, which is truncated, "
                         f"not one, or holds objects weights_only=True refuses ({type(e).__name__}: {str(e).splitlines()[0]})") from e
    if isinstance(obj, dict) and "state_dict" in obj:  # a Lightning checkpoint of NeuroViewModule
        obj = {k[len("model."):]: v for k, v in obj["state_dict"].items() if k.startswith("model.")}
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"init_weights: expected a state dict of tensors in {str(path)!r}, got {type(obj).__name__}")
    return obj


def load_weights(model: nn.Module, path: str | os.PathLike) -> str:
    """Load ``path`` into ``model``, or into its backbone (``.backbone``/``.rnn``); return where it went.

    A trained standard network loads into the backbone of its NeuroView variant: that is the
    retrofit, after which only the global classifier needs training.
    """
    sd = _read_state_dict(path)
    errors = []
    for attr in ("", "backbone", "rnn"):
        target = getattr(model, attr, None) if attr else model
        if not isinstance(target, nn.Module):
            continue
        sub = {k[len(attr) + 1:]: v for k, v in sd.items() if k.startswith(attr + ".")} if attr else sd
        try:
            target.load_state_dict(sub or sd, strict=True)
            return attr or "model"
        except RuntimeError as e:
            errors.append(f"{attr or 'model'}: {str(e).splitlines()[0]} ...")
    raise ValueError(f"init_weights: {str(path)!r} matches neither the model nor its backbone ({'; '.join(errors)})")


def load_model(ckpt_path: str | os.PathLike, map_location: str = "cpu") -> nn.Module:
    """The plain ``nn.Module`` of a Lightning checkpoint of :class:`NeuroViewModule`, in eval mode.

    ``weights_only=True``: our checkpoints hold tensors and primitive hyper-parameters only, so a
    file that needs arbitrary unpickling is refused rather than allowed to run code.
    """
    return NeuroViewModule.load_from_checkpoint(ckpt_path, map_location=map_location, weights_only=True).model.eval()


# -------------------------------------------------------------- predictions
class PredictionWriter(BasePredictionWriter):
    """Writes ``predictions.csv`` (index, target, prediction, class probabilities) next to the logs."""

    def __init__(self, output_dir: str | None = None):
        super().__init__(write_interval="epoch")
        self.output_dir = output_dir

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        if not predictions or not isinstance(predictions[0], dict):
            return
        out = Path(self.output_dir or trainer.log_dir or ".")
        out.mkdir(parents=True, exist_ok=True)
        name = "predictions.csv" if trainer.world_size == 1 else f"predictions_rank{trainer.global_rank}.csv"
        preds = torch.cat([p["preds"] for p in predictions]).tolist()
        probs = torch.cat([p["probs"] for p in predictions]).tolist()
        target = torch.cat([p["target"] for p in predictions]).tolist() if "target" in predictions[0] else [""] * len(preds)
        index = [i for b in (batch_indices[0] if batch_indices and batch_indices[0] else []) for i in b] or list(range(len(preds)))
        f = io.StringIO(newline="")
        w = csv.writer(f)
        w.writerow(["index", "target", "pred", *[f"prob_{c}" for c in range(len(probs[0]))]])
        for row in zip(index, target, preds, probs):
            w.writerow([*row[:3], *[f"{p:.6g}" for p in row[3]]])
        atomic_write(out / name, f.getvalue().encode())  # a crash leaves the previous predictions.csv whole
        rank_zero_info(f"predictions written to {out / name}")


# ---------------------------------------------------------------------- CLI
class Checkpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``last.ckpt`` follows every epoch, as ``--ckpt_path last`` needs.

    Since Lightning 2.6, ``save_last=True`` writes ``last.ckpt`` only when a top-k checkpoint is
    saved at the same step, so with ``save_top_k=1`` it is a copy of the best epoch and a resumed
    run would go back to it. This saves the latest state after each epoch as well.
    """

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        # Lightning writes through an fsspec transaction whose temporary file lies in the system
        # temp dir; across file systems its final move is a copy, and a kill mid-copy leaves half a
        # last.ckpt. A temporary file next to the target and os.replace is atomic on any local disk.
        if "://" in str(filepath):
            return super()._save_checkpoint(trainer, filepath)
        tmp = f"{filepath}.tmp"
        super()._save_checkpoint(trainer, tmp)
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            os.replace(tmp, filepath)
        trainer.strategy.barrier("Checkpoint._save_checkpoint")

    def _save_last_anyway(self, trainer: pl.Trainer, at_train_epoch_end: bool) -> None:
        if (self.save_last and not self._should_skip_saving_checkpoint(trainer)
                and self._should_save_on_train_epoch_end(trainer) == at_train_epoch_end):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._save_last_anyway(trainer, True)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._save_last_anyway(trainer, False)


class NeuroViewCLI(LightningCLI):
    """LightningCLI with the data's shape linked into the model and per-run folders.

    - ``data.num_classes``, ``data.in_channels`` and ``data.max_len`` are linked to the model,
      so a recipe states them nowhere;
    - ``--checkpoint.*`` configures the ModelCheckpoint (best by ``val_acc`` + ``last.ckpt``),
      kept in ``<default_root_dir>/checkpoints`` so ``--ckpt_path last`` finds the last run's;
    - ``fit`` ends by testing the best checkpoint (``--test_ckpt last``: the last epoch's weights;
      ``--test_after_fit false`` skips it);
    - logs go to ``<default_root_dir>/logs/version_N`` (CSV, and TensorBoard when installed),
      with the resolved ``config.yaml`` of the run.
    """

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(Checkpoint, "checkpoint")
        parser.set_defaults({
            "checkpoint.monitor": "val_acc",
            "checkpoint.mode": "max",
            "checkpoint.save_last": True,
            "checkpoint.filename": "best-epoch{epoch:03d}-val_acc{val_acc:.4f}",
            "checkpoint.auto_insert_metric_name": False,
            # a new run of the same recipe replaces last.ckpt instead of writing last-v1.ckpt beside it
            "checkpoint.enable_version_counter": False,
        })
        for key in ("num_classes", "in_channels", "max_len"):
            parser.link_arguments(f"data.{key}", f"model.{key}", apply_on="instantiate")
        parser.add_argument("--torch_threads", type=int | None, default=None,
                            help="torch.set_num_threads for this run (default: torch's choice, one per core)")
        parser.add_argument("--test_after_fit", type=bool, default=True,
                            help="fit only: evaluate on the test split when training ends")
        parser.add_argument("--test_ckpt", type=Literal["best", "last"], default="best",
                            help="fit only: test the best checkpoint (by the monitored metric) or the last epoch's weights")

    def after_fit(self) -> None:
        cfg = self.config[self.subcommand]
        if not cfg.get("test_after_fit") or self.trainer.interrupted:
            return
        cb = self.trainer.checkpoint_callback
        best = cb.best_model_path if cb is not None and cfg.get("test_ckpt") == "best" else ""
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        if cfg.get("torch_threads"):
            # tiny networks on small in-memory sets lose more to thread synchronization than they
            # gain, and badly so on shared CPUs: recipes may pin the count
            torch.set_num_threads(cfg.torch_threads)
        root = cfg.trainer.default_root_dir
        if cfg.trainer.logger in (None, True):
            loggers = [Namespace(class_path="pytorch_lightning.loggers.CSVLogger",
                                 init_args=Namespace(save_dir=root, name="logs"))]
            if _tensorboard_available():
                loggers.append(Namespace(class_path="pytorch_lightning.loggers.TensorBoardLogger",
                                         init_args=Namespace(save_dir=root, name="tensorboard")))
            cfg.trainer.logger = loggers

    def instantiate_trainer(self, **kwargs) -> pl.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        for cb in trainer.checkpoint_callbacks:
            if isinstance(cb, ModelCheckpoint) and cb.dirpath is None:
                # one folder per recipe, not per log version: `--ckpt_path last` must find the last run
                cb.dirpath = os.path.realpath(os.path.join(trainer.default_root_dir, "checkpoints"))
        if trainer.loggers and not any(isinstance(c, LearningRateMonitor) for c in trainer.callbacks):
            trainer.callbacks.append(LearningRateMonitor(logging_interval="epoch"))
        return trainer


def _tensorboard_available() -> bool:
    import importlib.util  # noqa: PLC0415

    return any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX"))


def _run_name(argv: list[str]) -> str:
    """The stem of the last ``--config`` file: ``recipes/digits_nv_small_cnn.yaml`` -> ``digits_nv_small_cnn``."""
    name = "neuroview"
    for i, a in enumerate(argv):
        if a in ("--config", "-c") and i + 1 < len(argv):
            name = Path(argv[i + 1]).stem
        elif a.startswith("--config="):
            name = Path(a.split("=", 1)[1]).stem
    return name


def cli_main(argv: list[str] | None = None, *, run: bool = True) -> NeuroViewCLI:
    """``neuroview fit|validate|test|predict --config recipes/<name>.yaml [--key value ...]``.

    Runs go to ``runs/<name>`` unless ``--trainer.default_root_dir`` says otherwise.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not run and argv and argv[0] in ("fit", "validate", "test", "predict"):
        argv = argv[1:]  # run=False parses one config, without sub-commands
    with warnings.catch_warnings():
        # LightningCLI warns whenever args are given while sys.argv holds anything (the console script, pytest)
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
        return _cli(argv, run)


def _cli(argv: list[str], run: bool) -> NeuroViewCLI:
    return NeuroViewCLI(
        NeuroViewModule,
        ArrayDataModule,
        subclass_mode_data=True,
        trainer_defaults={"default_root_dir": os.path.join("runs", _run_name(argv)),
                          "callbacks": [PredictionWriter()]},
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,  # optimizer and scheduler are model options: --model.optimizer sgd
        args=argv,
        run=run,
    )
