"""Helpers of :mod:`neuroview.core.rnn` and :mod:`.rnn_backbone`, kept apart for room: which steps training reached (the
warning where a series read at eval reaches further is :mod:`.rnn_reach`); whether a state dict was saved from an RNN of
another kind or nonlinearity, or holds another RNN (:func:`settings_clash`, :func:`rnn_mismatch`); whether the rnn a
wrapper runs is still the one it was built on (:func:`rnn_config`, :func:`refuse_swapped`); and the messages the backbone raises. Series padded at the start
(Keras' ``padding='pre'``) are not looked for here: a check on every forward cost a host sync and several passes over
``x`` in training, and false-alarmed on real silent series; ``NpzDataModule`` looks for them in files.

A step that no training series reaches holds padding, exactly 0, in every batch: its features get no gradient,
so its classifier weights keep their random initial values, and a norm of them measures initialisation noise.
The normalization's running statistics are the network's only record of the training data: such a step's
features have a running mean of exactly 0 (zeros averaged) and a running variance decayed from its initial 1
by ``(1 - momentum)`` a batch and nothing added (``0.9 ** batches``, to float rounding: :func:`_padding_var`):
both hold from the first training batch on, in any dtype of the statistics.

>>> import torch
>>> from neuroview.core.head import CodeNorm
>>> norm = CodeNorm(2 * 3).train()   # 2 steps of 3 features
>>> _ = norm(torch.cat([torch.randn(4, 3), torch.zeros(4, 3)], 1))   # one batch, step 1 padding throughout
>>> unreached_steps(norm, (1, 1, 2, 3)).tolist()
[False, True]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .head import constant_features

__all__ = ["unreached_steps", "untrained_features", "dead_features", "UNREACHED_VAR", "settings_clash", "rnn_mismatch",
           "rnn_config", "refuse_swapped", "flat_reading", "packed_failure", "hooked", "read_final", "final_by_length",
           "swapped_in", "refuse_shape"]

#: a running variance this small, with a running mean of exactly 0, marks a step as never reached too: statistics set
#: at once from the codes (``sparsify``, ``fit_ridge_head``: padding's variance exactly 0, no decay to trace)
UNREACHED_VAR = 1e-2


def unreached_steps(norm: nn.Module | None, feature_shape: tuple[int, int, int, int]) -> Tensor | None:
    """``[steps]`` bool: the steps that, by ``norm``'s running statistics, no training series reached: every feature
    of the step, in every layer and direction, has a running mean of exactly 0 and at most the running variance of a
    feature that saw only zeros, from the first batch on (:func:`_padding_var`), or at most ``UNREACHED_VAR``
    (statistics set at once: padding's variance exactly 0). A step reached only now and then, whose mean decays
    between its batches, is no zero: the test is exact, not a tolerance, until ``0.9 ** k`` underflows after about
    900 batches without it. The exact 0 of every mean is what is read, so bfloat16 / float16 statistics are read too
    (where :func:`~neuroview.core.head.constant_features` flags nothing). None without a normalization (nothing in the
    network records the training data) or before any batch was seen."""
    mean, var = getattr(norm, "running_mean", None), getattr(norm, "running_var", None)
    n = int(getattr(norm, "num_batches_tracked", 0)) if mean is not None and var is not None else 0
    if n == 0:
        return None
    # read on the host: one transfer, and float64 where the device has none (MPS)
    shape, mean, v = feature_shape, mean.detach().cpu().reshape(feature_shape), var.detach().cpu().double()
    quiet = (v <= max(_padding_var(var.dtype, getattr(norm, "momentum", None), n), UNREACHED_VAR)).reshape(shape)
    return ((mean == 0) & quiet).permute(2, 0, 1, 3).flatten(1).all(1)


def _padding_var(dtype: torch.dtype, momentum: float | None, n: int) -> float:
    """The most the running variance of a feature exactly 0 in each of ``n`` batches can hold: the initial 1 decayed
    by ``(1 - momentum)`` a batch (the momentum rounded to lerp's opmath dtype, float32 at least), each lerp rounded
    up by at most ``eps`` relative in the statistics' dtype (a cast of float32 statistics rounds once), plus ``tiny``
    (a decay stuck in the subnormals); never above the initial 1. 0 but ``tiny`` with ``momentum=None``."""
    fi = torch.finfo(dtype)
    if momentum is None:
        return fi.tiny
    m = float(torch.tensor(float(momentum), dtype=torch.promote_types(dtype, torch.float32)))  # lerp's opmath
    if m >= 1:
        return fi.tiny
    log = n * math.log1p(-m) + (n + 1) * math.log1p(fi.eps)  # in logs: (1 + eps) ** n overflows in bfloat16
    return min(1.0, math.exp(log)) + fi.tiny


def untrained_features(norm: nn.Module | None, feature_shape: tuple[int, int, int, int]) -> Tensor | None:
    """``[L, D, steps, H]`` bool: the features whose classifier weights training never moved, by ``norm``'s running
    statistics: every feature of a step no series reached (:func:`unreached_steps`) and each feature that was the same
    for every sample of each training batch (:func:`neuroview.core.head.constant_features`: a dead hidden feature; read
    from float32 / float64 statistics only); None without a normalization or before any batch was seen."""
    unreached, constant = unreached_steps(norm, feature_shape), constant_features(norm)
    if unreached is None or constant is None:
        return None
    layers, dirs, steps, hidden = feature_shape
    return constant.reshape(layers, dirs, steps, hidden) | unreached[None, None, :, None]


def dead_features(norm: nn.Module | None, feature_shape: tuple[int, int, int, int]) -> int | None:
    """How many features of the steps training reached were the same for every sample of each training batch (dead:
    :func:`neuroview.core.head.constant_features`), which ``time_importance()`` reports as 0 as it does the unreached
    steps; None where the statistics cannot tell (no normalization, no batch seen, bfloat16 / float16 statistics)."""
    var = getattr(norm, "running_var", None)
    untrained = untrained_features(norm, feature_shape)
    if untrained is None or var.dtype not in (torch.float32, torch.float64):
        return None
    return int((untrained & ~unreached_steps(norm, feature_shape)[None, None, :, None]).sum())


def settings_clash(meta, rnn: nn.Module, prefix: str, *, standard: bool = False) -> str | None:
    """Why a state dict whose metadata is ``meta`` computes another function in a NeuroView-RNN over ``rnn`` (an
    ``RNNClassifier``'s, with ``standard``): saved over another kind of RNN (an ``nn.GRU``'s weights in an ``nn.LSTM``:
    torch would name only the gates' sizes), or an ``nn.RNN`` of another nonlinearity (one shape, two functions); None
    where it agrees, or records neither (saved before they were kept)."""
    meta = meta if isinstance(meta, dict) else {}
    kind, own_kind = meta.get("rnn"), _kind(rnn)
    wrapper, zoo = ("an RNNClassifier", "") if standard else ("a NeuroView-RNN", "nv_")
    if kind in _KINDS and own_kind is not None and kind != own_kind:
        return (f"{prefix}rnn: the state dict was saved from {wrapper} over nn.{kind}, the model's rnn is an "
                f"nn.{own_kind} ({type(rnn).__name__}): its weights are another RNN's gates; build the network over an "
                f"nn.{kind} (create_model('{zoo}{kind.lower()}', ...) for a zoo entry) to load it")
    saved, own = meta.get("nonlinearity"), getattr(rnn, "nonlinearity", None)
    if saved not in ("tanh", "relu") or not isinstance(rnn, nn.RNN) or saved == own:
        return None
    how = f"create_model('{zoo}rnn', nonlinearity={saved!r}, ...)"
    how = f"nn.RNN(..., nonlinearity={saved!r}), or {how} for a zoo architecture" if standard else how
    return (f"{prefix}rnn.nonlinearity: the state dict was saved from {wrapper} over nn.RNN(nonlinearity={saved!r}), "
            f"the model's rnn has nonlinearity={own!r}: its weights compute another function there; build the rnn "
            f"with nonlinearity={saved!r} ({how}) to load it")


_KINDS = ("LSTM", "GRU", "RNN")


def _kind(rnn: nn.Module) -> str | None:
    """``"LSTM"``, ``"GRU"`` or ``"RNN"``: the torch class ``rnn`` is (or subclasses); None for other modules."""
    return next((k for k in _KINDS if isinstance(rnn, getattr(nn, k))), None)


def rnn_mismatch(own: dict, theirs: dict, kind: str) -> str:
    """Why a checkpoint does not load where its RNN is not this network's (``own``: name -> shape; ``theirs``: the
    checkpoint's ``rnn.*`` tensors): none at all (a standard classifier's), or other layers, directions or sizes
    (an LSTM's ``proj_size`` named where its ``weight_hr_*`` are on one side only)."""
    if not theirs:
        return ("rnn: the checkpoint holds no rnn.* weights: it is no NeuroView-RNN's (a standard classifier's, or "
                "another architecture's)")
    extra, missing = sorted(theirs.keys() - own.keys()), sorted(own.keys() - theirs.keys())
    shapes = sorted(k for k in own.keys() & theirs.keys() if tuple(theirs[k].shape) != tuple(own[k]))
    if not extra and not missing and all(k.startswith("weight_ih_l0") for k in shapes):  # its first layer's input only
        k = shapes[0]
        return (f"rnn: the checkpoint's {kind} reads inputs of {theirs[k].shape[1]} features per step, this network's "
                f"{own[k][1]}: build it with the checkpoint's input channels and window (a window of w samples reads "
                "w times the channels)")
    hr = next((k for k in extra + missing + shapes if k.startswith("weight_hr_")), None)  # an LSTM's proj_size
    proj = "" if hr is None else (f", and proj_size={theirs[hr].shape[0]} (its {hr})" if hr in theirs
                                  else ", and proj_size=0 (it has no weight_hr_*)")
    return (f"rnn: the checkpoint's {kind} is not this network's (only in the checkpoint: {extra[:4]}; only here: "
            f"{missing[:4]}; of other shapes: {shapes[:4]}): build the network with the checkpoint's num_layers, "
            f"bidirectional and hidden_size{proj}")


#: the settings of an nn.RNN / LSTM / GRU a wrapper's backbone is built on (its templates, weight names, feature sizes)
_SETTINGS = ("input_size", "hidden_size", "num_layers", "bidirectional", "batch_first", "proj_size", "bias", "nonlinearity")


def rnn_config(rnn: nn.Module) -> dict:
    """What a wrapper's backbone was built on: the class whose forward runs (``GRU``; a subclass with a forward of
    its own differs, torch's parametrized or quantized GRU does not) and the settings (plain values only, so a user
    module's tensors are never held) that fix its layer templates, weight names and feature sizes. A
    ``torch.compile`` of an rnn is judged by the rnn it compiles (its weights and settings are that rnn's)."""
    rnn = getattr(rnn, "_orig_mod", rnn)  # torch.compile's OptimizedModule: it has no forward of its own
    forward = type(rnn).forward
    own = forward.__qualname__.rsplit(".", 1)[0] if forward is not nn.Module.forward else type(rnn).__name__
    out = {"class": own}  # the class that defines its forward
    for k in _SETTINGS:
        v = getattr(rnn, k, None)
        v = (v or None) if k == "proj_size" else v  # nn.GRU's proj_size=0 is none, as a quantized GRU's absent one
        out[k] = v if v is None or isinstance(v, (bool, int, str)) else type(v).__name__
    return out


def refuse_swapped(config: dict, rnn: nn.Module, wrapper: str) -> None:
    """A clear error where the module in ``net.rnn`` is no longer one of ``config`` (:func:`rnn_config`): one put in
    its place after wrapping (a pretrained encoder) would be run by templates and sizes fixed for the other: only its
    first layer, forward direction, in the other layout. A module of the same class and settings is run as it is.
    Not under torch.compile or export (a traced graph cannot read a class's name): there the wrappers' assignment
    check (:func:`swapped_in`) has refused ``net.rnn = other`` already."""
    if torch.compiler.is_compiling():
        return
    now = rnn_config(rnn)
    if now == config:
        return
    what = "; ".join(f"{k} {config[k]!r} -> {now[k]!r}" for k in config if now[k] != config[k])
    name = type(getattr(rnn, "_orig_mod", rnn)).__name__
    name = name if rnn is getattr(rnn, "_orig_mod", rnn) else f"torch.compile of a {name}"
    raise ValueError(f"rnn: the module put in net.rnn's place after wrapping (a {name}) differs from the "
                     f"rnn this {wrapper} was built on ({what}): its layers, directions, layout and classifier were "
                     f"sized for that one; build a new {wrapper} around the new rnn itself, not a torch.compile of it "
                     f"(compile the network instead: torch.compile(net)) (or, for pretrained weights of the "
                     "same architecture, load them into the rnn it has: net.rnn.load_state_dict(new.state_dict()))")


def swapped_in(net: nn.Module, name: str, value):
    """``value``, where ``net.<name> = value`` keeps ``net.rnn`` one of the class and settings its backbone was built
    on (:func:`refuse_swapped`, at once: before any pass, compiled or not); a clear error otherwise."""
    backbone = net.__dict__.get("_backbone")  # None while __init__ sets the rnn it is built on
    if name == "rnn" and backbone is not None:
        refuse_swapped(backbone.config, value, type(net).__name__)
        backbone.__dict__.pop("packs", None)  # a failure on a PackedSequence was the old module's: the new one is tried
    return value


def refuse_width(name: str, got: tuple, built: tuple) -> str:
    """Why a user module's states ``[B, T, L, D, H]`` (``got``) do not fit the ``(L, D, H)`` its dry run found."""
    return (f"rnn: {name} returned states of {got[2]} layers, {got[3]} directions and {got[4]} features ([B, T, L, D, "
            f"H] {got}), the network was built (by the dry run) for {built[0]}, {built[1]} and {built[2]}: a module "
            "put in net.rnn's place after wrapping, or one whose width changes; build a new network around it")


def refuse_shape(given: tuple | None, shape: tuple, batch_first: bool, input_size: int) -> None:
    """A clear error where batch-first ``x`` of ``shape`` is empty or has other than ``input_size`` features,
    quoting the shape the caller passed (``given``; None for a PackedSequence), not its transpose, and naming the
    transpose where it looks like a data module's channels-first batch ``[B, C, T]``, the likeliest mistake."""
    layout = "[B, T, F]" if batch_first else "[T, B, F]"
    said = f"shape {given} as {layout}" if given else f"shape {shape} as [B, T, F] (a PackedSequence padded)"
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"x: expected a non-empty batch of non-empty sequences, got {said}")
    if shape[2] != input_size:
        hint = "" if not given or given[1] != input_size else (
            "; x looks channels-first [B, C, T] as the data modules give it: pass "
            + ("x.transpose(1, 2)" if batch_first else "x.permute(2, 0, 1)"))
        raise ValueError(f"x: expected {input_size} features in the last dim {layout}, got {said}{hint}")


def lengths_error(name: str, accepts: bool, why: bool | str) -> str:
    """Why a user module is not given lengths: its states read the padding (``why`` False), or ``why`` it failed."""
    if isinstance(why, str):
        hint = "; a forward that packs them needs pack_padded_sequence(..., enforce_sorted=False)" if "sorted" in why else ""
        return (f"lengths: {name} failed on padded series of lengths [2, 4, 3] in the dry run that checks "
                f"it honours lengths ({why}){hint}; make its forward run such a batch, or give series of one length")
    return (f"lengths: {name} {'ignores its lengths' if accepts else 'takes no lengths'}, and its states at a valid step "
            "change with the padding after it (a backward direction reads it): a series' logits would depend on its "
            "batch-mates' lengths; honour lengths in its forward (pack_padded_sequence), or give series of one length")


def own_forward_error(what: str, layers: int) -> str:
    return (f"rnn: {what}, which NeuroViewRNN would not run: it runs a {layers}-layer RNN one layer at a time with "
            "its weights, to read every layer's states. Use a plain nn.GRU/nn.LSTM/nn.RNN (do the extra computation "
            "outside it), or one layer (its own forward and hooks then run), or a module (not an nn.RNN subclass) "
            "whose forward returns every layer's states [B, T, L, D, H] (the user-module protocol of NeuroViewRNN)")


def flat_reading(h: Tensor, late: Tensor, early: Tensor, flat: bool) -> str:
    """How a standard classifier reads a user module's states ``h [B, T, L, D, H]`` from the dry run, ``late`` and
    ``early`` being those with its last (first) input step moved: ``"given"`` where it returned ``[B, T, L, D, H]``;
    for ``[B, T, H]``, ``"causal"`` (no state moved with a later step: one direction, read at the last valid step),
    ``"split"`` (the first half of the features causal, the second moved by later steps only: a one-layer
    bidirectional RNN's output, its backward direction read at step 0, as its ``h_n`` holds it), else ``"merged"``: read
    as one direction at the last valid step, as ever (a conv or smoothing front end's look-ahead moves a few states
    before the last with it; not told apart from a multi-layer bidirectional RNN's output, which its module should
    return as ``[B, T, L, D, H]``)."""
    same = lambda a, steps, feats: torch.allclose(  # noqa: E731
        a[:, steps, ..., feats].float(), h[:, steps, ..., feats].float(), rtol=1e-3, atol=1e-5)
    half, before_last, after_first = h.shape[-1] // 2, slice(None, -1), slice(1, None)
    if not flat:
        return "given"
    if same(late, before_last, slice(None)):
        return "causal"
    if h.shape[-1] % 2 == 0 and same(late, before_last, slice(None, half)) and same(early, after_first, slice(half, None)):
        return "split"
    return "merged"


def packed_failure(name: str, e: Exception, wrapper: str) -> str:
    """Why a bidirectional nn.RNN subclass (or one with hooks) cannot be run where a batch's series have several lengths."""
    return (f"rnn: {name}'s own forward or a hook on it failed on a PackedSequence ({type(e).__name__}: {e}), which "
            f"{wrapper} hands a bidirectional RNN where a batch's series have several lengths (its backward direction "
            "must start at each series' own last step); make the forward and hooks accept a PackedSequence, or give "
            "series of one length")


def hooked(rnn: nn.Module) -> bool:
    """Whether ``rnn`` has hooks of its own (then its own call runs, as they expect); a ``torch.compile`` of an rnn
    has those of the rnn it compiles (``net.rnn = torch.compile(net.rnn)``: its own hook dicts are empty) too."""
    return any(bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks)
               for m in (rnn, getattr(rnn, "_orig_mod", rnn)))


def final_by_length(rnn: nn.Module, x: Tensor, lengths: Tensor, directions: int) -> Tensor:
    """``[B, D * H]``: the last layer's ``h_n`` of ``rnn``'s own call (its subclass forward and hooks run) on each
    series alone at its own length, batch-first ``x`` cut to each length: one call per distinct length, on tensors,
    for an rnn whose forward or hooks fail on the PackedSequence that would run them all at once."""
    parts, rows = [], []
    for n in lengths.unique().tolist():
        (i,) = torch.nonzero(lengths == n, as_tuple=True)
        part = x[i, :n]
        state = rnn(part if rnn.batch_first else part.transpose(0, 1))[1]
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
        parts.append(h_n[-directions:].transpose(0, 1).reshape(len(i), -1))
        rows.append(i)
    return torch.cat(parts)[torch.cat(rows).argsort()]


def read_final(h: Tensor, last: Tensor) -> Tensor:
    """``[B, D * H]`` of states ``h [B, D, T, H]``: the forward direction at ``last``, a backward one at step 0."""
    out = [h[torch.arange(len(h), device=h.device), 0, last]]
    if h.shape[1] == 2:
        out.append(h[:, 1, 0])
    return torch.cat(out, -1)
