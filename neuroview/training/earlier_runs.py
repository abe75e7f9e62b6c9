"""An earlier run's checkpoints in the folder a new run writes to: each kept as ``<name>-v<N>.ckpt`` once the new run
starts training (:class:`KeepEarlierRuns`: a command refused, or failing in its setup or sanity check, leaves them where
they were, the one a ``--model.init_weights`` names too: read at the setup under the name typed, saved in the run's
config by its kept name), and the log folders of a ``fit`` refused before it trained removed
(:class:`DropRefusedRun`). A kept checkpoint names its own files by their kept names (its best, its last), so that it
resumes whole; ``--ckpt_path last`` reads the folder's ``last.ckpt`` only (:func:`last_checkpoint`): a kept one is an
earlier run's. A live run's folder is not another's: :class:`KeepEarlierRuns` claims it for the fit
(:mod:`.run_folder`), and a second ``fit`` into it while the first runs is refused before it moves anything. May import
Lightning, ``neuroview._io``, ``.run_folder`` and ``.folder_words``; nothing else of neuroview.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from .._io import atomic_write, keep_aside
from .folder_words import not_a_file
from .run_folder import claim_folder, release_folder

__all__ = ["DropRefusedRun", "KeepEarlierRuns", "check_init_weights", "keep_earlier_checkpoints", "last_checkpoint"]

# the first process's kept name of the init weights, for a process started after it with its environment. A launch
# (ddp's own, ddp_spawn, torchrun) starts its processes before training, so they take it from a broadcast instead
_KEPT = "NEUROVIEW_KEPT_INIT_WEIGHTS"
_RANKS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def keep_earlier_checkpoints(cb, model, cfg) -> str | None:
    """Keep each checkpoint of ``cb.dirpath`` that this run may write again (``last.ckpt``, a best of the same name)
    as ``<name>-v<N>.ckpt``; where ``model``'s ``init_weights`` named one, point it (and ``cfg.model.init_weights``,
    the saved config) at the kept name, and return that name (None where it named none). One process renames: the
    first of a launch; another (a rank > 0 by its environment) only takes the kept name of the init weights from
    ``NEUROVIEW_KEPT_INIT_WEIGHTS``, where the first process set it before starting it."""
    if any(int(os.environ.get(k, 0) or 0) for k in _RANKS):
        old, kept = json.loads(os.environ.get(_KEPT) or '["", ""]')  # JSON: a folder's name may hold any separator
        if old and _same(getattr(model, "hparams", {}).get("init_weights"), old):
            _point_at(model, cfg, kept)
            return kept
        return None
    os.environ.pop(_KEPT, None)  # a name kept by an earlier fit of this process is not this run's
    found, moved = None, {}
    for old in _earlier(cb.dirpath, cb.FILE_EXTENSION):
        init = _same(getattr(model, "hparams", {}).get("init_weights"), old)
        kept = moved[os.path.realpath(old)] = _keep(old)
        if init:
            found = str(kept)
            _point_at(model, cfg, found)  # read at setup under the name typed; saved (config, checkpoints) as kept
            os.environ[_KEPT] = json.dumps([os.path.realpath(old), found])
    for kept in moved.values():
        _name_kept_inside(kept, moved)
    return found


def last_checkpoint(folder, sub: str) -> Path:
    """The ``last.ckpt`` of the checkpoint folder ``folder``, which ``--ckpt_path last`` reads; where there is none, a
    FileNotFoundError naming what is there instead. A ``last-v<N>.ckpt`` is an earlier run's, kept aside when a later
    run started training (:class:`KeepEarlierRuns`): read as ``last``, the resume of a run killed before its first
    checkpoint continued the earlier run (its weights, its seed, its finished epochs) as if it were the killed one."""
    last = Path(folder) / "last.ckpt"
    if last.is_file():
        return last
    kept = sorted(Path(folder).glob("last-v*.ckpt"), key=lambda p: p.stat().st_mtime)
    verb, then = ("resumes", "run without --ckpt_path to start a new run") if sub == "fit" else ("reads", "name a checkpoint file")
    if not kept:
        raise FileNotFoundError(f"ckpt_path: 'last' {verb} the last checkpoint in {folder}, and there is none (no "
                                f"last.ckpt); {then}")
    what = "continue that run" if sub == "fit" else f"{sub} that run's model"
    raise FileNotFoundError(
        f"ckpt_path: 'last' {verb} the last checkpoint in {folder}, and there is none (no last.ckpt): the run started "
        f"there last saved none (stopped before its first checkpoint, or the file was removed); {kept[-1].name} is an "
        f"earlier run's, kept aside when a later run started training, and is not read as 'last'. "
        f"{then[0].upper()}{then[1:]}, or pass --ckpt_path {kept[-1]} to {what}")


class KeepEarlierRuns(Callback):
    """Keeps the earlier run's checkpoints of the checkpoint callback's folder aside (``<name>-v<N>.ckpt``) when
    training starts: after the setup (the weights loaded, the sites found) and the sanity check, before the first
    save, and before :class:`.run_config.SaveRunConfig` writes the run's config (``before_fit`` puts this callback
    ahead of it). An ``init_weights`` naming one of them (the folder's own ``last.ckpt``, as a refused resume
    advises) is read at the setup under the name typed, and the run's config and checkpoints (their hyper-parameters)
    name it as kept, in every process (broadcast from the first); the logger's ``hparams.yaml``, written at the setup,
    keeps the name typed. Renamed at the command's start, or for the init
    weights before the setup, a run refused in its setup left the only run of the folder at ``last-v1.ckpt``, where
    ``--ckpt_path runs/<recipe>/checkpoints/last.ckpt`` no longer found it, and the refusal named that file. A resume
    of another file than the folder's ``last.ckpt`` keeps aside what it would write over that is not its own."""

    def __init__(self, checkpoint, cfg=None):
        self.checkpoint, self.cfg = checkpoint, cfg  # the ModelCheckpoint: its folder as its setup resolved it
        self._claimed = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        """The checkpoint folder claimed for this fit (:func:`.run_folder.claim_folder`): a fit that another live run
        holds is refused here, before it moves or writes anything of that run's (it set the live run's ``last.ckpt``
        aside as "the earlier run's" and wrote its own over the one that run went on saving)."""
        if stage != "fit":
            return
        root = getattr(getattr(self.cfg, "trainer", None), "default_root_dir", None)
        refused = None
        if trainer.is_global_zero:
            try:
                resume = self.cfg.get("ckpt_path") if self.cfg is not None else trainer.ckpt_path
                self._claimed = claim_folder(self.checkpoint.dirpath, root, resume=bool(resume))
            except ValueError as e:
                refused = str(e)
        refused = trainer.strategy.broadcast(refused)
        if refused:
            raise ValueError(refused)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._claimed = release_folder(self._claimed)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._claimed = release_folder(self._claimed)

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.ckpt_path is not None:  # a resume: of another file than the folder's last.ckpt, it writes over that
            if trainer.is_global_zero and not _same(trainer.ckpt_path, Path(self.checkpoint.dirpath) / "last.ckpt"):
                _keep_written_over(self.checkpoint, trainer.ckpt_path)
            return
        kept = keep_earlier_checkpoints(self.checkpoint, pl_module, self.cfg) if trainer.is_global_zero else None
        kept = trainer.strategy.broadcast(kept)  # the other ranks loaded the file under the name typed, before
        if kept and not trainer.is_global_zero:
            _point_at(pl_module, self.cfg, kept)


