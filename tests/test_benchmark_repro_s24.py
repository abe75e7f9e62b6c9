"""Three reproduction-script defects left by session 23 (probe F3 of session 24), each test written before its fix:

1. ``docs_tables.py``'s ``ucr_ensemble`` table took its sets from runs of every recipe version: a run of a version
   the table does not show, on a set of its own, added a row of blanks and ``--check`` failed;
2. ``ucr_accuracy.py --recipes ./recipes/x.yaml`` (or an absolute path) recorded and looked up the recipe under that
   spelling: its runs and table cells were another recipe's than ``recipes/x.yaml``'s;
3. ``device_check.sh`` phase 4 named fused_cost's file by the date alone: the second GPU of a day was refused
   (fused_cost.py does not write over another machine's file) and measured nothing.

Nothing here trains or measures: committed results are copied under ``tmp_path``, GPUs and training are faked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def _docs_block(root: Path, doc: str, name: str) -> str:
    """The table ``name`` as the document under ``root`` shows it (between its markers), read, not rendered."""
    text = (root / doc).read_text()
    return re.search(rf"<!-- table:{name} -->\n(.*?)<!-- /table:{name} -->", text, re.S).group(1).strip()


# ------------------------------------------------------------ 1. the ucr_ensemble table: the sets of the shown versions
def _member(recipe: str, dataset: str, seed: int, sha: str, acc: float) -> dict:
    return {"recipe": recipe, "set": dataset, "seed": seed, "sha": sha, "test_acc": acc,
            "logits": [[0.0, 1.0]] * 4, "labels": [1, 1, 0, 1], "seconds": 1.0}


def test_ucr_ensemble_docs_table_leaves_out_a_set_with_runs_of_unshown_versions_only(benchmark_script, tmp_path,
                                                                                      monkeypatch, capsys):
    """What ``docs_tables.py --check`` compares for UCR.md's table (the whole check reads every result: ~10 s)."""
    docs_tables = benchmark_script("docs_tables")
    ue = benchmark_script("ucr_ensemble")
    path = tmp_path / "ucr_ensemble.json"
    runs = json.loads((RESULTS / "ucr_ensemble.json").read_text())
    # an older version of ucr_nv_cnn on a set the docs never showed, and ucr_cnn as its file is now (README_SHAS
    # pins an earlier version) on it too: a rerun in a worktree, merged; the older ones under <key>@<sha>
    now = ue._sha("recipes/ucr_cnn.yaml")
    assert now != ue.README_SHAS["recipes/ucr_cnn.yaml"]  # else its cells would be shown
    for seed in range(5):
        runs[f"ucr_nv_cnn@Coffee@{seed}"] = _member("recipes/ucr_nv_cnn.yaml", "Coffee", seed, "0123456789abcdef", 0.5)
        runs[f"ucr_cnn@Coffee@{seed}"] = _member("recipes/ucr_cnn.yaml", "Coffee", seed, now, 0.75)
        runs[f"ucr_cnn@Coffee@{seed}@fedcba9876543210"] = _member("./recipes/ucr_cnn.yaml", "Coffee", seed,
                                                                 "fedcba9876543210", 0.25)
    path.write_text(json.dumps(runs))
    shown = docs_tables.render_ucr_ensemble(SimpleNamespace(ucr_ensemble=runs, root=REPO))
    assert "Coffee" not in shown  # before: a row of blanks, and --check: "table 'ucr_ensemble' differs"
    assert shown == _docs_block(REPO, "benchmarks/UCR.md", "ucr_ensemble")  # the committed table, row for row
    # ucr_ensemble.py --table on the docs' sets prints the same table (its --table shows the docs' versions)
    monkeypatch.setattr(ue, "MINIROCKET", RESULTS / "minirocket.json")
    monkeypatch.setattr(ue, "OUT", path)
    sets = [line.split(" | ")[0].removeprefix("| ") for line in shown.splitlines()[2:]]
    assert len(sets) == 5 and "ArrowHead" in sets
    monkeypatch.setattr(sys, "argv", ["ucr_ensemble.py", "--table", "--sets", *sets])
    ue.main()
    printed = "\n".join(line for line in capsys.readouterr().out.splitlines() if line.startswith("|"))
    assert printed == shown


# ------------------------------------------------------------ 2. ucr_accuracy.py --recipes: one recipe, however spelled
def _spellings(ua) -> list[str]:
    return ["recipes/ucr_cnn.yaml", "./recipes/ucr_cnn.yaml", str(ua.ROOT / "recipes" / "ucr_cnn.yaml")]


