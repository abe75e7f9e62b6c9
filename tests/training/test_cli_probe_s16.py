"""The command-line probe (session 16): a refused `neuroview fit` renamed the earlier run's checkpoints and left a stub
log folder; `predict`/`test` with `--trainer.logger false` wrote over the user's config.yaml and predictions.csv;
abbreviated options were taken as the option they begin (`--model.min_lr` set `min_lr_factor`)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from neuroview import cli
from neuroview.training.cli import cli_main

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
QUICK = ["--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
         "--trainer.limit_test_batches", "1", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false", "--trainer.num_sanity_val_steps", "0", "--test_after_fit", "false"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """One quick fit: its folder (checkpoints/last.ckpt, logs/version_0)."""
    root = tmp_path_factory.mktemp("run")
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK])
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _copy(run: Path, root: Path) -> Path:
    """A copy of the run's folder, for a test that writes into it (the module's run stays as it was)."""
    for name, data in _files(run).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize("weights", ["missing", "garbage"])
def test_a_refused_fit_leaves_the_earlier_run_where_it_was(run, tmp_path, weights, one_thread, capsys):
    """A missing --model.init_weights (checked before anything moves) and a file that is no weights (refused in the
    model's setup): before, the earlier last.ckpt became last-v1.ckpt and logs/version_1 held a stub config.yaml."""
    bad, run = tmp_path / "w.ckpt", _copy(run, tmp_path / "copy")
    if weights == "garbage":
        bad.write_bytes(b"not a checkpoint")
    before = _files(run)
    assert "checkpoints/last.ckpt" in before
    code = cli.main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(run), *QUICK,
                     "--model.init_weights", str(bad)])
    assert code == 2
    err = capsys.readouterr().err
    assert "init_weights" in err and str(bad) in err, err[-2000:]
    if weights == "missing":
        assert "no such file" in err
    assert _files(run) == before  # the same files, the same bytes: no -v1, no logs/version_1
    assert not (run / "logs" / "version_1").exists()


def test_a_new_run_still_keeps_the_earlier_checkpoints_once_it_trains(run, tmp_path, one_thread):
    root = _copy(run, tmp_path / "copy")
    last = (root / "checkpoints" / "last.ckpt").read_bytes()
    cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK, "--seed_everything", "7"])
    assert (root / "checkpoints" / "last-v1.ckpt").read_bytes() == last  # the earlier run's, kept
    assert (root / "checkpoints" / "last.ckpt").read_bytes() != last  # the new run's own
    assert (root / "logs" / "version_1" / "config.yaml").is_file()


@pytest.mark.parametrize("sub", ["predict", "test"])
def test_logger_false_writes_over_no_file_of_the_user(run, tmp_path, sub, one_thread):
    """`--trainer.logger false` makes default_root_dir the log folder: the user's recipe given there as --config was
    replaced by the resolved config (its notes gone), and an earlier predictions.csv by the new one."""
    folder = tmp_path / "mine"
    folder.mkdir()
    recipe = Path(DIGITS).read_text() + "# my notes: keep this file\n"
    (folder / "config.yaml").write_text(recipe)
    (folder / "predictions.csv").write_text("my own predictions\n")
    args = [sub, "--config", str(folder / "config.yaml"), "--trainer.default_root_dir", str(folder),
            "--trainer.logger", "false", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
            "--model.model_kwargs", "{widths: [8, 16]}", "--trainer.limit_test_batches", "1",
            "--trainer.limit_predict_batches", "2", "--trainer.enable_progress_bar", "false"]
    assert cli.main(args) == 0
    assert (folder / "config.yaml").read_text() == recipe
    assert (folder / "predictions.csv").read_text() == "my own predictions\n"
    saved = (folder / "config-v1.yaml").read_text()
    assert "my notes" not in saved and "init_args" in saved  # the run's resolved config, beside the user's
    if sub == "predict":
        with open(folder / "predictions-v1.csv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert rows and set(rows[0]) >= {"split_index", "target", "pred"}
        assert cli.main(args) == 0  # a second predict into the folder: the first's file kept too
        assert (folder / "predictions-v2.csv").is_file() and (folder / "config-v2.yaml").is_file()
        with open(folder / "predictions-v1.csv", encoding="utf-8") as f:
            assert list(csv.DictReader(f)) == rows


@pytest.mark.parametrize("option", [["--model.scheduler", "plateau", "--model.min_lr", "1e-5"],
                                    ["--model.weight", "0.5"], ["--trainer.max_epoch", "3"]])
def test_an_abbreviated_option_is_refused_not_taken_as_the_one_it_begins(tmp_path, option, capsys):
    """argparse's prefix matching took --model.min_lr 1e-5 (an absolute floor, to a PyTorch user) as min_lr_factor
    (a fraction of the peak rate), --model.weight as weight_decay, --trainer.max_epoch as max_epochs."""
    with pytest.raises(SystemExit) as e:
        cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), *option, "--print_config"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"unrecognized arguments: {' '.join(option[-2:])}" in err, err[-2000:]
    with pytest.raises(SystemExit):  # without sub-commands too (run=False: one parser)
        cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), *option], run=False)


