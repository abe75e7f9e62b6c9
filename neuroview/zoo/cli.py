"""``neuroview zoo``: the trained zoo entries as a table, their checks, or the registered architectures.

May import the rest of ``neuroview.zoo`` (``.api``, ``.pretrained``); nothing above it.
"""

from __future__ import annotations

import argparse
import sys

from .api import list_models
from ._entry_fields import shown, shown_number
from .pretrained import MissingZooError, checkpoints_dir, matching, read_manifest, verify_entry

__all__ = ["main", "format_table"]


def format_table(entries: dict[str, dict]) -> str:
    """One row per entry. ``recipe``: ``path@commit`` for an entry trained with the file as it was at that
    commit. ``units/class``: the features each class's logit reads (nonzero weights);
    ``k90``: the median over the test split of how many contributions make up 90% of a decision's
    evidence (against the training mean code; RNNs: hidden states, and time steps in brackets)."""
    rows = [("name", "dataset", "params", "test acc", "units/class", "k90", "recipe")]
    for name, e in sorted(entries.items()):  # a field of another kind (an older, hand-edited manifest): "?"
        if not isinstance(e, dict):  # the entry itself (a note in its place): a row of "?", the others listed
            rows.append((shown(name), *["?"] * 6))
            continue
        m = e.get("metrics") if isinstance(e.get("metrics"), dict) else {}
        acc, k90, upc, steps = m.get("test_acc"), m.get("k90"), m.get("units_per_class"), m.get("k90_steps")
        data = e.get("dataset", {})
        rows.append((shown(name), shown(data.get("name") if isinstance(data, dict) else None),
                     shown_number(e.get("num_params"), ","), shown_number(acc, ".1f", 100, "%"), shown_number(upc, ",.1f"),
                     shown_number(k90, "g") + ("" if steps is None or k90 is None else f" ({shown_number(steps, 'g')} steps)"),
                     _recipe(e)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = (2, 3, 4, 5)
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _recipe(entry: dict) -> str:
    """The recipe an entry was trained with, ``path@commit`` where the file has changed since (``git show`` reads it)."""
    training, recipe = entry.get("training"), entry.get("recipe")
    commit = training.get("recipe_commit") if isinstance(training, dict) else None
    return (shown(recipe) if recipe else "-") + (f"@{shown(commit)}" if commit and isinstance(recipe, str) else "")


def main(argv: list[str] | None = None) -> int:
    """``neuroview zoo [--verify] [--architectures] [pattern]``."""
    p = argparse.ArgumentParser(allow_abbrev=False, prog="neuroview zoo", description="The trained zoo entries: dataset, parameter count, test accuracy, units per class and k90 "
                                "(how many contributions make up 90% of a decision).")
    p.add_argument("pattern", nargs="?", default=None, help="glob over entry names, e.g. 'nv_*' or '*.gunpoint'; "
                   "an architecture ('nv_gru') lists its entries")
    p.add_argument("--verify", action="store_true", help="also check every entry's hash, architecture and parameter count")
    p.add_argument("--architectures", action="store_true", help="list the registered architectures instead")
    p.add_argument("--root", default=None, help="checkpoint folder (default: $NEUROVIEW_CHECKPOINTS, else the installed zoo)")
    args = p.parse_args(argv)
    if args.architectures:
        return _architectures(args)
    if _not_a_folder(args.root):  # a typo must not read as an empty zoo
        return 2  # a refused input, as every command's (a failed verification: 1)
    try:
        entries = read_manifest(args.root)
    except (MissingZooError, ValueError) as e:  # an install without its checkpoints, or a folder that is no zoo
        print(f"neuroview zoo: {e}", file=sys.stderr)
        return 2
    # the names from that one reading: an export into the folder between two readings listed a name the table lacked
    names = matching(sorted(entries), args.pattern)  # list_models(pattern, pretrained=True)'s rule: 'nv_gru' lists its entries
    if not names:
        print(f"no trained entries{' matching ' + repr(args.pattern) if args.pattern else ''} in {checkpoints_dir(args.root)}"
              + _held(entries), file=sys.stderr if args.verify else sys.stdout)
        return 1 if args.verify else 0  # --verify that verified nothing must not pass
    print(format_table({n: entries[n] for n in names}))
    return _verify(names, args.root) if args.verify else 0


def _held(entries: dict[str, dict]) -> str:
    """What a zoo holds, said where a pattern matched none of it: an empty answer read as "no such entries"."""
    archs = sorted({n.split(".", 1)[0] for n in entries})
    return (f"; it holds {len(entries)} entries of {len(archs)} architectures: {', '.join(archs)} (a pattern is a glob "
            "over entry names: 'nv_gru' lists an architecture's, 'nv_*' the NeuroView ones, '*.gunpoint' a data set's)") if entries else ""


def _architectures(args) -> int:
    """``--architectures``: the registered names. --verify checks trained entries, which it lists none of (dropped,
    a --verify that checked nothing passed); a --root that is no folder is refused as everywhere (a valid one is
    unread: the architectures are the installed library's)."""
    if args.verify:
        print("neuroview zoo: --verify: checks the trained entries, not the registered architectures that "
              "--architectures lists; drop one of --verify and --architectures", file=sys.stderr)
        return 2  # a refused input, as every command's
    if _not_a_folder(args.root):  # a typo must not pass unseen
        return 2
    names = list_models(args.pattern)
    print("\n".join(names) if names else f"no architectures matching {args.pattern!r}")
    return 0  # as a listing of no trained entries: only a --verify that verified nothing fails


def _not_a_folder(root: str | None) -> bool:
    """Whether ``--root`` was given and is no folder, said on stderr: missing, or a file (``manifest.json`` given for
    its folder was said to be "no such folder"). The folder is the one the zoo reads (:func:`checkpoints_dir`: a
    quoted ``'~/zoo'`` is the home folder's), and the message names it so."""
    if root is None or (folder := checkpoints_dir(root)).is_dir():
        return False
    why = "a file, not a folder" if folder.exists() else "no such folder"
    print(f"neuroview zoo: --root: expected a checkpoint folder, got {str(folder)!r} ({why})", file=sys.stderr)
    return True


def _verify(names: list[str], root: str | None) -> int:
    bad = 0
    for n in names:
        try:
            verify_entry(n, root)
        except (ValueError, TypeError, FileNotFoundError) as e:  # TypeError: a builder refusing the entry's arguments
            bad += 1
            print(f"FAILED {n}: {e}", file=sys.stderr)
    print(f"verified {len(names) - bad}/{len(names)} entries (file in the folder, sha256, finite values, architecture and its "
          "arguments, tensor shapes and kinds of number, parameter count)")
    return 1 if bad else 0
