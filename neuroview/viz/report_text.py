"""The report's page as a file: ``index.html`` rendered (:mod:`.report_page`) and written as UTF-8, every text on it
printable (:func:`printable`); and what rendering and drawing it need (:func:`check_requirements`).

Imports: the standard library, :mod:`neuroview.core.user_path`, and :mod:`.report_page` (jinja2) inside :func:`write_page`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..core.user_path import printable  # one rule: the page's, the tables' and the report's class names

__all__ = ["check_requirements", "printable", "write_page"]


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
