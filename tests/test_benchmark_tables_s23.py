"""The cited commands of ucr_ensemble.py and ucr_choices.py print the tables the docs show, write nothing in
their table modes, and a rerun of a new recipe version keeps the older version's runs (no training here: a run
of the committed results' copy, training stubbed where a test trains)."""

from __future__ import annotations

import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
COPIED = ("ucr_ensemble.json", "ucr_ensemble_val.json", "ucr_choices.json", "ucr_choices.md", "ucr_accuracy.json",
          "minirocket.json")


def _docs_block(doc: str, name: str) -> str:
    """The table ``name`` as the committed document shows it (between its markers), read here, not rendered."""
    text = (REPO / doc).read_text()
    return re.search(rf"<!-- table:{name} -->\n(.*?)<!-- /table:{name} -->", text, re.S).group(1).strip()


@pytest.fixture
def copied(tmp_path, monkeypatch, benchmark_script):
    """The scripts pointed at a copy of the committed results under ``tmp_path``: (ue, ch, docs_tables, folder)."""
    folder = tmp_path / "results"
    folder.mkdir()
    for name in COPIED:
        shutil.copyfile(RESULTS / name, folder / name)
    ue, ch, ua = (benchmark_script(n) for n in ("ucr_ensemble", "ucr_choices", "ucr_accuracy"))
    dt = benchmark_script("docs_tables")
    for name, value in (("OUT", folder / "ucr_ensemble.json"), ("OUT_VAL", folder / "ucr_ensemble_val.json"),
                        ("RESULTS", folder), ("MINIROCKET", folder / "minirocket.json")):
        monkeypatch.setattr(ue, name, value)
    for name, value in (("VERDICTS", folder / "ucr_choices.json"), ("REPORT", folder / "ucr_choices.md"),
                        ("RESULTS", folder)):
        monkeypatch.setattr(ch, name, value)
    monkeypatch.setattr(ch, "load", lambda path=folder / "ucr_accuracy.json": ua.load(path))
    return ue, ch, dt, folder


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _run_main(ue, monkeypatch, capsys, *args: str) -> str:
    monkeypatch.setattr(sys, "argv", ["ucr_ensemble.py", *args])
    ue.main()
    return capsys.readouterr().out


def test_ucr_ensemble_table_prints_the_table_ucr_md_shows_and_writes_nothing(copied, monkeypatch, capsys):
    ue, _, dt, folder = copied
    before = _bytes(folder)
    out = _run_main(ue, monkeypatch, capsys, "--table")
    table = "\n".join(line for line in out.splitlines() if line.startswith("|"))
    assert table == _docs_block("benchmarks/UCR.md", "ucr_ensemble")  # numbers in every cell, as UCR.md shows them
    assert table == dt.render_ucr_ensemble(SimpleNamespace(ucr_ensemble=ue.load(ue.OUT), root=REPO))
    assert _bytes(folder) == before


def test_ucr_ensemble_val_table_prints_the_table_and_verdicts_ucr_md_shows_and_writes_nothing(copied, monkeypatch, capsys):
    ue, _, dt, folder = copied
    before = _bytes(folder)
    out = _run_main(ue, monkeypatch, capsys, "--val", "0.2", "--table")
    shown = _docs_block("benchmarks/UCR.md", "ucr_ensemble_val")
    assert "ucr_nv_cnn: members 97.3, ensemble of 5 100.0" in shown  # the verdict the recipe's five members rest on
    assert out.strip() == shown
    assert out.strip() == dt.render_ucr_ensemble_val(SimpleNamespace(ucr_ensemble_val=ue.load(ue.OUT_VAL), root=REPO))
    assert _bytes(folder) == before  # the runs and the kept verdicts (ucr_choices.json) both


def test_ucr_ensemble_table_names_the_version_with_runs_where_the_shown_one_has_none(copied, monkeypatch, capsys):
    ue, _, _, folder = copied
    recipe = "recipes/ucr_cnn.yaml"
    runs = {k: r | {"sha": "0123456789abcdef"} for k, r in ue.load(ue.OUT).items() if r["recipe"] == recipe}
    ue.save(runs, ue.OUT)
    out = _run_main(ue, monkeypatch, capsys, "--table", "--recipes", recipe)
    said = [line for line in out.splitlines() if "0123456789ab" in line]
    assert len(said) == 1 and "ucr_cnn" in said[0] and ue.README_SHAS[recipe][:12] in said[0], out


class _Pool(ThreadPoolExecutor):
    def __init__(self, max_workers=None, max_tasks_per_child=None):
        super().__init__(max_workers)


