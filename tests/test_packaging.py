"""A non-editable install works: the wheel carries the zoo's checkpoints and recipes, a missing zoo is
an error that says so, and `neuroview fit --config` finds a shipped recipe from any folder."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as tomli (the dev extra installs it there)
    import tomli as tomllib

import pytest

import neuroview as nv
from neuroview.training.cli import cli_main
from neuroview.zoo import files

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
MANIFEST = json.loads((REPO / "checkpoints" / "manifest.json").read_text())["entries"]


def test_pyproject_lists_every_package_and_maps_the_zoo_onto_the_top_level_folders():
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "neuroview").rglob("__init__.py")}
    listed = set(PYPROJECT["packages"])
    assert found <= listed, f"packages missing from pyproject.toml (a wheel would lack them): {sorted(found - listed)}"
    assert PYPROJECT["package-dir"] == {"neuroview.zoo._data.checkpoints": "checkpoints",
                                        "neuroview.zoo._data.recipes": "recipes"}
    assert listed - found == set(PYPROJECT["package-dir"])


def _source_copy(dest: Path) -> Path:
    """What an sdist holds: the build reads these and writes only inside ``dest``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in ("neuroview", "checkpoints", "recipes"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, dest / name)
    return dest


def test_the_wheel_ships_the_zoo_and_loads_it_with_no_source_tree(tmp_path):
    pytest.importorskip("setuptools", minversion="68")  # the build backend pyproject.toml names (the dev extra has it)
    src = _source_copy(tmp_path / "src")
    build = ("import sys; from setuptools import build_meta as b; "
             "print(b.build_wheel(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", build, str(tmp_path / "dist")], cwd=src, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = tmp_path / "dist" / proc.stdout.strip().splitlines()[-1]
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "neuroview/zoo/_data/"
    assert {data + "checkpoints/manifest.json", *(data + "checkpoints/" + e["file"] for e in MANIFEST.values())} <= names
    assert {data + "recipes/" + p.name for p in (REPO / "recipes").glob("*.yaml")} <= names
    assert not any(n.startswith(("checkpoints/", "recipes/")) for n in names)  # nothing at the top of site-packages

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    check = ("import json, torch, neuroview as nv\n"
             "from neuroview.zoo.files import checkpoints_dir, find_recipe\n"
             "net = nv.create_model('nv_small_cnn.digits', pretrained=True)\n"
             "exp = net.explain(torch.zeros(2, 1, 8, 8))\n"
             "print(json.dumps({'file': nv.__file__, 'names': nv.list_models(pretrained=True), 'zoo': str(checkpoints_dir()),"
             " 'recipe': find_recipe('recipes/digits_nv_small_cnn.yaml'), 'logits': list(exp.logits.shape)}))\n")
    env = {k: v for k, v in os.environ.items() if k != files.ENV} | {"PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-c", check], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(got["file"]).is_relative_to(site)
    assert got["names"] == sorted(MANIFEST)
    assert Path(got["zoo"]) == site / "neuroview" / "zoo" / "_data" / "checkpoints"
    assert Path(got["recipe"]) == site / "neuroview" / "zoo" / "_data" / "recipes" / "digits_nv_small_cnn.yaml"
    assert got["logits"] == [2, 10]


@pytest.fixture
def zoo_places(tmp_path, monkeypatch):
    """The packaged and the source-tree zoo folders, pointed at two empty folders."""
    monkeypatch.delenv(files.ENV, raising=False)
    monkeypatch.setattr(files, "PACKAGED", tmp_path / "pkg")
    monkeypatch.setattr(files, "SOURCE", tmp_path / "src")
    return tmp_path / "pkg", tmp_path / "src"


def test_the_packaged_zoo_is_found_first_and_a_missing_zoo_is_an_error(zoo_places, capsys):
    packaged, source = zoo_places
    with pytest.raises(FileNotFoundError, match=r"the zoo's checkpoints are missing: no manifest.json in .*pkg.* or .*src.*"
                                                r"NEUROVIEW_CHECKPOINTS"):
        nv.list_models(pretrained=True)
    from neuroview.zoo.cli import main as zoo_cli

    assert zoo_cli([]) == 2
    assert "the zoo's checkpoints are missing" in capsys.readouterr().err

    for folder in (source / "checkpoints", packaged / "checkpoints"):
        shutil.copytree(REPO / "checkpoints", folder)
        assert files.checkpoints_dir() == folder  # the packaged copy wins once it exists
        assert nv.list_models(pretrained=True) == sorted(MANIFEST)


@pytest.mark.parametrize("given", ["recipes/digits_nv_small_cnn.yaml", "digits_nv_small_cnn.yaml", "digits_nv_small_cnn"])
def test_fit_config_names_a_shipped_recipe_from_any_folder(given, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(["fit", "--config", given, "--trainer.default_root_dir", str(tmp_path / "run")], run=False)
    assert cli.model.hparams.arch == "nv_small_cnn" and type(cli.datamodule).__name__ == "DigitsDataModule"
    # a path that names a file here is read as given, and a path elsewhere is never swapped for a recipe
    assert files.find_recipe(str(tmp_path / "recipes" / "digits_nv_small_cnn.yaml")).startswith(str(tmp_path))
    (tmp_path / "digits_nv_small_cnn.yaml").write_text("mine")
    assert files.find_recipe("digits_nv_small_cnn.yaml") == "digits_nv_small_cnn.yaml"
