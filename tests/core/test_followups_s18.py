"""Follow-ups of session 18 (G) to D2's and E2's fixes: an RNN refuses torch.fx and a training batch of one by name
before its backbone runs, as the CNN does; an ensemble's batch of one in training moves no member's BatchNorm
statistics; sparsify's k90 counts a padded series' padding as one item, as ``exp.k90`` does; a copy made inside
``ablate_units`` keeps no codes-hook object once the ``with`` ends.

Hand-built models with known answers: a user RNN module with a BatchNorm whose statistics are read before and after a
refused call, hand-set heads on hand-made features whose k90 is counted by hand, a hand-set MLP."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution.ablation import ablate_units
from neuroview.core.batched import watched
from neuroview.core.ensemble import Ensemble


# ------------------------------------------------------------------ NeuroViewRNN: torch.fx, a training batch of one
class _NormedRNN(nn.Module):
    """A user RNN module (batch-first [B, T, F] -> [B, T, H]) with a BatchNorm over its hidden features."""

    input_size = 2

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin, self.bn = nn.Linear(2, 4), nn.BatchNorm1d(4)

    def forward(self, x):
        return torch.tanh(self.bn(self.lin(x).transpose(1, 2)).transpose(1, 2))


def _bn_state(bn: nn.BatchNorm1d) -> tuple:
    return bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked)


def _same(a: tuple, b: tuple) -> bool:
    return torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]


def test_rnn_torch_fx_is_refused_by_name():
    net = nv.NeuroViewRNN(nn.GRU(2, 4, batch_first=True), num_classes=3, max_len=6).eval()
    with pytest.raises(TypeError, match=r"torch.fx.symbolic_trace: a NeuroViewRNN cannot be traced.*torch.export"):
        torch.fx.symbolic_trace(net)


@pytest.mark.parametrize("lengths", [None, torch.tensor([4])])
def test_rnn_training_batch_of_one_is_refused_before_the_backbone_runs(lengths):
    rnn = _NormedRNN()
    net = nv.NeuroViewRNN(rnn, num_classes=3, max_len=6).train()
    net(torch.randn(4, 6, 2))
    before, head = _bn_state(rnn.bn), int(net.norm.num_batches_tracked)
    assert before[2] == 1 and head == 1
    with pytest.raises(ValueError, match="x: a training batch of 1 sample cannot be normalized"):
        net(torch.randn(1, 6, 2) * 5 + 3, lengths=lengths)
    assert _same(_bn_state(rnn.bn), before) and int(net.norm.num_batches_tracked) == 1
    net.eval()(torch.randn(1, 6, 2))  # at eval a single series is read as before (no batch statistics)
    net.train().features(torch.randn(1, 6, 2))  # features() normalizes nothing: not refused
    assert int(rnn.bn.num_batches_tracked) == 2


def test_rnn_batch_first_false_counts_the_batch_on_dim_1():
    net = nv.NeuroViewRNN(nn.GRU(2, 4), num_classes=3, max_len=6).train()  # x is [T, B, F]
    assert net(torch.randn(6, 2, 2)).shape == (2, 3)  # 6 steps of 2 series: a batch of 2, taken
    with pytest.raises(ValueError, match="training batch of 1 sample"):
        net(torch.randn(6, 1, 2))


# ------------------------------------------------------------------ Ensemble: a training batch of one
def _bns(net: nn.Module) -> list[tuple]:
    return [_bn_state(m) for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _unchanged(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(_same(s, t) for s, t in zip(a, b))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ensemble_batched_training_batch_of_one_moves_no_member_statistics():
    torch.manual_seed(0)
    ens = nv.create_model("nv_lite", num_classes=3, members=2, batched=True).train()
    ens(torch.randn(4, 1, 40))
    before = _bns(ens)
    assert len(before) == 6 and all(s[2] == 1 for s in before)
    for call in (ens, ens.member_logits):  # (codes() runs no head: it reads one sample as before, M6)
        with pytest.raises(ValueError, match="training batch of 1 sample cannot be normalized"):
            call(torch.randn(1, 1, 40) * 5 + 3)
        assert _unchanged(_bns(ens), before)
    assert ens(torch.randn(2, 1, 40)).shape == (2, 3) and all(s[2] == 2 for s in _bns(ens))
    assert ens.codes(torch.randn(1, 1, 40)).shape[0] == 1  # not refused: no head normalizes it


def _member(normalize: bool, seed: int) -> nv.NeuroViewCNN:
    """Series [B, 1, 8]: torch's BatchNorm1d takes one sample of 6 positions (its own check passes)."""
    torch.manual_seed(seed)
    bb = nn.Sequential(nn.Conv1d(1, 3, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Conv1d(3, 2, 3), nn.ReLU())
    return nv.NeuroViewCNN(bb, num_classes=3, example_input=torch.randn(8, 1, 8), normalize=normalize)


def test_ensemble_of_members_apart_moves_no_statistics_where_a_later_member_refuses():
    ens = Ensemble([_member(False, 0), _member(True, 1)]).train()  # member 0 normalizes nothing, member 1 does
    ens(torch.randn(8, 1, 8))
    before = _bns(ens)
    with pytest.raises(ValueError, match="training batch of 1 sample cannot be normalized"):
        ens(torch.randn(1, 1, 8) * 10)
    assert _unchanged(_bns(ens), before)


def test_ensemble_global_head_refuses_before_the_members_run():
    ens = Ensemble([_member(False, 0), _member(False, 1)]).train()  # only the global head normalizes
    ens(torch.randn(8, 1, 8))
    ens.build_head(10)
    before = _bns(ens)
    with pytest.raises(ValueError, match="training batch of 1 sample cannot be normalized"):
        ens(torch.randn(1, 1, 8) * 10)
    assert _unchanged(_bns(ens), before)
    assert ens.eval()(torch.randn(1, 1, 8)).shape == (1, 3)


# ------------------------------------------------------------------ sparsify's k90: padding as one item
def test_head_k90_counts_padding_as_one_item_by_hand():
    from neuroview.core.head_k90 import head_k90  # (new in this session)

    # one class; 1 feature a step, 4 steps; x are the contributions themselves (weight 1, mean 0)
    w, b = torch.tensor([[1.0, 1.0, 1.0, 1.0]]), torch.zeros(1)
    x = torch.tensor([[5.0, 1.0, 1.0, 1.0]])  # a series of 1 step: steps 1-3 are its padding (each 1.0)
    steps, lengths = torch.arange(4), torch.tensor([1])
    # each padding step apart: |5|,1,1,1 of 8 -> 5 (62%), 6 (75%), 7 (87.5%), 8: 4 items
    assert head_k90((w, b), x, steps).tolist() == [4]
    # padding as one item: 5 and 3 of 8 -> both: 2 items, at either level
    assert head_k90((w, b), x, steps, lengths=lengths).tolist() == [2]
    assert head_k90((w, b), x, steps, lengths=lengths, level="features").tolist() == [2]
    # 2 features a step (features of step t: columns t and t + 4 in a [2, T] layout); series of 2 steps
    w2, x2 = torch.ones(1, 8), torch.tensor([[4.0, 4.0, 0.5, 0.5, 0.0, 0.0, 0.5, 0.5]])
    st2 = torch.arange(4).repeat(2)
    # features apart: 4, 4 are 8 of 10 (80%), then one 0.5 -> 85%, a second -> 90%: 4
    assert head_k90((w2, b), x2, st2, level="features").tolist() == [4]
    # steps 2 and 3 (0.5 + 0.5 and 0.5 + 0.5) as one item of 2.0: 4, 4, 2 -> 3 items
    assert head_k90((w2, b), x2, st2, lengths=torch.tensor([2]), level="features").tolist() == [3]


class _Identity(nn.Module):
    """A user RNN module whose hidden state at each step is its input: the features are the series themselves."""

    input_size = 1

    def forward(self, x):
        return x


def test_sparsify_path_k90_agrees_with_the_explanation_on_padded_series():
    # half the series end after 2 steps and carry their class there (1 or 3); the other half carry it at steps 2-5:
    # the head reads every step, so a short series' 4 padding steps each add -W mean (the training mean is not 0)
    g = torch.Generator().manual_seed(0)
    n, t = 40, 6
    y, short = torch.arange(n) % 2, torch.arange(n) < n // 2
    lengths = torch.where(short, 2, t)
    sig = (y.float() * 2 + 1)[:, None] + 0.3 * torch.randn(n, t, generator=g)
    x = torch.zeros(n, t)
    x[short, :2], x[~short, 2:] = sig[short, :2], sig[~short, 2:]
    x = x[..., None]  # [B, T, 1]
    net = nv.NeuroViewRNN(_Identity(), num_classes=2, max_len=t).eval()
    with torch.no_grad():
        net.norm.running_mean.copy_(x.flatten(1).mean(0))
        net.norm.running_var.copy_(x.flatten(1).var(0))
        net.norm.num_batches_tracked.fill_(1)
    data = torch.utils.data.TensorDataset(x.transpose(1, 2), lengths, y)  # [B, F, T], as the data modules give
    loader = torch.utils.data.DataLoader(data, batch_size=10)
    sparse = nv.sparsify(net, loader, val=loader)
    path = sparse.sparsity_path
    exp = sparse.explain(x, lengths, baseline="mean")
    assert bool((sparse.classifier.weight[:, 2:] != 0).any())  # the chosen head reads padding steps of short series
    # was 5.0 (each padding step an item) against the explanation's 3.0
    assert path.k90_steps[path.chosen].item() == exp.k90(level="steps")
    assert path.k90[path.chosen].item() == exp.k90()


# ------------------------------------------------------------------ a copy made inside ablate_units
def _mlp_net() -> nv.NeuroViewCNN:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.ReLU())
    with torch.no_grad():  # the first site's codes are x0, x1, x0 + x1: all on for positive x
        mlp[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        mlp[0].bias.zero_()
    return nv.NeuroViewCNN(mlp, 2, quantizer="none", normalize=False, example_input=torch.randn(4, 2)).eval()


def test_a_copy_made_inside_ablate_units_keeps_no_codes_hook_after_the_with():
    net, x = _mlp_net(), torch.rand(5, 2) + 0.1
    torch.testing.assert_close(net.codes(x)[:, :3], torch.stack([x[:, 0], x[:, 1], x.sum(1)], 1))
    with ablate_units(net, [("1", 0)]):
        inside = copy.deepcopy(net)
        ablated = net.codes(x)
        assert torch.equal(inside.codes(x), ablated) and bool((ablated[:, 0] == 0).all())
    assert net._codes_hook is None and inside._codes_hook is None  # was: the shared, empty CodesHooks
    assert not watched([inside, copy.deepcopy(inside)])  # so an ensemble of such copies may run batched
    torch.testing.assert_close(inside.codes(x), net.codes(x))
    assert not torch.equal(net.codes(x), ablated)


def test_a_copy_made_inside_keeps_its_own_copy_of_an_earlier_codes_hook():
    net, x = _mlp_net(), torch.randn(5, 2)
    net._codes_hook = lambda codes, maps: (codes * 2, maps)  # a hook set before the ablation (a user's)
    doubled = net.codes(x)
    with ablate_units(net, [("1", 0)]):
        inside = copy.deepcopy(net)
    assert not hasattr(inside._codes_hook, "entered")  # the earlier hook itself, not the ablation's holder
    torch.testing.assert_close(inside.codes(x), doubled)
