"""A benchmark's cache of finished runs, kept so that an interrupted benchmark resumes where it stopped.

:func:`write_cache` writes it whole through neuroview's atomic writer (a temporary file, then a rename): rewritten in
place, a kill during the rewrite left a 0-byte cache, the runs of hours gone. :func:`read_cache` names a cache that is
not readable JSON and says what to do, where the next run failed with a bare ``JSONDecodeError``.

>>> write_cache(path, json.dumps({"gunpoint/seed0": 0.95}, indent=1) + "\\n")  # doctest: +SKIP
>>> read_cache(path)  # doctest: +SKIP
{'gunpoint/seed0': 0.95}
"""

from __future__ import annotations

import json
from pathlib import Path

from neuroview._io import atomic_write

__all__ = ["read_cache", "write_cache"]


def read_cache(path) -> dict:
    """The runs cached in ``path`` (``{}`` where there is no file yet); a ValueError naming a file that is not readable
    JSON (empty, cut short, edited by hand) and how to go on."""
    path = Path(path)
    if not path.is_file():
        return {}
    text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        what = "an empty file" if not text.strip() else f"{len(text.encode())} bytes that are not readable JSON ({e})"
        raise ValueError(f"cache {path}: expected the JSON of the runs this benchmark finished, got {what}; restore it "
                         f"(`git checkout -- {path}` where it is committed) or delete it to run every case afresh") from None


def write_cache(path, text: str) -> None:
    """Write ``text`` (the cache's JSON) to ``path`` as one step: a crash leaves the earlier cache or the new one."""
    atomic_write(Path(path), text.encode())
