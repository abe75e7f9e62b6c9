"""nv.minirocket on channels-last loaders and on a NaN in its training loader; `neuroview minirocket` and
`neuroview sparsify` advising options they take: a file's options as the JSON --data spec (which then works), and
--folds for a training split too small for 5 folds, the dense MiniRocket written even so."""

from __future__ import annotations

import shlex

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import neuroview as nv
from neuroview.cli import main as cli
from neuroview.training.cli_hints import folds_advice
from neuroview.zoo.pretrained import read_manifest


def _loader(x, y, batch_size=20):
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


def _series(channels=12, steps=100, n=60):
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([0, 1, 2] * (n // 3))
    x = torch.randn(n, channels, steps, generator=g)
    x[y == 1, 0, 20:40] += 1.5
    x[y == 2, channels - 1, 60:80] -= 1.5
    return x, y


@pytest.mark.parametrize("channels", [12, 3])
def test_minirocket_refuses_channels_last_series_by_layout(channels):
    x, y = _series(channels)
    last = x.transpose(1, 2).contiguous()  # [60, 100, C]: read as 100 channels of C steps
    with pytest.raises(ValueError) as e:
        nv.minirocket(_loader(last, y), num_features=84)
    said = str(e.value)
    assert said.startswith(f"train: expected series [B, C, T] (channels first), got series of shape [100, {channels}]")
    assert "layout='channels_last'" in said and "layout='channels_first'" in said
    assert "at least 9 steps" not in said  # 3 "steps" were told to be stretched to 9: the fix is the transpose


def test_minirocket_reads_channels_first_and_the_override():
    x, y = _series(12)
    assert nv.minirocket(_loader(x, y), num_features=84).backbone.in_channels == 12
    wide = torch.randn(30, 12, 10)  # 12 channels of 10 steps, said so
    net = nv.minirocket(_loader(wide, torch.tensor([0, 1] * 15)), num_features=84, layout="channels_first")
    assert (net.backbone.in_channels, net.backbone.input_length) == (12, 10)
    with pytest.raises(ValueError, match=r"^layout: expected 'auto', 'channels_first' or 'channels_last', got 'last'$"):
        nv.minirocket(_loader(x, y), num_features=84, layout="last")


def test_minirocket_names_the_nan_sample_of_its_training_loader():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 30, generator=g), torch.tensor([0, 1] * 32)
    x[37, 0, 11] = float("nan")
    said = "train: sample 37 (batch 2, counted from 0 in the order read) contains NaN or Inf"
    with pytest.raises(ValueError, match=r"^" + said.replace("(", r"\(").replace(")", r"\)")):
        nv.minirocket(_loader(x, y, 16), num_features=84)
    net = nv.minirocket(_loader(torch.nan_to_num(x), y, 16), num_features=84)
    with pytest.raises(ValueError, match=r"^train: sample 37 \(batch 2"):
        nv.fit_minirocket(net, _loader(x, y, 16))


def _advised_spec(err: str, command: str) -> str:
    """The JSON --data spec the error advises: the shell word after ``--data``."""
    head = f"(`neuroview {command}` takes a file's options in a JSON data-module spec: --data "
    assert head in err, err
    return shlex.split(err.split(head, 1)[1].rstrip().removesuffix(")"))[0]


def _keras(path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 40, 3)).astype(np.float32)  # Keras' [N, T, C]
    y = np.repeat([0, 1, 2], 10)
    x[y == 1, 10:20, 0] += 2
    x[y == 2, 20:30, 1] += 2
    np.savez(path, X=x, y=y)
    return path


