"""The global linear classifier both NeuroView families decide with, and its normalization.

``logits = W norm(f) + b``. :class:`CodeNorm` standardizes the feature vector ``f`` (unit
codes, or hidden states of every step) with batch statistics while training and running ones at
eval, where it is folded into ``W`` and ``b`` (:func:`fold`) so the decision stays exactly linear
in ``f`` and every explanation sums to its logit. Four things plain ``BatchNorm1d`` gets wrong
here, and this module does not:

- **variance floor**: a feature that barely varies in training (a step only one training series
  reaches, a unit that is always on) would be scaled by ``1 / sqrt(eps)`` (x316) at eval, giving
  untrained weights the largest effective weights. Its variance is floored at ``floor`` times the
  mean variance of all features, in training and in the fold alike;
- **many processes**: under DDP the batch statistics are all-reduced (differentiably), so every
  rank trains on the same normalization and keeps the same running statistics and folded weights;
- **a non-finite batch** (a float16 overflow, whose step a gradient scaler skips) is left out of the running
  statistics, with a warning: in them, its NaN made every later eval logit NaN;
- **precision**: the head runs in float32 (or the parameters' wider dtype) with autocast off, so
  the logits and the contributions come from the same float32 numbers under bf16/fp16 autocast.

Imports only torch. State-dict keys are ``BatchNorm1d``'s, so earlier checkpoints load.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ._devices import autocast_off
from ._utils import plain_head
from .head_stats import _caller_level, note_left_out, say_left_out

#: default variance floor, relative to the mean variance of all features
FLOOR = 0.1
#: devices where a batch left out of the statistics is said at once (no host sync to pay for; not compiled); else at eval()
_SAID_AT_ONCE = ("cpu",)


def checked_floor(floor, name: str = "norm_floor") -> float:
    """``floor`` as a float: any real number (a numpy scalar, a 0-dim real tensor, a Fraction; not a bool) that is
    not infinite (inf made every standardized code 0 * inf, NaN weights without a word). A negative or NaN one acted
    as no floor and trained so: taken as 0, the same function, with a warning (a run trained with one still loads)."""
    if isinstance(floor, torch.Tensor) and floor.dim() == 0 and not (floor.dtype == torch.bool or floor.is_complex()):
        floor = floor.item()
    real = isinstance(floor, numbers.Real) and not isinstance(floor, (bool, getattr(sys.modules.get("numpy"), "bool_", bool)))
    value = float(floor) if real else None
    if value is None or math.isinf(value):
        raise ValueError(f"{name}: expected a finite real number >= 0 (a variance floor relative to the mean variance; "
                         f"0: none), got {floor!r}")
    if value < 0 or math.isnan(value):  # NaN acted as none too (a comparison with it is False)
        warnings.warn(f"{name}: a negative or NaN floor ({floor!r}) acts as none; taken as norm_floor=0 (the same "
                      "function): pass 0", UserWarning, stacklevel=_caller_level())
        return 0.0
    return value


class CodeNorm(nn.Module):
    """Standardization of the features without affine, with a relative variance floor and
    statistics shared by all DDP ranks (see the module docstring).

    A plain ``nn.Module``, not a ``BatchNorm1d``: ``SyncBatchNorm.convert_sync_batchnorm`` (and
    Lightning's ``sync_batchnorm=True``) would replace a BatchNorm subclass by a SyncBatchNorm,
    losing the floor and the fold. Its buffers keep ``BatchNorm1d``'s names, so checkpoints made
    when it was one load unchanged.

    >>> norm = CodeNorm(3)
    >>> list(norm.state_dict())
    ['running_mean', 'running_var', 'num_batches_tracked']
    >>> norm(torch.randn(8, 3)).shape
    torch.Size([8, 3])
    """

    def __init__(self, num_features: int, *, floor: float = FLOOR, eps: float = 1e-5, momentum: float | None = 0.1,
                 device=None, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum, self.floor = int(num_features), float(eps), momentum, checked_floor(floor, "floor")
        self.register_buffer("running_mean", torch.zeros(num_features, device=device, dtype=dtype))
        self.register_buffer("running_var", torch.ones(num_features, device=device, dtype=dtype))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        self._count_left_out(device)

    def _floored(self, var: Tensor) -> Tensor:
        return var.clamp_min(self.floor * var.mean()) if self.floor > 0 else var

    def scale(self, dtype: torch.dtype | None = None) -> Tensor:
        """``[F]`` the eval-time ``1 / sqrt(var + eps)`` with the floor applied (computed in ``dtype``, default the statistics')."""
        return torch.rsqrt(self._floored(self.running_var.to(dtype or self.running_var.dtype)) + self.eps)

    def forward(self, f: Tensor) -> Tensor:
        if not self.training:
            return (f - self.running_mean) * self.scale()
        mean, var, n = _batch_stats(f)
        with torch.no_grad():  # no_grad stops no forward-mode AD: detached (views, no kernel), no JVP tangent kept
            # a batch whose statistics are not finite (a float16 overflow, whose step a gradient scaler skips) is left out
            # whole, with no host sync (a lerp towards the running value itself keeps it): its NaN stayed in them for good.
            # Its variance alone tells: a NaN or Inf mean always gives a NaN or Inf one (head_stats says why)
            bm, bv = mean.detach(), var.detach()
            ok = torch.isfinite(bv).all()
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
            self.running_mean.lerp_(torch.where(ok, bm.to(self.running_mean.dtype), self.running_mean), m)
            # n is a tensor under DDP (the all-reduced count): no host sync on every step
            unbiased = bv * (n / (n - 1).clamp_min(1) if isinstance(n, Tensor) else n / max(n - 1, 1))
            self.running_var.lerp_(torch.where(ok, unbiased.to(self.running_var.dtype), self.running_var), m)
            self._note_left_out(ok, bm, bv)
            self.num_batches_tracked += ok  # not counted: a cumulative average stays right
        return (f - mean) * torch.rsqrt(self._floored(var) + self.eps)

    def _count_left_out(self, device=None) -> None:
        # the batches left out and not said yet: counted in the graph (a device, torch.compile), said at eval();
        # not persistent (a count of this run, no state of the function): no key in any state dict
        self.register_buffer("left_out", torch.zeros((), dtype=torch.long, device=device), persistent=False)

    def _note_left_out(self, ok: Tensor, mean: Tensor, var: Tensor) -> None:
        """A batch left out of the statistics: said at once, or counted and said at eval (:func:`.head_stats.note_left_out`)."""
        note_left_out(self, ok, mean, var, _SAID_AT_ONCE)

    def train(self, mode: bool = True):
        # the count moves only in training: read (a host sync) where this module leaves it, not on eval() of an eval
        # module; by the last call's mode too, as torch.compile's wrapper sets `training` before it calls this
        if not mode and (self.training or self.__dict__.get("_mode", True)):
            say_left_out(self)
        self.__dict__["_mode"] = bool(mode)
        return super().train(mode)

    def reset_running_stats(self) -> None:
        """The initial statistics, no batch counted, as ``BatchNorm``'s (meta-device init calls it after ``to_empty``)."""
        with torch.no_grad():
            for buf, value in ((self.running_mean, 0), (self.running_var, 1), (self.num_batches_tracked, 0), (self.left_out, 0)):
                buf.fill_(value)
        self.__dict__.pop("_seen", None)

    reset_parameters = reset_running_stats  # (no parameters: no affine) what meta-device init recipes call

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)  # pickled whole before the count was a buffer (when it was kept in __dict__)
        self.__dict__.pop("_left_out", None)
        self.__dict__.pop("_seen", None)  # a copy's (deepcopy, pickle, AveragedModel) batches are numbered from its own 1
        if "left_out" not in self._buffers:
            self._count_left_out(self.running_mean.device)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        # the floor decides the function as the statistics do (the zoo's digits networks were trained without one):
        # kept in the state dict's metadata, as BatchNorm keeps its version, so a state dict (torch.save, a Lightning
        # checkpoint) loads as the function it was saved as, whatever floor the model was built with; no key added
        meta = getattr(destination, "_metadata", None)
        if meta is not None and prefix[:-1] in meta:
            meta[prefix[:-1]]["floor"] = self.floor

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        # BatchNorm1d checkpoints of its version 1 have no num_batches_tracked (BatchNorm fills it in too)
        state_dict.setdefault(prefix + "num_batches_tracked", torch.tensor(0, dtype=torch.long))
        state_dict.pop(prefix + "left_out", None)  # {**dict(net.named_buffers()), ...} holds it: a count, no state
        floor = (local_metadata or {}).get("floor")  # absent: saved before it was kept, or a plain dict of tensors
        # the file's floor by the constructor's rule, before anything loads: a negative as 0, inf / NaN refused by its key
        floor = None if floor is None else checked_floor(floor, f"{prefix}floor (the floor the state dict records)")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)
        if self.left_out.device != self.running_mean.device:  # assign=True into a meta module: the count goes along
            self._count_left_out(self.running_mean.device)
        self.left_out.zero_()  # counted afresh from a load (after to_empty, whose memory holds any number)
        if floor is not None:
            self.floor = floor

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, floor={self.floor}"


