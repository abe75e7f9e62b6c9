"""The ``neuroview fit|validate|test|predict`` command: LightningCLI over :class:`NeuroViewModule`.

``NeuroViewCLI`` links the data's shape into the model, configures the checkpoints, loggers and
per-run folders; :func:`cli_main` is the entry point (``neuroview.cli`` dispatches to it). May
import Lightning, jsonargparse, ``neuroview.data`` and the rest of ``neuroview.training``.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from typing import Literal

import pytorch_lightning as pl
import torch
from jsonargparse import ArgumentError, Namespace, get_loader
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.utilities import rank_zero_warn

from ..data import ArrayDataModule
from ..data.labels import model_classes
from ..data.read_as import checkpoint_classes, note_trained_on
from ..data.splits import whole_files
from ..zoo.files import find_recipe
from ..zoo.pretrained import _plain  # arguments compared as a manifest stores them
from .._batch import takes_lengths
from ..zoo._foreign_ckpt import foreign_refusal
from ..zoo._weights_checks import check_finite_checkpoint
from ..zoo.weights import read_checkpoint
from .callbacks import Checkpoint, PredictionWriter
from .ckpt_data import check_evaluated_data as _check_evaluated_data, check_resumed_data as _check_resumed_data
from .cli_order import merged_model_kwargs, reset_note, run_name, scheduler_named, warn_reset
from .cli_parse import parse_refusal
from .cli_print import parse_then_print
from .ckpt_file import checkpoint_file as _checkpoint_file
from .cli_runs import (data_named, default_loggers, expand_run_paths, fit_best, made_checkpoint, no_best_reason,
                       resume_advice, run_checkpoint)
from .data_arg import absolute_paths, read_evaluated_like
from .earlier_runs import DropRefusedRun, KeepEarlierRuns, check_init_weights
from .evaluated_data import evaluated_data, format_hint
from .loop_guards import EMPTY_VAL_WARNING, by_neuroview, monitor_mode, quiet
from .module import NeuroViewModule
from .resume_checks import check_resume, resume_state
from .run_config import SaveRunConfig
from .schedules import SCHEDULE_ONLY, drop_unused_options
from .spawned import fit_steps
from .tested_ckpt import TestedCheckpoint, mark_fit_weights

__all__ = ["NeuroViewCLI", "cli_main"]


DEFAULT_NAME = "best-epoch{epoch:03d}-step{step:06d}-val_acc{val_acc:.4f}"


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
            "checkpoint.monitor": "val_acc", "checkpoint.mode": "max", "checkpoint.save_last": True,
            # the step too: several saves of one epoch (val_check_interval, save_top_k -1) overwrote each other
            "checkpoint.filename": DEFAULT_NAME,
            "checkpoint.auto_insert_metric_name": False,
            # a run writes last.ckpt, never last-v1.ckpt beside an earlier run's: before_fit keeps that one aside
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

    def parse_arguments(self, parser, args) -> None:
        # the command line as given: which model options the user named (_check_resume, for test/validate/predict)
        self._argv = [str(a) for a in (sys.argv[1:] if args is None else args)] if not isinstance(args, (dict, Namespace)) else None
        warn_reset(self._argv)  # --data.init_args.path X --config RUN/config.yaml: X replaced by the run's file
        # --print_config prints the config as edited here (fit: the one the run uses; with --ckpt_path, its model is
        # then rebuilt from the checkpoint)
        parse_then_print(parser, lambda: super(NeuroViewCLI, self).parse_arguments(parser, args), self._edit_parsed)

    def _edit_parsed(self):
        """neuroview's edits of the parsed config, before it is printed (``--print_config``) or anything read or built."""
        sub = self.config.get("subcommand")
        cfg = self.config[sub] if sub in ("fit", "validate", "test", "predict") else self.config
        _check_seed(cfg.get("seed_everything"))  # before a checkpoint is read or anything built
        expand_run_paths(cfg)  # before --ckpt_path last/best and the loggers read the run folder
        if cfg.get("model") is not None and self._argv is not None:  # a later --config's keys into the earlier ones'
            cfg.model.model_kwargs = merged_model_kwargs(self._argv, cfg.model.get("model_kwargs"), get_loader("yaml"))
        named, by = scheduler_named(self._argv, _named_model_options(self._argv), SCHEDULE_ONLY)
        drop_unused_options(cfg.get("model"), named, by)
        _check_checkpoint(cfg.get("checkpoint"))  # its file name after its monitor, printed as the run uses it
        return self.config

    def _parse_ckpt_path(self) -> None:
        self._check_resume()
        super()._parse_ckpt_path()
        sub = self.config.get("subcommand")
        cfg = self.config[sub] if sub in ("fit", "validate", "test", "predict") else None
        if cfg is not None and cfg.get("ckpt_path") == "last":  # fit: the file checked, not Lightning's newest last*.ckpt
            cfg.ckpt_path = _checkpoint_file(cfg, sub)

    def _check_resume(self) -> None:
        """``--ckpt_path`` names a file that is there (``last``: the runs' ``last.ckpt``), and the options the command
        gives match the checkpoint's. ``fit`` resumes the run it names as that run was: Lightning rebuilds the model
        from the checkpoint's hyper-parameters (a path) or restores its optimizer into the model the command line
        builds (``last``), so a model option that differs was dropped or loaded weights into another network, and a
        data option that differs (``datamodule_hyper_parameters``, where the checkpoint keeps them) changed the
        splits and batches mid-run, without a word. ``test``/``validate``/``predict`` rebuild the checkpoint's model:
        a model option named on the command line that differs would be dropped, and a data option that cuts or reads
        the splits other than the checkpoint's, on the data it was trained on, would score a split that may hold
        training series (:func:`_check_evaluated_data`). A difference is an error naming both values."""
        sub = self.config.get("subcommand")
        cfg = self.config[sub] if sub in ("fit", "validate", "test", "predict") else None
        if sub != "fit" and cfg is not None and not cfg.get("ckpt_path") and not cfg.model.get("init_weights"):
            order = reset_note(getattr(self, "_argv", None), ("ckpt_path", "model.init_weights"))  # given, then reset
            raise ValueError(f"ckpt_path: `neuroview {sub}` scores a trained model: pass --ckpt_path FILE (last: the run's "
                             "last.ckpt, best: its best-*.ckpt) or --model.init_weights FILE; without either it would "
                             "score the untrained network" + order)
        ckpt = _checkpoint_file(cfg, sub) if cfg is not None else None
        if ckpt is None:
            return
        saved = read_checkpoint(ckpt, "ckpt_path")  # an unreadable file named, too
        check_finite_checkpoint(saved, "ckpt_path", repr(str(ckpt)))  # a diverged run's: scored as NaN, or resumed in NaN
        if why := foreign_refusal(saved, "ckpt_path", repr(str(ckpt))):  # a user's own module's: torch's unexpected keys
            raise ValueError(why)
        if sub == "fit":  # a finished run and its stop rule once the trainer (callbacks, min_epochs) is built
            self._resumed_stops = (ckpt, resume_state(saved))
        hp = saved.get("hyper_parameters") or {}
        asked = cfg.model.as_dict() if hasattr(cfg.model, "as_dict") else dict(cfg.model)
        given = _named_model_options(getattr(self, "_argv", None))  # fit compares all of them; the others, these
        diff = {k: (asked[k], v) for k, v in hp.items()  # init_weights: a resume's checkpoint weights go over it
                if k in asked and (sub == "fit" or given is None or k in given) and _plain(asked[k]) != _plain(v)
                and not (sub == "fit" and k == "init_weights")}
        if diff:
            detail = "; ".join(f"model.{k} {a!r} asked, {v!r} in the checkpoint" for k, (a, v) in sorted(diff.items()))
            if sub == "fit":  # advice for the options given (drop them) and those a config left at another value
                raise ValueError(f"ckpt_path: {ckpt} resumes a run trained with other model options ({detail}); a "
                                 f"resume continues that run as it was: {resume_advice(diff, given)}, or start "
                                 f"a new run from its weights with --model.init_weights {ckpt}")
            raise ValueError(f"ckpt_path: {ckpt} holds a model trained with other model options ({detail}); `neuroview "
                             f"{sub}` runs the checkpoint's model as it was trained, without them: drop those options, "
                             f"or train a model with them (neuroview fit)")
        if sub == "fit":
            _check_resumed_data(ckpt, cfg.data, saved.get("datamodule_hyper_parameters"))
        else:
            _check_evaluated_data(ckpt, cfg.data, saved.get("datamodule_hyper_parameters"), sub)

    def after_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else None
        if getattr(self, "_resumed_stops", None) and self.subcommand == "fit":
            check_resume(*self._resumed_stops, self.trainer)
            self.model._resume_checked = True  # and its options: not again in the module's on_load_checkpoint
        if cfg is not None and cfg.get("ckpt_path") and isinstance(self.model, NeuroViewModule):
            # the checkpoint's weights replace the network's: its init_weights (the file it was trained from, in
            # its hyper-parameters) need not be read, nor be there any more
            self.model._init_loaded = True
        if cfg is not None and self.subcommand != "fit" and self.datamodule is not None:  # other data, read as trained
            ckpt = _checkpoint_file(cfg, self.subcommand)
            source = ckpt or cfg.model.get("init_weights")
            read_evaluated_like(source, self.datamodule, "ckpt_path" if ckpt else "model.init_weights", self.subcommand)
            note_trained_on(self.datamodule, source, getattr(self, "_argv", None))  # named if its classes are refused
            if source and isinstance(self.model, NeuroViewModule):
                self.model = _as_trained(source, ckpt is not None, self.model, self.datamodule, self.subcommand)

    def before_fit(self) -> None:
        """A new run (no ``--ckpt_path``) into a folder that holds an earlier run's checkpoints keeps each as
        ``<name>-v<N>.ckpt`` once it starts training (:class:`KeepEarlierRuns`, ahead of the config it saves: the one
        its ``init_weights`` names is read at the setup under the name typed, and saved in the config by its kept
        name): the new run writes ``last.ckpt`` and its best (``--ckpt_path last`` reads ``last.ckpt``, ``best`` the
        newest best), and nothing an earlier run saved is lost (the folder is one per recipe: a run on other data
        replaced the earlier model), nor moved by a run refused before it trained. A resume of another file than
        ``last.ckpt`` (a kept ``last-v1.ckpt``) keeps aside what it would write over that is not its own. A fit refused
        before it trained, a resume too, leaves no log folder of its own (:class:`DropRefusedRun`). A fit into a folder
        that another live fit writes is refused at its setup, moving nothing (:mod:`.run_folder`)."""
        cfg = self.config[self.subcommand]
        cb = run_checkpoint(self.trainer, made_checkpoint(self))  # not a user's, first
        self.trainer.callbacks.append(DropRefusedRun(self.trainer.loggers))  # before any logger made its folder
        if self.trainer.fast_dev_run:  # a smoke test saves nothing, and moved the real run's checkpoints aside
            return
        if cb is None or not cb.dirpath:
            return
        callbacks = self.trainer.callbacks
        at = next((i for i, c in enumerate(callbacks) if isinstance(c, SaveRunConfig)), len(callbacks))
        callbacks.insert(at, KeepEarlierRuns(cb, cfg))  # on_train_start: renamed, then the config saved
        if not (cfg.get("checkpoint") or {}).get("dirpath"):  # the recipe's own folder, its earlier files kept aside
            # by that callback: Lightning's "not empty" (at its setup, before) read as if they were at risk. A folder
            # the user names keeps it. Filters here last the command (cli_main)
            quiet(re.escape(f"Checkpoint directory {cb.dirpath} exists and is not empty.") + "$")
        if by_neuroview(self.datamodule, "val_dataloader"):  # [] for no validation split: its note, as the module's
            quiet(EMPTY_VAL_WARNING)

    def after_fit(self) -> None:
        cfg = self.config[self.subcommand]
        if not cfg.get("test_after_fit") or self.trainer.interrupted:
            return
        # a spawned fit (ddp_spawn) stepped in its workers: the main process's trainer counted 0 of their steps
        if fit_steps(self.trainer) == 0:  # the test would score the untrained network, as if it were the run's
            n = self.trainer.num_training_batches
            rank_zero_warn(f"test_after_fit: skipped, fit ran no training step (training batches an epoch: "
                           f"{n if n != float('inf') else 'none loaded'}, limit_train_batches="
                           f"{self.trainer.limit_train_batches}, max_steps={self.trainer.max_steps}): the network "
                           "is untrained, and its test would be written as the run's")
            return
        cb = run_checkpoint(self.trainer, made_checkpoint(self))  # its best, not a user's
        best = fit_best(self.trainer, cb) if cfg.get("test_ckpt") == "best" else ""  # a spawn's too (ddp_spawn)
        if cfg.get("test_ckpt") == "best" and not best:  # Lightning's own warning named a missing key, not this
            rank_zero_warn(f"test_ckpt: 'best', but {no_best_reason(self.trainer, cb)}: the last weights are tested; "
                           "pass --test_ckpt last to say so")
        mark_fit_weights(self.trainer, self.model, cb)  # where no file is restored: the weights fit ended with
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or None)

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        threads = cfg.get("torch_threads")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"torch_threads: expected an int >= 1 (or null: torch's choice), got {threads!r}")  # 0 was dropped
        check_init_weights(cfg)  # before anything is built or written
        if threads:
            # tiny networks on small in-memory sets lose more to thread synchronization than they
            # gain, and badly so on shared CPUs: recipes may pin the count
            torch.set_num_threads(cfg.torch_threads)
        absolute_paths(cfg.get("data"))
        if self.subcommand in ("validate", "test", "predict"):  # another file: read as the checkpoint's data was
            source = _checkpoint_file(cfg, self.subcommand) or cfg.model.get("init_weights")
            self._whole = evaluated_data(cfg, self.subcommand, source, getattr(self, "_argv", None))
            named = data_named(getattr(self, "_argv", None))  # not a recipe's own data beside a run of other data
            self._model_names = checkpoint_classes(source) if self._whole and source and named else None  # by name

    def instantiate_classes(self) -> None:
        # test/predict of a file of new series: no carve (splits), its labels among the model's classes, by name
        with whole_files(getattr(self, "_whole", False)), model_classes(getattr(self, "_model_names", None)):
            super().instantiate_classes()

    def _instantiate_trainer(self, config: dict, callbacks: list) -> pl.Trainer:
        if config.get("enable_checkpointing") is False:  # the command's own checkpoint was refused by the Trainer, raw
            callbacks = [c for c in callbacks if not isinstance(c, Checkpoint)]
        return super()._instantiate_trainer(default_loggers(config), callbacks)  # not in the config it saves

    def instantiate_trainer(self, **kwargs) -> pl.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        for cb in trainer.checkpoint_callbacks:
            if isinstance(cb, ModelCheckpoint) and cb.dirpath is None:
                # one folder per recipe, not per log version: `--ckpt_path last` must find the last run
                cb.dirpath = os.path.realpath(os.path.join(trainer.default_root_dir, "checkpoints"))
        if trainer.loggers and not any(isinstance(c, LearningRateMonitor) for c in trainer.callbacks):
            trainer.callbacks.append(LearningRateMonitor(logging_interval="epoch"))
        trainer.callbacks.append(TestedCheckpoint())  # the file a test/validate scored, named in the run's log folder
        return trainer


