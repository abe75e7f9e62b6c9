"""The ``neuroview`` entry point as a shell user meets it (probe P5, findings 1, 5 and 6): output piped into a
reader that stops early ends quietly, Ctrl-C is one line and exit 130, ``python -m neuroview`` runs the
command line, ``neuroview help <command>`` shows that command's help and a mistyped command gets a suggestion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import neuroview.cli as cli

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)


def _closed_pipe() -> int:
    """The write end of a pipe whose reader is already gone, as `neuroview zoo | head -1` leaves it once head
    has read its line: every write to it fails with EPIPE (Python ignores SIGPIPE)."""
    r, w = os.pipe()
    os.close(r)
    return w


# --- finding 1: a reader that stops early, Ctrl-C ------------------------------------------------------------


@pytest.mark.parametrize("args", [["--help"], ["zoo", "--architectures"], ["zoo", "--help"]])
def test_a_reader_that_stopped_early_ends_the_command_quietly(args):
    w = _closed_pipe()
    try:
        done = subprocess.run([sys.executable, "-m", "neuroview.cli", *args], stdout=w, stderr=subprocess.PIPE,
                              text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    finally:
        os.close(w)
    # before: a BrokenPipeError traceback and exit 1 (or "Exception ignored ... BrokenPipeError" and exit 120)
    assert done.stderr == "", done.stderr
    assert done.returncode == 0  # the reader chose to stop: nothing failed (`set -o pipefail` scripts rely on it)


def test_a_closed_stdout_in_process_returns_0_and_points_stdout_at_devnull(monkeypatch, capsys):
    out = os.fdopen(_closed_pipe(), "w")
    monkeypatch.setattr(sys, "stdout", out)
    assert cli.main(["--help"]) == 0
    assert os.path.samestat(os.fstat(out.fileno()), os.stat(os.devnull))  # what is still buffered goes nowhere
    out.close()  # flushes into devnull: no second BrokenPipeError at exit


def test_a_broken_pipe_that_is_not_stdout_keeps_its_traceback(monkeypatch, capsys):
    import neuroview.zoo.cli as zoo_cli

    def zoo(rest):
        raise BrokenPipeError(32, "a data-loader worker's pipe")  # stdout is fine: a real failure

    monkeypatch.setattr(zoo_cli, "main", zoo)
    with pytest.raises(BrokenPipeError, match="data-loader"):
        cli.main(["zoo"])


def test_ctrl_c_during_a_command_is_one_line_and_exit_130(monkeypatch, capsys):
    import neuroview.zoo.cli as zoo_cli

    def zoo(rest):
        raise KeyboardInterrupt

    monkeypatch.setattr(zoo_cli, "main", zoo)
    assert cli.main(["zoo"]) == 130
    captured = capsys.readouterr()
    assert captured.err == "neuroview zoo: interrupted\n"
    assert captured.out == ""


def test_a_real_sigint_gives_no_traceback():
    code = ("import os, signal, time, sys; import neuroview.zoo.cli as z\n"
            "def zoo(rest):\n    os.kill(os.getpid(), signal.SIGINT); time.sleep(30); return 0\n"
            "z.main = zoo\nfrom neuroview.cli import main\nsys.exit(main(['zoo']))\n")
    done = _run(["-c", code])
    assert done.returncode == 130
    assert done.stderr == "neuroview zoo: interrupted\n", done.stderr


# --- finding 5: python -m neuroview ---------------------------------------------------------------------------


def test_python_m_neuroview_runs_the_command_line():
    done = _run(["-m", "neuroview", "--help"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: neuroview <command> [options]")
    done = _run(["-m", "neuroview", "zoo", "--help"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: neuroview zoo ")  # the prog name is the command's, not __main__.py
    done = _run(["-m", "neuroview", "nosuch"])
    assert done.returncode == 2
    assert done.stderr.startswith("neuroview: unknown command 'nosuch'")


def test_python_m_neuroview_prints_the_version():
    from neuroview._version import __version__

    done = _run(["-m", "neuroview", "--version"])
    assert (done.returncode, done.stdout) == (0, f"neuroview {__version__}\n")


def test_importing_neuroview_main_runs_nothing():
    done = _run(["-c", "import neuroview.__main__; print('imported')"])
    assert (done.returncode, done.stdout) == (0, "imported\n"), done.stderr


# --- finding 6: help words, suggestions -----------------------------------------------------------------------


def _help_of(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code in (0, None)
    return capsys.readouterr().out


@pytest.mark.parametrize("cmd", ["zoo", "sparsify"])
def test_help_command_prints_that_command_s_help(cmd, capsys):
    shown = _help_of(["help", cmd], capsys)
    assert shown.startswith(f"usage: neuroview {cmd} ")  # before: the top-level usage
    assert shown == _help_of([cmd, "--help"], capsys)


def test_help_alone_and_help_help_print_the_usage(capsys):
    for argv in (["help"], ["help", "help"]):
        assert cli.main(argv) == 0
        assert capsys.readouterr().out.startswith("usage: neuroview <command> [options]")


@pytest.mark.parametrize("argv, suggestion", [(["zo"], "zoo"), (["sparsfy"], "sparsify"), (["explian"], "explain"),
                                              (["version"], "--version"), (["help", "zo"], "zoo")])
def test_an_unknown_command_suggests_the_nearest(argv, suggestion, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"unknown command {argv[-1]!r}" in err
    assert f"did you mean {suggestion!r}?" in err
    assert "usage: neuroview <command>" in err


@pytest.mark.parametrize("argv", [["bogus"], ["--", "zoo"]])
def test_an_unknown_command_far_from_any_gets_no_suggestion(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"unknown command {argv[0]!r}" in err and "did you mean" not in err


def test_help_with_two_commands_is_refused(capsys):
    assert cli.main(["help", "zoo", "fit"]) == 2
    err = capsys.readouterr().err
    assert "neuroview help: expected one command, got 'zoo', 'fit'" in err
