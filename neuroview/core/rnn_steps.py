"""Helpers of :mod:`neuroview.core.rnn`, kept apart for room: which steps training reached (the warning where a series
read at eval reaches further is :mod:`.rnn_reach`), and whether a state dict was saved from an RNN of another nonlinearity.

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

__all__ = ["unreached_steps", "untrained_features", "dead_features", "UNREACHED_VAR"]

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


def settings_clash(meta, rnn: nn.Module, prefix: str) -> str | None:
    """Why a state dict whose metadata is ``meta`` computes another function in a NeuroView-RNN over ``rnn``
    (an ``nn.RNN`` of another nonlinearity); None where it agrees, or records none (saved before it was kept)."""
    saved, own = (meta if isinstance(meta, dict) else {}).get("nonlinearity"), getattr(rnn, "nonlinearity", None)
    if saved not in ("tanh", "relu") or not isinstance(rnn, nn.RNN) or saved == own:
        return None
    return (f"{prefix}rnn.nonlinearity: the state dict was saved from a NeuroView-RNN over nn.RNN(nonlinearity={saved!r}), "
            f"the model's rnn has nonlinearity={own!r}: its weights compute another function there; build the rnn "
            f"with nonlinearity={saved!r} (create_model('nv_rnn', nonlinearity={saved!r}, ...)) to load it")
