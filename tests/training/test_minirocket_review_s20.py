"""Review R4 of a0c9b46: the JSON --data advice of `neuroview minirocket`/`sparsify` built from the file and the
command's own reading options (a file named "compass readings.csv" gave "header": "False"), a typo in --max-k90
refused before the dense fit, --folds without --max-k90 refused, nv.minirocket's layout rule for a user's own data
module (channels-last read as T channels) and layout='channels_last', a float64 value beyond float32 named by its
sample, and `neuroview sparsify run.ckpt` holding the run's training file to the checkpoint's record."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

import neuroview as nv
from neuroview.cli import main as cli
from neuroview.training.cli_hints import file_options_hint
from neuroview.zoo.pretrained import read_manifest

ROOT = Path(__file__).resolve().parents[2]


def _headed_csv(path: Path, n: int = 30, steps: int = 20) -> Path:
    rng = np.random.default_rng(0)
    lines = ["label," + ",".join(str(i) for i in range(steps))]  # pandas' to_csv header
    lines += [f"{i % 2}," + ",".join(f"{v:.4f}" for v in rng.standard_normal(steps) + (i % 2)) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _spec_after(err: str, head: str) -> dict:
    """The JSON spec printed after ``head`` ... ``--data ``, read as a shell reads it."""
    assert head in err, err
    word = err.split(head, 1)[1].split("--data ", 1)[1].splitlines()[0].rstrip().removesuffix(")")  # the hint's ")"
    return json.loads(shlex.split(word)[0])


# ---- finding 1: the option the message advises, not the first key= in it (nor one in the file's name)


def test_the_hint_reads_the_advised_option_not_the_file_name_nor_the_first_one():
    said = ("header: row 1 of compass readings.csv reads label, 0, 1, ...: the header pandas writes (to_csv without "
            "header=False), not a series; pass header=true (--data.init_args.header true) to skip it")
    hint = file_options_hint("explain", "/d/compass readings.csv", said)
    spec = json.loads(shlex.split(hint.split("--data ", 1)[1].removesuffix(")"))[0])
    assert spec == {"class_path": "neuroview.data.CsvDataModule",
                    "init_args": {"path": "/d/compass readings.csv", "header": True}}  # was "header": "False"
    said = ("header: label_column='label' names a column of the header, but header=false says x.csv has none; pass "
            "header=true (or \"auto\"), or the label's column index")
    assert '"header": true' in file_options_hint("explain", "x.csv", said)  # was "label_column": "label"
    # a name holding the advice's words is no advice: "pass delimiter=';'" of the message, not of the name
    said = "path: row 1 of pass header=false.csv, column 2: ...; pass delimiter=';' (and write decimals with points)"
    assert '"delimiter": ";"' in file_options_hint("explain", "pass header=false.csv", said)


def test_a_csv_named_compass_gets_advice_that_runs_as_printed(tmp_path, capsys):
    folder = tmp_path / "my data's \"dir\""
    folder.mkdir()
    csv, out = _headed_csv(folder / "compass readings.csv"), tmp_path / "zoo"
    assert cli(["minirocket", "--data", str(csv), "--num-features", "84", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pass header=true" in err
    assert "(--data.init_args.header true)" not in err  # finding 9: the option these commands refuse, not advised
    spec = _spec_after(err, "takes a file's options in a JSON data-module spec")
    assert spec["init_args"] == {"path": str(csv), "val_fraction": 0.0, "normalize": "sample", "resample": True,
                                 "header": True}
    assert cli(["minirocket", "--data", json.dumps(spec), "--num-features", "84", "--out", str(out)]) == 0
    assert read_manifest(out)["nv_minirocket.data"]["arch_kwargs"]["max_len"] == 20  # 20 steps: the header skipped


# ---- finding 4: the refusal of --data.init_args.* gives the command's own spec of the file, with what was typed


def test_a_typed_data_option_is_answered_with_the_spec_the_command_reads_the_file_by(tmp_path, capsys):
    csv, out = _headed_csv(tmp_path / "hdr.csv"), tmp_path / "zoo"
    with pytest.raises(SystemExit):
        cli(["minirocket", "--data", str(csv), "--data.init_args.header", "true", "--num-features", "84",
             "--out", str(out)])
    err = capsys.readouterr().err
    assert "--data.init_args.header: `neuroview minirocket` takes no --data.* options" in err
    spec = _spec_after(err, "takes no --data.* options")
    # was a fixed NpzDataModule example with layout, and without the reading options (10% of the split dropped)
    assert spec == {"class_path": "neuroview.data.CsvDataModule",
                    "init_args": {"path": str(csv), "val_fraction": 0.0, "normalize": "sample", "resample": True,
                                  "header": True}}
    assert cli(["minirocket", "--data", json.dumps(spec), "--num-features", "84", "--out", str(out)]) == 0
    with pytest.raises(SystemExit):
        cli(["minirocket", "--data", str(csv), "--normalize", "none", "--data.init_args.header=true", "--out", str(out)])
    assert _spec_after(capsys.readouterr().err, "takes no --data.* options")["init_args"]["normalize"] is False


# ---- findings 2, 3 and 9: the options checked before the work; --folds only with --max-k90


def _tiny(path: Path) -> Path:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((10, 1, 20)).astype(np.float32)
    y = np.array([0, 1] * 5)
    x[y == 1, 0, 5:10] += 2
    np.savez(path, X=x[:6], y=y[:6], X_test=x[6:], y_test=y[6:])  # 6 training series, 3 a class
    return path


@pytest.mark.parametrize("budget", ["-1", "0"])
def test_a_typo_in_max_k90_is_refused_before_the_dense_fit(tmp_path, capsys, budget):
    data, out = _tiny(tmp_path / "tiny.npz"), tmp_path / "zoo"
    assert cli(["minirocket", "--data", str(data), "--num-features", "84", "--max-k90", budget, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"max_k90: expected None or a number of contributions per decision >= 1, got {float(budget)} " \
           "(option --max-k90)" in err
    assert "test accuracy" not in capsys.readouterr().out and not out.exists()  # no fit, nothing written


def test_the_folds_advice_runs_as_printed(tmp_path, capsys):
    data, out = _tiny(tmp_path / "tiny.npz"), tmp_path / "zoo"
    run = ["minirocket", "--data", str(data), "--num-features", "84", "--max-k90", "5", "--out", str(out)]
    assert cli(run) == 2
    err = capsys.readouterr().err
    folds = err.split("pass --folds ", 1)[1].split(" ", 1)[0]
    assert folds == "3"  # 6 series: at most 6 // 2 folds
    extra = ["--overwrite"] if "needs --overwrite" in err else []
    assert extra  # the dense entry is in --out: the message says what the rerun needs
    assert cli([*run, "--folds", folds, *extra]) == 0
    assert read_manifest(out)["nv_minirocket.tiny_sparse"]["sparsify"]["folds"] == 3


def test_folds_without_max_k90_is_refused_by_name(tmp_path, capsys):
    data, out = _tiny(tmp_path / "tiny.npz"), tmp_path / "zoo"
    with pytest.raises(SystemExit):  # was rc 0, --folds ignored
        cli(["minirocket", "--data", str(data), "--num-features", "84", "--folds", "1000", "--out", str(out)])
    assert "--folds: the folds the sparse variant of --max-k90 is chosen by, got --folds 1000 without --max-k90" \
           in capsys.readouterr().err
    assert not out.exists()


# ---- findings 5 and 6: the layout rule for every loader but neuroview's own; layout='channels_last' transposes


def _channels_last(n: int = 60, steps: int = 100, channels: int = 3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, channels, steps, generator=g)
    y = torch.tensor([0, 1] * (n // 2))
    x[y == 1, 0, 20:40] += 1.5
    return x, x.transpose(1, 2).contiguous(), y


class _OwnDM(pl.LightningDataModule):  # a user's own data module: no layout rule of its own
    num_classes = 2

    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=16)


def test_a_user_s_own_data_module_meets_the_layout_rule_and_channels_last_transposes():
    first, last, y = _channels_last()
    with pytest.raises(ValueError, match=r"^train: expected series \[B, C, T\] \(channels first\), got series of shape "
                                         r"\[100, 3\]: 100 channels of 3 steps"):  # was read as 100 channels (9+ steps)
        nv.minirocket(_OwnDM(last, y), num_features=84)
    net = nv.minirocket(_OwnDM(last, y), num_features=84, layout="channels_last")
    ref = nv.minirocket(DataLoader(TensorDataset(first, y), batch_size=16), num_features=84)
    assert (net.backbone.in_channels, net.backbone.input_length) == (3, 100)
    for a, b in zip(net.state_dict().values(), ref.state_dict().values()):  # the same fit as the series given [B, C, T]
        assert torch.equal(a, b)


def test_a_neuroview_data_module_s_loader_keeps_its_stated_layout(tmp_path):
    from neuroview.data import NpzDataModule

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, 24, 20, generator=g), torch.tensor([0, 1] * 20)  # 24 channels of 20 steps, said so
    np.savez(tmp_path / "wide.npz", X=x.numpy(), y=y.numpy())
    dm = NpzDataModule(str(tmp_path / "wide.npz"), val_fraction=0, layout="channels_first")
    dm.setup("fit")
    net = nv.minirocket(dm.train_dataloader(), num_features=84)  # was refused again
    assert (net.backbone.in_channels, net.backbone.input_length) == (24, 20)
    with pytest.raises(ValueError, match=r"^layout: NpzDataModule serves series channels first \[B, C, T\] already"):
        nv.minirocket(dm, num_features=84, layout="channels_last")  # its steps would be read as channels


def test_as_many_channels_as_steps_says_neither_layout_is_told():
    x, y = torch.randn(20, 9, 9), torch.tensor([0, 1] * 10)
    with pytest.raises(ValueError, match=r"9 channels of 9 steps, as many channels as steps, which tells neither layout"):
        nv.minirocket([(x, y)], num_features=84)


# ---- finding 7: a float64 value beyond float32


def test_a_float64_value_beyond_float32_is_named_as_its_sample_s_overflow():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 30, dtype=torch.float64, generator=g), torch.tensor([0, 1] * 32)
    x[37, 0, 5] = 1e39  # finite in float64, inf in float32
    loader = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    said = r"^train: sample 37 \(batch 2, counted from 0 in the order read\) overflows float32"
    with pytest.raises(ValueError, match=said):  # was "x: MiniRocket expected finite series, got NaN or inf"
        nv.minirocket(loader, num_features=84)
    net = nv.minirocket([(x[:8].float(), y[:8])], num_features=84)
    with pytest.raises(ValueError, match=said):
        nv.fit_minirocket(net, loader)


# ---- F9: `neuroview sparsify run.ckpt` holds the run's training file to the checkpoint's record


def test_sparsify_of_a_checkpoint_refuses_its_training_file_changed_since(tmp_path, monkeypatch, capsys):
    from neuroview.training.cli import cli_main

    rng = np.random.default_rng(0)
    y = np.arange(30) % 3
    x = rng.normal(size=(30, 1, 20)).astype(np.float32)
    x[y == 1, :, 4:10] += 2.0
    x[y == 2, :, 10:16] -= 2.0
    np.savez(tmp_path / "train.npz", X=x, y=y)
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    cli_main(["fit", "--config", str(ROOT / "recipes" / "ucr_nv_cnn.yaml"), "--data", "neuroview.data.NpzDataModule",
              "--data.init_args.path", str(tmp_path / "train.npz"), "--data.init_args.val_fraction", "0.2",
              "--model.model_kwargs.members", "1", "--trainer.default_root_dir", str(tmp_path / "run"),
              "--trainer.max_steps", "2", "--test_after_fit", "false", "--trainer.enable_progress_bar", "false",
              "--trainer.enable_model_summary", "false"])
    ckpt = str(tmp_path / "run" / "checkpoints" / "last.ckpt")
    order = np.random.default_rng(1).permutation(30)
    np.savez(tmp_path / "train.npz", X=x[order], y=y[order])  # the same series, other rows: carved otherwise
    capsys.readouterr()
    assert cli(["sparsify", ckpt, "--out", str(tmp_path / "sp")]) == 2
    err = capsys.readouterr().err
    assert f"path: {tmp_path / 'train.npz'} is the file the checkpoint {ckpt} was trained on, but its " in err
    assert "changed since" in err  # (the data module's own words, file_record.py's)
    assert not (tmp_path / "sp").exists()
