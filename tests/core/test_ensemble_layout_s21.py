"""An ensemble of recurrent members that read ``x`` in other layouts (``batch_first`` True and False): the ensemble
handed every member the same ``x``, so a time-first member read its samples as steps (logits that looked right where
B == T, a bare ``torch.stack`` error otherwise), and the loader readers laid every batch out as member 0 reads it
(finding 3 of probe P2, s21). Now refused by name; ``ens.batch_first`` is the members' common layout."""

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview._batch import call_model, steps_first


def _rnn(batch_first: bool, seed: int) -> nv.NeuroViewRNN:
    torch.manual_seed(seed)
    return nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=batch_first), 2, max_len=5).eval()


@pytest.mark.parametrize("batch", [5, 4])  # 5 == the steps: nothing failed, the second member read samples as steps
def test_members_of_other_layouts_are_refused_by_name(batch):
    a, b = _rnn(True, 0), _rnn(False, 1)
    x = torch.randn(batch, 5, 3)
    with pytest.raises(ValueError, match=r"members: member 0 reads x as \[B, T, F\] \(batch_first=True\) and member 1 as "
                                         r"\[T, B, F\] \(batch_first=False\).*build every member with one batch_first"):
        nv.Ensemble([a, b])(x)


def test_standard_members_and_several_of_each_layout_are_named():
    std = [nv.RNNClassifier(nn.GRU(3, 4, batch_first=f), 2) for f in (True, False, True)]
    with pytest.raises(ValueError, match=r"members: members 0, 2 read x as \[B, T, F\].* and member 1 as \[T, B, F\]"):
        nv.Ensemble(std)
    with pytest.raises(ValueError, match=r"members: member 1 reads x as \[B, T, F\].* and members 0, 2 as \[T, B, F\]"):
        nv.Ensemble([_rnn(False, 0), _rnn(True, 1), _rnn(False, 2)])


def test_time_first_members_read_as_each_reads_alone_and_the_ensemble_says_its_layout():
    a, b = _rnn(False, 0), _rnn(False, 1)
    ens = nv.Ensemble([a, b]).eval()
    assert ens.batch_first is False  # before: no such attribute
    x_cf, lengths = torch.randn(4, 3, 5), torch.tensor([5, 2, 4, 3])
    x = x_cf.permute(2, 0, 1)  # [T, B, F], as each member reads it alone
    want = (a(x, lengths) + b(x, lengths)) / 2
    torch.testing.assert_close(ens(x, lengths), want)
    torch.testing.assert_close(call_model(ens, x_cf, lengths), want)  # the loader readers' and the Lightning module's
    assert nv.Ensemble([_rnn(True, 0), _rnn(True, 1)]).batch_first is True


def test_a_member_replaced_by_one_of_another_layout_is_refused_where_the_ensemble_is_called():
    ens = nv.Ensemble([_rnn(True, 0), _rnn(True, 1)]).eval()
    ens.members[1] = _rnn(False, 2)  # an nn.ModuleList takes it without a word
    x_cf, lengths = torch.randn(5, 3, 5), torch.tensor([5, 2, 4, 3, 5])
    with pytest.raises(ValueError, match=r"member 0 reads x as \[B, T, F\].* and member 1 as \[T, B, F\]"):
        ens(x_cf.transpose(1, 2), lengths)  # before: member 1 read the 5 samples as its 5 steps
    with pytest.raises(ValueError, match=r"and member 1 as \[T, B, F\]"):
        steps_first(x_cf, ens)  # before: laid out as member 0 reads it, for every member
    with pytest.raises(ValueError, match=r"and member 1 as \[T, B, F\]"):
        getattr(ens, "batch_first", True)  # an error, not the default: a mix has no layout to guess


def test_an_ensemble_of_cnns_has_no_batch_first():
    ens = nv.Ensemble([nv.create_model("nv_lite", num_classes=2) for _ in range(2)])
    assert not hasattr(ens, "batch_first") and getattr(ens, "batch_first", None) is None
    x = torch.randn(2, 1, 20)
    assert steps_first(x, ens).shape == (2, 20, 1)
