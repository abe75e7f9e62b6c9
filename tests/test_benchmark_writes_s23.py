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


# ------------------------------------------------------------------ review R1 of d2e383d: the file a run writes
# The refusal holds on the file a run would write, not on whether --out was typed: an empty --out, --out naming the
# GPU file itself, and a plain run on another GPU (an H100, what this project lends by default) wrote over the H200's.
H200, H100 = "NVIDIA H200", "NVIDIA H100 80GB HBM3"
FAST = ["--no-compile", "--repeats", "1", "--warmup", "0", "--max-seconds", "1e-9"]  # gpu_cost: phases skipped


@pytest.fixture
def backend_flags():
    """apply_settings sets cuDNN's autotuner and TF32 on a CUDA device: given back after the test."""
    flags = torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32
    yield
    torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32 = flags


@pytest.fixture
def gpu(monkeypatch, backend_flags):
    """``gpu(name)``: what a script sees on a CUDA machine with that GPU; tensors stay on the CPU here."""
    def fake(name: str):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: name)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        randn, randint = torch.randn, torch.randint
        monkeypatch.setattr(torch, "randn", lambda *a, device=None, **k: randn(*a, **k))
        monkeypatch.setattr(torch, "randint", lambda *a, device=None, **k: randint(*a, **k))
    return fake


def _cost(benchmark_script, monkeypatch, tmp_path, script: str, files=()):
    mod = benchmark_script(script)
    monkeypatch.setattr(mod, "OUT", _results(tmp_path, *files))
    if script == "fused_cost":
        monkeypatch.setattr(mod, "measure", lambda *a, **k: {"error": "stub: nothing measured"})
    return mod, (TINY + FAST if script == "gpu_cost" else TINY)


