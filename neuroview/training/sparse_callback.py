"""``Sparsify``: the recipe option that ends a NeuroView run with a sparse global classifier.

Added to a run with ``neuroview fit --config <recipe> --trainer.callbacks+=neuroview.training.sparse_callback.Sparsify``
(``--trainer.callbacks.init_args.tolerance 0.5`` to change its tolerance). When the test split is
about to be evaluated (after fitting, on the checkpoint the run tests: ``--test_ckpt best`` or
``last``; or in ``neuroview test --ckpt_path ...``), the network's head is refitted by
:func:`neuroview.sparsify` on the data module's training split (validation from that split, as
``sparsify`` does; the test split is not read to choose), the module's network is replaced by the
sparse one, which is what the test then scores, and the run's folder gets ``sparse.safetensors``
(its weights) and ``sparse_path.json`` (the regularization path); where another run's files are there already (runs
without a logger share ``default_root_dir``), the next free names, ``sparse-v1.safetensors`` and ``sparse_path-v1.json``,
as Lightning's ``ModelCheckpoint`` does, and says so. ``neuroview predict`` (the test
split, too) writes the sparse network's predictions the same way: refitted when prediction starts,
unless the network is sparse already (a test ran before, in the same run, and its head is still the one fitted: a
checkpoint a later ``test(ckpt_path=...)`` loaded brings back a dense head, which is refitted). ``neuroview validate``
scores the dense network, and says so: the refit is no part of training.

Under ``--trainer.precision bf16-true`` (``16-true``, ``64-true``), where Lightning casts the network and each step's batch,
the refit reads the data module's batches cast the same way, so the head is chosen on the codes the test scores
(``finetune`` trains a float32 copy, cast back). ``--trainer.fast_dev_run`` refits and tests, and writes no file (a smoke
test saves nothing), saying so in one line.

The module's network is read at ``pl_module.model``, where :class:`~neuroview.training.module.NeuroViewModule` keeps it;
a user's own LightningModule is refused by name (before the fit) where it keeps none there, and (on the first test or
predict batch after the refit, as its step calls the network, before anything is logged, returned or written) where its
steps do not feed that network the batch as the refit reads it (an input stem: a head fitted on inputs the module never
feeds its network): the dense network is put back. :mod:`.sparse_module_check`, whose words say how to call
``nv.sparsify`` instead. The sparse files of such a module are written once its first batch passed.

May import Lightning, torch, ``neuroview._io``, :mod:`.first_batch`, :mod:`.outputs`, :mod:`.sparsify`,
:mod:`.sparse_module_check`, ``neuroview.zoo.build`` and (inside the functions) ``neuroview.data.file_record``.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import uuid
from contextlib import nullcontext
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from .._io import atomic_write
from .._io import safetensors_bytes as save_bytes
from .classes_checked import classes_checked, fitted_on
from .first_batch import given_loaders
from .outputs import give_back, take_name, this_calls_datamodule
from .sparse_checks import check_for_net, check_options, check_seed, read_as
from .sparse_finetune import finetune_sparse
from .sparse_module_check import module_net, watch_steps
from .sparsify import DEVIANCE, sparsify

__all__ = ["Sparsify", "sparse_arch_kwargs"]


class Sparsify(pl.Callback):
    """Refit the global classifier sparse before the test split is scored (see the module docstring).

    Args:
        tolerance, groups, seed, deviance, max_k90, max_k90_steps, k90_quantile, max_units_per_class,
            max_steps_per_class, distill: as in :func:`neuroview.sparsify`.
        finetune: epochs of :func:`neuroview.finetune_sparse` after the refit (0, the default: none;
            the zoo's sparse entries use 5), within the same budget; the test then scores the
            fine-tuned network.

    Options are checked when it is made, those only an RNN takes when the fit starts, in sparsify's words.
    """

    def __init__(self, tolerance: float = 1.0, groups: str | None = None, seed: int = 0, deviance: float = DEVIANCE,
                 max_k90: float | None = None, max_k90_steps: float | None = None, k90_quantile: float = 0.5,
                 finetune: int = 0, max_units_per_class: int | None = None, max_steps_per_class: int | None = None,
                 distill: float | None = None):
        if isinstance(finetune, bool) or not isinstance(finetune, int) or finetune < 0:
            raise ValueError(f"finetune: expected an int >= 0 (epochs), got {finetune!r}")
        # refused when it is made, in sparsify's words, not at the test after the whole fit
        check_options(tolerance, groups, deviance, max_k90, max_k90_steps, k90_quantile, max_units_per_class,
                      max_steps_per_class, distill)
        check_seed(seed)
        self.finetune = finetune
        self.tolerance, self.groups, self.seed, self.deviance = tolerance, groups, seed, deviance
        self.max_k90, self.max_k90_steps, self.k90_quantile = max_k90, max_k90_steps, k90_quantile
        self.options = {"max_units_per_class": max_units_per_class, "max_steps_per_class": max_steps_per_class, "distill": distill}
        self._fitted = None  # (network, its head's weight) as this callback fitted them
        self._dense = None  # (the dense network it was fitted from, that network's state then)
        self._files: dict[Path, tuple[Path, Path]] = {}  # the files this run wrote, per folder: its own to replace
        self._token, self._trainer_id = uuid.uuid4().hex, None  # this run's mark in its sparse_path.json (a spawn's too)
        self._taken: dict[Path, os.stat_result] = {}  # the names _names made (empty), until written over
        self._check, self._write_later = None, None  # a user's module's steps watched on the first batch; its files then
        self._trained = None  # (the network a fit of this callback's trained, the classes its data module named)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # a test or predict may load a checkpoint (a dense head, shaped as the network before sparsify: an Ensemble's
        # or a shared-steps RNN's keys differ from the sparse copy's): the dense network goes back before it loads
        if stage in ("test", "predict") and self._fitted is not None and getattr(pl_module, "model", None) is self._fitted[0]:
            pl_module.model = self._dense[0]

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # a network sparsify refuses, the options of an RNN only on a CNN: refused before the fit, not after it
        net = module_net(pl_module)  # at `model`, as NeuroViewModule keeps it: another module's refused naming where it is
        try:
            check_for_net(net, self.groups, self.max_k90_steps, self.options["max_steps_per_class"])
        except (TypeError, ValueError) as e:  # named as the callback's: the fit never ran sparsify itself
            raise type(e)(f"Sparsify: {e}") from None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # the network is trained on this data module's classes from here: its record's (a zoo entry's) no longer name
        # its outputs, and the refit's check takes these (a fit on other classes is a new run, never refused)
        from ..data.read_as import names_classes  # noqa: PLC0415

        dm = this_calls_datamodule(trainer)
        self._trained = (getattr(pl_module, "model", None),
                         [str(c) for c in dm.class_names] if dm is not None and names_classes(dm) else None)

    def _classes(self, pl_module: pl.LightningModule, dm):
        """The block the refit runs in, once ``dm``'s classes are checked against the network's (named as the
        callback's, at the data module): for a network this callback's fit trained, the classes it was fitted on."""
        net = pl_module.model
        fitted = self._trained is not None and self._trained[0] is net
        with fitted_on(self._trained[1]) if fitted else nullcontext():
            try:
                classes_checked(net, dm, "datamodule")
            except ValueError as e:
                raise ValueError(f"Sparsify: {e}") from None
        return fitted_on(self._trained[1]) if fitted else nullcontext()

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._refit(trainer, pl_module)
        self._watch(pl_module, "test_step")

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._refit(trainer, pl_module)  # predict wrote the dense network's predictions, without a word
        self._watch(pl_module, "predict_step")

    # a user's module's step may feed its network through a stem (its forward too, or none at all): watched on the first
    # batch, as the step calls the network (before it logs, returns or writes anything); Lightning calls these callback
    # hooks before the module's and before the step's metrics reach a logger
    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._check is not None and self._check.calls == 0:
            self._check.start(batch)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.on_test_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        check, self._check = self._check, None
        if check is not None:
            check.end()  # never called on the batch: refused
        if self._write_later is not None:
            write, self._write_later = self._write_later, None
            write()

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._write_later is not None:  # no batch was seen: what the steps feed the network is not known
            rank_zero_warn(f"Sparsify: no test or predict batch ran, so what {type(pl_module).__name__}'s steps feed its "
                           "network is not known: no sparse.safetensors / sparse_path.json written")
        self._unwatch()

    on_predict_end = on_test_end

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._unwatch()

    def _unwatch(self, files: bool = True) -> None:
        """The hook on the network removed (``files``: the files waiting for the first batch dropped too)."""
        if self._check is not None:
            self._check.close()
        self._check = None
        if files:
            self._write_later = None

    def _watch(self, pl_module: pl.LightningModule, step: str) -> None:
        """Watch ``step`` feed the network this callback fitted (a plain NeuroViewModule's: not watched)."""
        self._unwatch(files=False)
        if self._fitted is not None and pl_module.model is self._fitted[0]:
            self._check = watch_steps(pl_module, step, lambda message: self._refuse(pl_module, message))
        if self._check is None and self._write_later is not None:
            write, self._write_later = self._write_later, None
            write()

    def _refuse(self, pl_module: pl.LightningModule, message: str) -> None:
        """The dense network put back, nothing written, ``message`` raised (the module's steps feed the network else)."""
        self._unwatch()
        if self._dense is not None:
            pl_module.model = self._dense[0]
        self._fitted = self._dense = None
        raise ValueError(message)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING and not self._sparse(pl_module):
            rank_zero_warn("Sparsify: applies to test and predict, not validate: `validate` scores the dense network "
                           "(the sparse head is fitted with validation from the training split)")

    def _sparse(self, pl_module: pl.LightningModule) -> bool:
        """Whether the module's network is sparse now: the one this callback fitted, its head unchanged (a
        ``test(ckpt_path=...)`` loads a dense checkpoint into it, under its stale ``sparsity_path``), else
        one :func:`_is_sparse` judges so."""
        net = getattr(pl_module, "model", None)
        if self._dense is not None and net is self._dense[0] and _same_state(net, self._dense[1]):
            pl_module.model = net = self._fitted[0]  # put back at setup, and no checkpoint loaded since: the same fit
        if self._fitted is not None and self._fitted[0] is net:
            return torch.equal(net.classifier.weight.detach().cpu(), self._fitted[1])
        return _is_sparse(pl_module)

    def _refit(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._sparse(pl_module):
            return  # refitted already (a test before a predict in one run): the same network again
        dm = this_calls_datamodule(trainer)  # not one an earlier fit left on the trainer: a fresh trainer refuses too
        if dm is None:
            kept = "; the data module an earlier fit left on the trainer is not read" if trainer.datamodule else ""
            fn = getattr(getattr(getattr(trainer, "state", None), "fn", None), "value", "test")
            got = "loaders" if given_loaders(trainer, fn) is not None else (
                "neither a data module nor loaders (the module's own "
                f"{'val' if fn == 'validate' else fn}_dataloader has no training split)")
            raise ValueError(f"Sparsify: needs a data module passed to this trainer.{fn}(...) (the training split to "
                             f"refit on), got {got}{kept}")
        # every rank refits the same deterministic path, so all keep the same network; in the dtype a -true precision
        # casts the steps' batches to (the data module gives float32, which a bfloat16 network refused, naming `x`)
        dtype = _input_dtype(trainer)
        module_net(pl_module)  # a test alone (no fit) of a module without one read `model` in a bare AttributeError
        classes = self._classes(pl_module, dm)  # a network of other classes than dm's refused before any work
        with read_as(dtype), classes:
            sparse = sparsify(pl_module.model, dm, tolerance=self.tolerance, groups=self.groups,
                              seed=self.seed, deviance=self.deviance, max_k90=self.max_k90,
                              max_k90_steps=self.max_k90_steps, k90_quantile=self.k90_quantile, **self.options)
        if self.finetune:
            # the test loop runs under inference mode; every rank trains the same seeded copy (a float32 one where the
            # network is not: the fine-tuning reads the data module's float32 batches, and AdamW cannot train float16)
            with torch.inference_mode(False), torch.enable_grad(), self._classes(pl_module, dm):
                tuned = finetune_sparse(copy.deepcopy(sparse).float() if dtype else sparse, dm,
                                        epochs=self.finetune, seed=self.seed, max_k90=self.max_k90,
                                        max_k90_steps=self.max_k90_steps, k90_quantile=self.k90_quantile)
            sparse = tuned.to(dtype) if dtype else tuned
            rank_zero_info(f"Sparsify: fine-tuned {sparse.finetuned['epochs_kept']} of {self.finetune} epochs")
        dense, pl_module.model = pl_module.model, sparse
        self._dense = (dense, {k: v.detach().cpu().clone() for k, v in dense.state_dict().items()})
        self._fitted = (sparse, sparse.classifier.weight.detach().cpu().clone())
        rank_zero_info(f"Sparsify: {sparse.sparsity_path}")
        log_dir = trainer.log_dir  # a broadcast under DDP: every rank must ask (rank 0 alone waited there for ever)
        # written by _watch, or (a user's module) once its first batch fed the network the batch
        self._write_later = lambda: self._write(trainer, pl_module, dm, sparse, log_dir)

    def _write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, dm, sparse: nn.Module, log_dir) -> None:
        """``sparse``'s weights and path into the run's folder (none under fast_dev_run)."""
        path = sparse.sparsity_path
        if getattr(trainer, "fast_dev_run", False):  # no logger: the files went into default_root_dir, where a real run's would go
            rank_zero_info("Sparsify: fast_dev_run: a smoke test writes no sparse.safetensors / sparse_path.json")
            return
        if trainer.is_global_zero:
            out = Path(log_dir or trainer.default_root_dir)
            out.mkdir(parents=True, exist_ok=True)
            weights, record_file = self._names(out, trainer)
            state = {k: v.detach().cpu().contiguous() for k, v in sparse.state_dict().items()}
            record = {"summary": str(path), "points": path.to_records(), "finetuned": getattr(sparse, "finetuned", None),
                      "run": self._token}
            try:  # onto the names _names took (empty files): replaced
                atomic_write(weights, save_bytes(state, metadata=_built(pl_module, dm)))
                atomic_write(record_file, (json.dumps(record, indent=1) + "\n").encode())
            except BaseException:  # the names taken for this write given back, where still empty
                for name in (weights, record_file):
                    give_back(name, self._taken.get(name))
                raise

    def _names(self, out: Path, trainer: pl.Trainer) -> tuple[Path, Path]:
        """Where this run writes in ``out``: its own files again (its mark in the record: a spawned test's, then
        predict's), else ``sparse.safetensors`` / ``sparse_path.json``, or, where another run's are there, the next free
        ``-vN`` names (as ``ModelCheckpoint``), said in a log line. Another trainer given this callback is another run."""
        if self._trainer_id not in (None, id(trainer)):
            self._token, self._files = uuid.uuid4().hex, {}
        self._trainer_id = id(trainer)
        key = out.resolve()
        if key not in self._files:
            for v in itertools.count():  # each pair taken with O_EXCL as it is chosen: two runs at once never share one
                tag = f"-v{v}" if v else ""
                names = (out / f"sparse{tag}.safetensors", out / f"sparse_path{tag}.json")
                if _run_of(names[1]) == self._token or self._take(names):
                    break
            if v:
                rank_zero_info(f"Sparsify: {out} holds another run's sparse.safetensors / sparse_path.json (kept): "
                               f"writing {names[0].name} and {names[1].name}")
            self._files[key] = names
        return self._files[key]

    def _take(self, names: tuple[Path, Path]) -> bool:
        """Both ``names`` made, empty, with ``O_EXCL`` (:func:`.outputs.take_name`), remembered for a failed write to
        give back: True; False (none kept) where either was there, however recently."""
        made = take_name(names[0])
        if made is None:
            return False
        second = take_name(names[1])
        if second is None:  # another's record alone there: this N is not free
            give_back(names[0], made)
            return False
        self._taken.update({names[0]: made, names[1]: second})
        return True


def _run_of(record: Path) -> str | None:
    """The run mark of a ``sparse_path.json`` (None: none, or no such file)."""
    try:
        return json.loads(record.read_text(encoding="utf-8")).get("run")
    except (OSError, ValueError, AttributeError):
        return None


def _same_state(net: nn.Module, state: dict) -> bool:
    """Whether ``net``'s tensors are ``state``'s (no checkpoint loaded into it since)."""
    now = net.state_dict()
    return now.keys() == state.keys() and all(torch.equal(now[k].detach().cpu(), v) for k, v in state.items())


def _built(pl_module: pl.LightningModule, dm) -> dict[str, str]:
    """How ``sparse.safetensors`` is rebuilt and what data it read, as ``neuroview retrofit --out`` records them:
    ``neuroview explain --model ARCH --weights sparse.safetensors`` then needs no ``--model-args`` and reads the
    data as the run did (a file that recorded nothing was read by the data module's defaults), a file of the user's held
    to the fingerprint of the training split the head was refitted on (changed since, carved otherwise: refused)."""
    from ..zoo.build import arch_kwargs  # noqa: PLC0415

    hp, meta = pl_module.hparams, {}
    if all(k in hp for k in ("arch", "num_classes", "in_channels")):  # a NeuroViewModule's (another module: no record)
        kw = arch_kwargs(hp["arch"], num_classes=hp["num_classes"], in_channels=hp["in_channels"],
                         max_len=hp.get("max_len"), model_kwargs=hp.get("model_kwargs"))
        kw = sparse_arch_kwargs(kw)  # the sparse network's own (shared_steps merged, a CodeNorm added)
        meta = {"neuroview.architecture": hp["arch"], "neuroview.arch_kwargs": json.dumps(kw, sort_keys=True, default=str)}
    if type(dm).__module__.startswith("neuroview.data") and getattr(dm, "hparams", None) is not None:
        from ..data.file_record import RECORD, read_record  # noqa: PLC0415

        args = {k: v for k, v in dict(dm.hparams).items() if not k.startswith("_")}
        # the training split the head was refitted on, as read: the file changed since (re-carved) is refused by explain
        record = read_record(dm)
        meta["neuroview.data"] = json.dumps({"class_path": f"neuroview.data.{type(dm).__name__}", "init_args": args}
                                            | ({RECORD: record} if record else {}), sort_keys=True, default=str)
    if getattr(dm, "class_names", None) is not None:  # what its outputs index: explain --weights checks other data's
        meta["neuroview.classes"] = json.dumps([str(c) for c in dm.class_names])
    return meta


def _input_dtype(trainer: pl.Trainer) -> torch.dtype | None:
    """The dtype the trainer's precision casts each step's float32 batch to (``bf16-true``: bfloat16, ``64-true``:
    float64), or None where it casts none (``32-true``, the ``-mixed`` precisions: autocast casts inside the ops)."""
    plugin = getattr(trainer, "precision_plugin", None)
    if plugin is None:
        return None
    dtype = plugin.convert_input(torch.zeros(1)).dtype
    return None if dtype == torch.float32 else dtype


def sparse_arch_kwargs(kwargs: dict) -> dict:
    """The builder arguments of a network :func:`.sparsify.sparsify` returned, from those its dense source was built
    with: ``normalize=True`` (the sparse head standardizes the features its path was fitted on, a ``CodeNorm`` added
    where there was none) and ``shared_steps=False`` (``merge_shared`` folded an RNN's shared part into its classifier),
    as ``neuroview sparsify`` records them. Built with the source's, the file was refused by ``explain --weights``.

    >>> sparse_arch_kwargs({"hidden_size": 16, "normalize": False, "shared_steps": True})
    {'hidden_size': 16, 'normalize': True, 'shared_steps': False}
    """
    kw = dict(kwargs)
    if kw.get("normalize") is False:
        kw["normalize"] = True
    if kw.get("shared_steps"):
        kw["shared_steps"] = False
    return kw


def _is_sparse(pl_module: pl.LightningModule) -> bool:
    """Whether the module's network is one :func:`.sparsify` returned (it keeps its ``sparsity_path``) and its head
    still reads what that path's point reads (a dense checkpoint loaded into it since reads every unit)."""
    net = getattr(pl_module, "model", None)
    path = getattr(net, "sparsity_path", None)
    head = getattr(net, "classifier", None)
    if path is None or head is None:
        return path is not None
    reads = float((head.weight.detach() != 0).sum(1).double().mean())
    return abs(reads - float(path.units_per_class[path.chosen])) < 1e-3
