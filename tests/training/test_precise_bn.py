"""``PreciseBatchNorm``: the final weights' BatchNorm statistics, recomputed over the training split.

Checked against statistics computed here by hand from the layer's inputs (a plain mean over the
split, the mean of the batches' unbiased variances), not by running the callback's own code."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neuroview.core.head import CodeNorm
from neuroview.training.callbacks import Checkpoint, PreciseBatchNorm, recompute_batchnorm


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2), CodeNorm(2))


def _expected(inputs: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over every row, and the mean of each batch's unbiased variance (equal batches)."""
    chunks = inputs.split(batch)
    return inputs.mean(0), torch.stack([c.var(0, unbiased=True) for c in chunks]).mean(0)


def test_recompute_gives_the_plain_average_of_the_pass_and_keeps_momentum_and_frozen_layers():
    net = _net().train()
    x = torch.randn(32, 3) * 3 + 1
    for _ in range(5):  # statistics that training would leave: an exponential average of other data
        net(torch.randn(8, 3))
    frozen = nn.BatchNorm1d(2).eval()
    frozen.running_mean.fill_(7.0)
    model = nn.Sequential(net, frozen)
    got = recompute_batchnorm(model, x.split(8))
    bn, norm = net[1], net[4]
    assert got == [bn, norm]  # the frozen (eval-mode) layer is not touched
    assert torch.all(frozen.running_mean == 7.0)
    with torch.no_grad():
        pre_bn = net[0](x)
        mean, var = _expected(pre_bn, 8)
        torch.testing.assert_close(bn.running_mean, mean)
        torch.testing.assert_close(bn.running_var, var)
        # the head's normalization reads the batch-normalized features, batch by batch as in training
        feats = torch.cat([net[3](net[2]((c - c.mean(0)) / torch.sqrt(c.var(0, unbiased=False) + bn.eps)
                                         * bn.weight + bn.bias)) for c in pre_bn.split(8)])
        mean, var = _expected(feats, 8)
        torch.testing.assert_close(norm.running_mean, mean)
        torch.testing.assert_close(norm.running_var, var)
    assert bn.momentum == 0.1 and norm.momentum == 0.1 and int(bn.num_batches_tracked) == 4


def test_recompute_with_no_batch_raises_and_leaves_the_statistics():
    net = _net().train()
    net(torch.randn(8, 3))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match="batches: expected at least one batch"):
        recompute_batchnorm(net, [])
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert net[1].momentum == 0.1


class _Module(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = _net()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


@pytest.mark.parametrize("max_batches", [None, 2])
def test_the_callback_recomputes_for_the_final_weights_and_last_ckpt_holds_them(tmp_path, max_batches):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 3, generator=g) * 2 + 1, torch.randint(0, 2, (32,), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)
    m = _Module()
    ckpt = Checkpoint(dirpath=tmp_path, save_last=True, save_top_k=0)
    trainer = pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", devices=1, logger=False, max_epochs=3,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[PreciseBatchNorm(max_batches=max_batches), ckpt])
    trainer.fit(m, loader)
    bn = m.net[1]
    seen = x[: 8 * (max_batches or 4)]
    with torch.no_grad():
        mean, var = _expected(m.net[0](seen), 8)
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, var)
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)["state_dict"]
    for k, v in m.state_dict().items():
        assert torch.equal(saved[k], v), k  # the file tested with `--ckpt_path last` is the module's


def test_last_ckpt_keeps_the_epoch_and_step_it_was_saved_at(tmp_path):
    """The rewrite changes the statistics and nothing else: a run with the callback leaves a last.ckpt
    whose epoch, step and loop state are those of the same run without it (a rewrite by saving the
    whole trainer again recorded the epoch after the last one, once training had ended)."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 3, generator=g) * 2 + 1, torch.randint(0, 2, (32,), generator=g)
    files = {}
    for name, extra in (("plain", []), ("precise", [PreciseBatchNorm()])):
        torch.manual_seed(0)
        m, ckpt = _Module(), Checkpoint(dirpath=tmp_path / name, save_last=True, save_top_k=0)
        pl.Trainer(default_root_dir=tmp_path / name, accelerator="cpu", devices=1, logger=False, max_epochs=3,
                   enable_progress_bar=False, enable_model_summary=False, callbacks=[*extra, ckpt]).fit(
            m, DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False))
        files[name] = torch.load(tmp_path / name / "last.ckpt", weights_only=False)
        files[name + "_module"] = m.state_dict()
    plain, precise = files["plain"], files["precise"]
    assert (precise["epoch"], precise["global_step"]) == (plain["epoch"], plain["global_step"]) == (2, 12)
    assert precise["loops"] == plain["loops"]
    for k, v in precise["state_dict"].items():
        assert torch.equal(v, files["precise_module"][k]), k  # the statistics tested are the file's
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(v, plain["state_dict"][k]), k  # the weights are the run's, untouched
    assert not torch.equal(precise["state_dict"]["net.1.running_mean"], plain["state_dict"]["net.1.running_mean"])


def test_a_sharded_strategy_is_refused_by_name():
    from types import SimpleNamespace

    from pytorch_lightning.strategies import FSDPStrategy

    with pytest.raises(ValueError, match="PreciseBatchNorm: supports one device and DDP, got the strategy FSDPStrategy"):
        PreciseBatchNorm().on_fit_start(SimpleNamespace(strategy=FSDPStrategy()), None)


def test_max_batches_must_be_a_positive_int():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_batches: expected None or an int >= 1"):
            PreciseBatchNorm(max_batches=bad)
