"""``PreciseBatchNorm`` and the best checkpoint, which fit's own test scores (``--test_ckpt best``, the default):
rewritten with the recomputed statistics when it holds the final weights, else a warning that its test scores
the statistics training left. The statistics expected are computed here by hand from the layer's inputs."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neuroview.training.callbacks import Checkpoint, PreciseBatchNorm


class _Module(pl.LightningModule):
    """A BatchNorm network whose validation logs ``score``: ``sign * epoch``, so the best epoch is chosen here."""

    def __init__(self, sign: float):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
        self.sign = sign

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, _):
        self.log("score", self.sign * float(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _fit(tmp_path, sign: float):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 3, generator=g) * 2 + 1, torch.randint(0, 2, (32,), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)
    m = _Module(sign)
    ckpt = Checkpoint(dirpath=tmp_path, monitor="score", mode="max", save_top_k=1, save_last=True, filename="best")
    trainer = pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", devices=1, logger=False, max_epochs=3,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[PreciseBatchNorm(), ckpt])
    trainer.fit(m, loader, loader)
    with torch.no_grad():  # the plain mean over the split, the mean of the batches' unbiased variances
        pre = m.net[0](x)
    mean, var = pre.mean(0), torch.stack([c.var(0, unbiased=True) for c in pre.split(8)]).mean(0)
    return m, mean, var, torch.load(tmp_path / "best.ckpt", weights_only=False)


def test_the_best_checkpoint_of_the_final_weights_holds_the_recomputed_statistics(tmp_path):
    """The best checkpoint was the last epoch's weights, and fit's test scored it with the statistics training
    left: only last.ckpt was rewritten."""
    m, mean, var, best = _fit(tmp_path, sign=1.0)
    assert best["global_step"] == 12 and best["epoch"] == 2  # the final weights
    torch.testing.assert_close(best["state_dict"]["net.1.running_mean"], mean)
    torch.testing.assert_close(best["state_dict"]["net.1.running_var"], var)
    last = torch.load(tmp_path / "last.ckpt", weights_only=False)
    for k, v in m.state_dict().items():
        assert torch.equal(best["state_dict"][k], v) and torch.equal(last["state_dict"][k], v), k


def test_a_best_checkpoint_of_earlier_weights_is_kept_and_a_test_of_it_is_warned_of(tmp_path):
    with pytest.warns(UserWarning, match=r"PreciseBatchNorm: the best checkpoint .*best.ckpt holds the weights of an "
                                         r"earlier step than the last \(12\), whose statistics were not recomputed: a "
                                         r"test of it \(fit's --test_ckpt best, the default\) scores the statistics "
                                         r"training left; --test_ckpt last \(last.ckpt\) scores the recomputed ones"):
        m, mean, _, best = _fit(tmp_path, sign=-1.0)
    assert best["global_step"] == 4 and best["epoch"] == 0
    assert not torch.allclose(best["state_dict"]["net.1.running_mean"], mean)  # left as it was
    torch.testing.assert_close(m.net[1].running_mean, mean)
