"""The LightningModule that trains any zoo model, and reading its checkpoints back.

Plain models never import Lightning; ``neuroview.training`` is the only place that does (the
callbacks and the command line are in ``.callbacks`` and ``.cli``). The module builds its network
with :func:`neuroview.zoo.build.build_model`, so a checkpoint rebuilds its own model from its
hyper-parameters (:func:`load_model`); weights to start from are read by the zoo's one loader.

Batches follow :mod:`neuroview.data`: ``(x, y)``, or ``(x, lengths, y)`` for variable-length
sequences, with ``x`` channels-first; :mod:`neuroview._batch` unpacks them (an RNN reads ``[B, T, F]``).
May import Lightning, torchmetrics, ``neuroview.core``, ``neuroview.zoo`` and the leaf modules.

>>> import torch
>>> m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [8, 16]})
>>> m(torch.randn(4, 1, 8, 8)).shape
torch.Size([4, 10])
>>> _ = m.build(torch.randn(4, 1, 8, 8))  # setup does this with the first batch: the head, then the optimizer
>>> m.classifier is m.model.classifier, m.unreached   # the backbone's own head never decides: frozen
(True, ['backbone.fc'])
"""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._batch import call_model, check_lengths, takes_lengths, unpack
from ..core._utils import batch_labels, rng_as_built
from ..core.ensemble import Ensemble, members_loss
from ..data.read_as import check_classes_of
from .callbacks import ResumeState
from .outputs import ClassCount, this_calls_datamodule, write_confusion
from .compiled import COMPILE_MODES, check_finite, train_forward
from .first_batch import first_batch
from .loop_guards import LoopGuards, soft_labels
from .module_args import check_numbers
from .module_metrics import ModuleMetrics, check_optimizer_dtype
from .schedules import PlateauAtEpochEnd, check_plateau_args, make_scheduler, warmup_cosine  # noqa: F401 - tests import it
from .spawned import FreshMetrics, not_built
from .unreached import freeze_unreached
from ..zoo import weights as zoo_weights
from ..zoo._foreign_ckpt import foreign_refusal
from ..zoo._weights_checks import check_finite_checkpoint
from ..zoo.build import build_model, builder
from ..zoo.pretrained import check_arguments

__all__ = ["NeuroViewModule", "build_model", "load_weights", "load_module", "load_model", "OPTIMIZERS", "SCHEDULERS"]

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("none", "cosine", "onecycle", "plateau", "train_plateau")
#: zoo architectures that no gradient step trains: ``neuroview minirocket`` / ``nv.minirocket`` fit them
CLOSED_FORM = ("minirocket", "nv_minirocket")
_HEAD_NAMES = ("classifier", "norm", "fc", "head", "step_shared", "dropout")  # dropout: the RNN heads'