class DropRefusedRun(Callback):
    """A ``fit`` (a new run or a resume) refused before it trained (in its setup, its checkpoint's restore, the sanity
    check): the log folders it began (``logs/version_N``, and ``logs/`` or the run's folder where it made them)
    removed, so the earlier run's are the newest again. Only what was not there when the command built its trainer:
    a folder that was there (an empty ``logs/``, a ``--trainer.logger.version`` given) stays."""

    def __init__(self, loggers):
        self._started, self._watched = False, []
        for logger in loggers:
            if not getattr(logger, "root_dir", None):  # save_dir/name, holding its version_N (CSV, TensorBoard)
                continue
            root = Path(logger.root_dir).resolve()
            there = set(os.listdir(root)) if root.is_dir() else set()
            absent, up = [], root  # root, then each parent that is not there yet (the run's folder, runs/)
            while not up.exists() and up != up.parent:
                absent.append(up)
                up = up.parent
            self._watched.append((logger, root, there, absent))

    def on_train_start(self, trainer, pl_module) -> None:
        self._started = True

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if self._started or not trainer.is_global_zero:
            return
        for logger, root, there, absent in self._watched:
            folder = Path(logger.log_dir).resolve() if getattr(logger, "log_dir", None) else None
            if folder is not None and folder.parent == root and folder.name not in there and folder.is_dir():
                shutil.rmtree(folder)  # the refused run's own: hparams.yaml at most
            for made in absent:
                if made.is_dir() and not any(made.iterdir()):
                    made.rmdir()


def check_init_weights(cfg) -> None:
    """``--model.init_weights`` names a readable file, checked before anything is built or written: the weights are
    read at the model's setup, after a log folder was begun. Checked where a resume (``--ckpt_path``) does not replace
    them, by the first process only."""
    given = cfg.model.get("init_weights") if cfg is not None and cfg.get("model") is not None else None
    if not given or cfg.get("ckpt_path") or any(int(os.environ.get(k, 0) or 0) for k in _RANKS):
        return
    path = Path(str(given)).expanduser()
    if not path.is_file() or not os.access(path, os.R_OK):  # a run's folder: said as one, the .ckpt in it named
        why = "(not readable)" if path.is_file() else not_a_file(path) if path.is_dir() or not path.exists() else "(not a file)"
        raise FileNotFoundError(f"model.init_weights: expected a weight file to start from (a `neuroview fit` .ckpt, a state dict or a "
                                f".safetensors), got {str(given)!r} {why}")


