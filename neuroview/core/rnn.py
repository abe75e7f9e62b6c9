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

import inspect
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ._factory import factory_kwargs
from .explanation import RNNExplanation

__all__ = ["NeuroViewRNN", "RNNClassifier"]

_REDUCTIONS = ("norm", "abs", "sum")


class _Backbone:
    """What the wrappers need to know about an RNN: sizes, layout, and how to run it.

    For ``nn.RNN``/``nn.LSTM``/``nn.GRU`` the module is run one layer at a time with its own
    weights (``torch.func.functional_call`` on a weightless single-layer template), because
    PyTorch's multi-layer modules return only the last layer's states. For any other module
    the user protocol applies (see :class:`NeuroViewRNN`).
    """

    def __init__(self, rnn: nn.Module, input_size: int | None, batch_first: bool | None):
        self.builtin = isinstance(rnn, nn.RNNBase)
        if self.builtin:
            if batch_first is not None and bool(batch_first) != rnn.batch_first:
                raise ValueError(
                    f"batch_first: the rnn's own batch_first={rnn.batch_first} sets the layout of x; got batch_first={batch_first}"
                )
            if input_size is not None and input_size != rnn.input_size:
                raise ValueError(f"input_size: expected the rnn's input_size={rnn.input_size} (or None), got {input_size}")
            self.batch_first = rnn.batch_first
            self.input_size = rnn.input_size
            self.num_layers = rnn.num_layers
            self.num_directions = 2 if rnn.bidirectional else 1
            self.hidden_size = rnn.proj_size or rnn.hidden_size  # an LSTM with proj_size outputs that width
            self.dropout = float(rnn.dropout)
            self.accepts_lengths = True
            self.templates = tuple(self._template(rnn, layer) for layer in range(rnn.num_layers))
            # (template name, rnn name) per layer: weight_ih_l0 <- weight_ih_l2, ..._reverse likewise
            self.names = []
            for layer in range(rnn.num_layers):
                pairs = []
                for name in rnn._flat_weights_names:
                    for suffix in (f"_l{layer}", f"_l{layer}_reverse"):
                        if name.endswith(suffix):
                            pairs.append((name[: -len(suffix)] + suffix.replace(f"_l{layer}", "_l0"), name))
                self.names.append(tuple(pairs))
            return
        if isinstance(rnn, nn.RNNCellBase):
            raise TypeError(f"rnn: expected nn.RNN/nn.LSTM/nn.GRU or a module returning per-step states, got the cell {type(rnn).__name__}")
        self.batch_first = True if batch_first is None else bool(batch_first)
        size = input_size if input_size is not None else getattr(rnn, "input_size", None)
        if not isinstance(size, int) or size < 1:
            raise ValueError(
                f"input_size: a {type(rnn).__name__} has no int attribute input_size; pass input_size=<number of input features>"
                + ("" if size is None else f" (got {size!r})")
            )
        self.input_size = size
        self.accepts_lengths = "lengths" in inspect.signature(rnn.forward).parameters
        self.templates, self.names, self.dropout = (), [], 0.0

    @staticmethod
    def _template(rnn: nn.RNNBase, layer: int) -> nn.RNNBase:
        d = 2 if rnn.bidirectional else 1
        width = rnn.proj_size or rnn.hidden_size
        kw = dict(
            input_size=rnn.input_size if layer == 0 else d * width,
            hidden_size=rnn.hidden_size,
            num_layers=1,
            bias=rnn.bias,
            batch_first=True,
            bidirectional=rnn.bidirectional,
        )
        kind = next((k for k in (nn.LSTM, nn.GRU, nn.RNN) if isinstance(rnn, k)), None)
        if kind is None:
            raise TypeError(f"rnn: expected nn.RNN, nn.LSTM or nn.GRU (or a subclass), got {type(rnn).__name__}")
        if kind is nn.LSTM:
            kw["proj_size"] = rnn.proj_size
        elif kind is nn.RNN:
            kw["nonlinearity"] = rnn.nonlinearity
        # On the meta device: the template owns no memory and is never trained; functional_call
        # swaps the real weights in for every call.
        with torch.device("meta"):
            return kind(**kw)

    def discover(self, rnn: nn.Module) -> None:
        """Dry run of a user module on zeros: learn (L, D, H) from its output."""
        x = torch.zeros(2, 3, self.input_size, **factory_kwargs(rnn))
        modes = {m: m.training for m in rnn.modules()}
        try:
            rnn.eval()
            with torch.no_grad():
                try:
                    out = rnn(x, lengths=torch.full((2,), 3, device=x.device)) if self.accepts_lengths else rnn(x)
                except Exception as e:
                    raise ValueError(
                        f"rnn: the dry run on a zero input of shape {tuple(x.shape)} [B, T, F] failed "
                        f"({type(e).__name__}: {e}); check input_size and the protocol in NeuroViewRNN's docstring"
                    ) from e
        finally:
            for m, mode in modes.items():
                m.train(mode)
        h = _user_states(out, 2, 3)
        _, _, self.num_layers, self.num_directions, self.hidden_size = h.shape

    def states(self, rnn: nn.Module, x: Tensor, lengths: Tensor | None, training: bool) -> Tensor:
        """``[B, L, D, T, H]`` hidden states of batch-first ``x``; padded steps may hold anything."""
        b, t, _ = x.shape
        if not self.builtin:
            out = rnn(x, lengths=lengths if lengths is not None else x.new_full((b,), t, dtype=torch.long)) if self.accepts_lengths else rnn(x)
            return _user_states(out, b, t).permute(0, 2, 3, 1, 4)
        # A causal (one-direction) RNN's step t never sees later steps, so padding needs no
        # packing there; a backward direction must start at each sequence's own last step.
        packed = lengths is not None and self.num_directions == 2 and bool((lengths < t).any())
        inp: Tensor | PackedSequence = (
            pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False) if packed else x
        )
        outs = []
        for layer, template in enumerate(self.templates):
            if layer and self.dropout and training:  # what nn.RNN does between layers
                inp = (
                    PackedSequence(F.dropout(inp.data, self.dropout, True), inp.batch_sizes, inp.sorted_indices, inp.unsorted_indices)
                    if packed else F.dropout(inp, self.dropout, True)
                )
            params = {new: getattr(rnn, old) for new, old in self.names[layer]}
            inp = functional_call(template, params, (inp,))[0]
            outs.append(pad_packed_sequence(inp, batch_first=True, total_length=t)[0] if packed else inp)
        h = torch.stack(outs, 1) if len(outs) > 1 else outs[0][:, None]  # [B, L, T, D * H]; no copy for one layer
        return h.unflatten(-1, (self.num_directions, self.hidden_size)).transpose(2, 3)