def _headed_csv(path, n=30, steps=20):
    rng = np.random.default_rng(0)
    lines = ["label," + ",".join(str(i) for i in range(steps))]  # pandas' to_csv header
    lines += [f"{i % 2}," + ",".join(f"{v:.4f}" for v in rng.standard_normal(steps) + (i % 2)) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_minirocket_command_advises_the_json_spec_that_works(tmp_path, capsys):
    data, out = _keras(tmp_path / "keras.npz"), tmp_path / "zoo"
    assert cli(["minirocket", "--data", str(data), "--num-features", "84", "--out", str(out)]) == 2
    spec = _advised_spec(capsys.readouterr().err, "minirocket")
    assert '"layout": "channels_last"' in spec and '"normalize": "sample"' in spec and '"val_fraction": 0.0' in spec
    assert cli(["minirocket", "--data", spec, "--num-features", "84", "--out", str(out)]) == 0
    kwargs = read_manifest(out)["nv_minirocket.data"]["arch_kwargs"]
    assert (kwargs["in_channels"], kwargs["max_len"]) == (3, 40)
    with pytest.raises(SystemExit):  # the data module's own wording, as fit takes it: told how this command takes it
        cli(["minirocket", "--data", str(data), "--out", str(out), "--data.init_args.layout", "channels_last"])
    assert "--data.init_args.layout: `neuroview minirocket` takes no --data.* options" in capsys.readouterr().err


def test_headed_csv_advice_works_in_minirocket_and_sparsify(tmp_path, capsys):
    csv, out = _headed_csv(tmp_path / "hdr.csv"), tmp_path / "zoo"
    assert cli(["minirocket", "--data", str(csv), "--num-features", "84", "--out", str(out)]) == 2
    spec = _advised_spec(capsys.readouterr().err, "minirocket")
    assert '"header": true' in spec
    assert cli(["minirocket", "--data", spec, "--num-features", "84", "--out", str(out), "--tag", "hdr"]) == 0
    rng = np.random.default_rng(2)  # a source trained on an .npz of the same series length: the CSV's header unknown
    x, y = rng.standard_normal((30, 1, 20)).astype(np.float32), np.arange(30) % 2
    np.savez(tmp_path / "src.npz", X=x + y[:, None, None], y=y)
    assert cli(["minirocket", "--data", str(tmp_path / "src.npz"), "--num-features", "84", "--out", str(out)]) == 0
    capsys.readouterr()
    sparse = ["sparsify", "nv_minirocket.src", "--zoo", str(out), "--out", str(tmp_path / "sp"), "--folds", "3"]
    assert cli([*sparse, "--data", str(csv)]) == 2
    spec = _advised_spec(capsys.readouterr().err, "sparsify")
    assert '"header": true' in spec and '"read_like"' in spec  # read as the source's data was, as the path would be
    assert cli([*sparse, "--data", spec]) == 0


def _tiny(path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((10, 2, 20)).astype(np.float32)
    y = np.array(["a", "b"] * 5)
    x[y == "b", 0, 5:10] += 2
    np.savez(path, X=x[:6], y=y[:6], X_test=x[6:], y_test=y[6:])  # 6 training series, 3 a class
    return path


def test_small_split_is_advised_folds_and_keeps_the_dense_entry(tmp_path, capsys):
    data, out = _tiny(tmp_path / "tiny.npz"), tmp_path / "zoo"
    run = ["minirocket", "--data", str(data), "--num-features", "84", "--max-k90", "5", "--out", str(out)]
    assert cli(run) == 2
    err = capsys.readouterr().err
    assert "train: 6 samples ([3, 3] per class) are too few to carve 5-fold validation" in err
    assert "for --max-k90; pass --folds 3 or fewer (at least 2)" in err and "val=" not in err
    assert f"The dense entry nv_minirocket.tiny was written to {out}; its sparse variant was not" in err
    assert "a rerun into that --out needs --overwrite too" in err  # the advice alone was refused: the entry was there
    assert set(read_manifest(out)) == {"nv_minirocket.tiny"}
    assert nv.create_model("nv_minirocket.tiny", pretrained=True, root=out).num_units == 84
    assert cli([*run, "--folds", "3"]) == 2  # the folds alone: refused, as the message said (the dense entry is there)
    assert "already holds nv_minirocket.tiny" in capsys.readouterr().err
    assert cli([*run, "--folds", "3", "--overwrite"]) == 0  # the advice, followed
    manifest = read_manifest(out)
    assert manifest["nv_minirocket.tiny_sparse"]["sparsify"]["folds"] == 3
    dense = manifest["nv_minirocket.tiny"]["sha256"]
    capsys.readouterr()
    assert cli([*run, "--overwrite"]) == 2  # a new dense entry would sit beside the earlier run's sparse one
    assert "Nothing was written" in capsys.readouterr().err
    assert read_manifest(out)["nv_minirocket.tiny"]["sha256"] == dense
    sparse = ["sparsify", "nv_minirocket.tiny", "--zoo", str(out), "--max-k90", "5", "--out", str(tmp_path / "sp")]
    assert cli(sparse) == 2
    err = capsys.readouterr().err
    assert err.rstrip().endswith("(at least 2 per class and 2 per fold); pass --folds 3 or fewer (at least 2)")
    assert cli([*sparse, "--folds", "3"]) == 0
    with pytest.raises(SystemExit):
        cli([*sparse, "--folds", "1"])
    assert "--folds: expected an int >= 2, got 1" in capsys.readouterr().err


def test_folds_advice_where_no_number_of_folds_can():
    said = ("train: 5 samples ([4, 1] per class) are too few to carve 5-fold validation from (at least 2 per class and "
            "2 per fold); pass val= or fewer folds=")
    assert folds_advice(said).endswith("; no number of folds can: cross-validation needs at least 2 training samples "
                                       "of each class (4 in all)")
    assert folds_advice("train: something else; pass val=") == "train: something else; pass val="
