"""Review R1 of session 24 on c2e237b (benchmark scripts), each test written before its fix:

1. ``ucr_accuracy.py``'s ``--table`` and ``--list`` compared a run's recorded recipe to the (now normalized)
   ``--recipes`` exactly: a run recorded before c2e237b as ``./recipes/x.yaml`` read "not run" however the recipe was
   spelled, and a training call did not redo it either (found by key and version);
3. plain ``ucr_ensemble.py --table`` (no ``--sets``) printed a row of blanks for a set whose runs are all of versions
   the table does not show, where UCR.md's table (which it is said to print) leaves the set out;
4. ``device_check.sh`` gave any GPU whose name holds "H200" (an H200 NVL, a GH200) and an empty GPU name the H200's
   file names: the day's second GPU was refused by fused_cost.py and measured nothing.

Nothing here trains or measures: committed results are read or copied under ``tmp_path``, training is stubbed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from test_benchmark_repro_s24 import _member, _phase4_out  # an ensemble member; the script's phase-4 --out, run for real

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
SCRIPT = REPO / "benchmarks" / "device_check.sh"


# ------------------------------------------------------------ 1. ucr_accuracy.py: a run recorded as ./recipes/x.yaml
def test_ucr_accuracy_counts_a_run_recorded_as_dot_slash_recipe_however_it_is_asked_for(benchmark_script, tmp_path,
                                                                                        monkeypatch, capsys):
    ua = benchmark_script("ucr_accuracy")
    results = tmp_path / "ucr_accuracy.json"
    run = {"recipe": "./recipes/ucr_cnn.yaml", "set": "GunPoint", "seed": 0, "sha": ua._sha("recipes/ucr_cnn.yaml"),
           "extra": [], "test_acc": 0.875, "test_size": 150, "seconds": 3.0}  # as `--recipes ./recipes/...` wrote it
    results.write_text(json.dumps({"ucr_cnn@GunPoint@0": run}))
    for spelled in ("recipes/ucr_cnn.yaml", "./recipes/ucr_cnn.yaml", str(REPO / "recipes" / "ucr_cnn.yaml")):
        assert ua.main(["--table", "--recipes", spelled, "--sets", "GunPoint", "--results", str(results)]) == 0
        assert "| GunPoint | 87.5 (1) |" in capsys.readouterr().out, spelled  # before: "not run"
        assert ua.main(["--list", "--recipes", spelled, "--sets", "GunPoint", "--results", str(results)]) == 0
        listed = capsys.readouterr().out.splitlines()
        assert len(listed) == 1 and listed[0].startswith("ucr_cnn@GunPoint@0") and "test  87.5" in listed[0], listed
    trained = []
    monkeypatch.setattr(ua, "_run", lambda todo, *a, **k: trained.extend(todo))
    assert ua.main(["--recipes", "recipes/ucr_cnn.yaml", "--sets", "GunPoint", "--seeds", "0", "--results", str(results)]) == 0
    assert trained == [] and "| GunPoint | 87.5 (1) |" in capsys.readouterr().out  # not redone, and counted


# ------------------------------------------------------------ 3. ucr_ensemble.py --table: the sets of the shown runs
def _docs_block(doc: str, name: str) -> str:
    """The table ``name`` as the committed document shows it (between its markers), read here, not rendered."""
    text = (REPO / doc).read_text()
    return re.search(rf"<!-- table:{name} -->\n(.*?)<!-- /table:{name} -->", text, re.S).group(1).strip()


def test_ucr_ensemble_plain_table_prints_ucr_md_table_with_runs_of_unshown_versions_on_a_set_of_their_own(
        benchmark_script, tmp_path, monkeypatch, capsys):
    ue = benchmark_script("ucr_ensemble")
    path = tmp_path / "ucr_ensemble.json"
    runs = json.loads((RESULTS / "ucr_ensemble.json").read_text())
    for seed in range(5):  # an older ucr_nv_cnn, rerun on a set the docs never showed (kept under <key>@<sha>)
        runs[f"ucr_nv_cnn@Coffee@{seed}@0123456789abcdef"] = _member("recipes/ucr_nv_cnn.yaml", "Coffee", seed,
                                                                     "0123456789abcdef", 0.5)
    path.write_text(json.dumps(runs))
    monkeypatch.setattr(ue, "OUT", path)
    monkeypatch.setattr(ue, "MINIROCKET", RESULTS / "minirocket.json")
    monkeypatch.setattr(sys, "argv", ["ucr_ensemble.py", "--table"])
    ue.main()
    out = capsys.readouterr().out
    assert "\n".join(line for line in out.splitlines() if line.startswith("|")) == _docs_block("benchmarks/UCR.md",
                                                                                               "ucr_ensemble")
    assert "Coffee" not in out, out  # before: "| Coffee |  |  |  |  |  |" and a line per recipe saying why
    monkeypatch.setattr(sys, "argv", ["ucr_ensemble.py", "--table", "--sets", "ArrowHead", "Coffee"])
    ue.main()  # a set asked for is shown, blank, and said why
    out = capsys.readouterr().out
    assert "| Coffee |  |  |  |  |" in out
    said = [line for line in out.splitlines() if line.startswith("ucr_nv_cnn:") and "Coffee" in line]
    assert len(said) == 1 and "0123456789ab" in said[0], out


# ------------------------------------------------------------ 4. device_check.sh: the H200's names for the H200 only
def _suffix(gpu: str, results: Path) -> tuple[str, str]:
    """``(gpu_out GPU torch, gpu_suffix GPU)`` as device_check.sh defines them (the two functions cut out of it)."""
    text = SCRIPT.read_text()
    body = "\n".join(re.search(rf"^{f}\(\) \{{.*?^\}}", text, re.M | re.S).group(0) for f in ("gpu_out", "gpu_suffix"))
    out = subprocess.run(["bash", "-c", f'{body}\ngpu_out "$1" 2.11.0+cu130; gpu_suffix "$1"', "_", gpu],
                         capture_output=True, text=True, timeout=30, env={**os.environ, "R": str(results)})
    assert out.returncode == 0, out.stderr
    gout, suffix = (out.stdout.split("\n") + [""])[:2]
    return gout, suffix


def test_device_check_gives_the_h200_names_to_the_committed_files_gpu_only(tmp_path):
    results = tmp_path / "r"
    results.mkdir()
    (results / "gpu_cost.json").write_text((RESULTS / "gpu_cost.json").read_text())
    h200 = json.loads((RESULTS / "gpu_cost.json").read_text())["meta"]["device_name"]  # the GPU the files are of
    assert json.loads((RESULTS / "fused_cost_gpu.json").read_text())["meta"]["device_name"] == h200
    assert _suffix(h200, results) == ("gpu_cost", "")  # the committed names stay
    names = {}
    for gpu in ("NVIDIA H200 NVL", "NVIDIA GH200 480GB", "", "NVIDIA H100 80GB HBM3"):
        gout, suffix = _suffix(gpu, results)
        assert gout != "gpu_cost" and suffix.startswith("_") and len(suffix) > 1, (gpu, gout, suffix)  # before: H200's
        assert gout == "gpu_cost" + suffix and "gpu" in gout  # one name per GPU, a name the pack (*gpu*) takes
        names[gpu] = suffix
    assert len(set(names.values())) == len(names), names


def test_device_check_phase4_names_no_h200_variant_or_unnamed_gpu_as_the_h200(tmp_path):
    h200 = _phase4_out(tmp_path, "NVIDIA H200")
    day = subprocess.run(["date", "+%Y%m%d"], capture_output=True, text=True).stdout.strip()
    assert h200 == f"fused_cost_gpu_{day}"  # the H200's file as before
    others = [_phase4_out(tmp_path, gpu) for gpu in ("NVIDIA GH200 480GB", "")]
    assert len({h200, *others}) == 3 and all(o.startswith(h200 + "_") for o in others), others  # before: all h200
