"""One live ``neuroview fit`` a checkpoint folder: :func:`claim_folder` marks the folder as this run's for as long as it
fits (a marker beside it naming this process, locked by it), and refuses a folder that another live run marked, by
name; a marker of a run that is gone (killed, its container or node restarted) is taken over. Two runs into one
``default_root_dir`` at once lost one run's checkpoints: the second set the first's live ``last.ckpt`` aside as "the
earlier run's" and wrote its own over the one the first went on saving. May import ``neuroview._io``; nothing else of
neuroview.

The marker's lock (``flock``, as ``_io``'s journal), not the pid it names, tells that its run goes on: a pid is used
again, or is another host's (a container, a SLURM node, a pod: a run there killed held the folder for good, its pid
"alive" forever). The lock goes with the process, however it ends. Only a marker written without a lock (a file system
that refuses locks, a neuroview before the lock) is judged by its pid, and another host's such marker is refused,
naming the host, the pid there and the marker to delete. A stale marker is taken over by the one process that holds
its lock, and only while it is still the marker's file: two fits over a killed run's marker cannot both take it.

Within one process (fits in two threads, two trainers of a notebook) the claims it holds say which is live: a fit in
another thread that still runs keeps its claim, and a second fit there is refused by name as another process's is (it
was let in, set the live run's ``last.ckpt`` aside and removed its marker); a claim of this thread, or of a thread that
ended, that was never released (its fit dropped) goes to the next fit here. A claim is released once. A claim cut short
(an error, a Ctrl-C) removes the marker it made and drops its lock (kept, they refused this process's later fits).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._io import _alive, _lock, _owner, _same_file

__all__ = ["Claim", "claim_folder", "marker_of", "release_folder"]

_HELD: dict[str, "Claim"] = {}  # this process's claims by marker: a fit that runs, or one that never released
_HOLDING = threading.RLock()  # this process's claims and releases one at a time: each sees _HELD as it is


@dataclass
class Claim:
    """A folder claimed: its ``marker``, and the open file ``fd`` whose lock says the run goes on (None: no lock), by
    the fit of ``thread``; ``released`` once :func:`release_folder` ended it (its ``fd`` closed, its number free)."""

    marker: Path
    fd: int | None
    owner: str
    thread: threading.Thread = field(default_factory=threading.current_thread, repr=False, compare=False)
    released: bool = False


def marker_of(dirpath) -> Path:
    """The marker of the checkpoint folder ``dirpath``: beside it, not in it (the folder holds checkpoints only, and a
    killed run's marker would stay among them)."""
    folder = Path(os.path.realpath(str(dirpath)))
    return folder.with_name(f".{folder.name}.neuroview-fit")


def claim_folder(dirpath, root=None, resume: bool = False) -> Claim | None:
    """Mark the checkpoint folder ``dirpath`` as this process's; the claim, which :func:`release_folder` ends.
    A ValueError naming ``--trainer.default_root_dir`` (``root``; ``--checkpoint.dirpath`` where the folder is not
    ``<root>/checkpoints``) where another live run holds it (``resume``: this run resumes, ``--ckpt_path``). None
    where the marker cannot be written (a read-only folder: the checkpoints cannot be either, and Lightning names
    that)."""
    marker = marker_of(dirpath)
    with _HOLDING:
        _earlier_claim(dirpath, root, marker, resume)
        return _claim(dirpath, root, marker, resume)


def _claim(dirpath, root, marker: Path, resume: bool) -> Claim | None:
    for _ in range(20):
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            claim = _write_new(marker)
        except FileExistsError:
            held = _judge(marker)
            if held is None:
                continue  # gone, or taken over by this process: try again
            if held is not True:
                raise ValueError(_busy(dirpath, root, marker, *held, resume)) from None
            continue
        except OSError:
            return None
        return claim  # in _HELD already (_write_new): a Ctrl-C from here on leaves it to the next fit of this thread
    raise ValueError(_busy(dirpath, root, marker, _record(marker), "keeps changing", resume))


def _earlier_claim(dirpath, root, marker: Path, resume: bool) -> None:
    """This process's claim of ``marker`` before this one: refused by name where the fit of another thread that still
    runs holds it (its marker still its own); else released (a fit of this thread or of an ended one, never released)."""
    held = _HELD.get(str(marker))
    if held is None:
        return
    own = _same_file(held.fd, marker) if held.fd is not None else (_record(marker) or {}).get("owner") == held.owner
    if own and held.thread is not threading.current_thread() and held.thread.is_alive():
        raise ValueError(_busy(dirpath, root, marker, _record(marker), "this process", resume))
    release_folder(held)


def release_folder(claim: Claim | None) -> None:
    """Remove ``claim``'s marker where it is still this claim's, and drop its lock (None: nothing claimed); a claim
    released already is left (its descriptor's number may be another file's by now). Returns None."""
    if claim is None:
        return None
    with _HOLDING:
        if claim.released:
            return None
        claim.released = True
        if _HELD.get(str(claim.marker)) is claim:
            del _HELD[str(claim.marker)]
        if (claim.fd is None or _same_file(claim.fd, claim.marker)) and (_record(claim.marker) or {}).get("owner") == claim.owner:
            with contextlib.suppress(OSError):
                claim.marker.unlink()  # still locked: no other process removes or takes it meanwhile
        if claim.fd is not None:
            with contextlib.suppress(OSError):
                os.close(claim.fd)
    return None


def _write_new(marker: Path) -> Claim:
    """``marker`` made, whole and locked, naming this process, and its claim held (in ``_HELD``): a FileExistsError
    where a marker is there. The text is written to a file of this process's, locked, then linked in: no reader sees a
    marker without its owner, or unlocked while its run goes on. An error or a Ctrl-C on the way removes the marker
    made (only while it is still the file this call holds: never another's) and closes its descriptor: an interrupted
    claim held the folder, by a lock no one released, until the process ended."""
    own, owner, fd = marker.with_name(f"{marker.name}.{os.getpid()}-{secrets.token_hex(4)}.new"), _owner(), None
    try:
        try:
            fd = _locked_new(own, owner)
            try:
                os.link(own, marker)
            except FileExistsError:
                raise
            except OSError:  # no hard links on this file system: made (an empty one, a moment), then written and locked
                closing, fd = fd, None  # None first: a Ctrl-C between never closes the number twice (another's by then)
                os.close(closing)
                fd = _locked_new(marker, owner)
        finally:
            with contextlib.suppress(OSError):
                own.unlink()
        locked = json.loads(os.pread(fd, 4096, 0))["locked"]
        claim = _HELD[str(marker)] = Claim(marker, fd if locked else None, owner)
    except BaseException:
        if fd is not None:
            if _same_file(fd, marker):  # the marker this call made, still there: locked by fd, no other took it
                with contextlib.suppress(OSError):
                    marker.unlink()
            with contextlib.suppress(OSError):
                os.close(fd)
        raise
    if claim.fd is None:  # no lock on it to keep (a file system without locks): its owner tells it is this run's
        os.close(fd)
    return claim


def _locked_new(path: Path, owner: str) -> int:
    """``path`` made (a FileExistsError where it is there), locked where locks work, and written: its descriptor. An
    error or a Ctrl-C on the way removes it (while it is still the file made) and closes the descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        locked = _lock(fd) is True
        os.write(fd, json.dumps({"owner": owner, "host": socket.gethostname(), "locked": locked}).encode())
    except BaseException:
        if _same_file(fd, path):
            with contextlib.suppress(OSError):
                path.unlink()
        os.close(fd)
        raise
    return fd


def _judge(marker: Path):
    """Another's ``marker`` judged: None, gone or taken over now (claim again); True, being written or taken over by
    another process this instant (look again); else ``(record, why)`` of a live run (or one that cannot be told)."""
    try:
        fd = os.open(marker, os.O_RDWR if os.access(marker, os.W_OK) else os.O_RDONLY)  # NFS locks need write
    except FileNotFoundError:
        return None
    try:
        for _ in range(10):  # a holder taking a stale marker over holds its lock a moment only
            got = _lock(fd)
            if not _same_file(fd, marker):
                return None  # removed (or another marker put there) since it was opened
            if got is not False:
                break
            time.sleep(0.2)
        record = _record(marker)
        if got is False and record is not None and record["owner"] == _owner():  # a claim of this process not held
            return record, "this process"  # as one (a descriptor left by an interrupted claim), or being released
        if got is False:
            return record, "running" if record is None or _mine(record) is False or _alive(record["owner"]) else "held"
        if record is None:
            if _recent(marker):
                time.sleep(0.5)
                return True  # another run writing its marker this instant, without hard links
        elif got is None or not record.get("locked"):  # no lock to tell by: its pid does, on its own host only
            if _mine(record) is False:
                return record, "unlocked"
            if _alive(record["owner"]):
                return record, "running"
        marker.unlink()  # locked by this process and still this file: no other removes or takes it meanwhile
        return None
    finally:
        os.close(fd)


def _mine(record: dict) -> bool:
    """Whether ``record``'s run was of this host (by the host part of its owner)."""
    return record["owner"].rsplit("-", 1)[1] == _owner().rsplit("-", 1)[1]


def _record(marker: Path) -> dict | None:
    """``marker``'s record: ``{"owner", "host", "locked"}`` (a marker of 788fd90's: its owner text, unlocked)."""
    try:
        text = marker.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        got = json.loads(text)
    except ValueError:
        got = {"owner": text, "locked": False}  # 788fd90's marker: its owner's text alone, written without a lock
    owner = got.get("owner") if isinstance(got, dict) else None
    if not (isinstance(owner, str) and owner.count("-") == 2 and owner.split("-", 1)[0].isdigit()):
        return None
    return got


def _recent(marker: Path) -> bool:
    try:
        return time.time() - marker.stat().st_mtime < 2.0
    except OSError:
        return False


def _busy(dirpath, root, marker: Path, record: dict | None, why: str, resume: bool) -> str:
    """The refusal: the run holding the folder by its pid and host, the marker, and what to do (a resume: when that run
    ended, or the marker deleted where no such run goes on)."""
    default = root is not None and os.path.realpath(os.path.join(str(root), "checkpoints")) == os.path.realpath(str(dirpath))
    option = "--trainer.default_root_dir" if default or root is None else "--checkpoint.dirpath"
    where = f"{root} (its checkpoint folder {dirpath})" if default else str(dirpath)
    pid = (record or {}).get("owner", "?").split("-", 1)[0]
    here = record is not None and _mine(record)
    host = "this host" if here else f"host {(record or {}).get('host') or 'unknown (its marker names it by a hash)'}"
    who = {"running": f"pid {pid} on {host}, running: it holds the marker's lock" if here or record is None else
                      f"pid {pid} on {host}: it holds the marker's lock",
           "this process": f"pid {pid} on this host: this process, a fit in another thread still running, or one here "
                           "interrupted before it let the folder go",
           "held": f"pid {pid} on {host} has ended, and a process still holds the marker's lock: a data loader "
                   "worker of it, or another fit taking the folder over",
           "unlocked": f"pid {pid} on {host}, which this host cannot check: its marker has no lock",
           "keeps changing": "its marker keeps changing"}[why]
    what = ("this resume would write its checkpoints over the ones that run goes on saving. Resume when that run has "
            "ended" if resume else f"this run would set that run's last.ckpt aside as an earlier run's and write its "
            f"own over the one that run goes on saving. Give this run a folder of its own ({option} DIR), or start it "
            "when that run has ended")
    return (f"{option.lstrip('-')}: another `neuroview fit` ({who}) is writing its checkpoints in {where}; its marker is "
            f"{marker}: {what}. If that run is no longer running, delete {marker} and run this again")
