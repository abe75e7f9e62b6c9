"""Stochastic weight averaging and the head's ``CodeNorm`` (probe P4, finding 2).

``torch.optim.swa_utils.update_bn`` and Lightning's ``StochasticWeightAveraging`` recompute only ``_BatchNorm``
modules, and ``CodeNorm`` is none (on purpose: ``convert_sync_batchnorm`` would replace it): after SWA it keeps the
statistics of the weights it was copied with. The project's step for it is ``recompute_batchnorm(swa.module, loader)``
(``PreciseBatchNorm`` under Lightning). It failed on the batches a loader gives (``(x, y)``, which update_bn reads), and
112e211's default read a CNN's (x, y, weight) as (x, lengths, y) and every other model's tuple too (R8 finding 6).
Known answers: a hand-set backbone whose codes are counted here by hand."""

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


def _fit(order, backbone_bn):
    """A 3-epoch fit with SWA from epoch 1 and PreciseBatchNorm in ``order``; the network and a copy whose statistics
    are recomputed here on its final weights (the known answer: the split's plain average for these weights)."""
    import copy
    import tempfile
    import warnings
    from torch.utils.data import DataLoader, TensorDataset
    from neuroview.training.module import NeuroViewModule
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 3, (64,))
    m = NeuroViewModule("nv_small_cnn", num_classes=3, in_channels=1, model_kwargs={"widths": [4]}, lr=1e-2)
    m.build(x[:8])
    net = m.model if hasattr(m, "model") else m.net
    if not backbone_bn:
        for name, mod in list(net.backbone.named_modules()):
            for cname, child in list(mod.named_children()):
                if isinstance(child, nn.BatchNorm2d):
                    setattr(mod, cname, nn.Identity())
    assert any(isinstance(b, nn.BatchNorm2d) for b in net.modules()) == backbone_bn
    cbs = [PreciseBatchNorm(), StochasticWeightAveraging(swa_lrs=1e-2, swa_epoch_start=1)]
    t = pl.Trainer(max_epochs=3, callbacks=cbs if order == "PBN, SWA" else cbs[::-1], logger=False,
                   enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                   default_root_dir=tempfile.mkdtemp())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t.fit(m, DataLoader(TensorDataset(x, y), batch_size=16))
    ref = copy.deepcopy(net).train()
    recompute_batchnorm(ref, DataLoader(TensorDataset(x, y), batch_size=16), forward=lambda b: ref(b[0]))
    return net, ref


@pytest.mark.parametrize("order", ["PBN, SWA", "SWA, PBN"])
def test_precise_batchnorm_in_either_order_with_a_backbone_batchnorm_gives_the_averaged_weights_statistics(order):
    # R8 finding 3: with a BatchNorm, Lightning moves the averaged weights in at the start of its extra BN epoch, so
    # both orders end with their statistics; 112e211 refused "PBN, SWA" at fit start
    net, ref = _fit(order, backbone_bn=True)
    for (k, a), (_, b) in zip(net.named_buffers(), ref.named_buffers()):
        torch.testing.assert_close(a, b, msg=k)


def test_precise_batchnorm_after_swa_without_a_batchnorm_gives_the_averaged_weights_statistics():
    net, ref = _fit("SWA, PBN", backbone_bn=False)
    torch.testing.assert_close(net.norm.running_mean, ref.norm.running_mean)
    torch.testing.assert_close(net.norm.running_var, ref.norm.running_var)


def test_recompute_batchnorm_reads_a_cnns_three_item_batches_as_update_bn_does():
    # R8 finding 6: (x, y, sample_weight) batches, which update_bn reads as input[0], reached the CNN as model(x, y)
    net = _net([1.0, -1.0]).train()
    recompute_batchnorm(net, [(X[:2], Y[:2], torch.ones(2)), (X[2:], Y[2:], torch.ones(2))])
    pos = torch.tensor([0.75, 0.25, 0.75, 0.25]).split(2)  # unit 0: the share of positive samples, by hand
    neg = torch.tensor([0.25, 0.75, 0.25, 0.75]).split(2)
    torch.testing.assert_close(net.norm.running_mean, torch.tensor([sum(b.mean() for b in u) / 2 for u in (pos, neg)]))


def test_recompute_batchnorm_runs_another_models_batches_as_before():
    class TupleModel(nn.Module):  # forward(batch) of a whole tuple: the documented default, model(batch)
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(1)

        def forward(self, batch):
            a, b = batch
            return self.bn(a + b)
    model = TupleModel().train()
    a, b = torch.tensor([[1.0], [3.0]]), torch.tensor([[1.0], [1.0]])
    assert recompute_batchnorm(model, [(a, b)]) == [model.bn]
    torch.testing.assert_close(model.bn.running_mean, torch.tensor([3.0]))
    torch.testing.assert_close(model.bn.running_var, torch.tensor([2.0]))