def _check_seed(seed) -> None:
    """``--seed_everything`` one Lightning's ``seed_everything`` takes (numpy's seeds, [0, 2**32)): its ValueError, at
    the seeding after the parse, was a traceback, exit 1."""
    if isinstance(seed, int) and not isinstance(seed, bool) and not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed_everything: expected true, false or an int in [0, 2**32) (what Lightning's "
                         f"seed_everything takes), got {seed} (option --seed_everything)")


def _check_checkpoint(ckpt) -> None:
    """The checkpoint's ``mode`` against its ``monitor`` (a loss kept at its highest, the default ``max`` left as it was
    when the monitor moved from ``val_acc``, tested the worst epoch), and its file name after the monitor."""
    if ckpt is None or not ckpt.get("monitor"):
        return
    monitor, mode = str(ckpt.monitor), ckpt.get("mode")
    need = monitor_mode(monitor, mode)  # the rule the module applies to a trainer's EarlyStopping and ModelCheckpoint
    if need is not None:
        raise ValueError(f"checkpoint.mode: {mode!r} keeps the checkpoint of the {'highest' if mode == 'max' else 'lowest'} "
                         f"{monitor} (checkpoint.monitor); pass --checkpoint.mode {need}")
    if ckpt.get("filename") == DEFAULT_NAME and monitor != "val_acc":  # named after the metric it ranks by
        ckpt.filename = "best-epoch{epoch:03d}-step{step:06d}-" + monitor + "{" + monitor + ":.4f}"


