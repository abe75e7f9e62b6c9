"""NeuroViewModule: options that matter for NeuroView, checkpoints, and a few batches on every data module."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from neuroview import NeuroViewCNN, NeuroViewRNN, RNNClassifier
from neuroview.data import (
    CIFAR10DataModule,
    DigitsDataModule,
    MNIST1DDataModule,
    MNISTDataModule,
    NpzDataModule,
    UCRDataModule,
)
from neuroview.training.module import NeuroViewModule, build_model, load_model, load_weights

from datafiles import make_cifar, make_mnist

TINY_CNN = {"widths": [8, 16]}


def tiny_trainer(tmp_path, **kw) -> pl.Trainer:
    return pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, max_epochs=1, limit_train_batches=2,
                      limit_val_batches=1, limit_test_batches=1, num_sanity_val_steps=0, **kw)


# ---------------------------------------------------------------------------- building
def test_build_model_routes_the_data_shape():
    assert isinstance(build_model("nv_small_cnn", num_classes=3, in_channels=2, model_kwargs=TINY_CNN), NeuroViewCNN)
    rnn = build_model("nv_lstm", num_classes=3, in_channels=5, max_len=17)
    assert isinstance(rnn, NeuroViewRNN) and rnn.max_len == 17 and rnn.input_size == 5
    assert isinstance(build_model("gru", num_classes=3, in_channels=5, max_len=17), RNNClassifier)  # max_len unused
    with pytest.raises(ValueError, match="max_len"):
        build_model("nv_gru", num_classes=3, in_channels=5)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nv_smal_cnn", num_classes=3, in_channels=1)


@pytest.mark.parametrize("kw, match", [({"optimizer": "lbfgs"}, "optimizer"), ({"scheduler": "exp"}, "scheduler"),
                                       ({"lr": 0}, "lr"), ({"l1_classifier": -1}, "l1_classifier"),
                                       ({"label_smoothing": 1.0}, "label_smoothing"),
                                       ({"classifier_lr": 0.0}, "classifier_lr"), ({"compile": "fast"}, "compile")])
def test_bad_options_name_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        NeuroViewModule("small_cnn", 10, 1, TINY_CNN, **kw)


def test_rnn_gets_time_major_features_and_lengths():
    m = NeuroViewModule("nv_gru", num_classes=3, in_channels=4, max_len=12, model_kwargs={"hidden_size": 8}).eval()
    x, lengths = torch.randn(5, 4, 12), torch.tensor([12, 3, 7, 12, 1])  # data modules give [B, C, T]
    assert m.sequence_input
    assert torch.allclose(m(x, lengths), m.model(x.transpose(1, 2), lengths=lengths))


def test_unreached_backbone_head_is_frozen():
    m = NeuroViewModule("nv_small_cnn", 10, 1, model_kwargs=TINY_CNN)
    assert m.unreached == []  # the sites (and what they never reach) are found on the first batch
    m.build(torch.randn(2, 1, 8, 8))
    assert m.unreached == ["backbone.fc"]
    assert not m.model.backbone.fc.weight.requires_grad and m.model.classifier.weight.requires_grad
    loss = m.training_step((torch.randn(8, 1, 8, 8), torch.arange(8)), 0)
    loss.backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)  # DDP needs no find_unused_parameters


def test_compile_runs_the_training_step_compiled_with_the_same_loss(tmp_path):
    import copy
    import pickle

    torch._dynamo.reset()
    torch.manual_seed(0)
    batch = (torch.randn(6, 1, 30), torch.arange(6) % 2)
    eager = NeuroViewModule("nv_lite", 2, 1, model_kwargs={"members": 2, "batched": True})
    eager.build(batch[0])
    compiled = copy.deepcopy(eager)
    compiled.hparams.compile = "aot_eager"
    counts = torch._dynamo.utils.counters
    torch.testing.assert_close(compiled.training_step(batch, 0), eager.training_step(batch, 0))  # the same forward
    counts.clear()  # the first step built the grouped pass (eagerly); from the second on, one graph
    torch.testing.assert_close(compiled.training_step(batch, 0), eager.training_step(batch, 0))
    assert counts["stats"]["unique_graphs"] == 1 and not counts["graph_break"]
    pickle.loads(pickle.dumps(compiled))  # nothing compiled is kept on the module: it still pickles
    # a compiled network skips its own NaN check: the batch is checked before it moves to the device
    nan = (batch[0].clone().index_fill_(2, torch.tensor([3]), float("nan")), batch[1])
    with pytest.raises(ValueError, match=r"x: contains NaN or Inf \(6 of 180 values\)"):
        compiled.on_before_batch_transfer(nan, 0)
    assert compiled.on_before_batch_transfer(batch, 0) is batch
    compiled.hparams.compile = None
    assert eager.on_before_batch_transfer(nan, 0) is nan  # eager: the network's own check (below) says it
    with pytest.raises(ValueError, match="x: contains NaN or Inf"):
        eager.training_step(nan, 0)
    counts.clear()
    compiled.training_step(batch, 0)
    assert not counts["stats"]["unique_graphs"]  # eager again: nothing compiled


# ----------------------------------------------------------------- NeuroView options
def test_classifier_penalties_add_to_the_loss():
    torch.manual_seed(0)
    batch = (torch.randn(8, 1, 8, 8), torch.arange(8))
    plain = NeuroViewModule("nv_small_cnn", 10, 1, TINY_CNN)
    pen = NeuroViewModule("nv_small_cnn", 10, 1, TINY_CNN, l1_classifier=0.1, group_l1_classifier=0.2)
    plain.build(batch[0]), pen.build(batch[0])
    pen.load_state_dict(plain.state_dict())
    w = pen.model.classifier.weight
    expect = 0.1 * w.abs().sum() + 0.2 * w.norm(dim=0).sum()
    assert torch.allclose(pen.training_step(batch, 0) - plain.training_step(batch, 0), expect, atol=1e-5)


def test_weight_decay_groups():
    m = NeuroViewModule("nv_small_cnn", 10, 1, TINY_CNN, weight_decay=0.01, classifier_weight_decay=0.5)
    m.build(torch.randn(2, 1, 8, 8))
    groups = m.parameter_groups()
    assert [g["weight_decay"] for g in groups] == [0.01, 0.5, 0.0]
    assert groups[1]["params"] == [m.model.classifier.weight]
    assert all(p.dim() < 2 for p in groups[2]["params"])
    assert all("lr" not in g for g in groups)  # every group at the optimizer's lr


def test_classifier_lr_is_the_classifier_weight_s_own_and_follows_the_schedule(tmp_path):
    m = NeuroViewModule("nv_small_cnn", 10, 1, TINY_CNN, lr=0.01, classifier_lr=0.001, scheduler="cosine")
    trainer = tiny_trainer(tmp_path)
    trainer.fit(m, DigitsDataModule(batch_size=16))
    opt = trainer.optimizers[0]
    head = next(g for g in opt.param_groups if any(p is m.model.classifier.weight for p in g["params"]))
    rest = [g for g in opt.param_groups if g is not head]
    assert head["initial_lr"] == 0.001 and all(g["initial_lr"] == 0.01 for g in rest)
    # the cosine scales both by the same factor
    assert head["lr"] / 0.001 == pytest.approx(rest[0]["lr"] / 0.01)
    assert head["lr"] < 0.001


def test_onecycle_peaks_the_classifier_at_classifier_lr(tmp_path):
    m = NeuroViewModule("nv_small_cnn", 10, 1, TINY_CNN, lr=0.01, classifier_lr=0.001, scheduler="onecycle")
    trainer = tiny_trainer(tmp_path)
    trainer.fit(m, DigitsDataModule(batch_size=16))
    head = next(g for g in trainer.optimizers[0].param_groups if any(p is m.model.classifier.weight for p in g["params"]))
    assert head["max_lr"] == 0.001
    assert all(g["max_lr"] == 0.01 for g in trainer.optimizers[0].param_groups if g is not head)


def test_freeze_backbone_trains_only_the_global_classifier(tmp_path):
    m = NeuroViewModule("nv_small_cnn", 10, 1, TINY_CNN, freeze_backbone=True, lr=0.1).build(torch.randn(2, 1, 8, 8))
    before = {k: v.clone() for k, v in m.model.state_dict().items()}
    tiny_trainer(tmp_path).fit(m, DigitsDataModule(batch_size=16))
    after = m.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # BatchNorm running statistics of the backbone stay put too: it runs in eval mode
    assert changed and all(k.startswith(("classifier.", "norm.")) for k in changed), changed
    assert m.train().model.backbone.training is False and m.model.norm.training is True


def test_a_frozen_gru_backbone_reads_as_in_eval_and_its_head_dropout_stays_on():
    """A frozen two-layer GRU with dropout between its layers still dropped states in training steps (the
    wrapper's mode decided, not the GRU's: the head's statistics were learned on other features than the
    ones explained), and the head's own dropout was switched off with the backbone (not a head name)."""
    m = NeuroViewModule("nv_gru", 3, 2, 7, {"hidden_size": 6, "num_layers": 2, "dropout": 0.5, "head_dropout": 0.5},
                        freeze_backbone=True).build(torch.randn(2, 2, 7))
    m.train()
    assert m.model.rnn.training is False and m.model.dropout.training is True and m.model.classifier.training is True
    x = torch.randn(4, 7, 2)  # batch-first [B, T, C], as the network reads it
    with torch.no_grad():
        train_states = m.model.features(x)
        m.model.eval()
        torch.testing.assert_close(train_states, m.model.features(x))


