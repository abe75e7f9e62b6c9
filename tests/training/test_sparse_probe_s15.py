"""The sparse head's entry points say what they did or refuse by name (a probe's faults, each failing on the code
before it): a second test on a checkpoint refits the head it loads, another run's sparse files are kept, the
`Sparsify` callback checks its options before the fit, `neuroview sparsify --finetune` records the epochs kept,
`finetune_sparse` checks its labels and seed as `sparsify` does, and a tiny distill temperature fits."""

from __future__ import annotations

import json
import logging

import warnings

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn

import neuroview as nv
from neuroview.data import DigitsDataModule
from neuroview.training.module import NeuroViewModule
from neuroview.training.sparse_callback import Sparsify
from neuroview.training.sparsify import sparsify
from neuroview.training.sparsify_cli import main as sparsify_main
from neuroview.zoo.pretrained import read_manifest


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))


def _trainer(root, callbacks, checkpointing=False, **kw):
    return pl.Trainer(logger=False, enable_checkpointing=checkpointing, enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu", devices=1, default_root_dir=str(root),
                      callbacks=callbacks, limit_test_batches=1, **kw)


def _module():
    pl.seed_everything(0)
    return NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [8, 16]})


def _fitted():
    dm, m = DigitsDataModule(batch_size=32), _module()
    pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
               accelerator="cpu", devices=1, max_epochs=1, limit_train_batches=3, limit_val_batches=1).fit(m, datamodule=dm)
    return dm, m


def _small(classes=2, n=60):
    torch.manual_seed(0)
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 16, 3), nn.ReLU()), classes, input_shape=(1, 20)).eval()
    x = torch.randn(n, 1, 20)
    y = (x[:, 0, 5:10].mean(1) > 0).long() if classes == 2 else torch.arange(n) % classes
    return net, x, y


def test_a_second_test_on_a_checkpoint_refits_the_dense_head_it_loads(tmp_path):
    dm, m = DigitsDataModule(batch_size=32), _module()
    ck = ModelCheckpoint(dirpath=str(tmp_path / "ck"), save_last=True)
    tr = _trainer(tmp_path, [ck, Sparsify(max_units_per_class=3)], checkpointing=True, max_epochs=1,
                  limit_train_batches=3, limit_val_batches=1)
    tr.fit(m, datamodule=dm)
    tr.test(m, datamodule=dm, ckpt_path="last", verbose=False)
    first = json.loads((tmp_path / "sparse_path.json").read_text())
    # the checkpoint's dense head, loaded into the sparse network: scored as it was under the stale sparsity_path
    tr.test(m, datamodule=dm, ckpt_path="last", verbose=False)
    w, path = m.model.classifier.weight, m.model.sparsity_path
    assert int((w != 0).sum(1).max()) <= 3, (w != 0).sum(1).tolist()
    assert float(nv.units_per_class(m.model).float().mean()) == pytest.approx(float(path.units_per_class[path.chosen]))
    # the same run's file replaced by its own refit of the same checkpoint, no second name
    assert sorted(p.name for p in tmp_path.glob("sparse*")) == ["sparse.safetensors", "sparse_path.json"]
    assert json.loads((tmp_path / "sparse_path.json").read_text())["summary"] == first["summary"] == str(path)


def test_another_run_s_sparse_files_are_kept_and_the_new_ones_named(tmp_path, caplog):
    dm, m = _fitted()
    _trainer(tmp_path, [Sparsify()]).test(m, datamodule=dm, verbose=False)
    before = (tmp_path / "sparse.safetensors").read_bytes(), (tmp_path / "sparse_path.json").read_bytes()
    dm, m = _fitted()
    m.model.classifier.weight.data.mul_(0.5)  # another network: another head
    with caplog.at_level(logging.INFO):
        _trainer(tmp_path, [Sparsify()]).test(m, datamodule=dm, verbose=False)
    assert ((tmp_path / "sparse.safetensors").read_bytes(), (tmp_path / "sparse_path.json").read_bytes()) == before
    assert (tmp_path / "sparse-v1.safetensors").is_file() and (tmp_path / "sparse_path-v1.json").is_file()
    assert "writing sparse-v1.safetensors and sparse_path-v1.json" in caplog.text