def _as_trained(ckpt: str, given: bool, model: NeuroViewModule, dm, sub: str) -> NeuroViewModule:
    """The model the command built from the data (its channels and, for an RNN, its steps: linked from the data module
    before the data was read as trained) checked against the checkpoint's: other data of other channels failed in a
    bare size mismatch of its state dict. An RNN whose data now reads at the checkpoint's length (padded or stretched
    to it) is built again at that length; a CNN reads any length. ``ckpt``: the ``--ckpt_path`` (``given``) or the
    ``--model.init_weights`` (a file without hyper-parameters, a ``.safetensors``, is not compared)."""
    try:
        hp = read_checkpoint(ckpt, "ckpt_path" if given else "init_weights").get("hyper_parameters") or {}
    except Exception:  # noqa: BLE001 - init_weights of another kind: loaded, and named if it does not fit, by setup
        if given:
            raise
        hp = {}
    keys = [("in_channels", "channels", hp.get("in_channels"), model.hparams.get("in_channels"))]
    if takes_lengths(model.model) and hp.get("max_len") is not None:
        if model.hparams.get("max_len") != hp["max_len"] and getattr(dm, "max_len", None) == hp["max_len"]:
            args = {k: v for k, v in model.hparams.items() if not k.startswith("_")}  # LightningCLI's _instantiator
            with torch.random.fork_rng(devices=[]):  # its initial weights (replaced) drawn from no one's RNG
                built = type(model)(**{**args, "max_len": hp["max_len"]})
            built.hparams.update({k: v for k, v in model.hparams.items() if k.startswith("_")})
            built._init_loaded, model = model._init_loaded, built  # a checkpoint's weights go over it, as over the first
        keys.append(("max_len", "steps", hp["max_len"], model.hparams.get("max_len")))
    for key, what, trained, made in keys:
        if trained is not None and made is not None and made != trained:
            # the data is read as the checkpoint's was already (evaluated_data): `explain --data` read it no otherwise
            raise ValueError(f"data: series of {made} {what}, where {ckpt} holds a model of {trained} {what}: "
                             f"`neuroview {sub}` builds the model from the data; pass data of {trained} {what}"
                             + format_hint(ckpt, dm, key))
    return model


