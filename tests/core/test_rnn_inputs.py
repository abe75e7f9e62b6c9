"""NeuroView-RNN's inputs and the modules it runs: what a probe of the RNN side found (each failed before its fix)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import neuroview as nv
from neuroview.training.compiled import check_finite


class BiGRU(nn.Module):
    """The user protocol: batch-first ``x`` in, per-step states out; a backward direction, no ``lengths``."""

    def __init__(self, honour: bool = False, bidirectional: bool = True):
        super().__init__()
        self.input_size, self.honour = 2, honour
        self.gru = nn.GRU(2, 3, batch_first=True, bidirectional=bidirectional)

    def forward(self, x, lengths=None):
        if not self.honour or lengths is None:
            return self.gru(x)[0]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[1])[0]


class NoLengths(BiGRU):
    def forward(self, x):
        return self.gru(x)[0]


def _alone_and_batched(net):
    torch.manual_seed(1)
    a, mate = torch.randn(1, 3, 2), torch.randn(1, 8, 2)
    batch = torch.cat([torch.cat([a, torch.zeros(1, 5, 2)], 1), mate])
    return net(a), net(batch, lengths=torch.tensor([3, 8]))[:1]


@pytest.mark.parametrize("make", [lambda m: nv.NeuroViewRNN(m, 2, max_len=8), lambda m: nv.RNNClassifier(m, 2)])
def test_a_user_module_that_reads_padding_backwards_is_refused_lengths(make):
    """Its valid steps read the padding: a series' logits changed with its batch-mates' lengths (-0.054 alone,
    -0.093 beside an 8-step series), unsaid."""
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"lengths: BiGRU ignores its lengths, and its states at a valid step change"):
        _alone_and_batched(make(BiGRU()).eval())
    with pytest.raises(ValueError, match=r"lengths: NoLengths takes no lengths"):
        _alone_and_batched(make(NoLengths()).eval())
    alone, batched = _alone_and_batched(make(BiGRU(honour=True)).eval())  # it honours them: the same logits
    torch.testing.assert_close(batched, alone)
    alone, batched = _alone_and_batched(make(BiGRU(bidirectional=False)).eval())  # causal: padding comes after
    torch.testing.assert_close(batched, alone)


def test_a_baseline_of_another_layout_is_refused():
    """A [T, D*H] baseline (a bidirectional GRU's own output layout) was reshaped to [L, D, T, H]: the contributions
    were taken against another baseline than the one given."""
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(2, 3, bidirectional=True, batch_first=True), 2, max_len=4).eval()
    x, base = torch.randn(5, 4, 2), torch.randn(1, 2, 4, 3)
    with pytest.raises(ValueError, match=r"baseline: expected a tensor of shape \[1, 2, 4, 3\] or flat \[24\].*got shape \[4, 6\]"):
        net.explain(x, baseline=base[0].transpose(0, 1).reshape(4, 6))
    want = net.explain(x, baseline=base)
    for same in (base.flatten(), base[None]):
        torch.testing.assert_close(net.explain(x, baseline=same).time_importance, want.time_importance)


def test_a_dropout_set_on_the_rnn_after_wrapping_is_applied():
    """The wrapper read nn.GRU's dropout once, when built: set afterwards (nn.GRU honours it), it was never applied."""
    torch.manual_seed(0)
    g = nn.GRU(3, 4, num_layers=2, batch_first=True)
    net = nv.NeuroViewRNN(g, 2, max_len=5)
    g.dropout = 0.5
    x = torch.randn(4, 5, 3)
    assert not torch.allclose(net.train().features(x), net.eval().features(x))


def test_max_len_and_lengths_errors_speak_the_callers_layout():
    """A time-first GRU's max_len error advised x[:, :6], which cut the batch; lengths matching x's other dim blamed
    only lengths."""
    net = nv.NeuroViewRNN(nn.GRU(3, 4), 2, max_len=6)  # batch_first=False: x is [T, B, F]
    with pytest.raises(ValueError, match=r"truncate the steps axis \(x\[:6\] for \[T, B, F\]"):
        net(torch.randn(9, 8, 3))
    with pytest.raises(ValueError, match=r"\(x\[:6\] for \[T, B, F\].*; and lengths\.clamp\(max=6\)\)"):
        net(torch.randn(9, 8, 3), lengths=torch.full((8,), 9))
    with pytest.raises(ValueError, match=r"shape \(2,\); lengths matches x's dim 1: x is read as \[T, B, F\].*x\.transpose\(0, 1\)"):
        net(torch.randn(2, 5, 3), lengths=torch.tensor([5, 3]))  # [B, T, F] handed to a time-first network
    first = nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 2, max_len=6)
    with pytest.raises(ValueError, match=r"truncate the steps axis \(x\[:, :6\] for \[B, T, F\]"):
        first(torch.randn(8, 9, 3))


def test_the_compiled_steps_check_reads_only_valid_steps():
    """NeuroViewModule(compile=...) refused NaN in padding, which the eager network accepts (documented)."""
    x, lengths, y = torch.randn(2, 3, 6), torch.tensor([6, 4]), torch.tensor([0, 1])
    x[1, :, 4:] = float("nan")
    check_finite((x, lengths, y))
    x[1, 0, 3] = float("nan")
    with pytest.raises(ValueError, match=r"x: contains NaN or Inf \(1 of 36"):
        check_finite((x, lengths, y))


def test_backward_hooks_on_the_rnn_run_or_are_refused():
    """A backward hook on the wrapped RNN was never called (forward hooks ran, or were refused)."""
    for layers in (1, 2):
        g, calls = nn.GRU(3, 4, num_layers=layers, batch_first=True), []
        g.register_full_backward_hook(lambda m, gi, go: calls.append(1))
        net = nv.NeuroViewRNN(g, 2, max_len=5)
        if layers > 1:
            with pytest.raises(TypeError, match=r"has forward or backward hooks"):
                net(torch.randn(4, 5, 3))
            continue
        with pytest.warns(UserWarning, match="Full backward hook"):  # torch's own: no input asks for a gradient
            net(torch.randn(4, 5, 3)).sum().backward()
        assert calls == [1]


def test_bad_rnn_options_and_outputs_are_named():
    with pytest.raises(ValueError, match=r"dropout: expected a probability in \[0, 1\), got '0.1'"):
        nv.NeuroViewRNN(nn.GRU(3, 4, batch_first=True), 2, max_len=5, dropout="0.1")

    class Packed(nn.Module):
        input_size = 2

        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(2, 3, batch_first=True)

        def forward(self, x, lengths):
            return self.gru(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))

    with pytest.raises(ValueError, match=r"forward returned a PackedSequence.*pad_packed_sequence\(out, batch_first=True"):
        nv.NeuroViewRNN(Packed(), 2, max_len=4)