def test_whole_option_names_still_parse(tmp_path):
    c = cli_main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(tmp_path), "--model.scheduler", "plateau",
                  "--model.min_lr_factor", "0.01", "--trainer.max_epochs", "3"], run=False)
    assert c.model.hparams.min_lr_factor == 0.01 and c.trainer.max_epochs == 3


def _recordings(path: Path) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 1, 48)).astype(np.float32)
    y = (x[:, 0, 10:20].mean(1) > 0).astype(int)
    x[y == 1, 0, 30:34] += 2.0
    np.savez(path, X=x, y=y)
    return path


@pytest.mark.parametrize("budget", [10.0, 1.0])
def test_minirocket_s_sparse_entry_records_the_sparsify_outcome(tmp_path, budget, one_thread):
    """`neuroview minirocket --max-k90` wrote its _sparse entry with the dense ridge's record (penalty, 100% training
    accuracy: another head's figures) and `sparsify: {max_k90}` alone: not whether the budget or the deviance rule were
    met, nor the tolerance, folds, seed, path, or what it was sparsified from."""
    from neuroview.zoo.pretrained import read_manifest

    data, out = _recordings(tmp_path / "my.npz"), tmp_path / "zoo"
    with pytest.warns(UserWarning) if budget == 1.0 else _nothing():  # a k90 of 1 no point meets: warned
        assert cli.main(["minirocket", "--data", str(data), "--num-features", "84", "--max-k90", str(budget),
                         "--out", str(out)]) == 0
    manifest = read_manifest(out)
    dense, sparse = manifest["nv_minirocket.my"], manifest["nv_minirocket.my_sparse"]
    assert "ridge" in dense and "ridge" not in sparse and "sparsify" not in dense
    assert sparse["sparsified_from"] == "nv_minirocket.my"
    record = sparse["sparsify"]
    assert {"tolerance", "deviance", "max_k90", "k90_quantile", "seed", "folds", "groups", "deviance_met", "budget_met",
            "path"} <= set(record)
    assert record["max_k90"] == budget and record["tolerance"] == 1.0 and record["groups"] == "unit"
    chosen = [p for p in record["path"] if p["chosen"]]
    assert len(chosen) == 1
    assert record["budget_met"] == (chosen[0]["k90"] <= budget)  # from the path's own numbers
    if budget == 1.0:
        assert record["budget_met"] is False  # no point of this path reads one contribution a decision: warned


def _nothing():
    import contextlib

    return contextlib.nullcontext()


@pytest.mark.parametrize("argv", [["sparsify", "nv_lite.gunpoint", "--tol", "2"],
                                  ["minirocket", "--data", "UnitTest", "--num", "84"],
                                  ["zoo", "--arch", "x"], ["retrofit", "x.ckpt", "--max", "5"], ["demo", "--epo", "1"],
                                  ["explain", "--model", "m", "--out", "o", "--no-p", "x"]])
