"""What a run writes besides its checkpoints: ``predictions.csv`` (:class:`PredictionWriter`, one file a predict
loader) and ``confusion_matrix.csv`` (:func:`write_confusion`), UTF-8 whatever the locale and whole or not at all;
both name the classes by the data module's names (:func:`named_classes`), whose count (and names, where its weights
record theirs) the module checks against its outputs when a stage starts (:func:`check_class_count`,
:class:`ClassCount`: what its weights were trained on).
A second predict (test) of one run keeps the first's file, as ``<stem>-v<N>.csv`` (:func:`newest_at`).
A class name that is not UTF-8 (``caf\\udce9``, a latin-1 folder's) is written as ``export.write_csv`` writes it
(``caf\\xe9``: :func:`~neuroview.core.user_path.printable`).
May import Lightning, torch, ``neuroview._io``, ``neuroview.core.user_path`` and ``neuroview.data.read_as``; nothing
else of neuroview.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import os
import re
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from .._io import atomic_write, keep_aside
from ..core.name_text import name_sequence
from ..core.user_path import printable
from ..data.read_as import check_classes

__all__ = ["ClassCount", "PredictionWriter", "check_class_count", "fresh_name", "give_back", "named_classes",
           "newest_at", "take_name", "this_calls_datamodule", "write_confusion"]


def fresh_name(path: Path, written: set[str] = frozenset()) -> Path:
    """``path``, or where a file this run did not write (not in ``written``, resolved paths) is there already, the
    first free ``<stem>-v<N><suffix>`` beside it: without a logger the run's folder is ``default_root_dir``, the
    folder of the user's recipe and of an earlier run's predictions, and both were written over without a word. The
    name is taken as it is chosen (:func:`take_name`: an empty file, which the caller writes over), as
    :func:`~neuroview._io.keep_aside` takes its ``-vN``: two runs naming their file at once got one name, and the
    second's write replaced the first's file. A remote ``path`` (``s3://...``, a ``Path`` of it ``s3:/...``) is
    returned as it is: no local name to take."""
    path = Path(path)
    if os.path.realpath(path) in written or re.match(r"[A-Za-z][A-Za-z0-9+.-]+:/", str(path)):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)  # the run's folder may not be made yet (its config is written first)
    names = (path.with_name(f"{path.stem}-v{n}{path.suffix}") if n else path for n in itertools.count())
    return next(name for name in names if take_name(name) is not None)


def take_name(path: Path) -> os.stat_result | None:
    """``path`` made, empty, with ``O_EXCL`` (no file, folder or link, a dangling one too, there before): its
    ``lstat``, for :func:`give_back`; None where something was there, however recently."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        return None
    return os.lstat(path)


def give_back(path: Path, made: os.stat_result | None) -> None:
    """The name :func:`take_name` made (``made``) removed, where it is still that empty file: a write onto it
    failed. Whatever was put there since (a write that got through, another's file) is left."""
    with contextlib.suppress(OSError):
        now = os.lstat(path)
        if made is not None and os.path.samestat(made, now) and now.st_size == 0:
            os.unlink(path)


def newest_at(path: Path) -> tuple[Path, str]:
    """``(path, what was kept)``: an earlier file of this run at ``path`` (a second ``trainer.test`` or ``predict``: the
    test split, then a noisy copy of it; the best checkpoint, then the last) moved aside first to the first free
    ``<stem>-v<N><suffix>`` (the earliest is -v1), as a new ``fit`` keeps an earlier ``last.ckpt``: the newest under
    the name the docs give, none written over (a second test replaced the first's confusion matrix without a word)."""
    if not os.path.lexists(path):
        return path, ""
    kept = keep_aside(path)
    return path, f" (the earlier {path.name} of this run kept as {kept.name})"


class PredictionWriter(BasePredictionWriter):
    """Writes ``predictions.csv`` next to the logs: ``split_index`` (the sample's place in the predicted split: the rows
    of a test file in order, or the series a ``test_fraction`` carved, not a row of the training file), ``file_index``
    where the loader predicted is the data module's test split and it names the file's row of each (``test_rows``: a
    carved split, or a file scored whole), target and prediction, and the class probabilities: by the data module's
    class names where it names them (the output numbers beside them, :func:`_header`), else by output number."""

    def __init__(self, output_dir: str | None = None):
        super().__init__(write_interval="epoch")
        self.output_dir = output_dir
        self._written: set[str] = set()  # the files this writer wrote: the only ones it writes over

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        if getattr(trainer, "fast_dev_run", False):  # a smoke test writes nothing (it wrote 1 batch into the cwd)
            rank_zero_info("fast_dev_run: a smoke test writes no predictions.csv")
            return
        if predictions and isinstance(predictions[0], list):  # several loaders: one file each (none was written)
            for i, (p, b) in enumerate(zip(predictions, batch_indices)):
                self._write(trainer, p, [b], f"_dl{i}")
        else:
            self._write(trainer, predictions, batch_indices, "")

    def _write(self, trainer, predictions, batch_indices, loader: str) -> None:
        if not predictions or not isinstance(predictions[0], dict):
            return
        out = Path(self.output_dir or trainer.log_dir or ".")
        out.mkdir(parents=True, exist_ok=True)
        name = f"predictions{loader}.csv" if trainer.world_size == 1 else f"predictions{loader}_rank{trainer.global_rank}.csv"
        preds = torch.cat([p["preds"] for p in predictions]).tolist()
        probs = torch.cat([p["probs"] for p in predictions]).tolist()
        target = torch.cat([p["target"] for p in predictions]).tolist() if "target" in predictions[0] else [""] * len(preds)
        index = [i for b in (batch_indices[0] if batch_indices and batch_indices[0] else []) for i in b] or list(range(len(preds)))
        dm = this_calls_datamodule(trainer)  # not an earlier fit's: a plain loader's columns were named by its classes
        names = _class_names(dm, len(probs[0]), name)
        rows = _file_rows(dm, _predicted(trainer, loader), index)
        f = io.StringIO(newline="")
        w = csv.writer(f)
        w.writerow(_header(names, len(probs[0]), bool(rows)))
        for k, (i, t, p, pr) in enumerate(zip(index, target, preds, probs)):
            w.writerow([i, *([rows[k]] if rows else []), *_classes(names, t, p), *[f"{v:.6g}" for v in pr]])
        path = fresh_name(out / name, self._written)  # an earlier command's file (logger false): kept, by name
        kept = "" if path.name == name else f" ({name} there is not this run's: kept)"
        made = None
        if os.path.realpath(path) in self._written:  # this writer's own, of an earlier predict: kept aside
            path, kept = newest_at(path)
        else:  # the name fresh_name took for this write: given back if the write fails
            with contextlib.suppress(OSError):
                made = os.lstat(path)
        try:
            atomic_write(path, f.getvalue().encode())  # a crash leaves the previous predictions.csv whole
        except BaseException:
            give_back(path, made)
            raise
        self._written.add(os.path.realpath(path))
        if trainer.world_size == 1:
            rank_zero_info(f"predictions written to {path}{kept}")
        else:  # every rank writes its own share; rank 0 speaks for all of them
            rank_zero_info(f"predictions written to {out / f'predictions{loader}_rank*.csv'} (one file a rank, "
                           f"{trainer.world_size} ranks){kept and ' (an earlier file of a rank kept: -v<N> names)'}")


def _header(names: list[str] | None, n: int, rows: bool) -> list[str]:
    """``predictions.csv``'s columns: where the data module names its classes, ``target`` and ``pred`` are those
    names (the labels of the file, as ``explain``'s ``true``/``predicted`` and ``confusion_matrix.csv`` give them),
    ``target_index`` and ``pred_index`` the model's output numbers, and ``prob_<name>`` each class's probability; a
    module that names none gives the output numbers alone (``target``, ``pred``, ``prob_<number>``). A label 2 of
    labels {0, 2, 5} was written ``target 1`` beside ``prob_2``, the probability of label 5.

    >>> _header(["0", "2", "5"], 3, rows=False)
    ['split_index', 'target', 'pred', 'target_index', 'pred_index', 'prob_0', 'prob_2', 'prob_5']
    """
    classes = names if names else [str(c) for c in range(n)]
    return ["split_index", *(["file_index"] if rows else []), "target", "pred",
            *(["target_index", "pred_index"] if names else []), *[f"prob_{c}" for c in classes]]


def _classes(names: list[str] | None, target, pred: int) -> list:
    """A row's ``target``, ``pred`` (and with ``names``, ``target_index``, ``pred_index``) as :func:`_header` names
    them; a target of no class (none given, or -1) is named by none."""
    if not names:
        return [target, pred]
    named = names[target] if isinstance(target, int) and 0 <= target < len(names) else ""
    return [named, names[pred], target, pred]


def _predicted(trainer, loader: str):
    """The dataset of the predict loader ``loader`` (``""``: the only one, ``"_dl<i>"``: the i-th); None if unknown."""
    try:
        loaders = trainer.predict_dataloaders
    except Exception:  # noqa: BLE001 - a courtesy, as the class names: written without file rows
        return None
    if isinstance(loaders, dict):
        loaders = list(loaders.values())
    if isinstance(loaders, (list, tuple)):
        i = int(loader[3:]) if loader.startswith("_dl") else 0
        loaders = loaders[i] if i < len(loaders) and (loader or len(loaders) == 1) else None
    return getattr(loaders, "dataset", None)


def _file_rows(dm, dataset, index: list[int]) -> list[int] | None:
    """The file's row of each predicted series (``dm.rows_of``: a ``test_fraction`` carve of the file, or all of it),
    so that a carved split's ``split_index`` 0, 1, 2 is not read as the file's first rows; None where ``dm`` gives
    none, and where ``dataset`` (the one predicted) is not ``dm``'s test split: a trainer keeps the data module of
    its last ``fit``, and a loader of 6 other series was written with rows 2, 15, 19 of that module's file."""
    try:
        rows = dm.rows_of(dataset) if dataset is not None and hasattr(dm, "rows_of") else None
    except Exception:  # noqa: BLE001 - a courtesy, as the class names: written without it
        return None
    if rows is None or not hasattr(rows, "__len__") or not all(0 <= i < len(rows) for i in index):
        return None
    return [int(rows[i]) for i in index]


def named_classes(dm) -> list[str] | None:
    """``dm``'s ``class_names`` as text; None where it names none (no data module, a data module of the user's with
    no such attribute, None, or one that fails to read). Names the tables' rule refuses (a None, bytes that are not
    UTF-8) are each their ``str``: still the classes, counted and compared (None turned those checks off)."""
    try:
        names = dm.class_names if dm is not None else None
    except Exception:  # noqa: BLE001 - a name is a courtesy: the files are written without one
        return None
    if names is None or isinstance(names, (str, bytes)) or not hasattr(names, "__len__"):
        return None
    try:  # a tensor's elements as their values ('1', not 'tensor(1)'), bytes decoded: the tables' one rule
        return [str(c) for c in name_sequence(names)]
    except (TypeError, ValueError):  # a None among them, bytes not UTF-8: as before 2d9db8d ('None', "b'caf\\xe9'")
        return [str(c) for c in names]


def _listed(names: list[str]) -> str:
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")


def check_class_count(dm, num_classes: int, trained: str | None = None, classes: list[str] | None = None,
                      fitting: bool = False) -> None:
    """A clear error where the data module ``dm`` names another number of classes than the model's ``num_classes``
    outputs (the Python API, where nothing links them): the outputs of classes that never occur trained without a
    word, and the checkpoint, its outputs named by the data's classes, was refused on its own training data. A data
    module that names none (:func:`named_classes`) is not checked: a label past the last class is refused at its batch.

    The advice depends on the weights. ``trained``: where they come from (``"load_from_checkpoint"``...), whose outputs
    are the classes they were trained on (``classes``, where recorded: ``check_classes``'s error), which no num_classes
    changes: the data is at fault. None: a new model, or weights ``setup`` cannot see (a ``ckpt_path`` is restored
    after it, a state dict loaded by hand): the message gives the way of each.

    Recorded ``classes`` are compared by name whatever the counts, as ``ckpt_path=`` and ``init_weights=`` compare
    them: 'b, c, d' for weights of 'a, b, c' were scored and named by position without a word. Not where ``fitting``
    at the same count: a fit trains the outputs as the data's classes (a new run from the weights, as ``init_weights``
    at fit), and records them."""
    names = named_classes(dm)
    if names is None:
        return
    if classes is not None and not (fitting and len(names) == num_classes):
        check_classes(dm, [str(c) for c in classes], "data")  # their names, in order: "pass the data it was trained on"
    if len(names) == num_classes:
        return
    if trained is not None:
        raise ValueError(f"data: the data module's classes are {len(names)} ({_listed(names)}); the model's {num_classes} "
                         f"outputs are the classes its weights ({trained}) were trained on, which num_classes does not "
                         "change. Pass data of the classes the model was trained on (every one of them in its training split)")
    raise ValueError(f"num_classes: the model has {num_classes} outputs (num_classes={num_classes}), the data module's "
                     f"classes are {len(names)} ({_listed(names)}). A new model: pass num_classes={len(names)} (the "
                     "command line links it from the data module: NeuroViewModule(num_classes=dm.num_classes)); weights "
                     f"trained on {num_classes} classes (ckpt_path=, a state dict): pass data of those classes (every one "
                     "of them in its training split)")


class ClassCount:
    """Hooks of :class:`~neuroview.training.module.NeuroViewModule` (a mixin before ``pl.LightningModule``) that record
    where its weights come from and the classes they were trained on, for :meth:`check_class_count` at ``setup``: a
    ``load_from_checkpoint`` (the checkpoint's ``neuroview_classes``), a restore, a fit of this module (its data
    module's classes). Trained weights were told "pass num_classes=3", which their 5 outputs cannot follow.

    At as many classes, the names are compared when test, validate or predict starts (:meth:`_check_names`), not at
    ``setup``: Lightning restores a ``ckpt_path`` after ``setup``, and the module's earlier classes refused the data of
    the checkpoint about to be scored. Those hooks still come before the first batch."""

    _weights_from: str | None = None  # None: a new model, or weights setup cannot see
    _trained_classes: list[str] | None = None

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self._weights_from = "load_from_checkpoint" if self._trainer is None else "ckpt_path"
        self._trained_classes = checkpoint.get("neuroview_classes")

    def on_train_start(self) -> None:
        super().on_train_start()
        self._weights_from = "an earlier fit"  # a later stage of this module on other data
        # a fit trains the outputs as this fit's classes: on loaders, whose names are unknown, none (checked by count)
        self._trained_classes = named_classes(this_calls_datamodule(self.trainer))

    def check_class_count(self, trained: str | None = None) -> None:
        """:func:`check_class_count` of the data module of the trainer's call against this module's outputs;
        ``trained``: where its weights come from, if ``setup`` loaded them (``init_weights``). The recorded names only
        where the counts differ (a refusal before the head is built); at as many, :meth:`_check_names` compares them."""
        self._weights_from = trained or self._weights_from
        fitting = getattr(getattr(self._trainer, "state", None), "fn", None) == TrainerFn.FITTING  # fine-tuning
        dm = this_calls_datamodule(self._trainer)
        names = named_classes(dm)
        differ = names is not None and len(names) != self.hparams.num_classes
        check_class_count(dm, self.hparams.num_classes, self._weights_from, self._trained_classes if differ else None,
                          fitting)

    def _check_names(self) -> None:
        """The recorded classes (a ``ckpt_path``'s, restored by now) against the names of this call's data module."""
        dm = this_calls_datamodule(self._trainer)
        if self._trained_classes is not None and named_classes(dm) is not None:
            check_classes(dm, [str(c) for c in self._trained_classes], "data")  # "pass the data it was trained on"

    def on_test_start(self) -> None:
        super().on_test_start()
        self._check_names()

    def on_predict_start(self) -> None:
        super().on_predict_start()
        self._check_names()

    def on_validation_start(self) -> None:
        super().on_validation_start()
        if self.trainer.state.fn != TrainerFn.FITTING:  # a fit trains the outputs as its data's classes
            self._check_names()


def this_calls_datamodule(trainer):
    """The data module passed to ``trainer``'s current call (fit, test, ...); None where it was given loaders: Lightning
    then leaves ``trainer.datamodule`` as an earlier call's, and a test on a plain loader after a fit on 'a, b, c' was
    refused by those names. Read from Lightning's private hook selector, which each call sets; a trainer without one
    (a stand-in) gives its ``datamodule``."""
    if trainer is None:
        return None
    selector = getattr(getattr(trainer, "_data_connector", None), "_datahook_selector", None)
    return selector.datamodule if selector is not None else getattr(trainer, "datamodule", None)


def _class_names(dm, n: int, what: str) -> list[str] | None:
    """:func:`named_classes` of ``dm`` where it names ``n`` classes, as a file shows them (:func:`printable`: a name
    that is not UTF-8 failed the write, after the work); None where it names none, and where it names another number
    (said with a warning: ``what``, the file, then numbers its classes without a name)."""
    names = named_classes(dm)
    if names is not None and len(names) != n:
        rank_zero_warn(f"{what}: the data module names {len(names)} classes ({_listed(names)}), the model has {n} outputs: "
                       + ("its columns are written as class numbers" if what.startswith("confusion") else
                          "target, pred and prob_<k> are written as the model's output numbers, not names"),
                       category=UserWarning)
        return None
    return None if names is None else [printable(n) for n in names]


def write_confusion(trainer: pl.Trainer, confusion: torch.Tensor, num_classes: int) -> None:
    """``confusion_matrix.csv`` in the run's log folder (rows: true class, columns: predicted), named by the
    data module's ``class_names`` where it has as many; every rank must call it (``log_dir`` is a broadcast)."""
    log_dir = trainer.log_dir  # a broadcast under DDP: every rank must ask, not only rank 0
    if not (trainer.is_global_zero and log_dir) or getattr(trainer, "loggers", None) == []:
        return  # no logger (logger=False): log_dir is the working folder, whose confusion_matrix.csv was replaced
    path = Path(log_dir) / "confusion_matrix.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    names = _class_names(this_calls_datamodule(trainer), num_classes, "confusion_matrix.csv")  # not an earlier fit's
    names = names or [str(i) for i in range(num_classes)]
    f = io.StringIO(newline="")
    w = csv.writer(f)
    w.writerow(["true\\predicted", *names])
    for name, row in zip(names, confusion.tolist()):
        w.writerow([name, *row])
    # UTF-8 whatever the locale (a class name outside it failed), and whole or not at all, as predictions.csv
    path, kept = newest_at(path)  # the log folder is the run's: a file there is an earlier test's
    atomic_write(path, f.getvalue().encode("utf-8"))
    rank_zero_info(f"confusion matrix (rows: true class) written to {path}{kept}")
