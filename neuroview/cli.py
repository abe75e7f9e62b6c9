"""The ``neuroview`` command: one entry point, one sub-command per job.

``fit``/``validate``/``test``/``predict`` are LightningCLI (any config key can be overridden);
``demo`` is the embedded default job; ``zoo`` and ``explain`` serve the model zoo. The top
layer: may import every other, each inside the branch that needs it so `neuroview --help` is instant.
"""

from __future__ import annotations

import difflib
import linecache
import os
import select
import signal
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
COMMANDS = ("demo", *LIGHTNING_COMMANDS, "explain", "zoo", "sparsify", "minirocket", "retrofit", "help")
LISTINGS = ("zoo", "help", "-h", "--help", "--version", "-V")  # commands whose output on stdout is their result


def main(argv: list[str] | None = None) -> int:
    """The ``neuroview`` command (the console script and ``python -m neuroview`` call it with no ``argv``): the exit
    code of the command run.

    The top-level entry point, so the one place that handles a reader which stopped early and Ctrl-C; the library
    below lets both through. A reader gone (``neuroview zoo | head -1``) ends a listing (``zoo``, ``help``,
    ``--help``, ``--version``) quietly, exit 0: its output was the result. A command that does work (``fit``,
    ``sparsify``, ...) goes on to its end with stdout pointed at devnull, then says on stderr that its output was
    cut and exits 141 (128 + SIGPIPE, as a shell tool stopped by its reader): a training run is not ended before its
    checkpoint by a progress bar's write. Ctrl-C (``fit``'s too, which Lightning turns into ``sys.exit(1)``) is one
    line on stderr; then, for the process's own command line (``argv`` None), a KeyboardInterrupt leaves ``main``
    with no traceback: Python runs its atexit handlers and dies of SIGINT, so that a shell loop over commands stops
    (a shell goes on after a child that merely exits 130); a caller passing ``argv`` (a test, a notebook) gets 130.
    """
    code, interrupted = _run(list(sys.argv[1:] if argv is None else argv))
    if interrupted and argv is None:
        _reraise_quietly(KeyboardInterrupt())
    return code


def _run(argv: list[str]) -> tuple[int, bool]:
    """The exit code of the command ``argv`` names, and whether Ctrl-C stopped it."""
    listing = not argv or argv[0] in LISTINGS
    # stdout closed at start (`>&-`, a daemon, pythonw: sys.stdout is None) is left as it is: print() drops its text
    guard = None if listing or sys.stdout is None else _StdoutGuard.install()
    try:
        code = _dispatch(argv)
        _flush_stdout()
    except SystemExit:  # argparse's --help and its refusals, --print_config: their output meets the same reader
        _flush_stdout()
        raise
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise  # another pipe (a data-loader worker's, a subprocess's) broke: a failure, with its traceback
        _mute_stdout()
        if listing:
            return 0, False  # the reader chose to stop reading (`| head -1`): nothing failed
        _say(argv, "stopped: the reader of its output (stdout) went away during the run; nothing after that point "
                   "was done or saved")
        return 1, False
    except KeyboardInterrupt:
        _say(argv, "interrupted")
        return 130, True  # 128 + SIGINT, as a shell reports a command Ctrl-C stopped
    finally:
        if guard is not None:
            sys.stdout = guard.out
    if guard is not None and guard.cut:
        _say(argv, "the reader of its output (stdout) went away during the run; the run went on to its end, but "
                   "what it printed after that point was lost")
        return code or 141, False  # 128 + SIGPIPE: what `set -o pipefail` reads of a tool its reader stopped
    return code, False


def _say(argv: list[str], what: str) -> None:
    """One line on stderr, ``neuroview <command>: <what>``."""
    cmd = argv[1] if argv[:1] == ["help"] and len(argv) > 1 else (argv or ["neuroview"])[0]
    try:
        print(f"neuroview {cmd}: {what}" if cmd in COMMANDS else f"neuroview: {what}", file=sys.stderr)
    except OSError:  # stderr's reader gone too: the exit code still says it
        pass


