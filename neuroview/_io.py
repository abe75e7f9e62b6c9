"""Writing files so that a crash never leaves half of one where a good one was: the one place that writes through a
temporary and a rename. :func:`atomic_write` for a file, :func:`atomic_write_all` for files of one folder that belong
together, :func:`staged_dir` for a folder of them (a report), :func:`keep_aside` for a file a new one will take the place
of; :func:`safetensors_bytes` lays a tensor file out the same way every time. Two writers of one path: one wins whole.
A process killed (SIGKILL, SIGTERM: no handler runs) in one of these leaves what the next call finishes or undoes:
:func:`atomic_write_all` a journal beside its last file (:func:`recover`), :func:`staged_dir` temporary folders named
after their process (:func:`recover_dir`); a leftover of a writer that still runs (another thread's too) is never touched."""

from __future__ import annotations

import contextlib, errno, glob, hashlib, itertools, json, os, re, secrets, shutil, socket, stat, sys, tempfile, threading  # noqa: E401
from pathlib import Path
from typing import Iterator

MOVES = ".neuroview-moves.json"  # in a set-aside folder: which names a staged folder's move puts in place
NAME = re.compile(rf"(?!\.\.?\Z)[^\0{re.escape(os.sep + (os.altsep or ''))}]+")  # a file's, in a folder (not . or ..)
OWNER = re.compile(r"\d+-\d+-[0-9a-f]{8}")  # a process, as _owner() names it
JOURNAL = '{"owner": "<pid>-<start>-<host>" or null, "files": [[name, sha256, kept name or null, true or false], ...]}'
LISTED = '{"stage": its staging folder\'s name, "names": [file names, ...]}'  # a moves list
_LIVE, _RECOVERING = set(), threading.Lock()  # tokens of this process's staged_dir calls going on; one recover_dir at once

class Received(ValueError):
    """A crash-recovery record not as neuroview writes one (another shape, a name out of its folder, a link): copied."""

def atomic_write(path: Path, data: bytes, replace: bool = True) -> None:
    """Write ``data`` to a temporary file next to ``path``, then rename it into place: a crash leaves the old file or the
    new one, never half of one. ``replace=False``: a FileExistsError where a file is there then (one written since)."""
    (path := Path(path)).parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's private 0600 would hide a shared report from its readers
        with os.fdopen(fd, "wb") as f:
            f.write(data), f.flush(), os.fsync(f.fileno())  # on disk before the rename makes it the file
        if replace or not _link(tmp, path):  # a link fails with EEXIST at once where a file appeared: never replaced
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)

def _link(tmp: str, path: Path) -> bool:
    """``tmp`` linked as ``path``: True; a FileExistsError where a file is there; False: no hard links (then renamed)."""
    try:
        return os.link(tmp, path) is None
    except OSError as e:
        if isinstance(e, FileExistsError) or os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        return False

