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
    rnn_only = sorted(set(kwargs) & {"max_len", "window", "batch_first", "input_size", "shared_steps", "dropout"})
    if rnn_only:  # a recurrent module of the user's own: wrap cannot tell it from a CNN
        raise TypeError(f"{rnn_only[0]}: a NeuroViewRNN argument, and nv.wrap makes a NeuroViewRNN of nn.RNN, nn.LSTM "
                        f"or nn.GRU only (got a {type(model).__name__}); for a recurrent module of your own, call "
                        f"nv.NeuroViewRNN(model, num_classes, {rnn_only[0]}=...) (its docstring gives the protocol)")
    return NeuroViewCNN(model, num_classes, **kwargs)
