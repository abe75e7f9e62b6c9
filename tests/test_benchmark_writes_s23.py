"""Benchmark scripts never write over committed results by accident (probe P6 of session 23, findings 2, 4, 5):

- gpu_cost.py and fused_cost.py on a machine without CUDA and without ``--out`` refuse in one line naming the
  ways out, rather than timing on the CPU into the GPU-named files the README links (``--small`` and ``--out``
  still write, as device_check.sh runs them);
- sparsify_choice.py and sparsify_budget_choice.py ``--report`` print and leave their .md (its hand-written note on
  where the networks came from) as it is; a run that walks keeps that note and names what it walked;
- explain_memory.py, compiled_slopes.py and vision_models.py parse their arguments (``--help``, an unknown flag),
  explain_memory.py writes where ``--out`` says, and every script of benchmarks/ answers ``--help`` with its usage
  within seconds, running nothing.

Nothing here measures or trains: the committed files are copied under ``tmp_path``, the scripts are pointed there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"
TINY = ["--models", "resnet50", "--precisions", "fp32", "--batch", "1", "--size", "32", "--classes", "4",
        "--width", "0.125", "--source", "own"]


def _results(tmp_path: Path, *names: str) -> Path:
    """A results folder under ``tmp_path`` holding copies of the committed ``names``."""
    out = tmp_path / "results"
    out.mkdir()
    for name in names:
        shutil.copy(RESULTS / name, out / name)
    return out


def _same(folder: Path, *names: str) -> bool:
    return all((folder / n).read_bytes() == (RESULTS / n).read_bytes() for n in names)


# ------------------------------------------------------------------ finding 2: GPU files on a CPU machine
@pytest.mark.parametrize("device", [[], ["--device", "cpu"]], ids=["auto", "cpu"])
def test_gpu_cost_without_cuda_or_out_refuses_and_keeps_the_gpu_files(benchmark_script, tmp_path, monkeypatch,
                                                                       capsys, one_thread, device):
    gpu_cost = benchmark_script("gpu_cost")
    files = ("gpu_cost.json", "gpu_cost.md")
    monkeypatch.setattr(gpu_cost, "OUT", _results(tmp_path, *files))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = TINY + ["--no-compile", "--repeats", "1", "--warmup", "0", "--max-seconds", "1e-9", *device]
    with pytest.raises(SystemExit) as e:
        gpu_cost.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in ("--small", "--out", "--device", "gpu_cost.json")), err
    assert _same(gpu_cost.OUT, *files)
    assert sorted(p.name for p in gpu_cost.OUT.iterdir()) == sorted(files)  # and nothing else written
    gpu_cost.main(argv + ["--out", "mine"])  # named: written, as CPU figures
    assert json.loads((gpu_cost.OUT / "mine.json").read_text())["meta"]["device"] == "cpu"
    assert _same(gpu_cost.OUT, *files)


def test_fused_cost_without_cuda_or_out_refuses_and_keeps_the_gpu_files(benchmark_script, tmp_path, monkeypatch,
                                                                        capsys, one_thread):
    fused_cost = benchmark_script("fused_cost")
    files = ("fused_cost_gpu.json", "fused_cost_gpu.md")
    monkeypatch.setattr(fused_cost, "OUT", _results(tmp_path, *files))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(fused_cost, "measure", lambda *a, **k: {"error": "stub: nothing measured"})
    with pytest.raises(SystemExit) as e:
        fused_cost.main(TINY)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in ("--small", "--out", "fused_cost_gpu.json")), err
    assert _same(fused_cost.OUT, *files)
    fused_cost.main(TINY + ["--out", "mine"])
    assert json.loads((fused_cost.OUT / "mine.json").read_text())["meta"]["device_name"] == "CPU"
    assert _same(fused_cost.OUT, *files)


def test_device_check_names_an_out_or_small_for_every_cost_run():
    """device_check.sh's runs of both scripts pass --out (or --small): the refusal never stops one of its phases."""
    text = (BENCH / "device_check.sh").read_text().replace("\\\n", " ")
    runs = [ln for ln in text.splitlines() if ("gpu_cost.py " in ln or "fused_cost.py " in ln)
            and "python3 benchmarks/" in ln and not ln.lstrip().startswith("#")]
    assert len(runs) == 6 and all("--out " in ln for ln in runs), runs


# ------------------------------------------------------------------ finding 4: --report keeps the .md
def _rows(path: Path, keys) -> str:
    rows = json.loads(path.read_text())
    return json.dumps({k: rows[k] for k in keys}, indent=1)


@pytest.fixture
def choice(benchmark_script, tmp_path, monkeypatch, one_thread):
    sc = benchmark_script("sparsify_choice")
    out = _results(tmp_path, "sparsify_choice.md")
    keys = ["nv_fcn1d.gunpoint:1", "nv_lstm.japanesevowels:1", "nv_lstm.japanesevowels:0.97"]
    (out / "sparsify_choice.json").write_text(_rows(RESULTS / "sparsify_choice.json", keys))
    monkeypatch.setattr(sc, "RESULTS", out / "sparsify_choice.json")
    monkeypatch.setattr(sc, "REPORT", out / "sparsify_choice.md")
    return sc, out


def test_sparsify_choice_report_prints_and_keeps_the_md_note(choice, monkeypatch, capsys):
    sc, out = choice
    monkeypatch.setattr(sys, "argv", ["sparsify_choice.py", "--report"])  # as run from the command line
    assert sc.main() == 0
    printed = capsys.readouterr().out
    assert "| l1_ratio (RNN) | rule |" in printed and "| 1 | deviance 0 | " in printed and "/2 |" in printed
    assert _same(out, "sparsify_choice.md")


