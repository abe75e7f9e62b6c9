"""A NeuroViewRNN built around ``torch.compile(gru)`` read the compiled module as a user module of its own: only its
output, the last layer's states, so a 2-layer GRU's first layer was never read (no error). It is refused by name;
``torch.compile`` of the network, and ``net.rnn = torch.compile(net.rnn)`` later, still run."""

import pytest
import torch
from torch import nn

import neuroview as nv


def test_a_compiled_rnn_given_to_the_constructor_is_refused_with_the_fix():
    gru = nn.GRU(3, 4, num_layers=2, batch_first=True)
    with pytest.raises(TypeError, match=r"rnn: torch\.compile\(GRU\).*last layer's states only.*rnn\._orig_mod"):
        nv.NeuroViewRNN(torch.compile(gru), num_classes=2, max_len=5)
    net = nv.NeuroViewRNN(gru, num_classes=2, max_len=5)  # the advice: the rnn itself, every layer read
    assert net.features(torch.randn(2, 5, 3)).shape[1] == 2  # [B, L, D, T, H]: both layers


def test_the_standard_classifier_still_takes_a_compiled_rnn():
    torch.manual_seed(0)
    gru, x = nn.GRU(3, 4, batch_first=True), torch.randn(2, 5, 3)
    plain = nv.RNNClassifier(gru, num_classes=2)
    assert torch.equal(nv.RNNClassifier(torch.compile(gru), num_classes=2).rnn(x)[1], plain.rnn(x)[1])
