"""The state probe (s18, P5) on training: a recompute of the running statistics that fails part-way left every
normalization with ``momentum=None`` and the statistics of a partial pass, and a ``freeze_backbone`` fit that failed
before training left its "ignore Lightning's eval-mode warning" filter in the process. Each failure must leave things
as they were before the call, compared here with copies taken before it."""

from __future__ import annotations

import contextlib
import warnings
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from neuroview.core.head import CodeNorm
from neuroview.training.callbacks import PreciseBatchNorm, recompute_batchnorm
from neuroview.training.module import NeuroViewModule


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2), CodeNorm(2)).train()
    for _ in range(5):  # statistics that training left
        net(torch.randn(8, 3) * 2 + 1)
    return net


def _failing(first, error: BaseException):
    """A loader that gives ``first`` and then fails (a worker error, a vanished file, Ctrl-C)."""
    yield first
    raise error


def _state(net: nn.Module) -> dict:
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("error", [RuntimeError("worker died"), KeyboardInterrupt()])
def test_a_recompute_that_fails_part_way_leaves_every_statistic_and_momentum_as_it_was(error):
    """Before: momentum None for good (a cumulative average for all later training) and the statistics of the one batch
    read (eval logits 1.43 off)."""
    net = _net()
    bn, norm = net[1], net[4]
    before, x = _state(net), torch.randn(6, 3)
    with torch.no_grad():
        ref = net.eval()(x)
    net.train()
    with pytest.raises(type(error)):
        recompute_batchnorm(net, _failing(torch.randn(8, 3), error))
    assert bn.momentum == 0.1 and norm.momentum == 0.1
    after = _state(net)
    assert after.keys() == before.keys()
    for k in before:
        assert torch.equal(after[k], before[k]), k
    with torch.no_grad():
        assert torch.equal(net.eval()(x), ref)


def test_a_recompute_that_fails_in_the_forward_pass_leaves_the_statistics():
    net = _net()
    before = _state(net)
    bad = torch.randn(8, 3)

    def forward(batch):
        if batch is bad:
            raise ValueError("x: contains NaN")
        return net(batch)

    with pytest.raises(ValueError, match="contains NaN"):
        recompute_batchnorm(net, [torch.randn(8, 3), bad], forward)
    assert all(torch.equal(v, before[k]) for k, v in _state(net).items())
    assert net[1].momentum == 0.1 and net[4].momentum == 0.1


def test_precise_batchnorm_that_fails_leaves_the_module_s_mode_and_statistics():
    net = _net().eval()
    before = _state(net)
    trainer = SimpleNamespace(train_dataloader=_failing((torch.randn(8, 3), torch.zeros(8)), OSError("file vanished")),
                              datamodule=None, strategy=SimpleNamespace(batch_to_device=lambda b: b),
                              precision_plugin=SimpleNamespace(forward_context=contextlib.nullcontext))
    with pytest.raises(OSError, match="file vanished"):
        PreciseBatchNorm().on_train_end(trainer, net)
    assert not any(m.training for m in net.modules())  # in eval mode, as it was
    assert all(torch.equal(v, before[k]) for k, v in _state(net).items())


# ------------------------------------------------------------ freeze_backbone's warning filter on a failed fit
class _Vanished(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        raise OSError("validation file vanished")


class _Plain(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5))

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), 0.1)


def _trainer(tmp_path) -> pl.Trainer:
    return pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path))


def test_a_freeze_backbone_fit_that_fails_before_training_leaves_no_warning_filter(tmp_path):
    """Before: the sanity check's error left the filter in warnings.filters, and a later fit of another model left in
    eval mode by mistake was no longer warned of."""
    x, y = torch.randn(32, 1, 8, 8), torch.arange(32) % 2
    module = NeuroViewModule("nv_small_cnn", num_classes=2, in_channels=1, model_kwargs={"widths": [4]},
                             freeze_backbone=True).build(x[:4])
    with warnings.catch_warnings():
        before = list(warnings.filters)
        with pytest.raises(OSError, match="validation file vanished"):
            _trainer(tmp_path).fit(module, DataLoader(TensorDataset(x, y), batch_size=8),
                                   DataLoader(_Vanished(), batch_size=2))
        left = [f for f in warnings.filters if f not in before]  # (Lightning's own run adds a ResourceWarning one)
        assert not [f for f in left if f[1] is not None and "eval mode" in f[1].pattern], left
        plain = _Plain()
        plain.net.eval()  # the mistake Lightning warns of
        with warnings.catch_warnings(record=True) as caught:  # the filters as they are: a leaked "ignore" wins
            _trainer(tmp_path).fit(plain, DataLoader(TensorDataset(torch.randn(8, 4), torch.arange(8) % 2), batch_size=4))
        assert any("in eval mode at the start of training" in str(w.message) for w in caught)


def test_a_freeze_backbone_fit_that_trains_is_not_warned_of_its_backbone_and_leaves_no_filter(tmp_path):
    """The filter's purpose kept: the frozen backbone is in eval mode on purpose, and that fit is not warned of it."""
    x, y = torch.randn(32, 1, 8, 8), torch.arange(32) % 2
    module = NeuroViewModule("nv_small_cnn", num_classes=2, in_channels=1, model_kwargs={"widths": [4]},
                             freeze_backbone=True, scheduler="none").build(x[:4])
    with warnings.catch_warnings(record=True) as caught:
        before = list(warnings.filters)
        trainer = _trainer(tmp_path)
        trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=8))
        left = [f for f in warnings.filters if f not in before]
    assert trainer.global_step == 4
    assert not any("in eval mode at the start of training" in str(w.message) for w in caught)
    assert not [f for f in left if f[1] is not None and "eval mode" in f[1].pattern], left
