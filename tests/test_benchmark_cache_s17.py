"""The benchmarks' caches of finished runs (probe s17, finding 5). They were rewritten in place after every run: a kill
during the rewrite left a cut-short cache (0 bytes where it landed before the text), the runs of hours gone, and the
next run failed with a bare JSONDecodeError. They are written whole now (benchmarks/_cache.py, through
neuroview._io.atomic_write), and a cache that is not readable JSON is named with what to do."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEPT = ROOT / "benchmarks" / "results" / "sparse_finetune_choice.json"

# The benchmark on a copy of its cache, its training replaced by a stub; the kill lands in the middle of the first write
# of the cache's text into any file of the cache's folder: the cache itself when rewritten in place, a temporary file
# beside it when written whole.
# a file whose first write lands half its text on disk, then kills the process (SIGKILL): no clean-up runs
KILLING = r'''
class Killing:
    def __init__(self, f):
        self._f = f
    def write(self, data):
        self._f.write(data[: len(data) // 2]); self._f.flush(); os.fsync(self._f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    def __getattr__(self, name):
        return getattr(self._f, name)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return self._f.__exit__(*exc)
'''
CHILD = r'''
import io, json, os, signal, sys, pathlib
sys.path.insert(0, sys.argv[1])
import sparse_finetune_choice as b
b.RESULTS = pathlib.Path(sys.argv[2]); b.REPORT = b.RESULTS.with_suffix(".md")
folder = str(b.RESULTS.parent)
fake = next(iter(json.loads(b.RESULTS.read_text()).values()))
real_open, real_fdopen = io.open, os.fdopen

''' + KILLING + r'''
def arm():  # once the stubbed run is done: the next file opened for writing is the cache's
    io.open = lambda file, mode="r", *a, **k: (Killing if "w" in mode and str(file).startswith(folder) else lambda f: f)(
        real_open(file, mode, *a, **k))
    os.fdopen = lambda fd, mode="r", *a, **k: (Killing if "w" in mode else lambda f: f)(real_fdopen(fd, mode, *a, **k))

def run(name, mode):
    arm()
    return dict(fake, mode=mode)

b.run = run
sys.exit(b.main(["--entries", "new_entry.x", "--modes", "train"]))
'''


def test_a_benchmark_killed_while_it_writes_its_cache_keeps_the_earlier_one_whole(tmp_path, benchmark_script):
    cache = tmp_path / "sparse_finetune_choice.json"
    shutil.copy(KEPT, cache)
    before = cache.read_bytes()
    runs = json.loads(before)
    assert len(runs) > 10  # hours of runs
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT / "benchmarks"), str(cache)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert cache.read_bytes() == before  # the earlier cache, byte for byte (was cut in half)
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers[-1] == "sparse_finetune_choice.json"  # at most the killed write's hidden temporary beside it
    assert all(n.startswith(".sparse_finetune_choice.json.") for n in leftovers[:-1])
    assert benchmark_script("_cache").read_cache(cache) == runs  # the next run resumes from every cached run


@pytest.mark.parametrize("text, said", [("", "an empty file"), ('{"nv_small_cnn.digits:train": {"mode": "tr', "not readable JSON")])
def test_a_cache_that_is_not_json_is_named_with_what_to_do(tmp_path, benchmark_script, monkeypatch, text, said):
    cache = benchmark_script("_cache")
    path = tmp_path / "runs.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"cache {path}: expected the JSON of the runs this benchmark finished, got "
                                         rf".*{said}.*restore it .*or delete it to run every case afresh"):
        cache.read_cache(path)
    # the benchmark itself: its report from such a cache stops with that message (was a bare JSONDecodeError)
    bench = benchmark_script("sparse_finetune_choice")
    monkeypatch.setattr(bench, "RESULTS", path)
    monkeypatch.setattr(bench, "REPORT", tmp_path / "report.md")
    with pytest.raises(ValueError, match=rf"cache {path}: "):
        bench.main(["--report"])
    assert not (tmp_path / "report.md").exists()


def test_write_and_read_round_trip_and_a_missing_cache_is_empty(tmp_path, benchmark_script):
    cache = benchmark_script("_cache")
    path = tmp_path / "sub" / "runs.json"
    assert cache.read_cache(path) == {}
    cache.write_cache(path, json.dumps({"a@0": 0.5}, indent=1) + "\n")
    assert path.read_text() == '{\n "a@0": 0.5\n}\n' and cache.read_cache(path) == {"a@0": 0.5}
    assert [p.name for p in path.parent.iterdir()] == ["runs.json"]  # no temporary left behind