def _refused(main, argv, capsys) -> str:
    """The one line ``main(argv)`` exits 2 with."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1, (e.value.code, err)
    return err


GPU_FILES = {"gpu_cost": ("gpu_cost.json", "gpu_cost.md"), "fused_cost": ("fused_cost_gpu.json", "fused_cost_gpu.md")}


@pytest.mark.parametrize("script", ["gpu_cost", "fused_cost"])
@pytest.mark.parametrize("cuda", [False, True], ids=["cpu", "h200"])
def test_an_empty_out_is_refused_by_name(benchmark_script, tmp_path, monkeypatch, capsys, one_thread, gpu, script,
                                         cuda):
    """``--out ""`` (an unset $NAME in a shell line) fell back to the default stem and wrote the GPU files."""
    files = GPU_FILES[script]
    if cuda:
        gpu(H200)
    else:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    mod, argv = _cost(benchmark_script, monkeypatch, tmp_path, script, files)
    for empty in ("", " "):
        err = _refused(mod.main, argv + ["--out", empty], capsys)
        assert err.startswith("--out:") and f"got {empty!r}" in err, err
    assert _same(mod.OUT, *files) and sorted(p.name for p in mod.OUT.iterdir()) == sorted(files)


@pytest.mark.parametrize("script", ["gpu_cost", "fused_cost"])
@pytest.mark.parametrize("committed", [True, False], ids=["file-there", "file-gone"])
def test_a_cpu_run_refuses_out_naming_the_gpu_file(benchmark_script, tmp_path, monkeypatch, capsys, one_thread,
                                                   script, committed):
    files = GPU_FILES[script]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    mod, argv = _cost(benchmark_script, monkeypatch, tmp_path, script, files if committed else ())
    stem = files[0][:-5]
    for out in (stem, f"../results/{stem}"):
        err = _refused(mod.main, argv + ["--out", out], capsys)
        assert err.startswith("--out:") and f"results/{stem}.json" in err and "--small" in err, err
        assert "is_available(): False" in err, err
    assert sorted(p.name for p in mod.OUT.iterdir()) == sorted(files if committed else [])
    assert not committed or _same(mod.OUT, *files)


@pytest.mark.parametrize("script", ["gpu_cost", "fused_cost"])
def test_another_gpu_refuses_the_h200_files_and_writes_its_own(benchmark_script, tmp_path, monkeypatch, capsys,
                                                               one_thread, gpu, script):
    """README's plain commands on an H100: refused naming both machines and the ways out; the H200 itself may
    write its file again, and the H100 a file of its own (again, without --merge: it is the H100's)."""
    files = GPU_FILES[script]
    gpu(H100)
    mod, argv = _cost(benchmark_script, monkeypatch, tmp_path, script, files)
    for extra in ([], ["--out", files[0][:-5]]):
        err = _refused(mod.main, argv + extra, capsys)
        assert err.startswith("--out:") and all(w in err for w in (H200, H100, "2026-12-04", f"results/{files[0]}")), err
        assert ("--merge" in err) == (script == "gpu_cost"), err  # fused_cost has no --merge: not offered
    assert _same(mod.OUT, *files) and sorted(p.name for p in mod.OUT.iterdir()) == sorted(files)
    for _ in range(2):
        mod.main(argv + ["--out", "h100"])
        assert json.loads((mod.OUT / "h100.json").read_text())["meta"]["device_name"] == H100
    assert _same(mod.OUT, *files)
    gpu(H200)
    mod.main(argv)  # the H200's own file: a run there rewrites it, as before
    assert json.loads((mod.OUT / files[0]).read_text())["meta"]["device_name"] == H200
    assert json.loads((mod.OUT / files[0]).read_text())["meta"]["command"].endswith(" ".join(argv))


@pytest.mark.parametrize("script", ["gpu_cost", "fused_cost"])
def test_a_results_file_that_records_no_machine_is_refused(benchmark_script, tmp_path, monkeypatch, capsys,
                                                           one_thread, script):
    """Where the script cannot tell whose figures a file holds, it does not write over them."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    mod, argv = _cost(benchmark_script, monkeypatch, tmp_path, script)
    (mod.OUT / "mine.json").write_text('{"models": {"resnet50": {}}}\n')
    err = _refused(mod.main, argv + ["--out", "mine"], capsys)
    assert err.startswith("--out:") and "mine.json" in err and "device_name" in err, err
    assert (mod.OUT / "mine.json").read_text() == '{"models": {"resnet50": {}}}\n'
    assert sorted(p.name for p in mod.OUT.iterdir()) == ["mine.json"]


def test_gpu_cost_merge_of_another_gpu_is_still_the_merge_refusal(benchmark_script, tmp_path, monkeypatch, capsys,
                                                                  one_thread, gpu):
    gpu(H100)
    mod, argv = _cost(benchmark_script, monkeypatch, tmp_path, "gpu_cost", GPU_FILES["gpu_cost"])
    with pytest.raises(SystemExit) as e:
        mod.main(argv + ["--merge"])
    assert str(e.value.code).startswith("--merge: the earlier run differs in ['device_name'")
    assert _same(mod.OUT, *GPU_FILES["gpu_cost"])


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_gpu_cost_device_cuda_without_cuda_is_one_line(benchmark_script, tmp_path, monkeypatch, capsys, one_thread,
                                                       backend_flags, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    mod, argv = _cost(benchmark_script, monkeypatch, tmp_path, "gpu_cost")
    err = _refused(mod.main, argv + ["--device", device, "--out", "mine"], capsys)
    assert err.startswith("--device:") and f"got {device!r}" in err and "is_available(): False" in err, err
    assert "--device cpu" in err and "Traceback" not in err, err
    assert list(mod.OUT.iterdir()) == []


# ------------------------------------------------------------------ write_report keeps the note once
def _walking(benchmark_script, tmp_path, monkeypatch, distill: bool):
    sb = benchmark_script("sparsify_budget_choice")
    name = "sparsify_distill_choice" if distill else "sparsify_budget_choice"
    out = _results(tmp_path, f"{name}.md")
    keys = ["nv_lite.arrowhead:0.1:0", "nv_lite.arrowhead:0.1:0:T1"] if distill else ["nv_lite.gunpoint:0.1:0"]
    (out / f"{name}.json").write_text(_rows(RESULTS / f"{name}.json", keys))
    rows = json.loads((out / f"{name}.json").read_text())
    monkeypatch.setattr(sb, "RESULTS", out / "sparsify_budget_choice.json")
    monkeypatch.setattr(sb, "REPORT", out / "sparsify_budget_choice.md")
    monkeypatch.setattr(sb, "DISTILL", out / "sparsify_distill_choice.json")
    monkeypatch.setattr(sb, "walk", lambda entry, relaxed, seed, t: {
        **rows[keys[0] if t is None else keys[-1]], "entry": entry, "seed": seed})
    return sb, out / f"{name}.md"


@pytest.mark.parametrize("distill", [True, False], ids=["distill", "budget"])
def test_a_walking_budget_choice_run_keeps_the_note_once(benchmark_script, tmp_path, monkeypatch, capsys, one_thread,
                                                         distill):
    """The distill report starts with a '## ' heading: it was kept as part of the note, one stale copy a run."""
    sb, md = _walking(benchmark_script, tmp_path, monkeypatch, distill)
    before = md.read_text().split("\n")
    note = before[2]  # the committed note: the command the figures come from
    assert note.startswith("`python benchmarks/sparsify_budget_choice.py")
    for seed in ("7", "8"):
        argv = ["--entries", "nv_lite.arrowhead", "--seeds", seed, "--relaxed", "0.1"] + (["--distill", "1"] * distill)
        assert sb.main(argv) == 0
    capsys.readouterr()
    lines = md.read_text().split("\n")
    assert lines.count(before[0]) == 1 and lines.count(note) == 1, lines[:12]
    walked = [ln for ln in lines if " new run(s) (" in ln]
    assert len(walked) == 2 and "--seeds 7" in walked[0] and "--seeds 8" in walked[1], walked
    first = next(i for i, ln in enumerate(lines) if ln.startswith(("|", "## ")))
    assert lines[:first] == [before[0], "", note, "", walked[0], "", walked[1], ""], lines[:first]
    if distill:  # one heading, with the runs it counts now (the arrowhead's seed 0 and the two walked)
        assert [ln for ln in lines if ln.startswith("## ")] == [
            "## Labels or the dense network's probabilities (`--distill`), relaxed 0.1, 3 runs"]
    else:
        assert [ln for ln in lines if ln.startswith("| relaxed |")] == [before[4]]
