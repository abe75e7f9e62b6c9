"""Every writer of a weight file made on a file of the user's keeps the fingerprint of the training split it read, as
``neuroview sparsify`` entries and ``fit`` checkpoints do: a ``neuroview minirocket`` entry, a ``neuroview retrofit
--out`` file and the ``Sparsify`` callback's ``sparse.safetensors`` recorded none, and after the file's rows were
reordered ``explain`` re-carved it and reported series the head was fitted on as its test split (7 of 12), 83% -> 100%.
And ``predict``'s ``predictions.csv`` names its classes as the file does: ``target``/``pred`` were output numbers and
``prob_<k>`` the k-th output beside numeric labels, so a series of label 2 (labels 0, 2, 5) read ``target 1``, and
``prob_2`` was the probability of label 5."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors import safe_open

CHANGED = r"is the file the zoo entry .* was trained on, but its training split changed since"


def _file(path, n: int = 30, seed: int = 0):
    """``n`` series of 3 classes, each series' first step its row number (to follow rows across a reorder)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(["a", "b", "c"], n // 3)
    x = rng.normal(size=(n, 1, 24)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 0, 4 + 6 * "abc".index(c):8 + 6 * "abc".index(c)] += 2.0
    x[:, 0, 0] = np.arange(n)
    np.savez(path, X=x, y=y)
    return x, y


def _reorder(path, x, y, seed: int = 1) -> None:
    """The same series and labels, written over the file in another order (the carve then differs)."""
    perm = np.random.default_rng(seed).permutation(len(y))
    np.savez(path, X=x[perm], y=y[perm])


def _test_ids(spec: dict) -> set[int]:
    """The file rows (first steps) of the test split a data module of ``spec``, not held to any record, carves."""
    from neuroview.data import NpzDataModule

    dm = NpzDataModule(**spec["init_args"])
    dm.setup("test")
    return set(np.load(spec["init_args"]["path"])["X"][dm.test_rows, 0, 0].astype(int).tolist())


def _recorded_spec(weights) -> dict:
    with safe_open(str(weights), "pt") as f:
        return json.loads(f.metadata()["neuroview.data"])


def test_a_minirocket_entry_refuses_its_file_reordered_since(tmp_path, capsys):
    from neuroview.training.minirocket_cli import main
    from neuroview.viz.report import main as explain
    from neuroview.zoo.pretrained import make_datamodule, read_manifest

    x, y = _file(tmp_path / "mine.npz")
    assert main(["--data", str(tmp_path / "mine.npz"), "--num-features", "168", "--out", str(tmp_path / "zoo")]) == 0
    spec = read_manifest(tmp_path / "zoo")["nv_minirocket.mine"]["dataset"]["data_module"]
    before = _test_ids(spec)
    dm = make_datamodule(spec)
    dm.setup("test")  # the file as the entry was made on it: read, the same carve
    assert set(np.load(tmp_path / "mine.npz")["X"][dm.test_rows, 0, 0].astype(int).tolist()) == before
    _reorder(tmp_path / "mine.npz", x, y)
    assert _test_ids(spec) - before  # carved again, training series fall in the "test" split (the fault's premise)
    with pytest.raises(ValueError, match=CHANGED.replace(".*", "nv_minirocket.mine")):
        make_datamodule(spec).setup("test")
    capsys.readouterr()
    assert explain(["--model", "nv_minirocket.mine", "--zoo", str(tmp_path / "zoo"), "--out", str(tmp_path / "rep"),
                    "--samples", "4", "--examples", "0", "--no-gallery", "--no-progress", "--dpi", "30"]) == 2
    assert "its training split changed since" in capsys.readouterr().err  # before: rc 0, 7 of 12 "test" series trained on


def test_a_retrofit_weight_file_refuses_its_file_reordered_since(tmp_path, capsys):
    from neuroview.training.retrofit import main as retrofit
    from neuroview.viz.report import main as explain
    from neuroview.zoo import create_model
    from neuroview.zoo.pretrained import make_datamodule

    x, y = _file(tmp_path / "mine.npz", seed=2)
    torch.manual_seed(0)
    torch.save(create_model("lite", num_classes=3, in_channels=1).state_dict(), tmp_path / "std.pt")
    out = tmp_path / "nv.safetensors"
    assert retrofit([str(tmp_path / "std.pt"), "--arch", "lite", "--arch-kwargs", '{"num_classes": 3, "in_channels": 1}',
                     "--data", str(tmp_path / "mine.npz"), "--epochs", "5", "--out", str(out)]) == 0
    spec = _recorded_spec(out)
    assert spec["neuroview_data_file"]["path"] == str(tmp_path / "mine.npz")  # was no record at all
    before = _test_ids(spec)
    make_datamodule(spec).setup("test")  # unchanged: read
    _reorder(tmp_path / "mine.npz", x, y)
    assert _test_ids(spec) - before
    with pytest.raises(ValueError, match="its training split changed since"):
        make_datamodule(spec).setup("test")
    capsys.readouterr()
    assert explain(["--model", "nv_lite", "--weights", str(out), "--out", str(tmp_path / "rep"), "--samples", "4",
                    "--examples", "0", "--no-gallery", "--no-progress", "--dpi", "30"]) == 2
    assert "its training split changed since" in capsys.readouterr().err  # before: rc 0, training series as "test"


