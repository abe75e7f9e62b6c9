"""Several ``--config`` files and a run's own files: ``--ckpt_path last`` of test/validate/predict scores the checkpoint's
model, a later config (and a ``--model.model_kwargs.KEY`` before it) sets only the ``model_kwargs`` keys it names, the
run folder is named after the last config that sets model or data, a saved config re-run into another root files
everything there, and ``--print_config`` prints the config as parsed (for fit, the one the run uses)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml

from neuroview.training.cli import cli_main

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
UCR = str(ROOT / "recipes" / "ucr_nv_cnn.yaml")
TINY = ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.accelerator", "cpu"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)
    monkeypatch.chdir(tmp_path)  # runs/<name> of a run=False parse, never the checkout's


def _yaml(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _kwargs(*argv: str) -> dict | None:
    cli = cli_main(["fit", *argv, "--trainer.default_root_dir", "r"], run=False)
    return cli.config.model.model_kwargs


@pytest.mark.parametrize("sub", ["test", "validate"])
def test_ckpt_path_last_rebuilds_the_checkpoints_model_as_a_path_does(sub, tmp_path, capsys):
    """`test --config RECIPE --ckpt_path last` built the recipe's network (widths [32, 64, 128]) and failed to load
    the run's [8, 16] into it; the path of that same last.ckpt, and `best`, rebuilt the checkpoint's model."""
    root = str(tmp_path / "run")
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", root, *TINY, "--model.model_kwargs",
              "{widths: [8, 16]}", "--trainer.max_steps", "2", "--test_after_fit", "false"])
    cli = cli_main([sub, "--config", DIGITS, "--trainer.default_root_dir", root, *TINY, "--ckpt_path", "last"])
    assert cli.model.hparams.model_kwargs == {"widths": [8, 16]}
    assert cli.config[sub].ckpt_path == str(Path(root, "checkpoints", "last.ckpt").resolve())
    assert f"{sub}_acc" in cli.trainer.callback_metrics or "val_acc" in cli.trainer.callback_metrics
    # --print_config prints the config as parsed, as the README says: the --config's model and `last` as given
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli_main([sub, "--config", DIGITS, "--trainer.default_root_dir", root, *TINY, "--ckpt_path", "last",
                  "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["ckpt_path"] == "last"
    assert printed["model"]["model_kwargs"] == {"widths": [32, 64, 128], "quantizer": "soft"}


def test_a_later_config_sets_only_the_model_kwargs_keys_it_names(tmp_path):
    """A second --config setting `quantizer` dropped the recipe's `widths` (ucr_nv_cnn's `members: 5`) without a word:
    a later config is merged into model_kwargs key by key, as --model.model_kwargs.KEY is."""
    hard = _yaml(tmp_path / "hard.yaml", "model:\n  model_kwargs:\n    quantizer: hard\n")
    assert _kwargs("--config", DIGITS, "--config", hard) == {"widths": [32, 64, 128], "quantizer": "hard"}
    assert _kwargs("--config", DIGITS, "--config", "{model: {model_kwargs: {widths: [4]}}}") == \
        {"widths": [4], "quantizer": "soft"}  # a config given as a YAML string too
    # a key the command line set before the later config is merged as a config's key is: kept (review R1 of 45f8a4a:
    # it went back to the recipe's widths, and the warning blamed hard.yaml, which sets no widths)
    assert _kwargs("--config", DIGITS, "--model.model_kwargs.widths", "[8]", "--config", hard) == \
        {"widths": [8], "quantizer": "hard"}
    # the whole dict on the command line after the configs replaces it, as before
    assert _kwargs("--config", DIGITS, "--config", hard, "--model.model_kwargs", "{widths: [8]}") == {"widths": [8]}
    # null: a key passed as null; the whole dict null drops every key before it (the builder's defaults)
    with pytest.raises(ValueError, match=r"quantizer: expected one of \('hard', 'soft', 'none'\), got None"):
        _kwargs("--config", DIGITS, "--config", "{model: {model_kwargs: {quantizer: null}}}")  # passed on, not dropped
    assert _kwargs("--config", DIGITS, "--config", "{model: {model_kwargs: null}}") is None
    assert _kwargs("--config", DIGITS, "--config", "{model: {model_kwargs: null}}", "--config", hard) == \
        {"quantizer": "hard"}


def test_a_command_line_key_before_a_later_config_is_reset_only_by_a_config_that_sets_that_key(tmp_path):
    """`--model.model_kwargs.quantizer hard --config narrow.yaml` (narrow.yaml: `widths` only) trained the recipe's
    `soft`, and the warning said narrow.yaml's quantizer replaced it: no option order gives soft (review R1 of 45f8a4a)."""
    narrow = _yaml(tmp_path / "narrow.yaml", "model:\n  model_kwargs:\n    widths: [8, 16]\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # nothing was replaced: nothing to warn of
        assert _kwargs("--config", DIGITS, "--model.model_kwargs.quantizer", "hard", "--config", narrow) == \
            {"widths": [8, 16], "quantizer": "hard"}
        assert _kwargs("--config", DIGITS, "--model.model_kwargs.tau=1e-3", "--config", narrow) == \
            {"widths": [8, 16], "quantizer": "soft", "tau": 0.001}  # read as jsonargparse reads it: a float
    # a later config that sets the same key: the later one wins, and the warning names it
    later = _yaml(tmp_path / "later.yaml", "model:\n  model_kwargs:\n    quantizer: none\n")
    with pytest.warns(UserWarning, match=r"model.model_kwargs.quantizer: the --model.model_kwargs.quantizer given before "
                                         r"--config .*later.yaml is replaced"):
        assert _kwargs("--config", DIGITS, "--model.model_kwargs.quantizer", "hard", "--config", narrow,
                       "--config", later) == {"widths": [8, 16], "quantizer": "none"}
    # a later config's model_kwargs: null drops the key given before it too, and says so
    with pytest.warns(UserWarning, match=r"model.model_kwargs.quantizer: the --model.model_kwargs.quantizer given before "
                                         r"--config \{model: \{model_kwargs: null\}\} is replaced"):
        assert _kwargs("--config", DIGITS, "--model.model_kwargs.quantizer", "hard", "--config",
                       "{model: {model_kwargs: null}}") is None


def test_a_later_config_keeps_the_ensembles_members(tmp_path):
    batched = _yaml(tmp_path / "batched.yaml", "model:\n  model_kwargs:\n    batched: false\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # and nothing to warn of: nothing was dropped
        cli = cli_main(["fit", "--config", UCR, "--config", batched, "--data.init_args.name", "ItalyPowerDemand",
                        "--trainer.default_root_dir", "r"], run=False)
    assert cli.model.hparams.model_kwargs == {"members": 5, "batched": False}
    assert len(cli.model.model.members) == 5


def test_the_run_folder_is_named_after_the_recipe_not_a_later_override(tmp_path):
    """Two recipes run with one shared override file shared runs/<override>/, and --ckpt_path last of one read the
    other's run."""
    quick = _yaml(tmp_path / "quick.yaml", "trainer:\n  max_steps: 12\n")
    for argv in (["--config", DIGITS, "--config", quick], ["--config", quick, "--config", DIGITS],
                 ["--config=" + DIGITS, "--config", quick]):
        cli = cli_main(["fit", *argv], run=False)
        assert cli.config.trainer.default_root_dir == str(Path("runs") / "digits_nv_small_cnn"), argv
    # a model variant after the recipe names its own run: in the recipe's folder, `test --config RECIPE --ckpt_path
    # last` scored the variant as the recipe's run (review R1 of 45f8a4a)
    narrow = _yaml(tmp_path / "narrow.yaml", "model:\n  model_kwargs:\n    widths: [8, 16]\n")
    for argv in (["--config", DIGITS, "--config", narrow], ["--config", DIGITS, "--config", narrow, "--config", quick]):
        cli = cli_main(["fit", *argv], run=False)
        assert cli.config.trainer.default_root_dir == str(Path("runs") / "narrow"), argv
    own = _yaml(tmp_path / "mine.yaml", Path(DIGITS).read_text())  # an edited copy of a recipe: its own name
    assert cli_main(["fit", "--config", own, "--config", quick], run=False).config.trainer.default_root_dir == \
        str(Path("runs") / "mine")


def test_a_saved_config_rerun_into_another_root_files_its_logs_there(tmp_path):
    """Every saved config.yaml held the default CSVLogger with the run's own save_dir: a re-run with
    --trainer.default_root_dir NEW wrote its checkpoints to NEW, its metrics.csv, config.yaml and confusion matrix
    into the old run's logs/."""
    a, b = tmp_path / "a", tmp_path / "b"
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(a), *TINY, "--model.model_kwargs",
              "{widths: [8, 16]}", "--trainer.max_steps", "2"])
    saved = a / "logs" / "version_0" / "config.yaml"
    assert yaml.safe_load(saved.read_text())["trainer"].get("logger") in (None, True)
    cli_main(["fit", "--config", str(saved), "--trainer.default_root_dir", str(b)])
    assert sorted(p.name for p in (a / "logs").iterdir()) == ["version_0"]
    for name in ("metrics.csv", "config.yaml", "confusion_matrix.csv"):
        assert (b / "logs" / "version_0" / name).is_file(), name
    assert (b / "checkpoints" / "last.ckpt").is_file()


