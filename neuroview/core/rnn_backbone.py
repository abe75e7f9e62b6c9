"""How NeuroView-RNN runs an RNN: its sizes and layout, its per-layer states, and the input checks.

:class:`Backbone` runs ``nn.RNN``/``nn.LSTM``/``nn.GRU`` one layer at a time with the module's
own weights (PyTorch's multi-layer modules return only the last layer's states), or a user
module that returns per-step states; :func:`prepare` turns ``x`` (and ``lengths``) into a
batch-first tensor with zeroed padding, or a clear error.

Imports only torch.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ._devices import autocast_enabled, require_device
from ._utils import factory, positive_int, require_finite, restore_modes
from .rnn_steps import (final_by_length, flat_reading, lengths_error, own_forward_error, packed_failure, read_final, hooked,
                        refuse_shape, refuse_swapped, refuse_width, rnn_config)

class Backbone:
    """What the wrappers need to know about an RNN: sizes, layout, and how to run it.

    For ``nn.RNN``/``nn.LSTM``/``nn.GRU`` the module is run one layer at a time with its own
    weights (``torch.func.functional_call`` on a weightless single-layer template), because
    PyTorch's multi-layer modules return only the last layer's states. For any other module
    the user protocol applies (see :class:`NeuroViewRNN`).
    """
    packs = True  #: False once the rnn's own forward or hooks failed on a PackedSequence (a new net.rnn: True)

    def __init__(self, rnn: nn.Module, input_size: int | None, batch_first: bool | None, wrapper: str = "NeuroViewRNN"):
        self.builtin, self.wrapper = isinstance(rnn, nn.RNNBase), wrapper
        self.config = rnn_config(rnn)  # what net.rnn must stay: a module put in its place is checked against it
        if self.builtin:
            if batch_first is not None and bool(batch_first) != rnn.batch_first:
                raise ValueError(
                    f"batch_first: the rnn's own batch_first={rnn.batch_first} sets the layout of x; got batch_first={batch_first}"
                )
            if input_size is not None and input_size != rnn.input_size:
                raise ValueError(f"input_size: expected the rnn's input_size={rnn.input_size} (or None), got {input_size}")
            self.batch_first, self.input_size, self.num_layers = rnn.batch_first, rnn.input_size, rnn.num_layers
            self.num_directions = 2 if rnn.bidirectional else 1
            self.hidden_size = rnn.proj_size or rnn.hidden_size  # an LSTM with proj_size outputs that width
            self.accepts_lengths = self.honours_lengths = True
            self.templates = tuple(self._template(rnn, layer) for layer in range(rnn.num_layers))
            kind = type(self.templates[0])
            #: the subclass that overrides nn.GRU's (LSTM's, RNN's) forward, if any: then that forward runs
            self.own_forward = type(rnn).__name__ if type(rnn).forward is not kind.forward else None
            if self.own_forward and self.num_layers > 1:
                raise TypeError(own_forward_error(f"{self.own_forward} overrides nn.{kind.__name__}'s forward", self.num_layers))
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
        self.honours_lengths = True  # until the dry run (discover) says otherwise
        self.templates, self.names = (), []

    @staticmethod
    def _template(rnn: nn.RNNBase, layer: int) -> nn.RNNBase:
        d = 2 if rnn.bidirectional else 1
        width = rnn.proj_size or rnn.hidden_size
        kw = dict(input_size=rnn.input_size if layer == 0 else d * width, hidden_size=rnn.hidden_size, num_layers=1,
                  bias=rnn.bias, batch_first=True, bidirectional=rnn.bidirectional)
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
        """Dry run of a user module on a seeded random batch-first input: learn (L, D, H) from its output, and
        check that a sample's states do not depend on its batch-mates (a module that runs its recurrence over
        time-first input returns the same shape, its samples read as steps)."""
        x = torch.randn(3, 4, self.input_size, generator=torch.Generator().manual_seed(0)).to(**factory(rnn))
        restore = restore_modes(rnn)
        try:
            rnn.eval()
            with torch.no_grad():
                try:
                    run = lambda v: rnn(v, lengths=torch.full((len(v),), v.shape[1], device=v.device)) if self.accepts_lengths else rnn(v)  # noqa: E731
                    out, alone = run(x), [run(x[i:i + 1]) for i in range(len(x))]  # each sample alone
                    late, early = run(torch.cat([x[:, :-1], x[:, -1:] + 1], 1)), run(torch.cat([x[:, :1] + 1, x[:, 1:]], 1))
                except Exception as e:
                    raise ValueError(
                        f"rnn: the dry run on a random input of shape {tuple(x.shape)} [B, T, F] failed "
                        f"({type(e).__name__}: {e}); check input_size and the protocol in NeuroViewRNN's docstring"
                    ) from e
        finally:
            restore()
        h = _user_states(out, 3, 4)
        _other_length(rnn, x, run)
        if not torch.allclose(h.float(), torch.cat([_user_states(a, 1, 4) for a in alone]).float(), rtol=1e-3, atol=1e-5):
            raise ValueError(
                f"rnn: the states of a sample change with its batch-mates (dry run on a random input {tuple(x.shape)} "
                f"[B, T, F]): {type(rnn).__name__} is handed batch-first series and must run over dim 1; a module "
                "that runs over time-first input [T, B, F] reads samples as steps (make it batch-first, or transpose "
                "x inside its forward)")
        _, _, self.num_layers, self.num_directions, self.hidden_size = h.shape
        self.honours_lengths = _honours_lengths(rnn, x, self.accepts_lengths)
        flat = (out[0] if isinstance(out, tuple) else out).dim() == 3  # [B, T, H]: one direction, by the protocol
        self.reading = flat_reading(h, _user_states(late, 3, 4), _user_states(early, 3, 4), flat)

    def states(self, rnn: nn.Module, x: Tensor, lengths: Tensor | None, training: bool) -> Tensor:
        """``[B, L, D, T, H]`` hidden states of batch-first ``x``; padded steps may hold anything."""
        require_device(x, rnn)
        refuse_swapped(self.config, rnn, self.wrapper)
        b, t, _ = x.shape
        if not self.builtin:
            if lengths is not None and self.honours_lengths is not True:
                raise ValueError(lengths_error(type(rnn).__name__, self.accepts_lengths, self.honours_lengths))
            out = rnn(x, lengths=lengths if lengths is not None else x.new_full((b,), t, dtype=torch.long)) if self.accepts_lengths else rnn(x)
            h, built = _user_states(out, b, t), (self.num_layers, self.num_directions, self.hidden_size)
            if tuple(h.shape[2:]) != built:
                raise ValueError(refuse_width(type(rnn).__name__, tuple(h.shape), built))
            return h.permute(0, 2, 3, 1, 4)
        # A causal (one-direction) RNN's step t never sees later steps, so padding needs no
        # packing there; a backward direction must start at each sequence's own last step.
        packed = lengths is not None and self.num_directions == 2 and bool((lengths < t).any())
        inp: Tensor | PackedSequence = (
            pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False) if packed else x
        )
        if self.own_forward or hooked(rnn):
            if self.num_layers > 1:
                raise TypeError(own_forward_error(f"{type(rnn).__name__} has forward or backward hooks", self.num_layers))
            return self._own_states(rnn, inp, b, t)
        if not isinstance(getattr(rnn, self.names[0][0][1], None), Tensor):  # torch.ao's quantized RNNs pack theirs
            raise TypeError(f"rnn: a {type(rnn).__module__}.{type(rnn).__name__} keeps no weight tensors "
                            f"({self.names[0][0][1]}) for the layer-by-layer pass that reads every layer's states: a "
                            "quantized RNN (torch.ao.quantization) cannot be read; quantize other modules only")
        if torch.jit.is_tracing():
            raise TypeError("torch.jit.trace: a NeuroViewRNN runs its layers through torch.func.functional_call, which "
                            "TorchScript cannot record; use torch.export.export (a bidirectional one without lengths) or torch.compile")
        outs, p = [], float(rnn.dropout)  # read at each call, as nn.RNN does: it may be set after wrapping
        for layer, template in enumerate(self.templates):
            if layer and p and training:  # what nn.RNN does between layers
                inp = (
                    PackedSequence(F.dropout(inp.data, p, True), inp.batch_sizes, inp.sorted_indices, inp.unsorted_indices)
                    if packed else F.dropout(inp, p, True)
                )
            params = {new: getattr(rnn, old) for new, old in self.names[layer]}
            inp = functional_call(template, params, (inp,))[0]
            outs.append(pad_packed_sequence(inp, batch_first=True, total_length=t)[0] if packed else inp)
        h = torch.stack(outs, 1) if len(outs) > 1 else outs[0][:, None]  # [B, L, T, D * H]; no copy for one layer
        return h.unflatten(-1, (self.num_directions, self.hidden_size)).transpose(2, 3)

    def final_state(self, rnn: nn.Module, x: Tensor, lengths: Tensor | None) -> Tensor:
        """``[B, D * H]``, a standard classifier's: an nn.RNN's ``h_n`` of its own call (subclass forward, hooks), packed by
        ``lengths`` or, where that fails on the PackedSequence, on each series alone (:func:`final_by_length`; then never
        packed again); a user module's states at the last valid step (``reading`` "split": the second half at step 0)."""
        b, t, _ = x.shape
        last = (lengths - 1) if lengths is not None else torch.full((b,), t - 1, device=x.device)
        if not self.builtin:
            h = self.states(rnn, x, lengths, rnn.training)[:, -1]  # [B, D, T, H]
            return read_final(h[:, 0].unflatten(-1, (2, -1)).transpose(1, 2) if self.reading == "split" else h, last)
        refuse_swapped(self.config, rnn, self.wrapper)
        require_device(x, rnn)
        if lengths is None:
            state = rnn(x if rnn.batch_first else x.transpose(0, 1))[1]
        elif not self.packs:  # its forward or hooks failed on a PackedSequence: not run twice a batch from then on
            return final_by_length(rnn, x, lengths, self.num_directions)
        else:
            try:
                state = rnn(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))[1]
            except Exception:  # a forward or hook written for tensors (its output changed: never read it)
                if not (self.own_forward or hooked(rnn)):
                    raise
                h, self.packs = final_by_length(rnn, x, lengths, self.num_directions), False
                return h
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
        return h_n[-self.num_directions:].transpose(0, 1).reshape(b, -1)

    def _own_states(self, rnn: nn.RNNBase, inp: Tensor | PackedSequence, b: int, t: int) -> Tensor:
        """``[B, 1, D, T, H]`` from a one-layer RNN's own call (its subclass forward and its hooks run)."""
        if isinstance(inp, Tensor) and not rnn.batch_first:
            inp = inp.transpose(0, 1)
        try:
            out = rnn(inp)
        except Exception as e:  # on a PackedSequence NeuroViewRNN built: a forward or hook for tensors failed, unsaid why
            if not isinstance(inp, PackedSequence):
                raise
            raise TypeError(packed_failure(type(rnn).__name__, e, self.wrapper)) from e
        out = out[0] if isinstance(out, tuple) else out
        if isinstance(out, PackedSequence):
            out = pad_packed_sequence(out, batch_first=True, total_length=t)[0]
        elif isinstance(out, Tensor) and not rnn.batch_first:
            out = out.transpose(0, 1)
        want = (b, t, self.num_directions * self.hidden_size)
        if not isinstance(out, Tensor) or tuple(out.shape) != want:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"rnn: its own forward (or a hook on it) returned {got}; expected the states of every step "
                             f"{want} [B, T, D * H] as nn.{type(self.templates[0]).__name__} returns them")
        return out[:, None].unflatten(-1, (self.num_directions, self.hidden_size)).transpose(2, 3)