def test_recompute_batchnorm_refuses_an_rnns_middle_item_that_is_no_lengths():
    rnn = nn.RNN(1, 1, nonlinearity="relu", bias=False, batch_first=True)
    net = nv.wrap(rnn, num_classes=2, max_len=3).train()
    x = torch.ones(2, 3, 1)
    before = net.norm.running_mean.clone()
    with pytest.raises(ValueError, match=r"batches: a batch of 3 items is read as \(x, lengths, y\).*\[1, 3\]"):
        recompute_batchnorm(net, [(x, torch.tensor([0, 7]), torch.tensor([0, 1]))])
    torch.testing.assert_close(net.norm.running_mean, before)


def _swa():
    """An AveragedModel of two weight sets averaging to (2, 0), and the statistics of (x, y) batches by hand."""
    net = _net([1.0, -1.0]).train()
    net(X)
    swa = AveragedModel(net)
    swa.update_parameters(net)
    with torch.no_grad():
        net.backbone[0].weight.copy_(torch.tensor([3.0, 1.0])[:, None, None])
    swa.update_parameters(net)
    pos = torch.tensor([0.75, 0.25, 0.75, 0.25]).split(2)  # by hand: the share of positive samples of each series
    return swa, torch.tensor([sum(b.mean() for b in pos) / 2, 0.0]), torch.tensor([sum(b.var() for b in pos) / 2, 0.0])


@pytest.mark.parametrize("wrap", ["AveragedModel", "Sequential", "DataParallel", "compiled"])
def test_recompute_batchnorm_reads_a_loaders_batches_through_torchs_wrappers(wrap):
    # update_bn(loader, swa) takes the AveragedModel itself; 112e211 read (x, y) through it, bd6eda9 refused: "x:
    # expected a torch.Tensor, got list" (T8 finding 2)
    swa, want_mean, want_var = _swa()
    model = {"AveragedModel": lambda: swa, "Sequential": lambda: nn.Sequential(swa.module),
             "DataParallel": lambda: nn.DataParallel(swa.module),
             "compiled": lambda: torch.compile(swa.module, backend="eager")}[wrap]()
    assert recompute_batchnorm(model, [(X[:2], Y[:2]), (X[2:], Y[2:])]) == [swa.module.norm]
    torch.testing.assert_close(swa.module.norm.running_mean, want_mean)
    torch.testing.assert_close(swa.module.norm.running_var, want_var)


def _relu_rnn_net():
    rnn = nn.RNN(1, 1, nonlinearity="relu", bias=False, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.fill_(1.0)
        rnn.weight_hh_l0.zero_()
    return nv.wrap(rnn, num_classes=2, max_len=3).train()


RX = torch.tensor([[1.0, 2.0, 9.0], [3.0, 4.0, 5.0]])[..., None]
RL = torch.tensor([2, 3])  # the 9 is padding: no step of the first series
RH = torch.tensor([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]])  # relu(x), padded steps 0


@pytest.mark.parametrize("wrap", ["compiled", "AveragedModel"])
def test_recompute_batchnorm_gives_a_wrapped_rnn_its_lengths(wrap):
    # a torch.compile'd NeuroViewRNN's forward shows no lengths: it ran on x alone, padding read as steps (T8 finding 3)
    net = _relu_rnn_net()
    model = torch.compile(net, backend="eager") if wrap == "compiled" else AveragedModel(net)
    norm = net.norm if wrap == "compiled" else model.module.norm
    recompute_batchnorm(model, [(RX, RL, torch.tensor([0, 1]))])
    torch.testing.assert_close(norm.running_mean, RH.mean(0))
    torch.testing.assert_close(norm.running_var, RH.var(0, unbiased=True))


def test_recompute_batchnorm_refuses_lengths_an_nn_sequential_cannot_pass_on():
    net = _relu_rnn_net()
    before = net.norm.running_mean.clone()
    with pytest.raises(ValueError, match=r"^batches: an nn.Sequential cannot pass an \(x, lengths, y\) batch's lengths"):
        recompute_batchnorm(nn.Sequential(net), [(RX, RL, torch.tensor([0, 1]))])
    torch.testing.assert_close(net.norm.running_mean, before)


def test_recompute_batchnorm_runs_a_bare_packed_sequence_as_the_network_takes_it():
    # a PackedSequence is a namedtuple: its flat data was passed as x, blamed for its rank (T8 finding 4)
    net = _relu_rnn_net()
    packed = nn.utils.rnn.pack_padded_sequence(RX, RL, batch_first=True, enforce_sorted=False)
    assert recompute_batchnorm(net, [packed]) == [net.norm]
    torch.testing.assert_close(net.norm.running_mean, RH.mean(0))
    torch.testing.assert_close(net.norm.running_var, RH.var(0, unbiased=True))


def test_recompute_batchnorm_calls_a_users_own_module_attribute_as_before():
    # only torch's wrappers are looked inside: a model of one's own with a .module of its own takes the whole batch
    class Mine(nn.Module):
        def __init__(self):
            super().__init__()
            self.module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))

        def forward(self, batch):
            x, _ = batch
            return self.module(x)

    torch.manual_seed(0)
    loader = [(torch.randn(8, 3), torch.zeros(8)) for _ in range(2)]
    model = Mine()
    recompute_batchnorm(model, loader)
    x = torch.cat([b[0] for b in loader])
    torch.testing.assert_close(model.module[1].running_mean, model.module[0](x).mean(0).detach(), rtol=1e-5, atol=1e-6)
