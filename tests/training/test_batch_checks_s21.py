"""A user's LightningDataModule that overrides ``on_before_batch_transfer`` (a common place for normalisation or
augmentation) made Lightning call its hook instead of NeuroViewModule's, and with it every batch check the module
made there was skipped: one-hot labels trained without a word and scored val_acc 0.0, labels counted from 1 crashed
inside torchmetrics, an ``(x, y, other)`` batch trained against ``other``. The checks now run after whichever hook
Lightning calls, on the batch the steps are given."""

from __future__ import annotations

import warnings

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from neuroview.training.loop_guards import soft_labels
from neuroview.training.module import NeuroViewModule

TINY = {"widths": [4, 8]}


def _data(n: int = 48):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 8, 8, generator=g), torch.arange(n) % 10  # every class, labels known by construction


class _DM(pl.LightningDataModule):
    def __init__(self, *tensors):
        super().__init__()
        self.tensors = tensors

    def train_dataloader(self):
        return DataLoader(TensorDataset(*self.tensors), batch_size=16)

    def val_dataloader(self):
        return DataLoader(TensorDataset(*self.tensors), batch_size=16)


class _Hooked(_DM):
    """The user's normalisation step: a pass-through of the batch's items, x scaled by 1."""

    def on_before_batch_transfer(self, batch, dataloader_idx):
        x, *rest = batch
        return (x * 1.0, *rest)


class _ToIndices(_DM):
    """The user's hook that turns one-hot rows into class indices: what the steps are given is what is checked."""

    def on_before_batch_transfer(self, batch, dataloader_idx):
        x, y = batch
        return x, y.argmax(1)


def _fit(module, dm) -> pl.Trainer:
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, enable_progress_bar=False,
                         logger=False, enable_checkpointing=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, dm)
    return trainer


def _module(**kw) -> NeuroViewModule:
    torch.manual_seed(0)
    return NeuroViewModule("nv_small_cnn", num_classes=10, model_kwargs=TINY, **kw)


@pytest.mark.parametrize("dm_class", [_DM, _Hooked], ids=["module_hook", "data_module_hook"])
@pytest.mark.parametrize("labels, said", [
    ("onehot", r"y: expected one class index per sample, shape \[16\], got labels of shape \(16, 10\)"),
    ("from1", r"y: labels must lie in \[0, 10\) .*, got \[1, .*10\] \(labels counted from 1\? pass y - 1\)"),
], ids=["onehot", "from1"])
def test_label_checks_run_whatever_hook_the_data_module_overrides(dm_class, labels, said):
    x, y = _data()
    bad = torch.nn.functional.one_hot(y, 10).float() if labels == "onehot" else y + 1
    with pytest.raises(ValueError, match=said):
        _fit(_module(), dm_class(x, bad))


def test_a_batch_of_three_items_is_checked_behind_a_data_module_hook():
    """(x, y, other) is read as (x, lengths, y): a CNN's middle item must be lengths, or the batch is refused."""
    x, y = _data()
    other = torch.rand(len(y))  # floats: no lengths
    with pytest.raises(ValueError, match=r"batch: a batch of 3 items is read as \(x, lengths, y\)"):
        _fit(_module(), _Hooked(x, y, other))


class _Seen(NeuroViewModule):
    """Records the labels each training step is given."""

    def training_step(self, batch, batch_idx):
        self.seen = [*getattr(self, "seen", []), batch[-1].clone()]
        return super().training_step(batch, batch_idx)


