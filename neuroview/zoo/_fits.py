"""Whether a weight file's tensors fit a network, said by what differs: :func:`misfit` (names, shapes, kinds of
number), and :func:`folder_refusal` (a folder given where a weight file is expected).

A tensor name the builder's arguments decide is said as that argument: a NeuroView-RNN's ``step_shared.weight`` is
there exactly where it was built with ``shared_steps=True``, so a file that holds it and a model that has none (or the
reverse) is refused naming ``shared_steps`` and both values, not as "1 unexpected tensors in the file". Only where it
is the whole difference at that prefix (the model has a NeuroView-RNN there, every other tensor under it is on both
sides at the same shape): a standard GRU's file, another hidden size, an ensemble's extra member are listed as keys.

Imports torch and the standard library only.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["misfit", "folder_refusal", "kind"]

_SHARED = "step_shared.weight"
#: What a weight file is named, by the reader that takes it (``pickles``: also torch's and Lightning's).
_SUFFIXES = {False: (".safetensors",), True: (".safetensors", ".pt", ".pth", ".ckpt")}


def kind(t: torch.Tensor) -> str:
    """What ``load_state_dict`` casts between unasked: ``complex``, ``floating-point``, ``bool`` or ``integer``."""
    return "complex" if t.is_complex() else "floating-point" if t.is_floating_point() else "bool" if t.dtype == torch.bool else "integer"


def misfit(model: nn.Module, got: dict[str, tuple], what: str, kinds: dict[str, tuple] | None = None) -> str | None:
    """Why tensors of these names and shapes (``got``) do not fit ``model``, None where they do: names and shapes; and
    the kind of number of ``kinds`` (``{name: (dtype, kind)}``): an int32 weight was cast, computed with."""
    mine = model.state_dict()
    want, kinds = {k: tuple(v.shape) for k, v in mine.items()}, kinds or {}
    missing, unexpected = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    named, said = _shared_steps(model, want, got, missing + unexpected, what)
    missing, unexpected = [k for k in missing if k not in said], [k for k in unexpected if k not in said]
    shapes = [f"{k}: file {got[k]}, model {want[k]}" for k in sorted(set(want) & set(got)) if want[k] != got[k]]
    types = [f"{k}: file {kinds[k][0]}, model {mine[k].dtype}" for k in sorted(set(want) & set(kinds)) if kinds[k][1] != kind(mine[k])]
    parts = named + [f"{len(missing)} tensors missing from the file (first: {missing[:3]})"] * bool(missing) + \
        [f"{len(unexpected)} unexpected tensors in the file (first: {unexpected[:3]})"] * bool(unexpected) + \
        [f"{len(shapes)} shape mismatches (first: {shapes[:3]})"] * bool(shapes) + \
        [f"{len(types)} tensors of another kind of number (first: {types[:3]})"] * bool(types)
    return f"{what}: the weights do not fit a {type(model).__name__}: " + "; ".join(parts) if parts else None


def _shared_steps(model: nn.Module, want: dict, got: dict, differ: list[str], what: str) -> tuple[list[str], set[str]]:
    """``shared_steps`` said for each NeuroView-RNN (by its prefix) whose shared part is on one side only and is all
    that differs under its prefix; and the keys so said (the others are listed as keys)."""
    out, said = [], set()
    for k in (k for k in differ if k == _SHARED or k.endswith("." + _SHARED)):
        pre, file = k[:-len(_SHARED)], k in got
        try:
            shared = getattr(model.get_submodule(pre[:-1]) if pre else model, "step_shared", False)
        except AttributeError:  # no module there in the model (an ensemble's extra member)
            continue
        under = lambda d: {n: v for n, v in d.items() if n.startswith(pre) and n != k}  # noqa: E731
        if not (shared is None if file else isinstance(shared, nn.Module)) or under(want) != under(got):
            continue  # no NeuroView-RNN there (False), or more differs than its shared part: its keys say it
        how = f"--model-args '{{\"shared_steps\": {str(file).lower()}}}'" if what == "--weights" else f"shared_steps={file}"
        out.append(f"{pre}shared_steps: the file's network was built with shared_steps={file} (it "
                   f"{'holds' if file else 'has no'} {k}), the model with shared_steps={not file}; build the model with "
                   f"{how} to load it")
        said.add(k)
    return out, said


def folder_refusal(path: Path, what: str, pickles: bool, hint: str = "") -> str:
    """What to say where the weight file ``path`` is a folder: the files it expects, and those the folder holds."""
    suffixes = _SUFFIXES[bool(pickles)]
    want = "a .safetensors weight file" + (" (or a torch state dict .pt / .pth, a Lightning checkpoint .ckpt)" if pickles else "")
    try:
        inside = sorted(p.name for p in path.iterdir() if p.suffix in suffixes and p.is_file())
    except OSError:  # a folder that cannot be listed: said without its files
        inside = []
    held = f"; it holds {inside[:3]}{' ...' if len(inside) > 3 else ''}: pass one of them" if inside else ""
    return f"{what}: weight file {str(path)!r} is a folder, not a file: expected {want}{held}{hint}"
