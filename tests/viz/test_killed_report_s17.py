"""A report killed (SIGKILL: no Python handler runs) leaves its ``--out`` as it was, and the next run works (probe
s17, finding 4): the staging folder stayed hidden inside ``--out``, so the next run refused it as "not empty"
while ``ls`` showed it empty and ``--overwrite`` kept it for good; a kill while the files were moved in left two
models' files mixed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402
from torch import nn  # noqa: E402

import neuroview as nv  # noqa: E402
from neuroview import _io  # noqa: E402
from neuroview.viz import report as report_cli  # noqa: E402
from neuroview.viz.report import write_report  # noqa: E402

#: A child that writes the report of a seed-argv[2] network into argv[1] (overwrite when argv[4] is "1") and kills
#: itself with SIGKILL where argv[3] says: "built" (every file written, none moved in yet) or "move<k>" (at the
#: k-th file moved into the folder).
CHILD = textwrap.dedent("""
    import os, signal, sys
    import matplotlib; matplotlib.use("Agg")
    import torch; torch.set_num_threads(1)
    from neuroview.viz import report_writer
    sys.path.insert(0, sys.argv[5])
    from test_killed_report_s17 import _net
    out, where = sys.argv[1], sys.argv[3]
    real_all, real_replace, moves = report_writer._write_all, os.replace, [0]
    def write_all(*a, **k):
        files = real_all(*a, **k)
        if where == "built":
            os.kill(os.getpid(), signal.SIGKILL)
        return files
    def replace(a, b):
        moves[0] += os.path.dirname(os.path.realpath(b)) == os.path.realpath(out) and "neuroview-stage" in str(a)
        if where == f"move{moves[0]}":
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(a, b)
    report_writer._write_all, os.replace = write_all, replace
    net, x, y = _net(int(sys.argv[2]))
    report_writer.write_report(net, x, y, out, examples=1, progress=False, dpi=30, overwrite=sys.argv[4] == "1",
                               about={"run": sys.argv[2]})
""")


def _net(seed: int):
    torch.manual_seed(seed)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), 3, input_shape=(1, 8, 8)).eval()
    return net, torch.rand(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])


def _child(out: Path, seed: int, where: str, overwrite: bool) -> int:
    r = subprocess.run([sys.executable, "-c", CHILD, str(out), str(seed), where, "1" if overwrite else "0",
                        os.path.dirname(__file__)], capture_output=True, text=True, timeout=300)
    assert r.returncode == -9, r.stderr[-2000:]
    return r.returncode


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_a_killed_report_leaves_out_empty_and_the_next_run_works(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    _child(out, 1, "built", overwrite=False)
    assert os.listdir(out) == []  # before: .neuroview-stage.<random>.tmp inside, with the killed run's files
    net, x, y = _net(1)
    files = write_report(net, x, y, out, examples=1, progress=False, dpi=30)  # before: "'out' is not empty"
    assert sorted(os.listdir(out)) == sorted(files) and "index.html" in files
    assert os.listdir(tmp_path) == ["out"]  # the killed run's staging folder (beside out) removed


def test_a_killed_report_into_a_new_folder_is_cleaned_by_the_next_run(tmp_path):
    out = tmp_path / "new"
    _child(out, 1, "built", overwrite=False)
    assert not out.exists()
    net, x, y = _net(1)
    write_report(net, x, y, out, examples=1, progress=False, dpi=30)
    assert os.listdir(tmp_path) == ["new"]  # before: .new.<random>.tmp beside it, for good


def test_a_kill_while_a_report_is_moved_in_leaves_the_old_one_to_the_next_run(tmp_path):
    out = tmp_path / "out"
    net, x, y = _net(0)
    write_report(net, x, y, out, examples=1, progress=False, dpi=30, about={"run": "0"})
    (out / "notes.txt").write_text("mine")
    before = _snapshot(out)
    _child(out, 1, "move4", overwrite=True)
    _io.recover_dir(out)  # what the next run does first
    # before: 3 files of the new report beside the old report.json and index.html, one old file hidden
    assert _snapshot(out) == before and os.listdir(tmp_path) == ["out"]
    net, x, y = _net(1)
    files = write_report(net, x, y, out, examples=1, progress=False, dpi=30, overwrite=True, about={"run": "1"})
    assert '"run": "1"' in (out / "report.json").read_text()
    assert set(os.listdir(out)) == set(files) | {"notes.txt"}  # the old report's own other files gone
    assert os.listdir(tmp_path) == ["out"]


def test_explain_after_a_killed_run_writes_its_report(tmp_path, capsys):
    out = tmp_path / "rep"
    out.mkdir()
    args = ["--model", "nv_small_cnn.digits", "--out", str(out), "--samples", "8", "--examples", "0", "--no-gallery",
            "--no-progress", "--dpi", "30"]
    net, x, y = _net(1)
    _child(out, 1, "move2", overwrite=True)  # a kill mid-move: two files of the killed report in --out
    assert any(not n.startswith(".") for n in os.listdir(out))
    # before: "neuroview explain: out_dir (--out): ... is not empty" (its own leftovers), exit 2
    assert report_cli.main(args) == 0, capsys.readouterr().err
    assert "index.html" in os.listdir(out) and not any(n.startswith(".") for n in os.listdir(out))
    assert os.listdir(tmp_path) == ["rep"]
