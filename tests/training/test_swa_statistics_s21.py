"""Stochastic weight averaging and the head's ``CodeNorm`` (probe P4, finding 2).

``torch.optim.swa_utils.update_bn`` and Lightning's ``StochasticWeightAveraging`` recompute only ``_BatchNorm``
modules, and ``CodeNorm`` is none (on purpose: ``convert_sync_batchnorm`` would replace it): after SWA it keeps the
statistics of the weights it was copied with. The project's step for it is ``recompute_batchnorm(swa.module, loader)``
(``PreciseBatchNorm`` under Lightning). It failed on the batches a loader gives (``(x, y)``, which update_bn reads), and
a ``PreciseBatchNorm`` listed before ``StochasticWeightAveraging`` recomputed the statistics of the weights SWA then
replaced. Known answers: a hand-set backbone whose codes are counted here by hand."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import StochasticWeightAveraging
from torch import nn
from torch.optim.swa_utils import AveragedModel

import neuroview as nv
from neuroview.training.callbacks import PreciseBatchNorm, recompute_batchnorm

X = torch.tensor([[[1.0, 2.0, -1.0, 3.0]], [[-1.0, -2.0, -3.0, 4.0]],
                  [[1.0, 1.0, 1.0, -1.0]], [[-1.0, -1.0, 2.0, -2.0]]])
Y = torch.tensor([0, 1, 2, 0])


def _net(weight):
    conv = nn.Conv1d(1, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weight)[:, None, None])
    return nv.wrap(nn.Sequential(conv, nn.ReLU()), num_classes=3, input_shape=(1, 4))


def test_recompute_batchnorm_reads_a_loaders_batches_after_swa():
    net = _net([1.0, -1.0]).train()
    for _ in range(3):
        net(X)  # statistics of these weights: unit 1 counts the negative samples
    swa = AveragedModel(net)
    swa.update_parameters(net)  # the first: a copy
    with torch.no_grad():
        net.backbone[0].weight.copy_(torch.tensor([3.0, 1.0])[:, None, None])
    swa.update_parameters(net)  # the average: weights (2, 0); unit 0 counts the positive samples, unit 1 reads 0
    loader = [(X[:2], Y[:2]), (X[2:], Y[2:])]  # as a DataLoader of (x, y) gives them
    assert recompute_batchnorm(swa.module, loader) == [swa.module.norm]
    pos = torch.tensor([0.75, 0.25, 0.75, 0.25])  # by hand: the share of positive samples of each series
    batches = pos.split(2)
    want_mean = torch.tensor([sum(b.mean() for b in batches) / 2, 0.0])
    want_var = torch.tensor([sum(b.var(unbiased=True) for b in batches) / 2, 0.0])
    torch.testing.assert_close(swa.module.norm.running_mean, want_mean)
    torch.testing.assert_close(swa.module.norm.running_var, want_var)
    assert swa.module.norm.momentum == 0.1


def test_recompute_batchnorm_reads_an_rnns_lengths_from_its_batches():
    rnn = nn.RNN(1, 1, nonlinearity="relu", bias=False, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.fill_(1.0)
        rnn.weight_hh_l0.zero_()
    net = nv.wrap(rnn, num_classes=2, max_len=3).train()
    x = torch.tensor([[1.0, 2.0, 9.0], [3.0, 4.0, 5.0]])[..., None]
    lengths = torch.tensor([2, 3])  # the 9 is padding: no step of the first series
    recompute_batchnorm(net, [(x, lengths, torch.tensor([0, 1]))])
    h = torch.tensor([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]])  # relu(x), padded steps 0
    torch.testing.assert_close(net.norm.running_mean, h.mean(0))
    torch.testing.assert_close(net.norm.running_var, h.var(0, unbiased=True))


def test_precise_batchnorm_listed_before_swa_is_refused_naming_the_order():
    before = PreciseBatchNorm()
    trainer = pl.Trainer(callbacks=[before, StochasticWeightAveraging(swa_lrs=0.01)], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(ValueError, match=r"PreciseBatchNorm: listed before StochasticWeightAveraging.*"
                                         r"list it after StochasticWeightAveraging"):
        before.on_fit_start(trainer, pl.LightningModule())
    after = PreciseBatchNorm()
    trainer = pl.Trainer(callbacks=[StochasticWeightAveraging(swa_lrs=0.01), after], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    after.on_fit_start(trainer, pl.LightningModule())  # the order that recomputes the averaged weights' statistics