def constant_features(norm: nn.Module | None) -> Tensor | None:
    """``[F]`` bool: the features whose value, by ``norm``'s running statistics, was the same for every sample of each
    training batch (a dead unit, one always on, a hidden feature that never leaves 0). Training standardizes such a
    feature to exactly 0, so its classifier weights get no gradient: they keep their random initial values, and a
    global weight of them is initialisation noise, not importance.

    Read only from float32 / float64 statistics; bfloat16 / float16 ones (``net.bfloat16()``,
    ``precision="bf16-true"``) flag nothing: their resolution cannot tell a decayed initial variance from a real small
    one (a std of 1e-2 around 0.5 was flagged). Two records, either flags a feature:

    - a running variance of 0 (to ``tiny`` and the ``(4 eps mean)^2`` below): constant whatever the averaging
      (statistics set from the codes at once by :func:`neuroview.sparsify` / ``fit_ridge_head``, a cumulative
      average, ``recompute_batchnorm`` with the momentum put back). A refitted head's weight there is 0 anyway;
    - from the second batch on, the decay: a batch variance of exactly 0 leaves the running variance decayed from its
      initial 1 by ``(1 - momentum)`` per batch, nothing added. Flagged where it is that value to float rounding:
      ``(4 + 2 sqrt(batches))`` rounding errors relative (one lerp a batch, the momentum rounded to float32 as
      torch's lerp reads it; measured: under ``0.5 sqrt(batches)``), plus ``tiny`` (a decay underflowed to the
      subnormals) and ``(4 eps mean)^2`` (the rounding of a constant's batch mean under DDP). A batch of nonzero
      variance adds ``momentum * var``: a feature that merely varies little is not flagged once that exceeds the
      rounding (a std of 1e-3 over 50 batches: x90 the margin; in the first few batches the float resolution of
      ``0.9`` hides a std under about 3e-3). One batch is not read so: statistics set at once (``batches == 1``,
      the exact variance) hold no decay, and a real variance of 0.9 is no decayed 1.

    None without a normalization (nothing records the training data) or before any batch was seen.

    >>> norm = CodeNorm(3).train()
    >>> for _ in range(50):
    ...     _ = norm(torch.stack([torch.zeros(8), torch.ones(8), 1 + 1e-3 * torch.randn(8)], 1))
    >>> constant_features(norm).tolist()
    [True, True, False]
    >>> constant_features(norm.bfloat16()).tolist()
    [False, False, False]
    """
    var = getattr(norm, "running_var", None)
    n = int(getattr(norm, "num_batches_tracked", 0))
    if var is None or getattr(norm, "running_mean", None) is None or n == 0:
        return None
    if var.dtype not in (torch.float32, torch.float64):
        return torch.zeros(var.shape, dtype=torch.bool)
    v, mean = var.detach().cpu().double(), norm.running_mean.detach().cpu().double()  # (MPS has no float64)
    fi, m = torch.finfo(var.dtype), getattr(norm, "momentum", None)
    zero = fi.tiny + (4 * fi.eps * mean).square()  # 0 but for a DDP mean's rounding (and a subnormal)
    if n < 2 or m is None:  # no decay to trace: set at once, or a cumulative average (of constants: 0)
        return v <= zero
    m = float(torch.tensor(float(m), dtype=var.dtype))  # lerp's weight in its opmath dtype (the buffers')
    decayed = (1.0 - m) ** n  # in float64, so only the training's own rounding is left
    return (v <= zero) | ((v - decayed).abs() <= decayed * fi.eps * (4 + 2 * math.sqrt(n)) + zero)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def refuse_single(batch: int) -> None:
    """A clear error where a training batch of ``batch`` < 2 samples meets the normalization in one process (under
    DDP the all-reduced count decides). Called before the backbone runs too (``NeuroViewCNN``): refused only after it,
    the batch had moved the backbone's BatchNorm statistics all the same."""
    if batch < 2 and not _distributed():
        raise ValueError(
            f"x: a training batch of {batch} sample cannot be normalized (batch statistics need 2 or more); "
            "use a batch size of at least 2 (drop_last=True drops a last batch of 1), or build with normalize=False")