def test_the_checks_read_the_batch_the_data_module_hook_made_and_give_the_steps_their_labels():
    x, y = _data()
    torch.manual_seed(0)
    m = _Seen("nv_small_cnn", num_classes=10, model_kwargs=TINY)
    _fit(m, _ToIndices(x, torch.nn.functional.one_hot(y, 10).float()))  # one-hot into the hook, indices out: fine
    assert [s.tolist() for s in m.seen] == [y[:16].tolist(), y[16:32].tolist()]
    torch.manual_seed(0)
    m = _Seen("nv_small_cnn", num_classes=10, model_kwargs=TINY)
    _fit(m, _Hooked(x, y.int()))  # int32 labels behind the user's hook: the steps get them as int64, as without it
    assert [s.dtype for s in m.seen] == [torch.int64, torch.int64]
    assert [s.tolist() for s in m.seen] == [y[:16].tolist(), y[16:32].tolist()]


class _OwnHook(NeuroViewModule):
    """A user's subclass whose own hook does not call the module's."""

    def on_before_batch_transfer(self, batch, dataloader_idx):
        x, y = batch
        return x * 1.0, y


def test_a_subclass_hook_that_skips_the_modules_still_has_its_batches_checked():
    x, y = _data()
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"y: labels must lie in \[0, 10\)"):
        _fit(_OwnHook("nv_small_cnn", num_classes=10, model_kwargs=TINY), _DM(x, y + 1))


# ---- review R7 of 806968e: what a data module's hook returns that trained before the checks ran behind it


class _SkipNaN(_DM):
    """The user's hook drops a batch by returning None, which Lightning skips ("train_dataloader yielded None")."""

    def on_before_batch_transfer(self, batch, dataloader_idx):
        return None if torch.isnan(batch[0]).any() else batch


def test_a_data_module_hook_that_drops_a_batch_as_none_leaves_it_to_lightning_to_skip():
    x, y = _data(64)
    x[16:32] = float("nan")  # the second of four batches of 16
    trainer = pl.Trainer(max_epochs=1, enable_progress_bar=False, logger=False, enable_checkpointing=False,
                         enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0, limit_val_batches=0)
    with pytest.warns(UserWarning, match="train_dataloader yielded None"):
        trainer.fit(_module(), _SkipNaN(x, y))
    assert trainer.global_step == 3  # 4 batches, the dropped one skipped


class _Mixup(_DM):
    """The user's mixup with ``lam`` 0.7 on training batches (or on all, ``everywhere``): [B, 10] class probabilities."""

    everywhere = False

    def on_before_batch_transfer(self, batch, dataloader_idx):
        x, y = batch
        if not (self.trainer.training or self.everywhere):
            return batch
        soft = torch.nn.functional.one_hot(y, 10).float()
        return 0.7 * x + 0.3 * x.flip(0), 0.7 * soft + 0.3 * soft.flip(0)


def test_soft_labels_a_data_module_hook_makes_for_training_train_as_they_did():
    x, y = _data()
    torch.manual_seed(0)
    m = _Seen("nv_small_cnn", num_classes=10, model_kwargs=TINY)
    trainer = _fit(m, _Mixup(x, y))
    first = torch.zeros(16, 10)
    first[torch.arange(16), y[:16]] += 0.7
    first[torch.arange(16), y[:16].flip(0)] += 0.3  # built by hand: the rows the steps must be given
    assert len(m.seen) == 2 and torch.allclose(m.seen[0], first)
    assert "val_acc" in trainer.callback_metrics and "train_loss_epoch" in trainer.callback_metrics
    assert "train_acc" not in trainer.callback_metrics  # no class to count a soft batch by (it logged 0.0)


def test_soft_labels_a_data_module_hook_makes_for_validation_are_refused_naming_the_hook():
    x, y = _data()
    dm = _Mixup(x, y)
    dm.everywhere = True  # val_acc would score rows of probabilities
    with pytest.raises(ValueError, match=r"y: expected integer class labels.*not whole numbers.* \(the batch as "
                                         r"_Mixup\.on_before_batch_transfer returned it\)"):
        _fit(_module(), dm)


class _Doubled(_DM):
    """The user's hook whose [B, 10] rows are no probabilities (each sums to 2): refused, not trained."""

    def on_before_batch_transfer(self, batch, dataloader_idx):
        x, y = batch
        if not self.trainer.training:
            return batch
        return x, 2.0 * torch.nn.functional.one_hot(y, 10).float()