def keep_aside(path: Path) -> Path:
    """``path`` renamed ``<stem>-v<N><suffix>``, the first N >= 1 free (Lightning's versioning), and returned; the name
    made first, then ``path`` moved onto it: two calls at once never take one N. A kill between leaves it, empty."""
    folder = (path := Path(path)).is_dir() and not path.is_symlink()  # a folder kept as one, a link as the link
    for kept in (path.with_name(f"{path.stem}-v{n}{path.suffix}") for n in itertools.count(1)):
        with contextlib.suppress(FileExistsError):  # taken (a dangling link too), however recently: the next N
            os.mkdir(kept, 0o700) if folder else os.close(os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            made = os.lstat(kept)
            break
    try:
        os.replace(path, kept)  # not a link, then an unlink of ``path``: that removes a file written there between
    except BaseException:  # the name given back while it is the one made here, never what the move put there
        with contextlib.suppress(OSError):
            os.path.samestat(made, os.lstat(kept)) and (os.rmdir if folder else os.unlink)(kept)
        raise
    return kept

def atomic_write_all(files: dict[Path, bytes]) -> None:
    """Write files that belong together (tensors and their sidecar, weights and the manifest) as one, the last the
    commit point: the old set or the new, never a mix, on an error (Ctrl-C too) or a kill. Each earlier file is kept
    as a hard link beside it, each new one renamed into place (:func:`atomic_write`), the last last, then the links
    removed; a journal beside the last file (``.<name>.neuroview-journal``) lists all this first. An error undoes the
    call; a kill leaves the journal, for the next call or :func:`recover` to finish (the last file in place) or undo.
    The last file must name (by checksum) what the others hold, as a sidecar or a manifest does; all in one folder."""
    last = list(files := {Path(p): data for p, data in files.items()})[-1]
    if away := [str(p) for p in files if os.path.abspath(p.parent) != os.path.abspath(last.parent)]:  # before any write
        raise ValueError(f"files: expected files of one folder, the last one's ({str(last.parent)!r}), got {away}")
    last.parent.mkdir(parents=True, exist_ok=True)
    recover(last)
    token = secrets.token_hex(4)
    kept = {p: p.with_name(f".{p.name}.{token}.old") for p in list(files)[:-1] if os.path.lexists(p)}
    record = {"owner": _owner(), "files": [[p.name, hashlib.sha256(d).hexdigest(), kept[p].name if p in kept else None,
                                            os.path.lexists(p)] for p, d in files.items()]}
    for _ in range(3):  # another writer's journal there since recover() looked: recover again names it, or it ended
        with contextlib.suppress(FileExistsError):
            fd = _start_journal(journal := last.with_name(f".{last.name}.neuroview-journal"), record)
            break
        recover(last)
    else:
        raise FileExistsError(f"{last}: other writes of it keep starting (journal {journal}); try again when they end")
    try:
        for p, k in kept.items():
            _keep(p, k)
        for p, data in files.items():
            atomic_write(p, data)  # the last one: the commit point
    except BaseException as err:  # undone, unless the last file was in place already (a Ctrl-C as it returned)
        try:
            _settle(journal, record, done=_sha256(last) == record["files"][-1][1])
        except OSError as undo:  # the journal stays: the next call (or recover) finishes the undo
            getattr(err, "add_note", lambda _: None)(f"{last}: undoing this write failed too ({undo}); {journal.name} "
                                                     "beside it lets the next save, load or recover() finish the undo")
        raise
    else:
        _settle(journal, record, done=True)
    finally:
        os.close(fd)  # the journal's lock goes with it: only once the journal is gone, or left to be recovered

def _start_journal(journal: Path, record: dict) -> int:
    """Write ``record`` as the journal; its descriptor, returned, holds its lock until the write ends. The lock, not
    the pid named, tells that the writer runs: a pid is used again, is another pid namespace's or host's, or this
    process's (another thread). The whole, locked file is linked in (no hard links: an empty placeholder first), or a
    FileExistsError where another writer's journal is there."""
    while True:  # locked before a byte is in it: a settle removes a journal temp whose lock it gets (a killed writer's)
        fd, tmp = tempfile.mkstemp(dir=journal.parent, prefix=f"{journal.name}.", suffix=".tmp")
        if (got := _lock(fd, block=True)) is not True or _same_file(fd, Path(tmp)):  # else one did, before our lock
            break
        os.close(fd)
    record["locked"], made = got is True, False
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # readable as a file opened "x" would be: another user's reader checks it
        with open(fd, "wb", closefd=False) as f:  # buffered: written whole, or an error
            f.write(json.dumps(record).encode())
        os.fsync(fd)
        if not (made := _link(tmp, journal)):
            made = os.close(os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)) is None  # the placeholder
            os.rename(tmp, journal)
        Path(tmp).unlink(missing_ok=True)  # linked: the journal's name is enough
    except BaseException:
        os.close(fd)
        for q in (tmp, journal) if made else (tmp,):
            Path(q).unlink(missing_ok=True)
        raise
    return fd