class NeuroViewModule(ClassCount, FreshMetrics, LoopGuards, ModuleMetrics, ResumeState, PlateauAtEpochEnd, pl.LightningModule):
    """Train a zoo architecture (``arch``) with cross-entropy, AdamW/Adam/SGD and a scheduler.

    Args:
        arch: a registered name (``neuroview.list_models()``): a NeuroView model (``nv_*``) or
            its standard counterpart; not the closed-form :data:`CLOSED_FORM` (``nv.minirocket`` fits those).
        num_classes, in_channels, max_len: the data's shape; the command line links them from
            the data module. ``in_channels`` is passed as ``in_features`` to RNN builders and
            ``max_len`` only to builders that take it (NeuroView-RNNs).
        model_kwargs: extra keyword arguments of the builder (``widths``, ``quantizer``,
            ``hidden_size``, ``dims``...).
        optimizer: ``"adamw"``, ``"adam"`` or ``"sgd"`` (Nesterov, ``momentum``).
        lr: peak learning rate.
        weight_decay: of every tensor of 2 or more dims (weights, kernels, a ViT's position embedding and class token;
            never biases and norms): decoupled with ``"adamw"``, L2 (added to the gradient) with ``"adam"``, ``"sgd"``.
        classifier_weight_decay: weight decay of the global classifier (the head of a standard
            model); default ``weight_decay``.
        classifier_lr: peak learning rate of the global classifier's weight; default ``lr``. With
            Adam a logit moves with the number of features the classifier reads: one over
            thousands of unit codes or hidden states may want a smaller rate than the backbone.
        scheduler: ``"cosine"`` (per step, after ``warmup_epochs`` of linear warm-up),
            ``"onecycle"``, ``"plateau"`` (halve when ``val_acc`` stalls), ``"train_plateau"``
            (halve when the training loss stalls; see :func:`~neuroview.training.schedules.make_scheduler`) or ``"none"``.
        plateau_patience, plateau_factor, min_lr_factor: the plateau schedules' epochs (validations, for ``"plateau"``)
            without improvement that are tolerated (the next one cuts), the factor of a cut, and each rate's floor
            (times its peak). ``warmup_epochs`` other than 0 with another scheduler than ``"cosine"``,
            and these three off their defaults with one that is no plateau schedule, are refused when ``fit`` starts.
        label_smoothing: cross-entropy label smoothing.
        l1_classifier: L1 penalty on the global classifier's weight: sparse unit/step importance. The weight
            the decision uses: with a NeuroView-RNN's ``shared_steps``, its own plus the shared part (``_weight()``).
        group_l1_classifier: group-lasso penalty on its columns (one group per unit or feature):
            switches whole units off.
        freeze_backbone: train only the head (global classifier and its normalization); the backbone
            (and the parameters a network holds itself: a ViT's ``cls_token``) is frozen and stays in eval
            mode, so its BatchNorm statistics do not move either. With ``init_weights`` this is the
            retrofit of an already trained network.
        init_weights: weights to start from, loaded at the start of ``fit`` (and of ``test``,
            ``validate``, ``predict``), never over weights restored from a checkpoint: a Lightning
            checkpoint, a ``.pt`` state dict or a ``.safetensors`` file, of the same
            architecture or of its backbone (a trained ``small_cnn`` into ``nv_small_cnn``).
        compile: each training step's forward (and backward) under ``torch.compile`` in this mode
            (``"reduce-overhead"``: CUDA graphs, for a small step that waits on its host), or the
            ``"aot_eager"`` backend; None: eager. How, not what (a site keeps 8-bit slopes compiled).
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
        classifier_lr: float | None = None,
        momentum: float = 0.9,
        scheduler: str = "cosine",
        warmup_epochs: float = 0.0,
        plateau_patience: int = 5,
        plateau_factor: float = 0.5,
        min_lr_factor: float = 0.0,
        label_smoothing: float = 0.0,
        l1_classifier: float = 0.0,
        group_l1_classifier: float = 0.0,
        freeze_backbone: bool = False,
        init_weights: str | None = None,
        compile: str | None = None,
    ):
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {OPTIMIZERS}, got {optimizer!r}")
        if scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler: expected one of {SCHEDULERS}, got {scheduler!r}")
        check_numbers(lr=lr, classifier_lr=classifier_lr, weight_decay=weight_decay, momentum=momentum, optimizer=optimizer,
                      classifier_weight_decay=classifier_weight_decay, warmup_epochs=warmup_epochs,
                      plateau_patience=plateau_patience, label_smoothing=label_smoothing, l1_classifier=l1_classifier,
                      group_l1_classifier=group_l1_classifier)  # finite, in range, by name (inf trained to NaN)
        check_plateau_args(plateau_factor, min_lr_factor)
        if compile is not None and compile not in COMPILE_MODES:
            raise ValueError(f"compile: expected None or one of {COMPILE_MODES}, got {compile!r}")
        if arch in CLOSED_FORM:  # no gradient step fits them: fit failed in its sanity check, on biases never fitted
            raise ValueError(f"arch: {arch!r} is fitted in closed form (its biases from training series, its head by "
                             f"ridge), not by gradient steps; use `neuroview minirocket --data ...` or "
                             f"nv.minirocket(train_loader)")
        self.save_hyperparameters()
        if isinstance(model_kwargs, dict) and not hasattr(builder(arch, "arch"), "passed_on"):  # as create_model: a
            check_arguments(arch, dict(model_kwargs))  # typo named with its close name, not the builder's bare TypeError
        self.model = build_model(arch, num_classes=num_classes, in_channels=in_channels, max_len=max_len,
                                 model_kwargs=model_kwargs)
        self.sequence_input = takes_lengths(self.model)
        self.unreached, self._ready, self._rng_at_build = [], False, (torch.get_rng_state(), torch.initial_seed())
        if getattr(self.model, "sites", True) is not None:  # a NeuroView-CNN finds its sites on the first batch
            self._materialize(None)
        self._init_loaded = False
        self._make_metrics(num_classes)  # ModuleMetrics: their float states stay float32 under any precision
        self.test_confusion: Tensor | None = None

    # ------------------------------------------------------------------ model
    def _materialize(self, x: Tensor | None) -> None:
        """Check the head and freeze what the decision never reaches, once the model is built:
        at once, or (a NeuroView-CNN wrapped without an example) on the first real batch ``x``."""
        if x is not None and getattr(self.model, "sites", True) is None:
            self.model.discover(x)
        names = [n for n in _HEAD_NAMES if isinstance(getattr(self.deciders[0], n, None), nn.Module)]
        if not any(isinstance(getattr(self.deciders[0], n), nn.Linear) for n in names):
            raise ValueError(f"arch: {self.hparams.arch!r} has no classifier/fc/head attribute, which freezing, the "
                             "classifier penalties and its weight decay need")
        self.head_names = names
        prefixes = [f"members.{i}." for i in range(len(self.deciders))] if self.ensemble else [""]
        self.unreached = [p + n for p, net in zip(prefixes, self.deciders) for n in freeze_unreached(net, x)]
        if self.hparams.freeze_backbone:
            for name, child in self._backbone_children():
                child.requires_grad_(False)
            for w in [w for net in self.deciders for w in net.parameters(recurse=False)]:  # a ViT's cls_token, pos_embed
                w.requires_grad_(False)  # held by the network itself, in none of its children
            self.train(self.training)  # Lightning keeps each submodule's mode: set the backbone's once here (LoopGuards)
        self._ready = True

    def build(self, x: Tensor) -> "NeuroViewModule":
        """Finish building on a real batch ``x`` (``setup`` does it with the datamodule's first batch):
        a NeuroView-CNN finds its sites and builds its global classifier; then the head is checked
        and what the decision never reaches is frozen. Returns self."""
        if not self._ready:
            self._materialize(x)
        return self

    def _first_batch(self, stage: str) -> Tensor:
        return first_batch(self._trainer, stage)  # this call's data, not a data module an earlier fit left on the trainer

    @property
    def ensemble(self) -> bool:
        """Whether the model is an :class:`~neuroview.core.ensemble.Ensemble` (``model_kwargs.members`` > 1):
        each member is then trained on its own loss, as if alone."""
        return isinstance(self.model, Ensemble)

    @property
    def deciders(self) -> list[nn.Module]:
        """The networks that each decide with a head of their own: the model, or each member of an ensemble."""
        return list(self.model.members) if self.ensemble else [self.model]

    @property
    def classifiers(self) -> list[nn.Linear]:
        """The global linear classifier (``fc`` of a standard CNN) of each network in :attr:`deciders`."""
        if not self._ready:  # named: a bare AttributeError (no head_names) said the module had no classifier at all
            raise not_built(self)
        return [next(getattr(net, n) for n in self.head_names if isinstance(getattr(net, n), nn.Linear))
                for net in self.deciders]

    @property
    def classifier(self) -> nn.Linear:
        """The global linear classifier (``fc`` of a standard CNN); of an ensemble, its first member's."""
        return self.classifiers[0]

    def _backbone_children(self):
        """``(name, module)`` of every child of :attr:`deciders` that is not part of a head."""
        return [(name, child) for net in self.deciders for name, child in net.named_children() if name not in self.head_names]

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return call_model(self.model, x, lengths, sequence=self.sequence_input)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.hparams.freeze_backbone:
            # a frozen backbone must not move either: BatchNorm statistics and dropout stay in eval mode
            for _, child in self._backbone_children():
                child.eval()
        return self

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()  # ResumeState: a resumed run's first batch order
        if self.hparams.freeze_backbone:
            self.train()  # in case anything switched the whole module to train mode since

    def setup(self, stage: str) -> None:
        # before configure_optimizers, as Lightning documents for lazy modules: one real batch
        # finds the sites and builds the global classifier over their units
        super().setup(stage)  # FreshMetrics: a spawned worker's metrics in its own storage
        if not (self.hparams.init_weights and not self._init_loaded and stage != "fit"):  # else its file's classes first
            self.check_class_count()  # ClassCount: the data module's classes, before its first batch
        if not self._ready:  # sites a user found (model.discover(x)) need no batch
            rng_as_built(getattr(self, "_rng_at_build", None) if isinstance(getattr(self._trainer, "strategy", None), pl.strategies.ParallelStrategy) else None)  # DDP reseeded
            self._materialize(None if getattr(self.model, "sites", None) is not None else self._first_batch(stage))
        if self.hparams.init_weights and not self._init_loaded:
            # here rather than in __init__: load_from_checkpoint must not need the file any more. Every stage: test,
            # validate and predict scored untrained weights. A checkpoint restored later overwrites these weights
            load_weights(self.model, self.hparams.init_weights, whole=stage != "fit")  # scored: a random head is no model
            self._init_loaded = True  # scored (not fine-tuned): its outputs must be the data's classes, as ckpt_path's are
            if stage != "fit" and (dm := this_calls_datamodule(self._trainer)) is not None:  # not an earlier fit's
                check_classes_of(dm, self.hparams.init_weights, "data")
                self.check_class_count("init_weights")  # a file that records no classes: trained on num_classes of them

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # a diverged run's (Trainer.fit/test(ckpt_path=...), load_from_checkpoint): resumed in NaN, or scored as chance
        check_finite_checkpoint(checkpoint, "ckpt_path", "the checkpoint")
        super().on_load_checkpoint(checkpoint)
        self._init_loaded = True  # trained weights (load_from_checkpoint, a restore): init_weights never goes over them

    # ------------------------------------------------------------------- steps
    def penalty(self) -> Tensor:
        """The classifier penalties added to the loss (0 when both are off); of an ensemble, every member's. Each
        penalizes the weight the decision uses: a NeuroView-RNN's ``shared_steps`` adds its shared part (``_weight()``)."""
        out = self.classifier.weight.new_zeros(())
        for w in (c.weight if getattr(net, "step_shared", None) is None else net._weight()
                  for net, c in zip(self.deciders, self.classifiers)):
            if self.hparams.l1_classifier:
                out = out + self.hparams.l1_classifier * w.abs().sum()
            if self.hparams.group_l1_classifier:
                out = out + self.hparams.group_l1_classifier * w.norm(dim=0).sum()
        return out

    def _loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        return self._check_batch(batch)

    def _check_batch(self, batch, soft_ok: bool = False):  # also after a data module's own hook (LoopGuards; soft_ok:
        # its training batch, whose class-probability rows trained before these checks ran there, still do)
        self._batch_checked = True
        if self.hparams.get("compile") is not None:  # a compiled network skips its own NaN check (neuroview.training.compiled)
            check_finite(batch, self)
        x, lengths, y = unpack(batch)
        if not self.sequence_input and isinstance(lengths, Tensor) and lengths.device.type == "cpu":
            check_lengths(lengths, x, "batch")  # (x, y, other) is read as (x, lengths, y): trained against `other`
        y = None if self._trainer is not None and self._trainer.predicting else y
        if isinstance(y, Tensor) and y.device.type == "cpu" and not (soft_ok and soft_labels(y, self.hparams.num_classes, True)):
            # checked where no device syncs (a GPU loader's: unchecked); [B, C] float rows not probabilities: refused
            # one-hot rows trained as soft targets and scored wrong; int32, float, -1 labels failed in torch
            z = batch_labels(y, len(y), self.hparams.num_classes, "y")
            batch = batch if z is y else (*batch[:-1], z)  # int64 labels: the batch as it came
        return batch

    def training_step(self, batch, batch_idx: int) -> Tensor:
        x, lengths, y = unpack(batch)
        out = train_forward(self, x, lengths, self.hparams.get("compile"))
        if self.ensemble:
            # the sum of the members' own losses (members_loss): each member's gradient is the one it
            # would get alone; the ensemble decides with the mean of their logits
            total = members_loss(out, y, self.hparams.label_smoothing)
            loss, logits = total.detach() / len(out), out.mean(0)
        else:
            logits = out
            total = loss = self._loss(logits, y)
        total = total + self.penalty()
        self._score_train(logits, y, loss) if y.dim() == 1 else self._score_soft(loss, len(y))  # soft labels: LoopGuards
        return total

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:  # one loader: LoopGuards
        x, lengths, y = unpack(batch)
        self._score("val", self(x, lengths), y)  # ModuleMetrics

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:  # one loader: LoopGuards
        x, lengths, y = unpack(batch)
        self._score("test", self(x, lengths), y)

    def on_test_epoch_end(self) -> None:
        self.test_confusion = self.test_confmat.compute().cpu()  # rows: true class, columns: predicted
        self.test_confmat.reset()
        write_confusion(self.trainer, self.test_confusion, self.hparams.num_classes)

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Tensor]:
        x, lengths, y = unpack(batch)
        self._predict_labels(x, lengths, y)
        probs = self(x, lengths).softmax(-1)
        out = {"preds": probs.argmax(-1), "probs": probs}
        if y is not None:
            out["target"] = y
        return out

    # ------------------------------------------------------------- optimizers
    def parameter_groups(self) -> list[dict]:
        """Trainable parameters in three groups, each with its ``name`` (the LR monitor's column, ``lr-AdamW/<name>``:
        a position ``pg<N>`` moved with the groups left empty): ``backbone`` (every other tensor of 2 or more dims),
        ``classifier`` (the classifier's weight: its own weight decay and, with ``classifier_lr``, learning rate) and
        ``no_decay`` (biases and norms, the head's too); a fourth, ``shared_steps``, with a NeuroView-RNN's shared part:
        the classifier's weight decay, the backbone's rate. Groups without trainable parameters are left out."""
        hp = self.hparams
        head_w = [c.weight for c in self.classifiers]
        # the part of the classifier's weight every step shares (NeuroViewRNN's shared_steps): the
        # classifier's weight decay, the backbone's rate (it reads L*D*H features, as a standard RNN's head)
        shared = [s.weight for s in (getattr(net, "step_shared", None) for net in self.deciders) if isinstance(s, nn.Linear)]
        cls_wd = hp.weight_decay if hp.classifier_weight_decay is None else hp.classifier_weight_decay
        decay, no_decay = [], []
        for p in self.model.parameters():
            if not p.requires_grad or any(p is w for w in head_w + shared):
                continue
            (decay if p.dim() >= 2 else no_decay).append(p)
        head = {"params": [w for w in head_w if w.requires_grad], "weight_decay": cls_wd, "name": "classifier"}
        if hp.get("classifier_lr") is not None:
            head["lr"] = hp.classifier_lr
        groups = [{"params": decay, "weight_decay": hp.weight_decay, "name": "backbone"}, head,
                  {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
                  {"params": [w for w in shared if w.requires_grad], "weight_decay": cls_wd, "name": "shared_steps"}]
        return [g for g in groups if g["params"]]

    def configure_optimizers(self):
        hp = self.hparams
        check_optimizer_dtype(self, hp.optimizer)  # 16-true: Adam's eps is 0 in float16, the weights NaN at step 1
        groups = self.parameter_groups()
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum, nesterov=hp.momentum > 0)
        elif hp.optimizer == "adam":
            opt = torch.optim.Adam(groups, lr=hp.lr)
        else:
            opt = torch.optim.AdamW(groups, lr=hp.lr)
        sched = make_scheduler(opt, hp, self.trainer, resumed=self._resumed)
        return opt if sched is None else {"optimizer": opt, "lr_scheduler": sched}