def _earlier(dirpath: str, extension: str) -> list[Path]:
    """The checkpoints of ``dirpath`` under a name this run may write again (not an earlier ``<name>-v<N>``)."""
    return [p for p in sorted(Path(dirpath).glob(f"*{extension}")) if p.is_file() and not re.search(r"-v\d+$", p.stem)]


def _keep(old: Path, what: str = "the earlier run's") -> Path:
    kept = keep_aside(old)
    rank_zero_info(f"neuroview fit: {what} {old} kept as {kept.name} (this run writes its own; "
                   f"--trainer.default_root_dir gives a run a folder of its own)")
    return kept


def _keep_written_over(cb, resumed) -> None:
    """A resume of ``resumed``, a file other than the folder's ``last.ckpt`` (an earlier run's kept ``last-v1.ckpt``,
    a best): keep aside each checkpoint of the folder it would write over that is not its own (``last.ckpt``, another
    run's best; its own: the file resumed and the best files its restored state ranks). It wrote its ``last.ckpt`` over
    the later run's, and a best of the same name over that run's."""
    own = {os.path.realpath(p) for p in (resumed, cb.best_model_path, cb.kth_best_model_path, *cb.best_k_models) if p}
    moved = {}
    for old in _earlier(cb.dirpath, cb.FILE_EXTENSION):
        if os.path.realpath(old) not in own:
            moved[os.path.realpath(old)] = _keep(old, f"a checkpoint this resume of {Path(resumed).name} would write over,")
    for kept in moved.values():
        _name_kept_inside(kept, moved)


def _name_kept_inside(kept: Path, moved: dict[str, Path]) -> None:
    """Rewrite the file names the checkpoint ``kept`` records (its ModelCheckpoint's best, k-th best, top-k and last)
    to the kept names of ``moved`` (real old path -> kept path), its time of change kept (``best`` reads the newest).
    Left as renamed, it named its best by the old name: its resume ended in Lightning's bare FileNotFoundError when
    it tested its best, or read another run's best saved later under that name."""
    if kept.is_symlink():  # --checkpoint.save_last link: a link to a best, no checkpoint of its own
        return
    saved = _read_kept(kept, moved)
    states = [s for s in (saved.get("callbacks") or {}).values() if isinstance(s, dict) and "best_model_path" in s] \
        if isinstance(saved, dict) and isinstance(saved.get("callbacks"), dict) else []

    def new(path):
        to = moved.get(os.path.realpath(path)) if isinstance(path, str) and path else None
        return str(to) if to is not None else path

    changed = False
    for state in states:
        for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
            if state.get(key) and new(state[key]) != state[key]:
                state[key], changed = new(state[key]), True
        if isinstance(state.get("best_k_models"), dict) and any(new(k) != k for k in state["best_k_models"]):
            state["best_k_models"], changed = {new(k): v for k, v in state["best_k_models"].items()}, True
    if changed:
        stat = kept.stat()
        buffer = io.BytesIO()
        torch.save(saved, buffer)  # from the mapped file: the tensors are not held a second time
        atomic_write(kept, buffer.getbuffer())
        os.utime(kept, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _read_kept(kept: Path, moved: dict[str, Path]):
    """The checkpoint ``kept`` as a ``weights_only`` load reads it, its tensors mapped from the file (``mmap``: read
    whole, a 400 MB file took 585 MB more at its peak); None for a file that is no checkpoint (truncated, a user's
    file). A checkpoint holding objects that load refuses (a path or a numpy value in its hyper-parameters, a user's
    class) is not unpickled here: the new run did not ask to read it, and neuroview reads no such file (docs/ERRORS.md,
    "What is safe to load"); a warning says that the names it records were not rewritten, and their kept names."""
    for mmap in (True, False):  # a file of torch's legacy (not zip) format cannot be mapped
        try:
            return torch.load(kept, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError:
            try:
                refused = torch.serialization.get_unsafe_globals_in_checkpoint(kept)
            except Exception:  # noqa: BLE001 - not a zip of torch's: no checkpoint
                refused = []
            if refused:
                names = ", ".join(f"{Path(old).name} as {new.name}" for old, new in moved.items())
                rank_zero_warn(
                    f"neuroview fit: {kept} holds objects a weights_only load refuses ({', '.join(refused[:3])}), so the "
                    f"files it names (its best, its last) were not renamed inside it; this folder's earlier files are "
                    f"kept: {names}. neuroview reads only checkpoints of tensors and plain values (--ckpt_path refuses "
                    f"this one): save hyper-parameters and callback states as plain values (a path as text, a numpy "
                    f"number as a Python one)")
            return None
        except RuntimeError as e:
            if not (mmap and "mmap" in str(e)):
                return None
        except Exception:  # noqa: BLE001 - no checkpoint of Lightning's (truncated, a user's file): renamed, as it is
            return None
    return None


def _same(path, other) -> bool:
    return path is not None and os.path.realpath(str(path)) == os.path.realpath(str(other))


def _point_at(model, cfg, kept: str) -> None:
    model.hparams["init_weights"] = kept
    if cfg is not None:  # the config the run saves (the CLI's; a callback built without one: the model alone)
        cfg.model.init_weights = kept

