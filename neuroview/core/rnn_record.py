"""What the state dict of a NeuroView-RNN (or of its standard counterpart, ``RNNClassifier``) records that no tensor's
shape tells, and why a state dict whose record differs reads a series otherwise.

The RNN reads ``window`` samples of ``F`` channels a step: an input of ``window * F`` features. A network built for
4-channel series read one sample a step (``window=1``, ``max_len=8``) and one built for 2-channel series read two
(``window=2``, ``max_len=16``) have the same RNN input size and the same 8 steps, so every tensor of the same shape:
a state dict of one loaded into the other without a word (``strict=False`` or not), and its weights read each input
of a step as another sample's other channel. The state dict keeps ``window``, the channels a sample
(``input_size``) and ``max_len`` in its metadata, beside the wrapped RNN's class and an ``nn.RNN``'s nonlinearity
(:func:`~neuroview.core.rnn_steps.settings_clash`), as a NeuroView-CNN keeps its settings (:mod:`.settings`): no key
added, the state dict is still tensors only. A state dict without the record (saved before it was kept, a plain dict
of tensors, every zoo checkpoint) loads as before.

Not compared: ``max_len`` where the steps agree (every series the file's network read is read alike; its steps are the
classifier's shape), ``batch_first`` (the layout ``x`` is handed in, not a function of the weights: a time-first
network's state dict loads into its batch-first twin, which reads the same series alike) and ``dropout`` (training
only). Where the RNN's input sizes differ the shapes tell, and torch's size check (and ``rnn_mismatch``) speaks.
``bidirectional``, ``num_layers``, ``hidden_size``, ``proj_size`` and ``bias`` change the tensors' keys or shapes;
``shared_steps`` and ``normalize`` are the load's own checks (:mod:`.rnn_load`, ``head.adopt_norm``).

Imports only torch and :mod:`.rnn_steps`.
"""

from __future__ import annotations

from torch import nn

from .rnn_steps import settings_clash

__all__ = ["keep", "reading_clash"]

_KINDS = ("LSTM", "GRU", "RNN")


def keep(net: nn.Module, destination, prefix: str) -> None:
    """Record in ``destination``'s metadata (a ``state_dict()``'s, ``net`` at ``prefix``) what ``net``'s tensors do
    not show: the RNN's class and an ``nn.RNN``'s nonlinearity (either wrapper's), and how a series is read."""
    meta = getattr(destination, "_metadata", None)
    if meta is None or prefix[:-1] not in meta:
        return
    own = meta[prefix[:-1]]
    # an nn.RNN's tanh or relu is one shape, two functions: an RNNClassifier's as a NeuroView-RNN's
    own.update(rnn=type(net.rnn).__name__, **({"nonlinearity": net.rnn.nonlinearity} if isinstance(net.rnn, nn.RNN) else {}))
    if hasattr(net, "max_len"):  # a NeuroView-RNN (an RNNClassifier reads any length)
        own.update(max_len=net.max_len)
    own.update(window=net.window, input_size=net.input_size)


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def reading_clash(meta, net: nn.Module, prefix: str) -> str | None:
    """Why a state dict whose metadata is ``meta`` reads a series otherwise in ``net``: saved from a network of another
    ``window`` (or channels a sample) whose RNN takes as many inputs a step, so that no shape tells them apart; None
    where they agree, where the record is absent, or where the RNN's input sizes differ (the shapes say it). For an
    ``RNNClassifier`` first its RNN's kind and nonlinearity (:func:`~neuroview.core.rnn_steps.settings_clash`), which
    ``rnn_load.refuse`` checks itself for a NeuroView-RNN only (one with ``step_shared``): a relu file into a tanh
    classifier loaded without a word."""
    meta = meta if isinstance(meta, dict) else {}
    if not hasattr(net, "step_shared") and (why := settings_clash(meta, net.rnn, prefix, standard=True)):
        return why
    window, channels = _int(meta.get("window")), _int(meta.get("input_size"))
    if window is None or channels is None or (window, channels) == (net.window, net.input_size):
        return None
    if window * channels != net.window * net.input_size:
        return None
    kind = next((k.lower() for k in _KINDS if isinstance(net.rnn, getattr(nn, k))), None)
    nv = hasattr(net, "max_len")  # a NeuroView-RNN (an RNNClassifier reads any length)
    max_len = _int(meta.get("max_len")) if nv else None
    said = lambda w, c, m: f"window={w} ({w} sample{'s' * (w > 1)} of {c} channels a step" + (  # noqa: E731
        f", max_len={m})" if m else ")")
    build = f"window={window}, {channels} input channels and max_len={max_len}" if max_len else \
        f"window={window} and {channels} input channels"
    zoo = "" if kind is None else (f" (create_model({('nv_' if nv else '') + kind!r}, in_features={channels}, window={window}"
                                   + (f", max_len={max_len}" if max_len else "") + ", ...) for a zoo architecture)")
    return (f"{prefix}window: the state dict was saved from a network that reads {said(window, channels, max_len)}, "
            f"the model reads {said(net.window, net.input_size, getattr(net, 'max_len', None))}: its rnn takes "
            f"{window * channels} inputs a step either way, so every tensor has the same shape, but its weights would "
            f"read each input as another sample's other channel; build it with {build}{zoo} to load it (to read "
            "them on purpose over series folded by hand, load its tensors alone: load_state_dict(dict(state_dict)), a "
            "plain dict, carries no record)")
