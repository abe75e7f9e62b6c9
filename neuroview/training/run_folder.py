"""One live ``neuroview fit`` a checkpoint folder: :func:`claim_folder` marks the folder as this run's for as long as it
fits (a marker beside it naming this process), and refuses a folder that another live run marked, by name; a marker of
a run that is gone (killed, or its machine restarted) is taken over. Two runs into one ``default_root_dir`` at once
lost one run's checkpoints: the second set the first's live ``last.ckpt`` aside as "the earlier run's" and wrote its
own over the one the first went on saving. May import ``neuroview._io``; nothing else of neuroview.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from .._io import _alive, _owner

__all__ = ["claim_folder", "marker_of", "release_folder"]


def marker_of(dirpath) -> Path:
    """The marker of the checkpoint folder ``dirpath``: beside it, not in it (the folder holds checkpoints only, and a
    killed run's marker would stay among them)."""
    folder = Path(os.path.realpath(str(dirpath)))
    return folder.with_name(f".{folder.name}.neuroview-fit")


def claim_folder(dirpath, root=None) -> Path | None:
    """Mark the checkpoint folder ``dirpath`` as this process's; the marker, which :func:`release_folder` removes.
    A ValueError naming ``--trainer.default_root_dir`` (``root``; ``--checkpoint.dirpath`` where the folder is not
    ``<root>/checkpoints``) where another live run holds it. None where the marker cannot be written (a read-only
    folder: the checkpoints cannot be either, and Lightning names that)."""
    marker = marker_of(dirpath)
    owner = _owner()
    for _ in range(3):
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            _write_new(marker, owner)
            return marker
        except FileExistsError:
            held = _read(marker)
            if held is not None and held != owner and _alive(held):
                raise ValueError(_busy(dirpath, root, held)) from None
            if held is None and _recent(marker):
                time.sleep(0.5)
                continue  # another run writing its marker this instant (its name before its text)
            with contextlib.suppress(FileNotFoundError):
                marker.unlink()  # a run that is gone (killed), or this process's own from a fit that did not end
        except OSError:
            return None
    raise ValueError(_busy(dirpath, root, _read(marker) or "unknown"))


def release_folder(marker: Path | None) -> None:
    """Remove ``marker`` where it is still this process's (None: nothing claimed). Returns None."""
    if marker is not None and _read(marker) == _owner():
        with contextlib.suppress(OSError):
            marker.unlink()
    return None


def _write_new(marker: Path, owner: str) -> None:
    """``marker`` made with the text ``owner``, whole: a FileExistsError where a marker is there. The text is written
    to a file of this process's first, then linked in (no reader sees a marker without its owner)."""
    own = marker.with_name(f"{marker.name}.{os.getpid()}.new")
    own.write_text(owner)
    try:
        os.link(own, marker)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system: made, then written
        with open(marker, "x") as f:
            f.write(owner)
    finally:
        with contextlib.suppress(OSError):
            own.unlink()


def _read(marker: Path) -> str | None:
    try:
        text = marker.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if text.count("-") == 2 and text.split("-", 1)[0].isdigit() else None


def _recent(marker: Path) -> bool:
    try:
        return time.time() - marker.stat().st_mtime < 2.0
    except OSError:
        return False


def _busy(dirpath, root, held: str) -> str:
    pid = held.split("-", 1)[0]
    default = root is not None and os.path.realpath(os.path.join(str(root), "checkpoints")) == os.path.realpath(str(dirpath))
    option = "--trainer.default_root_dir" if default or root is None else "--checkpoint.dirpath"
    where = f"{root} (its checkpoint folder {dirpath})" if default else str(dirpath)
    return (f"{option.lstrip('-')}: another `neuroview fit` (pid {pid}) is writing its checkpoints in {where}: this run "
            f"would set that run's last.ckpt aside as an earlier run's and write its own over the one that run goes on "
            f"saving. Give this run a folder of its own ({option} DIR), or start it when that run has ended")