def _keep(path: Path, kept: Path) -> None:
    """``path`` kept as ``kept`` too: a hard link, else a copy that appears whole or not at all (an undo puts it back)."""
    with contextlib.suppress(OSError):  # else a file system without hard links: a copy
        return os.link(path, kept, follow_symlinks=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copy2(path, tmp)
        os.rename(tmp, kept)
    finally:
        Path(tmp).unlink(missing_ok=True)  # renamed: gone already

def _lock(fd: int, block: bool = False) -> bool | None:
    """The exclusive lock of the open file ``fd``: True; False, another holds it; None, no locks here (no fcntl)."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
        return fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB)) is None
    except BlockingIOError:
        return False
    except (ImportError, OSError):  # not POSIX, or a file system that refuses locks
        return None

def recover(last: Path, busy_ok: bool = False) -> None:
    """Finish or undo what a killed :func:`atomic_write_all` whose last file is ``last`` left (its new set in place where
    the last file is new, else the earlier files back), its journal, links and temporary files removed. Where its
    writer runs (it holds the journal's lock; without locks, its pid says): nothing with ``busy_ok`` (a reader: the last
    file is whole), else a FileExistsError naming it. Only the lock's holder settles: no two calls undo each other."""
    journal = (last := Path(last)).with_name(f".{last.name}.neuroview-journal")
    try:
        fd = os.open(journal, os.O_RDWR if os.access(journal, os.W_OK) else os.O_RDONLY)  # NFS locks need write
    except FileNotFoundError:
        return
    try:
        got, record = _lock(fd), _journal_record(journal, os.pread(fd, 1 << 24, 0))
        if got is False and not busy_ok and record is not None and not _alive(record["owner"]):
            got = _lock(fd, block=True)  # its writer is gone: another call is settling it; wait for that one
        if got is not False and (record is None or not _same_file(fd, journal)):  # settled meanwhile: not ours
            if record is None and _same_file(fd, journal):  # the empty placeholder: nothing of the write done yet
                journal.unlink(missing_ok=True)
            return
        if got is False or (not (got and record.get("locked")) and _alive(record["owner"])):
            if busy_ok:
                return
            raise FileExistsError(f"{last}: process {(record or {}).get('owner', '?').split('-')[0]} is writing it now "
                                  f"(journal {journal}); try again when it ends, or delete {journal.name} if no such "
                                  "process runs")
        _settle(journal, record, done=_sha256(last) == record["files"][-1][1])  # its own name: never another
    finally:
        os.close(fd)

def _journal_record(journal: Path, text: bytes) -> dict | None:
    """``journal``'s record ``text``; None: the empty placeholder (:func:`_start_journal`); a Received: not ours."""
    if not text:
        return None
    record, shown = _json(text)
    rows, owner = (record.get("files"), record.get("owner", 0)) if isinstance(record, dict) else (None, 0)
    shaped = rows and isinstance(rows, list) and (owner is None or OWNER.fullmatch(str(owner))) and all(isinstance(
        f, list) and len(f) == 4 and all(map(isinstance, f, (str, str, (str, type(None)), bool))) for f in rows)
    if not shaped or (bad := [n for f in rows for n in ((f[0], f[2]) if f[2] else (f[0],)) if not NAME.fullmatch(n)]):
        raise Received(f"folder {str(journal.parent)!r}: {journal.name}, the journal of a killed write, " + (
            f"names files outside it: {bad!s:.300}" if shaped else f"is not as neuroview writes one: expected {JOURNAL}, "
            f"got {shown}") + "; nothing was changed (it came with a copied folder? delete it)")
    return record

def _json(text: bytes) -> tuple[object, str]:  # read as JSON (``...`` where not) and what a refusal shows of it
    try:
        return (record := json.loads(text.decode("utf-8"))), f"{json.dumps(record):.200}"  # as neuroview writes
    except (ValueError, RecursionError) as e:  # cut short or malformed, no UTF-8, nested past the reader
        return ..., f"{len(text)} bytes that are not readable JSON ({type(e).__name__}: {e!s:.100}): {text[:200]!r}"

def _same_file(fd: int | None, path: Path, other: Path | None = None) -> bool:
    """Whether ``path`` is the open file ``fd`` (or the file ``other``): the same inode, not equal bytes."""
    with contextlib.suppress(OSError):
        a, b = os.fstat(fd) if fd is not None else os.lstat(other), os.lstat(path)
        return (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)
    return False

def _settle(journal: Path, record: dict, done: bool) -> None:
    """The end of an :func:`atomic_write_all`: ``done``, the links to the earlier files go; else they are put back (a
    file that had none removed; one never replaced left); then its names' temporary files and the journal go."""
    root = journal.parent
    for name, _sha, kept, existed in record["files"][:-1]:
        if not done and kept and os.path.lexists(root / kept) and not _same_file(None, root / name, root / kept):
            with contextlib.suppress(FileNotFoundError):  # another recovery of the same journal got there first
                os.replace(root / kept, root / name)
        elif not done and not existed:
            (root / name).unlink(missing_ok=True)
        if kept:
            (root / kept).unlink(missing_ok=True)
    for tmp in (t for name, *_ in record["files"] for t in glob.glob(glob.escape(str(root / f".{name}.")) + "*.tmp")
                if ".neuroview-journal." not in os.path.basename(t)):  # another writer's journal, being written: never
        Path(tmp).unlink(missing_ok=True)  # atomic_write's own, where a kill left one
    for tmp in map(Path, glob.glob(glob.escape(str(journal)) + "." + "?" * 8 + ".tmp")):  # journal temps left by kills:
        with contextlib.suppress(OSError), open(tmp, "rb") as f:  # a running writer's is locked from its start: left
            if _same_file(None, tmp, journal) or _lock(f.fileno()) and _same_file(f.fileno(), tmp):  # the journal's own
                os.unlink(tmp)  # inode (killed between link and unlink), or unlocked: empty, cut short or whole
    journal.unlink(missing_ok=True)

def _sha256(path: Path) -> str | None:
    with contextlib.suppress(OSError), open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()  # the last file of a write: a sidecar or a manifest, read whole

def _owner() -> str:
    """This process, as its leftovers name it: ``<pid>-<start time>-<host>`` (a pid used again is another process)."""
    return f"{os.getpid()}-{_started(os.getpid())}-{hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]}"

def _started(pid: int) -> str:
    with contextlib.suppress(OSError, IndexError), open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()[19].decode()  # field 22: its start, in clock ticks after boot
    return "0"  # no /proc: unknown

def _alive(owner: str | None) -> bool:
    """Whether ``owner`` (:func:`_owner`) may run: another host's, yes; none (an earlier neuroview's), this process, no."""
    if owner is None:
        return False
    pid, start, host = owner.split("-")
    if host != _owner().rsplit("-", 1)[1]:
        return True
    try:
        with contextlib.suppress(PermissionError):  # another user's: it runs
            os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    return int(pid) != os.getpid() and _started(int(pid)) in (start, "0")

@contextlib.contextmanager
def staged_dir(path: Path, check=None) -> Iterator[Path]:
    """A temporary folder to write a set of files into; when the block ends, its files become ``path``'s. A new ``path``
    is the staging folder (made beside it) renamed into place. An existing folder (or one another process made meanwhile)
    keeps its identity (inode, owner, mode: a mount point cannot be swapped by a rename): the block writes into a hidden
    folder beside it (inside it only where the parent is not writable or another file system, or ``path`` is setgid, so
    that its files take its group: :func:`_home`), whose files are moved in, each namesake set aside, after a list of them
    is written; its other files stay. When the block raises, or the moves are interrupted, all is put back, the temporary
    folders and any parent made for them (still empty) removed. A killed process leaves its temporary folders, named after
    it, for the next call (or :func:`recover_dir`) to undo. A symlink to a folder is written through; a ``path`` that
    cannot be a folder is a ValueError. ``check(path)``: entered around the moves (a lock; a refusal: nothing moved)."""
    recover_dir(path := _folder(Path(path)))
    made, new = [p for p in reversed(path.parents) if not p.exists()], not path.is_dir()
    path.parent.mkdir(parents=True, exist_ok=True)
    home, token = path.parent if new else _home(path), secrets.token_hex(8)
    _LIVE.add(token)  # before its folders are made: another thread's recover_dir leaves them (named with it)
    tmp = _mkdtemp(path, home, "stage", token)
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's private 0700 would hide a new folder from its readers
        try:
            new = new and os.replace(tmp, path) is None
        except OSError as e:  # ENOTEMPTY, EEXIST: another process made the folder meanwhile; moved into as one that was
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            new = False
        if not new:
            with check(path) if check else contextlib.nullcontext():
                _move_in(tmp, path, home, token)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in reversed(made):  # only while empty: another process may have written into it since
            with contextlib.suppress(OSError):
                p.rmdir()
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _LIVE.discard(token)  # its folders gone: one a kill or an error left is the next call's to undo

def _home(path: Path) -> Path:
    """Where an existing folder ``path``'s stage goes: beside it (a killed run leaves nothing in it); inside it only where
    the parent is not writable or another file system, or ``path`` is setgid (BSD, macOS: of another group than its
    parent), so that its files take its group: on Linux a folder that is not setgid gives new files none."""
    up, at = os.stat(parent := path.parent), os.stat(path)  # BSD, macOS: every folder gives new files its group
    ok = parent != path and os.access(parent, os.W_OK | os.X_OK) and not at.st_mode & stat.S_ISGID and up.st_dev == at.st_dev
    return parent if ok and (up.st_gid == at.st_gid or not ("bsd" in sys.platform or sys.platform == "darwin")) else path

def _mkdtemp(path: Path, home: Path, kind: str, token: str) -> Path:
    prefix = f"{'' if home == path else '.' + path.name}.neuroview-{kind}.{_owner()}.{token}."  # this process, this call
    return Path(tempfile.mkdtemp(".tmp", prefix, home))

def recover_dir(path: Path) -> None:
    """The folder ``path`` as it was before a killed :func:`staged_dir` (its moves undone, its temporary folders beside
    ``path`` and inside it removed); a running writer's (a thread's too) left alone, an earlier neuroview's not."""
    with _RECOVERING:
        _recover_dir(Path(os.path.realpath(path)))

def _recover_dir(path: Path) -> None:
    homes = ((path.parent, "." + path.name), (path, "")) if path.parent != path else ()
    found = [(home / n, m[1], m[2]) for home, prefix in homes if home.is_dir() for n in os.listdir(home)
             if (m := re.fullmatch(re.escape(prefix) + rf"\.neuroview-(stage|old)\.(?:({OWNER.pattern})\.)?[^/]+\.tmp", n))]
    if links := [str(f) for f, *_ in found if os.path.realpath(f) != str(f)]:  # neuroview makes none: a copied folder's
        raise Received(f"folder {str(path)!r}: expected a killed write's temporary folders to be folders, got links "
                       f"{links}; nothing was moved (came with a copied folder? delete them)")
    found = [(f, _moves(path, f) if kind == "old" else None)  # each moves list checked before any is undone
             for f, kind, owner in sorted(found, key=lambda f: f[1] != "old") if not _alive(owner)  # nor a thread's:
             and not any(f".{t}." in f.name for t in set(_LIVE)) and f.is_dir()]  # its token, added before its folders
    for folder, moves in found:
        if moves is not None:
            _move_back(path, moves[0], folder, moves[1])
        shutil.rmtree(folder, ignore_errors=True)

def _moves(path: Path, old: Path) -> tuple[Path | None, list[str]]:
    """The stage and names ``path``'s set-aside folder ``old`` lists, checked: a :class:`Received` if a copied one."""
    record, shown = _json((old / MOVES).read_bytes()) if MOVES in (listed := os.listdir(old)) else (..., "")
    if MOVES not in listed or record is ... and listed == [MOVES]:  # no list (an earlier neuroview's: its namesakes put
        return None, [n for n in listed if n != MOVES]  # back), or no JSON but nothing moved yet: cut short as written
    names, stage = (record.get("names"), record.get("stage")) if isinstance(record, dict) else (None, None)
    shaped = isinstance(stage, str) and stage and isinstance(names, list) and all(isinstance(n, str) for n in names)
    new, bad = (old.parent / stage, [n for n in names if not NAME.fullmatch(n)]) if shaped else (None, [])
    if not shaped or bad or new.parent != old.parent or ".neuroview-stage." not in new.name or new.is_symlink():
        raise Received(f"folder {str(path)!r}: the set-aside folder {str(old)!r}, left by a killed write, " + (
            f"names files outside it: {bad!s:.300}" if bad else f"names as its staging folder {str(new)!r}, which is no "
            ".neuroview-stage.*.tmp folder beside it" if shaped else f"has a {MOVES} not as neuroview writes one: expected"
            f" {LISTED}, got {shown}") + "; nothing was moved (came with a copied folder? delete it)")
    return new, names

def _folder(path: Path) -> Path:
    """``path`` with its symlinks resolved; a ValueError where something not a folder stands in its way."""
    real = Path(os.path.realpath(path))
    for p in (path, *path.parents, real, *real.parents):  # as given first: the message names what the user wrote
        if os.path.lexists(p) and not p.is_dir():
            raise ValueError(f"folder {str(path)!r}: expected a folder or a new path to make one at, "
                             f"got {str(p)!r} in the way, which is not a folder")
    return real

def _move_in(new: Path, path: Path, home: Path, token: str) -> None:
    """Every entry of ``new`` moved into ``path`` (one file system), each namesake set aside in a hidden folder in
    ``home`` that lists the names first (:func:`recover_dir`); an error moves back those moved; all in, that folder goes."""
    names, done, old = sorted(os.listdir(new)), 0, _mkdtemp(path, home, "old", token)
    try:
        with open(old / MOVES, "x", encoding="utf-8") as f:
            f.write(json.dumps({"stage": new.name, "names": names})), f.flush(), os.fsync(f.fileno())
        for done, name in enumerate(names, 1):
            if os.path.lexists(path / name):
                os.replace(path / name, old / name)
            os.replace(new / name, path / name)
    except BaseException:  # the names not reached yet are none of this call's, whatever the stage holds
        _move_back(path, new, old, names[:done])
        (old / MOVES).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            old.rmdir()  # only while empty: never what a failed move back left in it
        raise
    head, _, tail = old.name.rpartition(".neuroview-old.")  # the last: only a process's name and mkdtemp's after it
    with contextlib.suppress(OSError):  # a stage (a kill in the rmtree keeps the new files); a name no mkdtemp gives
        old = old.rename(old.with_name(f"{head}.neuroview-stage.{tail[:-len('.tmp')]}.done.tmp"))
    shutil.rmtree(old, ignore_errors=True)

def _move_back(path: Path, new: Path | None, old: Path, names: list[str]) -> None:
    """Undo :func:`_move_in`'s moves of ``names`` from ``new`` into ``path``: each one moved in taken out (back into
    ``new``; removed where there is none), each namesake in ``old`` put back (a list read from disk: :func:`_moves`)."""
    for name in reversed(names):
        if os.path.lexists(path / name) and (os.path.lexists(old / name) or new is None or not os.path.lexists(new / name)):
            if new is not None and new.is_dir():
                os.replace(path / name, new / name)
            elif (path / name).is_dir() and not (path / name).is_symlink():
                shutil.rmtree(path / name)
            else:
                (path / name).unlink()
        if os.path.lexists(old / name):
            os.replace(old / name, path / name)

def _umask() -> int:
    return (mask := os.umask(0), os.umask(mask))[0]  # read, and set back

def safetensors_bytes(tensors: dict, metadata: dict | None = None) -> bytes:
    """``safetensors.torch.save(tensors, metadata)``, its header's keys sorted (safetensors' own order made the same
    network saved twice two files, two sha256s); the tensors' bytes and offsets are safetensors', the padding too."""
    from safetensors.torch import save  # noqa: PLC0415 - only when saving
    header = json.loads((data := save(tensors, metadata=metadata))[8:8 + (n := int.from_bytes(data[:8], "little"))])
    meta = header.pop("__metadata__", None)
    ordered = {**({"__metadata__": dict(sorted(meta.items()))} if meta is not None else {}), **dict(sorted(header.items()))}
    text = (t := json.dumps(ordered, separators=(",", ":")).encode()).ljust(len(t) + -len(t) % 8)  # spaces
    return b"".join((len(text).to_bytes(8, "little"), text, memoryview(data)[8 + n:]))  # no copy of the tensors' part
