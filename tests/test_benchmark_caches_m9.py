"""The benchmark files a later run reads back (review revE, finding 1: 3ab55b4 left five rewritten in place). A kill
during the rewrite of ``ucr_nv_minirocket``'s cache left 766 of its 1,499 bytes, its 40 runs gone, and the next run
failed with a bare JSONDecodeError. Every such file is written whole now (``benchmarks/_cache.py``), in the same text."""

from __future__ import annotations

import ast
import json
import signal
import subprocess
import sys
from pathlib import Path

from test_benchmark_cache_s17 import KILLING  # the file that writes half its text, then SIGKILLs its process

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

# ucr_nv_minirocket._save on a cache of 40 earlier runs; the kill lands halfway through the first write of text into a
# file of the cache's folder: the cache itself when rewritten in place, a temporary file beside it when written whole
CHILD = r'''
import io, os, signal, sys, pathlib
sys.path.insert(0, sys.argv[1])
import ucr_nv_minirocket as m
m.OUT = pathlib.Path(sys.argv[2])
folder = str(m.OUT.parent)
real_open, real_fdopen = io.open, os.fdopen

''' + KILLING + r'''
io.open = lambda file, mode="r", *a, **k: (Killing if "w" in mode and str(file).startswith(folder) else lambda f: f)(
    real_open(file, mode, *a, **k))
os.fdopen = lambda fd, mode="r", *a, **k: (Killing if "w" in mode else lambda f: f)(real_fdopen(fd, mode, *a, **k))
m._save({"new/seed0": {"acc": 0.9}}, "new/seed0")
'''

EARLIER = {f"set{i}/seed0": {"acc": 0.5 + i / 100} for i in range(40)}


def test_minirocket_cache_killed_mid_write_keeps_the_earlier_runs(tmp_path, benchmark_script):
    cache = tmp_path / "ucr_nv_minirocket.json"
    cache.write_text(json.dumps(EARLIER, indent=1) + "\n")
    before = cache.read_bytes()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(BENCH), str(cache)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert cache.read_bytes() == before  # was cut at half its bytes
    assert all(p.name.startswith(".ucr_nv_minirocket.json.") for p in tmp_path.iterdir() if p != cache)
    assert benchmark_script("_cache").read_cache(cache) == EARLIER  # the next run resumes from all 40


def test_minirocket_cache_text_is_unchanged(tmp_path, benchmark_script, monkeypatch):
    m = benchmark_script("ucr_nv_minirocket")
    cache = tmp_path / "ucr_nv_minirocket.json"
    cache.write_text(json.dumps(EARLIER, indent=1) + "\n")
    monkeypatch.setattr(m, "OUT", cache)
    monkeypatch.setattr(m, "_MINE", set())
    m._save({"new/seed0": {"acc": 0.9}, "other/seed0": {"acc": 0.1}}, "new/seed0")
    want = dict(EARLIER, **{"new/seed0": {"acc": 0.9}})  # only this process's runs are added
    assert cache.read_text() == json.dumps(dict(sorted(want.items())), indent=1) + "\n"
    assert m.load() == want


def _calls(tree, attr: str) -> set[str]:
    return {ast.unparse(n.func.value) for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == attr}


def test_no_benchmark_rewrites_in_place_a_file_it_reads_back():
    """A file a script both reads (``X.read_text()``) and writes (``X.write_text(...)``) is a file its next run reads
    back: written in place, a kill mid-write cuts it short. ``benchmarks/_cache.write_cache`` writes it whole."""
    found = {}
    for script in sorted(BENCH.glob("*.py")):
        tree = ast.parse(script.read_text())
        both = _calls(tree, "write_text") & _calls(tree, "read_text")
        if both:
            found[script.name] = sorted(both)
    assert found == {}


def test_results_read_by_other_scripts_are_written_whole():
    """``run_all.py`` collects the .json and .md of its scripts from earlier runs, ``docs_tables.py`` reads
    quantizers.json, rnn_accuracy.json and depthwise_cost.json: none of them is written in place."""
    run_all = ast.parse((BENCH / "run_all.py").read_text())
    scripts = next(ast.literal_eval(n.value) for n in ast.walk(run_all) if isinstance(n, ast.Assign)
                   and any(getattr(t, "id", None) == "SCRIPTS" for t in n.targets))
    names = sorted(scripts) + ["quantizers", "rnn_accuracy", "depthwise_cost"]
    assert len(names) == 7
    in_place = {n: sorted(_calls(ast.parse((BENCH / f"{n}.py").read_text()), "write_text")) for n in names}
    assert {n: w for n, w in in_place.items() if w} == {}
