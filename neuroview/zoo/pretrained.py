"""The zoo's trained checkpoints: one manifest, one loader, weights that never unpickle.

``checkpoints/`` holds one ``<name>.safetensors`` per entry and ``manifest.json``, which says per
entry how to rebuild the network (``architecture`` and ``arch_kwargs``), what it was trained on
(``dataset``: the data module and its arguments), how (``recipe``, ``seed``), what it scored
(``metrics``: accuracy on the full test split, and on its first ``slice_size`` samples), its
``num_params``, the ``sha256`` of its weight file and the library ``versions``.

``create_model("nv_gru.japanesevowels", pretrained=True)`` (or :func:`load_pretrained`) checks,
in this order and before any tensor reaches the model: the file exists, its sha256 matches the
manifest, the file names the same architecture as the manifest, the built network has exactly
the file's tensor names and shapes and the manifest's parameter count. Any failure is an error
that names the entry and changes nothing on disk.

>>> import neuroview as nv
>>> names = nv.list_models(pretrained=True)
>>> net = nv.create_model(names[0], pretrained=True)   # doctest: +SKIP
>>> net.pretrained_cfg["metrics"]["test_acc"]          # doctest: +SKIP
0.975
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import importlib
import inspect
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from .._io import atomic_write
from .registry import _MODELS

__all__ = [
    "checkpoints_dir", "read_manifest", "list_pretrained", "get_entry", "load_pretrained", "load_weights",
    "save_pretrained", "verify_entry", "evaluate", "make_datamodule", "count_params", "sha256_file",
    "ChecksumError", "ArchitectureError", "SLICE_SIZE",
]

MANIFEST = "manifest.json"
FORMAT = 1
#: Test samples of the quick check: the first ``SLICE_SIZE`` of the (unshuffled) test split.
SLICE_SIZE = 128


class ChecksumError(ValueError):
    """The weight file's sha256 differs from the manifest's."""


class ArchitectureError(ValueError):
    """The weights do not fit the architecture they are loaded into."""


# ------------------------------------------------------------------------- manifest
def checkpoints_dir(root: str | os.PathLike | None = None) -> Path:
    """``root``, else ``$NEUROVIEW_CHECKPOINTS``, else the ``checkpoints/`` folder of the source tree."""
    if root is not None:
        return Path(root)
    if os.environ.get("NEUROVIEW_CHECKPOINTS"):
        return Path(os.environ["NEUROVIEW_CHECKPOINTS"])
    return Path(__file__).resolve().parents[2] / "checkpoints"


def read_manifest(root: str | os.PathLike | None = None) -> dict[str, dict]:
    """The manifest's entries by name (empty when there is no manifest yet)."""
    path = checkpoints_dir(root) / MANIFEST
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), dict):
        raise ValueError(f"root: {path} is not a neuroview manifest (expected {{'format': {FORMAT}, 'entries': {{...}}}})")
    return data["entries"]


def list_pretrained(pattern: str | None = None, root: str | os.PathLike | None = None) -> list[str]:
    """Sorted names of the trained entries (``arch.tag``), optionally filtered by a glob ``pattern``.

    >>> all("." in n for n in list_pretrained())
    True
    """
    names = sorted(read_manifest(root))
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def get_entry(name: str, root: str | os.PathLike | None = None) -> tuple[str, dict]:
    """``(full name, manifest entry)``; a bare architecture name resolves when it has one entry."""
    entries = read_manifest(root)
    if name in entries:
        return name, entries[name]
    tagged = sorted(n for n in entries if n.split(".", 1)[0] == name)
    if "." not in name and len(tagged) == 1:
        return tagged[0], entries[tagged[0]]
    if tagged:
        raise ValueError(f"name: {name!r} has several trained entries, pick one of {tagged}")
    where = checkpoints_dir(root)
    raise ValueError(f"name: no trained entry {name!r} in {where / MANIFEST}; trained entries: {sorted(entries) or 'none'}")


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    # Several training runs may export at once: the manifest's read-modify-write is serialized.
    root.mkdir(parents=True, exist_ok=True)
    # the lock lives outside the folder, which holds only committed data
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"neuroview-{key}.lock", "a") as lock:
        try:
            import fcntl  # noqa: PLC0415 - POSIX only; elsewhere exports must not overlap

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:
            pass
        yield


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def count_params(model: nn.Module) -> int:
    """Number of parameter values (buffers such as BatchNorm statistics not counted)."""
    return sum(p.numel() for p in model.parameters())


