"""Leftovers of the s16 fixes: a MiniRocket weight file of other dilations loaded by ``load_weights``; an .npz of images
read by a model of stretched series; a second test or predict of one run writing over the first's files; refusals of
``zoo``, ``retrofit`` and ``explain`` that named no option typed."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import neuroview as nv
from neuroview import cli


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


# ------------------------------------------------------------------ 1. load_weights of a MiniRocket of other dilations
KW = dict(num_classes=2, in_channels=1, max_len=150, num_features=504, seed=0)


def _saved_minirocket(root: Path) -> tuple[torch.nn.Module, Path, torch.Tensor]:
    from neuroview.zoo.pretrained import save_pretrained

    x = torch.randn(12, 1, 150, generator=torch.Generator().manual_seed(0)).cumsum(-1)
    net = nv.create_model("nv_minirocket", **KW, max_dilations_per_kernel=5)
    net.backbone.fit(x)
    net.eval()
    net(x[:2])
    save_pretrained(net, "nv_minirocket.t", architecture="nv_minirocket", arch_kwargs={**KW, "max_dilations_per_kernel": 5},
                    dataset={}, recipe=None, seed=0, metrics={}, root=root)
    return net, root / "nv_minirocket.t.safetensors", x


def test_the_two_minirocket_builds_differ_in_dilations_only():
    """The premise, by hand: 504 features are 6 biases a kernel; the dilations are 2 ** linspace(0, log2(149 / 8), n)
    cut to ints, n = min(6, max_dilations_per_kernel): n = 6 gives 1, 1.8, 3.2, 5.8, 10.4, 18.6 -> [1, 3, 5, 10, 18]
    (1 twice), n = 5 gives 1, 2.08, 4.3, 8.97, 18.6 -> [1, 2, 4, 8, 18]. No tensor shape tells them apart."""
    default, five = nv.create_model("nv_minirocket", **KW), nv.create_model("nv_minirocket", **KW, max_dilations_per_kernel=5)
    assert default.backbone.dilations == [1, 3, 5, 10, 18] and five.backbone.dilations == [1, 2, 4, 8, 18]
    assert {k: v.shape for k, v in default.state_dict().items()} == {k: v.shape for k, v in five.state_dict().items()}


@pytest.mark.parametrize("backbone", [False, True])
def test_load_weights_refuses_a_minirocket_file_of_other_dilations_by_name(tmp_path, backbone):
    """It loaded without a word: the file's biases were read at dilations [1, 3, 5, 10, 18] instead of the
    [1, 2, 4, 8, 18] they were fitted at, and the network's logits moved by about 1."""
    from neuroview.zoo.weights import ArchitectureError, load_weights

    net, path, x = _saved_minirocket(tmp_path)
    other = nv.create_model("nv_minirocket", **KW)
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ArchitectureError) as e:
        load_weights(other, path, backbone=backbone)
    msg = str(e.value)
    assert "dilations" in msg and "[1, 2, 4, 8, 18]" in msg and "[1, 3, 5, 10, 18]" in msg, msg
    assert "max_dilations_per_kernel" in msg and str(path) in msg, msg
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())  # nothing copied
    same = nv.create_model("nv_minirocket", **KW, max_dilations_per_kernel=5)  # built as saved: loads, and computes alike
    load_weights(same, path, backbone=backbone)
    same.eval()
    torch.testing.assert_close(same(x), net(x), rtol=0, atol=0)


def test_load_weights_of_a_file_without_a_record_or_of_the_same_build_still_loads(tmp_path):
    from safetensors.torch import save_file

    from neuroview.zoo.weights import load_weights

    net = nv.create_model("small_cnn", widths=(8,))  # a bare file: no metadata, nothing to rebuild
    save_file(net.state_dict(), str(tmp_path / "w.safetensors"))
    load_weights(nv.create_model("small_cnn", widths=(8,)), tmp_path / "w.safetensors")
    _, path, _ = _saved_minirocket(tmp_path)  # the file's kwargs given as a tuple rebuild the same lists
    load_weights(nv.create_model("nv_minirocket", **{**KW, "max_dilations_per_kernel": 5}), path)


