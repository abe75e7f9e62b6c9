"""A user RNN module whose states come back [B, H, T] is refused whatever its hidden size: the dry run read 4
steps, so a module of hidden size 4 passed it, and on 4-step series its steps and hidden units were read swapped
(features 1.2 off the states)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neuroview as nv


class ChannelsFirst(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.g, self.input_size = nn.GRU(2, hidden, batch_first=True), 2

    def forward(self, x):
        return self.g(x)[0].transpose(1, 2)  # [B, H, T]


class Right(ChannelsFirst):
    def forward(self, x):
        return self.g(x)[0]


@pytest.mark.parametrize("hidden", [4, 5, 6])
def test_states_laid_out_hidden_first_are_refused(hidden):
    with pytest.raises(ValueError, match=r"rnn: expected its forward to return per-step hidden states \[B, T, H\]"):
        nv.NeuroViewRNN(ChannelsFirst(hidden), num_classes=3, max_len=4)


def test_states_laid_out_steps_first_read_as_the_module_gives_them():
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(Right(4), num_classes=3, max_len=4).eval()
    x = torch.randn(3, 4, 2)
    with torch.no_grad():
        torch.testing.assert_close(net.features(x)[:, 0, 0], net.rnn.g(x)[0])


class Positioned(Right):
    """A GRU with a learned position table of 4 steps: it takes 4 steps at most."""

    def __init__(self):
        super().__init__(4)
        self.pos = nn.Parameter(torch.zeros(4, 2))

    def forward(self, x):
        return self.g(x + self.pos[: x.shape[1]])[0]


def test_a_module_that_cannot_take_5_steps_is_checked_at_3():
    # the 5-step check refused it with the 4-step input's shape named (the review)
    net = nv.NeuroViewRNN(Positioned(), num_classes=3, max_len=4)
    assert net.feature_shape[-1] == 4

    class PositionedFirst(Positioned):
        def forward(self, x):
            return super().forward(x).transpose(1, 2)

    with pytest.raises(ValueError, match=r"= \(3, 3, \.\.\.\), got \(3, 4, 3\)"):
        nv.NeuroViewRNN(PositionedFirst(), num_classes=3, max_len=4)


class EvenOnly(ChannelsFirst):
    """Steps read in pairs (a stride-2 front end): it takes even lengths only, and lays its states out [B, H, T]."""

    def forward(self, x):
        if x.shape[1] % 2:
            raise ValueError("even lengths only")
        return super().forward(x)


def test_a_module_that_takes_even_lengths_only_is_checked_at_6():
    # 5 and 3 failed and the check was skipped: with hidden size 4 it was read transposed (the second review)
    with pytest.raises(ValueError, match=r"= \(3, 6, \.\.\.\), got \(3, 4, 6\)"):
        nv.NeuroViewRNN(EvenOnly(4), num_classes=3, max_len=8)
