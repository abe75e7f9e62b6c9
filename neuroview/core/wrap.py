"""``neuroview.core.wrap``: turn a standard network into its NeuroView variant, by backbone type."""

from __future__ import annotations

from torch import nn

from .cnn import NeuroViewCNN
from .rnn import NeuroViewRNN


def wrap(model: nn.Module, num_classes: int, **kwargs) -> nn.Module:
    """Wrap ``model``: ``nn.RNN``/``nn.LSTM``/``nn.GRU`` give a NeuroViewRNN, anything else a NeuroViewCNN.

    >>> import neuroview as nv
    >>> from torch import nn
    >>> type(nv.wrap(nn.Sequential(nn.Conv1d(3, 4, 3), nn.ReLU()), 5)).__name__
    'NeuroViewCNN'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if isinstance(model, nn.RNNBase):
        return NeuroViewRNN(model, num_classes, **kwargs)
    return NeuroViewCNN(model, num_classes, **kwargs)
