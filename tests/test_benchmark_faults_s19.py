"""Benchmark scripts, their caches and docs_tables.py (probe P2 of session 19): a subset run of rnn_accuracy.py keeps
the other runs, ucr_accuracy's merge counts a run once, zoo_runs.json's runs count only for the recipe they trained,
``docs_tables --root`` reads every table from that checkout, quantizers.py writes where it is told and says how,
a seeds cell of fewer runs shows their count, and a cut-short results file is named. Nothing here trains: each
script's training function is stubbed, and every file written lies under ``tmp_path``. After review R6: a recipe's
version is what it sets (a comment edit keeps its runs), the check names a zoo entry of an older recipe version than
its seeds, an interrupted ``--rerun`` leaves rnn_accuracy.json whole and a cell of two code versions is marked or
refused, rnn cells of other seeds are marked, the docs' advice for another recipe's rnn file works, seeds cells
compare seed sets, and ``--root`` opens no data file of this checkout."""

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
    # the version: SHA-256 of what the recipe sets, written out by hand (not read back through the code's own rule)
    sha = lambda epochs: hashlib.sha256(('{"trainer": {"max_epochs": %d}}' % epochs).encode()).hexdigest()[:16]  # noqa: E731
    old = sha(20)
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
    (tmp_path / recipe).write_text("# a comment, and another layout\ntrainer: {max_epochs: 20}\n")  # sets the same
    assert "| digits | - | - | nv_x | 85.0 ± 5.0 | - |" in rz.table([recipe], [0, 1], None, False)
    assert trained == []  # a comment or layout edit keeps the runs
    (tmp_path / recipe).write_text("trainer:\n  max_epochs: 2\n")  # edited
    assert "| digits | - | - | nv_x | 50.0 ± 0.0 | - |" in rz.table([recipe], [0, 1], None, False)
    assert trained == [0, 1]
    assert {r["sha"] for r in json.loads(rz.RUNS.read_text()).values()} == {sha(2)} != {old}


def test_docs_seeds_count_only_runs_of_the_recipe_as_it_is_and_the_check_says_so():
    src = docs_tables.Sources.load(REPO)
    entry = "nv_small_cnn.digits"
    recipe = src.manifest[entry]["recipe"]
    assert docs_tables.stale_runs(src) == [] and len(docs_tables.seed_accs(src, entry)) == 3
    src.recipe_shas[recipe] = "0" * 16  # the recipe's file edited since its runs
    assert docs_tables.seed_accs(src, entry) == []
    row = next(line for line in docs_tables.render_recipes(src).splitlines() if Path(recipe).name in line)
    assert row.endswith("| – |")
    assert docs_tables.stale_runs(src)[0] == (
        f"benchmarks/results/zoo_runs.json: runs of an older version of {recipe}; rerun "
        f"`python benchmarks/reproduce_zoo.py --table --recipes {recipe}` (and `--export {recipe}` if its zoo entry should follow)")


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


# ================================================================== review R6 of the fixes above
def _recipe_version(text: str) -> str:
    """What a recipe sets, hashed as the spec says (parsed YAML, canonical JSON): the test's own computation."""
    import yaml

    return hashlib.sha256(json.dumps(yaml.safe_load(text), sort_keys=True).encode()).hexdigest()[:16]


def test_a_comment_edit_of_a_zoo_recipe_keeps_its_runs_and_a_setting_edit_does_not(benchmark_script, tmp_path):
    rz = benchmark_script("reproduce_zoo")
    root = _copy(tmp_path)
    recipe = "recipes/digits_nv_small_cnn.yaml"
    text = (root / recipe).read_text()
    src = docs_tables.Sources.load(root)
    # one rule in both scripts, and the pinned version of the runs that recorded none is the file's now
    assert src.recipe_shas == {r: rz.recipe_sha(r, root) for r in src.recipe_shas}
    assert src.recipe_shas[recipe] == _recipe_version(text) == rz.LEGACY_SHAS[recipe]
    (root / recipe).write_text("# a reworded first comment\n" + text.replace("\n\n", "\n"))  # comment and layout only
    assert docs_tables.check(root) == []  # green, and the seeds cells still there
    assert len(docs_tables.seed_accs(docs_tables.Sources.load(root), "nv_small_cnn.digits")) == 3
    assert "max_epochs: 20" in text
    (root / recipe).write_text(text.replace("max_epochs: 20", "max_epochs: 2"))  # a setting
    problems = docs_tables.check(root)
    assert any(p.startswith(f"benchmarks/results/zoo_runs.json: runs of an older version of {recipe}") for p in problems)
    assert docs_tables.incomplete(docs_tables.Sources.load(root)) == [
        "nv_small_cnn.digits: 0 of the seeds 0, 1, 2 (has none); its cells read –"]