def _other_length(rnn: nn.Module, x: Tensor, run) -> None:
    """States laid out ``[B, H, T]`` with ``H = 4`` pass the dry run at 4 steps and are read transposed on 4-step
    series: the module is run at the first of 5, 3, 6, 2 and 8 steps it takes (3 where it cannot take 5, a position
    table of 4; 6 for one that takes even lengths only) and its states must follow. A module that takes none of them
    is not checked (it runs at 4 steps only)."""
    restore = restore_modes(rnn)
    try:
        rnn.eval()
        for t in (5, 3, 6, 2, 8):
            try:
                with torch.no_grad():
                    other = run(x.repeat(1, 2, 1)[:, :t])
            except Exception:  # noqa: BLE001 - this length is not one it takes: the other, or none
                continue
            _user_states(other, 3, t)
            return
    finally:
        restore()


def _honours_lengths(rnn: nn.Module, x: Tensor, accepts: bool) -> bool | str:
    """Whether ``rnn``'s states at each valid step of a padded batch are those of the series run alone at its own
    length (a causal module passes even without ``lengths``; a backward direction must be told where it ends); or,
    where it fails on such a batch, that failure (``"TypeError: ..."``), said where lengths are given."""
    run = lambda v, k: rnn(v, lengths=torch.tensor(k, device=v.device)) if accepts else rnn(v)  # noqa: E731
    n = [2, 4, 3]  # unsorted, as a shuffled loader's: a forward that needs them sorted fails, and the hint says so
    xs = torch.where((torch.arange(4, device=x.device) < torch.tensor(n, device=x.device)[:, None])[..., None], x, 0)
    restore = restore_modes(rnn)
    try:
        rnn.eval()
        with torch.no_grad():
            out = _user_states(run(xs, n), 3, 4).float()
            alone = [_user_states(run(xs[i:i + 1, :k], [k]), 1, k).float() for i, k in enumerate(n)]
    except Exception as e:  # noqa: BLE001 - kept: the error where lengths are given says it
        return f"{type(e).__name__}: {e}"
    finally:
        restore()
    return all(torch.allclose(out[i, :k], a[0], rtol=1e-3, atol=1e-5) for i, (k, a) in enumerate(zip(n, alone)))