def test_training_rows_that_are_no_probabilities_are_refused_naming_the_hook():
    """Said as soft labels (review S7, finding 1): "expected one class index per sample" did not say the rows were
    read as class probabilities and why they were refused."""
    x, y = _data()
    with pytest.raises(ValueError, match=r"y: a training batch's \[16, 10\] float rows are read as class probabilities "
                                         r"\(soft labels.*row 0 sums to 2: give rows of probabilities, or one class "
                                         r"index per sample, shape \[16\] \(the batch as "
                                         r"_Doubled\.on_before_batch_transfer returned it\)"):
        _fit(_module(), _Doubled(x, y))


def test_a_refusal_behind_a_data_module_hook_names_the_hook_and_one_without_it_does_not():
    x, y = _data()
    with pytest.raises(ValueError, match=r"counted from 1\? pass y - 1\) \(the batch as _Hooked\.on_before_batch_"):
        _fit(_module(), _Hooked(x, y + 1))
    with pytest.raises(ValueError, match=r"counted from 1\? pass y - 1\)$"):
        _fit(_module(), _DM(x, y + 1))


# ---- review S7 of c6ea775


class _Mix(_DM):
    """The user's mixup of each training batch with its reverse, weights ``lam`` and ``rest`` (1 - lam unless given),
    its rows sent in ``dtype`` (bf16: half the bytes to the device)."""

    lam, rest, dtype = 0.37, None, torch.float32

    def on_before_batch_transfer(self, batch, dataloader_idx):
        x, y = batch
        if not self.trainer.training:
            return batch
        soft = torch.nn.functional.one_hot(y, 10).float()
        rest = 1 - self.lam if self.rest is None else self.rest
        mixed = self.lam * soft + rest * soft.flip(0)
        return (self.lam * x + rest * x.flip(0)).to(self.dtype), mixed.to(self.dtype)


def test_bf16_mixup_rows_train_as_the_hook_made_them():
    """bf16 rows (0.37, 0.63) round to 0.369140625 + 0.62890625 = 0.998046875, 2e-3 off 1: refused at c6ea775 as
    "expected integer class labels" (40% of Beta(0.4, 0.4) draws). The sum is read to within bf16's own rounding."""
    x, y = _data()
    dm = _Mix(x, y)
    dm.dtype = torch.bfloat16
    torch.manual_seed(0)
    m = _Seen("nv_small_cnn", num_classes=10, model_kwargs=TINY)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, enable_progress_bar=False,
                         logger=False, enable_checkpointing=False, enable_model_summary=False, accelerator="cpu",
                         precision="bf16-true")
    trainer.fit(m, dm)
    first = torch.zeros(16, 10)
    first[torch.arange(16), y[:16]] = 0.369140625  # bf16(0.37): 0.37 lies between 0.369140625 and 0.37109375
    first[torch.arange(16), y[:16].flip(0)] = 0.62890625  # bf16(0.63): between 0.62890625 and 0.6328125
    assert len(m.seen) == 2 and m.seen[0].dtype == torch.bfloat16
    assert torch.equal(m.seen[0].float(), first)
    assert abs(float(first.sum(1)[0]) - 0.998046875) < 1e-9  # the case: more than 1e-3 off 1
    assert torch.isfinite(trainer.callback_metrics["train_loss_epoch"])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def test_training_rows_further_off_one_than_their_dtype_rounds_are_refused_as_soft_labels(dtype):
    x, y = _data()
    dm = _Mix(x, y)
    dm.lam, dm.rest, dm.dtype = 0.3, 0.6, dtype  # each row sums to 0.9 (bf16: 0.30078125 + 0.6015625 = 0.90234375)
    said = "0.9" if dtype == torch.float32 else "0.902344"
    with pytest.raises(ValueError, match=rf"y: a training batch's \[16, 10\] float rows are read as class probabilities "
                                         rf".*row 0 sums to {said}: .* \(the batch as _Mix\.on_before_batch_transfer"):
        _fit(_module(), dm)