def test_a_config_saved_with_the_old_runs_logger_logs_into_the_new_root_after_logger_true(tmp_path):
    """A config.yaml saved before the default loggers were kept out of it names a CSVLogger with the old run's
    save_dir, and a re-run of it logs there: `--trainer.logger true` after it, as the READMEs say, logs under the
    new root (review R1 of 45f8a4a)."""
    a, b = tmp_path / "a", tmp_path / "b"
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(a), *TINY, "--model.model_kwargs",
              "{widths: [8, 16]}", "--trainer.max_steps", "2", "--test_after_fit", "false"])
    saved = yaml.safe_load((a / "logs" / "version_0" / "config.yaml").read_text())
    saved["trainer"]["logger"] = [{"class_path": "pytorch_lightning.loggers.CSVLogger",
                                   "init_args": {"save_dir": str(a), "name": "logs"}}]  # as saved before 45f8a4a
    old = _yaml(tmp_path / "old.yaml", yaml.safe_dump(saved))
    cli_main(["fit", "--config", old, "--trainer.logger", "true", "--trainer.default_root_dir", str(b)])
    assert sorted(p.name for p in (a / "logs").iterdir()) == ["version_0"]
    assert (b / "logs" / "version_0" / "metrics.csv").is_file()
    assert (b / "checkpoints" / "last.ckpt").is_file()


