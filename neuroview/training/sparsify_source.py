"""The source ``neuroview sparsify`` is given, checked before it is read (moved out of :mod:`.sparsify_cli`, at its
size): a weight file, a folder (a run's, a zoo's) or a ``--zoo`` that is no zoo folder, each refused by name; they were
looked up as a zoo entry's name ("unknown model 'run'; did you mean ['rnn', 'gru']?").

May import ``neuroview.zoo`` and :mod:`.ckpt_file` (inside the functions: the command imports them when it runs).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["WEIGHT_FILES", "check_source"]

# weight files without the data or the model a checkpoint records; their suffixes in any case
WEIGHT_FILES = (".safetensors", ".pt", ".pth", ".bin")


def check_source(source: str, zoo: str | None) -> None:
    """A weight file (what ``retrofit --out`` writes), a folder, or a ``--zoo`` that is no zoo folder, refused by name:
    each was looked up as an entry of a manifest.json that is not there, and sent the user to ``neuroview zoo``."""
    from ..zoo.files import expand  # noqa: PLC0415

    if Path(source).suffix.lower() in WEIGHT_FILES:  # W.SAFETENSORS, a torch.save'd w.pt: no entry's name either
        raise ValueError(f"source: expected a zoo entry name or a `neuroview fit` checkpoint (.ckpt), got {source!r}: a "
                         "weight file (what `retrofit --out` writes, a saved state dict) records no data to sparsify "
                         "on; train it into a "
                         f"checkpoint with `neuroview fit --config recipes/<nv recipe>.yaml --model.init_weights {source}`, "
                         "or explain it as it is with `neuroview explain --model <architecture> --weights FILE`")
    if zoo and not (expand(zoo) / "manifest.json").is_file():
        folder = expand(zoo)
        why = ("a file, not a folder" if folder.is_file() else "no manifest.json in it" if folder.is_dir()
               else "no such folder")
        raise FileNotFoundError(f"--zoo: expected a zoo folder (a manifest.json and its entries: what `neuroview "
                                f"sparsify --out` or `minirocket --out` wrote), got {zoo!r} ({why})")
    _check_folder(source, zoo)


def _check_folder(source: str, zoo: str | None) -> None:
    """A folder (a run's, its ``checkpoints/``, a zoo's) said as one, with the ``.ckpt`` in it to name; one named as a
    zoo entry is that entry's name (sparsify reads no folder: an ``explain --out`` of that name is left alone)."""
    from ..zoo.pretrained import get_entry  # noqa: PLC0415
    from .ckpt_file import not_a_file  # noqa: PLC0415

    path = Path(source)
    if not path.is_dir():
        return
    try:
        get_entry(source, zoo)
        return
    except (ValueError, OSError):
        pass
    zoo_folder = (f"; a zoo folder: name one of its entries with --zoo {source} (`neuroview zoo --root {source}` "
                  "lists them)") if (path / "manifest.json").is_file() else ""
    raise ValueError(f"source: expected a zoo entry name or a `neuroview fit` checkpoint file (.ckpt), got {source!r} "
                     f"{not_a_file(path)}{zoo_folder}")