def test_ucr_ensemble_rerun_of_a_new_recipe_version_keeps_the_older_one(copied, monkeypatch, capsys):
    ue, _, dt, folder = copied
    recipe, key = "recipes/ucr_nv_cnn.yaml", "ucr_nv_cnn@ArrowHead@0"
    before = ue.load(ue.OUT)
    old = before[key]
    assert old["sha"] != ue._sha(recipe)  # the committed runs are of an earlier version of the recipe
    trained = []

    def member(recipe, dataset, seed, val=0.0):  # one stubbed member: no training
        trained.append((dataset, seed))
        return {"recipe": recipe, "set": dataset, "seed": seed, "sha": ue._sha(recipe), "test_acc": 0.5,
                "logits": [[0.0, 1.0, 0.0]] * 175, "labels": [1] * 175, "seconds": 0.0}

    monkeypatch.setattr(ue, "member", member)
    monkeypatch.setattr(ue, "ProcessPoolExecutor", _Pool)
    args = ("--sets", "ArrowHead", "--members", "1", "--recipes", recipe)
    _run_main(ue, monkeypatch, capsys, *args)
    after = ue.load(ue.OUT)
    assert trained == [("ArrowHead", 0)]
    assert after[key]["sha"] == ue._sha(recipe) and after[key]["test_acc"] == 0.5
    assert after[f"{key}@{old['sha']}"] == old  # kept under key@sha, as ucr_accuracy.keep does
    assert len(after) == len(before) + 1
    shown = dt.render_ucr_ensemble(SimpleNamespace(ucr_ensemble=after, root=REPO))
    assert shown == _docs_block("benchmarks/UCR.md", "ucr_ensemble")  # the docs' table still rests on its runs
    _run_main(ue, monkeypatch, capsys, *args)
    assert trained == [("ArrowHead", 0)] and ue.load(ue.OUT) == after  # the run of this version is there: none again


def test_ucr_choices_report_prints_the_readme_verdicts_and_writes_nothing(copied, capsys):
    _, ch, dt, folder = copied
    before = _bytes(folder)
    assert ch.main(["--report"]) == 0
    text = capsys.readouterr().out
    table = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    assert table == _docs_block("README.md", "ucr_choices")
    assert table == dt.render_ucr_choices(SimpleNamespace(ucr_runs=ch.load())).strip()
    assert "seeds 0;" not in text  # the 5-fold rows are seeds 0-4: no one seed list for the whole table
    assert _bytes(folder) == before  # neither the kept verdicts nor the report file


def test_ucr_choices_report_refuses_seeds_it_would_not_judge_on(copied, capsys):
    _, ch, _, folder = copied
    before = _bytes(folder)
    with pytest.raises(SystemExit):
        ch.main(["--report", "--seeds", "0"])
    err = capsys.readouterr().err
    assert "--seeds" in err and "0-4" in err and "got 0" in err
    assert _bytes(folder) == before


