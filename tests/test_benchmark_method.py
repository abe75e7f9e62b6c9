"""The method of the cost benchmarks, where a figure could flatter NeuroView or not be reproducible
(no timing: tiny runs, the files they write and the plan of benchmarks/device_check.sh).

- the CPU cost scripts that time training flush subnormal floats to zero (a fading gradient in
  subnormals made the standard tanh RNN's train step ~10x slower) and record it;
- each cost result records the command it was made by, with every option it was given;
- fused_cost.py measures in gpu_cost.py's setting (finite check, cuDNN autotuner, TF32), so rows of
  the two scripts can share a table;
- device_check.sh's default call fits the device tool's one call, reaches the compile phase with a
  slot it can finish in, and no gpu_cost run drops the figures of an earlier one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "device_check.sh"


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)  # the scripts set it for their process: not for the other tests


def _subnormal_product_flushed() -> bool:
    return (torch.tensor([1e-30]) * torch.tensor([1e-10])).item() == 0.0  # 1e-40 is subnormal in float32


def test_rnn_cost_flushes_subnormals_and_records_its_whole_command(benchmark_script, tmp_path, monkeypatch,
                                                                   one_thread):
    rnn_cost = benchmark_script("rnn_cost")
    argv = ["--configs", "rnn", "--batch", "4", "--steps", "6", "--hidden", "4", "--repeats", "1",
            "--permutation-every", "1", "--perm-batch", "8", "--threads", "1", "--out", str(tmp_path / "r")]
    supported = torch.set_flush_denormal(False)  # what the platform supports (x86 with SSE3: True)
    monkeypatch.setattr(sys, "argv", ["rnn_cost.py", *argv])  # as run from the command line
    rnn_cost.main()
    meta = json.loads((tmp_path / "r.json").read_text())["meta"]
    assert meta["command"] == "python benchmarks/rnn_cost.py " + " ".join(argv)
    assert meta["flush_denormal"] is supported
    assert _subnormal_product_flushed() is supported
    assert ("subnormals flushed to zero" in (tmp_path / "r.md").read_text()) is supported
    torch.set_flush_denormal(False)
    rnn_cost.main(argv + ["--keep-denormals"])
    assert json.loads((tmp_path / "r.json").read_text())["meta"]["flush_denormal"] is False
    assert not _subnormal_product_flushed()


def test_cnn_cost_flushes_subnormals_and_records_its_whole_command(benchmark_script, tmp_path, monkeypatch, one_thread):
    cnn_cost = benchmark_script("cnn_cost")
    monkeypatch.setattr(cnn_cost, "OUT", tmp_path)  # never over the committed results
    argv = ["--quantizers", "none", "--batch", "2", "--repeats", "1", "--threads", "1"]
    supported = torch.set_flush_denormal(False)
    monkeypatch.setattr(sys, "argv", ["cnn_cost.py", *argv])
    cnn_cost.main()
    d = json.loads((tmp_path / "cnn_cost.json").read_text())
    assert d["meta"]["command"] == "python benchmarks/cnn_cost.py " + " ".join(argv)
    assert d["meta"]["flush_denormal"] is supported and d["meta"]["quantizers"] == ["none"]
    assert list(d["ratios"]) == ["none"]


def test_attribution_cost_records_its_whole_command(benchmark_script, tmp_path, monkeypatch, one_thread):
    attribution_cost = benchmark_script("attribution_cost")
    monkeypatch.setattr(attribution_cost, "OUT", tmp_path)
    # the measurement itself is not what is tested: stand-ins keep the run short
    med = {"standard forward": 1.0, "NeuroView explain (hard codes)": 2.0, "NeuroView-RNN explain": 2.0}
    monkeypatch.setattr(attribution_cost, "measure", lambda jobs, rounds, reps: {k: med.get(k, 3.0) for k in jobs})
    argv = ["--batch", "2", "--rounds", "1", "--n-steps", "2", "--internal-batch", "4", "--threads", "1"]
    result = attribution_cost.main(argv)
    assert result["meta"]["command"] == "python benchmarks/attribution_cost.py " + " ".join(argv)


def test_fused_cost_measures_in_gpu_costs_setting(benchmark_script, tmp_path, monkeypatch, one_thread):
    gpu_cost = benchmark_script("gpu_cost")
    fused_cost = benchmark_script("fused_cost")
    monkeypatch.setattr(fused_cost, "OUT", tmp_path)
    seen = []

    def measure(name, prec, args, device, x, y):  # what the benchmark would build its pair with
        _, net, _ = fused_cost.build_pair(name, args, device, x)
        seen.append(net.check_finite)
        return {"error": "not measured (test)"}

    monkeypatch.setattr(fused_cost, "measure", measure)
    fused_cost.main(["--small", "--models", "resnet50", "--precisions", "fp32", "--out", "f"])
    meta = json.loads((tmp_path / "f.json").read_text())["meta"]
    assert seen == [True]  # gpu_cost's default: NeuroView checks its input for NaN (a host sync on CUDA)
    expected = gpu_cost.apply_settings(gpu_cost_args(gpu_cost), torch.device("cpu"))
    assert {k: meta.get(k) for k in expected} == expected
    assert "finite check on" in (tmp_path / "f.md").read_text()
    seen.clear()
    fused_cost.main(["--small", "--models", "resnet50", "--precisions", "fp32", "--out", "f", "--no-check-finite"])
    assert seen == [False] and json.loads((tmp_path / "f.json").read_text())["meta"]["check_finite"] is False


def gpu_cost_args(gpu_cost):
    """gpu_cost's own defaults of the setting options."""
    import argparse  # noqa: PLC0415

    p = argparse.ArgumentParser()
    gpu_cost.add_setting_args(p)
    return p.parse_args([])


