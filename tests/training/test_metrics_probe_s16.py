"""The numbers training and evaluation report, under a dict of loaders and the reduced precisions (the metrics probe's
faults, each failing on the code before it): a dict of validation/test loaders refused by name as a list is (its
second loader's metrics pooled both loaders), loss means kept in float32 under ``bf16-true`` (they depended on the
batch size), Adam/AdamW refused over float16 weights (``16-true`` turned them NaN at the first step, and the error
blamed x), and the learning-rate columns named after their parameter group (``pg1`` was the backbone's rate in one
run and the classifier's in another). Models are hand-set so that the right numbers are known: a zero classifier
gives every sample the cross-entropy ln(10), a classifier whose bias favours class 2 scores ``mean(y == 2)``."""

from __future__ import annotations

import csv
import math
import warnings

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from neuroview.training.module import NeuroViewModule

LN10 = math.log(10.0)


@pytest.fixture(autouse=True)
def _quiet(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROVIEW_CACHE", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _trainer(**kw):
    kw = {"logger": False, "enable_checkpointing": False, **kw}
    return pl.Trainer(enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1, **kw)


def _data(n=40, batch_size=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 1, 8, 8, generator=g), torch.arange(n) % 10
    return x, y, DataLoader(TensorDataset(x, y), batch_size=batch_size)


def _constant(favour: int | None = 2, **kw) -> NeuroViewModule:
    """A standard CNN whose classifier is zero: every logit is the bias, so every sample is predicted ``favour`` (with
    the bias one there) or, with no favour, every logit is 0 and every sample's cross-entropy is ln(10)."""
    pl.seed_everything(0)
    m = NeuroViewModule("small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4]}, scheduler="none", **kw)
    with torch.no_grad():
        m.classifier.weight.zero_()
        m.classifier.bias.zero_()
        if favour is not None:
            m.classifier.bias[favour] = 1.0
    return m


# ------------------------------------------------------------------ 1. a dict of loaders
@pytest.mark.parametrize("stage", ["test", "validate"])
def test_a_dict_of_two_loaders_is_refused_by_name_as_a_list_is(stage):
    _, _, a = _data(seed=0)
    _, _, b = _data(seed=1)
    split = "test" if stage == "test" else "validation"
    with pytest.raises(ValueError, match=rf"{split} dataloaders: NeuroViewModule scores one {split} loader, got 2 "
                                         rf"\(a dict: 'clean', 'noisy'\); run trainer.{stage} once per loader"):
        getattr(_trainer(), stage)(_constant(), {"clean": a, "noisy": b}, verbose=False)


def test_a_fit_with_a_dict_of_validation_loaders_is_refused_before_training():
    x, y, a = _data()
    m = _constant()
    trainer = _trainer(max_epochs=1)
    with pytest.raises(ValueError, match=r"validation dataloaders: .* got 2 \(a dict: 'val', 'test'\)"):
        trainer.fit(m, a, {"val": a, "test": a})
    assert trainer.global_step == 0  # the sanity check refuses it: no epoch trained first


def test_a_dict_of_one_loader_scores_that_loader():
    x, y, a = _data(n=37, batch_size=8)
    m = _constant(favour=2)
    res = _trainer().test(m, {"only": a}, verbose=False)[0]
    assert res["test_acc"] == pytest.approx((y == 2).float().mean().item())  # every sample predicted 2
    assert int(m.test_confusion.sum()) == 37 and int(m.test_confusion[:, 2].sum()) == 37


class _DictData(pl.LightningDataModule):
    def __init__(self, loaders):
        super().__init__()
        self.loaders = loaders

    def test_dataloader(self):
        return self.loaders


def test_a_data_module_s_dict_of_test_loaders_is_refused_by_name_before_sites_are_found():
    _, _, a = _data()
    m = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8]})
    with pytest.raises(ValueError, match=r"test dataloaders: .* got 2 \(a dict: 'test', 'first_half'\)"):
        _trainer().test(m, datamodule=_DictData({"test": a, "first_half": a}), verbose=False)  # was: "got a str"
    one = NeuroViewModule("nv_small_cnn", num_classes=10, in_channels=1, model_kwargs={"widths": [4, 8]})
    res = _trainer().test(one, datamodule=_DictData({"test": a}), verbose=False)[0]  # its sites on that loader's batch
    assert int(one.test_confusion.sum()) == 40 and 0 <= res["test_acc"] <= 1