def test_sparsify_choice_run_that_walks_keeps_the_note_and_names_the_entry(choice, monkeypatch):
    sc, out = choice
    row = json.loads((out / "sparsify_choice.json").read_text())["nv_fcn1d.gunpoint:1"]
    monkeypatch.setattr(sc, "walk", lambda name, ratios: [{**row, "entry": name, "l1_ratio": a} for a in ratios])
    monkeypatch.setattr(sys, "argv", ["sparsify_choice.py", "--entries", "nv_new.set"])
    assert sc.main() == 0
    text = (out / "sparsify_choice.md").read_text()
    assert "a re-run will not give these networks back" in text and "run at commit 3102f1b" in text
    assert "nv_new.set" in text.split("| l1_ratio")[0]  # the note names the entry walked now
    assert "| 1 | deviance 0 | " in text and "/3 |" in text  # the table of the three CNN runs and the new one


def test_sparsify_budget_choice_report_keeps_its_md_files(benchmark_script, tmp_path, monkeypatch, capsys, one_thread):
    sb = benchmark_script("sparsify_budget_choice")
    out = _results(tmp_path, "sparsify_budget_choice.md", "sparsify_distill_choice.md")
    (out / "sparsify_budget_choice.json").write_text(_rows(RESULTS / "sparsify_budget_choice.json",
                                                           ["nv_lite.gunpoint:0.01:0", "nv_gru.gunpoint:0.01:0"]))
    (out / "sparsify_distill_choice.json").write_text(_rows(RESULTS / "sparsify_distill_choice.json",
                                                            ["nv_lite.arrowhead:0.1:0", "nv_lite.arrowhead:0.1:0:T1"]))
    monkeypatch.setattr(sb, "RESULTS", out / "sparsify_budget_choice.json")
    monkeypatch.setattr(sb, "REPORT", out / "sparsify_budget_choice.md")
    monkeypatch.setattr(sb, "DISTILL", out / "sparsify_distill_choice.json")
    for argv in (["--report"], ["--report", "--distill", "1"]):
        monkeypatch.setattr(sys, "argv", ["sparsify_budget_choice.py", *argv])
        assert sb.main() == 0
        assert "| " in capsys.readouterr().out
    assert _same(out, "sparsify_budget_choice.md", "sparsify_distill_choice.md")


# ------------------------------------------------------------------ finding 5: argv parsed, --help answered
def test_explain_memory_writes_where_out_says(benchmark_script, tmp_path, monkeypatch, one_thread):
    em = benchmark_script("explain_memory")
    monkeypatch.setattr(em, "OUT", _results(tmp_path, "explain_memory.json"))
    monkeypatch.setattr(em, "backbone", lambda: torch.nn.Sequential(torch.nn.Conv2d(3, 8, 1), torch.nn.ReLU()))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the script asks for 2: not in the test's process
    em.main(["--out", str(tmp_path / "check")])
    d = json.loads((tmp_path / "check.json").read_text())
    assert d["units"] == 8 and d["command"] == f"python benchmarks/explain_memory.py --out {tmp_path / 'check'}"
    assert _same(em.OUT, "explain_memory.json")


@pytest.mark.parametrize("script", ["explain_memory", "compiled_slopes", "vision_models"])
def test_script_parses_its_arguments(benchmark_script, script, capsys):
    main = benchmark_script(script).main
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("usage:")
    with pytest.raises(SystemExit) as e:
        main(["--no-such-flag"])
    assert e.value.code == 2 and "--no-such-flag" in capsys.readouterr().err


SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if "__main__" in p.read_text())

# One interpreter imports torch and neuroview once; each script then runs as __main__ with ``--help`` in a child
# forked from it, from a copy of benchmarks/ (a script that ignored --help would write there, not here), and is
# stopped after TIMEOUT seconds.
HELP_RUNNER = r"""
import contextlib, io, json, multiprocessing as mp, os, runpy, sys, time
import torch, neuroview
bench, timeout = sys.argv[1], float(sys.argv[2])

def one(script, conn):
    sys.path.insert(0, bench)
    sys.argv = [script, "--help"]
    out, code = io.StringIO(), None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            runpy.run_path(os.path.join(bench, script), run_name="__main__")
        except SystemExit as e:
            code = e.code
        except BaseException as e:
            code = f"{type(e).__name__}: {e}"
    conn.send((code, out.getvalue()[:1000]))

res, ctx = {}, mp.get_context("fork")
for script in sys.argv[3:]:
    a, b = ctx.Pipe(False)
    t = time.perf_counter()
    p = ctx.Process(target=one, args=(script, b))
    p.start()
    got = a.recv() if a.poll(timeout) else ("timed out", "")
    p.kill()
    p.join()
    res[script] = [got[0], got[1], round(time.perf_counter() - t, 1)]
print(json.dumps(res))
"""
TIMEOUT = 15.0


@pytest.fixture(scope="module")
def helps(tmp_path_factory):
    copy = tmp_path_factory.mktemp("help") / "benchmarks"
    shutil.copytree(BENCH, copy, ignore=shutil.ignore_patterns("results", ".cache", "__pycache__"))
    (copy / "results").mkdir()
    p = subprocess.run([sys.executable, "-c", HELP_RUNNER, str(copy), str(TIMEOUT), *SCRIPTS], cwd=copy.parent,
                       capture_output=True, text=True, timeout=TIMEOUT * len(SCRIPTS) + 60)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1]), copy / "results"


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_benchmark_answers_help_with_its_usage(helps, script):
    res, results = helps
    code, out, seconds = res[script]
    assert code in (0, None) and out.startswith("usage:"), (code, out[:300], seconds)
    assert seconds < TIMEOUT


def test_no_benchmark_wrote_anything_for_help(helps):
    assert sorted(p.name for p in helps[1].iterdir()) == []
