"""Whole batches (issue 13): one gather per batch, and CIFAR's crop and flip on whole batches.

The augmentation is checked exactly on hand-made inputs against the per-sample definition it
replaces (pad, crop at an offset, flip), its random offsets are recovered from ramp images to
check their distribution, and the CIFAR data module is checked for where it augments (training
batches only, after the transfer) and for a reproducible seeded epoch.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from neuroview.data import CIFAR10DataModule
from neuroview.data.batches import ArrayDataset, crop_flip, random_crop_flip
from neuroview.training.module import NeuroViewModule
from datafiles import make_cifar

PAD = 4


def _reference(x: torch.Tensor, i: int, j: int, flip: bool, pad: int = PAD) -> torch.Tensor:
    """The per-sample augmentation CIFAR10DataModule used before: pad, crop at (i, j), flip."""
    h, w = x.shape[-2:]
    out = F.pad(x, (pad, pad, pad, pad))[:, i:i + h, j:j + w]
    return out.flip(-1) if flip else out


def test_crop_at_the_pad_offset_without_flip_is_the_identity():
    x = torch.randn(5, 3, 8, 8)
    out = crop_flip(x, torch.full((5, 2), PAD), torch.zeros(5, dtype=torch.bool), PAD)
    assert torch.equal(out, x)


def test_flip_is_torch_flip():
    x = torch.randn(5, 3, 8, 8)
    out = crop_flip(x, torch.full((5, 2), PAD), torch.ones(5, dtype=torch.bool), PAD)
    assert torch.equal(out, torch.flip(x, [-1]))


def test_every_offset_and_flip_matches_the_per_sample_definition():
    x = torch.randn(2 * 81, 3, 6, 7)
    grid = torch.tensor([(i, j) for i in range(2 * PAD + 1) for j in range(2 * PAD + 1)])
    offsets, flip = torch.cat([grid, grid]), torch.arange(2 * 81) >= 81
    out = crop_flip(x, offsets, flip, PAD)
    for b in range(len(x)):
        assert torch.equal(out[b], _reference(x[b], *offsets[b].tolist(), bool(flip[b])))
    corner = crop_flip(x, torch.zeros(162, 2, dtype=torch.long), torch.zeros(162, dtype=torch.bool), PAD)
    assert torch.equal(corner[:, :, :PAD], torch.zeros(162, 3, PAD, 7))  # the padding is zeros


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.uint8])
def test_shape_dtype_and_device_are_kept(dtype):
    x = (torch.rand(4, 3, 32, 32) * 100).to(dtype)
    out = random_crop_flip(x, PAD, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device


def _recover(out: torch.Tensor, pad: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (offsets, flip) of crops of the ramp image of :func:`_ramps`, read at the centre."""
    h, w = out.shape[-2:]
    hc, wc = h // 2, w // 2
    flip = out[:, 1, hc, wc + 1] < out[:, 1, hc, wc]  # a flipped crop's columns run backwards
    i = out[:, 0, hc, wc].long() - 1 - hc + pad
    j = out[:, 1, hc, wc].long() - 1 - torch.where(flip, w - 1 - wc, wc) + pad
    return torch.stack([i, j], 1), flip


def _ramps(b: int, h: int = 16, w: int = 16) -> torch.Tensor:
    rows = torch.arange(1, h + 1, dtype=torch.float32).view(h, 1).expand(h, w)
    cols = torch.arange(1, w + 1, dtype=torch.float32).view(1, w).expand(h, w)
    return torch.stack([rows, cols, rows * 0]).expand(b, 3, h, w).clone()