def test_ucr_choices_run_of_one_option_writes_every_verdict_to_its_report(copied, monkeypatch, capsys):
    _, ch, _, folder = copied

    def no_run(*a, **k):
        raise AssertionError("every run of this option is in the cache: nothing to train")

    monkeypatch.setattr(ch, "_run", no_run)
    assert ch.main(["--only", "weight_decay (GRUs)", "--cv"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| weight_decay")]
    assert len(printed) == 2  # the run prints its own option
    written = (folder / "ucr_choices.md").read_text()
    table = "\n".join(line for line in written.splitlines() if line.startswith("|"))
    assert table == _docs_block("README.md", "ucr_choices")  # the file lists all 39, not the last run's option


# ---------------------------------------------------------------- R2's findings on 4eaee12 (tests written before the fixes)
def _said(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip() and not line.startswith("|")]


def test_ucr_ensemble_table_says_why_a_set_with_runs_of_other_versions_only_reads_blank(copied, monkeypatch, capsys):
    ue, _, _, _ = copied
    runs = ue.load(ue.OUT)
    for k, r in list(runs.items()):  # members on GunPoint of versions the docs do not show (a run of the recipes now)
        if r["set"] == "ArrowHead" and r["seed"] < 5 and k.count("@") == 2:
            runs[f"{k.split('@')[0]}@GunPoint@{r['seed']}"] = r | {"set": "GunPoint", "sha": "feedfacecafe0123"}
    ue.save(runs, ue.OUT)
    # asked for: plain --table takes the sets of the shown versions' runs, as the docs do, and leaves GunPoint out
    out = _run_main(ue, monkeypatch, capsys, "--table", "--sets", "ArrowHead", "GunPoint")
    assert "| GunPoint |  |  |  |  |" in out  # the row the docs' versions leave blank
    for name, recipe in (("ucr_nv_cnn", "recipes/ucr_nv_cnn.yaml"), ("ucr_cnn", "recipes/ucr_cnn.yaml")):
        said = [line for line in _said(out) if "GunPoint" in line and line.startswith(name + ":")]
        assert len(said) == 1 and ue.README_SHAS[recipe][:12] in said[0] and "feedfacecafe" in said[0], out


def test_ucr_ensemble_table_says_why_a_set_without_any_run_reads_blank(copied, monkeypatch, capsys):
    ue, _, _, _ = copied
    out = _run_main(ue, monkeypatch, capsys, "--table", "--sets", "OSULeaf", "Coffee")
    assert "| Coffee |  |  |  |  |" in out
    assert [line.split(":")[0] for line in _said(out) if "Coffee" in line] == ["ucr_nv_cnn", "ucr_cnn"], out
    assert not [line for line in _said(out) if "OSULeaf" in line]  # its cells read numbers: nothing to say


def test_ucr_ensemble_reads_a_recipe_spelled_dot_slash_as_the_same_recipe(copied, monkeypatch, capsys):
    ue, _, _, folder = copied
    before = _bytes(folder)
    plain = _run_main(ue, monkeypatch, capsys, "--table", "--recipes", "recipes/ucr_nv_cnn.yaml", "--sets", "ArrowHead")
    dotted = _run_main(ue, monkeypatch, capsys, "--table", "--recipes", "./recipes/ucr_nv_cnn.yaml", "--sets", "ArrowHead")
    assert "| ArrowHead | 82.6 ± 2.4 (15) | 84.8 ± 0.5 (3) | 85.7 ± 0.8 |" in plain  # UCR.md's cells
    assert dotted == plain and _bytes(folder) == before
    trained = []

    def member(recipe, dataset, seed, val=0.0):  # one stubbed member: no training
        trained.append(recipe)
        return {"recipe": recipe, "set": dataset, "seed": seed, "sha": ue._sha(recipe), "test_acc": 0.5,
                "logits": [[0.0, 1.0, 0.0]] * 175, "labels": [1] * 175, "seconds": 0.0}

    monkeypatch.setattr(ue, "member", member)
    monkeypatch.setattr(ue, "ProcessPoolExecutor", _Pool)
    runs = ue.load(ue.OUT)
    _run_main(ue, monkeypatch, capsys, "--sets", "ArrowHead", "--members", "1", "--recipes", "./recipes/ucr_nv_cnn.yaml")
    after = ue.load(ue.OUT)
    assert trained == ["recipes/ucr_nv_cnn.yaml"]  # recorded as the committed runs name it
    old = runs["ucr_nv_cnn@ArrowHead@0"]["sha"]  # the committed run, moved aside under the keys committed runs have
    assert set(after) - set(runs) == {f"ucr_nv_cnn@ArrowHead@0@{old}"} and after["ucr_nv_cnn@ArrowHead@0"]["recipe"] == trained[0]
    _run_main(ue, monkeypatch, capsys, "--sets", "ArrowHead", "--members", "1", "--recipes", "recipes/ucr_nv_cnn.yaml")
    assert trained == ["recipes/ucr_nv_cnn.yaml"]  # the other spelling's run is this recipe's: none again


def test_ucr_ensemble_refuses_a_recipe_that_is_no_file(copied, monkeypatch, capsys):
    ue, _, _, folder = copied
    with pytest.raises(SystemExit) as e:
        _run_main(ue, monkeypatch, capsys, "--table", "--recipes", "recipes/ucr_nv_cnm.yaml")
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--recipes" in err and "recipes/ucr_nv_cnm.yaml" in err


def test_ucr_ensemble_val_table_writes_no_verdict_where_the_recipe_now_would_get_another(copied, monkeypatch, capsys):
    ue, _, _, folder = copied
    recipe = "recipes/ucr_cnn.yaml"  # judged as it is now: --val --table shows and judges this version
    runs = ue.load(ue.OUT_VAL)
    for k, r in runs.items():
        if r["recipe"] == recipe and r["sha"] == ue._sha(recipe) and r["set"] == "GunPoint":
            r["val_acc"] = 0.5  # its members' mean now differs from the verdict kept in ucr_choices.json
    ue.save(runs, ue.OUT_VAL)
    before = _bytes(folder)
    _run_main(ue, monkeypatch, capsys, "--val", "0.2", "--table")
    assert _bytes(folder) == before
    ue.keep_verdict(recipe, runs)  # what --table would have done without its guard: a different file
    assert (folder / "ucr_choices.json").read_bytes() != before["ucr_choices.json"]


def test_ucr_choices_report_accepts_the_seeds_it_judges_on_and_refuses_others(copied, capsys):
    _, ch, _, folder = copied
    before = _bytes(folder)
    for seeds in (["0", "1", "2", "3", "4"], ["4", "3", "2", "1", "0"]):
        assert ch.main(["--report", "--cv", "--seeds", *seeds]) == 0
        table = "\n".join(line for line in capsys.readouterr().out.splitlines() if line.startswith("|"))
        assert table == _docs_block("README.md", "ucr_choices")
    for seeds in (["0", "1"], ["0", "1", "2", "3", "5"]):
        with pytest.raises(SystemExit) as e:
            ch.main(["--report", "--cv", "--seeds", *seeds])
        err = capsys.readouterr().err
        assert e.value.code == 2 and "--seeds" in err and f"got {' '.join(seeds)}" in err
    assert _bytes(folder) == before


def test_ucr_choices_run_header_names_the_seeds_it_judged_on(copied, monkeypatch, capsys):
    _, ch, _, folder = copied
    monkeypatch.setattr(ch, "_run", lambda *a, **k: None)  # nothing trained: the cached runs only
    assert ch.main(["--only", "precise BN (CNN)", "--cv", "--seeds", "0", "1"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "seeds 0, 1" in head and "0-4" not in head, head


def test_ucr_choices_report_header_names_a_kept_verdicts_other_seeds(copied, capsys):
    _, ch, _, folder = copied
    import json

    judged = json.loads((folder / "ucr_choices.json").read_text())
    k = "precise BN (CNN) | ucr_nv_cnn | on: recomputed over the training split when training ends"
    judged[k] = {"option": "precise BN (CNN)", "recipe": "ucr_nv_cnn", "sha": "4b721e6c07e1", "current": "off",
                 "alternative": "on: recomputed over the training split when training ends", "current_acc": 90.0,
                 "alternative_acc": 80.0, "runs": "10 / 10", "verdict": "keep", "cv": True, "seeds": [0, 1]}
    (folder / "ucr_choices.json").write_text(json.dumps(judged))
    assert ch.main(["--report"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "seeds 0-4" in head and "seeds 0, 1" in head and "precise BN (CNN)" in head, head


def test_ucr_choices_only_naming_no_option_is_refused(copied, monkeypatch, capsys):
    _, ch, _, folder = copied
    before = _bytes(folder)
    monkeypatch.setattr(ch, "_run", lambda *a, **k: pytest.fail("a misspelled --only must run nothing"))
    for argv in (["--report", "--only", "classifer_lr"], ["--only", "classifer_lr", "--cv"]):
        with pytest.raises(SystemExit) as e:
            ch.main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and "--only" in err and "classifer_lr" in err and "'classifier_lr'" in err, err
    with pytest.raises(SystemExit):
        ch.main(["--report", "--only", "members (CNN)", "classifer_lr"])
    assert "'members (CNN)'" in capsys.readouterr().err  # --report lists ucr_ensemble.py's kept option too
    assert ch.main(["--report", "--only", "members (CNN)"]) == 0
    assert sum(line.startswith("| members (CNN)") for line in capsys.readouterr().out.splitlines()) == 2
    assert _bytes(folder) == before


def test_ucr_choices_recipes_spelled_dot_slash_run_that_recipe_and_an_unknown_one_is_refused(copied, monkeypatch, capsys):
    _, ch, _, folder = copied
    called = []
    monkeypatch.setattr(ch, "_run", lambda jobs, *a, **k: called.extend(r for r, _, _ in jobs))  # nothing trained
    assert ch.main(["--only", "precise BN (CNN)", "--cv", "--recipes", "./recipes/ucr_nv_cnn.yaml"]) == 0
    assert called and set(called) == {"recipes/ucr_nv_cnn.yaml"}  # the runs its 5-fold verdict lacks, this recipe's
    capsys.readouterr()
    before = _bytes(folder)
    with pytest.raises(SystemExit) as e:
        ch.main(["--recipes", "recipes/ucr_lstm.yaml"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--recipes" in err and "ucr_lstm" in err and "recipes/ucr_rnn.yaml" in err
    assert _bytes(folder) == before