def versions() -> dict[str, str]:
    """Versions of what produced or reads a checkpoint (data generators included: they define the data)."""
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("neuroview", "pytorch_lightning", "numpy", "safetensors", "sklearn", "aeon", "mnist1d"):
        try:
            out[mod] = str(importlib.import_module(mod).__version__)
        except (ImportError, AttributeError):
            pass
    return out


# -------------------------------------------------------------------------- loading
def _build(architecture: str, arch_kwargs: dict) -> nn.Module:

    if architecture not in _MODELS:
        raise ArchitectureError(f"architecture: {architecture!r} is not a registered model (see neuroview.list_models())")
    return _MODELS[architecture](**arch_kwargs)


def _check_fits(model: nn.Module, tensors: dict[str, Tensor] | dict[str, tuple], what: str) -> None:
    """Raise ArchitectureError unless ``model``'s state dict has exactly these names and shapes."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) if isinstance(v, Tensor) else tuple(v) for k, v in tensors.items()}
    missing = sorted(set(want) - set(got))
    unexpected = sorted(set(got) - set(want))
    shapes = [f"{k}: file {got[k]}, model {want[k]}" for k in sorted(set(want) & set(got)) if want[k] != got[k]]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} tensors missing from the file (first: {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors in the file (first: {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (first: {shapes[:3]})")
        raise ArchitectureError(f"{what}: the weights do not fit a {type(model).__name__}: " + "; ".join(parts))


def _read_verified(path: Path, sha256: str | None, what: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file whose bytes hash to ``sha256`` (read once)."""
    from safetensors.torch import load as load_bytes  # noqa: PLC0415

    if not path.is_file():
        raise FileNotFoundError(f"{what}: weight file {str(path)!r} is missing; restore it from the repository (git checkout -- {path.name}) or re-train it with benchmarks/reproduce_zoo.py")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256:
        raise ChecksumError(
            f"{what}: sha256 of {path.name} is {digest[:16]}..., the manifest expects {sha256[:16]}...; the file is "
            "corrupted or was replaced, so it is not loaded"
        )
    # safetensors' header holds the metadata; parse it from the same bytes that were hashed
    try:
        n = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8:8 + n]).get("__metadata__", {}) or {}
        return load_bytes(data), meta
    except Exception as e:  # safetensors raises its own SafetensorError, json a ValueError, a short header a TypeError
        raise ValueError(f"{what}: expected a safetensors weight file, got {str(path)!r}, which is truncated or not one ({type(e).__name__}: {e})") from e


def load_weights(model: nn.Module, path: str | os.PathLike, *, sha256: str | None = None) -> nn.Module:
    """Load a safetensors state dict into ``model`` after checking its hash (when given) and its fit.

    Nothing is copied into ``model`` unless every name and shape matches.

    >>> import tempfile, os, neuroview as nv
    >>> from safetensors.torch import save_file
    >>> net = nv.create_model("small_cnn", widths=(8,))
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> save_file(net.state_dict(), path)
    >>> _ = load_weights(nv.create_model("small_cnn", widths=(8,)), path)
    >>> load_weights(nv.create_model("small_cnn", widths=(16,)), path)
    Traceback (most recent call last):
    ...
    neuroview.zoo.ArchitectureError: path: the weights do not fit a SmallCNN: 6 shape mismatches ...
    """
    tensors, _ = _read_verified(Path(path), sha256, "path")
    _check_fits(model, tensors, "path")
    model.load_state_dict(tensors, strict=True)
    return model


