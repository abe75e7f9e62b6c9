"""The report's web page: ``index.html`` rendered from the jinja2 template ``templates/report.html.j2``.

The template ships as package data (see ``[tool.setuptools.package-data]`` in pyproject.toml)
and is rendered with autoescape on, so a class name or a caption can never inject markup.

Imports: jinja2, :mod:`neuroview._version` and :mod:`.report_data` (the page's outline).
"""

from __future__ import annotations

from functools import cache

import jinja2

from .._version import __version__
from .report_data import Page

__all__ = ["render_page"]


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("neuroview.viz", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name in the template fails loudly, not as blank text
        trim_blocks=True,  # block tags on their own line leave no blank line behind
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template("report.html.j2")


def render_page(page: Page, about: dict) -> str:
    """``index.html``: the title, the facts in ``about``, the summary, each section's figures, the data files."""
    return _template().render(page=page, about=about, version=__version__)