def test_gpu_cost_merge_keeps_earlier_figures_when_its_budget_skips(benchmark_script, tmp_path, monkeypatch, one_thread):
    """A --merge run cut short by --max-seconds says what it skipped without dropping what an earlier run
    measured (device_check.sh merges every run into one file)."""
    gpu_cost = benchmark_script("gpu_cost")
    monkeypatch.setattr(gpu_cost, "OUT", tmp_path)
    argv = ["--device", "cpu", "--batch", "1", "--size", "32", "--classes", "4", "--models", "resnet50", "vit_b_16",
            "--max-seconds", "1e-9", "--phase-seconds", "1", "--compile-seconds", "1", "--out", "g"]
    gpu_cost.main(argv)  # everything skipped: the file exists, with the run's meta
    path = tmp_path / "g.json"
    d = json.loads(path.read_text())
    assert "skipped" in d["models"]["vit_b_16"]
    measured = {"precisions": {"fp32": {"ratios": {"train_step_ratio": 1.5}}},
                "compile": {"bf16": {"compiled_train_step_ratio": 1.4}}}
    d["models"]["resnet50"] = json.loads(json.dumps(measured))
    d["models"]["vit_b_16"]["compile"] = {"bf16": {"compiled_train_step_ratio": 1.2}}
    path.write_text(json.dumps(d))
    gpu_cost.main(argv + ["--merge"])
    after = json.loads(path.read_text())["models"]
    assert after["resnet50"] == measured
    assert after["vit_b_16"]["compile"] == {"bf16": {"compiled_train_step_ratio": 1.2}}


def _dry_plan(tmp_path, **env) -> str:
    text = SCRIPT.read_text()
    assert "DRY" in text, "device_check.sh has no DRY mode (it would run the measurements)"
    out = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                         env={**os.environ, "DRY": "1", "OUT": str(tmp_path / "out"), "L": str(tmp_path / "dlogs"),
                              **env})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_device_check_default_call_fits_one_device_call_and_reaches_compile(tmp_path):
    plan = _dry_plan(tmp_path)
    limits = {int(p): int(s) for p, s in re.findall(r"phase (\d) (\d+) s", plan)}
    total, end = map(int, re.search(r"= (\d+) s of END (\d+) s", plan).groups())
    assert total <= end <= 560 and "OVER" not in plan
    assert total == int(re.search(r"setup (\d+) s", plan).group(1)) + sum(limits.values())
    # the compile phase is in the default call, with a slot longer than a measured compile phase (148 s)
    assert limits.get(5, 0) >= 160
    # a plan over the budget says so
    assert "OVER" in _dry_plan(tmp_path, PHASES="0 3 4 5", ENSEMBLE="1")


def test_device_check_every_gpu_cost_run_merges():
    text = SCRIPT.read_text().replace("\\\n", " ")  # one line per command
    runs = [line for line in text.splitlines() if "benchmarks/gpu_cost.py" in line and not line.lstrip().startswith("#")]
    assert runs and all("--merge" in line for line in runs), runs
    # compile figures: a slot a compile phase can finish in, not the 60 s that cut it before
    compile_runs = [line for line in runs if "--compile-only" in line and "--small" not in line]
    assert compile_runs and all(int(re.search(r"--compile-seconds (\d+)", line).group(1)) >= 140 for line in compile_runs)


