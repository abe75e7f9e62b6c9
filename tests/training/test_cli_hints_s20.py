"""Refusals of a new user's own model and files that named no fix (probe P9: F3, F4, F6).

- ``neuroview test --config <recipe> --ckpt_path <a run on the user's own file>`` read the recipe's set, and the
  class-order refusal named neither that set nor the file the checkpoint was trained on, nor the options to pass;
  without ``--config``, ``--data`` was "required" with advice to pass a recipe.
- A checkpoint of the user's own architecture (``nv.register_model``) got "unknown model ...; did you mean
  ['nv_rnn', ...]", unrelated zoo names, where the cause is that the command never imported the user's code.
- The recipe plus ``--data.init_args.path`` without ``--data neuroview.data.NpzDataModule`` got jsonargparse's
  union dump (11 lines), not the missing option.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn

import neuroview as nv
from neuroview.cli import main as cli
from neuroview.data import NpzDataModule
from neuroview.training.module import NeuroViewModule
from neuroview.zoo import registry

ROOT = Path(__file__).resolve().parents[2]
UCR = str(ROOT / "recipes" / "ucr_nv_cnn.yaml")
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--torch_threads", "1"]


def _file(folder: Path) -> Path:
    """30 series of 3 named classes, told apart by their frequency: ``high``, ``low``, ``mid``."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 40)
    y = np.repeat(np.array(["low", "mid", "high"]), 10)
    x = np.stack([np.sin(2 * np.pi * {"low": 2, "mid": 5, "high": 9}[c] * t + rng.uniform(0, 6)) for c in y])
    np.savez(folder / "my.npz", X=x[:, None].astype(np.float32), y=y)
    return folder / "my.npz"


@pytest.fixture(scope="module")
def own_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own")
    path = _file(folder)
    root = folder / "runs"
    assert cli(["fit", "--config", UCR, "--data", "neuroview.data.NpzDataModule", "--data.init_args.path", str(path),
                "--trainer.max_epochs", "1", "--model.model_kwargs.members", "1", "--trainer.default_root_dir", str(root),
                "--trainer.logger", "false", "--test_after_fit", "false", *QUIET]) == 0
    return path, root / "checkpoints" / "last.ckpt"


def test_a_recipe_s_other_data_is_named_with_the_checkpoint_s_own_and_its_options(own_run, tmp_path, capsys):
    path, ckpt = own_run
    assert cli(["test", "--config", UCR, "--ckpt_path", str(ckpt), "--trainer.logger", "false",
                "--trainer.default_root_dir", str(tmp_path), *QUIET]) == 2
    err = capsys.readouterr().err
    assert "its classes, in order, are ['1', '2']; the model's outputs are ['high', 'low', 'mid']" in err
    assert (f"(read: UCRDataModule name='GunPoint', the --config's data; {ckpt} was trained on NpzDataModule "
            f"path='{path}': pass --data neuroview.data.NpzDataModule --data.init_args.path {path} to score it on that "
            f"data)") in err
    # the options given, as said: the checkpoint's own file is read as it was carved, and scored
    assert cli(["test", "--config", UCR, "--ckpt_path", str(ckpt), "--data", "neuroview.data.NpzDataModule",
                "--data.init_args.path", str(path), "--trainer.logger", "false", "--trainer.default_root_dir",
                str(tmp_path), *QUIET]) == 0