def test_the_sparsify_callback_s_weight_file_records_its_file(tmp_path):
    from neuroview.data import NpzDataModule
    from neuroview.training.sparse_callback import _built
    from neuroview.zoo.pretrained import make_datamodule

    x, y = _file(tmp_path / "mine.npz", seed=3)
    dm = NpzDataModule(str(tmp_path / "mine.npz"), val_fraction=0.0)
    dm.setup("fit")
    meta = _built(SimpleNamespace(hparams={}), dm)
    spec = json.loads(meta["neuroview.data"])
    assert spec["neuroview_data_file"]["path"] == str(tmp_path / "mine.npz")
    before = _test_ids(spec)
    make_datamodule(spec).setup("test")
    _reorder(tmp_path / "mine.npz", x, y)
    assert _test_ids(spec) - before
    with pytest.raises(ValueError, match="its training split changed since"):
        make_datamodule(spec).setup("test")
    # a file read whole (new data, never the model's own) records nothing: other data is not held to it
    from neuroview.data.splits import whole_files

    with whole_files():
        other = NpzDataModule(str(tmp_path / "mine.npz"), val_fraction=0.0)
        other.setup("test")
    assert "neuroview_data_file" not in json.loads(_built(SimpleNamespace(hparams={}), other)["neuroview.data"])


def _predictions(tmp_path, names, targets, probs) -> list[dict]:
    from neuroview.training.outputs import PredictionWriter

    probs = torch.tensor(probs)
    batch = {"preds": probs.argmax(-1), "probs": probs, "target": torch.tensor(targets)}
    trainer = SimpleNamespace(log_dir=str(tmp_path), world_size=1, global_rank=0,
                              datamodule=SimpleNamespace(class_names=names))
    PredictionWriter(str(tmp_path)).write_on_epoch_end(trainer, None, [batch], [[list(range(len(targets)))]])
    with open(tmp_path / "predictions.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_predictions_name_target_pred_and_probabilities_by_the_file_s_labels(tmp_path):
    # labels {0, 2, 5}: outputs 0, 1, 2 are labels 0, 2, 5. A series of label 2 (output 1) predicted 2 at 0.7, and a
    # series of label 5 (output 2) predicted 5 at 0.8
    rows = _predictions(tmp_path, ["0", "2", "5"], [1, 2], [[0.1, 0.7, 0.2], [0.15, 0.05, 0.8]])
    assert list(rows[0]) == ["split_index", "target", "pred", "target_index", "pred_index", "prob_0", "prob_2", "prob_5"]
    assert [(r["target"], r["pred"]) for r in rows] == [("2", "2"), ("5", "5")]  # were ("1", "1"), ("2", "2")
    assert [(r["target_index"], r["pred_index"]) for r in rows] == [("1", "1"), ("2", "2")]
    assert [float(r["prob_2"]) for r in rows] == [0.7, 0.05]  # P(label 2); was the column of label 5: 0.2, 0.8
    assert [float(r["prob_5"]) for r in rows] == [0.2, 0.8]


def test_predictions_of_named_classes_and_of_none(tmp_path):
    rows = _predictions(tmp_path / "named", ["cat", "dog"], [1, 0], [[0.4, 0.6], [0.9, 0.1]])
    assert [(r["target"], r["pred"], r["target_index"], r["pred_index"]) for r in rows] == [
        ("dog", "dog", "1", "1"), ("cat", "cat", "0", "0")]
    assert [float(r["prob_dog"]) for r in rows] == [0.6, 0.1]
    rows = _predictions(tmp_path / "none", None, [1, 0], [[0.4, 0.6], [0.9, 0.1]])  # no names: the output numbers
    assert list(rows[0]) == ["split_index", "target", "pred", "prob_0", "prob_1"]
    assert [(r["target"], r["pred"]) for r in rows] == [("1", "1"), ("0", "0")]
    rows = _predictions(tmp_path / "unlabelled", ["0", "2", "5"], [-1], [[0.1, 0.2, 0.7]])  # a target of no class
    assert (rows[0]["target"], rows[0]["target_index"], rows[0]["pred"]) == ("", "-1", "5")