def _named_model_options(argv: list[str] | None) -> set[str] | None:
    """The model options a command line names (``--model.lr 0.1``, ``--model.model_kwargs.quantizer hard``:
    ``lr``, ``model_kwargs``); None (all of them) for ``--model`` as a whole or a command given as a dict."""
    if argv is None:
        return None
    named = set()
    for a in argv:
        if a == "--model" or a.startswith("--model="):
            return None
        if a.startswith("--model."):
            named.add(a[len("--model."):].split("=", 1)[0].split(".", 1)[0])
    return named


def _find_configs(argv: list[str]) -> list[str]:
    """``argv`` with each ``--config``/``-c`` that names a shipped recipe (``recipes/<name>.yaml``,
    ``<name>.yaml`` or ``<name>``) but is no file here replaced by that recipe's path: recipes
    run from any folder, and from a wheel install, which has no ``recipes/`` beside the user."""
    out = list(argv)
    for i, a in enumerate(out):
        if a in ("--config", "-c") and i + 1 < len(out):
            out[i + 1] = find_recipe(out[i + 1])
        elif a.startswith("--config="):
            out[i] = "--config=" + find_recipe(a.split("=", 1)[1])
    return out


def cli_main(argv: list[str] | None = None, *, run: bool = True) -> NeuroViewCLI:
    """``neuroview fit|validate|test|predict --config recipes/<name>.yaml [--key value ...]``.

    Runs go to ``runs/<name>`` unless ``--trainer.default_root_dir`` says otherwise. A command
    line the parser refuses is one short error (what is wrong, then where the options are
    listed) and ``SystemExit(2)``, not the whole usage text with the reason at its end.
    """
    argv = _find_configs(list(sys.argv[1:] if argv is None else argv))
    command = argv[0] if argv and argv[0] in ("fit", "validate", "test", "predict") else "fit"
    if not run and argv and argv[0] == command:
        argv = argv[1:]  # run=False parses one config, without sub-commands
    with warnings.catch_warnings():
        # LightningCLI warns whenever args are given while sys.argv holds anything (the console script, pytest)
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
        # Lightning's note on the module's batch hook: kept from its cache per call of the hook (loop_guards._quiet_note),
        # not filtered here, where its cache kept it from a user's own hook for the rest of the process
        try:
            return _cli(argv, run)
        except ArgumentError as e:
            said = parse_refusal(str(e), argv, command)
            print(f"neuroview {command}: error: {said}\nsee `neuroview {command} --help`", file=sys.stderr)
            raise SystemExit(2) from None


def _cli(argv: list[str], run: bool) -> NeuroViewCLI:
    return NeuroViewCLI(
        NeuroViewModule,
        ArrayDataModule,
        subclass_mode_data=True,
        trainer_defaults={"default_root_dir": os.path.join("runs", run_name(argv)), "callbacks": [PredictionWriter()]},
        save_config_callback=SaveRunConfig,  # over no file the run did not write (logger false: default_root_dir)
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,  # optimizer and scheduler are model options: --model.optimizer sgd
        # errors raise ArgumentError (cli_main prints them first and short) instead of usage-then-exit
        # allow_abbrev off: --model.min_lr was taken as min_lr_factor, --model.weight as weight_decay, without a word
        parser_kwargs={"prog": "neuroview", "exit_on_error": False, "allow_abbrev": False,
                       **{sub: {"allow_abbrev": False} for sub in ("fit", "validate", "test", "predict")}},
        args=argv,
        run=run,
    )