def test_an_ensemble_s_checkpoint_loads_after_its_test_and_the_same_weights_are_not_refitted(tmp_path, monkeypatch):
    # the sparse copy's keys are not the dense checkpoint's (an Ensemble's global head): test(ckpt_path=...) failed in
    # Lightning's load (a review); the dense network goes back before a checkpoint loads, and its own weights again
    # keep the fit already made
    import neuroview.training.sparse_callback as sc

    calls = []
    monkeypatch.setattr(sc, "sparsify", lambda *a, **k: (calls.append(1), sparsify(*a, **k))[1])
    pl.seed_everything(0)
    dm = DigitsDataModule(batch_size=32)
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8], "members": 2})
    ck = ModelCheckpoint(dirpath=str(tmp_path / "ck"), save_last=True)
    tr = _trainer(tmp_path, [ck, Sparsify(max_units_per_class=3)], checkpointing=True, max_epochs=1,
                  limit_train_batches=2, limit_val_batches=1, limit_predict_batches=1)
    tr.fit(m, datamodule=dm)
    tr.test(m, datamodule=dm, verbose=False)
    tr.test(m, datamodule=dm, ckpt_path="last", verbose=False)  # the weights the fit ended with: the same sparse head
    tr.predict(m, datamodule=dm)
    assert len(calls) == 1 and m.model.sparsity_path is not None
    assert int((m.model.classifier.weight != 0).sum(1).max()) <= 3


def test_one_callback_given_to_two_trainers_keeps_the_first_run_s_files(tmp_path):
    cb = Sparsify()
    dm, m = _fitted()
    _trainer(tmp_path, [cb]).test(m, datamodule=dm, verbose=False)
    before = (tmp_path / "sparse_path.json").read_bytes()
    assert json.loads(before)["run"]  # the run's mark: its own files are replaced, another run's kept
    dm, m = _fitted()
    m.model.classifier.weight.data.mul_(0.5)
    _trainer(tmp_path, [cb]).test(m, datamodule=dm, verbose=False)  # a k-fold loop's second trainer: another run
    assert (tmp_path / "sparse_path.json").read_bytes() == before and (tmp_path / "sparse_path-v1.json").is_file()


@pytest.mark.parametrize("kw, match", [
    (dict(tolerance=-1), r"tolerance: expected accuracy points >= 0, got -1"),
    (dict(groups="steps"), r"groups: expected one of \('unit', 'step', 'hidden'\), got 'steps'"),
    (dict(max_units_per_class=0), r"max_units_per_class: expected None or an int >= 1, got 0"),
    (dict(distill=0), r"distill: expected None or a temperature > 0, got 0"),
    (dict(k90_quantile=2), r"k90_quantile: expected the share of decisions a budget holds for, in \(0, 1\], got 2"),
    (dict(deviance=1.5), r"deviance: expected a share in \[0, 1\]"),
    (dict(max_k90=0.5), r"max_k90: expected None or a number of contributions per decision >= 1, got 0.5"),
    (dict(seed=1.5), r"seed: expected an int \(the folds' shuffle\), got 1.5"),
])
def test_the_callback_refuses_bad_options_when_made(kw, match):
    with pytest.raises(ValueError, match=match):
        Sparsify(**kw)


