"""Benchmark scripts, their caches and docs_tables.py (probe P2 of session 19): a subset run of rnn_accuracy.py keeps
the other runs, ucr_accuracy's merge counts a run once, zoo_runs.json's runs count only for the recipe they trained,
``docs_tables --root`` reads every table from that checkout, quantizers.py writes where it is told and says how,
a seeds cell of fewer runs shows their count, and a cut-short results file is named. Nothing here trains: each
script's training function is stubbed, and every file written lies under ``tmp_path``."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from test_docs import REPO, _copy, docs_tables

GUNPOINT_NV = "recipes/ucr_nv_cnn.yaml"


# ------------------------------------------------------------------ 1. rnn_accuracy.py on a subset
def _rnn_run(dataset, kind, model, seed, acc):
    return {"dataset": dataset, "kind": kind, "model": model, "seed": seed, "train_acc": 100.0, "test_acc": acc,
            "train_seconds": 1.0}


@pytest.fixture
def rnn(benchmark_script, monkeypatch):
    rnn = benchmark_script("rnn_accuracy")
    calls = []

    def run_one(job):  # no training: a known accuracy per job
        name, kind, model, seed, _ = job
        calls.append((name, kind, model, seed))
        return _rnn_run(name, kind, model, seed, 50.0)

    monkeypatch.setattr(rnn, "run_one", run_one)
    return rnn, calls


def test_rnn_accuracy_on_a_subset_keeps_the_file_s_other_runs(rnn, tmp_path):
    rnn, calls = rnn
    recipe = rnn.asdict(rnn.Recipe())
    earlier = [_rnn_run("ArrowHead", "lstm", m, s, 70.0 + s) for m in rnn.MODELS for s in (0, 1, 2)]
    earlier += [_rnn_run("GunPoint", "gru", "standard", 0, 80.0)]
    stem = tmp_path / "rnn_accuracy"
    stem.with_suffix(".json").write_text(json.dumps({"meta": {"recipe": recipe}, "runs": earlier}))
    one_cell = ["--datasets", "GunPoint", "--kinds", "gru", "--seeds", "0", "--workers", "1", "--out", str(stem)]
    rnn.main(one_cell)
    runs = json.loads(stem.with_suffix(".json").read_text())["runs"]
    assert len(runs) == 8  # the 7 earlier runs and the one job the file lacked
    assert calls == [("GunPoint", "gru", "neuroview", 0)]  # GunPoint gru standard seed 0 was there: not run again
    by_job = {(r["dataset"], r["kind"], r["model"], r["seed"]): r["test_acc"] for r in runs}
    assert by_job[("ArrowHead", "lstm", "neuroview", 2)] == 72.0 and by_job[("GunPoint", "gru", "standard", 0)] == 80.0
    assert by_job[("GunPoint", "gru", "neuroview", 0)] == 50.0
    # the ArrowHead row of the table is still there, from the runs it had: mean 71.0 of 70, 71, 72
    md = stem.with_suffix(".md").read_text()
    assert "| ArrowHead | 71.0 ± 0.8 | 71.0 ± 0.8 |" in md
    rnn.main(one_cell + ["--rerun"])  # --rerun: both jobs again, replacing theirs (not added beside them)
    runs = json.loads(stem.with_suffix(".json").read_text())["runs"]
    assert len(runs) == 8 and {r["test_acc"] for r in runs if r["dataset"] == "GunPoint"} == {50.0}


def test_rnn_accuracy_refuses_to_mix_another_recipe_into_its_file(rnn, tmp_path, capsys):
    rnn, calls = rnn
    stem = tmp_path / "rnn_accuracy"
    data = {"meta": {"recipe": rnn.asdict(rnn.Recipe())}, "runs": [_rnn_run("GunPoint", "gru", "standard", 0, 80.0)]}
    stem.with_suffix(".json").write_text(json.dumps(data))
    with pytest.raises(SystemExit):
        rnn.main(["--datasets", "GunPoint", "--epochs", "5", "--workers", "1", "--out", str(stem)])
    err = capsys.readouterr().err
    assert "--out" in err and "epochs 100 there, 5 here" in err
    assert calls == [] and json.loads(stem.with_suffix(".json").read_text()) == data


# ------------------------------------------------------------------ 2. ucr_accuracy.merge and table count a run once
def _ucr(ua, seed, acc, sha):
    return {"recipe": GUNPOINT_NV, "set": "GunPoint", "seed": seed, "sha": sha, "test_acc": acc, "seconds": 1.0}


def test_merge_adds_no_run_that_is_here_under_its_plain_key(benchmark_script):
    ua = benchmark_script("ucr_accuracy")
    now, newer = ua._sha(GUNPOINT_NV), "0123456789abcdef"
    k = lambda s: ua._key(GUNPOINT_NV, "GunPoint", s)  # noqa: E731
    here = {k(0): _ucr(ua, 0, 0.90, now), k(1): _ucr(ua, 1, 0.96, now), k(2): _ucr(ua, 2, 0.96, now)}
    # a worktree ran seed 0 of a newer version: its copy of this version's seed-0 run moved aside to <key>@<sha>
    other = ua.keep(dict(here), k(0), _ucr(ua, 0, 0.99, newer))
    merged, new = ua.merge(here, other)
    assert new == 1 and sorted(merged) == sorted([*here, f"{k(0)}@{newer}"])  # only the newer version's run
    row = next(line for line in ua.table([GUNPOINT_NV], ["GunPoint"], merged, mr={}).splitlines() if line.startswith("| GunPoint"))
    assert "| 94.0 ± 2.8 (3) |" in row  # 90, 96, 96: mean 94.0, population std sqrt(24 / 3) = 2.83, three runs


def test_two_different_runs_of_one_seed_and_version_are_an_error_not_a_fourth_seed(benchmark_script):
    ua = benchmark_script("ucr_accuracy")
    now = ua._sha(GUNPOINT_NV)
    runs = {"a": _ucr(ua, 0, 0.90, now), "b": _ucr(ua, 1, 0.96, now), "a@copy": _ucr(ua, 0, 0.50, now)}
    with pytest.raises(ValueError, match=r"runs 'a' and 'a@copy' are both seed 0"):
        ua.table([GUNPOINT_NV], ["GunPoint"], runs, mr={})
    runs["a@copy"] = dict(runs["a"])  # the same run twice counts once
    row = next(line for line in ua.table([GUNPOINT_NV], ["GunPoint"], runs, mr={}).splitlines() if line.startswith("| GunPoint"))
    assert "| 93.0 ± 3.0 (2) |" in row


# ------------------------------------------------------------------ 3. zoo_runs.json keeps each run's recipe version
def test_zoo_table_trains_again_a_recipe_edited_since_its_runs(benchmark_script, monkeypatch, tmp_path):
    rz = benchmark_script("reproduce_zoo")
    (tmp_path / "recipes").mkdir()
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    recipe = "recipes/x.yaml"
    (tmp_path / recipe).write_text("trainer:\n  max_epochs: 20\n")
    monkeypatch.setattr(rz, "ROOT", tmp_path)
    monkeypatch.setattr(rz, "RESULTS", tmp_path / "benchmarks" / "results")
    monkeypatch.setattr(rz, "RUNS", rz.RESULTS / "zoo_runs.json")
    sha = lambda: hashlib.sha256((tmp_path / recipe).read_bytes()).hexdigest()[:16]  # noqa: E731 - the file's version
    old = sha()
    runs = {f"{recipe}@{s}": {"recipe": recipe, "seed": s, "sha": old, "arch": "nv_x", "tag": "digits", "test_acc": a}
            for s, a in ((0, 0.9), (1, 0.8))}
    rz.RUNS.write_text(json.dumps(runs))
    trained = []

    def train(r, seed, threads=None, **_):
        trained.append(seed)
        return {"arch": "nv_x", "tag": "digits", "metrics": {"test_acc": 0.5, "test_size": 10}, "seconds": 1.0,
                "fit": {"train_acc": 1.0}, "threads": threads}

    monkeypatch.setattr(rz, "train", train)
    assert "| digits | - | - | nv_x | 85.0 ± 5.0 | - |" in rz.table([recipe], [0, 1], None, False)
    assert trained == []  # the recipe as it was: its runs stand
    (tmp_path / recipe).write_text("trainer:\n  max_epochs: 2\n")  # edited
    assert "| digits | - | - | nv_x | 50.0 ± 0.0 | - |" in rz.table([recipe], [0, 1], None, False)
    assert trained == [0, 1]
    assert {r["sha"] for r in json.loads(rz.RUNS.read_text()).values()} == {sha()} != {old}


def test_docs_seeds_count_only_runs_of_the_recipe_as_it_is_and_the_check_says_so():
    src = docs_tables.Sources.load(REPO)
    entry = "nv_small_cnn.digits"
    recipe = src.manifest[entry]["recipe"]
    assert docs_tables.stale_runs(src) == [] and len(docs_tables.seed_accs(src, entry)) == 3
    src.recipe_shas[recipe] = "0" * 16  # the recipe's file edited since its runs
    assert docs_tables.seed_accs(src, entry) == []
    row = next(line for line in docs_tables.render_recipes(src).splitlines() if Path(recipe).name in line)
    assert row.endswith("| – |")
    assert docs_tables.stale_runs(src) == [f"benchmarks/results/zoo_runs.json: runs of an older version of {recipe}; rerun "
                                           f"`python benchmarks/reproduce_zoo.py --table --recipes {recipe}`"]


# ------------------------------------------------------------------ 4. and 6. docs_tables --root, missing and incomplete
def test_docs_tables_root_reads_every_table_from_that_checkout(tmp_path):
    root = _copy(tmp_path)
    assert docs_tables.check(root) == []
    results = root / "benchmarks" / "results"
    for name in ("ucr_ensemble", "ucr_ensemble_val", "sparse_ensemble", "ucr_nv_minirocket"):
        (results / f"{name}.json").write_text("{}\n")  # the copy's caches emptied: its tables must change
    (results / "zoo_runs.json").unlink()
    problems = docs_tables.check(root)
    differ = {(p.split(":")[0], p.split("'")[1]) for p in problems if "differs" in p}
    assert {("README.md", "nv_minirocket"), ("README.md", "sparse_ensemble"), ("benchmarks/UCR.md", "ucr_ensemble"),
            ("benchmarks/UCR.md", "ucr_ensemble_val")} <= differ
    assert "benchmarks/results/zoo_runs.json: missing (the tables it feeds would read as dashes)" in problems
    assert (REPO / "benchmarks" / "results" / "ucr_nv_minirocket.json").read_text() != "{}\n"  # this checkout's untouched


def test_a_seeds_cell_of_fewer_runs_than_the_header_shows_their_count():
    src = docs_tables.Sources.load(REPO)
    recipe, entry = "recipes/digits_nv_small_cnn.yaml", "nv_small_cnn.digits"
    seed0 = src.runs[f"{recipe}@0"]["test_acc"]
    for s in (1, 2):  # as a --table run cut short would leave them
        del src.runs[f"{recipe}@{s}"]
    head, *rows = docs_tables.render_recipes(src).splitlines()
    assert "seeds 0, 1, 2: mean ± std" in head
    assert next(r for r in rows if "digits_nv_small_cnn.yaml" in r).endswith(f"| {100 * seed0:.1f} (1) |")
    assert f"| {100 * seed0:.1f} (1) |" in next(r for r in docs_tables.render_seeds(src).splitlines() if r.startswith("| digits"))
    assert docs_tables.incomplete(src) == [f"{entry}: 1 of the seeds 0, 1, 2 (has 0); its cells show the count"]
    assert docs_tables.mean_std([0.5, 0.7], 3) == "60.0 ± 10.0 (2)" and docs_tables.mean_std([0.5, 0.7], 2) == "60.0 ± 10.0"


# ------------------------------------------------------------------ 5. quantizers.py --out and its command
def test_quantizers_writes_to_out_with_its_command_and_the_docs_refuse_other_epochs(benchmark_script, monkeypatch, tmp_path):
    q = benchmark_script("quantizers")
    default = {p.name: p.read_bytes() for p in q.OUT.glob("quantizers*")}
    monkeypatch.setattr(q, "run", lambda ds, v, s, epochs: 0.5 + 0.1 * q.VARIANTS.index(v))  # no training
    q.main(["--seeds", "1", "--epochs", "1", "--out", str(tmp_path / "q")])
    assert {p.name: p.read_bytes() for p in q.OUT.glob("quantizers*")} == default  # the README's source untouched
    made = json.loads((tmp_path / "q" / "quantizers.json").read_text())
    assert made["meta"]["command"] == "python benchmarks/quantizers.py --seeds 1 --epochs 1 --out " + str(tmp_path / "q")
    assert made["accuracy"]["digits"] == {"standard": [0.5], "hard": [0.6], "soft": [0.7], "none": [0.8]}
    src = docs_tables.Sources.load(REPO)
    src.quantizers = made
    with pytest.raises(ValueError, match=r"quantizers.json: its runs trained 1 epochs .*--seeds 1 --epochs 1"):
        docs_tables.render_quantizers(src)
    src.quantizers = {"meta": {"seeds": 1, "epochs": {"digits": 15, "mnist1d": 15}}, "accuracy": made["accuracy"]}
    assert "| digits | 50.0 (1) | 60.0 (1) | 70.0 (1) | 80.0 (1) |" in docs_tables.render_quantizers(src)


# ------------------------------------------------------------------ 7. a cut-short results file is named
def test_a_cut_short_results_file_is_named_by_every_reader(benchmark_script, monkeypatch, tmp_path):
    root = tmp_path / "root"
    _copy(root)
    results = root / "benchmarks" / "results"
    text = (results / "quantizers.json").read_text()
    (results / "quantizers.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"cache .*root/benchmarks/results/quantizers.json: expected the JSON.*restore it"):
        docs_tables.Sources.load(root)
    cut = tmp_path / "cut.json"
    cut.write_text((REPO / "benchmarks" / "results" / "ucr_accuracy.json").read_text()[:5000])
    ua = benchmark_script("ucr_accuracy")
    with pytest.raises(ValueError, match=r"cache .*cut.json: expected the JSON"):
        ua.main(["--table", "--results", str(cut)])
    good = tmp_path / "good.json"
    shutil.copyfile(REPO / "benchmarks" / "results" / "minirocket.json", good)
    monkeypatch.setattr(ua, "RESULTS", tmp_path)  # the lock --merge takes: beside these files
    with pytest.raises(ValueError, match=r"cache .*cut.json: expected the JSON"):  # the damaged one of the two
        ua.main(["--merge", str(cut), "--results", str(good)])
    rz = benchmark_script("reproduce_zoo")
    monkeypatch.setattr(rz, "RUNS", cut)
    with pytest.raises(ValueError, match=r"cache .*cut.json: expected the JSON"):
        rz.table([], [0], None, False)
