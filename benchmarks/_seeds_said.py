"""The seeds ``ucr_choices.py``'s verdicts were judged on, in words, for its report's header.

>>> seeds_said([{"option": "a", "seeds": [0, 1, 2, 3, 4]}, {"option": "b", "seeds": [0, 1]}], [0, 1, 2, 3, 4])
', seeds 0-4; seeds 0, 1 (b)'
"""

from __future__ import annotations

__all__ = ["seeds_said"]


def seeds_said(rows: list[dict], folds: list[int]) -> str:
    """``", seeds 0-4"``: the seeds ``rows`` were judged on (each row's ``seeds``; a 5-fold verdict kept before
    rows recorded them is on ``folds``, five runs a set, as its runs say), each list after the most rows' one
    with the options judged on it; ``""`` where no row records them (the shared fifth's verdicts kept before)."""
    by: dict[str, list[str]] = {}
    for r in rows:
        seeds = r.get("seeds", folds if r.get("cv") else None)
        by.setdefault("unrecorded" if seeds is None else _text(seeds), []).append(r["option"])
    if set(by) <= {"unrecorded"}:
        return ""
    (first, _), *more = sorted(by.items(), key=lambda kv: -len(kv[1]))  # the most rows' seeds first, unnamed
    return f", seeds {first}" + "".join(f"; seeds {k} ({', '.join(dict.fromkeys(v))})" for k, v in more)


def _text(seeds: list[int]) -> str:
    """``0-4`` for three or more consecutive seeds, else ``0, 1``."""
    s = sorted(set(seeds))
    return f"{s[0]}-{s[-1]}" if len(s) > 2 and s == list(range(s[0], s[-1] + 1)) else ", ".join(map(str, s))