@pytest.mark.parametrize("kw, match", [
    (dict(groups="step"), r"groups: a NeuroView-CNN's groups are its units \('unit'\), got 'step'"),
    (dict(max_steps_per_class=2), r"max_steps_per_class: a cap in time steps needs a NeuroViewRNN, got NeuroViewCNN"),
    (dict(max_k90_steps=5), r"max_k90_steps: a budget in time steps needs a NeuroViewRNN, got NeuroViewCNN"),
])
def test_the_callback_refuses_an_rnn_s_options_on_a_cnn_before_the_fit(tmp_path, kw, match):
    dm, m = DigitsDataModule(batch_size=32), _module()
    tr = _trainer(tmp_path, [Sparsify(**kw)], max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    with pytest.raises(ValueError, match=match):
        tr.fit(m, datamodule=dm)
    assert tr.global_step == 0  # no step trained for a test that could only fail


def test_sparsify_command_records_and_prints_the_fine_tuning_epochs_kept(tmp_path, capsys):
    out = tmp_path / "zoo"
    # a budget the first fine-tuning epoch already breaks: the entry is the head before fine-tuning
    assert sparsify_main(["nv_lite.gunpoint", "--max-k90", "1", "--finetune", "2", "--out", str(out)]) == 0
    record = read_manifest(out)["nv_lite.gunpoint_sparse"]["sparsify"]
    assert record["finetune"] == 2 and record["finetune_epochs_kept"] == 0
    assert "fine-tuned 0 of 2 epochs" in capsys.readouterr().out


@pytest.mark.parametrize("keep, match", [
    (lambda y: y == 0, r"train: the fine-tuning's batches held no sample of class \[1, 2\] in 2 epoch\(s\)"),
    (lambda y: y != 2, r"train: the fine-tuning's batches held no sample of class \[2\] in 2 epoch\(s\)"),
])
def test_finetune_sparse_warns_of_labels_sparsify_refuses(keep, match):
    net, x, y = _small(classes=3)
    sparse = nv.sparsify(net, [(x, y)], tolerance=50.0)
    k = keep(y)
    # trained on them without a word (one class only: the other classes' training accuracy fell 89% -> 64%); a
    # warning, not an error: a batch of one sample is a use of its own (test_sparsify.py's bfloat16 test)
    with pytest.warns(UserWarning, match=match + r" \(nv.sparsify refuses a training split without one\)"):
        nv.finetune_sparse(sparse, [(x[k], y[k])], epochs=2)
    with warnings.catch_warnings():  # every class in its batches: nothing said
        warnings.simplefilter("error")
        nv.finetune_sparse(sparse, [(x[k], y[k]), (x[~k], y[~k])], epochs=2)
    with pytest.raises(ValueError, match=r"train: labels must lie in \[0, 3\)"):  # out of range: refused (it was already)
        nv.finetune_sparse(sparse, [(x, y + 1)], epochs=1)


@pytest.fixture(scope="module")
def _sparse_small():
    net, x, y = _small()
    return nv.sparsify(net, [(x, y)], tolerance=5.0), x, y


@pytest.mark.parametrize("seed", [1.5, "a", None, True])
def test_finetune_sparse_checks_its_seed(seed, _sparse_small):
    sparse, x, y = _sparse_small
    with pytest.raises(ValueError, match=r"seed: expected an int \(the fine-tuning's shuffle and dropout\), got "):
        nv.finetune_sparse(sparse, [(x, y)], epochs=1, seed=seed)


def test_a_tiny_distill_temperature_fits_the_dense_network_s_decisions():
    net, x, y = _small()
    # logits / 1e-40 overflowed float32: NaN probabilities, refused as `y`, an argument never passed
    tiny, small = (nv.sparsify(net, [(x, y)], tolerance=5.0, distill=t) for t in (1e-40, 1e-30))
    assert torch.equal(tiny.classifier.weight, small.classifier.weight)  # both fit the dense decisions, one-hot
    from neuroview.training.glm import soft_targets  # noqa: PLC0415 - added with the fix

    t = soft_targets(torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]), 1e-300)
    assert torch.equal(t, torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"distill: the dense network's probabilities at temperature 1.0 are not finite"):
        soft_targets(torch.tensor([[float("nan"), 0.0]]), 1.0)


def test_the_command_line_shows_the_callback_s_refusal_alone():
    # jsonargparse lists a refused callback's own message, then "Not a valid subclass of Callback" and its sub-list
    from neuroview.cli import _refusal

    text = ("Does not validate against any of the Union subtypes\nSubtypes: [...]\nErrors:\n"
            "  - tolerance: expected accuracy points >= 0, got -1.0\n"
            "  - Not a valid subclass of Callback. Got value: ...\n    Subclass types expected one of:\n"
            "      - a class path (str)\n      - a dict with class_path entry\nGiven value type: <class 'dict'>")
    assert _refusal(ValueError(text)) == "tolerance: expected accuracy points >= 0, got -1.0"


def test_the_callback_names_itself_refusing_a_standard_network_before_the_fit(tmp_path):
    pl.seed_everything(0)
    m = NeuroViewModule("small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8]})
    tr = _trainer(tmp_path, [Sparsify()], max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    with pytest.raises(TypeError, match=r"^Sparsify: net: expected a NeuroViewCNN"):  # sparsify's words alone before
        tr.fit(m, datamodule=DigitsDataModule(batch_size=32))
    assert tr.global_step == 0