def load_pretrained(name: str, *, root: str | os.PathLike | None = None, **kwargs) -> nn.Module:
    """The trained zoo network ``name`` (``arch.tag``, see :func:`list_pretrained`), in eval mode.

    Keyword arguments, if any, must agree with the entry's ``arch_kwargs`` (a checkpoint fixes
    its architecture); the entry itself is attached as ``model.pretrained_cfg``.
    """
    full, entry = get_entry(name, root)
    arch = entry["architecture"]
    wanted = name.split(".", 1)[0]
    if wanted != arch:
        raise ArchitectureError(f"name: {name!r} asks for architecture {wanted!r}, but the manifest's entry is a {arch!r}")
    arch_kwargs = dict(entry["arch_kwargs"])
    clash = {k: (v, arch_kwargs.get(k, "<default>")) for k, v in kwargs.items() if _plain(arch_kwargs.get(k, object())) != _plain(v)}
    if clash:
        detail = ", ".join(f"{k}={v!r} (checkpoint: {c!r})" for k, (v, c) in clash.items())
        raise ValueError(f"kwargs: {full!r} was trained with fixed arguments; got {detail}. Build "
                         f"create_model({arch!r}, ...) without pretrained=True to change them")
    tensors, meta = _read_verified(checkpoints_dir(root) / entry["file"], entry.get("sha256"), full)
    if meta.get("neuroview.architecture") not in (None, arch):
        raise ArchitectureError(f"{full}: the file holds a {meta['neuroview.architecture']!r}, the manifest says {arch!r}")
    model = _build(arch, arch_kwargs)
    _check_fits(model, tensors, full)
    n = count_params(model)
    if entry.get("num_params") is not None and n != entry["num_params"]:
        raise ArchitectureError(f"{full}: the built {arch!r} has {n} parameters, the manifest says {entry['num_params']}")
    model.load_state_dict(tensors, strict=True)
    model.pretrained_cfg = {"name": full, **entry}
    return model.eval()


def _plain(v: Any) -> Any:
    # JSON turns tuples into lists: compare arguments the way the manifest stores them
    return json.loads(json.dumps(v)) if isinstance(v, (tuple, list, dict)) else v


def verify_entry(name: str, root: str | os.PathLike | None = None) -> nn.Module:
    """Check ``name`` as :func:`load_pretrained` does (hash, architecture, shapes, parameter count); return the model."""
    return load_pretrained(name, root=root)


# -------------------------------------------------------------------------- saving
def save_pretrained(
    model: nn.Module,
    name: str,
    *,
    architecture: str,
    arch_kwargs: dict,
    dataset: dict,
    recipe: str | None,
    seed: int | None,
    metrics: dict,
    root: str | os.PathLike | None = None,
    extra: dict | None = None,
) -> dict:
    """Write ``model``'s weights as ``<name>.safetensors`` and its manifest entry; return the entry.

    The architecture must rebuild a network with exactly these tensors: an entry that cannot
    rebuild itself is refused before anything is written. Both files are replaced atomically.
    """
    from safetensors.torch import save as save_bytes  # noqa: PLC0415

    if "." not in name or name.split(".", 1)[0] != architecture:
        raise ValueError(f"name: expected '{architecture}.<tag>' (architecture, dot, dataset tag), got {name!r}")
    arch_kwargs = _plain(dict(arch_kwargs))
    rebuilt = _build(architecture, arch_kwargs)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    _check_fits(rebuilt, state, "model")
    meta = {"neuroview.name": name, "neuroview.architecture": architecture,
            "neuroview.arch_kwargs": json.dumps(arch_kwargs, sort_keys=True), "format": "pt"}
    data = save_bytes(state, metadata=meta)
    root = checkpoints_dir(root)
    entry = {
        "architecture": architecture,
        "arch_kwargs": arch_kwargs,
        "file": f"{name}.safetensors",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
        "num_params": count_params(rebuilt),
        "dataset": dataset,
        "recipe": recipe,
        "seed": seed,
        "metrics": metrics,
        "versions": versions(),
        **(extra or {}),
    }
    with _locked(root):
        entries = read_manifest(root)
        atomic_write(root / entry["file"], data)
        entries[name] = entry
        text = json.dumps({"format": FORMAT, "entries": dict(sorted(entries.items()))}, indent=2, sort_keys=True)
        atomic_write(root / MANIFEST, (text + "\n").encode())
    return entry


