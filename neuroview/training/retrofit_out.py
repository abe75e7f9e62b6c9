"""``neuroview retrofit --out``: the weight file of the retrofitted network, checked before the fit (:func:`check_out`:
its suffix, no folder or earlier file in the way, a folder that exists and can be written, ``~`` expanded) and written
after it (:func:`write_out`) with what it records (:func:`_built`: its source, how to rebuild it, its data).

May import ``neuroview._io`` (the writer), the zoo's files and weights, and ``.sparsify_cli``; ``neuroview.data``
inside the functions.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from torch import nn

from .._io import atomic_write
from .._io import safetensors_bytes as save_bytes
from ..core.rnn import RNNClassifier
from ..zoo.files import replaceable, too_long, unwritable

__all__ = ["check_out", "write_out"]


def check_out(args) -> str | None:
    """Why ``args.out`` (``~`` expanded in place: no shell expands ``--out=~/w.safetensors``) cannot take the weights,
    said before the fit; None where it can (or no ``--out`` was given)."""
    if not args.out:
        return None
    args.out = os.path.expanduser(args.out)
    out = Path(args.out)
    if out.suffix != ".safetensors":
        return "expected a .safetensors path (the weights are written as safetensors)"
    if why := too_long(out, SIBLING):  # before any stat: is_dir() raised a bare OSError [Errno 36], or the save after the fit
        return f"has {why}; pick a shorter --out"
    return ("is a folder" if out.is_dir() else
            "exists; pick another path or pass --overwrite to replace it" if out.exists() and not args.overwrite else
            # a link to a file not there: exists() is False, then the write after the fit found the link in the way
            f"is a symlink to a missing file ({os.readlink(out)!r}); remove the link, or pass --overwrite to replace it"
            if os.path.lexists(out) and not args.overwrite else
            f"its folder {out.parent} does not exist" if not out.parent.is_dir() else
            # a read-only folder: the write's bare PermissionError came after the fit, which was lost
            f"cannot be written: its folder {str(out.parent)!r} takes no new file ({blocked[1]})"
            if (blocked := unwritable(out.parent)) is not None else
            # --overwrite: the write renames onto the earlier file, which its folder or attributes may not let it
            None if (why := replaceable(out)) is None else f"exists and cannot be replaced: {why}")


#: What :func:`neuroview._io.atomic_write` adds to the file's name for its temporary file beside it: ``.<name>.<8>.tmp``.
SIBLING = len(".x.12345678.tmp") - 1


def write_out(args, model: nn.Module, net: nn.Module, dm) -> int:
    """Write ``net``'s weights to ``args.out`` (where given) with :func:`_built`'s record; the exit code: 2 where the
    write failed (the folder made unwritable, or the disk filled, during the fit: said, not a traceback). Without
    ``--overwrite`` the file goes in only where none is there at that moment: another run's, written during this fit
    (:func:`check_out` found none before it), was replaced without a word; it stays, and this run says so."""
    if not args.out:
        return 0
    try:
        atomic_write(Path(args.out), save_bytes({k: v.contiguous() for k, v in net.state_dict().items()},
                                                metadata=_built(model, net, args, dm)), replace=args.overwrite)
    except FileExistsError:
        print(f"neuroview retrofit: out: {args.out} exists: another run wrote it during this one's fit, and it was left "
              "as it is (this network was not saved); pick another path or pass --overwrite to replace it", file=sys.stderr)
        return 2
    except OSError as e:
        from .sparsify_cli import not_written  # noqa: PLC0415

        print(f"neuroview retrofit: {not_written(args.out, e)}", file=sys.stderr)
        return 2
    print(f"weights of the NeuroView network written to {args.out}")
    return 0


def _built(std: nn.Module, net: nn.Module, args, dm=None) -> dict[str, str]:
    """What ``--out`` records: its source, how to rebuild it (``explain --model nv_<arch> --weights`` reads it) where
    that is one zoo builder's call (a CNN, its quantizer included; a checkpoint's from its hyper-parameters), and the
    data its head was fitted on as read (``neuroview.data``: explain reads other data as it, and it where none is given,
    with the fingerprint of the file's training split the head was fitted on, :func:`~neuroview.data.file_record.read_record`:
    that file changed since, carved otherwise, is refused by name)."""
    meta = {"neuroview.retrofit_of": str(args.source)}
    cfg = getattr(std, "pretrained_cfg", None) or {}
    arch = cfg.get("architecture") or args.arch
    kwargs = dict(cfg.get("arch_kwargs") or json.loads(args.arch_kwargs or "{}"))
    trained = (cfg.get("dataset") or {}).get("data_module")
    if str(args.source).endswith(".ckpt"):
        from ..data.read_as import checkpoint_data  # noqa: PLC0415
        from ..zoo.build import arch_kwargs  # noqa: PLC0415
        from ..zoo.weights import read_checkpoint  # noqa: PLC0415

        hp = read_checkpoint(args.source, "source").get("hyper_parameters") or {}
        arch, trained = hp.get("arch"), checkpoint_data(args.source)
        if arch is not None:
            kwargs = arch_kwargs(arch, num_classes=hp["num_classes"], in_channels=hp["in_channels"],
                                 max_len=hp.get("max_len"), model_kwargs=hp.get("model_kwargs"))
    if dm is not None:
        from ..data.file_record import RECORD, read_record  # noqa: PLC0415
        from .sparsify_cli import _data_spec  # noqa: PLC0415

        spec = _data_spec(args.data, dm, trained) if args.data is not None else trained
        # the training split the head was fitted on, as read: the file changed since (re-carved) is refused by explain
        record = read_record(dm)
        spec = {**spec, RECORD: record} if spec and record else spec
        meta |= {"neuroview.data": json.dumps(spec, sort_keys=True)} if spec else {}
        meta["neuroview.classes"] = json.dumps([str(c) for c in dm.class_names])  # what its outputs index
    if arch and not isinstance(std, (RNNClassifier, nn.RNNBase)) and getattr(net, "quantizer", None) is not None:
        meta["neuroview.architecture"] = f"nv_{arch}"
        meta["neuroview.arch_kwargs"] = json.dumps({**kwargs, "quantizer": net.quantizer}, sort_keys=True)
    return meta
