"""The accuracy tables of the docs agree with the data they come from (issue 14 item 9).

``benchmarks/docs_tables.py`` renders every table between its ``<!-- table:NAME -->`` markers
from ``checkpoints/manifest.json`` and ``benchmarks/results/*.json``; these tests run the same
rendering against the committed docs, and on a copy show that a changed number is caught and
that writing brings the docs back in line.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("docs_tables", REPO / "benchmarks" / "docs_tables.py")
docs_tables = sys.modules.setdefault("docs_tables", importlib.util.module_from_spec(_spec))  # dataclasses look it up
_spec.loader.exec_module(docs_tables)


def test_every_docs_table_agrees_with_the_manifest_and_results():
    problems = docs_tables.check(REPO)
    assert not problems, "\n".join(problems + ["run `python benchmarks/docs_tables.py` to rewrite the tables"])


def _copy(root: Path) -> Path:
    """The files the script reads and writes, in a checkout of their own under ``root``."""
    wanted = [*docs_tables.DOCS, "checkpoints/manifest.json", *(f"recipes/{p.name}" for p in (REPO / "recipes").glob("*.yaml")),
              *(f"benchmarks/results/{n}.json" for n in ("zoo_runs", "minirocket", "quantizers", "rnn_accuracy", "retrofit",
                                                         "ucr_accuracy", "sparsify_zoo", "depthwise_cost", "ucr_ensemble",
                                                         "ucr_ensemble_val", "sparse_ensemble", "ucr_nv_minirocket",
                                                         "ucr_choices"))]
    for rel in wanted:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / rel, root / rel)
    return root


def _edit_manifest(root: Path, name: str, **metrics) -> None:
    path = root / "checkpoints" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["entries"][name]["metrics"].update(metrics)
    path.write_text(json.dumps(manifest))


def test_a_changed_accuracy_is_caught_and_rewriting_fixes_it(tmp_path, capsys):
    root = _copy(tmp_path)
    assert docs_tables.main(["--check", "--root", str(root)]) == 0
    _edit_manifest(root, "nv_lstm.japanesevowels", test_acc=0.88)  # as if the entry had been retrained
    problems = docs_tables.check(root)
    assert {p.split(":")[0] for p in problems} == {"README.md", "recipes/README.md", "checkpoints/README.md"}
    assert all(f"'{t}'" in " ".join(problems) for t in ("zoo", "zoo_entries", "recipes"))
    assert docs_tables.main(["--check", "--root", str(root)]) == 1
    assert "docs_tables.py" in capsys.readouterr().out

    before = (root / "benchmarks" / "RNN.md").read_text()
    assert docs_tables.main(["--root", str(root)]) == 0
    assert docs_tables.check(root) == []
    assert "| JapaneseVowels | `lstm.japanesevowels` | 96.5% | `nv_lstm.japanesevowels` | 88.0% |" in (root / "README.md").read_text()
    assert "| `nv_lstm.japanesevowels` | JapaneseVowels | 34,953 | 88.00% |" in (root / "checkpoints" / "README.md").read_text()
    assert (root / "benchmarks" / "RNN.md").read_text() == before  # tables from other data untouched


def test_retrofit_results_of_other_weights_are_stale(tmp_path):
    root = _copy(tmp_path)
    path = root / "checkpoints" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["entries"]["lstm.japanesevowels"]["sha256"] = "0" * 64  # retrained: new weights
    path.write_text(json.dumps(manifest))
    assert docs_tables.check(root) == ["benchmarks/results/retrofit.json: no result for the weights of lstm.japanesevowels in the manifest"]


def _set_runs(src, recipes: tuple[str, ...], acc: float, dataset: str | None = None) -> None:
    """Every run of ``recipes`` (on ``dataset``, for the default time-series recipes) at accuracy ``acc``."""
    src.runs = {k: ({**r, "test_acc": acc} if r["recipe"] in recipes else r) for k, r in src.runs.items()}
    src.ucr_runs = {k: ({**r, "test_acc": acc} if r["recipe"] in recipes and r["set"] == dataset else r)
                    for k, r in src.ucr_runs.items()}


def test_rendering_follows_the_numbers(tmp_path):
    src = docs_tables.Sources.load(_copy(tmp_path))
    _set_runs(src, ("recipes/japanesevowels_lstm.yaml",), 0.5)
    _set_runs(src, ("recipes/japanesevowels_nv_lstm.yaml",), 0.8)
    assert "| JapaneseVowels (LSTM) | 50.0 ± 0.0 | 80.0 ± 0.0 |  |" in docs_tables.render_seeds(src)
    _set_runs(src, ("recipes/ucr_rnn.yaml",), 0.25, "ArrowHead")
    assert "| ArrowHead (GRU) | 25.0 ± 0.0 |" in docs_tables.render_seeds(src)
    src.minirocket["gunpoint"]["mean"] = 0.90
    _set_runs(src, ("recipes/ucr_nv_cnn.yaml", "recipes/ucr_nv_rnn.yaml"), 0.9, "GunPoint")
    _set_runs(src, ("recipes/gunpoint_nv_fcn1d.yaml",), 0.95)
    assert "**GunPoint: met, above.** `nv_fcn1d` 95.0 ± 0.0" in docs_tables.render_aim(src)
    _set_runs(src, ("recipes/gunpoint_nv_fcn1d.yaml",), 0.85)
    _set_runs(src, ("recipes/ucr_nv_cnn.yaml", "recipes/ucr_nv_rnn.yaml"), 0.85, "GunPoint")
    assert "**GunPoint: not met.** `nv_fcn1d` 85.0 ± 0.0" in docs_tables.render_aim(src)
    assert "GunPoint `nv_fcn1d` −5.0, `nv_gru` −5.0, `nv_lite` −5.0;" in docs_tables.render_gaps(src).replace("\n", " ")
    _set_runs(src, ("recipes/ucr_nv_cnn.yaml",), 0.5, "ArrowHead")
    assert "| ArrowHead | 50.0 ± 0.0 (3) |" in docs_tables.render_ucr(src)


def test_a_missing_marker_is_a_clear_error(tmp_path):
    root = _copy(tmp_path)
    readme = root / "recipes" / "README.md"
    readme.write_text(readme.read_text().replace("<!-- /table:recipes -->", ""))
    with pytest.raises(ValueError, match=r"recipes/README.md: expected one '<!-- table:recipes -->'"):
        docs_tables.check(root)


def test_the_zoo_size_line_counts_every_file_of_the_manifest():
    """Checked against the manifest itself, not the table code: the "with their sparse variants" total once
    summed the dense entries twice (12.6 MB for both, where the 48 files are 19.8 MB)."""
    import json
    import re

    root = Path(__file__).resolve().parents[1]
    manifest = json.loads((root / "checkpoints" / "manifest.json").read_text())
    entries = manifest.get("entries", manifest)
    line = re.search(r"([\d.]+) MB for these (\d+) entries; ([\d.]+) MB with their (\d+) sparse variants",
                     (root / "checkpoints" / "README.md").read_text())
    assert line, "the size line of checkpoints/README.md"
    sparse = [e for n, e in entries.items() if n.endswith("_sparse")]
    assert int(line[4]) == len(sparse) and int(line[2]) == len(entries) - len(sparse)
    assert float(line[3]) == round(sum(e["size_bytes"] for e in entries.values()) / 1e6, 1)
    assert float(line[1]) == round(sum(e["size_bytes"] for n, e in entries.items() if not n.endswith("_sparse")) / 1e6, 1)
