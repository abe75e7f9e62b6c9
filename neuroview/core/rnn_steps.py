"""Helpers of :mod:`neuroview.core.rnn`, kept apart for room: which steps training reached, and whether a state
dict was saved from an RNN of another nonlinearity.

A step that no training series reaches holds padding, exactly 0, in every batch: its features get no gradient,
so its classifier weights keep their random initial values, and a norm of them measures initialisation noise.
The normalization's running statistics are the network's only record of the training data: such a step's
features have a running mean of exactly 0 (zeros averaged) and a running variance decayed from its initial 1
towards 0 (``0.9 ** batches``).

>>> import torch
>>> from neuroview.core.head import CodeNorm
>>> norm = CodeNorm(2 * 3)   # 2 steps of 3 features
>>> norm.running_mean[:3], norm.running_var[3:] = 0.4, 0.0
>>> norm.num_batches_tracked += 50
>>> unreached_steps(norm, (1, 1, 2, 3)).tolist()
[False, True]
"""

from __future__ import annotations

from torch import Tensor, nn

from .head import constant_features

__all__ = ["unreached_steps", "untrained_features", "UNREACHED_VAR"]

#: the running variance under which a step whose running mean is 0 counts as never reached: 1 decayed by 44 batches
#: of zeros at the default momentum 0.1; a shorter training leaves every step counted as reached
UNREACHED_VAR = 1e-2


def unreached_steps(norm: nn.Module | None, feature_shape: tuple[int, int, int, int]) -> Tensor | None:
    """``[steps]`` bool: the steps that, by ``norm``'s running statistics, no training series reached (every feature
    of the step, in every layer and direction: a running mean of exactly 0 and ``running variance <= UNREACHED_VAR``;
    a step reached only now and then, whose mean decays between its batches, is no zero: the test is exact, not a
    tolerance, until ``0.9 ** k`` underflows after about 900 batches without it);
    None without a normalization (nothing in the network records the training data) or before any batch was seen."""
    mean, var = getattr(norm, "running_mean", None), getattr(norm, "running_var", None)
    if mean is None or var is None or int(getattr(norm, "num_batches_tracked", 0)) == 0:
        return None
    layers, dirs, steps, hidden = feature_shape
    m = mean.detach().reshape(layers, dirs, steps, hidden).abs().float()
    v = var.detach().reshape(layers, dirs, steps, hidden).float()
    return ((m == 0) & (v <= UNREACHED_VAR)).permute(2, 0, 1, 3).flatten(1).all(1).cpu()


def untrained_features(norm: nn.Module | None, feature_shape: tuple[int, int, int, int]) -> Tensor | None:
    """``[L, D, steps, H]`` bool: the features whose classifier weights training never moved, by ``norm``'s running
    statistics: every feature of a step no series reached (:func:`unreached_steps`) and each feature that was the same
    for every sample of each training batch (:func:`neuroview.core.head.constant_features`: a dead hidden feature);
    None without a normalization or before any batch was seen."""
    unreached, constant = unreached_steps(norm, feature_shape), constant_features(norm)
    if unreached is None or constant is None:
        return None
    layers, dirs, steps, hidden = feature_shape
    return constant.reshape(layers, dirs, steps, hidden) | unreached[None, None, :, None]


def settings_clash(meta, rnn: nn.Module, prefix: str) -> str | None:
    """Why a state dict whose metadata is ``meta`` computes another function in a NeuroView-RNN over ``rnn``
    (an ``nn.RNN`` of another nonlinearity); None where it agrees, or records none (saved before it was kept)."""
    saved, own = (meta if isinstance(meta, dict) else {}).get("nonlinearity"), getattr(rnn, "nonlinearity", None)
    if saved not in ("tanh", "relu") or not isinstance(rnn, nn.RNN) or saved == own:
        return None
    return (f"{prefix}rnn.nonlinearity: the state dict was saved from a NeuroView-RNN over nn.RNN(nonlinearity={saved!r}), "
            f"the model's rnn has nonlinearity={own!r}: its weights compute another function there; build the rnn "
            f"with nonlinearity={saved!r} (create_model('nv_rnn', nonlinearity={saved!r}, ...)) to load it")
