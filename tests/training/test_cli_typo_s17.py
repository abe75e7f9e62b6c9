"""A misspelled model argument is an input neuroview's own code refuses (a TypeError naming it): `neuroview fit`
prints it as one message and exits 2, as the README's "The message, not a traceback" promises (it printed a
19-frame traceback and exited 1)."""

import pytest

from neuroview import cli


def test_a_misspelled_model_argument_is_one_message_and_exit_2(tmp_path, capsys, monkeypatch):
    argv = ["fit", "--config", "digits_nv_small_cnn", "--model.model_kwargs.widht", "3",
            "--trainer.default_root_dir", str(tmp_path / "runs")]
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuroview fit: widht: unexpected keyword argument 'widht'") and "Traceback" not in err
    assert "did you mean 'widths'" in err
    monkeypatch.setenv("NEUROVIEW_TRACEBACK", "1")
    with pytest.raises(TypeError, match="widht"):
        cli.main(argv)


def test_a_type_error_raised_outside_neuroview_keeps_its_traceback(tmp_path, monkeypatch):
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)

    def elsewhere(_argv):
        raise TypeError("raised outside neuroview")

    monkeypatch.setattr("neuroview.training.cli.cli_main", elsewhere)
    with pytest.raises(TypeError, match="outside neuroview"):
        cli.main(["fit", "--config", "digits_nv_small_cnn"])


def test_explain_prints_a_misspelled_model_argument_as_one_message(tmp_path, capsys):
    """`neuroview explain --model-args` with a key the builder does not take: one line, exit 2 (a traceback, exit 1)."""
    from neuroview.viz.report import main as explain

    assert explain(["--model", "nv_small_cnn.digits", "--model-args", '{"widht": 3}', "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neuroview explain: widht: unexpected keyword argument 'widht'") and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_a_type_error_of_a_bug_inside_neuroview_keeps_its_traceback(tmp_path, monkeypatch):
    """Only a TypeError neuroview raises by name is printed as a refusal: one from an operation that failed inside the
    package (an argument no check reads yet: `layers=5`, `len(5)` in core/targets.py) keeps its traceback."""
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)
    with pytest.raises(TypeError, match="has no len"):
        cli.main(["fit", "--config", "digits_nv_small_cnn", "--model.model_kwargs.layers", "5",
                  "--trainer.default_root_dir", str(tmp_path / "runs")])