def test_check_names_a_zoo_entry_trained_from_an_older_recipe_than_its_seeds(tmp_path):
    root = _copy(tmp_path)
    recipe, entry = "recipes/digits_nv_small_cnn.yaml", "nv_small_cnn.digits"
    text = (root / recipe).read_text().replace("max_epochs: 20", "max_epochs: 2")
    (root / recipe).write_text(text)
    runs_path = root / "benchmarks" / "results" / "zoo_runs.json"
    runs = json.loads(runs_path.read_text())
    for r in runs.values():  # what `reproduce_zoo.py --table --recipes <recipe>` leaves: the seeds of the new version
        if r["recipe"] == recipe:
            r.update(sha=_recipe_version(text), test_acc=0.9)
    runs_path.write_text(json.dumps(runs))
    want = (f"checkpoints/manifest.json: {entry} was trained from another version of {recipe} than the file now (the "
            f"version its seeds cells count); re-export it: `python benchmarks/reproduce_zoo.py --export {recipe}`")
    assert docs_tables.main(["--root", str(root)]) == 0  # the tables rewritten from the new seeds
    assert docs_tables.check(root) == [want]  # but the zoo entry beside them is the 20-epoch one
    path = root / "checkpoints" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["entries"][entry]["training"]["recipe_sha"] = _recipe_version(text)  # as --export records it now
    path.write_text(json.dumps(manifest))
    assert want not in docs_tables.check(root)


def test_export_records_the_recipe_version_in_the_entry(benchmark_script):
    rz = benchmark_script("reproduce_zoo")
    run = {"budget": {"max_epochs": 20, "max_steps": -1}, "epochs": 20, "steps": 100, "fit": {"stopped": "max"},
           "seconds": 1.0}
    assert rz.training_record(run, "cmd", "0123456789abcdef")["recipe_sha"] == "0123456789abcdef"
    assert rz.entry_sha("x", {"training": rz.training_record(run, "cmd", "0123456789abcdef")}) == "0123456789abcdef"


def test_seeds_cells_compare_seed_sets_and_the_header_is_that_of_most_entries():
    import statistics

    src = docs_tables.Sources.load(REPO)
    recipe, entry = "recipes/digits_nv_small_cnn.yaml", "nv_small_cnn.digits"
    accs = [src.runs[f"{recipe}@{s}"]["test_acc"] for s in (0, 1)] + [0.5]
    src.runs[f"{recipe}@3"] = {**src.runs.pop(f"{recipe}@2"), "seed": 3, "test_acc": 0.5}  # seeds 0, 1, 3: three runs
    src.runs["recipes/gunpoint_gru.yaml@7"] = {**src.runs["recipes/gunpoint_gru.yaml@0"], "seed": 7}  # no entry's recipe
    src.runs["recipes/digits_small_cnn.yaml@9"] = {**src.runs["recipes/digits_small_cnn.yaml@0"], "seed": 9,
                                                    "sha": "0" * 16}  # a run of an older version of a recipe
    assert docs_tables.header_seeds(src) == [0, 1, 2]
    head, *rows = docs_tables.render_recipes(src).splitlines()
    assert "seeds 0, 1, 2: mean ± std" in head
    cell = f"{100 * statistics.fmean(accs):.1f} ± {100 * statistics.pstdev(accs):.1f} (seeds 0, 1, 3)"
    assert next(r for r in rows if "digits_nv_small_cnn.yaml" in r).endswith(f"| {cell} |")
    assert next(r for r in rows if "`digits_small_cnn.yaml`" in r).endswith(" |") and "(" not in \
        next(r for r in rows if "`digits_small_cnn.yaml`" in r).split("|")[-2]  # the others unmarked
    assert docs_tables.incomplete(src) == [f"{entry}: 2 of the seeds 0, 1, 2 (has 0, 1, 3); its cells show their seeds"]


def test_docs_tables_root_opens_no_data_file_of_this_checkout(tmp_path):
    root = _copy(tmp_path)
    opened, watching = [], [True]
    data = [REPO / d for d in ("benchmarks/results", "recipes", "checkpoints")]

    def hook(event, args):
        if watching[0] and event == "open" and isinstance(args[0], (str, Path)):
            path = Path(args[0]).resolve() if Path(args[0]).is_absolute() else None
            if path is not None and any(path.is_relative_to(d) for d in data):
                opened.append(str(path))

    import sys

    sys.addaudithook(hook)  # cannot be removed: turned off below
    try:
        assert docs_tables.check(root) == []
        (root / "benchmarks" / "results" / "ucr_choices.json").write_text("{}\n")  # the copy's verdicts emptied
        differ = {p.split("'")[1] for p in docs_tables.check(root) if "differs" in p}
    finally:
        watching[0] = False
    assert opened == []  # every table, recipe, minirocket.json and ucr_choices.json read from the copy
    assert "ucr_choices" in differ


# ------------------------------------------------------------------ rnn_accuracy: code versions, seeds, advice
def _rnn_file(rnn, stem, runs):
    stem.with_suffix(".json").write_text(json.dumps({"meta": {"recipe": rnn.asdict(rnn.Recipe())}, "runs": runs}))


