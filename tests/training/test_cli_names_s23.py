"""Refusals of `neuroview explain` and `neuroview test` that named a Python parameter, or misdescribed a path (probe P5,
findings 2 and 3): `--zoo /nonexistent` said `root: ...`, `--data /nonexistent.npz` said `path: ...`, `--model-args`
against a trained entry said `kwargs: ...` and advised a `create_model(...)` call no command line can make; an existing
folder given to `--ckpt` / `--ckpt_path` was "no such file"; `--seed 2**64` ended, after the model and data were
loaded, in torch's bare "Overflow when unpacking long long". Expected words are written out here, not derived from the
code's own tables."""

from __future__ import annotations

import json

import pytest

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
