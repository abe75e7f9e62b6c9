"""The ``neuroview`` command: one entry point, one sub-command per job.

``fit``/``validate``/``test``/``predict`` are LightningCLI (any config key can be overridden);
``demo`` is the embedded default job; ``zoo`` and ``explain`` serve the model zoo. The top
layer: may import every other, each inside the branch that needs it so `neuroview --help` is instant.
"""

from __future__ import annotations

import linecache
import os
import sys
from pathlib import Path

USAGE = """usage: neuroview <command> [options]

commands:
  demo       wrap a small CNN, train it on scikit-learn's digits (offline, CPU, ~1 min),
             print its test accuracy and the top units of each class
  fit        train a recipe:  neuroview fit --config recipes/<recipe>.yaml [--trainer.max_epochs N ...]
  validate   evaluate a checkpoint on the validation split (LightningCLI)
  test       evaluate a checkpoint on the test split:  neuroview test --config ... --ckpt_path ...
  predict    predictions of a checkpoint (LightningCLI)
  explain    figures, tables and an offline index.html of what a model's decisions rest on:
             neuroview explain (--model NAME | --ckpt PATH) [--data NAME] --out DIR
  zoo        the trained zoo entries: dataset, parameter count, test accuracy (--verify checks hashes)
  sparsify   refit a NeuroView network's classifier to read few units per class (few steps for an RNN):
             neuroview sparsify nv_lite.gunpoint --out runs/sparse
  minirocket fit MiniRocket as a NeuroView-CNN (its features are unit codes, its ridge the head), in seconds:
             neuroview minirocket --data ArrowHead --max-k90 10 --out runs/minirocket
  retrofit   wrap a trained standard network, fit only the global classifier, report the accuracy cost:
             neuroview retrofit small_cnn.digits | neuroview retrofit W.safetensors --arch A --data D

Run `neuroview <command> --help` for a command's options; `neuroview --version` prints the version.
"""

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] in ("--version", "-V"):
        from ._version import __version__  # noqa: PLC0415

        print(f"neuroview {__version__}")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "demo":
        from .training.demo import main as demo  # noqa: PLC0415 - keep `neuroview --help` instant

        return demo(rest)
    if cmd == "zoo":
        from .zoo.cli import main as zoo  # noqa: PLC0415

        return zoo(rest)
    if cmd == "retrofit":
        from .training.retrofit import main as retrofit  # noqa: PLC0415

        return retrofit(rest)
    if cmd == "sparsify":
        from .training.sparsify_cli import main as sparsify  # noqa: PLC0415

        return sparsify(rest)
    if cmd == "minirocket":
        from .training.minirocket_cli import main as minirocket  # noqa: PLC0415

        return minirocket(rest)
    if cmd == "explain":
        from .viz.report import main as explain  # noqa: PLC0415

        return explain(rest)
    if cmd in LIGHTNING_COMMANDS:
        from .training.cli import cli_main  # noqa: PLC0415

        try:
            cli_main([cmd, *rest])
        except (ValueError, TypeError, FileNotFoundError) as e:  # TypeError: an argument a builder does not take
            said = _refusal(e)
            if said is None or os.environ.get("NEUROVIEW_TRACEBACK"):
                raise
            # an input neuroview refused by name (data, labels, a checkpoint): the message says it all, as the
            # other commands print theirs; an error raised inside torch or Lightning keeps its traceback
            print(f"neuroview {cmd}: {said}\n(NEUROVIEW_TRACEBACK=1 shows where it was raised)", file=sys.stderr)
            return 2
        return 0
    print(f"neuroview: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
    return 2


def _refusal(e: BaseException) -> str | None:
    """The message of an input neuroview refused, or None: its own ``raise``, or the refusals jsonargparse
    lists when it instantiates a class of a recipe (``--data.init_args.batch_size 0``) under a message of
    its own ("Does not validate against any of the Union subtypes ... Errors: - ...")."""
    if _raised_here(e) and (not isinstance(e, TypeError) or _a_raise(e)):  # a TypeError of a bug (len(5)) keeps its traceback
        return str(e)
    text = str(e)
    if not text.startswith("Does not validate against any of the Union subtypes") or "Errors:" not in text:
        return None
    lines = [line for line in text.split("Errors:", 1)[1].splitlines() if line.strip().startswith("- ")]
    top = min((len(line) - len(line.lstrip()) for line in lines), default=0)  # its items, not their sub-lists
    items = [line.strip()[2:] for line in lines if len(line) - len(line.lstrip()) == top
             and "Expected a <class 'NoneType'>" not in line]
    own = [i for i in items if not i.startswith("Not a valid subclass of")]  # a callback's own refusal, then this
    return "; ".join(own or items) or None


def _innermost(e: BaseException):
    """The traceback entry of the frame ``e`` was raised in (None for an exception never raised)."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def _raised_here(e: BaseException) -> bool:
    """Whether ``e`` was raised by a ``raise`` of neuroview's own code (its innermost frame is in the package)."""
    tb = _innermost(e)
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(Path(__file__).resolve().parent)


def _a_raise(e: BaseException) -> bool:
    """Whether ``e``'s innermost frame is a ``raise`` statement (a refusal written out), not an operation that failed."""
    tb = _innermost(e)
    return tb is not None and linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno).lstrip().startswith("raise")


if __name__ == "__main__":
    sys.exit(main())