def _batch_stats(f: Tensor) -> tuple[Tensor, Tensor, int | Tensor]:
    """Mean and (biased) variance over the batch, over every DDP rank when there are several.

    Two passes in both cases, so that DDP gives what one process gives on the whole batch: the
    mean from the all-reduced sums and count, then the all-reduced squared deviations from it
    (one pass, ``E[x^2] - E[x]^2``, loses every digit of a small variance around a large mean).
    A batch of one sample in one process has no variance: a clear error.
    """
    if not _distributed():
        refuse_single(f.shape[0])
        var, mean = torch.var_mean(f, dim=0, unbiased=False)
        return mean, var, f.shape[0]
    from torch.distributed.nn.functional import all_reduce  # noqa: PLC0415 - differentiable, only under DDP

    stats = all_reduce(torch.cat([f.sum(0), f.new_full((1,), f.shape[0])]))
    n = stats[-1]
    mean = stats[:-1] / n
    var = all_reduce((f - mean).square().sum(0)) / n
    return mean, var, n


def head_dtype(f: Tensor, w: Tensor) -> torch.dtype:
    """float32 at least: the head never runs in half precision."""
    return torch.promote_types(torch.promote_types(f.dtype, w.dtype), torch.float32)


def load_fits(module: nn.Module, state_dict, prefix: str) -> bool:
    """Whether the tensors of ``state_dict`` under ``prefix`` have the shapes of ``module``'s own (those it has; a lazy
    module's uninitialized ones pass, as in torch's own check): a load torch refuses for a size mismatch must not
    build, adopt or merge anything first (a refused load left a head of the wrong width, or a normalization)."""
    for k, v in (*module.named_parameters(), *module.named_buffers()):  # (no state-dict hooks run: FSDP's gather)
        t = state_dict.get(prefix + k)
        if (isinstance(t, Tensor) and not isinstance(v, nn.parameter.UninitializedTensorMixin) and t.shape != v.shape
                and not (v.dim() == 0 and t.dim() == 1)):  # torch reads a [1] into a 0-dim one
            return False
    return True


