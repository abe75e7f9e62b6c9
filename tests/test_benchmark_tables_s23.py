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
