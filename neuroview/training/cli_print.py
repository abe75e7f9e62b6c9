"""``--print_config`` of ``neuroview fit|validate|test|predict``: the config as parsed (for ``fit``, the one the run
uses; ``test|validate|predict --ckpt_path`` then rebuild the checkpoint's own model, whatever it prints of the model,
and read ``last``/``best`` as files, after the print), printed after neuroview's own edits of the parsed config
(:meth:`~neuroview.training.cli.NeuroViewCLI.parse_arguments`: a later ``--config``'s ``model_kwargs`` merged,
schedule options the scheduler does not read set to their defaults). jsonargparse printed it
inside the parse, before them: the recipe's ``warmup_epochs: 1.0`` under ``--model.scheduler none``, which the run set
to 0, and that output fed back as ``--config`` was refused.

Imports jsonargparse only (its print action, held back and then run as it runs it).
"""

from __future__ import annotations

from collections.abc import Callable

from jsonargparse import ArgumentError

try:  # private: the action that prints, and its own switch to hold the print back
    from jsonargparse._actions import _ActionPrintConfig
except ImportError:  # another jsonargparse: printed inside the parse, as before
    _ActionPrintConfig = None

__all__ = ["parse_then_print"]


def parse_then_print(parser, parse: Callable[[], None], edit: Callable[[], object]) -> None:
    """``parse()`` (the parse of the command line into the config) with ``--print_config`` held back, then ``edit()``
    (neuroview's edits of it, returning the config), then the print and exit that ``--print_config`` asks for, of the
    edited config. A command line the parse refuses (``fit --print_config`` without ``--data``: a template to fill) is
    parsed again, printed as jsonargparse prints it."""
    if _ActionPrintConfig is None or not hasattr(_ActionPrintConfig, "skip_print_config"):
        parse()
        edit()
        return
    try:
        with _ActionPrintConfig.skip_print_config():
            parse()
    except ArgumentError:
        if not _ActionPrintConfig.is_print_config_requested(parser):
            raise
        parse()  # printed before the check that refused it, and exited
        raise
    cfg = edit()
    _ActionPrintConfig.print_config_if_requested(parser, cfg)  # exits where it prints