def test_an_interrupted_rerun_leaves_the_file_whole_and_a_resumed_cell_of_two_codes_is_marked(rnn, tmp_path, monkeypatch):
    rnn, calls = rnn
    stem = tmp_path / "rnn_accuracy"
    old = [_rnn_run("ArrowHead", "rnn", m, s, 70.0) for m in rnn.MODELS for s in (0, 1, 2)]
    _rnn_file(rnn, stem, old)
    before = stem.with_suffix(".json").read_text()
    monkeypatch.setattr(rnn, "provenance", lambda: {"commit": "new", "date": "today"})

    def cut_short(job):  # the code after a change: 10%, and killed on the third job
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(job[:4])
        return _rnn_run(*job[:4], 10.0)

    monkeypatch.setattr(rnn, "run_one", cut_short)
    args = ["--datasets", "ArrowHead", "--kinds", "rnn", "--workers", "1", "--out", str(stem)]
    with pytest.raises(KeyboardInterrupt):
        rnn.main(args + ["--rerun"])
    assert stem.with_suffix(".json").read_text() == before  # no cell of old and new runs
    monkeypatch.setattr(rnn, "run_one", lambda job: _rnn_run(*job[:4], 10.0))
    rnn.main(args + ["--rerun"])
    runs = json.loads(stem.with_suffix(".json").read_text())["runs"]
    assert {(r["test_acc"], r["commit"]) for r in runs} == {(10.0, "new")}
    # a plain run resumed after a change of the code: the cell's runs of two codes are marked, and the docs refuse it
    _rnn_file(rnn, stem, old[:2] + old[3:])  # standard seed 2 missing, made by the earlier code (no commit)
    rnn.main(args)
    md = stem.with_suffix(".md").read_text()
    assert "| ArrowHead | 50.0 ± 28.3 (mixed code) | **70.0 ± 0.0** |" in md  # 70, 70 and 10: std sqrt(800)
    src = docs_tables.Sources.load(REPO)
    src.rnn_runs = json.loads(stem.with_suffix(".json").read_text())["runs"]
    with pytest.raises(ValueError, match=r"rnn_accuracy.json: the runs of ArrowHead rnn standard were made by different "
                                         r"versions of the code; run them again together .*--rerun"):
        docs_tables.render_rnn_accuracy(src)


def test_rnn_table_cells_of_other_seeds_show_their_count_or_their_seeds():
    src = docs_tables.Sources.load(REPO)
    cell = lambda text: next(r for r in text.splitlines() if r.startswith("| GunPoint")).split(" | ")[1]  # noqa: E731
    runs = [r for r in src.rnn_runs if (r["dataset"], r["kind"], r["model"]) == ("GunPoint", "rnn", "standard")]
    assert sorted(r["seed"] for r in runs) == [0, 1, 2]
    assert "(" not in cell(docs_tables.render_rnn_accuracy(src))  # the committed file: three seeds, no mark
    src.rnn_runs = [r for r in src.rnn_runs if r not in runs[1:]]  # a fresh run cut short after seed 0
    assert cell(docs_tables.render_rnn_accuracy(src)) == f"{runs[0]['test_acc']:.1f} ± 0.0 (1)"
    src.rnn_runs += [*runs[1:], {**runs[0], "seed": 3, "test_acc": 0.0}]  # `--seeds 3` beside 0, 1, 2
    import statistics

    accs = [r["test_acc"] for r in runs] + [0.0]
    want = f"{statistics.mean(accs):.1f} ± {statistics.pstdev(accs):.1f} (seeds 0, 1, 2, 3)"
    assert cell(docs_tables.render_rnn_accuracy(src)) == want


def test_the_docs_refusal_of_another_recipe_s_rnn_file_advises_a_command_that_works(rnn, tmp_path):
    rnn, calls = rnn
    root = _copy(tmp_path / "root")
    path = root / "benchmarks" / "results" / "rnn_accuracy.json"
    data = json.loads(path.read_text())
    data["meta"]["recipe"]["epochs"] = 5  # `--epochs 5` on a fresh file
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as e:
        docs_tables.render_rnn_accuracy(docs_tables.Sources.load(root))
    msg = str(e.value)
    assert msg.startswith(f"{path}: its runs were made with the recipe")  # the file of --root, by its full path
    assert "restore it (`git checkout -- benchmarks/results/rnn_accuracy.json`), or delete it and run " \
           "`python benchmarks/rnn_accuracy.py`" in msg
    path.unlink()  # the advice followed: the advised command runs (training stubbed)
    rnn.main(["--datasets", "GunPoint", "--kinds", "gru", "--workers", "1", "--out", str(path.with_suffix(""))])
    assert json.loads(path.read_text())["meta"]["recipe"] == rnn.asdict(rnn.Recipe()) and len(calls) == 6
