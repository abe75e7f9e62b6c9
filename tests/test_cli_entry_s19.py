"""The ``neuroview`` entry point as a shell user meets it (probe P5, findings 1, 5 and 6): output piped into a
reader that stops early ends quietly, Ctrl-C is one line and exit 130, ``python -m neuroview`` runs the
command line, ``neuroview help <command>`` shows that command's help and a mistyped command gets a suggestion."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
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


def _into_closed_pipe(argv: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    """``python <argv>`` with its stdout the write end of :func:`_closed_pipe`, stderr captured."""
    w = _closed_pipe()
    try:
        return subprocess.run([sys.executable, *argv], stdout=w, stderr=subprocess.PIPE, text=True, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=timeout)
    finally:
        os.close(w)


# --- finding 1: a reader that stops early, Ctrl-C ------------------------------------------------------------


@pytest.mark.parametrize("args", [["--help"], ["zoo", "--architectures"], ["zoo", "--help"]])
def test_a_reader_that_stopped_early_ends_the_command_quietly(args):
    done = _into_closed_pipe(["-m", "neuroview.cli", *args])
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


def test_a_real_sigint_in_process_returns_130():
    """``main(argv)`` called by a program (here with a real SIGINT): one line and 130, the process left alive."""
    code = ("import os, signal, time, sys; import neuroview.zoo.cli as z\n"
            "def zoo(rest):\n    os.kill(os.getpid(), signal.SIGINT); time.sleep(30); return 0\n"
            "z.main = zoo\nfrom neuroview.cli import main\nprint(main(['zoo']))\n")
    done = _run(["-c", code])
    assert (done.returncode, done.stdout) == (0, "130\n"), done.stderr
    assert done.stderr == "neuroview zoo: interrupted\n", done.stderr


_STUB = ("import os, signal, sys, time; import neuroview.zoo.cli as z\n"
         "def zoo(rest):\n    {body}\n    print('still running'); return 0\n"
         "z.main = zoo\nsys.argv = ['neuroview', 'zoo']\n")


@pytest.mark.parametrize("entry", ["from neuroview.cli import main\nsys.exit(main())\n",  # the console script
                                   "import runpy; runpy.run_module('neuroview', run_name='__main__')\n"],  # -m
                         ids=["console_script", "python_m"])
def test_a_real_sigint_kills_the_command_by_sigint_with_one_line(entry):
    """The process's own command line: one line on stderr, then death by SIGINT (returncode -2), as Python's own
    uncaught KeyboardInterrupt gives, so that a shell loop stops (review R7, finding 2)."""
    done = _run(["-c", _STUB.format(body="os.kill(os.getpid(), signal.SIGINT); time.sleep(30)") + entry])
    assert done.returncode == -signal.SIGINT  # before: 130, a normal exit, after which bash goes on
    assert done.stderr == "neuroview zoo: interrupted\n", done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("entry", ["from neuroview.cli import main\nsys.exit(main())\n",
                                   "import runpy; runpy.run_module('neuroview', run_name='__main__')\n"],
                         ids=["console_script", "python_m"])
def test_a_real_sigint_runs_the_atexit_handlers_before_the_death_by_sigint(entry, tmp_path):
    """Python's own uncaught KeyboardInterrupt finalizes first (atexit: DataLoader workers, matplotlib's temporary
    folder, logging.shutdown), then dies of SIGINT; the command line must too (review S1, finding 2)."""
    ran = tmp_path / "atexit_ran"
    body = (f"import atexit; atexit.register(lambda: open({str(ran)!r}, 'w').write('yes')); "
            "os.kill(os.getpid(), signal.SIGINT); time.sleep(30)")
    done = _run(["-c", _STUB.format(body=body) + entry])
    assert done.returncode == -signal.SIGINT, done.stderr
    assert done.stderr == "neuroview zoo: interrupted\n", done.stderr
    assert ran.exists()  # before: the process killed itself, no atexit handler ran
    assert ran.read_text() == "yes"


# --- review S1 finding 1: stdout closed at start (sys.stdout is None) -------------------------------------------

_WORK_STUB = ("import os, signal, sys, time; import neuroview.training.sparsify_cli as s\n"
              "def sparsify(rest):\n    print('working'); sys.stdout and sys.stdout.flush(); {body}\n"
              "    open(rest[0], 'w').write('saved'); return 0\n"
              "s.main = sparsify\nsys.argv = ['neuroview', 'sparsify', {out!r}]\n"
              "from neuroview.cli import main\nsys.exit(main())\n")


def _run_with_stdout_closed(code: str) -> subprocess.CompletedProcess:
    """As `neuroview sparsify ... >&-`: fd 1 closed before Python starts, so sys.stdout is None."""
    return subprocess.run([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120, preexec_fn=lambda: os.close(1))


@pytest.mark.skipif(sys.platform == "win32", reason="preexec_fn")
def test_a_work_command_with_stdout_closed_finishes_its_work_and_exits_0(tmp_path):
    out = tmp_path / "entry"
    done = _run_with_stdout_closed(_WORK_STUB.format(body="pass", out=str(out)))
    # before: AttributeError 'NoneType' object has no attribute 'write' at the first print, nothing saved, exit 1
    assert (done.returncode, done.stderr) == (0, "")
    assert out.read_text() == "saved"


@pytest.mark.skipif(sys.platform == "win32", reason="preexec_fn and SIGINT")
def test_ctrl_c_with_stdout_closed_is_one_line_and_death_by_sigint(tmp_path):
    done = _run_with_stdout_closed(_WORK_STUB.format(body="os.kill(os.getpid(), signal.SIGINT); time.sleep(30)",
                                                     out=str(tmp_path / "entry")))
    assert done.stderr == "neuroview sparsify: interrupted\n"  # before: a traceback (None.flush) and exit 1
    assert done.returncode == -signal.SIGINT
    assert not (tmp_path / "entry").exists()


def test_main_with_sys_stdout_none_leaves_it_none(monkeypatch, tmp_path):
    import neuroview.training.sparsify_cli as sparsify_cli

    def sparsify(rest):
        print("working")  # dropped, as print() drops it with no stdout
        (tmp_path / "entry").write_text("saved")
        return 0

    monkeypatch.setattr(sparsify_cli, "main", sparsify)
    monkeypatch.setattr(sys, "stdout", None)
    assert cli.main(["sparsify", "x"]) == 0
    assert sys.stdout is None  # not wrapped by the guard
    assert (tmp_path / "entry").read_text() == "saved"


# --- review S1 finding 3: Ctrl-C during a Lightning command (fit/validate/test/predict) -------------------------

_TRAINER = '''
import os, signal, sys
import torch
import pytorch_lightning as pl


class Interrupted(pl.LightningModule):
    """One Linear; its second training step meets Ctrl-C ({how})."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def training_step(self, batch, i):
        if i == 1:
            {interrupt}
        x, y = batch
        return torch.nn.functional.cross_entropy(self.lin(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def cli_main(args):
    data = torch.utils.data.TensorDataset(torch.randn(8, 2), torch.tensor([0, 1] * 4))
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", default_root_dir={root!r})
    trainer.fit(Interrupted(), torch.utils.data.DataLoader(data, batch_size=2))
    open(os.path.join({root!r}, "fit_returned"), "w").write("x")
'''


def test_ctrl_c_during_a_lightning_fit_is_one_line_and_exit_130(monkeypatch, capsys, tmp_path):
    """Lightning catches the KeyboardInterrupt itself, tears the trainer down, sets SIGINT to SIG_IGN and calls
    sys.exit(1): the command must still read as Ctrl-C (one line, 130), with the SIGINT handler it had."""
    import neuroview.training.cli as training_cli

    space: dict = {}
    exec(_TRAINER.format(how="raised", interrupt="raise KeyboardInterrupt", root=str(tmp_path)), space)
    monkeypatch.setattr(training_cli, "cli_main", space["cli_main"])
    handler = signal.getsignal(signal.SIGINT)
    try:
        assert cli.main(["fit", "--config", "r.yaml"]) == 130  # before: SystemExit(1)
        assert signal.getsignal(signal.SIGINT) is handler  # before: SIG_IGN, a later Ctrl-C ignored
    finally:
        signal.signal(signal.SIGINT, handler)
    assert not (tmp_path / "fit_returned").exists()
    assert capsys.readouterr().err.endswith("neuroview fit: interrupted\n")


def test_a_system_exit_1_of_a_lightning_command_not_from_ctrl_c_is_kept(monkeypatch):
    import neuroview.training.cli as training_cli

    def cli_main(args):
        sys.exit(1)

    monkeypatch.setattr(training_cli, "cli_main", cli_main)
    with pytest.raises(SystemExit) as e:
        cli.main(["fit", "--config", "r.yaml"])
    assert e.value.code == 1


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT")
def test_a_real_sigint_during_a_lightning_fit_dies_of_sigint_after_atexit(tmp_path):
    """The process's own command line: a real SIGINT in a real trainer's step; before, Lightning's exit 1 (a shell
    loop over seeds went on to the next fit)."""
    ran = tmp_path / "atexit_ran"
    code = (_TRAINER.format(how="a real SIGINT", interrupt="os.kill(os.getpid(), signal.SIGINT); import time; "
                            "time.sleep(30)", root=str(tmp_path))
            + f"import atexit; atexit.register(lambda: open({str(ran)!r}, 'w').write('yes'))\n"
            "import neuroview.training.cli as t; t.cli_main = cli_main\n"
            "sys.argv = ['neuroview', 'fit', '--config', 'r.yaml']\n"
            "from neuroview.cli import main\nsys.exit(main())\n")
    done = _run(["-c", code])
    assert done.returncode == -signal.SIGINT, done.stderr[-2000:]  # before: 1
    assert done.stderr.endswith("neuroview fit: interrupted\n"), done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert ran.read_text() == "yes"
    assert not (tmp_path / "fit_returned").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell and process groups")
def test_one_ctrl_c_stops_a_shell_loop_of_commands(tmp_path):
    """Ctrl-C sends SIGINT to the whole foreground group: the loop's bash and the command it waits for. bash stops
    the loop only where the command died of SIGINT; one that exits 130 'handled' it, and the loop went on."""
    started = tmp_path / "started"
    body = f"open({str(started)!r}, 'a').write('x'); time.sleep(30)"
    script = tmp_path / "cmd.py"
    script.write_text(_STUB.format(body=body) + "from neuroview.cli import main\nsys.exit(main())\n")
    loop = f"for i in 1 2 3; do {shlex.quote(sys.executable)} {shlex.quote(str(script))}; done; echo loop-finished"
    p = subprocess.Popen(["bash", "-c", loop], start_new_session=True, cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists()
        os.killpg(p.pid, signal.SIGINT)  # one Ctrl-C
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert started.read_text() == "x"  # before: "xx" - the next command of the loop started
    assert "loop-finished" not in out
    assert "neuroview zoo: interrupted" in err


# --- review R7 finding 1: a reader gone during a command that does work ----------------------------------------


def test_a_reader_gone_during_a_run_lets_the_run_finish_and_exits_141(monkeypatch, capsys, tmp_path):
    """A stand-in for ``neuroview fit ... | head -c 300``: a progress bar (tqdm, as Lightning's) writes to stdout
    after the reader is gone, then the run saves its checkpoint. The run must reach its save, and the exit must
    not be 0: what it printed after the reader left is lost."""
    tqdm = pytest.importorskip("tqdm")
    import neuroview.training.cli as training_cli

    def cli_main(args):
        for _ in tqdm.tqdm(range(3), file=sys.stdout, mininterval=0):
            print("epoch done")  # at the first of these writes the reader is gone (BrokenPipeError)
        (tmp_path / "last.ckpt").write_text("saved")

    monkeypatch.setattr(training_cli, "cli_main", cli_main)
    out = os.fdopen(_closed_pipe(), "w")
    monkeypatch.setattr(sys, "stdout", out)
    code = cli.main(["fit", "--config", "r.yaml"])
    assert sys.stdout is out  # the stand-in stdout put back
    out.close()
    assert (tmp_path / "last.ckpt").read_text() == "saved"  # before: exit 0, no checkpoint (the run ended at the bar)
    assert code == 141
    err = capsys.readouterr().err
    assert err == ("neuroview fit: the reader of its output (stdout) went away during the run; the run went on to its "
                   "end, but what it printed after that point was lost\n")


def test_a_real_fit_into_a_closed_pipe_saves_its_checkpoint_and_exits_nonzero(tmp_path):
    """The whole path, as R7's ``fit_head.sh``: Lightning's own progress bar on a real (tiny) training run."""
    done = _into_closed_pipe(["-m", "neuroview", "fit", "--config", "recipes/digits_nv_small_cnn.yaml",
                              "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                              "--trainer.limit_val_batches", "1", "--trainer.default_root_dir", str(tmp_path)], timeout=300)
    assert list(tmp_path.rglob("*.ckpt")), done.stderr[-2000:]  # before: none (the run stopped at its first update)
    assert done.returncode == 141, done.stderr[-2000:]  # before: 0
    assert "Traceback" not in done.stderr
    assert done.stderr.rstrip().endswith("neuroview fit: the reader of its output (stdout) went away during the run; "
                                         "the run went on to its end, but what it printed after that point was lost")


def test_a_broken_pipe_a_work_command_raises_itself_stops_it_with_one_line_and_exit_1(monkeypatch, capsys):
    """A write to stdout that the guard does not see (a stream object taken before the run began) still ends the
    command; it must not read as success."""
    import neuroview.training.sparsify_cli as sparsify_cli

    def sparsify(rest):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sparsify_cli, "main", sparsify)
    out = os.fdopen(_closed_pipe(), "w")
    monkeypatch.setattr(sys, "stdout", out)
    assert cli.main(["sparsify", "nv_lite.gunpoint"]) == 1  # before: 0
    out.close()
    assert capsys.readouterr().err == ("neuroview sparsify: stopped: the reader of its output (stdout) went away "
                                       "during the run; nothing after that point was done or saved\n")


@pytest.mark.parametrize("args", [["help", "zoo"], ["help"], ["--version"], ["sparsify", "--help"]])
def test_a_listing_cut_by_its_reader_still_ends_quietly(args):
    done = _into_closed_pipe(["-m", "neuroview", *args])
    assert (done.returncode, done.stderr) == (0, "")


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
    for argv in (["help"], ["help", "help"], ["help", "--help"], ["help", "-h"]):  # the last two: review R7, 3
        assert cli.main(argv) == 0, argv
        captured = capsys.readouterr()
        assert captured.out.startswith("usage: neuroview <command> [options]") and captured.err == "", argv


@pytest.mark.parametrize("word", ["--version", "-V"])
def test_help_version_prints_the_version(word, capsys):
    from neuroview._version import __version__

    assert cli.main(["help", word]) == 0  # before: "unknown command '--version'", exit 2
    assert capsys.readouterr().out == f"neuroview {__version__}\n"


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
