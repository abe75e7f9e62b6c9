"""Each zoo entry's recorded command, read with the recipe it names, sets the entry's own arguments.

An entry says how it was trained (``recipe``, ``training.command``, and ``training.recipe_commit``
where the recipe has changed since). This reads the recipe's YAML directly (not through the CLI or
the benchmark scripts that train the zoo), applies the command's ``--data...`` and
``--model.model_kwargs...`` arguments, and compares every model and data argument it sets with
the entry's ``arch_kwargs`` and data module: a recipe changed after its entries were trained, with no
``recipe_commit`` to say so, gave a command that trains another network.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "checkpoints" / "manifest.json").read_text())
ENTRIES = MANIFEST.get("entries", MANIFEST)
TRAINED = sorted(n for n, e in ENTRIES.items() if e.get("recipe") and e["training"]["command"].startswith("neuroview fit"))


def _set_by(recipe_text: str, command: str) -> tuple[dict, str | None, dict]:
    """``(model kwargs, data class path, data init args)`` the recipe sets, after the command's arguments."""
    cfg = yaml.safe_load(recipe_text)
    kwargs = dict((cfg.get("model") or {}).get("model_kwargs") or {})
    data = cfg.get("data") or {}
    path, args = data.get("class_path"), dict(data.get("init_args") or {})
    words = shlex.split(command)[2:]  # after "neuroview fit"
    assert len(words) % 2 == 0, f"expected option-value pairs, got {words}"
    for key, value in zip(words[::2], words[1::2]):
        if key in ("--config", "--seed_everything"):
            continue
        if key == "--data":
            path, args = value, {}
        elif key.startswith(("--data.init_args.", "--data.")):
            args[key.split(".")[-1]] = yaml.safe_load(value)
        elif key.startswith("--model.model_kwargs."):
            kwargs[key.split(".")[-1]] = yaml.safe_load(value)
        else:
            pytest.fail(f"{command}: an argument this check does not read: {key}")
    return kwargs, path, args


def _differences(entry: dict, recipe_text: str) -> list[str]:
    kwargs, path, args = _set_by(recipe_text, entry["training"]["command"])
    data = entry["dataset"]["data_module"]
    out = [f"model_kwargs.{k}: the recipe sets {v!r}, the entry has {entry['arch_kwargs'].get(k, '(unset)')!r}"
           for k, v in kwargs.items() if entry["arch_kwargs"].get(k, "(unset)") != v]
    out += [f"data.{k}: the recipe sets {v!r}, the entry has {data['init_args'].get(k, '(unset)')!r}"
            for k, v in args.items() if data["init_args"].get(k, "(unset)") != v]
    if path != data["class_path"]:
        out.append(f"data class: the recipe's {path}, the entry's {data['class_path']}")
    return out


@pytest.mark.parametrize("name", TRAINED)
def test_an_entry_without_a_recipe_commit_is_what_its_recipe_trains_now(name):
    entry = ENTRIES[name]
    text = (ROOT / entry["recipe"]).read_text()
    if entry["training"].get("recipe_commit") is not None:
        return  # trained with the file of another commit: the next test
    assert _differences(entry, text) == [], f"{name}: {entry['recipe']} no longer trains this entry"


@pytest.mark.parametrize("name", [n for n in TRAINED if ENTRIES[n]["training"].get("recipe_commit")])
def test_an_entry_with_a_recipe_commit_is_what_the_recipe_trained_then(name):
    entry = ENTRIES[name]
    commit = entry["training"]["recipe_commit"]
    git = shutil.which("git")
    show = subprocess.run([git, "show", f"{commit}:{entry['recipe']}"], cwd=ROOT, capture_output=True, text=True) if git else None
    if show is None or show.returncode != 0:
        pytest.skip(f"git history with commit {commit} is not here (a shallow clone or an sdist)")
    assert _differences(entry, show.stdout) == [], f"{name}: {entry['recipe']} at {commit} did not train this entry"
    # the field is there because the file changed since (its budget, its arguments)
    assert show.stdout != (ROOT / entry["recipe"]).read_text(), f"{name}: recipe_commit names a file the working tree still has"


def test_the_check_sees_a_recipe_that_changed_under_its_entry():
    """The check itself: a recipe whose data normalization changed no longer matches the entry."""
    name = next(n for n in TRAINED if ENTRIES[n]["training"].get("recipe_commit") is None
                and "normalize" in ENTRIES[n]["dataset"]["data_module"]["init_args"])
    entry = ENTRIES[name]
    cfg = yaml.safe_load((ROOT / entry["recipe"]).read_text())
    cfg["data"].setdefault("init_args", {})["normalize"] = "sample"
    assert any("data.normalize" in d for d in _differences(entry, yaml.safe_dump(cfg)))


@pytest.mark.parametrize("name", sorted(n for n, e in ENTRIES.items() if e.get("sparsified_from")))
def test_a_sparse_entry_carries_its_sources_recipe_commit(name):
    entry, source = ENTRIES[name], ENTRIES[ENTRIES[name]["sparsified_from"]]
    assert entry.get("recipe") == source.get("recipe")
    assert entry.get("training", {}).get("recipe_commit") == source.get("training", {}).get("recipe_commit"), name


def test_the_gradient_state_an_entry_was_trained_with_is_passed_when_it_is_retrained():
    """Entries trained before the 4-bit default record their state; the retraining script passes it on."""
    import importlib.util
    import sys

    stated = {n: e["training"]["grad_state"] for n, e in ENTRIES.items() if e.get("training", {}).get("grad_state")}
    assert "nv_small_cnn.digits" in stated and set(stated.values()) <= {"bf16", "uint8", "uint4"}
    spec = importlib.util.spec_from_file_location("reproduce_zoo_check", ROOT / "benchmarks" / "reproduce_zoo.py")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    for name, state in stated.items():
        words = module.recipe_arguments(ENTRIES[name])
        assert words[words.index("--model.model_kwargs.grad_state") + 1] == state, name
