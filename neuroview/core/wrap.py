"""``neuroview.core.wrap``: turn a standard network into its NeuroView variant, by backbone type."""

from __future__ import annotations

import difflib
import inspect

from torch import nn

from ._utils import rnn_pointer
from .cnn import NeuroViewCNN
from .rnn import NeuroViewRNN, RNNClassifier

_OWN = {"self", "backbone", "rnn", "num_classes"}
_RNN_ARGS = sorted(set(inspect.signature(NeuroViewRNN.__init__).parameters) - _OWN)
_CNN_ARGS = set(inspect.signature(NeuroViewCNN.__init__).parameters) - _OWN


def wrap(model: nn.Module, num_classes: int, **kwargs) -> nn.Module:
    """Wrap ``model``: ``nn.RNN``/``nn.LSTM``/``nn.GRU`` give a NeuroViewRNN, anything else a NeuroViewCNN.

    >>> import neuroview as nv
    >>> from torch import nn
    >>> type(nv.wrap(nn.Sequential(nn.Conv1d(3, 4, 3), nn.ReLU()), 5)).__name__
    'NeuroViewCNN'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if isinstance(model, NeuroViewRNN):  # else NeuroViewCNN's search for activation modules, which finds none
        raise TypeError("model: already a NeuroViewRNN; wrap its .rnn instead (nv.wrap(model.rnn, num_classes, "
                        "max_len=...))")
    if isinstance(model, RNNClassifier):
        raise TypeError(_classifier_route(model, num_classes))
    if isinstance(model, nn.RNNBase):
        return wrap_rnn(model, num_classes, **kwargs)
    rnn_only = sorted(set(kwargs) & {"max_len", "window", "batch_first", "input_size", "shared_steps", "dropout"})
    if rnn_only:  # a recurrent module of the user's own: wrap cannot tell it from a CNN
        raise TypeError(f"{rnn_only[0]}: a NeuroViewRNN argument, and nv.wrap makes a NeuroViewRNN of nn.RNN, nn.LSTM "
                        f"or nn.GRU only (got a {type(model).__name__}); for a recurrent module of your own, call "
                        f"nv.NeuroViewRNN(model, num_classes, {rnn_only[0]}=...) (its docstring gives the protocol)")
    try:
        return NeuroViewCNN(model, num_classes, **kwargs)
    except (ValueError, TypeError) as e:
        pointed = rnn_pointer(model, num_classes, e)
        if pointed is None:
            raise
        raise pointed from e


def wrap_rnn(rnn: nn.Module, num_classes: int, *, like: RNNClassifier | None = None, **kwargs) -> NeuroViewRNN:
    """``NeuroViewRNN(rnn, num_classes, **kwargs)``, a NeuroViewCNN argument (``quantizer`` ...) refused by name;
    ``like``: the RNNClassifier ``rnn`` comes from, whose window (a user module's input size and layout too) it takes."""
    for k, v in kwargs.items():
        if k in _CNN_ARGS and k not in _RNN_ARGS:
            raise TypeError(f"{k}: a NeuroViewCNN argument, which a NeuroViewRNN (of the {type(rnn).__name__}) does not "
                            f"take: it reads the hidden states as they are; it takes {', '.join(_RNN_ARGS)}, got {k}={v!r}")
        if k not in _RNN_ARGS:
            near = difflib.get_close_matches(k, _RNN_ARGS, n=1)
            raise TypeError(f"{k}: not an argument of NeuroViewRNN{f' (did you mean {near[0]}?)' if near else ''}; it "
                            f"takes {', '.join(_RNN_ARGS)}, got {k}={v!r}")
    if like is not None:  # the RNN reads windows of samples: so does its NeuroView variant
        own = {} if isinstance(rnn, nn.RNNBase) else {"input_size": like._backbone.input_size,
                                                      "batch_first": like.batch_first}
        kwargs = own | ({"window": like.window} if like.window > 1 else {}) | kwargs
    return NeuroViewRNN(rnn, num_classes, **kwargs)


def _classifier_route(model: RNNClassifier, num_classes) -> str:
    """Where an RNNClassifier's NeuroView variant comes from: its .rnn, wrapped with its window (sizes, layout)."""
    win = f", window={model.window}" if model.window > 1 else ""
    if isinstance(model.rnn, nn.RNNBase):
        call = f"nv.wrap(model.rnn, {num_classes!r}, max_len=...{win})"
    else:
        call = (f"nv.NeuroViewRNN(model.rnn, {num_classes!r}, max_len=...{win}, input_size="
                f"{model._backbone.input_size}, batch_first={model.batch_first})")
    return (f"model: an RNNClassifier (the standard classifier on the last state) is not wrapped itself; its NeuroView "
            f"variant reads its .rnn: {call}, or nv.retrofit(model, train, max_len=...), which fits that variant's "
            "classifier on the trained rnn, frozen")
