"""An RNN subclass with its own forward, or hooks on the RNN, is the RNN: NeuroView-RNN runs them
(one layer), or says clearly why it cannot (several layers) -- never silently other states."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv


class Scaled(nn.GRU):
    """A GRU whose own forward changes its input: the states are those of 2x."""

    def forward(self, x, h=None):
        if isinstance(x, nn.utils.rnn.PackedSequence):
            return super().forward(x._replace(data=x.data * 2), h)
        return super().forward(x * 2, h)


class Renamed(nn.GRU):
    """A subclass that keeps nn.GRU's forward: still run layer by layer."""


def _states(rnn, x):
    out = rnn(x)[0]  # [B, T, D * H] (batch first)
    return out.unflatten(-1, (2 if rnn.bidirectional else 1, rnn.hidden_size)).transpose(1, 2)  # [B, D, T, H]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_subclass_forward_is_run(bidirectional):
    torch.manual_seed(0)
    rnn = Scaled(3, 4, batch_first=True, bidirectional=bidirectional)
    net = nv.NeuroViewRNN(rnn, 2, max_len=6).eval()
    x = torch.randn(5, 6, 3)
    with torch.no_grad():
        torch.testing.assert_close(net.features(x)[:, 0], _states(rnn, x))
        exp = net.explain(x)
        torch.testing.assert_close(exp.logits, net(x))


def test_subclass_forward_with_lengths_matches_packed_input():
    torch.manual_seed(0)
    rnn = Scaled(3, 4, batch_first=True, bidirectional=True)
    net = nv.NeuroViewRNN(rnn, 2, max_len=6).eval()
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 4, 2])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        want = nn.utils.rnn.pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=6)[0]
        got = net.features(x, lengths)[:, 0].transpose(1, 2).flatten(2)  # [B, T, D * H]
    torch.testing.assert_close(got, want)


def test_pre_hook_on_the_rnn_is_run():
    torch.manual_seed(0)
    rnn = nn.LSTM(3, 4)  # [T, B, F]
    net = nv.NeuroViewRNN(rnn, 2, max_len=6).eval()
    x = torch.randn(6, 5, 3)
    rnn.register_forward_pre_hook(lambda m, args: (args[0] + 1,) + tuple(args[1:]))  # after wrapping, too
    with torch.no_grad():
        want = rnn(x)[0].transpose(0, 1)
        torch.testing.assert_close(net.features(x)[:, 0, 0], want)


def test_forward_hook_on_the_rnn_is_run():
    torch.manual_seed(0)
    rnn = nn.GRU(3, 4, batch_first=True)
    rnn.register_forward_hook(lambda m, args, out: (out[0].tanh(), out[1]))
    net = nv.NeuroViewRNN(rnn, 2, max_len=6).eval()
    x = torch.randn(5, 6, 3)
    with torch.no_grad():
        torch.testing.assert_close(net.features(x)[:, 0, 0], rnn(x)[0])


def test_multilayer_subclass_forward_is_a_clear_error():
    with pytest.raises(TypeError, match=r"Scaled overrides nn.GRU's forward.*one layer at a time.*\[B, T, L, D, H\]"):
        nv.NeuroViewRNN(Scaled(3, 4, num_layers=2), 2, max_len=6)


def test_multilayer_hook_is_a_clear_error():
    rnn = nn.GRU(3, 4, num_layers=2, batch_first=True)
    net = nv.NeuroViewRNN(rnn, 2, max_len=6)
    net(torch.randn(2, 6, 3))
    rnn.register_forward_pre_hook(lambda m, args: None)
    with pytest.raises(TypeError, match=r"forward or backward hooks.*one layer at a time"):
        net(torch.randn(2, 6, 3))


def test_subclass_without_its_own_forward_runs_layer_by_layer():
    torch.manual_seed(0)
    rnn = Renamed(3, 4, num_layers=2, batch_first=True)
    net = nv.NeuroViewRNN(rnn, 2, max_len=6).eval()
    x = torch.randn(5, 6, 3)
    with torch.no_grad():
        torch.testing.assert_close(net.features(x)[:, -1, 0], rnn(x)[0])


class TimeFirst(nn.Module):
    """A user module around nn.GRU in PyTorch's default layout, time-first: handed batch-first series, it runs its
    recurrence over the samples, and its output has the shape every check expected."""

    def __init__(self):
        super().__init__()
        self.input_size, self.gru = 3, nn.GRU(3, 5)

    def forward(self, x):
        return self.gru(x)[0]


def test_a_user_module_that_runs_over_time_first_input_is_an_error_not_mixed_samples():
    """Logits of a sample moved by 0.15 with its batch-mates and explain still summed to them."""
    for build in (lambda m: nv.NeuroViewRNN(m, 2, max_len=6), lambda m: nv.RNNClassifier(m, 2)):
        with pytest.raises(ValueError, match=r"rnn: the states of a sample change with its batch-mates .*TimeFirst"):
            build(TimeFirst())

    class BatchFirst(TimeFirst):
        def forward(self, x):
            return self.gru(x.transpose(0, 1))[0].transpose(0, 1)

    net = nv.NeuroViewRNN(BatchFirst(), 2, max_len=6).eval()
    x = torch.randn(4, 6, 3)
    torch.testing.assert_close(net(x), torch.cat([net(x[i:i + 1]) for i in range(4)]))


def test_a_checkpoint_of_another_max_len_names_it():
    """PyTorch's size mismatch named norm.running_mean and classifier.weight's shapes, not max_len."""
    sd = nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 3, max_len=6).state_dict()
    with pytest.raises(RuntimeError, match=r"checkpoint reads 6 steps of 4 hidden states, this network 8 \(max_len=8"):
        nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 3, max_len=8).load_state_dict(sd)
    nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 3, max_len=6).load_state_dict(sd)  # the same max_len loads


def test_wrap_of_a_recurrent_module_of_ones_own_points_to_neuroviewrnn():
    """nv.wrap made it a NeuroViewCNN: max_len was a bare "unexpected keyword argument"."""
    with pytest.raises(TypeError, match=r"max_len: a NeuroViewRNN argument.*got a TimeFirst.*nv.NeuroViewRNN\(model"):
        nv.wrap(TimeFirst(), 2, max_len=6)


def test_lengths_and_dtypes_the_rnn_cannot_read_are_named():
    """A string of lengths gave torch's bare "new(): invalid data type 'str'"; complex lengths were cast with a
    warning; float64 series under autocast failed in the GRU's matmul, naming neither x nor the wrapper."""
    net = nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 2, max_len=5).eval()
    x = torch.randn(3, 5, 3)
    with pytest.raises(TypeError, match=r"lengths: expected an integer tensor, list or array of shape \[3\], got str"):
        net(x, lengths="5,2,4")
    with pytest.raises(ValueError, match=r"lengths: expected an integer tensor of shape \[3\], got dtype torch.complex64"):
        net(x, lengths=torch.tensor([5, 2, 4], dtype=torch.complex64))
    with torch.autocast("cpu", torch.bfloat16):
        with pytest.raises(TypeError, match=r"x: expected dtype torch.float32 .*got torch.float64"):
            net(x.double())
        assert net(x.half()).shape == (3, 2)  # lower precisions autocast casts, as it does for the GRU itself