def test_device_check_dry_run_creates_and_removes_nothing(tmp_path):
    # phases 0 and 2 run the test suite on the GPU machine: a DRY plan wiped the running phase's pytest.log
    logs = tmp_path / "dlogs"
    logs.mkdir()
    (logs / "pytest.log").write_text("running")
    _dry_plan(tmp_path)
    assert (logs / "pytest.log").read_text() == "running"
    assert not (tmp_path / "out").exists()


def test_gpu_cost_merge_refuses_another_gpu_torch_or_repeats(benchmark_script, tmp_path, monkeypatch, one_thread):
    """The meta names one GPU, torch and number of rounds for every row: a merge from another would relabel
    the earlier rows (an H200's file merged on an H100)."""
    gpu_cost = benchmark_script("gpu_cost")
    monkeypatch.setattr(gpu_cost, "OUT", tmp_path)
    argv = ["--device", "cpu", "--batch", "1", "--size", "32", "--classes", "4", "--models", "resnet50",
            "--max-seconds", "1e-9", "--phase-seconds", "1", "--compile-seconds", "1", "--out", "g"]
    gpu_cost.main(argv)
    path = tmp_path / "g.json"
    d = json.loads(path.read_text())
    mine = dict(d["meta"])
    d["meta"].update({"device_name": "NVIDIA H200", "torch": "2.11.0+cu130", "date": "2026-12-04"})
    path.write_text(json.dumps(d))
    with pytest.raises(SystemExit, match=r"device_name.*torch.*NVIDIA H200"):
        gpu_cost.main(argv + ["--merge"])
    d["meta"].update({"device_name": mine["device_name"], "torch": mine["torch"], "repeats": mine["repeats"] + 1})
    path.write_text(json.dumps(d))
    with pytest.raises(SystemExit, match="repeats"):
        gpu_cost.main(argv + ["--merge"])
    d["meta"]["repeats"] = mine["repeats"]
    path.write_text(json.dumps(d))
    gpu_cost.main(argv + ["--merge"])  # the same machine and method: merged, both dates shown
    assert "2026-12-04, " in (tmp_path / "g.md").read_text()


def test_keep_denormals_after_a_flushing_run_in_the_same_process(benchmark_script, tmp_path, monkeypatch,
                                                                 one_thread):
    """--keep-denormals after a main() that flushed: flushing was left on while the meta said "kept"."""
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero")
    rnn_cost, cnn_cost = benchmark_script("rnn_cost"), benchmark_script("cnn_cost")
    monkeypatch.setattr(cnn_cost, "OUT", tmp_path)
    rargv = ["--configs", "rnn", "--batch", "4", "--steps", "6", "--hidden", "4", "--repeats", "1",
             "--permutation-every", "1", "--perm-batch", "8", "--threads", "1", "--out", str(tmp_path / "r")]
    cargv = ["--quantizers", "none", "--batch", "2", "--repeats", "1", "--threads", "1"]
    rnn_cost.main(rargv)
    assert _subnormal_product_flushed()
    rnn_cost.main(rargv + ["--keep-denormals"])  # nothing reset in between
    assert not _subnormal_product_flushed()
    assert json.loads((tmp_path / "r.json").read_text())["meta"]["flush_denormal"] is False
    cnn_cost.main(cargv)
    assert json.loads((tmp_path / "cnn_cost.json").read_text())["meta"]["flush_denormal"] is True
    cnn_cost.main(cargv + ["--keep-denormals"])
    assert not _subnormal_product_flushed()
    assert json.loads((tmp_path / "cnn_cost.json").read_text())["meta"]["flush_denormal"] is False


def test_run_all_dates_a_staged_result_by_its_file_not_its_old_commit(benchmark_script, tmp_path, monkeypatch):
    """A re-measured result staged with git add is not committed as is: `git diff --quiet` (worktree against
    the index) read it as committed and dated it by the old commit."""
    run_all = benchmark_script("run_all")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_AUTHOR_DATE": "2020-01-02T03:04:05Z",
           "GIT_COMMITTER_DATE": "2020-01-02T03:04:05Z"}
    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, env=env, check=True, capture_output=True)  # noqa: E731
    out = tmp_path / "x.json"
    out.write_text("{}")
    git("init", "-q")
    git("add", "x.json")
    git("commit", "-q", "-m", "old")
    assert run_all._written(out).startswith("2020-01-02")  # committed as is: its commit's date
    out.write_text('{"new": 1}')
    os.utime(out, (1700000000, 1700000000))  # 2023-11-14
    git("add", "x.json")
    assert run_all._written(out).startswith("2023-11-14")

    def broken(*a, **k):
        raise OSError("no git")
    monkeypatch.setattr(run_all.subprocess, "run", broken)  # no git: the file's time, no traceback
    assert run_all._written(out).startswith("2023-11-14")


