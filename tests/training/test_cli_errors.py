"""Errors first and short: a refused `neuroview fit` option, an unknown zoo checkpoint name."""

from pathlib import Path

import pytest

import neuroview as nv
from neuroview.training.cli import cli_main

DIGITS = str(Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml")


@pytest.mark.parametrize("bad, says", [
    (["--trainer.max_epochz", "3"], "unrecognized arguments: --trainer.max_epochz 3"),
    (["--model.lr", "abc"], 'Parser key "model.lr"'),
])
def test_a_refused_option_is_one_short_error_before_anything_else(bad, says, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), *bad])
    assert e.value.code == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"neuroview fit: error: {says}"), err[:2000]
    assert lines[-1] == "see `neuroview fit --help`"
    assert len(lines) <= 4 and "usage:" not in err and not out


def test_a_refused_option_of_another_subcommand_names_it(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(["test", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--nosuch", "1"])
    err = capsys.readouterr().err
    assert err.startswith("neuroview test: error: unrecognized arguments: --nosuch 1")
    assert err.strip().endswith("see `neuroview test --help`")


def test_help_is_still_the_whole_usage(capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["fit", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: neuroview") and "--trainer.max_epochs" in out


def test_an_unknown_checkpoint_name_suggests_checkpoints_and_neuroview_zoo():
    # a typo in the architecture part of `arch.tag`: the hint is the trained checkpoints, not list_models()
    with pytest.raises(ValueError, match=r"name: no trained entry 'nv_gruu.gunpoint' .*did you mean \['nv_gru.gunpoint'.*"
                                         r"`neuroview zoo`") as e:
        nv.create_model("nv_gruu.gunpoint", pretrained=True)
    assert "list_models()" not in str(e.value)
    # a typo in the tag
    with pytest.raises(ValueError, match=r"no trained entry 'nv_gru.gunpiont' .*did you mean \['nv_gru.gunpoint'.*`neuroview zoo`"):
        nv.create_model("nv_gru.gunpiont", pretrained=True)
    # an architecture name without a dot still gets architectures
    with pytest.raises(ValueError, match=r"unknown model 'nv_smal_cnn'; did you mean \['nv_small_cnn'"):
        nv.create_model("nv_smal_cnn")


def test_neuroview_fit_prints_a_refused_input_without_a_traceback(tmp_path, capsys, monkeypatch):
    """`neuroview fit` on data neuroview refuses: one line naming the argument, exit 2 (it printed Lightning's
    and jsonargparse's traceback first); an error raised elsewhere keeps its traceback."""
    import numpy as np

    from neuroview import cli

    np.savez(tmp_path / "one.npz", X=np.random.default_rng(0).normal(size=(20, 1, 8)).astype(np.float32), y=np.zeros(20, int))
    argv = ["fit", "--config", "ucr_nv_cnn", "--data", "neuroview.data.NpzDataModule", "--data.init_args.path",
            str(tmp_path / "one.npz"), "--trainer.default_root_dir", str(tmp_path / "runs")]
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuroview fit: NpzDataModule: y: expected labels of at least 2 classes") and "Traceback" not in err
    monkeypatch.setenv("NEUROVIEW_TRACEBACK", "1")
    with pytest.raises(ValueError, match="at least 2 classes"):
        cli.main(argv)
    monkeypatch.delenv("NEUROVIEW_TRACEBACK")
    # a data-module argument jsonargparse instantiates: its refusal came 77 lines into a traceback, exit 1
    assert cli.main(["fit", "--config", "digits_nv_small_cnn", "--data.init_args.batch_size", "0",
                     "--trainer.default_root_dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuroview fit: batch_size: expected a positive int or 'auto', got 0") and "Traceback" not in err
    monkeypatch.setenv("NEUROVIEW_TRACEBACK", "1")

    def elsewhere(_argv):
        raise ValueError("raised outside neuroview")

    monkeypatch.delenv("NEUROVIEW_TRACEBACK")
    monkeypatch.setattr("neuroview.training.cli.cli_main", elsewhere)
    with pytest.raises(ValueError, match="raised outside neuroview"):
        cli.main(argv)


def test_an_empty_or_truncated_checkpoint_is_named_by_every_command(tmp_path, capsys):
    """A bare EOFError or OSError, before: every command that reads a .ckpt names its option and the file."""
    import torch

    from neuroview import cli

    whole = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {"model.w": torch.zeros(1000)}, "hyper_parameters": {"arch": "nv_small_cnn"}}, whole)
    (tmp_path / "empty.ckpt").write_bytes(b"")
    (tmp_path / "trunc.ckpt").write_bytes(whole.read_bytes()[:2000])
    for bad in ("empty.ckpt", "trunc.ckpt"):
        path = str(tmp_path / bad)
        runs = {"--ckpt": ["explain", "--ckpt", path, "--out", str(tmp_path / "r")],
                "source": ["sparsify", path, "--data", "digits", "--out", str(tmp_path / "s")],
                "source ": ["retrofit", path, "--data", "digits"],
                "ckpt_path": ["fit", "--config", "digits_nv_small_cnn", "--ckpt_path", path,
                              "--trainer.default_root_dir", str(tmp_path / "f")]}
        for what, argv in runs.items():
            assert cli.main(argv) == 2
            err = capsys.readouterr().err
            assert f"{what.strip()}: '{path}' is not a readable checkpoint: empty, truncated" in err, err[-500:]
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()


def test_neuroview_demo_refuses_zero_epochs_by_name(capsys):
    """`neuroview demo --epochs 0` trained nothing and printed figures of an untrained network (the TypeError
    from len(None) it was once taken to end in came from every run: test_demo_command.py)."""
    from neuroview.training.demo import main as demo

    for flag in ("--epochs", "--top"):
        with pytest.raises(SystemExit) as e:
            demo([flag, "0"])
        assert e.value.code == 2 and f"{flag}: expected an int >= 1, got 0" in capsys.readouterr().err


def test_a_missing_extra_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    """`neuroview minirocket --data ArrowHead` after `pip install -e .` alone (no aeon) ended in a traceback, exit 1."""
    import sys

    from neuroview.training.minirocket_cli import main as minirocket_main

    monkeypatch.setitem(sys.modules, "aeon", None)  # as if not installed: importing it raises ImportError
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "empty_cache"))
    assert minirocket_main(["--data", "ArrowHead", "--out", str(tmp_path / "z")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuroview minirocket: ") and "pip install 'neuroview[data]'" in err and "Traceback" not in err