#: the keys of a NeuroView network's head; any other key of its own is its wrapped network's
_HEAD_KEYS = ("classifier.", "norm.", "step_shared.")


def adopt_norm(norm: CodeNorm | None, state_dict, prefix: str, head: nn.Module | None, local_metadata=None,
               net: nn.Module | None = None) -> CodeNorm | None:
    """The normalization of the network that loads ``state_dict``: the file's setting, either way, so that it loads
    as the function it was saved as.

    - a new :class:`CodeNorm` (in ``head``'s device, dtype and mode) where ``state_dict`` holds one and the network
      has none: a network built with ``normalize=False`` and then sparsified (``nv.sparsify`` fits its path on
      standardized codes and keeps that standardization) loads into the constructor it came from;
    - None where the network has one and ``state_dict`` is a whole network's without one (a ``normalize=False``
      network's file, loaded into a default wrap): torch refused it for the missing ``norm.*`` keys, and
      ``strict=False`` kept this network's normalization in front of weights trained without one (another function).
      Whole: a head and the wrapped network's keys (``backbone.*``, ``rnn.*``), and torch's record of the network
      saved (the ``_metadata`` every ``state_dict()`` keeps) has no ``norm`` entry. A part of a file (a head alone,
      loaded with ``strict=False``) lacks ``norm.*`` as it lacks the rest: it keeps the normalization, and torch lists
      ``norm.*`` among the missing keys (a network whose backbone holds no tensor cannot tell the two apart: kept);
      Loaded through another module (an ensemble's, ``nn.Sequential``, an ``AveragedModel``), the network gets no
      ``_metadata`` but its own entry of it, ``local_metadata``: one (torch's ``version``) is a ``state_dict()``'s;
      so is a dict holding any other buffer of ``net`` (a backbone BatchNorm's: a safetensors file, a ``{k: v.clone()}``
      copy), which a dict of parameters never holds. Both dropped without a word, as before;
    - ``norm`` where the whole-looking dict carries neither: a dict of parameters alone (``dict(net.named_parameters())``,
      torch.func, an average of parameters), at the top or nested; as torch's rule for a BatchNorm reads it, strict
      loading refuses it for the statistics and ``strict=False`` keeps them (they were dropped: every logit moved). A
      file of a ``normalize=False`` network whose backbone holds no buffer cannot be told from it: a warning says both;
    - else ``norm``."""
    if head is None:
        return norm
    if norm is not None:
        keys = [k[len(prefix):] for k in state_dict if k.startswith(prefix)]
        whole = "classifier.weight" in keys and any(not k.startswith(_HEAD_KEYS) for k in keys)
        if not whole or any(k.startswith("norm.") for k in keys):
            return norm
        meta = getattr(state_dict, "_metadata", None)
        if isinstance(meta, dict) and prefix[:-1] in meta:  # torch's record of the modules saved: had it one?
            return norm if prefix + "norm" in meta else None
        # (torch's load writes "assign_to_params_buffers" into every module's record under assign=True: no file's)
        if set(local_metadata or ()) - {"assign_to_params_buffers"} or (net is not None and any(  # a nested state_dict()'s own record, or buffers: a real file
                prefix + k in state_dict for k, _ in net.named_buffers() if not k.startswith(_HEAD_KEYS))):
            return None
        # a dict of parameters alone, or a buffer-free network's file without its record (torch tells a module nothing of strict)
        warnings.warn(f"{prefix}norm.running_mean, {prefix}norm.running_var: the state dict holds the network's parameters "
                      "but not its normalization's statistics, and no record of the network it came from (the _metadata "
                      "a state_dict() keeps): kept the normalization, as torch keeps a BatchNorm's (strict loading "
                      f"refuses the dict for them, strict=False keeps them); {_FIX}", stacklevel=_caller_level())
        return norm
    key = prefix + "norm.running_mean"
    if key not in state_dict:
        return norm
    w = head.weight
    return CodeNorm(state_dict[key].shape[0], device=w.device, dtype=w.dtype).train(head.training)