# ------------------------------------------------------------------ 2. an .npz of images read as a series model reads
def _images(path: Path, n: int = 60) -> Path:
    rng = np.random.default_rng(1)
    np.savez(path, X=rng.normal(size=(n, 1, 8, 8)).astype(np.float32), y=np.arange(n) % 10)
    return path


@pytest.mark.parametrize("resample", [True, False])
def test_images_read_like_a_model_of_series_keep_their_shape(tmp_path, resample):
    """A series model's length (read_like) and resample were applied to images: each [1, 8, 8] sample was taken for a
    series and refused as not [C, T] (with advice to reshape), or cut. Images stay [N, 1, 8, 8]; series still get the
    model's length (20 steps stretched to 30, the last step of a ramp kept)."""
    from neuroview.data import NpzDataModule

    dm = NpzDataModule(str(_images(tmp_path / "img.npz")), resample=resample, normalize=False, val_fraction=0.0)
    dm._read_like["max_len"] = 30
    dm.setup("test")
    assert tuple(dm._splits["test"][0].shape[1:]) == (1, 8, 8) and dm.max_len is None
    ramp = np.tile(np.arange(20, dtype=np.float32), (10, 1, 1))
    np.savez(tmp_path / "s.npz", X=ramp, y=np.arange(10) % 2)
    series = NpzDataModule(str(tmp_path / "s.npz"), resample=True, normalize=False, val_fraction=0.0)
    series._read_like["max_len"] = 30
    series.setup("test")
    x = series._splits["test"][0]
    assert x.shape[-1] == 30 and float(x[0, 0, 0]) == 0.0 and float(x[0, 0, -1]) == pytest.approx(19.0)