def test_the_sub_commands_refuse_abbreviated_options(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert f"unrecognized arguments: {argv[-2]}" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["explain", "sparsify"])
def test_images_given_to_a_model_of_stretched_series_are_refused_naming_data(ten_class_zoo, tmp_path, command, capsys):
    """The model's `resample: true` (and its series length) were carried onto the digits: cut into rows of 8 and refused
    inside DigitsDataModule as "not [C, T] series", with advice to reshape ("x[None]"), neither --data nor the model
    named. Now the check of what the model reads names --data and the samples' shape."""
    argv = (["explain", "--model", "nv_minirocket.ten", "--samples", "4", "--no-progress"] if command == "explain"
            else ["sparsify", "nv_minirocket.ten"])
    capsys.readouterr()
    assert cli.main([*argv, "--zoo", str(ten_class_zoo), "--data", "digits", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "(1, 8, 8)" in err, err[-2000:]
    assert "x[None]" not in err and "[C, T]" not in err
    assert not (tmp_path / "out").exists()


def test_sparsify_help_and_refusals_say_what_zoo_and_source_read(tmp_path, capsys):
    """`sparsify --help` said --zoo reads what `retrofit --out` wrote (one .safetensors file, no manifest); each form of
    the command then failed on a manifest.json that is not there and pointed at `neuroview zoo` (the installed zoo)."""
    with pytest.raises(SystemExit):
        cli.main(["sparsify", "--help"])
    assert "retrofit --out" not in capsys.readouterr().out
    (tmp_path / "rf.safetensors").write_bytes(b"weights")
    assert cli.main(["sparsify", str(tmp_path / "rf.safetensors"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "source: expected a zoo entry name or a `neuroview fit` checkpoint" in err and "retrofit --out" in err
    assert cli.main(["sparsify", "nv_small_cnn.rf", "--zoo", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--zoo: expected a zoo folder" in err and "(no manifest.json in it)" in err
    assert cli.main(["sparsify", "nv_small_cnn.rf", "--zoo", str(tmp_path / "rf.safetensors"), "--out", str(tmp_path / "o")]) == 2
    assert "(a file, not a folder)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_version_and_a_fit_without_a_recipe_say_what_to_type(capsys):
    from neuroview._version import __version__

    assert cli.main(["--version"]) == 0 and capsys.readouterr().out.strip() == f"neuroview {__version__}"
    assert cli.main(["-V"]) == 0
    with pytest.raises(SystemExit) as e:  # it asked for `fit.data`, which is no option
        cli_main(["fit"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "fit.data" not in err and "--data" in err and "--config recipes/<recipe>.yaml" in err


@pytest.mark.parametrize("argv, option", [
    (["--num-features", "0"], "num_features: expected an int >= 84, got 0 (option --num-features)"),
    (["--max-k90", "0"], "(option --max-k90)"),
    (["--k90-quantile", "2"], "in (0, 1], got 2.0 (option --k90-quantile)"),
    (["--max-units-per-class", "0"], "expected None or an int >= 1, got 0 (option --max-units-per-class)"),
    (["--tolerance", "-1"], "tolerance: expected accuracy points >= 0, got -1.0 (option --tolerance)"),
])
def test_refusals_name_the_option_typed(ten_class_zoo, tmp_path, argv, option, capsys):
    """The refusals were the library's alone (`num_features: ...`, `k90_quantile: ...`): names the user never typed."""
    if argv[0] in ("--num-features", "--max-k90"):
        data = ten_class_zoo.parent / "ten.npz"
        command = ["minirocket", "--data", str(data), *(["--num-features", "84"] if argv[0] != "--num-features" else [])]
    else:
        command = ["sparsify", "nv_minirocket.ten", "--zoo", str(ten_class_zoo)]
    capsys.readouterr()
    assert cli.main([*command, *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert option in err, err[-2000:]
    assert not (tmp_path / "out").exists()


# ---- review of the probe (/tmp/rev16/cli/review.md): findings 1, 2 and 4


def _tree(root: Path) -> list[str]:
    """Every file and folder under ``root``, empty folders too (``_files`` sees files only)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_refused_fit_from_the_folder_s_own_last_ckpt_leaves_it_there(run, tmp_path, one_thread, capsys):
    """Finding 1: `--model.init_weights <run>/checkpoints/last.ckpt` (what a refused resume advises) with a network of
    another width, refused in the model's setup: before_fit had already renamed last.ckpt to last-v1.ckpt, and the
    refusal named last-v1.ckpt, a file the user never typed; `--ckpt_path .../last.ckpt` then found nothing."""
    run = _copy(run, tmp_path / "copy")
    own = run / "checkpoints" / "last.ckpt"
    before, tree = _files(run), _tree(run)
    code = cli.main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(run), *QUICK,
                     "--model.init_weights", str(own), "--model.model_kwargs.widths", "[16, 32]"])
    assert code == 2
    err = capsys.readouterr().err
    assert "init_weights" in err and f"'{own}'" in err and "last-v1" not in err, err[-2000:]
    assert _files(run) == before and _tree(run) == tree  # last.ckpt where it was, byte for byte; no logs/version_1


def test_a_refused_resume_leaves_no_log_folder(run, tmp_path, one_thread, capsys):
    """Finding 2: a resume refused once Lightning had begun its logs/version_N (the cosine budget: 1 epoch saved, 2
    asked) left an empty logs/version_1, the newest version, beside the run's own."""
    run = _copy(run, tmp_path / "copy")
    before, tree = _files(run), _tree(run)
    assert "logs/version_0" in tree and "logs/version_1" not in tree
    code = cli.main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(run), *QUICK,
                     "--trainer.max_epochs", "2", "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    assert code == 2
    assert "--trainer.max_epochs/--trainer.max_steps" in capsys.readouterr().err
    assert _files(run) == before and _tree(run) == tree


@pytest.mark.parametrize("there", [False, True])
def test_a_first_fit_refused_in_setup_leaves_only_what_was_there(tmp_path, there, one_thread, capsys):
    """Finding 2: a first fit refused in its setup (a file that is no weights) left an empty logs/ (and the run's folder
    it had made); what was there before (an empty logs/, a file of the user's) stays."""
    bad = tmp_path / "w.ckpt"
    bad.write_bytes(b"not a checkpoint")
    root = tmp_path / "runs" / "mine"
    if there:
        (root / "logs").mkdir(parents=True)
        (root / "notes.txt").write_text("mine\n")
    code = cli.main(["fit", "--config", DIGITS, "--trainer.default_root_dir", str(root), *QUICK,
                     "--model.init_weights", str(bad)])
    assert code == 2
    assert str(bad) in capsys.readouterr().err
    if there:
        assert _tree(root) == ["logs", "notes.txt"] and (root / "notes.txt").read_text() == "mine\n"
    else:
        assert not (tmp_path / "runs").exists()  # neither runs/ nor runs/mine/logs/version_0, made by the refused fit


@pytest.mark.parametrize("name, exists", [("w.pt", True), ("w.pth", False), ("W.SAFETENSORS", True), ("w.PT", False),
                                          ("model.bin", True)])
def test_sparsify_refuses_any_weight_file_by_name_whatever_its_suffix_case(tmp_path, name, exists, capsys):
    """Finding 4: only a lower-case .safetensors was refused as a weight file; w.pt (a torch.save'd state dict, which
    retrofit and explain --weights take) and W.SAFETENSORS were looked up in the installed zoo's manifest."""
    source = tmp_path / name
    if exists:
        source.write_bytes(b"weights")
    assert cli.main(["sparsify", str(source), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"source: expected a zoo entry name or a `neuroview fit` checkpoint (.ckpt), got '{source}'" in err, err[-2000:]
    assert "manifest" not in err and "neuroview zoo" not in err
    assert not (tmp_path / "o").exists()


def test_sparsify_reads_a_ckpt_whatever_its_suffix_case(tmp_path, capsys):
    assert cli.main(["sparsify", str(tmp_path / "RUN.CKPT"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"source: no such checkpoint '{tmp_path / 'RUN.CKPT'}'" in err and "manifest" not in err, err[-2000:]
