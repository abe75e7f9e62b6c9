"""Refusals of `neuroview explain` and `neuroview test` that named a Python parameter, or misdescribed a path (probe P5,
findings 2 and 3): `--zoo /nonexistent` said `root: ...`, `--data /nonexistent.npz` said `path: ...`, `--model-args`
against a trained entry said `kwargs: ...` and advised a `create_model(...)` call no command line can make; an existing
folder given to `--ckpt` / `--ckpt_path` was "no such file"; `--seed 2**64` ended, after the model and data were
loaded, in torch's bare "Overflow when unpacking long long". Expected words are written out here, not derived from the
code's own tables."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import torch

from neuroview.viz import report


def _explain(tmp_path, capsys, *argv: str) -> str:
    """stderr of `neuroview explain ARGV --out tmp/r`, which must refuse (exit 2) without writing --out."""
    rc = report.main([*argv, "--out", str(tmp_path / "r"), "--no-progress", "--no-gallery", "--samples", "4"])
    err = capsys.readouterr().err
    assert rc == 2, err[-800:]
    assert not (tmp_path / "r").exists()
    return err


@pytest.mark.parametrize("given, option", [
    (["--zoo", "{tmp}/no_such_zoo"], "--zoo"),
    (["--zoo", "{tmp}/a_file.json"], "--zoo"),
    (["--data", "{tmp}/no_such.npz"], "--data"),
    (["--data", "mnist:{tmp}/no_such_folder"], "--data"),
    (["--data", json.dumps({"class_path": "neuroview.data.UCRDataModule", "init_args": {"name": "GunPointz"}})], "--data"),
])
def test_explain_refusals_name_the_option_typed(tmp_path, capsys, given, option):
    (tmp_path / "a_file.json").write_text("{}")
    err = _explain(tmp_path, capsys, "--model", "nv_small_cnn.digits", *(g.replace("{tmp}", str(tmp_path)) for g in given))
    assert f"(option {option})" in err, err
    others = {"--zoo", "--data", "--model"} - {option}
    assert not any(f"option {o})" in err for o in others), err  # a data module's root:/name: is not --zoo's/--model's


def test_explain_model_args_against_a_trained_entry_says_the_command_line_s_way(tmp_path, capsys):
    err = _explain(tmp_path, capsys, "--model", "nv_small_cnn.digits", "--model-args", '{"quantizer": "hard"}')
    assert "quantizer='hard' (checkpoint: 'soft')" in err, err
    assert "(option --model-args)" in err, err
    assert "create_model" not in err and "pretrained=True" not in err, err  # Python, no option of explain's
    assert "--model nv_small_cnn --weights" in err, err  # the command line's way to other arguments


def test_the_python_message_keeps_its_python_advice():
    """create_model's own words stay those of a Python caller."""
    import neuroview as nv

    with pytest.raises(ValueError, match=r"^kwargs: 'nv_small_cnn\.digits' was trained with fixed arguments; got "
                                         r"quantizer='hard' \(checkpoint: 'soft'\)\. Build create_model\('nv_small_cnn', "
                                         r"\.\.\.\) without pretrained=True to change them$"):
        nv.create_model("nv_small_cnn.digits", pretrained=True, quantizer="hard")


