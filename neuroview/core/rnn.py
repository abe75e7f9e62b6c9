"""NeuroView-RNN: the hidden states of every step, layer and direction into one linear classifier.

>>> import torch, neuroview as nv
>>> from torch import nn
>>> gru = nn.GRU(3, 8, num_layers=2, batch_first=True)
>>> net = nv.NeuroViewRNN(gru, num_classes=4, max_len=20).eval()
>>> x, lengths = torch.randn(5, 20, 3), torch.tensor([20, 17, 9, 20, 1])
>>> net(x, lengths=lengths).shape
torch.Size([5, 4])
>>> exp = net.explain(x, lengths=lengths)
>>> exp.contributions.shape, exp.time_importance.shape   # [B, C, L, D, T, H], [B, C, T]
(torch.Size([5, 4, 2, 1, 20, 8]), torch.Size([5, 4, 20]))
>>> bool(exp.time_importance[2, :, 9:].eq(0).all())      # padded steps contribute exactly 0
True

The decision is ``logits = W f(x) + b`` where ``f(x)`` holds the hidden states ``h_t`` of all
``max_len`` steps of all layers and directions (``[L, D, T, H]``, flattened). Steps past a
sequence's length are set to exactly 0 in ``f(x)``, so their contributions ``W[c, i] * f_i(x)``
are exactly 0.

Normalization (``normalize=True``, the default) is a BatchNorm over ``f(x)`` without affine
parameters. At eval it is folded into the classifier: ``W' = W / sigma`` and
``b' = b - W' mu``. Contributions are taken against the *raw* features, ``W'[c, i] * f_i(x)``,
and the mean shift ``-W' mu`` of every feature (padded ones included) lives in the bias ``b'``,
a constant that is the same for every input. Hence both promises hold at once: the
contributions plus ``b'`` equal the logits exactly, and a padded step (``f_i = 0``) contributes
exactly 0. During training a padded feature is normalized to ``-mu_i / sigma_i``, which is what
the folded bias reproduces at eval, so training and evaluation compute the same function.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .explanation import RNNExplanation
from .explanation_rnn import input_lengths
from .guards import Guarded
from .readable import resolve_baseline
from .head import CodeNorm, adopt_norm, decide, fold, folded_logits, head_dtype, load_fits
from .head_classes import NUM_CLASSES
from .head_stats import mean_features
from .own_decision import require_own_decision
from .refusals import refuse_fx, refuse_packed_export, refuse_single_batch
from ._utils import explaining, extension, factory, param_dtype, plain_head
from . import rnn_load, rnn_record, settings
from .rnn_backbone import backbone_of, check_window, fold_windows, prepare
from .rnn_reach import warn_unreached
from .rnn_steps import swapped_in, unreached_steps, untrained_features

__all__ = ["NeuroViewRNN", "RNNClassifier"]

_REDUCTIONS = ("norm", "abs", "sum")


class NeuroViewRNN(Guarded):
    """Wrap an RNN so that one linear classifier over the hidden states of all steps decides.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> net = nv.NeuroViewRNN(nn.LSTM(2, 16, bidirectional=True), num_classes=3, max_len=50)
    >>> net(torch.randn(50, 8, 2)).shape          # batch_first=False: x is [T, B, F]
    torch.Size([8, 3])
    >>> net.time_importance().shape, net.time_importance(per_layer=True).shape
    (torch.Size([3, 50]), torch.Size([3, 1, 50]))

    Args:
        rnn: ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` with any ``num_layers``, ``bidirectional``,
            ``batch_first``, ``dropout`` and (LSTM) ``proj_size``; it is used as is, not copied,
            and run layer by layer with its own weights, so every layer computes exactly what it
            computes inside the original module (a module put in ``net.rnn``'s place later must be of the same
            class and settings: another is refused by name). Or a user module following the protocol below.
        num_classes: number of classes, at least 2.
        max_len: the number of input steps (samples of ``x``) the classifier reads; with ``window``,
            ``ceil(max_len / window)`` RNN steps. Shorter sequences are padded (their padded steps
            contribute exactly 0); a longer one is an error.
        normalize: BatchNorm (without affine) over the features, folded into the classifier at
            eval so the decision stays exactly linear (see the module docstring).
        dropout: dropout on the (normalized) features in front of the classifier, in training
            only. The classifier reads ``max_len * H`` features per layer and direction, often
            more than there are training series; at eval dropout is the identity, so the
            decision and its explanation are unchanged.
        input_size: user modules only, when they have no ``input_size`` attribute.
        batch_first: user modules only (default True); an nn.RNN's own ``batch_first`` sets
            the layout of ``x`` otherwise.
        window: samples per step: the RNN reads ``window`` consecutive samples of ``x`` at once
            (its ``input_size`` is ``window * F``; the last window is zero-padded), so a series
            of ``max_len`` samples is ``steps = ceil(max_len / window)`` steps. Long series get
            short recurrences, and each importance step is a window of samples.
        shared_steps: the classifier's weight is the sum of a part of its own for every step and
            a part every step shares (``step_shared [C, L*D*H]``, applied to the mean of the
            normalized states over the ``steps``; it starts at 0). The same function class, a
            different prior: evidence that may sit at any step (an event at a varying time) is
            learnt once rather than step by step. At eval the two parts are one weight
            (:meth:`effective_classifier`), so ``explain``, ``time_importance`` and ``sparsify``
            see one linear map over the hidden states, and every explanation still sums to its logit.

    User-module protocol: ``rnn(x)`` receives batch-first ``x [B, T, F]`` (also
    ``lengths=[B]`` when its ``forward`` has a ``lengths`` parameter) and returns the hidden
    states of every step, ``[B, T, H]`` or ``[B, T, L, D, H]`` (layers, directions), or a tuple
    whose first item is that tensor. Padded input steps are zeroed before the call and padded
    output steps are zeroed after it; a module that is not causal (a backward direction) must
    honour ``lengths`` itself for its valid steps to be independent of the padding.

    ``forward(x, lengths=None)``: ``x`` is ``[B, T, F]`` (batch first) or ``[T, B, F]``, or a
    ``PackedSequence``; ``lengths [B]`` gives each sequence's number of valid input steps (samples of ``x``, before a
    ``window`` folds them into RNN steps: a series of 7 samples read 3 at a time is 3 steps, its last one partial).
    """

    def __init__(
        self,
        rnn: nn.Module,
        num_classes: int,
        *,
        max_len: int,
        normalize: bool = True,
        dropout: float = 0.0,
        input_size: int | None = None,
        batch_first: bool | None = None,
        window: int = 1,
        shared_steps: bool = False,
    ):
        super().__init__()
        if not isinstance(max_len, int) or isinstance(max_len, bool) or max_len < 1:
            raise ValueError(f"max_len: expected a positive int (the longest sequence the classifier reads), got {max_len!r}")
        self.rnn = rnn
        self._backbone = bb = backbone_of(rnn, num_classes, dropout, input_size, batch_first)
        self.num_classes = operator.index(num_classes)  # checked by backbone_of: numpy's int as an int
        self.max_len = max_len
        self.window = check_window(window, bb.input_size)
        self.steps = -(-max_len // window)
        self.input_size, self.batch_first = bb.input_size // window, bb.batch_first
        self.num_layers, self.num_directions, self.hidden_size = bb.num_layers, bb.num_directions, bb.hidden_size
        self.num_features = self.num_layers * self.num_directions * self.steps * self.hidden_size
        self.check_finite = True
        self.norm = CodeNorm(self.num_features, **factory(rnn)) if settings.flag("normalize", normalize) else None
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.num_features, num_classes, **factory(rnn))
        self.step_shared = None
        if shared_steps:
            self.step_shared = nn.Linear(self.num_features // self.steps, num_classes, bias=False, **factory(rnn))
            nn.init.zeros_(self.step_shared.weight)

    def __setattr__(self, name, value):  # net.rnn = another of other settings: refused at once (rnn_steps.swapped_in)
        super().__setattr__(name, swapped_in(self, name, value))

    num_classes = NUM_CLASSES  # the head's (and step_shared's, which must agree): a head put in place for another task

    @property
    def feature_shape(self) -> tuple[int, int, int, int]:
        """``(L, D, T, H)``: layers, directions, ``steps`` (``max_len`` over ``window``), hidden features."""
        return (self.num_layers, self.num_directions, self.steps, self.hidden_size)

    # --------------------------------------------------------------- forward
    def _features(self, x, lengths, check: bool = False, *, ends: bool = False) -> tuple[Tensor, ...]:
        given = lengths is not None or not isinstance(x, Tensor)  # check: warn of unreached steps (forward, explain)
        refuse_fx(self, x)  # torch.fx's Proxy, said by name (not as an x of the wrong type)
        x, lengths = prepare(
            x, lengths, batch_first=self.batch_first, input_size=self.input_size, max_len=self.max_len,
            check_finite=self.check_finite, dtype=param_dtype(self.rnn),
        )
        samples = input_lengths(x.shape[1], lengths, x.shape[0], self.max_len) if ends else None  # before the fold
        x, lengths = fold_windows(x, lengths, self.window)
        warn_unreached(self, x, lengths, given, check)  # at eval only: no host read in training
        b, t, _ = x.shape
        refuse_packed_export(self, lengths)
        if check:  # forward (explain is in eval mode): a batch of one its head refuses, before the rnn's BatchNorm moves
            refuse_single_batch([self], b)
        h = self._backbone.states(self.rnn, x, lengths, self.rnn.training)
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=x.device)
        else:
            valid = torch.arange(t, device=x.device) < lengths[:, None]
            h = torch.where(valid[:, None, None, :, None], h, h.new_zeros(()))
        if t < self.steps:
            h = F.pad(h, (0, 0, 0, self.steps - t))
        return (h, lengths, samples) if ends else (h, lengths)  # ends: each series' input samples too

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        rnn_record.keep(self, destination, prefix)  # what no shape tells (the rnn's kind, the window), as the CNN keeps its quantizer

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        # a file of another function (another RNN, nonlinearity, window; a shared part this network has not),
        rnn_load.refuse(self, state_dict, prefix, local_metadata)  # strict=False too: raised before anything is built or copied
        # a sparsified network loads into the constructor it came from: normalize=False (sparsify keeps the
        # standardization it fitted on) and shared_steps (sparsify merges the shared part into the weight)
        if load_fits(self, state_dict, prefix):  # (one torch refuses for a size changes nothing here)
            self.norm = adopt_norm(self.norm, state_dict, prefix, self.classifier, local_metadata, self)
            if self.step_shared is not None and prefix + "step_shared.weight" not in state_dict and prefix + "classifier.weight" in state_dict:
                self.merge_shared()
        if (why := rnn_load.steps_clash(self, state_dict, prefix)) is not None:  # beside torch's size mismatch
            error_msgs.append(why)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def features(self, x, lengths: Tensor | None = None) -> Tensor:
        """``[B, L, D, steps, H]``: the hidden states the classifier reads, exactly 0 at padded steps."""
        return self._features(x, lengths)[0]

    def _weight(self) -> Tensor | None:
        """The classifier's weight with the shared part spread over the steps (``shared_steps``), else None."""
        if self.step_shared is None:
            return None
        plain_head(self.step_shared)  # read as a tensor too: hooks on it would not run
        c, (l, d, t, h) = self.num_classes, self.feature_shape
        shared = (self.step_shared.weight / t).reshape(c, l, d, 1, h).expand(c, l, d, t, h).reshape(c, -1)
        return self.classifier.weight + shared

    def effective_classifier(self) -> tuple[Tensor, Tensor]:
        """``(W [C, U], b [C])`` with ``logits == features.flatten(1) @ W.T + b`` in eval mode."""
        return fold(self.classifier, self.norm, self._weight())

    def head(self, features: Tensor) -> Tensor:
        """Logits from features (``[B, L, D, T, H]`` or flat ``[B, U]``): batch statistics and
        dropout while training, the folded linear map at eval; float32, autocast off."""
        return decide(features.flatten(1), self.classifier, self.norm, self.dropout, self._weight())

    def merge_shared(self) -> "NeuroViewRNN":
        """Fold the shared part of the weight (``shared_steps``) into the classifier's own and drop
        it: the same function, in training and at eval, with one weight. Returns ``self``."""
        w = self._weight()
        if w is not None:
            with torch.no_grad():
                self.classifier.weight.copy_(w)
            del self.step_shared  # out of the submodules (and the state dict), not a None entry there
            self.step_shared = None
        return self

    def forward(self, x, lengths: Tensor | None = None) -> Tensor:
        return self.head(self._features(x, lengths, True)[0])

    # ------------------------------------------------------------ explaining
    @torch.no_grad()
    def explain(self, x, lengths: Tensor | None = None, *, target: Tensor | int | None = None,
                baseline: Tensor | str | None = None) -> RNNExplanation:
        """Exact per-step explanation of ``x``, computed in eval mode in one forward pass.

        ``contributions[b, c, l, d, t, h] = W[c, (l, d, t, h)] * features[b, l, d, t, h]``
        (``[B, C, L, D, steps, H]``) and ``contributions.flatten(2).sum(-1) + bias == logits
        == net.eval()(x, lengths)``; ``time_importance [B, C, steps]`` sums each step's
        contributions over layers, directions and features (formed when read); padded steps are exactly 0.
        ``layer_time()`` / ``direction_time()`` give the ``[B, C, L, T]`` / ``[B, C, L, D, T]`` views.
        ``target`` (an int or a ``[B]`` tensor; default the predicted class) sets the class
        ``exp.for_class()`` answers for. ``baseline``: the features the contributions are taken
        against (``None``: zero; ``"mean"``: the training mean from the normalization's statistics;
        or a ``[L, D, T, H]`` tensor, see :func:`neuroview.mean_codes`); against a nonzero baseline
        a padded step contributes ``-W baseline`` (it differs from the average), not 0.
        Every submodule is left in the mode it was in.
        """
        restore, given = explaining(self), lengths
        try:
            h, lengths, samples = self._features(x, lengths, True, ends=True)  # samples: None where all max_len long
        finally:
            restore()
        w, b = self.effective_classifier()
        dt = head_dtype(h, w)
        h, w, b = h.to(dt), w.detach().to(dt), b.detach().to(dt)  # fold's copies: fixed under training
        w5 = w.reshape(self.num_classes, *self.feature_shape)  # [C, L, D, T, H]
        base, shifted = resolve_baseline(baseline, mean_features(self.norm, baseline), self.feature_shape, w, b)
        with torch.autocast(h.device.type, enabled=False):
            exp = RNNExplanation(
                logits=folded_logits(h.flatten(1), w, b),
                bias=shifted,
                codes=h,
                weight=w5,  # contributions [B, C, L, D, T, H] are formed from codes and weight when read
                baseline=base,
                # time_importance [B, C, T] is formed when read too (at 1,000 classes, 122x the codes: never up front)
                lengths=lengths if lengths is None else lengths.clone(),  # not the caller's tensor
                window=self.window, max_len=self.max_len,  # so its tables and plots can say which samples a step reads
                input_lengths=None if samples is None else samples.to(h.device),  # (where each series ends)
            )
        exp.target = exp.targets(target)
        require_own_decision(self, exp.logits, x, given)  # a subclass's own forward or head: its logits, refused by name
        return exp

    @torch.no_grad()
    def time_importance(self, reduce: str = "norm", *, per_layer: bool = False) -> Tensor:
        """Global per-class step weights, ``[C, steps]`` (``[C, L, steps]`` with ``per_layer``; ``steps`` is
        ``max_len`` over ``window``, each step ``window`` input samples).

        Aggregates the effective classifier weights ``W [C, L, D, T, H]`` (normalization folded in, so they act on raw
        hidden states) over the hidden features, both directions and, unless ``per_layer``, the layers: ``reduce="norm"``
        (default) the Euclidean norm of those weights, ``"abs"`` the sum of absolute weights, ``"sum"`` the signed sum.
        A scale of the step's weights, not what it moved: where states lie in [-1, 1] (GRU, LSTM without ``proj_size``,
        tanh RNN) a step moves class c's logit by at most the sum of its absolute weights (``"abs"`` but for constant
        features; at most the norm times the root of the step's feature count); a ReLU RNN's states and an LSTM's
        projected ones are unbounded (a probe measured contributions at 9.7x and 1.2x the norm): there, and for what
        moved a decision, compare the contributions measured on data, ``net.explain(x).time_importance``.

        A weight is no importance where no training series reached its step: padding there gets no gradient, so the
        weight keeps its random initial value (and the normalization's floored variance scales it up). Such steps
        (:meth:`unreached_steps`, read from the normalization's statistics) are reported as 0, and so is each feature
        that was the same for every sample of each training batch (a dead hidden feature: its weights never trained
        either; :func:`~neuroview.core.head.constant_features`). ``explain`` keeps both. Without a normalization
        nothing records which steps training reached: steps that few series reach then carry near-initial weights.
        """
        if reduce not in _REDUCTIONS:
            raise ValueError(f"reduce: expected one of {_REDUCTIONS}, got {reduce!r}")
        w = self.effective_classifier()[0].detach().reshape(self.num_classes, *self.feature_shape)
        untrained = untrained_features(self.norm, self.feature_shape)  # initialisation noise, not importance
        w = w if untrained is None else w.masked_fill(untrained.to(w.device), 0.0)
        dims = (2, 4) if per_layer else (1, 2, 4)
        if reduce == "norm":
            return w.square().sum(dims).sqrt()
        return (w.abs() if reduce == "abs" else w).sum(dims)

    def unreached_steps(self) -> Tensor | None:
        """``[steps]`` bool: the steps no training series reached, by the normalization's statistics (:mod:`.rnn_steps`)."""
        return unreached_steps(self.norm, self.feature_shape)

    def unit_gallery(self, loader, units=None, k: int = 6, *, steps=None, **kw):
        """What each of ``units`` (time steps; ``steps=`` is the same argument by its other name) reads and where it
        weighs most in ``loader``'s samples: ``nv.unit_gallery(self, loader, units=steps, k)``."""
        if (units is None) == (steps is None):
            raise TypeError("units: expected the time steps to show as units= (or steps=, its other name), got "
                            + ("neither" if units is None else f"both: units={units!r} and steps={steps!r}"))
        return extension("unit_gallery")(self, loader, units if steps is None else steps, k, **kw)

    def unwrap(self) -> nn.Module:
        """The rnn, exactly as it was given (it shares its weights with this network)."""
        return self.rnn

    def extra_repr(self) -> str:
        win = f", window={self.window}" if self.window > 1 else ""
        win += ", shared_steps=True" if self.step_shared is not None else ""
        return (f"num_classes={self.num_classes}, max_len={self.max_len}{win}, input_size={self.input_size}, "
                f"layers={self.num_layers}, directions={self.num_directions}, hidden={self.hidden_size}, features={self.num_features}")


class RNNClassifier(nn.Module):
    """The standard counterpart: a linear classifier on the last layer's final hidden state.

    >>> import torch, neuroview as nv
    >>> from torch import nn
    >>> std = nv.RNNClassifier(nn.GRU(3, 8, batch_first=True, bidirectional=True), num_classes=4)
    >>> std(torch.randn(5, 20, 3), lengths=torch.tensor([20, 17, 9, 20, 1])).shape
    torch.Size([5, 4])

    With ``lengths`` (or a PackedSequence) the forward direction's state is taken at each
    sequence's own last step, the backward direction's after it has read the sequence from its
    last valid step back to the first, i.e. exactly what ``nn.GRU`` gives for a packed input.
    ``NeuroViewRNN(std.rnn, ...)`` wraps the same weights. ``dropout`` acts on the last state
    while training, like NeuroViewRNN's on its features. User modules (the protocol of
    :class:`NeuroViewRNN`) work too: their last layer's states at those same steps are used. States ``[B, T, H]``
    are read as one direction, except a one-layer bidirectional RNN's output (the dry run tells: the first half
    causal, the second moved by later steps only), whose second half is read at step 0; a multi-layer bidirectional
    RNN's output is not told apart from a conv front end's look-ahead: return it as ``[B, T, L, D, H]``.
    ``window`` folds consecutive samples into one step, as in :class:`NeuroViewRNN`.
    """

    def __init__(
        self, rnn: nn.Module, num_classes: int, *, dropout: float = 0.0, input_size: int | None = None,
        batch_first: bool | None = None, window: int = 1,
    ):
        super().__init__()
        self.rnn = rnn
        self._backbone = bb = backbone_of(rnn, num_classes, dropout, input_size, batch_first, "RNNClassifier")
        self.num_classes = operator.index(num_classes)  # checked by backbone_of: numpy's int as an int
        self.window = check_window(window, bb.input_size)
        self.input_size, self.batch_first = bb.input_size // window, bb.batch_first
        self.num_directions, self.hidden_size = bb.num_directions, bb.hidden_size
        if getattr(bb, "reading", None) == "split":  # a user module's [B, T, 2H]: read as two directions of H
            self.num_directions, self.hidden_size = 2, bb.hidden_size // 2
        self.check_finite = True
        self.dropout = nn.Dropout(dropout)  # on the last state, training only: the counterpart of NeuroViewRNN's
        self.classifier = nn.Linear(self.num_directions * self.hidden_size, num_classes, **factory(rnn))

    def last_state(self, x, lengths: Tensor | None = None) -> Tensor:
        """``[B, D * H]``: the last layer's final hidden state of each direction."""
        x, lengths = prepare(
            x, lengths, batch_first=self.batch_first, input_size=self.input_size, max_len=None,
            check_finite=self.check_finite, dtype=param_dtype(self.rnn),
        )
        x, lengths = fold_windows(x, lengths, self.window)
        return self._backbone.final_state(self.rnn, x, lengths)

    def forward(self, x, lengths: Tensor | None = None) -> Tensor:
        return self.classifier(self.dropout(self.last_state(x, lengths)))

    def __setattr__(self, name, value):  # as NeuroViewRNN's
        super().__setattr__(name, swapped_in(self, name, value))

    num_classes = NUM_CLASSES  # as NeuroViewRNN's: its classifier's

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        rnn_record.keep(self, destination, prefix)  # its window and channels: as NeuroViewRNN's, no shape tells them

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args):
        rnn_load.refuse(self, state_dict, prefix, local_metadata)  # a file that reads another window: strict=False too
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, input_size={self.input_size}, directions={self.num_directions}, hidden={self.hidden_size}"


