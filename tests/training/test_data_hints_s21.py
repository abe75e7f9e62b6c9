"""`--data.init_args.*` beside a set's name, and `neuroview explain`'s advice for a file's options (L3, L4 of s21):
minirocket and sparsify advised `{"class_path": "neuroview.data.<DataModule>", ...}` for `--data ArrowHead` or
`mnist1d` (a spec that cannot run, without the set's name or the command's reading options); explain printed the
reader's `(--data.init_args.header true)`, an option it refuses, beside its JSON spec, and answered a typed
`--data.init_args.*` with a fixed `new.csv` example, whatever `--data` was. Each advice is followed as printed: the
network it gives is the one the plain `--data` gives (the same weights' sha256), and the expected specs are written
out by hand."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

from neuroview.cli import main as cli
from neuroview.zoo.evaluate import make_datamodule
from neuroview.zoo.pretrained import read_manifest

UCR = "neuroview.data.UCRDataModule"


def _advised(err: str) -> str:
    """The JSON spec after the last ``--data `` of a refusal, as a shell reads it (the hint's own ``)`` dropped)."""
    assert "--data " in err, err
    return shlex.split(err.rsplit("--data ", 1)[1])[0].removesuffix(")")


def _refused(argv: list[str], capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """A MiniRocket of ArrowHead (84 features: seconds), fitted from the set's name."""
    tmp = tmp_path_factory.mktemp("zoo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROVIEW_CACHE", str(tmp / "cache"))
        assert cli(["minirocket", "--data", "ArrowHead", "--num-features", "84", "--out", str(tmp / "zoo")]) == 0
    return tmp


def test_minirocket_advice_for_a_set_s_name_carries_its_name_and_reading_options_and_runs(zoo, capsys, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(zoo / "cache"))
    out = zoo / "advised"
    err = _refused(["minirocket", "--data", "ArrowHead", "--data.init_args.seed", "0", "--num-features", "84",
                    "--out", str(out)], capsys)
    spec = _advised(err)  # was {"class_path": "neuroview.data.<DataModule>", "init_args": {"seed": 0}}
    assert json.loads(spec) == {"class_path": UCR, "init_args": {
        "name": "ArrowHead", "val_fraction": 0.0, "normalize": "sample", "resample": True, "seed": 0}}
    advised = _advice(err)  # run as printed: the spec and the --tag beside it (without it, nv_minirocket.data)
    assert advised == ["--data", spec, "--tag", "arrowhead"]
    assert cli(["minirocket", *advised, "--num-features", "84", "--out", str(out)]) == 0
    # read as `--data ArrowHead` reads it (no validation carve, each series normalized by itself): the same network,
    # under the same entry name
    plain = read_manifest(zoo / "zoo")["nv_minirocket.arrowhead"]
    assert list(read_manifest(out)) == ["nv_minirocket.arrowhead"]
    assert read_manifest(out)["nv_minirocket.arrowhead"]["sha256"] == plain["sha256"]


def _advice(err: str) -> list[str]:
    """The options a refusal advises, as a shell reads them: ``--data`` and what follows it, to the line's end."""
    return shlex.split("--data " + err.strip().rsplit("--data ", 1)[1])


def test_minirocket_advice_for_mnist1d_is_its_module_read_as_the_command_reads_it(tmp_path, capsys):
    err = _refused(["minirocket", "--data", "mnist1d", "--normalize", "none", "--data.init_args.batch_size=32",
                    "--out", str(tmp_path)], capsys)
    spec = json.loads(_advised(err))
    assert spec == {"class_path": "neuroview.data.MNIST1DDataModule",
                    "init_args": {"val_fraction": 0.0, "normalize": False, "batch_size": 32}}
    dm = make_datamodule(spec)  # a module the command can build (it was "<DataModule>": refused by name)
    assert (type(dm).__name__, dm.val_fraction, dm.normalize) == ("MNIST1DDataModule", 0.0, False)


@pytest.mark.filterwarnings("ignore:sparsify. the point kept misses the deviance rule")
def test_sparsify_advice_for_a_set_s_name_is_the_spec_it_reads_the_set_by_and_runs(zoo, capsys, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(zoo / "cache"))
    sparse = ["sparsify", "nv_minirocket.arrowhead", "--zoo", str(zoo / "zoo"), "--folds", "3"]
    err = _refused([*sparse, "--data", "ArrowHead", "--data.init_args.seed", "0", "--out", str(zoo / "sp1")], capsys)
    spec = json.loads(_advised(err))
    assert spec["class_path"] == UCR and spec["read_like"]["init_args"]["name"] == "ArrowHead"
    assert {k: spec["init_args"][k] for k in ("name", "seed", "val_fraction", "normalize", "resample")} == {
        "name": "ArrowHead", "seed": 0, "val_fraction": 0.0, "normalize": "sample", "resample": True}
    assert cli([*sparse, "--data", json.dumps(spec), "--out", str(zoo / "sp1")]) == 0
    assert cli([*sparse, "--data", "ArrowHead", "--out", str(zoo / "sp2")]) == 0
    (one,), (two,) = read_manifest(zoo / "sp1").values(), read_manifest(zoo / "sp2").values()
    assert one["sha256"] == two["sha256"]  # the set read as the name reads it: the same sparse head


def test_a_data_option_without_a_spec_to_tell_says_what_to_fill_in(tmp_path, capsys):
    err = _refused(["minirocket", "--data", "NoSuchSet", "--data.init_args.seed", "1", "--out", str(tmp_path)], capsys)
    assert "neuroview.data.<DataModule>" in err
    assert "(<DataModule>: the module of neuroview.data that reads your data" in err  # was the placeholder alone


def _headed_csv(path, rng):
    x, y = rng.standard_normal((12, 20)), np.arange(12) % 2
    with open(path, "w") as f:  # pandas' to_csv header: its reader asks for header=true
        f.write("label," + ",".join(map(str, range(20))) + "\n")
        f.writelines(f"{c}," + ",".join(f"{v:.4f}" for v in r + c) + "\n" for r, c in zip(x, y))
    return path


@pytest.fixture(scope="module")
def series_zoo(tmp_path_factory):
    """A MiniRocket of an .npz of 12 series of 20 steps, and a headed CSV of new series of the same length."""
    tmp = tmp_path_factory.mktemp("series")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((12, 1, 20)).astype(np.float32), np.arange(12) % 2
    np.savez(tmp / "src.npz", X=x + y[:, None, None], y=y)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROVIEW_CACHE", str(tmp / "cache"))
        argv = ["minirocket", "--data", str(tmp / "src.npz"), "--num-features", "84", "--out", str(tmp / "zoo")]
        assert cli(argv) == 0
    return tmp, _headed_csv(tmp / "new.csv", rng)


def _explain(tmp, *more: str) -> list[str]:
    return ["explain", "--model", "nv_minirocket.src", "--zoo", str(tmp / "zoo"), "--no-progress", "--no-gallery",
            "--examples", "0", *more]


def test_explain_advises_one_runnable_spec_for_a_file_s_option(series_zoo, capsys, monkeypatch):
    tmp, csv = series_zoo
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp / "cache"))
    capsys.readouterr()
    assert cli(_explain(tmp, "--data", str(csv), "--out", str(tmp / "r1"))) == 2
    err = capsys.readouterr().err
    assert "pass header=true" in err and "JSON data-module spec: --data" in err
    assert "--data.init_args" not in err  # was "pass header=true (--data.init_args.header true) ..." beside the spec
    spec = _advised(err)
    assert json.loads(spec) == {"class_path": "neuroview.data.CsvDataModule",
                                              "init_args": {"path": str(csv), "header": True}}
    assert cli(_explain(tmp, "--data", spec, "--out", str(tmp / "r2"))) == 0


