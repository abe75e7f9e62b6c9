"""What a command that writes zoo entries into ``--out`` (``neuroview sparsify``, ``minirocket``, ``retrofit --out``)
says where its final save fails after the work: the folder became unwritable or the disk filled (:func:`not_written`),
or another run into the same folder wrote an entry of the same name meanwhile (:func:`written_meanwhile`).

May import the zoo (inside the functions: it is read only where a save failed).
"""

from __future__ import annotations

__all__ = ["not_written", "written_meanwhile"]


def not_written(out: str, e: OSError) -> str:
    """The refusal of a command whose final save into ``--out`` failed (checked writable before the work: it became
    unwritable, or the disk filled, since); the export writes as one, so the folder's earlier files stay as they were.
    The advice by the error's number: a name too long, a folder or file that cannot be written, a disk full."""
    import errno  # noqa: PLC0415

    advice = ("pick a shorter --out" if e.errno == errno.ENAMETOOLONG else
              "free the disk" if e.errno in (errno.ENOSPC, errno.EDQUOT) else
              "make the folder writable (and an earlier file it replaces replaceable), or pick another --out"
              if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else
              "free the disk or make the folder writable")
    return (f"out: could not write into {out!r} ({type(e).__name__}: {e}); the result was not saved, and what --out held "
            f"before was left as it was: {advice}, and run the command again")


def written_meanwhile(out: str, names: list[str], rename: str) -> str | None:
    """The refusal of a command whose entries ``names`` were free in ``--out`` when it started (refused before the work
    otherwise, without ``--overwrite``) and are held when it saves: another run into the same folder wrote them while
    this one worked, and the save refused to replace them. ``rename``: the option that gives this run's entries names of
    their own. None where ``out`` holds none of them (the save failed otherwise)."""
    from ..zoo.pretrained import read_manifest  # noqa: PLC0415

    try:
        held = [n for n in names if n in read_manifest(out)]
    except (ValueError, OSError):  # a manifest that cannot be read now: the save's own error says more
        return None
    if not held:
        return None
    return (f"out: {out} now holds {', '.join(held)}, written by another run into the same folder while this one worked; "
            f"that run's {'entries were' if len(held) > 1 else 'entry was'} kept and this run's result was not saved: run "
            f"the command again with {rename}, or with another --out, or with --overwrite to replace "
            f"{'them' if len(held) > 1 else 'that entry'}")