def _printed(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as e:
        cli_main(["fit", *argv, "--trainer.default_root_dir", "r", "--print_config"], run=False)
    assert e.value.code in (0, None)
    return capsys.readouterr().out


@pytest.mark.parametrize("recipe, extra, key", [
    (DIGITS, ["--model.scheduler", "none"], "warmup_epochs"), (DIGITS, ["--model.scheduler", "plateau"], "warmup_epochs"),
    (DIGITS, ["--config", "{model: {scheduler: none}}"], "warmup_epochs"),
    (UCR, ["--model.scheduler", "cosine", "--data.init_args.name", "ItalyPowerDemand"], "min_lr_factor")],
    ids=["digits-none", "digits-plateau", "digits-later-config", "ucr-cosine"])
def test_print_config_prints_the_options_the_run_uses(recipe, extra, key, capsys, tmp_path):
    """--print_config printed the recipe's warmup_epochs 1, which the run set to 0 for --model.scheduler none (and
    ucr_nv_cnn's min_lr_factor 0.1 under cosine), and its output fed back as --config was refused; a scheduler set by
    a later --config was refused outright."""
    with pytest.warns(UserWarning, match=rf"{key}: the config's .* is not used by"):
        direct = cli_main(["fit", "--config", recipe, *extra, "--trainer.default_root_dir", "r"], run=False)
    assert direct.model.hparams[key] == 0
    with pytest.warns(UserWarning, match=key):
        out = _printed(capsys, "--config", recipe, *extra)
    assert yaml.safe_load(out)["model"][key] == 0
    again = cli_main(["fit", "--config", _yaml(tmp_path / "printed.yaml", out)], run=False)
    assert dict(again.model.hparams) == dict(direct.model.hparams)


def test_print_config_without_data_still_prints_a_template(capsys):
    out = _printed(capsys)
    assert "model:" in out and "trainer:" in out
