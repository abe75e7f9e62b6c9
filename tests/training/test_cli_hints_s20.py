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


def test_a_checkpoint_of_an_architecture_of_one_s_own_says_it_is_not_registered_here(tmp_path, capsys):
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
        assert cli(["explain", "--ckpt", str(ckpt), "--out", str(tmp_path / "rep"), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert ("arch: unknown model 's20_own_cnn': no architecture of that name is registered in this process; "
                "neuroview's own are neuroview.list_models(). One of your own, registered with nv.register_model") in err
        assert "did you mean" not in err and "from neuroview.cli import main; sys.exit(main())" in err
        with pytest.raises(ValueError, match=r"arch: unknown model 'nv_smal_cnn': .*\(a typo of \['nv_small_cnn'"):
            NeuroViewModule(arch="nv_smal_cnn", num_classes=3)  # a near name typed is still named
        nv.register_model(s20_own_cnn)  # as importing the user's module does: the checkpoint reads
        assert cli(["explain", "--ckpt", str(ckpt), "--out", str(tmp_path / "rep"), "--no-progress", "--no-gallery",
                    "--samples", "4"]) == 0
        assert torch.load(ckpt, weights_only=True)["hyper_parameters"]["arch"] == "s20_own_cnn"
    finally:
        registry._MODELS.pop("s20_own_cnn", None)