def test_device_check_packs_every_result_file_it_writes():
    """SMOKE=1 PHASES=4's fused_cost wrote fused_cost_cpu_small, a name the pack's patterns do not take."""
    import fnmatch

    text = SCRIPT.read_text().replace("\\\n", " ")
    patterns = re.findall(r"\$R/(\*\w+\*)", re.search(r"^pack\(\).*?^}", text, re.M | re.S).group(0))
    assert patterns
    runs = [line for line in text.splitlines() if re.search(r"benchmarks/(gpu|fused)_cost\.py", line)
            and not line.lstrip().startswith("#")]
    assert len(runs) >= 4
    for line in runs:
        out = re.search(r"--out (\S+)", line)
        stem = out.group(1) if out else "gpu_cost"  # gpu_cost's default (fused_cost's: fused_cost_cpu_small, _gpu)
        assert out or "gpu_cost.py" in line, f"no --out: {line}"
        stem = stem.replace("$(date +%Y%m%d)", "20261206").replace('"$GOUT"', "gpu_cost_nvidia_h100_80gb_hbm3")
        assert any(fnmatch.fnmatch(stem, p) for p in patterns), line


def test_device_check_empties_its_own_logs_folder_under_tmp_only(tmp_path):
    """`L=${L:-/tmp/dlogs}` then `rm -rf "$L"`: an L inherited from the caller's shell was deleted. The folder is
    DC_LOGS, refused outside /tmp."""
    if not str(tmp_path).startswith("/tmp/"):
        pytest.skip("DC_LOGS must be under /tmp, and this run's tmp_path is not")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    env = {**os.environ, "OUT": str(tmp_path / "out"), "SMOKE": "1", "PHASES": " "}  # no phase: setup and pack
    env.pop("DC_LOGS", None)
    for bad in ("/home/someone", "/tmp", "/tmp/../etc", "/tmp//", "/tmp/.", "/tmp/./"):  # /tmp// emptied /tmp itself
        out = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=30,
                             env={**env, "DRY": "1", "DC_LOGS": bad})
        assert out.returncode == 2, out.stderr
        assert f"DC_LOGS: expected a folder under /tmp (it is emptied), got '{bad}'" in out.stderr
    out = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={**env, "L": str(victim), "DC_LOGS": str(tmp_path / "dlogs")})
    assert out.returncode == 0, out.stderr
    assert (victim / "keep.txt").read_text() == "mine"  # before: deleted with its folder
    assert (tmp_path / "dlogs").is_dir()


def test_device_check_writes_gpu_cost_of_another_torch_to_a_file_of_its_own(tmp_path):
    """results/gpu_cost.json is an H200's under torch 2.11.0+cu130: an H200 call with another torch merged into it,
    gpu_cost.py refused, and phases 3 and 5 measured nothing."""
    body = re.search(r"^gpu_out\(\) \{.*?^\}", SCRIPT.read_text(), re.M | re.S).group(0)
    results = tmp_path / "r"
    results.mkdir()
    (results / "gpu_cost.json").write_text(json.dumps({"meta": {"torch": "2.11.0+cu130"}, "rows": []}))

    def gout(gpu: str, torch_version: str) -> str:
        out = subprocess.run(["bash", "-c", f'{body}\ngpu_out "$1" "$2"', "_", gpu, torch_version],
                             capture_output=True, text=True, timeout=30, env={**os.environ, "R": str(results)})
        return out.stdout.strip()

    assert gout("NVIDIA H200", "2.11.0+cu130") == "gpu_cost"
    assert gout("NVIDIA H200", "2.12.0+cu130") == "gpu_cost_2_12_0_cu130"  # before: gpu_cost (refused)
    assert gout("NVIDIA H100 80GB HBM3", "2.12.0+cu130") == "gpu_cost_nvidia_h100_80gb_hbm3"  # no such file yet
    assert gout("NVIDIA H200", "") == "gpu_cost"  # torch unknown: gpu_cost.py names a mismatch itself