def _reraise_quietly(interrupt: KeyboardInterrupt) -> None:
    """Raise ``interrupt`` out of the process's command line with ``sys.excepthook`` silent for it (its one line is
    said): CPython then finalizes (atexit handlers: DataLoader workers, matplotlib's temporary folder, logging) and
    ends the process by SIGINT (https://www.cons.org/cracauer/sigint.html: bash stops a script or loop only when its
    child died of the signal; on Windows, STATUS_CONTROL_C_EXIT). A kill of its own skipped the finalization."""
    hook = sys.excepthook

    def quiet(kind, value, tb):
        if value is not interrupt:
            hook(kind, value, tb)

    sys.excepthook = quiet
    raise interrupt


class _StdoutGuard:
    """``sys.stdout`` while a command that does work runs: the first write that finds the reader gone (``neuroview
    fit ... | head``) points stdout at devnull, notes it, and the work goes on. A BrokenPipeError raised there ended
    the run: Lightning's progress bar writes to stdout, so a training run stopped at its next update, before its
    checkpoint. Any other broken pipe is raised as it was."""

    def __init__(self, out):
        self.out, self.cut = out, False

    @classmethod
    def install(cls) -> "_StdoutGuard":
        guard = cls(sys.stdout)
        sys.stdout = guard
        return guard

    def write(self, text):
        try:
            return self.out.write(text)
        except BrokenPipeError as e:
            self._reader_gone(e)
            return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        try:
            self.out.flush()
        except BrokenPipeError as e:
            self._reader_gone(e)

    def _reader_gone(self, e: BrokenPipeError) -> None:
        if not _stdout_reader_gone():
            raise e
        _mute_stdout()
        self.cut = True

    def __getattr__(self, name):  # fileno, isatty, encoding, buffer, ...: the stream's own
        return getattr(self.out, name)


def _flush_stdout() -> None:
    """Flush what a pipe still holds in its buffer now, so that a reader gone fails here, not at exit."""
    if sys.stdout is None:  # closed at start: nothing buffered
        return
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise
        _mute_stdout()


def _mute_stdout() -> None:
    """Point stdout at devnull, as https://docs.python.org/3/library/signal.html#note-on-sigpipe advises: what is
    still buffered then goes nowhere rather than raising a second BrokenPipeError at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe (or socket) whose reading end has been closed: ``poll`` reports it as an error."""
    poll = getattr(select, "poll", None)  # not on Windows: there a broken pipe keeps its traceback
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # replaced by an object with no file (io.UnsupportedOperation)
        return False
    if poll is None:
        return False
    poller = poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _dispatch(argv: list[str]) -> int:
    """Run the command ``argv`` names; ``help <command>`` is ``<command> --help``."""
    if argv[:1] == ["help"] and argv[1:]:
        if len(argv) > 2:
            print(f"neuroview help: expected one command, got {', '.join(map(repr, argv[1:]))}\n\n{USAGE}",
                  file=sys.stderr)
            return 2
        if argv[1] in ("--version", "-V"):  # `help --version`: the version, as `git help --version` gives it
            argv = argv[1:]
        elif argv[1] in ("help", "-h", "--help"):  # how `help` works: the usage, which says it
            argv = []
        elif argv[1] not in COMMANDS:
            return _unknown(argv[1], "neuroview help", (*COMMANDS, "--help", "--version"))
        else:
            argv = [argv[1], "--help"]
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
        return _lightning(cmd, rest)
    return _unknown(cmd, "neuroview", (*COMMANDS, "--help", "--version"))


