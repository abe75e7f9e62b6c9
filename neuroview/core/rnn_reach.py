"""The eval warning of :class:`~neuroview.core.rnn.NeuroViewRNN` where a series reaches steps no training series reached
(:func:`~neuroview.core.rnn_steps.unreached_steps`: their classifier weights are the random initial ones, which the
logits add in), kept apart from :mod:`.rnn` for room; and :class:`one_warning`, under which an ensemble of RNNs says
its members' warnings once a call.

Only the steps after the last one training reached count: a series longer than every training series reaches them,
and cutting it there (at least one step kept) is the advice. A leading run of steps whose features were exactly 0 for
every training series (a bias-free GRU fed series that start with zeros) reads 0 at eval too: no warning there.

Cost at eval (none in training, under ``torch.compile`` / ``torch.export``, or without a normalization): the unreached
steps are remembered per normalization until its statistics change, so a network whose last step was reached pays
nothing per call, nor a batch shorter than its first unreached step. Otherwise, with ``lengths`` one host read of two
numbers; without them a pass over the batch's tail past the first unreached step (which series hold a nonzero sample
there) and that one host read.

>>> import torch
>>> from torch import nn
>>> from neuroview import NeuroViewRNN
>>> net = NeuroViewRNN(nn.GRU(1, 4, batch_first=True), 2, max_len=6).train()
>>> _ = net(torch.randn(8, 6, 1), lengths=torch.full((8,), 4))      # training series of 4 samples: steps 4-5 unreached
>>> _ = net.eval()(torch.randn(2, 6, 1), lengths=torch.tensor([6, 3]))  # doctest: +SKIP
UserWarning: x: 1 of 2 series reach steps 4-5, which no training series reached ... cut the series to the first 4 ...
"""

from __future__ import annotations

import contextvars
import os
import sys
import warnings
import weakref

import torch
from torch import Tensor, nn

from .rnn_steps import unreached_steps

__all__ = ["warn_unreached", "one_warning"]

#: frames of these files are the package's (or torch's: ``Module.__call__``, ``no_grad``): a warning names the first
#: frame outside them, the user's line, however many calls deep (an ensemble's member, ``net.forward`` called bare)
_INSIDE = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep, os.path.dirname(torch.__file__) + os.sep)

_SAID: contextvars.ContextVar[list | None] = contextvars.ContextVar("neuroview_unreached_said", default=None)

_SEEN: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()  # norm -> (its state, k, steps)


def _tail(norm: nn.Module, feature_shape: tuple[int, int, int, int]) -> int | None:
    """The first step of the unreached steps after the last step training reached (0: none reached), None where the
    last step was reached; remembered until ``norm``'s statistics change (a training batch, a load, a copy: each bumps
    a buffer's version or replaces it), so an eval call pays no pass over them nor a host read."""
    bufs = [getattr(norm, k, None) for k in ("running_mean", "running_var", "num_batches_tracked")]
    if any(not isinstance(t, Tensor) for t in bufs):
        return None
    try:
        state = (feature_shape, getattr(norm, "momentum", None), *[(id(t), t.data_ptr(), t._version, t.device) for t in bufs])
    except RuntimeError:  # inference tensors (a network built under torch.inference_mode) keep no version: read afresh
        state = None
    seen = _SEEN.get(norm)
    if state is None or seen is None or seen[0] != state:
        mask = unreached_steps(norm, feature_shape)
        reached = [] if mask is None else (~mask).nonzero().flatten().tolist()
        k = None if mask is None or (reached and reached[-1] == len(mask) - 1) else (reached[-1] + 1 if reached else 0)
        seen = _SEEN[norm] = (state, k)
    return seen[1]


def _named(steps: range, window: int, max_len: int) -> str:
    """``range(5, 8)`` as ``"steps 5-7"``; with a window, the input samples they read too."""
    a, b = steps[0], steps[-1]
    said = ("steps " if b > a else "step ") + (f"{a}-{b}" if b > a else f"{a}")
    return said + (f" (input samples {a * window}-{min((b + 1) * window, max_len) - 1})" if window > 1 else "")


def warn_unreached(net: nn.Module, x: Tensor, lengths: Tensor | None, given: bool, check: bool = True) -> None:
    """Warn, once for the batch, where a series of ``x`` (batch first, windows folded: ``[B, t, window * F]``) reaches
    the steps after the last one training reached: its classifier weights there are the random initial ones, which the
    logits add in (and ``explain`` credits). A series reaches its ``lengths`` (in steps; None: all ``t``, where lengths
    were ``given``), else the nonzero extent of ``x`` past that step (zero padding reaches nothing). Nothing in training
    mode, nor without ``check``; the warning names the caller's line outside the package."""
    # compiling first: reading x.is_meta under torch.compile made one more graph, of that attribute alone
    if (not check or torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()
            or net.training or net.norm is None or x.is_meta):  # no host read in training, nor values in a traced graph
        return
    k = _tail(net.norm, net.feature_shape)
    b, t = x.shape[:2]
    if k is None or k >= t or b == 0:
        return
    if lengths is None and given:  # a PackedSequence's series all whole: no read at all
        n, hi = b, t
    else:
        if lengths is None:  # the last step past k holding a nonzero sample, + 1 (k where none does)
            lengths = k + (x[:, k:].ne(0).any(-1) * torch.arange(1, t - k + 1, device=x.device)).amax(1)
        n, hi = torch.stack([(lengths > k).sum(), lengths.max().long()]).tolist()
    if n == 0:
        return
    w, cut = net.window, k * net.window
    advice = (f"cut the series to the first {cut} input samples (lengths=lengths.clamp(max={cut}), or x[:, :{cut}] "
              "batch first), or train on series that long" if k else "no training series reached any step: train on "
              "series that are not all zeros")
    _say(net, f"x: {n} of {b} series reach {_named(range(k, hi), w, net.max_len)}, which no training series reached "
              f"(net.unreached_steps()): the classifier's weights there never trained, they are their random initial "
              f"values, and the logits (and explain's contributions) add them in; {advice}")


def _say(who: nn.Module, message: str) -> None:
    """Warn with ``message`` at the first frame outside the package and torch, or keep it for :class:`one_warning`."""
    said = _SAID.get()
    if said is not None:
        said.append((who, message))
        return
    frame, level = sys._getframe(1), 2  # stacklevel 2: this function's caller, frame
    while frame is not None and frame.f_code.co_filename.startswith(_INSIDE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, UserWarning, stacklevel=level if frame is not None else 2)


class one_warning:
    """``with one_warning(members): ...``: the unreached-step warnings of ``members`` (an ensemble's RNNs) in the block
    are said once as it ends (not where it raises), each message once, prefixed by the members that gave it."""

    def __init__(self, members, owner: nn.Module | None = None):
        self.members, self.owner = list(members), owner

    def __enter__(self) -> "one_warning":
        self.said: list = []
        self.token = _SAID.set(self.said)
        return self

    def __exit__(self, kind, value, tb) -> bool:
        _SAID.reset(self.token)
        if kind is None and self.said:
            by: dict[str, list[str]] = {}
            for who, message in self.said:  # a member found by identity (an RNN wrapped in one: "?")
                by.setdefault(message, []).append(next((str(i) for i, m in enumerate(self.members) if m is who), "?"))
            k = len(self.members)
            _say(self.owner, "; ".join(f"member{'s' if len(i) > 1 else ''} {', '.join(i)} of {k}: {m}"
                                       for m, i in by.items()))
        return False