# ----------------------------------------------------------------- loading
def load_weights(model: nn.Module, path: str | os.PathLike, whole: bool = False) -> nn.Module:
    """Load ``path`` as ``init_weights`` does: :func:`neuroview.zoo.weights.load_weights` of a Lightning checkpoint,
    ``.pt`` or ``.safetensors`` file, into ``model`` or its backbone (a standard network's); ``whole``: ``model`` only."""
    return zoo_weights.load_weights(model, path, what="init_weights", pickles=True, backbone=not whole)


def load_module(ckpt_path: str | os.PathLike, map_location: str = "cpu", what: str = "ckpt_path") -> NeuroViewModule:
    """The :class:`NeuroViewModule` of a Lightning checkpoint (with its ``hparams``), in eval mode.

    ``weights_only=True``: our checkpoints hold tensors and primitive hyper-parameters only, so a file that needs
    arbitrary unpickling is refused rather than allowed to run code; an unreadable file is an error naming ``what``, and
    so is one holding NaN or Inf (a diverged run's last.ckpt), as ``load_weights`` refuses it: its NaN codes were blamed
    on the data, its Inf statistics explained as a network; and so is another LightningModule's (no ``arch``, no ``model.``
    tensors: a user's own holding a NeuroView network), naming where its tensors are and the way in. Lightning's own
    restore (a resume) does not come here."""
    ckpt, where = zoo_weights.read_checkpoint(ckpt_path, what), repr(str(zoo_weights.as_path(ckpt_path, what)))
    if why := foreign_refusal(ckpt, what, where):  # a user's own LightningModule's: torch's unexpected keys, or a size mismatch
        raise ValueError(why)
    check_finite_checkpoint(ckpt, what, where)  # named here as typed (its restore's hook would say "the checkpoint")
    return NeuroViewModule.load_from_checkpoint(ckpt_path, map_location=map_location, weights_only=True).eval()


def load_model(ckpt_path: str | os.PathLike, map_location: str = "cpu", what: str = "ckpt_path") -> nn.Module:
    """The plain ``nn.Module`` of a Lightning checkpoint of :class:`NeuroViewModule`, in eval mode."""
    return load_module(ckpt_path, map_location, what).model.eval()