def _fit_monitoring(module, dm, callback, tmp_path) -> pl.Trainer:
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=1, enable_progress_bar=False,
                         logger=False, enable_model_summary=False, accelerator="cpu", callbacks=[callback],
                         default_root_dir=str(tmp_path))
    trainer.fit(module, dm)
    return trainer


@pytest.mark.parametrize("kind", ["checkpoint", "early_stopping"])
def test_a_train_acc_monitor_is_refused_by_name_after_an_epoch_of_soft_labels_only(kind, tmp_path):
    """Every training batch soft: train_acc has nothing to count, and Lightning's error named neither cause nor fix
    ("could not find the monitored key ... Did you call log('train_acc')")."""
    x, y = _data()
    cb = (pl.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ck"), monitor="train_acc", mode="max")
          if kind == "checkpoint" else pl.callbacks.EarlyStopping(monitor="train_acc", mode="max"))
    name = "ModelCheckpoint" if kind == "checkpoint" else "EarlyStopping"
    with pytest.raises(ValueError, match=rf"trainer.callbacks: {name}\(monitor='train_acc'\) reads the training "
                                         r"accuracy, which counts batches of class indices only, and every training "
                                         r"batch of epoch 0 held soft labels .*monitor 'train_loss_epoch'"):
        _fit_monitoring(_module(), _Mix(x, y), cb, tmp_path)


class _HalfMix(_Mix):
    """Mixup on every other training batch (p = 0.5 in a user's schedule)."""

    calls = 0

    def on_before_batch_transfer(self, batch, dataloader_idx):
        if self.trainer.training:
            self.calls += 1
            if self.calls % 2:
                return batch
        return super().on_before_batch_transfer(batch, dataloader_idx)


def test_a_train_acc_monitor_runs_where_some_batches_of_each_epoch_have_class_indices(tmp_path):
    x, y = _data()
    cb = pl.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ck"), monitor="train_acc", mode="max")
    trainer = _fit_monitoring(_module(), _HalfMix(x, y), cb, tmp_path)
    assert trainer.global_step == 4 and "train_acc" in trainer.callback_metrics and cb.best_model_path
    cb = pl.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ck2"), monitor="train_loss_epoch", mode="min")
    _fit_monitoring(_module(), _Mix(x, y), cb, tmp_path)  # every batch soft, another monitor: trains
    assert cb.best_model_path


class _Norm(NeuroViewModule):
    """A user's subclass whose own hook scales x by its largest magnitude, without calling the module's; a bare x too."""

    def on_before_batch_transfer(self, batch, dataloader_idx):
        x, *rest = batch if isinstance(batch, (tuple, list)) else (batch,)
        return (x / x.abs().amax(), *rest) if rest else x / x.abs().amax()


def test_a_subclass_hook_that_skips_super_is_checked_outside_a_trainer():
    """Lightning's to_torchscript(method="trace") and to_onnx call the module's _on_before_batch_transfer without a
    trainer: a subclass hook that skips super() got "_OwnHook is not attached to a `Trainer`" there."""
    x, y = _data(16)
    torch.manual_seed(0)
    m = _Norm("nv_small_cnn", num_classes=10, model_kwargs=TINY).build(x)
    out = m._on_before_batch_transfer((x, y))
    assert torch.equal(out[0], x / x.abs().max()) and torch.equal(out[1], y)  # the hook's x, labels as they came
    with pytest.raises(ValueError, match=r"y: labels must lie in \[0, 10\).* \(the batch as _Norm\.on_before_"):
        m._on_before_batch_transfer((x, y + 1))
    with pytest.raises(TypeError, match=r"torch\.jit\.trace: a NeuroViewCNN reads its codes through hooks"):
        m.to_torchscript(method="trace", example_inputs=x[:2])


