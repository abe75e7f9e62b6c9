"""The report's page as a file: ``index.html`` rendered (:mod:`.report_page`) and written as UTF-8, every text on it
printable (:func:`printable`); and what rendering and drawing it need (:func:`check_requirements`).

Imports: the standard library, and :mod:`.report_page` (jinja2) inside :func:`write_page`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["check_requirements", "printable", "write_page"]


def printable(text: str) -> str:
    r"""``text`` with the bytes of a name that is not UTF-8 shown as Python shows them (``caf\xe9``): a folder of a
    latin-1 name (unpacked from an old zip, a Samba share) reaches Python with a lone surrogate (``caf\udce9``),
    which a strict UTF-8 write refused, after all the work. Any other lone surrogate as ``\udXXX``.

    >>> import os
    >>> printable(os.fsdecode(b"/runs/caf\xe9/last.ckpt"))
    '/runs/caf\\xe9/last.ckpt'
    """
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate no file name gave (not U+DC80..U+DCFF)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def write_page(path: Path, page, about: dict) -> None:
    """``index.html`` of ``page`` and ``about`` at ``path``: UTF-8 whatever the locale, as its ``<meta charset>`` says."""
    from .report_page import render_page  # noqa: PLC0415 - jinja2

    path.write_text(printable(render_page(page, about)), encoding="utf-8")


def check_requirements() -> None:
    """Raise ImportError, naming what to install, when the report cannot be drawn or rendered here."""
    need = {"matplotlib": "pip install 'neuroview[plots]'", "jinja2": "pip install jinja2 (a neuroview dependency)"}
    missing = [f"{m} ({how})" for m, how in need.items() if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"the report needs {' and '.join(missing)}; nothing was written")