def _user_states(out, b: int, t: int) -> Tensor:
    if isinstance(out, tuple) and out and isinstance(out[0], (Tensor, PackedSequence)):
        out = out[0]  # nn.RNN-like (output, state) pairs
    if isinstance(out, PackedSequence):
        raise ValueError("rnn: its forward returned a PackedSequence; expected per-step hidden states [B, T, H] or "
                         f"[B, T, L, D, H]: pad it back, pad_packed_sequence(out, batch_first=True, total_length={t})[0]")
    if not isinstance(out, Tensor) or out.dim() not in (3, 5) or tuple(out.shape[:2]) != (b, t):
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"rnn: expected its forward to return per-step hidden states [B, T, H] or [B, T, L, D, H] = "
                         f"({b}, {t}, ...), got {shape}")
    return out if out.dim() == 5 else out[:, :, None, None, :]


def prepare(
    x, lengths, *, batch_first: bool, input_size: int, max_len: int | None, check_finite: bool,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Batch-first ``x [B, T, F]`` with padded positions zeroed, and ``lengths`` (None = all full)."""
    layout = "[B, T, F]" if batch_first else "[T, B, F]"
    if isinstance(x, PackedSequence):
        if lengths is not None:
            raise ValueError("lengths: a PackedSequence carries its own lengths; pass lengths=None")
        x, lengths = pad_packed_sequence(x, batch_first=True)
        lengths, given = lengths.to(x.device), None  # padded here: no shape of the caller's to quote
    elif isinstance(x, Tensor):
        if x.dim() != 3:
            raise ValueError(f"x: expected a tensor of rank 3 {layout} or a PackedSequence, got shape {tuple(x.shape)}")
        given = tuple(x.shape)  # as the caller passed it: the messages quote it, not the transposed one
        if not batch_first:
            x = x.transpose(0, 1)
    else:
        raise TypeError(f"x: expected a torch.Tensor {layout} or a PackedSequence, got {type(x).__name__}")
    b, t, _ = x.shape
    # the steps' axis in the network's layout, and in the channels-first [B, C, T] batches that nv.retrofit & co.
    # read from a data module and transpose: x[:, :N] of those cut channels
    cut = (f"x[:, :{max_len}]" if batch_first else f"x[:{max_len}]") + \
        f" for {layout}; x[..., :{max_len}] for a data module's [B, C, T] batches"
    refuse_shape(given, tuple(x.shape), batch_first, input_size)  # empty, or of other features: the caller's shape said
    if not x.is_floating_point():
        raise TypeError(f"x: expected a floating-point tensor, got dtype {x.dtype}")
    autocast = autocast_enabled(x.device.type)  # it casts lower precisions; float64 it cannot (meta: none, off)
    if dtype is not None and x.dtype != dtype and (not autocast or x.dtype == torch.float64):
        raise TypeError(f"x: expected dtype {dtype} (the model's parameters), got {x.dtype}; convert x (x.to({dtype})) or the model")
    if lengths is not None:
        if not isinstance(lengths, Tensor):
            try:
                lengths = torch.as_tensor(lengths)
            except (TypeError, ValueError, RuntimeError) as e:
                raise TypeError(f"lengths: expected an integer tensor, list or array of shape [{b}], got "
                                f"{type(lengths).__name__} {lengths!r:.40}") from e
        if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool or lengths.shape != (b,):
            flip = ("" if lengths.shape != (t,) or t == b else f"; lengths matches x's dim {0 if batch_first else 1}: x is read as "
                    f"{layout} (the rnn's batch_first={batch_first}); if x is {'[T, B, F]' if batch_first else '[B, T, F]'}, pass x.transpose(0, 1)")
            raise ValueError(f"lengths: expected an integer tensor of shape [{b}], got dtype {lengths.dtype} and shape {tuple(lengths.shape)}{flip}")
        lengths = lengths.to(device=x.device, dtype=torch.long)
        if torch.compiler.is_exporting():  # their values steer no exported graph: asserted in it, the padding kept
            x, t = x[:, :max_len or t], min(t, max_len or t)  # (the steps past a length are zeroed: trimming them is speed)
            torch._assert_async(((lengths >= 1) & (lengths <= t)).all(), f"lengths: expected values in [1, {t}] (T of x, max_len)")
        lo, hi = (1, t) if torch.compiler.is_exporting() else (int(lengths.min()), int(lengths.max()))
        if lo < 1 or hi > t:
            raise ValueError(f"lengths: expected values in [1, {t}] (T of x), got min {lo} and max {hi}")
        if max_len is not None and hi > max_len:
            raise ValueError(
                f"x: a sequence has {hi} steps, more than max_len={max_len}; truncate the steps axis "
                f"({cut}; and lengths.clamp(max={max_len})) or pass a larger max_len= where the network is built "
                "(nv.retrofit(..., max_len=) too)"
            )
        if t > hi:  # only padding lies past the longest sequence
            x, t = x[:, :hi], hi
        if lo == t:
            lengths = None
    if max_len is not None and t > max_len:
        raise ValueError(
            f"x: sequences have {t} steps, more than max_len={max_len} (both input samples, before a window folds "
            f"them into RNN steps); truncate the steps axis "
            f"({cut}) or pass a larger max_len= where the network is built (nv.retrofit(..., max_len=) too)"
        )
    if lengths is not None:
        # Padding may hold anything (NaN included): the RNN must not see it, and NaN * 0 is NaN.
        valid = torch.arange(t, device=x.device) < lengths[:, None]
        x = torch.where(valid[..., None], x, x.new_zeros(()))
    # a host sync in eager mode; under torch.compile an assert traced into the graph (a saturated GRU returned
    # finite logits for an Inf input). It breaks no graph: Dynamo runs nn.GRU / LSTM / RNN outside its graphs by
    # default, and with torch._dynamo.config.allow_rnn the assert sits in the one graph.
    if check_finite:
        require_finite(x, " in its valid steps")
    return x, lengths


def check_window(window: int, input_size: int) -> int:
    """``window`` if it is a positive int dividing the RNN's ``input_size`` (``window`` samples of F features a step)."""
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ValueError(f"window: expected a positive int (samples per step), got {window!r}")
    if input_size % window:
        raise ValueError(f"window: the RNN's input_size ({input_size}) must be window x features per sample; "
                         f"{input_size} is not a multiple of window={window}")
    return window


def fold_windows(x: Tensor, lengths: Tensor | None, window: int) -> tuple[Tensor, Tensor | None]:
    """``x [B, T, F]`` as ``[B, ceil(T / w), w * F]`` (the last window zero-padded; padded steps of
    ``x`` are already 0), ``lengths`` as the number of windows each sequence reaches.

    >>> x = torch.arange(10.).view(1, 5, 2)
    >>> y, n = fold_windows(x, torch.tensor([3]), 2)
    >>> y.shape, y[0, 0].tolist(), n.tolist()
    (torch.Size([1, 3, 4]), [0.0, 1.0, 2.0, 3.0], [2])
    """
    if window == 1:
        return x, lengths
    b, t, f = x.shape
    x = F.pad(x, (0, 0, 0, (-t) % window))
    x = x.reshape(b, -1, window * f)
    if lengths is not None:
        lengths = torch.div(lengths + window - 1, window, rounding_mode="floor")
        if not torch.compiler.is_exporting() and bool((lengths == x.shape[1]).all()):
            lengths = None
    return x, lengths


def backbone_of(rnn: nn.Module, num_classes: int, dropout: float, input_size: int | None, batch_first: bool | None,
                wrapper: str = "NeuroViewRNN") -> Backbone:
    """The argument checks both wrappers share, then what they need to know about ``rnn`` (``wrapper``: which, for messages)."""
    if not isinstance(rnn, nn.Module):
        raise TypeError(f"rnn: expected an nn.Module, got {type(rnn).__name__}")
    if hasattr(rnn, "_backbone") and hasattr(rnn, "rnn"):  # a NeuroViewRNN or RNNClassifier
        raise TypeError(f"rnn: already a {type(rnn).__name__}; wrap its .rnn instead")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
    positive_int(num_classes, "num_classes", least=2)  # numpy's integers (y.max() + 1) too; no bool, no float tensor
    if wrapper == "NeuroViewRNN" and isinstance(inner := getattr(rnn, "_orig_mod", None), nn.RNNBase):  # torch.compile
        raise TypeError(f"rnn: torch.compile({type(inner).__name__}), which NeuroViewRNN would read as a module of its own "
                        "(its output: the last layer's states only); pass the rnn itself (rnn._orig_mod, the same "
                        "weights) and compile the network: torch.compile(NeuroViewRNN(rnn, ...))")
    bb = Backbone(rnn, input_size, batch_first, wrapper)
    if not bb.builtin:
        bb.discover(rnn)
    return bb