# ------------------------------------------------------------------------ evaluating
def make_datamodule(spec: dict):
    """The data module of a manifest entry: ``{"class_path": "neuroview.data.X", "init_args": {...}}``.

    Only data modules of :mod:`neuroview.data` are built: a manifest is data, and must not make
    the loader import arbitrary code.
    """
    from .. import data as data_mod  # noqa: PLC0415 - Lightning data modules import slowly

    path = spec.get("class_path", "")
    module, _, cls_name = path.rpartition(".")
    cls = getattr(data_mod, cls_name, None)
    if module != "neuroview.data" or not (inspect.isclass(cls) and issubclass(cls, data_mod.ArrayDataModule)):
        raise ValueError(f"dataset: expected a data module of neuroview.data (e.g. 'neuroview.data.DigitsDataModule'), got {path!r}")
    return cls(**spec.get("init_args", {}))


def _takes_lengths(model: nn.Module) -> bool:
    return "lengths" in inspect.signature(model.forward).parameters


def predict(model: nn.Module, batch) -> tuple[Tensor, Tensor]:
    """``(logits, y)`` of one data-module batch; RNNs get ``[B, T, F]`` and the lengths, like the Lightning module."""
    if len(batch) == 3:
        x, lengths, y = batch
    else:
        (x, y), lengths = batch, None
    if _takes_lengths(model):
        return model(x.transpose(1, 2), lengths=lengths), y
    return model(x), y


@torch.no_grad()
def evaluate(model: nn.Module, loader, limit: int | None = None) -> tuple[int, int]:
    """``(correct, total)`` of ``model`` in eval mode on ``loader``, on its first ``limit`` samples when given."""
    was = model.training
    model.eval()
    correct = total = 0
    try:
        for batch in loader:
            logits, y = predict(model, batch)
            if limit is not None and total + len(y) > limit:
                keep = limit - total
                logits, y = logits[:keep], y[:keep]
            correct += int((logits.argmax(-1) == y).sum())
            total += len(y)
            if limit is not None and total >= limit:
                break
    finally:
        model.train(was)
    return correct, total


def score_test_split(model: nn.Module, datamodule, slice_size: int = SLICE_SIZE) -> dict:
    """Accuracy on the full test split and on its first ``slice_size`` samples (what the manifest records)."""
    datamodule.setup("test")
    loader = datamodule.test_dataloader()
    c, n = evaluate(model, loader)
    cs, ns = evaluate(model, loader, limit=slice_size)
    return {"test_acc": c / n, "test_size": n, "slice_acc": cs / ns, "slice_size": ns}


# ---------------------------------------------------------------------------- CLI
def format_table(entries: dict[str, dict]) -> str:
    rows = [("name", "dataset", "params", "test acc", "recipe")]
    for name, e in sorted(entries.items()):
        acc = e.get("metrics", {}).get("test_acc")
        rows.append((name, e.get("dataset", {}).get("name", "?"), f"{e.get('num_params', 0):,}",
                     "-" if acc is None else f"{100 * acc:.1f}%", e.get("recipe") or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i != 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``neuroview zoo [--verify] [--architectures] [pattern]``."""
    p = argparse.ArgumentParser(prog="neuroview zoo", description="The trained zoo entries: dataset, parameter count, test accuracy.")
    p.add_argument("pattern", nargs="?", default=None, help="glob over entry names, e.g. 'nv_*' or '*.gunpoint'")
    p.add_argument("--verify", action="store_true", help="also check every entry's hash, architecture and parameter count")
    p.add_argument("--architectures", action="store_true", help="list the registered architectures instead")
    p.add_argument("--root", default=None, help="checkpoint folder (default: $NEUROVIEW_CHECKPOINTS or checkpoints/)")
    args = p.parse_args(argv)
    if args.architectures:
        from . import list_models  # noqa: PLC0415

        print("\n".join(list_models(args.pattern)))
        return 0
    entries = read_manifest(args.root)
    names = list_pretrained(args.pattern, args.root)
    if not names:
        print(f"no trained entries{' matching ' + repr(args.pattern) if args.pattern else ''} in {checkpoints_dir(args.root)}")
        return 0
    print(format_table({n: entries[n] for n in names}))
    if args.verify:
        bad = 0
        for n in names:
            try:
                verify_entry(n, args.root)
            except (ValueError, FileNotFoundError) as e:
                bad += 1
                print(f"FAILED {n}: {e}", file=sys.stderr)
        print(f"verified {len(names) - bad}/{len(names)} entries (sha256, architecture, tensor shapes, parameter count)")
        return 1 if bad else 0
    return 0