def test_explain_ckpt_of_a_folder_says_it_is_a_folder(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.ckpt").write_bytes(b"")
    err = _explain(tmp_path, capsys, "--ckpt", str(run))
    assert f"--ckpt: expected a Lightning checkpoint written by `neuroview fit`, got '{run}' (a folder, not a file; " \
           f"name the .ckpt file in it, e.g. '{run / 'last.ckpt'}')" in err, err
    assert "no such file" not in err
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _explain(tmp_path, capsys, "--ckpt", str(empty))
    assert f"got '{empty}' (a folder, not a file; name a .ckpt file)" in err, err
    err = _explain(tmp_path, capsys, "--ckpt", str(tmp_path / "gone.ckpt"))
    assert f"got '{tmp_path / 'gone.ckpt'}' (no such file)" in err, err


def test_test_ckpt_path_of_a_folder_says_it_is_a_folder(tmp_path, capsys):
    from neuroview import cli

    run = tmp_path / "checkpoints"
    run.mkdir()
    rc = cli.main(["test", "--config", "digits_nv_small_cnn", "--ckpt_path", str(run),
                   "--trainer.default_root_dir", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert rc == 2, err[-800:]
    assert f"ckpt_path: expected a checkpoint file, got '{run}' (a folder, not a file; name a .ckpt file)" in err, err
    assert "no such file" not in err


@pytest.mark.parametrize("seed", ["-1", str(2 ** 64), str(-(2 ** 64)), str(10 ** 30)])
def test_explain_seed_out_of_range_is_refused_before_any_work(tmp_path, capsys, monkeypatch, seed):
    def no_work(*_):
        raise AssertionError("the model was resolved before --seed was checked")

    monkeypatch.setattr(report, "resolve_model", no_work)
    with pytest.raises(SystemExit) as e:
        report.main(["--model", "nv_small_cnn.digits", "--seed", seed, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert f"error: --seed: expected an int in [0, 2**64) (which samples are drawn), got {seed}\n" in err, err
    assert "Overflow" not in err and not (tmp_path / "r").exists()


def test_the_seed_range_s_ends_draw_samples():
    """0 and 2**64 - 1 are seeds torch's generator takes: the range refused nothing that worked."""
    from neuroview.data import DigitsDataModule

    dm = DigitsDataModule()
    low = report.load_batch(dm, "test", 5, 0)[2]
    high = report.load_batch(dm, "test", 5, 2 ** 64 - 1)[2]
    assert len(low) == len(high) == 5


# ---------------------------------------------------------------------------------------------------- review R4
# Findings 1, 3, 4 and 5 (fit --model.init_weights) of the review of b5cf803 and 7a59379: `fit --seed_everything -1` a
# Lightning traceback, exit 1; `explain --weights X.ckpt` unreadable named --ckpt; create_model's own arguments in
# --model-args, and a JSON --data spec's unknown key, bare Python TypeErrors; `--zoo Z` without the entry advised the
# installed zoo's listing and a Python call; an init_weights folder "not a file", the .ckpt in it unnamed.

class _Reached(Exception):
    """Raised by a stub where the command got past the step under test."""


def _no_build(monkeypatch) -> None:
    """Anything past the parse (the checkpoint's read, Lightning's seeding, the classes' building) fails the test."""
    import pytorch_lightning.cli as plcli

    from neuroview.training.cli import NeuroViewCLI

    def reached(*_a, **_k):
        raise AssertionError("--seed_everything was not refused before the command went on")

    monkeypatch.setattr(NeuroViewCLI, "_parse_ckpt_path", reached)
    monkeypatch.setattr(NeuroViewCLI, "instantiate_classes", reached)
    monkeypatch.setattr(plcli, "seed_everything", reached)


@pytest.mark.parametrize("sub, seed", [("fit", "-1"), ("fit", str(2 ** 32)), ("validate", str(10 ** 30)),
                                       ("test", "-1"), ("predict", str(2 ** 32))])
def test_lightning_seed_out_of_range_is_refused_in_one_line_before_anything_is_built(tmp_path, capsys, monkeypatch,
                                                                                    sub, seed):
    from lightning_fabric.utilities.seed import seed_everything

    from neuroview import cli

    with pytest.raises(ValueError, match="not in bounds"):  # the range said is Lightning's own: it refuses the value too
        seed_everything(int(seed), verbose=False)
    _no_build(monkeypatch)
    rc = cli.main([sub, "--config", "digits_nv_small_cnn", "--seed_everything", seed,
                   "--trainer.default_root_dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2, err[-800:]
    assert "Traceback" not in err and "not in bounds" not in err, err
    line = err.splitlines()[0]
    assert line.startswith(f"neuroview {sub}: seed_everything: expected true, false or an int in [0, 2**32) "), err
    assert line.endswith(f", got {seed} (option --seed_everything)"), err
    assert not (tmp_path / "run").exists()


def test_a_config_s_seed_everything_out_of_range_is_refused_too(tmp_path, capsys, monkeypatch):
    from neuroview import cli

    (tmp_path / "seed.yaml").write_text("seed_everything: -5\n")
    _no_build(monkeypatch)
    rc = cli.main(["fit", "--config", "digits_nv_small_cnn", "--config", str(tmp_path / "seed.yaml"),
                   "--trainer.default_root_dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "got -5 (option --seed_everything)" in err, err


@pytest.mark.parametrize("seed, taken", [("0", 0), (str(2 ** 32 - 1), 2 ** 32 - 1), ("true", None), ("false", False)])
def test_lightning_seeds_at_the_range_s_ends_reach_lightning(tmp_path, monkeypatch, seed, taken):
    """0, 2**32 - 1, true and false go on to Lightning's seeding (false: none), which takes them."""
    import pytorch_lightning.cli as plcli
    from lightning_fabric.utilities.seed import seed_everything

    from neuroview import cli
    from neuroview.training.cli import NeuroViewCLI

    if isinstance(taken, int) and not isinstance(taken, bool):  # Lightning takes it; the globals it seeds put back
        monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)  # restored after the test, as set_seed leaves it
        monkeypatch.delenv("PL_SEED_WORKERS", raising=False)
        states = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            try:
                assert seed_everything(taken, verbose=False) == taken
            finally:
                random.setstate(states[0])
                np.random.set_state(states[1])
    seen = []

    def spy(seed=None, workers=False, verbose=True):
        seen.append(seed)
        raise _Reached

    def built(*_a, **_k):
        seen.append(False)  # seed_everything false: no seeding, the classes come next
        raise _Reached

    monkeypatch.setattr(plcli, "seed_everything", spy)
    monkeypatch.setattr(NeuroViewCLI, "instantiate_classes", built)
    monkeypatch.setattr(NeuroViewCLI, "before_instantiate_classes", lambda self: None)
    with pytest.raises(_Reached):
        cli.main(["fit", "--config", "digits_nv_small_cnn", "--seed_everything", seed,
                  "--trainer.default_root_dir", str(tmp_path / "run")])
    assert seen == [taken]


@pytest.mark.parametrize("first", [True, False])
def test_explain_weights_ckpt_unreadable_names_weights(tmp_path, capsys, first):
    w = tmp_path / "w.ckpt"
    w.write_bytes(b"not a checkpoint")
    model = ["--model", "nv_small_cnn" if first else "nv_small_cnn.digits"]
    argv = [*model, "--weights", str(w)] if first else ["--weights", str(w), *model]
    err = _explain(tmp_path, capsys, *argv)
    assert f"neuroview explain: --weights: {str(w)!r} is not a readable checkpoint" in err, err
    assert "--ckpt" not in err, err


@pytest.mark.parametrize("given, zoo, words", [
    ({"pretrained": False}, False, "got 'pretrained', which explain sets itself"),
    ({"pretrained": True}, False, "got 'pretrained', which explain sets itself"),
    ({"root": "x"}, True, "got 'root', the zoo's folder, which --zoo gives"),
    ({"root": "x"}, False, "got 'root', the zoo's folder, which --zoo gives"),
    ({"name": "nv_small_cnn"}, False, "got 'name', which --model gives"),
])
def test_explain_model_args_of_create_model_s_own_arguments_are_refused_by_name(tmp_path, capsys, given, zoo, words):
    (tmp_path / "zoo").mkdir()
    err = _explain(tmp_path, capsys, "--model", "nv_small_cnn.digits", "--model-args", json.dumps(given),
                   *(["--zoo", str(tmp_path / "zoo")] if zoo else []))
    assert f"neuroview explain: --model-args: expected the network's builder arguments, {words}" in err, err
    assert "multiple values" not in err and "create_model()" not in err, err


def test_explain_model_args_pretrained_with_weights_is_refused_by_name(tmp_path, capsys):
    w = tmp_path / "w.safetensors"
    w.write_bytes(b"x")  # refused before it is read
    err = _explain(tmp_path, capsys, "--model", "nv_small_cnn", "--weights", str(w), "--model-args", '{"pretrained": true}')
    assert "--model-args: expected the network's builder arguments, got 'pretrained', which explain sets itself" in err


@pytest.mark.parametrize("cls, init_args, bad, takes", [
    ("DigitsDataModule", {"batch_sizee": 2}, "batch_sizee",
     ["test_fraction", "batch_size", "val_fraction", "seed", "val_fold", "normalize", "num_workers", "eval_batch_size",
      "resample"]),
    ("UCRDataModule", {"name": "GunPoint", "header": True}, "header",
     ["name", "batch_size", "val_fraction", "seed", "val_fold", "normalize", "num_workers", "eval_batch_size",
      "download", "resample"]),
])
def test_explain_data_spec_unknown_key_is_refused_naming_data_and_the_key(tmp_path, capsys, cls, init_args, bad, takes):
    spec = json.dumps({"class_path": f"neuroview.data.{cls}", "init_args": init_args})
    err = _explain(tmp_path, capsys, "--model", "nv_small_cnn.digits", "--data", spec)
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"neuroview explain: --data: init_args: unexpected argument {bad!r} of {cls} (its arguments: "), err
    listed = set(re.findall(r"\w+", line.split("(its arguments: ", 1)[1]))
    assert set(takes) <= listed and bad not in listed, line
    assert "unexpected keyword argument" not in err and "__init__" not in err, err


def test_explain_zoo_without_the_entry_advises_that_zoo_s_listing(tmp_path, capsys):
    zoo = tmp_path / "my zoo"
    zoo.mkdir()
    err = _explain(tmp_path, capsys, "--model", "nv_small_cnn.digits", "--zoo", str(zoo))
    assert f"`neuroview zoo --root '{zoo}'` lists its 0 trained checkpoints" in err, err
    assert "nv.list_models" not in err and "pretrained=True" not in err, err
    assert "(option --model)" in err, err
    err = _explain(tmp_path, capsys, "--model", "nv_small_cnn.no_such_tag")
    assert "`neuroview zoo` lists the " in err and "nv.list_models" not in err, err


def test_the_advised_zoo_listing_runs(tmp_path, capsys):
    """`neuroview zoo --root Z`, as advised, lists that folder (none), not the installed zoo."""
    from neuroview import cli

    zoo = tmp_path / "my zoo"
    zoo.mkdir()
    rc = cli.main(["zoo", "--root", str(zoo)])
    out = capsys.readouterr().out
    assert rc == 0 and "nv_small_cnn.digits" not in out, out


def _fit_init_weights(tmp_path, capsys, weights, sub: str = "fit") -> str:
    from neuroview import cli

    rc = cli.main([sub, "--config", "digits_nv_small_cnn", "--model.init_weights", str(weights),
                   "--trainer.default_root_dir", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert rc == 2, err[-800:]
    return err


@pytest.mark.parametrize("sub", ["fit", "test"])
def test_init_weights_of_a_folder_says_it_is_a_folder_and_names_the_ckpt_in_it(tmp_path, capsys, sub):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    err = _fit_init_weights(tmp_path, capsys, run, sub)
    assert f"model.init_weights: expected a weight file to start from (a `neuroview fit` .ckpt, a state dict or a " \
           f".safetensors), got '{run}' (a folder, not a file; name the .ckpt file in it, e.g. " \
           f"'{run / 'checkpoints' / 'last.ckpt'}')" in err, err
    assert "(not a file)" not in err, err


def test_init_weights_of_an_empty_folder_or_no_path(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert f"got '{empty}' (a folder, not a file; name a .ckpt file)" in _fit_init_weights(tmp_path, capsys, empty)
    assert f"got '{tmp_path / 'gone.ckpt'}' (no such file)" in _fit_init_weights(tmp_path, capsys, tmp_path / "gone.ckpt")