def _lightning(cmd: str, rest: list[str]) -> int:
    """``neuroview fit|validate|test|predict``: LightningCLI; an input neuroview refused by name is one line, exit 2."""
    from .training.cli import cli_main  # noqa: PLC0415

    before = signal.getsignal(signal.SIGINT)
    try:
        cli_main([cmd, *rest])
    except SystemExit as e:
        if e.code != 1 or not isinstance(e.__context__, KeyboardInterrupt):
            raise
        # Lightning's answer to Ctrl-C: it tears the trainer down, ignores SIGINT and calls sys.exit(1) while handling
        # the KeyboardInterrupt, which a shell loop takes for a failure and goes on. Ctrl-C it stays, SIGINT as it was.
        if before is not None:
            try:
                signal.signal(signal.SIGINT, before)
            except ValueError:  # not the main thread: Lightning could not have changed it either
                pass
        raise e.__context__ from None
    except (ValueError, TypeError, FileNotFoundError) as e:  # TypeError: an argument a builder does not take
        said = _refusal(e)
        if said is None or os.environ.get("NEUROVIEW_TRACEBACK"):
            raise
        # an input neuroview refused by name (data, labels, a checkpoint): the message says it all, as the
        # other commands print theirs; an error raised inside torch or Lightning keeps its traceback
        print(f"neuroview {cmd}: {said}\n(NEUROVIEW_TRACEBACK=1 shows where it was raised)", file=sys.stderr)
        return 2
    return 0


def _unknown(cmd: str, who: str, known: tuple[str, ...]) -> int:
    """Refuse a command neuroview has not, suggesting the nearest spelling there is (``zo`` -> ``zoo``)."""
    near = difflib.get_close_matches(cmd, known, n=1)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    print(f"{who}: unknown command {cmd!r}{hint}\n\n{USAGE}", file=sys.stderr)
    return 2


def _refusal(e: BaseException) -> str | None:
    """The message of an input neuroview refused, or None: its own ``raise``, or the refusals jsonargparse
    lists when it instantiates a class of a recipe (``--data.init_args.batch_size 0``) under a message of
    its own ("Does not validate against any of the Union subtypes ... Errors: - ..."), each with the lines the parser
    indents under it (a multi-line refusal; the reason of a ``Problem with given class_path '...':``, such as
    Lightning's "Requirement 'tensorboard' not met"), joined by "; "."""
    if _raised_here(e) and (not isinstance(e, TypeError) or _a_raise(e)):  # a TypeError of a bug (len(5)) keeps its traceback
        return str(e)
    text = str(e)
    if not text.startswith("Does not validate against any of the Union subtypes") or "Errors:" not in text:
        return None
    items = [i for i in _error_items(text.split("Errors:", 1)[1]) if i[0] != "Expected a <class 'NoneType'>"]
    # a class that failed to build, with its reason: that alone (the union's other branches only list other types)
    built = [i for i in items if i[0].startswith("Problem with given class_path") and i[1]]
    own = built or [i for i in items if not i[0].startswith("Not a valid subclass of")]  # a callback's own refusal
    said = [_said(head, rest) for head, rest in own] if own else [head for head, _ in items]  # not the forms it lists
    return "; ".join(dict.fromkeys(said)) or None  # once each: a list's branch and a single's can fail alike


def _error_items(errors: str) -> list[tuple[str, list[str]]]:
    """The items of jsonargparse's ``Errors:`` list: each top-level ``- `` line, with the lines indented under it
    (bullets stripped); the list ends at the first line back at or left of its indent (``Given value type: ...``)."""
    lines = [line for line in errors.splitlines() if line.strip()]
    top = min((len(x) - len(x.lstrip()) for x in lines if x.lstrip().startswith("- ")), default=0)  # not sub-lists
    items: list[tuple[str, list[str]]] = []
    for line in lines:
        indent, bare = len(line) - len(line.lstrip()), line.strip()
        if indent == top and bare.startswith("- "):
            items.append((bare[2:], []))
        elif indent > top and items:
            items[-1][1].append(bare[2:] if bare.startswith("- ") else bare)
        elif items:
            break
    return items


def _said(head: str, rest: list[str]) -> str:
    """An item in one line: ``Problem with given class_path 'X': reason; reason``, or ``line; line``."""
    return head + (" " if head.endswith(":") else "; ") + "; ".join(rest) if rest else head


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