class _MixFirstEpoch(_Mix):
    """Mixup in epoch 0 only, then class indices (timm's ``mixup_off_epoch``)."""

    def on_before_batch_transfer(self, batch, dataloader_idx):
        if self.trainer.training and self.trainer.current_epoch >= 1:
            return batch
        return super().on_before_batch_transfer(batch, dataloader_idx)


def _fit_three(callback, tmp_path, val: bool) -> pl.Trainer:
    x, y = _data()
    trainer = pl.Trainer(max_epochs=3, limit_train_batches=2, limit_val_batches=1 if val else 0, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", callbacks=[callback],
                         default_root_dir=str(tmp_path), num_sanity_val_steps=0)
    trainer.fit(_module(), _MixFirstEpoch(x, y))
    return trainer


@pytest.mark.parametrize("case", ["checkpoint_no_validation", "checkpoint_every_2_epochs", "early_stopping_not_strict"])
def test_a_train_acc_monitor_runs_where_lightning_only_warns_or_reads_it_after_the_mixup_epochs(case, tmp_path):
    """Lightning warns (a ModelCheckpoint before any validation run, a non-strict EarlyStopping) or reads no monitor at
    epoch 0 (every_n_epochs=2): those fits ran at c6ea775, and were refused at e163c3d. Epochs 1 and 2 hold class
    indices, so train_acc is logged there, and the checkpoint kept is one of theirs (step 4 or 6, never 2)."""
    cb = {"checkpoint_no_validation": lambda: pl.callbacks.ModelCheckpoint(
              dirpath=str(tmp_path / "ck"), monitor="train_acc", mode="max"),
          "checkpoint_every_2_epochs": lambda: pl.callbacks.ModelCheckpoint(
              dirpath=str(tmp_path / "ck"), monitor="train_acc", mode="max", every_n_epochs=2),
          "early_stopping_not_strict": lambda: pl.callbacks.EarlyStopping(
              monitor="train_acc", mode="max", strict=False, patience=5)}[case]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = _fit_three(cb, tmp_path, val=case == "checkpoint_every_2_epochs")
    assert trainer.current_epoch == 3 and trainer.global_step == 6 and "train_acc" in trainer.callback_metrics
    if case != "early_stopping_not_strict":
        assert cb.best_model_path.rsplit("/", 1)[-1] in ("epoch=1-step=4.ckpt", "epoch=2-step=6.ckpt")


def test_a_strict_early_stop_on_train_acc_without_validation_is_refused_after_the_mixup_epoch(tmp_path):
    """Lightning raises here (strict, checked at the train epoch's end: "not available"): refused by name instead."""
    cb = pl.callbacks.EarlyStopping(monitor="train_acc", mode="max")
    with pytest.raises(ValueError, match=r"EarlyStopping\(monitor='train_acc'\) reads the training accuracy.* epoch 0 "):
        _fit_three(cb, tmp_path, val=False)


def test_bf16_rows_a_fortieth_off_one_are_refused_as_in_float32():
    """bf16 rounds each entry by at most half its epsilon (2**-8 of 1), so a row summing to 1 stays within one epsilon;
    0.3 + 0.675 (0.975 by hand) is 0.0234 off 1 in bf16 (0.30078125 + 0.67578125): trained at 4 epsilons (0.03125)."""
    y = torch.tensor([[0.3, 0.675]])
    assert not soft_labels(y, 2) and not soft_labels(y.bfloat16(), 2)
    assert abs(float(y.bfloat16().double().sum()) - 0.9765625) < 1e-12
    lam = torch.linspace(0, 1, 1001)
    assert soft_labels(torch.stack([lam, 1 - lam], 1).bfloat16(), 2)  # every mixup pair, rounded, still trains
