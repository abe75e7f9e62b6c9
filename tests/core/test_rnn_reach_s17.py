"""Which steps no training series reached, from the first training batch on, and a warning where a series read at eval
reaches them (their classifier weights are the random initial ones, which the logits add in).

Every expectation below is set by the series built here: the training lengths say which steps were reached."""

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import neuroview as nv


def _train_stats(net, batches: int, lengths_of, *, seed: int = 1):
    """Run ``batches`` training batches of 16 series (normalization statistics only), lengths from ``lengths_of(i, g)``."""
    g = torch.Generator().manual_seed(seed)
    net.train()
    with torch.no_grad():
        for i in range(batches):
            x = torch.randn(16, net.max_len, net.input_size, generator=g)
            if not net.batch_first:
                x = x.transpose(0, 1)
            net(x, lengths=lengths_of(i, g))
    return net.eval()


def _short_then_one_long(i, g):
    """Lengths 2..5, one series of 5 in every batch (steps 0..4 reached throughout), one of 7 in the first batch only
    (steps 5 and 6 reached once, then their statistics decay): step 7 is never reached."""
    lengths = torch.randint(2, 6, (16,), generator=g)
    lengths[0] = 5
    if i == 0:
        lengths[1] = 7
    return lengths


@pytest.mark.parametrize("batches", [1, 10, 100])
@pytest.mark.parametrize("kind", ["gru", "lstm2bi"])
def test_unreached_steps_hold_from_the_first_training_batch(batches, kind):
    torch.manual_seed(0)
    rnn = nn.GRU(1, 4, batch_first=True) if kind == "gru" else nn.LSTM(1, 3, num_layers=2, bidirectional=True)
    net = _train_stats(nv.NeuroViewRNN(rnn, 2, max_len=8), batches, _short_then_one_long)
    # before: [False] * 8 below 44 batches (the running variance of step 7 had not decayed under 1e-2)
    assert net.unreached_steps().tolist() == [False] * 7 + [True]
    ti = net.time_importance()
    assert torch.equal(ti[:, 7], torch.zeros(2))
    assert bool((ti[:, :7] > 0).all())  # steps 5 and 6, reached in one batch only, keep their weights


def test_a_step_of_constant_nonzero_features_is_no_unreached_step():
    """A running mean of exactly 0 is what marks a step no series reached; a constant that is not 0 does not."""
    from neuroview.core.head import CodeNorm
    from neuroview.core.rnn_steps import unreached_steps

    norm = CodeNorm(2 * 2).train()
    for _ in range(3):  # step 0: the constant 0.5 in every sample; step 1: 0 in every sample (padding)
        norm(torch.tensor([[0.5, 0.5, 0.0, 0.0]] * 4))
    assert unreached_steps(norm, (1, 1, 2, 2)).tolist() == [False, True]


# ----------------------------------------------------------- a series reaching steps no training series reached
def _net(window: int = 1, batch_first: bool = True):
    """max_len 8 samples; every training series at most 5 samples long (steps 5..7 unreached with window 1; with window
    2, 3 steps of 2 samples reached, step 3 unreached)."""
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(window, 4, batch_first=batch_first), 2, max_len=8, window=window)
    return _train_stats(net, 5, lambda i, g: torch.randint(1, 6, (16,), generator=g))


def _caught(fn, *args, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn(*args, **kw)
    return out, [str(r.message) for r in rec if "no training series reached" in str(r.message)]


def test_forward_and_explain_warn_once_naming_the_series_and_steps():
    net = _net()
    assert net.unreached_steps().nonzero().flatten().tolist() == [5, 6, 7]
    x, lengths = torch.randn(6, 8, 1), torch.tensor([8, 3, 6, 5, 7, 2])
    logits, said = _caught(net, x, lengths=lengths)
    assert len(said) == 1  # once per call, however many series
    assert "3 of 6 series reach steps 5-7," in said[0] and "first 5 input samples" in said[0]
    # the decision is not changed: the same linear map over the same features
    w, b = net.effective_classifier()
    assert torch.allclose(logits, net.features(x, lengths).flatten(1) @ w.T + b, atol=1e-6)
    exp, said = _caught(net.explain, x, lengths=lengths)
    assert len(said) == 1 and "3 of 6 series" in said[0]
    assert torch.equal(exp.logits, logits)
    _, said = _caught(net, x, lengths=torch.tensor([6, 3, 6, 5, 2, 2]))  # reaching step 5 only
    assert len(said) == 1 and "2 of 6 series reach step 5," in said[0]


def test_no_warning_within_the_trained_steps_nor_in_training():
    net = _net()
    x = torch.randn(4, 8, 1)
    _, said = _caught(net, x, lengths=torch.tensor([5, 1, 4, 5]))
    assert said == []
    _, said = _caught(net, torch.randn(4, 5, 1))  # 5 samples, no lengths: every step read was reached
    assert said == []
    net.train()
    with torch.no_grad():
        _, said = _caught(net, x)  # training: no check (and no host sync for it)
    assert said == []


def test_without_lengths_the_nonzero_extent_of_x_counts_not_its_zero_padding():
    net = _net()
    x = torch.randn(5, 8, 1)
    x[:, 5:] = 0.0  # padded with zeros past sample 5: reaches steps 0..4 only
    _, said = _caught(net, x)
    assert said == []
    x[2, 6] = 0.3  # one series with a sample at step 6
    _, said = _caught(net, x)
    assert len(said) == 1 and "1 of 5 series" in said[0] and "steps 5-6" in said[0]
    _, said = _caught(net, torch.randn(3, 8, 1))  # full series
    assert len(said) == 1 and "3 of 3 series" in said[0] and "steps 5-7" in said[0]


def test_packed_sequences_and_time_major_series_are_read_by_their_lengths():
    net = _net(batch_first=False)
    x = torch.randn(8, 3, 1)  # [T, B, F]
    _, said = _caught(net, x, lengths=torch.tensor([8, 4, 5]))
    assert len(said) == 1 and "1 of 3 series" in said[0]
    packed = pack_padded_sequence(x, torch.tensor([8, 7, 5]), enforce_sorted=False)
    _, said = _caught(net, packed)
    assert len(said) == 1 and "2 of 3 series" in said[0]


def test_window_steps_are_named_with_their_input_samples():
    net = _net(window=2)
    assert net.unreached_steps().tolist() == [False, False, False, True]  # 5 samples: steps 0..2 reached
    _, said = _caught(net, torch.randn(2, 8, 2 // 2), lengths=torch.tensor([7, 6]))
    assert len(said) == 1 and "1 of 2 series" in said[0] and "step 3 (input samples 6-7)" in said[0]
    assert "first 6 input samples" in said[0]


def test_the_warning_follows_the_statistics_as_training_goes_on():
    """The unreached steps are remembered between calls; training on longer series updates them."""
    net = _net()
    x = torch.randn(3, 8, 1)
    assert len(_caught(net, x)[1]) == 1
    _train_stats(net, 1, lambda i, g: torch.full((16,), 8))  # now every step was reached
    assert net.unreached_steps().tolist() == [False] * 8
    assert _caught(net, x)[1] == []
    net.load_state_dict(_net().state_dict())  # statistics of the short series back
    assert len(_caught(net, x)[1]) == 1


def test_a_network_built_under_inference_mode_is_checked_too():
    """Its buffers are inference tensors, which keep no version to remember the unreached steps by: read each call."""
    with torch.inference_mode():
        net = _net()
        _, said = _caught(net, torch.randn(2, 8, 1), lengths=torch.tensor([7, 3]))
    assert len(said) == 1 and "1 of 2 series reach steps 5-6," in said[0]