# ------------------------------------------------------------------ 2. bf16-true loss means
def test_metric_states_stay_float32_when_the_module_is_cast():
    m = _constant()
    m.to(torch.bfloat16)
    assert m.classifier.weight.dtype == torch.bfloat16
    assert {v.dtype for k in ("train_loss", "val_loss", "test_loss") for v in getattr(m, k).metric_state.values()} \
        == {torch.float32}
    assert m.test_confmat.confmat.dtype == torch.int64  # the counts stay integers
    one = torch.tensor(2.296875, dtype=torch.bfloat16)  # ln(10) in bfloat16
    for _ in range(1000):  # a bfloat16 count stops at 256
        m.val_loss.update(one, weight=1)
    assert float(m.val_loss.weight) == 1000 and m.val_loss.compute().item() == pytest.approx(2.296875, abs=1e-6)
    m.val_loss.reset()
    assert m.val_loss.mean_value.dtype == torch.float32


@pytest.mark.parametrize("batch_size", [1, 300])
def test_bf16_true_evaluation_losses_do_not_depend_on_the_batch_size(batch_size):
    _, _, loader = _data(n=300, batch_size=batch_size)
    m = _constant(favour=None)  # every logit 0: every sample's cross-entropy is ln(10)
    val = _trainer(precision="bf16-true").validate(m, loader, verbose=False)[0]
    test = _trainer(precision="bf16-true").test(m, loader, verbose=False)[0]
    assert val["val_loss"] == pytest.approx(LN10, abs=1e-3)  # was 2.0 at batch 1
    assert test["test_loss"] == pytest.approx(LN10, abs=1e-3)


def test_bf16_true_train_loss_epoch_is_the_mean_over_the_samples():
    _, _, loader = _data(n=300, batch_size=1)
    m = _constant(favour=None, optimizer="sgd", lr=1e-12, momentum=0.0)  # the logits stay 0 to 1e-9
    trainer = _trainer(precision="bf16-true", max_epochs=1, limit_val_batches=0)
    trainer.fit(m, loader)
    assert trainer.global_step == 300
    # each step's loss is ln(10) in bfloat16 (2.2969): the mean of 300 of them, not a bfloat16 running sum's
    assert float(trainer.callback_metrics["train_loss_epoch"]) == pytest.approx(2.296875, abs=1e-3)


# ------------------------------------------------------------------ 3. 16-true and Adam/AdamW
def test_adamw_over_float16_weights_makes_them_nan():
    # the premise of the refusal: AdamW's eps is 0 in float16, and its first step divides 0 by 0 where a gradient is 0
    assert torch.tensor(1e-8, dtype=torch.float16).item() == 0.0
    w = torch.nn.Parameter(torch.ones(3, dtype=torch.float16))
    opt = torch.optim.AdamW([w], lr=1e-3, eps=1e-8)
    w.grad = torch.tensor([1.0, 0.0, 1e-8], dtype=torch.float16)
    opt.step()
    assert not torch.isfinite(w).all()


@pytest.mark.parametrize("optimizer,name", [("adamw", "AdamW"), ("adam", "Adam")])
def test_adam_over_float16_weights_is_refused_by_name(optimizer, name):
    m = _constant(optimizer=optimizer).half()
    with pytest.raises(TypeError, match=rf"optimizer: float16 weights to train \(precision 16-true\), which {name} "
                                        r"cannot train \(its eps 1e-8 rounds to 0 in float16: the weights became NaN\); "
                                        r"train with --trainer.precision bf16-true or bf16-mixed"):
        m.configure_optimizers()