def test_retrofit_loads_a_trained_standard_network_into_the_backbone(tmp_path):
    std = NeuroViewModule("small_cnn", 10, 1, TINY_CNN)
    trainer = tiny_trainer(tmp_path)
    trainer.fit(std, DigitsDataModule(batch_size=16))
    trainer.save_checkpoint(tmp_path / "std.ckpt")
    nv = NeuroViewModule("nv_small_cnn", 10, 1, TINY_CNN, freeze_backbone=True, init_weights=str(tmp_path / "std.ckpt"))
    nv.build(torch.randn(2, 1, 8, 8)).setup("fit")
    for k, v in std.model.state_dict().items():
        assert torch.equal(nv.model.backbone.state_dict()[k], v)
    with pytest.raises(ValueError, match="init_weights"):
        load_weights(build_model("nv_gru", num_classes=10, in_channels=1, max_len=5), tmp_path / "std.ckpt")


def test_checkpoint_rebuilds_its_model(tmp_path):
    m = NeuroViewModule("nv_lstm", num_classes=9, in_channels=12, max_len=29, model_kwargs={"hidden_size": 8})
    trainer = tiny_trainer(tmp_path)
    dm = UCRDataModule("JapaneseVowels", batch_size=16)
    trainer.fit(m, dm)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    net = load_model(tmp_path / "m.ckpt")
    assert isinstance(net, NeuroViewRNN) and not net.training
    x, lengths, _ = next(iter(dm.test_dataloader()))
    assert torch.allclose(net(x.transpose(1, 2), lengths=lengths), m.eval()(x, lengths), atol=1e-6)