@pytest.mark.parametrize("command", ["explain", "sparsify"])
def test_an_npz_of_images_given_to_a_model_of_series_is_refused_naming_data(ten_class_zoo, tmp_path, command, capsys):
    """It said `NpzDataModule: X (train split): expected every sequence of shape [C, T] ... give a univariate series one
    channel ([1, T]: x[None])`: neither --data nor the model named, and advice that made no sense for images."""
    data = _images(tmp_path / "img.npz")
    argv = (["explain", "--model", "nv_minirocket.ten", "--samples", "4", "--no-progress"] if command == "explain"
            else ["sparsify", "nv_minirocket.ten"])
    capsys.readouterr()
    assert cli.main([*argv, "--zoo", str(ten_class_zoo), "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "(1, 8, 8)" in err, err[-2000:]
    assert "x[None]" not in err and "[C, T]" not in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ 3. two tests (predicts) of one run
def _read(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def test_a_second_confusion_matrix_keeps_the_first(tmp_path):
    """A second trainer.test of one run wrote its confusion_matrix.csv over the first's."""
    from neuroview.training.outputs import write_confusion

    trainer = SimpleNamespace(log_dir=str(tmp_path), is_global_zero=True, loggers=[object()], datamodule=None)
    first, second = torch.tensor([[3, 1], [0, 2]]), torch.tensor([[0, 5], [7, 0]])
    write_confusion(trainer, first, 2)
    write_confusion(trainer, second, 2)
    write_confusion(trainer, first + second, 2)
    rows = lambda p: [[int(v) for v in r[1:]] for r in _read(p)[1:]]  # noqa: E731
    assert rows(tmp_path / "confusion_matrix-v1.csv") == [[3, 1], [0, 2]]  # the earlier ones kept, in order
    assert rows(tmp_path / "confusion_matrix-v2.csv") == [[0, 5], [7, 0]]
    assert rows(tmp_path / "confusion_matrix.csv") == [[3, 6], [7, 2]]  # the newest under the name the docs give


def _module_and_trainer(tmp_path, writer=None):
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import CSVLogger

    from neuroview.training.module import NeuroViewModule

    m = NeuroViewModule("nv_small_cnn", num_classes=2, in_channels=1, model_kwargs={"widths": [4], "dims": 1})
    m.build(torch.randn(2, 1, 16))  # its sites, found on a real batch (no data module gives one)
    tr = pl.Trainer(accelerator="cpu", logger=CSVLogger(str(tmp_path), name="logs"), enable_progress_bar=False,
                    enable_model_summary=False, enable_checkpointing=False, callbacks=[writer] if writer else None)
    return m, tr


def _loader(n: int, label: int):
    from torch.utils.data import DataLoader, TensorDataset

    x = torch.randn(n, 1, 16, generator=torch.Generator().manual_seed(n))
    return DataLoader(TensorDataset(x, torch.full((n,), label)), batch_size=4)


def test_two_tests_of_one_run_write_two_confusion_matrices(tmp_path):
    """The robustness check of the probe (the test split, then another loader) kept only the last matrix. The true
    classes are known whatever the network predicts: 6 samples of class 0, then 5 of class 1."""
    m, tr = _module_and_trainer(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr.test(m, _loader(6, 0), verbose=False)
        tr.test(m, _loader(5, 1), verbose=False)
    log = Path(tr.log_dir)
    sums = lambda p: [sum(int(v) for v in r[1:]) for r in _read(p)[1:]]  # noqa: E731 - samples of each true class
    assert sums(log / "confusion_matrix-v1.csv") == [6, 0] and sums(log / "confusion_matrix.csv") == [0, 5]


def test_two_predicts_of_one_run_write_two_prediction_files(tmp_path, caplog):
    """A second trainer.predict with the same PredictionWriter wrote its predictions.csv over the first's."""
    from neuroview.training.outputs import PredictionWriter

    m, tr = _module_and_trainer(tmp_path, PredictionWriter(str(tmp_path / "p")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr.predict(m, _loader(6, 0))
        tr.predict(m, _loader(5, 1))
    first, second = _read(tmp_path / "p" / "predictions-v1.csv"), _read(tmp_path / "p" / "predictions.csv")
    assert [r[1] for r in first[1:]] == ["0"] * 6 and [r[1] for r in second[1:]] == ["1"] * 5  # the target column
    assert first[0][:2] == ["split_index", "target"]


# ------------------------------------------------------------------ 4. refusals name the options typed
def test_zoo_root_of_a_file_says_it_is_a_file(tmp_path, capsys):
    """`neuroview zoo --root manifest.json` said "(no such folder)" of a file that is there."""
    from neuroview.zoo.cli import main as zoo_main

    (tmp_path / "manifest.json").write_text("{}")
    for argv in (["--root", str(tmp_path / "manifest.json")], ["--architectures", "--root", str(tmp_path / "manifest.json")]):
        assert zoo_main(argv) == 2
        err = capsys.readouterr().err
        assert "--root: expected a checkpoint folder, got" in err and "(a file, not a folder)" in err, err
        assert "no such folder" not in err
    assert zoo_main(["--root", str(tmp_path / "typo")]) == 2
    assert "(no such folder)" in capsys.readouterr().err


def test_retrofit_epochs_refusal_names_the_option(capsys):
    """`neuroview retrofit small_cnn.digits --epochs 0` said `epochs: expected a positive int, got 0`."""
    assert cli.main(["retrofit", "small_cnn.digits", "--epochs", "0"]) == 2
    err = capsys.readouterr().err
    assert "epochs: expected a positive int, got 0 (option --epochs)" in err, err


def test_retrofit_and_explain_name_the_option_of_an_unknown_model(tmp_path, capsys):
    """`explain --model nv_resnet1d` said `name: no trained entry 'nv_resnet1d' ...`: no option is called name."""
    assert cli.main(["explain", "--model", "nv_resnet1d", "--data", "UnitTest", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "name: no trained entry 'nv_resnet1d'" in err and err.rstrip().endswith("(option --model)"), err
    assert cli.main(["retrofit", "small_cnx.digits"]) == 2
    err = capsys.readouterr().err
    assert "name:" in err and err.rstrip().endswith("(argument source)"), err
    assert not (tmp_path / "o").exists()
