"""The checks of ``neuroview fit --ckpt_path``, made where a resume by the Python API (``Trainer.fit(module, dm,
ckpt_path=...)``) restores its checkpoint: the module's options and the data module's are the run's, the run is not
one its ``EarlyStopping`` ended, its stop rule and its budget are the checkpoint's (:mod:`.resume_checks`). Without
them another ``lr`` was dropped without a word while the resumed checkpoints recorded it, another split ``seed`` read a
validation split of samples already trained on, and a finished run trained another epoch over its ``last.ckpt``.

May import Lightning, ``.resume_checks``, ``.ckpt_data``, ``.outputs`` (the data module of the current call) and
``neuroview.zoo.pretrained`` (how a manifest compares arguments); nothing else of neuroview.
"""

from __future__ import annotations

from .ckpt_data import _DATA_HARMLESS, _DATA_NAMES, _same_name
from .outputs import this_calls_datamodule
from .resume_checks import check_resume, resume_state
from ..zoo.pretrained import _plain  # arguments compared as a manifest stores them

__all__ = ["check_api_data", "check_api_resume"]


def _differences(given: dict, saved: dict, skip=()) -> dict:
    """``{name: (given, saved)}`` of the options both record (not LightningCLI's own ``_class_path``...) that differ."""
    return {k: (given[k], v) for k, v in saved.items() if k in given and not str(k).startswith("_") and k not in skip
            and _plain(given[k]) != _plain(v) and not (k in _DATA_NAMES and v is not None and _same_name(given[k], v))}


def _detail(diff: dict) -> str:
    return "; ".join(f"{k}={a!r} given, {v!r} in the checkpoint" for k, (a, v) in sorted(diff.items()))


def check_api_resume(module, checkpoint: dict) -> None:
    """Refuse resuming ``checkpoint`` (``module.trainer.ckpt_path``) into a module built with other options than its
    ``hyper_parameters``, as ``neuroview fit --ckpt_path`` refuses them; then the finished run, the stop rule and the
    budget (:func:`~neuroview.training.resume_checks.check_resume`, its advice in Python's words). Called from the
    module's ``on_load_checkpoint`` while fitting: Lightning restores the weights, the optimizer and the loops after it.
    ``init_weights`` is not compared: the checkpoint's weights go over the network's, so the file a run started from
    has no effect on its resume (it need not be named, nor be there any more: the module does not read it)."""
    trainer = module.trainer
    ckpt = str(trainer.ckpt_path)
    hp = checkpoint.get("hyper_parameters")
    diff = _differences(dict(module.hparams), hp, skip=("init_weights",)) if isinstance(hp, dict) else {}
    if diff:
        raise ValueError(f"ckpt_path: {ckpt} resumes a run trained with other model options ({_detail(diff)}); a resume "
                         f"continues that run as it was (its optimizer restored over the new options, and its "
                         f"checkpoints recording them): build the module with the checkpoint's options "
                         f"({type(module).__name__}.load_from_checkpoint({ckpt!r}) has them), or start a new run from its "
                         f"weights with init_weights={ckpt!r}")
    check_resume(ckpt, resume_state(checkpoint), trainer, cli=False)


def check_api_data(module, saved: dict | None) -> None:
    """Refuse resuming with a data module of other options than the checkpoint's ``datamodule_hyper_parameters``
    (``saved``; those that change neither the splits nor the batches may differ), as ``neuroview fit --ckpt_path``
    refuses them. Called at the module's ``on_train_start``, before the first step: a change the checkpoint's schedule
    cannot take (its batch size, its training split) was refused by name when the optimizer was built."""
    trainer = module.trainer
    dm = this_calls_datamodule(trainer)  # not one an earlier fit left on the trainer: loaders have no options
    given = getattr(dm, "hparams", None) if dm is not None else None
    if not isinstance(saved, dict) or given is None:
        return
    diff = _differences(dict(given), saved, skip=_DATA_HARMLESS)
    cls = str(saved.get("_class_path") or "").rsplit(".", 1)[-1]
    if cls and cls != type(dm).__name__:
        diff["data module"] = (type(dm).__name__, cls)
    if diff:
        ckpt = str(trainer.ckpt_path)
        raise ValueError(f"ckpt_path: {ckpt} resumes a run trained on other data options ({_detail(diff)}); its splits "
                         f"and batches would change mid-run (a new validation split overlapping the samples trained "
                         f"on): build the data module with the checkpoint's options, or start a new run from its "
                         f"weights with init_weights={ckpt!r}")