def test_test_reports_accuracy_f1_and_confusion(tmp_path):
    m = NeuroViewModule("small_cnn", 10, 1, TINY_CNN)
    trainer = tiny_trainer(tmp_path)
    out = trainer.test(m, DigitsDataModule(batch_size=16), verbose=False)[0]
    assert {"test_acc", "test_f1", "test_loss"} <= set(out)
    assert m.test_confusion.shape == (10, 10) and int(m.test_confusion.sum()) == 64  # one eval batch of 4 x 16


# ------------------------------------------------------------- every data module fits
def _data_modules(tmp_path):
    make_mnist(tmp_path / "mnist")
    make_cifar(tmp_path / "cifar")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mine.npz", X=rng.normal(size=(60, 2, 8, 8)).astype(np.float32), y=np.arange(60) % 3)
    return {
        "digits": (DigitsDataModule(batch_size=16), "nv_small_cnn", TINY_CNN),
        "mnist1d": (MNIST1DDataModule(batch_size=16), "nv_small_cnn", {**TINY_CNN, "dims": 1}),
        "gunpoint": (UCRDataModule("GunPoint", batch_size=8), "nv_gru", {"hidden_size": 8}),
        "japanesevowels": (UCRDataModule("JapaneseVowels", batch_size=16), "nv_lstm", {"hidden_size": 8}),
        "japanesevowels_cnn": (UCRDataModule("JapaneseVowels", batch_size=16), "nv_small_cnn", {**TINY_CNN, "dims": 1}),
        "mnist": (MNISTDataModule(root=str(tmp_path / "mnist"), batch_size=8, val_fraction=0.25), "nv_small_cnn", TINY_CNN),
        "cifar10": (CIFAR10DataModule(root=str(tmp_path / "cifar"), batch_size=8, num_workers=0), "nv_small_cnn", TINY_CNN),
        "npz": (NpzDataModule(str(tmp_path / "mine.npz"), batch_size=8), "small_cnn", TINY_CNN),
    }


@pytest.mark.parametrize("name", ["digits", "mnist1d", "gunpoint", "japanesevowels", "japanesevowels_cnn", "mnist", "cifar10", "npz"])
def test_fit_a_few_batches_on_every_data_module(tmp_path, monkeypatch, name):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    dm, arch, kw = _data_modules(tmp_path)[name]
    m = NeuroViewModule(arch, dm.num_classes, dm.in_channels, dm.max_len, kw)
    trainer = tiny_trainer(tmp_path)
    trainer.fit(m, dm)
    assert trainer.global_step == 2
    assert np.isfinite(float(trainer.callback_metrics["val_loss"]))
    preds = trainer.predict(m, dm)
    assert preds[0]["probs"].shape[1] == dm.num_classes
