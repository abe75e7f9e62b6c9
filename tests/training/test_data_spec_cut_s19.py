"""`neuroview fit --data <spec>`: a refused spec is said in the error as `neuroview explain` says a long --model-args
(its first 60 characters and its length), not whole: a 400 kB spec gave three 400 kB lines (s19, left by the s18
reviewers)."""

from __future__ import annotations

import pytest

from neuroview.training.cli import cli_main


def _refusal(capsys, spec: str) -> str:
    with pytest.raises(SystemExit) as e:
        cli_main(["fit", "--data", spec, "--trainer.max_epochs", "1"])
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert not out
    return err


def test_a_400_kb_data_spec_is_cut_as_model_args_is(capsys):
    spec = "x" * 400_000
    err = _refusal(capsys, spec)
    assert len(err) < 3_000, len(err)
    assert f"{'x' * 60!r}... (400000 characters)" in err, err[:3000]
    assert "x" * 61 not in err
    assert err.startswith('neuroview fit: error: Parser key "data":') and err.strip().endswith("see `neuroview fit --help`")


def test_a_long_json_data_spec_is_cut_in_each_form_the_parser_repeats_it(capsys):
    """As given (the path it is not) and as parsed (the value it was given, a dict): neither whole."""
    spec = '{"class_path": "NpzDataModule", "init_args": {"pathh": "' + "p" * 5_000 + '"}}'
    err = _refusal(capsys, spec)
    assert len(err) < 3_000, len(err)
    assert f"{spec[:60]!r}... ({len(spec)} characters)" in err, err[:3000]
    assert "p" * 300 not in err
    assert "Option 'pathh' is not accepted" in err  # the reason itself is still said


def test_a_short_data_spec_is_said_whole(capsys):
    err = _refusal(capsys, "abc")
    assert "Expected a path but abc either not accessible or invalid" in err and "Given value: abc" in err, err