def test_a_16_true_fit_with_adamw_is_refused_before_any_step_and_sgd_trains():
    x, y, loader = _data(n=40, batch_size=10)
    m = _constant()
    trainer = _trainer(precision="16-true", max_epochs=1, limit_val_batches=0)
    with pytest.raises(TypeError, match="optimizer: float16 weights to train"):  # was a NaN error naming x, after a step
        trainer.fit(m, loader)
    assert trainer.global_step == 0
    sgd = _constant(optimizer="sgd", lr=0.01)
    trainer = _trainer(precision="16-true", max_epochs=1, limit_val_batches=0)
    trainer.fit(sgd, loader)
    assert trainer.global_step == 4 and all(torch.isfinite(p).all() for p in sgd.parameters())
    frozen = _constant(freeze_backbone=True)  # bf16 weights: AdamW's eps 1e-8 is representable there
    _trainer(precision="bf16-true", max_epochs=1, limit_val_batches=0).fit(frozen, loader)
    assert all(torch.isfinite(p).all() for p in frozen.parameters())


# ------------------------------------------------------------------ 5. named learning-rate columns
def test_each_parameter_group_has_a_stable_name():
    m = NeuroViewModule("nv_small_cnn", 10, 1, {"widths": [4, 8]}, classifier_lr=1e-5)
    m.build(torch.randn(2, 1, 8, 8))
    groups = {g["name"]: g for g in m.parameter_groups()}
    assert list(groups) == ["backbone", "classifier", "no_decay"]
    assert groups["classifier"]["params"] == [m.model.classifier.weight] and groups["classifier"]["lr"] == 1e-5
    assert all(p.dim() >= 2 for p in groups["backbone"]["params"]) and all(p.dim() < 2 for p in groups["no_decay"]["params"])
    rnn = NeuroViewModule("nv_gru", num_classes=3, in_channels=2, max_len=12,
                          model_kwargs={"hidden_size": 4, "shared_steps": True, "max_steps": 4})
    shared = {g["name"]: g for g in rnn.parameter_groups()}["shared_steps"]
    assert shared["params"] == [rnn.model.step_shared.weight]


@pytest.mark.parametrize("frozen", [False, True])
def test_the_learning_rate_columns_say_which_group_they_are(tmp_path, frozen):
    _, _, loader = _data(n=20, batch_size=10)
    m = _constant(lr=1e-3, classifier_lr=1e-5, freeze_backbone=frozen)
    trainer = _trainer(max_epochs=1, limit_val_batches=0, logger=CSVLogger(tmp_path, name="logs"),
                       callbacks=[LearningRateMonitor(logging_interval="epoch")])
    trainer.fit(m, loader)
    with open(trainer.logger.log_dir + "/metrics.csv") as f:
        row = next(r for r in csv.DictReader(f) if r.get("lr-AdamW/classifier"))
    lrs = {k: float(v) for k, v in row.items() if k.startswith("lr-") and v}
    # the same column is the same group's rate in both runs (pg1 was the backbone's in one, the classifier's in the other)
    expect = {"lr-AdamW/classifier": 1e-5, "lr-AdamW/no_decay": 1e-3}
    assert lrs == (expect if frozen else {"lr-AdamW/backbone": 1e-3, **expect})


def test_neuroview_fit_under_16_true_is_refused_in_one_line(tmp_path, capsys):
    from pathlib import Path

    from neuroview.cli import main as cli

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "digits_nv_small_cnn.yaml"
    rc = cli(["fit", "--config", str(recipe), "--trainer.precision", "16-true", "--trainer.max_epochs", "1",
              "--model.model_kwargs", "{widths: [4, 8]}", "--trainer.limit_train_batches", "2",
              "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false",
              "--trainer.default_root_dir", str(tmp_path / "run"), "--test_after_fit", "false"])
    err = capsys.readouterr().err
    assert rc == 2 and "neuroview fit: optimizer: float16 weights to train (precision 16-true), which AdamW" in err
    assert "Traceback" not in err