def test_offsets_are_per_sample_uniform_and_flips_fair():
    x = _ramps(6000)
    offsets, flip = _recover(random_crop_flip(x, PAD, torch.Generator().manual_seed(1)))
    again, _ = _recover(random_crop_flip(x, PAD, torch.Generator().manual_seed(1)))
    assert torch.equal(offsets, again)  # a fixed generator fixes every draw
    assert len({tuple(o) for o in offsets[:16].tolist()}) > 8  # one image, many crops: offsets differ per sample
    for axis in (0, 1):
        counts = torch.bincount(offsets[:, axis], minlength=2 * PAD + 1)
        assert len(counts) == 2 * PAD + 1 and int(counts.min()) > 6000 / 9 * 0.8  # uniform over 0..2*pad
    assert abs(flip.float().mean().item() - 0.5) < 0.03
    # and the recovered draws reproduce the output exactly
    assert torch.equal(crop_flip(x, offsets, flip, PAD), random_crop_flip(x, PAD, torch.Generator().manual_seed(1)))


# ------------------------------------------------------------------- the data module
@pytest.fixture
def cifar(tmp_path) -> CIFAR10DataModule:
    make_cifar(tmp_path)
    dm = CIFAR10DataModule(root=str(tmp_path), batch_size=16)
    dm.setup("fit")
    return dm


def test_batches_are_gathered_whole_not_sample_by_sample(cifar, monkeypatch):
    def one_sample(self, i):
        raise AssertionError("a batch was read sample by sample")

    monkeypatch.setattr(ArrayDataset, "__getitem__", one_sample)
    batches = list(cifar.train_dataloader()) + list(cifar.val_dataloader())
    assert [tuple(b[0].shape) for b in batches] == [(16, 3, 32, 32)] * 5 + [(10, 3, 32, 32)]
    assert all(b[0].dtype == torch.float32 and b[1].dtype == torch.long for b in batches)


def test_augmentation_only_while_training(cifar):
    batch = next(iter(cifar.val_dataloader()))
    assert cifar.on_after_batch_transfer(batch, 0) is batch  # no trainer: as is
    cifar.trainer = SimpleNamespace(training=False)
    assert cifar.on_after_batch_transfer(batch, 0) is batch  # validating, testing, predicting
    cifar.trainer = SimpleNamespace(training=True)
    torch.manual_seed(0)
    x, y = cifar.on_after_batch_transfer(batch, 0)
    assert x.shape == batch[0].shape and torch.equal(y, batch[1]) and not torch.equal(x, batch[0])
    cifar.augment = False
    assert cifar.on_after_batch_transfer(batch, 0) is batch


def test_a_seeded_epoch_is_reproducible(cifar):
    cifar.trainer = SimpleNamespace(training=True)

    def epoch(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return torch.cat([cifar.on_after_batch_transfer(b, 0)[0] for b in cifar.train_dataloader()])

    first = epoch(0)
    assert torch.equal(first, epoch(0)) and not torch.equal(first, epoch(1))


def test_the_trainer_augments_training_batches_only(cifar, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(cifar, "augment_batch", lambda x, generator=None: calls.append(x.shape) or x)
    trainer = pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, max_epochs=1, limit_train_batches=2,
                         limit_val_batches=1, num_sanity_val_steps=1)
    trainer.fit(NeuroViewModule("small_cnn", 10, 3, model_kwargs={"widths": [4, 8]}), cifar)
    assert calls == [(16, 3, 32, 32)] * 2  # not the sanity check's nor the validation's batch


def test_on_device_needs_the_main_process():
    with pytest.raises(ValueError, match="num_workers"):
        CIFAR10DataModule(on_device=True, num_workers=2)
    # on a CPU trainer it changes nothing
    assert CIFAR10DataModule(on_device=True)._data_device() is None


def test_on_device_copies_each_split_once_and_reads_the_same_batches(cifar, monkeypatch):
    # no GPU here: stand the CPU in for the trainer's device to exercise the copy and its cache
    torch.manual_seed(0)
    plain = list(cifar.val_dataloader())
    monkeypatch.setattr(cifar, "_data_device", lambda: torch.device("cpu"))
    held = cifar._dataset("val")
    assert held is cifar._dataset("val")
    torch.manual_seed(0)
    assert all(torch.equal(a, b) for pa, pb in zip(plain, cifar.val_dataloader()) for a, b in zip(pa, pb))