def test_explain_answers_a_typed_data_option_with_the_spec_of_its_own_data(series_zoo, capsys, monkeypatch, tmp_path):
    tmp, csv = series_zoo
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp / "cache"))
    monkeypatch.chdir(tmp_path)  # another folder than the file's: the spec names it by its absolute path
    typed = ["--data", str(csv), "--data.init_args.header", "true", "--out", str(tmp / "r3")]
    err = _refused(_explain(tmp, *typed), capsys)
    assert "--data.init_args.header: `neuroview explain` takes no --data.* options" in err
    spec = _advised(err)  # was a fixed '{... "path": "new.csv", "header": true}' for any --data: no such file here
    assert json.loads(spec) == {"class_path": "neuroview.data.CsvDataModule",
                                              "init_args": {"path": str(csv), "header": True}}
    assert cli(_explain(tmp, "--data", spec, "--out", str(tmp / "r4"))) == 0


def test_explain_advice_for_a_set_leaves_out_what_explain_sets_and_runs_as_printed(zoo, capsys, monkeypatch):
    """The model's own set with its carve (seed) and a reading option (normalize) typed: explain sets both itself
    and refuses other values, so the advice leaves them out and says so; the rest (batch_size) stays. Was
    ``{"name": "ArrowHead", "seed": 1, ...}``, refused as printed: ``seed 1 given, 0 in the model's training data``."""
    monkeypatch.setenv("NEUROVIEW_CACHE", str(zoo / "cache"))
    argv = ["explain", "--model", "nv_minirocket.arrowhead", "--zoo", str(zoo / "zoo"), "--no-progress",
            "--no-gallery", "--examples", "0", "--samples", "4"]
    err = _refused([*argv, "--data", "ArrowHead", "--data.init_args.seed", "1", "--data.init_args.normalize", "false",
                    "--data.init_args.batch_size", "8", "--out", str(zoo / "e1")], capsys)
    advised = _advice(err)
    assert json.loads(advised[1]) == {"class_path": UCR, "init_args": {"name": "ArrowHead", "batch_size": 8}}
    assert advised == ["--data", advised[1]]  # no other option: the spec alone
    assert "(normalize: left out of the spec below: explain reads data as the model's own was read)" in err
    assert "(seed: left out of the spec below: explain carves the model's own training data as fit carved it" in err
    assert 'for other data, add {"seed": 1} to its init_args); give a file' in err
    capsys.readouterr()
    assert cli([*argv, *advised, "--out", str(zoo / "e2")]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("command", ["explain", "minirocket"])
def test_a_json_spec_missing_a_file_option_is_told_the_spec_with_it(series_zoo, capsys, monkeypatch, command):
    tmp, csv = series_zoo
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp / "cache"))
    given = json.dumps({"class_path": "neuroview.data.CsvDataModule",
                        "init_args": {"path": str(csv), "val_fraction": 0.0}})
    argv = (_explain(tmp, "--out", str(tmp / f"j_{command}")) if command == "explain" else
            ["minirocket", "--num-features", "84", "--out", str(tmp / f"j_{command}")])
    capsys.readouterr()
    assert cli([*argv, "--data", given]) == 2
    err = capsys.readouterr().err
    assert "pass header=true" in err and "--data.init_args" not in err  # was "(--data.init_args.header true)" alone
    spec = _advised(err)
    assert json.loads(spec) == {"class_path": "neuroview.data.CsvDataModule",
                                "init_args": {"path": str(csv), "val_fraction": 0.0, "header": True}}
    assert cli([*argv, "--data", spec]) == 0


def test_the_advice_s_tag_is_the_one_minirocket_names_its_entries_by():
    """The advice's ``--tag`` is minirocket's own tag of ``--data`` (one function, cli_hints.entry_tag), for a set's
    name, a file of odd characters, JSON and a name of none."""
    from neuroview.training import minirocket_cli
    from neuroview.training.cli_hints import entry_tag

    assert "entry_tag" not in vars(minirocket_cli)  # imported where it is used, not copied
    assert [entry_tag(d) for d in ("ArrowHead", "/x/tiny data.npz", "rel/Series-1.v2.csv", "{}", "???.npz")] == [
        "arrowhead", "tiny_data", "series-1.v2", "data", "data"]