def test_ucr_accuracy_reads_a_recipe_spelled_three_ways_as_one_recipe(benchmark_script, tmp_path, monkeypatch, capsys):
    ua = benchmark_script("ucr_accuracy")
    recipe = "recipes/ucr_cnn.yaml"
    results = tmp_path / "ucr_accuracy.json"
    run = {"recipe": recipe, "set": "GunPoint", "seed": 0, "sha": ua._sha(recipe), "extra": [], "test_acc": 0.875,
           "test_size": 150, "seconds": 3.0}
    results.write_text(json.dumps({"ucr_cnn@GunPoint@0": run}))
    before = results.read_bytes()
    tables = []
    for spelled in _spellings(ua):
        assert ua.main(["--table", "--recipes", spelled, "--sets", "GunPoint", "--results", str(results)]) == 0
        tables.append(capsys.readouterr().out)
    assert "| GunPoint | 87.5 (1) |" in tables[0], tables[0]
    assert tables[1] == tables[0] and tables[2] == tables[0], tables  # before: "not run" under the other spellings
    assert results.read_bytes() == before
    trained = []
    monkeypatch.setattr(ua, "_run", lambda todo, *a, **k: trained.extend(r for r, _, _ in todo))  # nothing trained
    for spelled in _spellings(ua):
        assert ua.main(["--recipes", spelled, "--sets", "ArrowHead", "--seeds", "0", "--results", str(results)]) == 0
    assert trained == [recipe] * 3  # recorded as the runs and README_SHAS name it (run_one keeps what it is given)
    capsys.readouterr()


def test_ucr_accuracy_refuses_a_recipe_that_is_no_file(benchmark_script, tmp_path, capsys):
    ua = benchmark_script("ucr_accuracy")
    results = tmp_path / "ucr_accuracy.json"
    with pytest.raises(SystemExit) as e:
        ua.main(["--table", "--recipes", "./recipes/ucr_cnm.yaml", "--results", str(results)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--recipes" in err and "recipes/ucr_cnm.yaml" in err and "no such file" in err, err
    assert not results.exists()


# ------------------------------------------------------------ 3. device_check.sh phase 4: a fused_cost file per GPU
H200, H100 = "NVIDIA H200", "NVIDIA H100 80GB HBM3"
TINY = ["--models", "resnet50", "--precisions", "fp32", "--batch", "1", "--size", "32", "--classes", "4",
        "--width", "0.125", "--source", "own"]


def _phase4_out(tmp_path: Path, gpu_name: str) -> str:
    """The ``--out`` device_check.sh's phase 4 gives fused_cost.py on a machine whose GPU is ``gpu_name``: the script
    run for real (PHASES=4), with ``python3`` and ``nvidia-smi`` stubs that record their arguments."""
    if not str(tmp_path).startswith("/tmp/"):
        pytest.skip("DC_LOGS must be under /tmp, and this run's tmp_path is not")
    bin_, work = tmp_path / "bin", tmp_path / "work"
    bin_.mkdir(exist_ok=True)
    (work / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    calls = tmp_path / f"calls_{len(list(tmp_path.glob('calls_*')))}.txt"
    (bin_ / "python3").write_text('#!/bin/sh\nprintf "%s\\n" "$*" >>"$CALLS"\n')
    (bin_ / "nvidia-smi").write_text('#!/bin/sh\necho "$GPU_NAME"\n')
    for stub in ("python3", "nvidia-smi"):
        (bin_ / stub).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "CALLS": str(calls), "GPU_NAME": gpu_name,
           "PHASES": "4", "OUT": str(tmp_path / "out"), "DC_LOGS": str(tmp_path / "dlogs")}
    for name in ("SMOKE", "DRY", "END", "ONLY"):
        env.pop(name, None)
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "device_check.sh")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    runs = [line for line in calls.read_text().splitlines() if line.startswith("benchmarks/fused_cost.py")]
    assert len(runs) == 1, calls.read_text()
    return re.search(r"--out (\S+)", runs[0]).group(1)


@pytest.fixture
def fake_gpu(monkeypatch):
    """``fake_gpu(name)``: what fused_cost.py sees on a CUDA machine with that GPU; tensors stay on the CPU."""
    flags = torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32
    randn, randint = torch.randn, torch.randint

    def fake(name: str):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: name)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch, "randn", lambda *a, device=None, **k: randn(*a, **k))
        monkeypatch.setattr(torch, "randint", lambda *a, device=None, **k: randint(*a, **k))
    yield fake
    torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32 = flags


def test_device_check_gives_two_gpus_of_one_day_a_fused_cost_file_each(benchmark_script, tmp_path, monkeypatch,
                                                                       fake_gpu, one_thread, capsys):
    stems = {gpu: _phase4_out(tmp_path, gpu) for gpu in (H200, H100)}
    assert stems[H200] != stems[H100], stems  # before: fused_cost_gpu_<date> for both
    day = subprocess.run(["date", "+%Y%m%d"], capture_output=True, text=True).stdout.strip()
    assert all(day in s and "gpu" in s for s in stems.values()), stems  # dated, and a name the pack (*gpu*) takes
    fused_cost = benchmark_script("fused_cost")
    out = tmp_path / "results"
    out.mkdir()
    monkeypatch.setattr(fused_cost, "OUT", out)
    monkeypatch.setattr(fused_cost, "measure", lambda *a, **k: {"error": "stub: nothing measured"})
    for gpu in (H200, H100):  # the day's two calls, one after the other: neither refused, each file its GPU's
        fake_gpu(gpu)
        fused_cost.main(TINY + ["--out", stems[gpu]])
    for gpu in (H200, H100):
        assert json.loads((out / f"{stems[gpu]}.json").read_text())["meta"]["device_name"] == gpu
    capsys.readouterr()
