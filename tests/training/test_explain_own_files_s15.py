"""`neuroview explain` on a user's own files, and the order of a `neuroview predict` command line (a probe):
explain of a file of new series (no X_test) explained a hidden test_fraction carve of it (2 of 9 series) where
predict/test score every series, and its predictions.csv named no row of the file (file_index); a file's format could
not be given (`--data.init_args.header` unrecognized, a JSON data-module spec refused) and a small file was refused
for a validation split explain never reads; `--ckpt_path` before `--config RUN/config.yaml` was reset by the
config's `ckpt_path: null`, and the refusal asked for the --ckpt_path given. Expected values come from the files."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from neuroview.data.splits import stratified_split
from neuroview.training.cli import cli_main
from neuroview.training.cli_order import reset_by_config
from neuroview.viz.report import main as explain

ROOT = Path(__file__).resolve().parents[2]
NAMES = np.array(["cat", "dog", "eel"])


def _series(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, 1, 20)).astype(np.float32)
    x[y == 1, :, 4:10] += 2.0
    x[y == 2, :, 10:16] -= 2.0
    return x, y


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A two-step model on `train.npz` (30 series, no X_test: fit carved its test split) and its saved config."""
    tmp = tmp_path_factory.mktemp("own")
    x, y = _series(30, 0)
    np.savez(tmp / "train.npz", X=x, y=NAMES[y])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROVIEW_CACHE", str(tmp / "cache"))
        cli_main(["fit", "--config", str(ROOT / "recipes" / "ucr_nv_cnn.yaml"), "--data", "neuroview.data.NpzDataModule",
                  "--data.init_args.path", str(tmp / "train.npz"), "--model.model_kwargs.members", "1",
                  "--trainer.default_root_dir", str(tmp / "run"), "--trainer.max_steps", "2", "--test_after_fit",
                  "false", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    return tmp, str(tmp / "run" / "checkpoints" / "last.ckpt"), str(tmp / "run" / "logs" / "version_0" / "config.yaml")


def _explain(ckpt: str, out: Path, *more: str) -> int:
    return explain(["--ckpt", ckpt, "--out", str(out), "--no-progress", "--no-gallery", "--examples", "0", *more])


def _rows(out: Path) -> list[dict]:
    with open(out / "predictions.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_explain_of_a_new_file_explains_every_series_and_names_each_row_of_the_file(run):
    tmp, ckpt, _ = run
    x, y = _series(9, 5)
    np.savez(tmp / "new.npz", X=x, y=NAMES[y])
    assert _explain(ckpt, tmp / "new_out", "--data", str(tmp / "new.npz")) == 0
    rows = _rows(tmp / "new_out")
    assert [r["file_index"] for r in rows] == [str(i) for i in range(9)]  # was 2 rows (a carve), no file_index
    assert [r["true"] for r in rows] == list(NAMES[y])
    assert json.loads((tmp / "new_out" / "report.json").read_text())["file_index"] == list(range(9))


def test_explain_of_the_training_file_keeps_fit_s_carve_and_names_its_rows(run):
    tmp, ckpt, _ = run
    _, y = _series(30, 0)
    _, test = stratified_split(NAMES[y], 0.2, 0 + 1)  # NpzDataModule's carve: test_fraction 0.2 by seed + 1
    assert _explain(ckpt, tmp / "own_out") == 0
    rows = _rows(tmp / "own_out")
    assert [r["split_index"] for r in rows] == [str(i) for i in range(len(test))]
    assert [int(r["file_index"]) for r in rows] == test.tolist()  # split_index 0, 1, ... are not the file's rows
    assert [r["true"] for r in rows] == list(NAMES[y][test])
    assert json.loads((tmp / "own_out" / "report.json").read_text())["file_index"] == test.tolist()
    resaved = tmp / "resaved.npz"  # the training file saved again (other bytes, the same series): carved as fit did
    np.savez_compressed(resaved, **dict(np.load(tmp / "train.npz")))
    assert _explain(ckpt, tmp / "resaved_out", "--data", str(resaved)) == 0
    assert [int(r["file_index"]) for r in _rows(tmp / "resaved_out")] == test.tolist()  # all 30 explained as new before


def _csv(path: Path, n: int, seed: int, header: bool) -> np.ndarray:
    x, y = _series(n, seed)
    lines = (["label," + ",".join(f"v{i}" for i in range(20))] if header else [])
    lines += [",".join([NAMES[c], *(f"{v:.5f}" for v in s[0])]) for c, s in zip(y, x)]
    path.write_text("\n".join(lines) + "\n")
    return y


def test_explain_takes_a_file_s_format_in_a_json_spec_and_says_how(run, capsys):
    tmp, ckpt, _ = run
    y = _csv(tmp / "head.csv", 9, 6, header=True)
    spec = {"class_path": "neuroview.data.CsvDataModule", "init_args": {"path": str(tmp / "head.csv"), "header": True}}
    assert _explain(ckpt, tmp / "json_out", "--data", json.dumps(spec)) == 0  # was "--data: expected digits | ..."
    assert [r["true"] for r in _rows(tmp / "json_out")] == list(NAMES[y])
    # the path alone: the reader asks for header=true; explain says how to give it
    capsys.readouterr()
    assert _explain(ckpt, tmp / "no_out", "--data", str(tmp / "head.csv")) == 2
    err = capsys.readouterr().err
    assert "pass header=true" in err and '"header": true' in err and "JSON data-module spec" in err
    with pytest.raises(SystemExit) as e:  # was "unrecognized arguments" alone
        _explain(ckpt, tmp / "no_out", "--data", str(tmp / "head.csv"), "--data.init_args.header", "true")
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--data.init_args.header: `neuroview explain` takes no --data.* options" in err and "JSON" in err
    assert not (tmp / "no_out").exists()


def test_explain_of_a_small_file_carves_no_validation_split(run):
    tmp, ckpt, _ = run
    y = _csv(tmp / "small.csv", 7, 7, header=False)  # 3, 2, 2 series a class: val_fraction 0.1 holds out none
    assert _explain(ckpt, tmp / "small_out", "--data", str(tmp / "small.csv")) == 0  # was "val_fraction: expected ..."
    assert [r["true"] for r in _rows(tmp / "small_out")] == list(NAMES[y])


def test_a_ckpt_path_before_the_config_is_said_to_be_reset_by_it(run):
    _, ckpt, config = run
    with pytest.warns(UserWarning, match="the --ckpt_path given before --config .* is replaced by that file's"):
        with pytest.raises(ValueError, match=r"--ckpt_path was given before --config .*config.yaml, which sets "
                                             r"ckpt_path again: .* put --ckpt_path after --config"):
            cli_main(["predict", "--ckpt_path", ckpt, "--config", config])
    # the order rule itself: a value given after the config stands, and a config that names no ckpt_path resets nothing
    assert reset_by_config(["predict", "--ckpt_path", ckpt, "--config", config], "ckpt_path") == config
    assert reset_by_config(["predict", "--config", config, "--ckpt_path", ckpt], "ckpt_path") is None
    assert reset_by_config(["predict", f"--ckpt_path={ckpt}", f"--config={config}"], "ckpt_path") == config
    assert reset_by_config(["predict", "--ckpt_path", ckpt, "--config", str(ROOT / "recipes" / "ucr_nv_cnn.yaml")],
                           "ckpt_path") is None


def test_explain_of_a_cnn_on_padded_series_does_not_warn_of_lengths_it_does_not_pass(tmp_path, recwarn):
    # the report warns where a CNN is handed lengths; the command itself handed them on every padded set (a review)
    x, y = _series(30, 1)
    lengths = np.where(np.arange(30) % 2, 20, 14)
    x[lengths == 14, :, 14:] = 0.0
    np.savez(tmp_path / "padded.npz", X=x, y=NAMES[y], lengths=lengths)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
        cli_main(["fit", "--config", str(ROOT / "recipes" / "ucr_nv_cnn.yaml"), "--data", "neuroview.data.NpzDataModule",
                  "--data.init_args.path", str(tmp_path / "padded.npz"), "--data.init_args.resample", "false",
                  "--model.model_kwargs.members", "1", "--trainer.default_root_dir", str(tmp_path / "run"),
                  "--trainer.max_steps", "2", "--test_after_fit", "false", "--trainer.enable_progress_bar", "false",
                  "--trainer.enable_model_summary", "false"])
    recwarn.clear()
    assert _explain(str(tmp_path / "run" / "checkpoints" / "last.ckpt"), tmp_path / "out") == 0
    assert not [w for w in recwarn if "does not use lengths" in str(w.message)]


def test_a_config_that_replaces_an_option_whole_counts_as_setting_it_again(tmp_path):
    # a dict option set at all, or a class path with no init_args, replaces what was given before it (a review)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  model_kwargs:\n    batched: auto\ndata: neuroview.data.NpzDataModule\ntrainer:\n  max_steps: 5\n")
    argv = ["fit", "--model.model_kwargs.members", "1", "--data.init_args.path", "a.npz", "--trainer.max_epochs", "3",
            "--config", str(cfg)]
    assert reset_by_config(argv, "model.model_kwargs.members") is None  # model_kwargs merged key by key (s25)
    assert reset_by_config(argv, "data.init_args.path") == str(cfg)
    assert reset_by_config(argv, "trainer.max_epochs") is None  # a group of options: merged, max_epochs kept
    sub = tmp_path / "sub.yaml"  # only a sub-key of --data: the class and its path given before stand (a review)
    sub.write_text("data:\n  init_args:\n    batch_size: 8\n")
    argv = ["fit", "--data", "neuroview.data.NpzDataModule", "--data.init_args.path", "a.npz", "--config", str(sub)]
    assert reset_by_config(argv, "data") is None and reset_by_config(argv, "data.init_args.path") is None
    sub.write_text("data:\n  class_path: neuroview.data.CsvDataModule\n  init_args:\n    batch_size: 8\n")
    assert reset_by_config(argv, "data") == str(sub)  # another class: replaced


@pytest.mark.parametrize("asked, given", [(";", ";"), ("\t", "\t"), (",", ","), (" ", " ")])
def test_the_json_hint_gives_the_delimiter_the_reader_asks_for(asked, given):
    # the hint cut a quoted delimiter at itself (';' gave ""), and '\t' gave a backslash and a t (a review)
    from neuroview.training.cli_hints import file_options_hint

    hint = file_options_hint("explain", "new.csv", f"path: row 1 of new.csv, column 2: ...; pass delimiter={asked!r} (and ...)")
    spec = json.loads(hint.split("--data '", 1)[1].rsplit("')", 1)[0])
    assert spec["init_args"] == {"path": os.path.abspath("new.csv"), "delimiter": given}
