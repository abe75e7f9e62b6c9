"""What an ``.npz`` of the user's own holds besides plain series, read or named before its series are.

Holds :func:`object_arrays` (the keys whose arrays are pickled objects, found from the ``.npy`` headers without
unpickling anything: pandas' ``df["label"].values``, series of several lengths in one object array),
:func:`nan_padded` (series padded with NaN past their valid steps, as a frame of rows of several lengths or
``np.full(..., nan)`` leaves them: read as shorter series, as :class:`~neuroview.data.CsvDataModule` reads a row that
ends in NaN fields), :func:`warn_unread_padding` (series flat at one end only, with a value rare inside them, as padding
leaves them, in a file without ``lengths``) and :func:`_flat_runs`, which measures those flat ends. Imports only numpy.
"""

from __future__ import annotations

import warnings
import zipfile

import numpy as np

__all__ = ["nan_padded", "object_arrays", "warn_unread_padding"]


def object_arrays(path, name: str) -> str | None:
    """The refusal of an ``.npz`` whose arrays include object arrays (pickled: never loaded, as unpickling can run
    code), naming each key and how to store it as plain numbers or text; ``None`` where no member is one (or the file
    is no zip: another refusal names it). Only each member's ``.npy`` header is read."""
    found = []
    try:
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                if not member.endswith(".npy"):
                    continue
                with z.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read = {(1, 0): np.lib.format.read_array_header_1_0,
                            (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read is not None and read(f)[2].hasobject:
                        found.append(member[:-4])
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    if not found:
        return None
    fixes = []
    for key in found:
        if key.startswith("y"):
            fixes.append(f"{key}: labels of Python objects (pandas' df['label'].values, a list of mixed types): store "
                         f"them as text, np.asarray({key}, dtype=str), or as numbers")
        elif key.startswith("X"):
            fixes.append(f"{key}: series of several lengths, one array each? pad them into one float array "
                         f"[N, C, T] (zeros, or NaN, past each series' end) and store each series' length as "
                         f"lengths{key[1:]}; or store {key} as numbers ({key}.astype(np.float32))")
        else:
            fixes.append(f"{key}: store it as numbers")
    return (f"path: {', '.join(found)} of {name} {'is an object array' if len(found) == 1 else 'are object arrays'} "
            "(pickled Python objects, not read: allow_pickle=False, as unpickling can run code); " + "; ".join(fixes))


def nan_padded(x: np.ndarray, padding: str, suffix: str, name: str):
    """``X{suffix}`` (``[N, C, T]``, a file without ``lengths``) as a list of series, each one whose NaN all lie in one
    run of steps NaN in every channel at its end (``padding`` ``"auto"``/``"post"``) or start (``"pre"``) cut before
    that run; ``x`` as it is where none does. Series with NaN elsewhere keep it, refused later by name (a NaN inside a
    series); NaN padding only at the other end is refused, naming ``padding``; a series NaN throughout, naming its row."""
    if x.dtype.kind != "f" or x.ndim != 3:
        return x
    finite = np.isfinite(x).all(1)  # [N, T]: steps finite in every channel
    bad = np.flatnonzero(~finite.all(1))
    if not len(bad):
        return x
    steps, gone = x.shape[-1], np.isnan(x[bad]).all(1)  # [B, T]: steps NaN in every channel
    empty = bad[gone.all(1)]
    if len(empty):
        raise ValueError(f"path: X{suffix} of {name} holds {len(empty)} series NaN throughout (the first: series "
                         f"{int(empty[0])}): no step to read; drop them")
    lead, trail = gone.argmin(1), gone[:, ::-1].argmin(1)  # NaN steps at the start, at the end

    def fits(run: np.ndarray, at_end: bool) -> np.ndarray:  # each bad series' non-finite values all in that run
        return np.array([r > 0 and (finite[i, :steps - r].all() if at_end else finite[i, r:].all())
                         for i, r in zip(bad, run)])

    at_end = padding != "pre"
    run = trail if at_end else lead
    ok = fits(run, at_end)
    if not ok.any() and fits(lead if at_end else trail, not at_end).all():
        where, other = ("start", "'pre'") if at_end else ("end", "'post'")
        raise ValueError(f"path: X{suffix} of {name} holds NaN only at the {where} of {len(bad)} series, as padding "
                         f"there leaves them, but padding={padding!r} reads series padded at the "
                         f"{'end' if at_end else 'start'}; pass padding={other} (--data.init_args.padding "
                         f"{other.strip(chr(39))}) to read each series without its NaN steps")
    if not ok.any():
        return x
    n = np.full(len(x), steps)
    n[bad[ok]] = steps - run[ok]  # the others keep their NaN, refused by name with their rows
    return [s[..., :k] if at_end else s[..., steps - k:] for s, k in zip(x, n)]


def warn_unread_padding(x, name: str, padding: str) -> None:
    """A file without ``lengths`` whose training series ``x`` read as padded: warned where more than half of them are
    flat (each channel one value) over 2 steps or more at the end (``padding`` ``"auto"`` or ``"post"``: torch's
    ``pad_sequence``, Keras' ``padding='post'``) or at the start (``"auto"``, ``"pre"``: Keras' default), the padding
    then read whole as data. Padding leaves one end flat, with a value the series hold nowhere else: a series flat at
    both ends (an image's blank margins, read row by row) is no vote, and no warning is given where the run's value is
    common inside the series (counts at rest at 0: an empty bin is an ordinary count). Under ``"auto"``/``"post"``,
    series ``[N, C, T]`` only, and only where those flat runs have several lengths (series of one length, at rest alike,
    are not padded), series flat throughout left out; under ``"pre"``, runs of one length only where they are over 2 steps
    and more than half of all series hold one value there (a padding value: each series' own first value held is a held
    first sample, and a few such series among padded ones leave the rest padded). A
    quiet start at exactly the value (a baseline at 0) reads as padding does: the warning says so, rather than telling
    the user to cut it."""
    if isinstance(x, list) or x.dtype.kind not in "biuf" or x.shape[-1] < 2:
        return
    n, steps = len(x), x.shape[-1]
    if padding != "pre" and x.ndim != 3:
        return
    head, tail = (np.minimum(r, steps) for r in _flat_runs(x, np.arange(n), np.full(n, steps - 1)))
    if padding == "pre":
        flat = _padded_at(x, head, tail, at_end=False)
        # runs of one length are a held first sample (BasicMotions repeats it once), unless more than half of all series
        # hold one padding value (Keras' 0, or value=): each series its own value is no padding, and one series holding
        # its own first value as long as the padding lasts does not hide the padding of the rest
        if 2 * flat.sum() > n and (len(np.unique(head[flat])) > 1 or (head[flat].min() > 2
                                                                       and 2 * _most_shared(x[..., 0][flat]) > n)):
            warnings.warn(f"padding: 'pre' reads each series' last lengths steps, but {name} has no lengths, and "
                          f"{flat.sum()} of its {n} series begin flat (one value a channel, rare inside them), as padding "
                          "at the start leaves them: every series is read whole, its padding as data; add each series' "
                          "length as lengths (lengths_test, lengths_val for its splits)", UserWarning, stacklevel=3)
        return
    for at_end, end, rest, count, fix in ((True, "end", "end", "X[..., ::-1]", ""),
                                          (False, "start", "begin", "X", ", and padding='pre'")):
        if not at_end and padding != "auto":
            return
        runs = (tail if at_end else head)[_padded_at(x, head, tail, at_end)]
        if 2 * len(runs) > n and len(np.unique(runs)) > 1:
            warnings.warn(f"padding: {name} has no lengths, and {len(runs)} of its {n} series {end} flat (one value a "
                          f"channel, rare inside them) for {runs.min()} to {runs.max()} steps, as padding at the {end} "
                          f"leaves them, or as recordings that {rest} at rest at that value do (nothing in the file tells "
                          "the two apart): if those steps are padding, every series is read whole, its padding as data; "
                          "add each series' length as lengths (zero padding: lengths = X.shape[-1] - "
                          f"({count} != 0).any(1).argmax(-1) for X [N, C, T]{fix}; lengths_test, lengths_val for its "
                          "splits)", UserWarning, stacklevel=3)
            return


def _most_shared(first: np.ndarray) -> int:
    """How many of the first steps ``first`` (``[S, C, ...]``, one a series) hold the most common one, each channel's
    value alike (NaN matching NaN, -0.0 matching 0.0): the mark padding leaves, one value written into every series it
    pads."""
    first = first.reshape(len(first), -1)
    if first.dtype.kind == "f":  # NaN equals no value: compared as a flag beside a 0
        nan = np.isnan(first)
        first = np.concatenate([np.where(nan, 0, first) + 0, nan.astype(first.dtype)], 1)  # + 0: -0.0 is 0.0
    return int(np.unique(first, axis=0, return_counts=True)[1].max()) if len(first) else 0


def _padded_at(x: np.ndarray, head: np.ndarray, tail: np.ndarray, at_end: bool) -> np.ndarray:
    """Which series ``x`` read as padded at their end (``at_end``) or start, by their flat runs ``head``/``tail``
    (:func:`_flat_runs`, at most ``T``): flat there over 2 steps or more but not throughout, not at the other end
    (padding leaves one end flat; an image's blank margins, both), and, for all of those together, the run's value
    (each channel's own) held in every channel at under 5% of their other steps. Zero padding of measured values leaves
    no zeros inside; counts at rest at 0 (0.3 spikes a bin: 74% of the bins) hold many, and are no padding. ``[N]``
    bool, all False where the value is common."""
    steps = x.shape[-1]
    run, other = (tail, head) if at_end else (head, tail)
    # the other end judged against this end's run: a repeated first sample (2 steps) beside a long zero tail is padding
    rows = np.flatnonzero((run >= 2) & (run < steps) & (other < np.maximum(3, run // 2)))
    feat = int(np.prod(x.shape[1:-1], dtype=np.int64)) or 1
    block, t, held = max(1, (1 << 20) // (feat * steps)), np.arange(steps), 0
    for i in range(0, len(rows), block):  # blocks of about 2**20 values: no copy of the whole array
        a, r = x[rows[i:i + block]], run[rows[i:i + block], None]
        a = a.reshape(len(a), -1, steps)  # any spatial axes folded into the channels
        same = (a == (a[..., -1:] if at_end else a[..., :1])).all(1)  # [B, T]: every channel at the run's value
        held += int((same & ((t < steps - r) if at_end else (t >= r))).sum())
    out = np.zeros(len(x), bool)
    if held < 0.05 * (steps - run[rows]).sum():
        out[rows] = True
    return out


def _flat_runs(x: np.ndarray, rows: np.ndarray, pad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each series ``x[rows]``, the steps from its first (``head``) and from its last (``tail``) over which every
    channel holds its own first (last) value, counted as far as its ``pad + 1`` steps (longer: ``pad + 2``). Series
    taken in blocks of like padding, each block as wide as its own longest padding, about ``2**20`` values a block:
    no copy of the whole array, whatever the lengths."""
    head, tail = np.empty(len(rows), np.int64), np.empty(len(rows), np.int64)
    order = np.argsort(pad, kind="stable")
    feat = int(np.prod(x.shape[1:-1], dtype=np.int64)) or 1
    block = max(1, (1 << 20) // (feat * x.shape[-1]))

    def run(a: np.ndarray, width: int) -> np.ndarray:  # [S, C, w] -> each series' first steps flat in every channel
        a = a.reshape(len(a), -1, a.shape[-1])  # any spatial axes folded into the channels
        same = a == a[..., :1]
        if a.dtype.kind == "f":  # NaN padding: NaN equals no value, itself included
            same |= np.isnan(a) & np.isnan(a[..., :1])
        flat = same.all(1)
        return np.where(flat.all(1), width + 1, flat.argmin(1))  # flat over all `width`: longer than its padding

    for i in range(0, len(rows), block):
        at = order[i:i + block]
        width = min(int(pad[at].max()) + 1, x.shape[-1])
        head[at] = run(x[rows[at], ..., :width], width)
        tail[at] = run(x[rows[at], ..., x.shape[-1] - width:][..., ::-1], width)
    return head, tail