def _user_states(out, b: int, t: int) -> Tensor:
    if isinstance(out, tuple) and out and isinstance(out[0], Tensor):
        out = out[0]  # nn.RNN-like (output, state) pairs
    if not isinstance(out, Tensor) or out.dim() not in (3, 5) or tuple(out.shape[:2]) != (b, t):
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"rnn: expected its forward to return per-step hidden states [B, T, H] or [B, T, L, D, H] = ({b}, {t}, ...), got {shape}"
        )
    return out if out.dim() == 5 else out[:, :, None, None, :]


def _param_dtype(module: nn.Module) -> torch.dtype | None:
    p = next(module.parameters(), None)
    return None if p is None else p.dtype


def _prepare(
    x, lengths, *, batch_first: bool, input_size: int, max_len: int | None, check_finite: bool,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Batch-first ``x [B, T, F]`` with padded positions zeroed, and ``lengths`` (None = all full)."""
    layout = "[B, T, F]" if batch_first else "[T, B, F]"
    if isinstance(x, PackedSequence):
        if lengths is not None:
            raise ValueError("lengths: a PackedSequence carries its own lengths; pass lengths=None")
        x, lengths = pad_packed_sequence(x, batch_first=True)
        lengths = lengths.to(x.device)
    elif isinstance(x, Tensor):
        if x.dim() != 3:
            raise ValueError(f"x: expected a tensor of rank 3 {layout} or a PackedSequence, got shape {tuple(x.shape)}")
        if not batch_first:
            x = x.transpose(0, 1)
    else:
        raise TypeError(f"x: expected a torch.Tensor {layout} or a PackedSequence, got {type(x).__name__}")
    b, t, f = x.shape
    if b == 0 or t == 0:
        raise ValueError(f"x: expected a non-empty batch of non-empty sequences, got shape {tuple(x.shape)} as [B, T, F]")
    if f != input_size:
        raise ValueError(f"x: expected {input_size} features in the last dim {layout}, got shape {tuple(x.shape)} as [B, T, F]")
    if not x.is_floating_point():
        raise TypeError(f"x: expected a floating-point tensor, got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"x: expected dtype {dtype} (the model's parameters), got {x.dtype}; convert x (x.to({dtype})) or the model")
    if lengths is not None:
        if not isinstance(lengths, Tensor):
            lengths = torch.as_tensor(lengths)
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool or lengths.shape != (b,):
            raise ValueError(f"lengths: expected an integer tensor of shape [{b}], got dtype {lengths.dtype} and shape {tuple(lengths.shape)}")
        lengths = lengths.to(device=x.device, dtype=torch.long)
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > t:
            raise ValueError(f"lengths: expected values in [1, {t}] (T of x), got min {lo} and max {hi}")
        if max_len is not None and hi > max_len:
            raise ValueError(
                f"x: a sequence has {hi} steps, more than max_len={max_len}; truncate it explicitly "
                f"(x[:, :{max_len}] and lengths.clamp(max={max_len})) or build the network with a larger max_len"
            )
        if t > hi:  # only padding lies past the longest sequence
            x, t = x[:, :hi], hi
        if lo == t:
            lengths = None
    if max_len is not None and t > max_len:
        raise ValueError(
            f"x: sequences have {t} steps, more than max_len={max_len}; truncate them explicitly "
            f"(x[:, :{max_len}]) or build the network with a larger max_len"
        )
    if lengths is not None:
        # Padding may hold anything (NaN included): the RNN must not see it, and NaN * 0 is NaN.
        valid = torch.arange(t, device=x.device) < lengths[:, None]
        x = torch.where(valid[..., None], x, x.new_zeros(()))
    if check_finite and not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).sum().item()
        raise ValueError(f"x: contains NaN or Inf in {bad} values of its valid steps; clean the input first")
    return x, lengths


class NeuroViewRNN(nn.Module):
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
            computes inside the original module. Or a user module following the protocol below.
        num_classes: number of classes, at least 2.
        max_len: the number of steps the classifier reads. Shorter sequences are padded (their
            padded steps contribute exactly 0); a longer one is an error.
        normalize: BatchNorm (without affine) over the features, folded into the classifier at
            eval so the decision stays exactly linear (see the module docstring).
        dropout: dropout on the (normalized) features in front of the classifier, in training
            only. The classifier reads ``max_len * H`` features per layer and direction, often
            more than there are training series; at eval dropout is the identity, so the
            decision and its explanation are unchanged.
        input_size: user modules only, when they have no ``input_size`` attribute.
        batch_first: user modules only (default True); an nn.RNN's own ``batch_first`` sets
            the layout of ``x`` otherwise.

    User-module protocol: ``rnn(x)`` receives batch-first ``x [B, T, F]`` (also
    ``lengths=[B]`` when its ``forward`` has a ``lengths`` parameter) and returns the hidden
    states of every step, ``[B, T, H]`` or ``[B, T, L, D, H]`` (layers, directions), or a tuple
    whose first item is that tensor. Padded input steps are zeroed before the call and padded
    output steps are zeroed after it; a module that is not causal (a backward direction) must
    honour ``lengths`` itself for its valid steps to be independent of the padding.

    ``forward(x, lengths=None)``: ``x`` is ``[B, T, F]`` (batch first) or ``[T, B, F]``, or a
    ``PackedSequence``; ``lengths [B]`` gives each sequence's number of valid steps.
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
    ):
        super().__init__()
        if not isinstance(max_len, int) or isinstance(max_len, bool) or max_len < 1:
            raise ValueError(f"max_len: expected a positive int (the longest sequence the classifier reads), got {max_len!r}")
        self.rnn = rnn
        self._backbone = bb = _backbone(rnn, num_classes, dropout, input_size, batch_first)
        self.num_classes = num_classes
        self.max_len = max_len
        self.input_size = bb.input_size
        self.batch_first = bb.batch_first
        self.num_layers, self.num_directions, self.hidden_size = bb.num_layers, bb.num_directions, bb.hidden_size
        self.num_features = self.num_layers * self.num_directions * max_len * self.hidden_size
        self.check_finite = True
        self.norm = nn.BatchNorm1d(self.num_features, affine=False) if normalize else None
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.num_features, num_classes, **factory_kwargs(rnn))
        if self.norm is not None:
            self.norm.to(**factory_kwargs(rnn))

    @property
    def feature_shape(self) -> tuple[int, int, int, int]:
        """``(L, D, T, H)``: layers, directions, ``max_len`` steps, hidden features."""
        return (self.num_layers, self.num_directions, self.max_len, self.hidden_size)

    # --------------------------------------------------------------- forward
    def _features(self, x, lengths) -> tuple[Tensor, Tensor]:
        x, lengths = _prepare(
            x, lengths, batch_first=self.batch_first, input_size=self.input_size, max_len=self.max_len,
            check_finite=self.check_finite, dtype=_param_dtype(self),
        )
        b, t, _ = x.shape
        h = self._backbone.states(self.rnn, x, lengths, self.training)
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=x.device)
        else:
            valid = torch.arange(t, device=x.device) < lengths[:, None]
            h = torch.where(valid[:, None, None, :, None], h, h.new_zeros(()))
        if t < self.max_len:
            h = F.pad(h, (0, 0, 0, self.max_len - t))
        return h, lengths

    def features(self, x, lengths: Tensor | None = None) -> Tensor:
        """``[B, L, D, max_len, H]``: the hidden states the classifier reads, exactly 0 at padded steps."""
        return self._features(x, lengths)[0]

    def effective_classifier(self) -> tuple[Tensor, Tensor]:
        """``(W [C, U], b [C])`` with ``logits == features.flatten(1) @ W.T + b`` in eval mode."""
        w, b = self.classifier.weight, self.classifier.bias
        if self.norm is None:
            return w, b
        w = w * torch.rsqrt(self.norm.running_var + self.norm.eps)
        return w, b - w @ self.norm.running_mean

    def head(self, features: Tensor) -> Tensor:
        """Logits from features (``[B, L, D, T, H]`` or flat ``[B, U]``): batch statistics and
        dropout while training, the folded linear map at eval."""
        features = features.flatten(1)
        if self.training:
            return self.classifier(self.dropout(self.norm(features) if self.norm is not None else features))
        w, b = self.effective_classifier()
        return F.linear(features, w, b)

    def forward(self, x, lengths: Tensor | None = None) -> Tensor:
        return self.head(self._features(x, lengths)[0])

    # ------------------------------------------------------------ explaining
    @torch.no_grad()
    def explain(self, x, lengths: Tensor | None = None) -> RNNExplanation:
        """Exact per-step explanation of ``x``, computed in eval mode in one forward pass.

        ``contributions[b, c, l, d, t, h] = W[c, (l, d, t, h)] * features[b, l, d, t, h]``
        (``[B, C, L, D, max_len, H]``) and ``contributions.flatten(2).sum(-1) + bias == logits
        == net.eval()(x, lengths)``; ``time_importance [B, C, max_len]`` sums each step's
        contributions over layers, directions and features; padded steps are exactly 0.
        ``layer_time()`` / ``direction_time()`` give the ``[B, C, L, T]`` / ``[B, C, L, D, T]`` views.
        """
        was_training = self.training
        self.eval()
        try:
            h, lengths = self._features(x, lengths)
        finally:
            self.train(was_training)
        w, b = self.effective_classifier()
        flat = h.flatten(1)
        w5 = w.detach().reshape(self.num_classes, *self.feature_shape)  # [C, L, D, T, H]
        n_ld, (steps, width) = self.num_layers * self.num_directions, self.feature_shape[2:]
        return RNNExplanation(
            logits=F.linear(flat, w, b),
            bias=b.detach().clone(),
            contributions=None,  # formed from codes and weight on first use (see RNNExplanation)
            codes=h,
            # per step, one [B, L*D*H] x [L*D*H, C] product: no [B, C, L, D, T, H] tensor needed
            time_importance=torch.einsum("bkth,ckth->bct", h.reshape(len(h), n_ld, steps, width), w5.reshape(-1, n_ld, steps, width)),
            lengths=lengths,
            weight=w5.clone(),
        )

    @torch.no_grad()
    def time_importance(self, reduce: str = "norm", *, per_layer: bool = False) -> Tensor:
        """Global per-class step weights, ``[C, max_len]`` (``[C, L, max_len]`` with ``per_layer``).

        Aggregates the effective classifier weights ``W [C, L, D, T, H]`` (normalization folded
        in, so they act on raw hidden states) over the hidden features, both directions and,
        unless ``per_layer``, the layers. ``reduce="norm"`` (default) is the Euclidean norm of
        those weights: how strongly step t can move class c's logit, since LSTM/GRU/tanh states
        lie in [-1, 1]; ``"abs"`` the sum of absolute weights; ``"sum"`` the signed sum.
        """
        if reduce not in _REDUCTIONS:
            raise ValueError(f"reduce: expected one of {_REDUCTIONS}, got {reduce!r}")
        w = self.effective_classifier()[0].detach().reshape(self.num_classes, *self.feature_shape)
        dims = (2, 4) if per_layer else (1, 2, 4)
        if reduce == "norm":
            return w.square().sum(dims).sqrt()
        return (w.abs() if reduce == "abs" else w).sum(dims)

    def unwrap(self) -> nn.Module:
        """The rnn, exactly as it was given (it shares its weights with this network)."""
        return self.rnn

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, max_len={self.max_len}, input_size={self.input_size}, "
                f"layers={self.num_layers}, directions={self.num_directions}, hidden={self.hidden_size}, "
                f"features={self.num_features}")


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
    :class:`NeuroViewRNN`) work too: their last layer's states at those same steps are used.
    """

    def __init__(
        self, rnn: nn.Module, num_classes: int, *, dropout: float = 0.0, input_size: int | None = None, batch_first: bool | None = None
    ):
        super().__init__()
        self.rnn = rnn
        self._backbone = bb = _backbone(rnn, num_classes, dropout, input_size, batch_first)
        self.num_classes = num_classes
        self.input_size, self.batch_first = bb.input_size, bb.batch_first
        self.num_directions, self.hidden_size = bb.num_directions, bb.hidden_size
        self.check_finite = True
        self.dropout = nn.Dropout(dropout)  # on the last state, training only: the counterpart of NeuroViewRNN's
        self.classifier = nn.Linear(self.num_directions * self.hidden_size, num_classes, **factory_kwargs(rnn))

    def last_state(self, x, lengths: Tensor | None = None) -> Tensor:
        """``[B, D * H]``: the last layer's final hidden state of each direction."""
        x, lengths = _prepare(
            x, lengths, batch_first=self.batch_first, input_size=self.input_size, max_len=None,
            check_finite=self.check_finite, dtype=_param_dtype(self),
        )
        b, t, _ = x.shape
        if self._backbone.builtin:
            if lengths is not None:
                inp = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            else:
                inp = x if self.rnn.batch_first else x.transpose(0, 1)
            state = self.rnn(inp)[1]
            h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
            return h_n[-self.num_directions:].transpose(0, 1).reshape(b, -1)
        h = self._backbone.states(self.rnn, x, lengths, self.training)[:, -1]  # [B, D, T, H]
        last = (lengths - 1) if lengths is not None else torch.full((b,), t - 1, device=x.device)
        out = [h[torch.arange(b, device=x.device), 0, last]]
        if self.num_directions == 2:
            out.append(h[:, 1, 0])
        return torch.cat(out, -1)

    def forward(self, x, lengths: Tensor | None = None) -> Tensor:
        return self.classifier(self.dropout(self.last_state(x, lengths)))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, input_size={self.input_size}, directions={self.num_directions}, hidden={self.hidden_size}"


def _backbone(rnn: nn.Module, num_classes: int, dropout: float, input_size: int | None, batch_first: bool | None) -> _Backbone:
    """The argument checks both wrappers share, then what they need to know about ``rnn``."""
    if not isinstance(rnn, nn.Module):
        raise TypeError(f"rnn: expected an nn.Module, got {type(rnn).__name__}")
    if isinstance(rnn, (NeuroViewRNN, RNNClassifier)):
        raise TypeError(f"rnn: already a {type(rnn).__name__}; wrap its .rnn instead")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"num_classes: expected an int >= 2, got {num_classes!r}")
    bb = _Backbone(rnn, input_size, batch_first)
    if not bb.builtin:
        bb.discover(rnn)
    return bb