def test_a_missing_data_names_the_checkpoint_s_own_as_a_spec_that_runs(own_run, tmp_path, capsys):
    path, ckpt = own_run
    with pytest.raises(SystemExit) as e:
        cli(["test", "--ckpt_path", str(ckpt), "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"required: --data (the data to score; {ckpt} was trained on NpzDataModule: pass --data '" in err
    spec = json.loads(err.split("pass --data '", 1)[1].split("'", 1)[0])
    assert spec["class_path"] == "neuroview.data.NpzDataModule" and spec["init_args"]["path"] == str(path)
    assert cli(["test", "--ckpt_path", str(ckpt), "--data", json.dumps(spec), "--trainer.logger", "false",
                "--trainer.default_root_dir", str(tmp_path), *QUIET]) == 0


def test_a_file_path_after_a_recipe_of_a_named_set_says_to_name_the_file_s_data_module(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli(["fit", "--config", UCR, "--data.init_args.path", str(tmp_path / "my.npz"), "--trainer.max_epochs", "1"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == (
        "neuroview fit: error: data: UCRDataModule (the data module the --config names) takes no option 'path' "
        "(--data.init_args.path); for a file of your own, name its data module before --data.init_args.path: --data "
        "neuroview.data.NpzDataModule (an .npz of X, y) or --data neuroview.data.CsvDataModule (a .csv, .tsv or .txt)")
    assert "Union subtypes" not in err and len(err.splitlines()) == 2


class _Own(nn.Module):
    def __init__(self, k: int):
        super().__init__()
        self.conv, self.act, self.fc = nn.Conv1d(1, 4, 3, padding=1), nn.ReLU(), nn.Linear(4, k)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).mean(-1))


def s20_own_cnn(*, num_classes, in_channels=1, **kw):
    return nv.wrap(_Own(num_classes), num_classes=num_classes)


def test_a_checkpoint_of_an_architecture_of_one_s_own_says_it_is_not_registered_here(tmp_path, capsys, monkeypatch):
    registry._MODELS.pop("s20_own_cnn", None)
    nv.register_model(s20_own_cnn)
    try:
        path = _file(tmp_path)
        trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                             default_root_dir=str(tmp_path), accelerator="cpu", num_sanity_val_steps=0)
        trainer.fit(NeuroViewModule(arch="s20_own_cnn", num_classes=3), NpzDataModule(path=str(path), batch_size=8))
        ckpt = tmp_path / "own.ckpt"
        trainer.save_checkpoint(ckpt)
        registry._MODELS.pop("s20_own_cnn")  # a command's process: the user's code that registers it not imported
        monkeypatch.setattr("sys.argv", ["neuroview", "explain", "--ckpt", str(ckpt)])  # the command as run
        assert cli(["explain", "--ckpt", str(ckpt), "--out", str(tmp_path / "rep"), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert ("arch: unknown model 's20_own_cnn': no architecture of that name is registered in this process; "
                "none of neuroview's own (neuroview.list_models()) is near it; one of your own, registered with "
                "nv.register_model") in err
        assert "did you mean" not in err and "python -c" not in err and " load_module" not in err
        assert ("a script file my_cli.py holding `import my_models; from neuroview.cli import main; raise "
                "SystemExit(main())`, run as `python my_cli.py explain ...` in place of `neuroview explain ...`") in err
        nv.register_model(s20_own_cnn)  # as importing the user's module does: the checkpoint reads
        assert cli(["explain", "--ckpt", str(ckpt), "--out", str(tmp_path / "rep"), "--no-progress", "--no-gallery",
                    "--samples", "4"]) == 0
        assert torch.load(ckpt, weights_only=True)["hyper_parameters"]["arch"] == "s20_own_cnn"
    finally:
        registry._MODELS.pop("s20_own_cnn", None)


@pytest.mark.parametrize("typo, meant", [("nv_smal_cnn", "nv_small_cnn"), ("nv_vit", "nv_vit_tiny"),
                                         ("nv_vgg", "nv_vgg_cnn"), ("nv_resnet18", "nv_resnet18_cifar")])
def test_a_typo_of_a_zoo_name_typed_as_arch_keeps_its_suggestion(typo, meant):
    """Review R7 finding 3: a cutoff of 0.8 left ``nv_vit``, ``nv_vgg`` (shortened zoo names) with no hint, and
    ``nv_resnet18`` without ``nv_resnet18_cifar``, but a paragraph on registering one's own code."""
    with pytest.raises(ValueError) as e:
        NeuroViewModule(arch=typo, num_classes=3)
    said = str(e.value)
    head = f"arch: unknown model {typo!r}: no architecture of that name is registered in this process; did you mean ["
    assert said.startswith(head) and f"'{meant}'" in said.split("?")[0]
    assert "neuroview.list_models()) is near it" not in said
    assert "? If not a typo: one of your own" in said and "python my_cli.py" in said  # a typo, or one's own: both said


def test_an_own_architecture_named_near_a_zoo_name_still_gets_the_import_advice():
    """Review R12: at difflib's cutoff nearly every `nv_` name (the README's own `nv_mycnn`) is near a zoo name, and
    the near names alone left out how to import one's own code."""
    with pytest.raises(ValueError) as e:
        NeuroViewModule(arch="nv_mycnn", num_classes=3)
    said = str(e.value)
    assert "did you mean [" in said and "nv.register_model" in said
    assert "a script file my_cli.py holding `import my_models; from neuroview.cli import main" in said


_MY_MODELS = """
from torch import nn
import neuroview as nv


class _Own(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.conv, self.act, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Linear(4, k)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).mean((-2, -1)))


@nv.register_model
def s20_ddp_cnn(*, num_classes, in_channels=1, **kw):
    return nv.wrap(_Own(num_classes), num_classes=num_classes)
"""


def test_the_advised_script_file_runs_one_s_own_architecture_in_a_ddp_fit(tmp_path, monkeypatch):
    """Review R7 finding 4: the advised ``python -c "import my_models, ...; main()"`` broke every DDP fit: Lightning
    starts each other rank by running ``sys.argv[0]`` again, there ``-c``. The script file the refusal now advises, as
    it says it, runs a 2-process DDP fit of an architecture only that file's import registers."""
    from neuroview.zoo.build import builder

    monkeypatch.setattr("sys.argv", ["neuroview", "fit"])
    with pytest.raises(ValueError) as e:
        builder("s20_ddp_cnn", "arch")
    said = str(e.value)
    assert "a script file my_cli.py holding `" in said and "run as `python my_cli.py fit ...`" in said, said
    script = said.split("a script file my_cli.py holding `", 1)[1].split("`", 1)[0]
    (tmp_path / "my_models.py").write_text(_MY_MODELS)
    (tmp_path / "my_cli.py").write_text(script + "\n")
    digits = str(ROOT / "recipes" / "digits_nv_small_cnn.yaml")
    args = ["fit", "--config", digits, "--model.arch", "s20_ddp_cnn", "--model.model_kwargs", "{}",
            "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--test_after_fit", "false",
            "--trainer.num_sanity_val_steps", "0", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
            "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("NEUROVIEW_KEPT_INIT_WEIGHTS", None)
    proc = subprocess.run([sys.executable, "my_cli.py", *args], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["hyper_parameters"]["arch"] == "s20_ddp_cnn"


def test_the_note_s_options_of_a_run_on_a_train_test_pair_name_its_test_file_and_run_as_printed(tmp_path, capsys):
    """Review R7 finding 2: a run on a UCR-style TRAIN/TEST pair (CsvDataModule path + test_path) got the advice
    ``--data.init_args.path mine_TRAIN.tsv`` alone, which `neuroview test` refused (its test split would be carved
    from the training file). The options the note prints now run, as printed, and score the run's TEST file."""
    import shlex

    rng, t = np.random.default_rng(0), np.linspace(0, 1, 40)
    for name, n in (("mine_TRAIN.tsv", 10), ("mine_TEST.tsv", 7)):
        rows = [[c, *np.sin(2 * np.pi * f * t + rng.uniform(0, 6))] for c, f in ((1, 2), (2, 5), (3, 9)) for _ in range(n)]
        (tmp_path / name).write_text("".join("\t".join(str(v) for v in r) + "\n" for r in rows))
    train, test = tmp_path / "mine_TRAIN.tsv", tmp_path / "mine_TEST.tsv"
    assert cli(["fit", "--config", UCR, "--data", "neuroview.data.CsvDataModule", "--data.init_args.path", str(train),
                "--data.init_args.test_path", str(test), "--model.model_kwargs.members", "1", "--trainer.max_epochs", "1",
                "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false",
                "--test_after_fit", "false", *QUIET]) == 0
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    capsys.readouterr()
    assert cli(["test", "--config", UCR, "--ckpt_path", str(ckpt), "--trainer.logger", "false",
                "--trainer.default_root_dir", str(tmp_path / "t1"), *QUIET]) == 2
    err = capsys.readouterr().err
    assert f"was trained on CsvDataModule path='{train}', test_path='{test}'" in err
    printed = err.split(": pass ", 1)[1].split(" to score it on that data)", 1)[0]
    assert printed == (f"--data neuroview.data.CsvDataModule --data.init_args.path {train} "
                       f"--data.init_args.test_path {test}")
    assert cli(["test", "--config", UCR, "--ckpt_path", str(ckpt), *shlex.split(printed), "--trainer.logger", "false",
                "--trainer.default_root_dir", str(tmp_path / "t2"), *QUIET]) == 0, capsys.readouterr().err[-2000:]


def test_the_trained_on_note_reads_the_checkpoint_only_when_it_is_said(own_run, monkeypatch):
    """Review R7 finding 6: every `test`/`validate`/`predict --ckpt_path` read the whole checkpoint once more (its
    optimizer state too) for a note said only when the classes are refused."""
    from neuroview.data import read_as

    path, ckpt = own_run
    loads = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda f, *a, **k: loads.append(str(f)) or real(f, *a, **k))
    dm = pl.LightningDataModule()
    read_as.note_trained_on(dm, str(ckpt), ["test", "--config", UCR, "--ckpt_path", str(ckpt)])
    assert loads == []  # recorded, not read
    dm.class_names = ["1", "2"]
    with pytest.raises(ValueError, match=rf"{ckpt} was trained on NpzDataModule path='{path}': pass --data "):
        read_as.check_classes(dm, ["high", "low", "mid"], "data")
    assert loads == [str(ckpt)]  # read once, for the refusal said
