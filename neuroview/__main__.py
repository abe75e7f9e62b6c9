"""``python -m neuroview``: the ``neuroview`` command, for where the venv's ``bin/`` is not on PATH (a notebook's
``!python -m neuroview zoo``, a cron job, ``[sys.executable, "-m", "neuroview", ...]`` from a subprocess).

Every usage line names ``neuroview`` (each parser sets its ``prog``), not ``__main__.py``. The top layer, beside
``cli``; importing it runs nothing.
"""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