_FIX = ("a dict of parameters alone (dict(net.named_parameters()), torch.func, an average of parameters) must bring "
        "the buffers too: {**dict(net.named_buffers()), **params}; a network built with normalize=False loads as saved "
        "into one built so (normalize=False), or after net.norm = None")


def fold(classifier: nn.Linear, norm: CodeNorm | None, weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(W [C, F], b [C])`` of the eval-time decision ``f @ W.T + b``, normalization folded in: tensors of their
    own, in the autograd graph (a user's penalty on the weights the decision uses trains the classifier), whatever the
    normalization: without one, clones of the classifier's parameters, which ``effective_classifier()`` hands users
    who may edit them in place (the live parameters were edited so, and the network with them).
    ``weight``: the classifier's weight where it is composed of parts (default its own).

    >>> fc = nn.Linear(3, 2)
    >>> w, b = fold(fc, None)
    >>> w.zero_().requires_grad, bool(fc.weight.eq(0).all())
    (True, False)
    """
    w, b = _fold(classifier, norm, weight)
    own = lambda t, p: t.clone() if t is p else t  # noqa: E731 - computed ones are no one else's; a clone keeps the graph
    return own(w, classifier.weight), own(b, classifier.bias)


def _fold(classifier: nn.Linear, norm: CodeNorm | None, weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """:func:`fold` with the gradient kept (``decide`` at eval: ``finetune_sparse(mode="eval")`` trains through it),
    and without a normalization the classifier's own parameters."""
    plain_head(classifier, norm)
    w, b = classifier.weight if weight is None else weight, classifier.bias
    if norm is None:
        return w, b
    dt = torch.promote_types(w.dtype, torch.float32)  # folded in float32 at least: w @ mu in bf16 would move the bias
    with autocast_off(w.device.type):
        w = w.to(dt) * norm.scale(dt)
        return w, b.to(dt) - w @ norm.running_mean.to(dt)


def folded_logits(f: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """``f @ w.T + b`` as the head decides at eval: in :func:`head_dtype` (float32 at least) with
    autocast off. The one home of that product: the forward pass, ``explain`` of every wrapper and
    the ensemble use it, so their logits are the same numbers.

    >>> folded_logits(torch.ones(2, 3, dtype=torch.bfloat16), torch.ones(4, 3), torch.zeros(4)).dtype
    torch.float32
    """
    with autocast_off(f.device.type):
        dt = head_dtype(f, w)
        return F.linear(f.to(dt), w.to(dt), b.to(dt))


def decide(f: Tensor, classifier: nn.Linear, norm: CodeNorm | None, dropout: nn.Module | None = None,
           weight: Tensor | None = None) -> Tensor:
    """Logits of features ``f [B, F]``: batch statistics (and dropout) while training, the folded linear map at eval
    (:func:`folded_logits`); in float32 at least, with autocast off. ``weight``: see :func:`fold`. Training or eval is
    the normalization's own mode (and dropout's), the classifier's only without one: a Linear's mode does nothing in torch.

    Where the normalization carries neuroview's hooks (an outer wrap of a model holding this network, whose sites end in
    this network's backbone, stops its pass where this head starts), it is called at eval too, on no samples: the outer
    site search sees the head start in eval mode, as its pass does while training, so neither runs this head (whose
    training-mode call moved the running statistics, and so this network's explanations)."""
    if not (classifier if norm is None else norm).training and not (dropout is not None and dropout.training):
        w, b = _fold(classifier, norm, weight)  # (its plain_head refuses a user's hook there before it runs)
        if norm is not None and norm._forward_pre_hooks:
            norm(f[:0])  # no numbers: what the hooks see of the head starting
        return folded_logits(f, w, b)
    plain_head(classifier, norm)
    weight = classifier.weight if weight is None else weight
    with autocast_off(f.device.type):
        dt = head_dtype(f, weight)
        f = norm(f.to(dt)) if norm is not None else f.to(dt)
        if dropout is not None:
            f = dropout(f)
        return F.linear(f, weight.to(dt), classifier.bias.to(dt))
