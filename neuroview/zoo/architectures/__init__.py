"""Zoo architectures: each standard network and its NeuroView variant, registered in pairs.

``create_model("small_cnn")`` is the standard network (its own head decides);
``create_model("nv_small_cnn")`` wraps the same network so that the global linear classifier
over all unit codes decides. A standard builder is written once; :func:`_with_neuroview` (CNNs)
and :func:`_register_rnns` register the ``nv_`` variant beside it. May import
``neuroview.core`` and ``..registry``.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Any, Callable

import numpy as np
from torch import nn

from ...core.cnn import NeuroViewCNN
from ...core.ensemble import Ensemble
from ...core.rnn import NeuroViewRNN, RNNClassifier
from .cnn import FCN, VGG, ResNet, SmallCNN
from .rocket import MiniRocket
from .timeseries import LITE, InceptionTime, ResNet1D
from .vit import ViT
from ..registry import check_members, register_model


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a plain bool (numpy's too), or an error naming ``name``: ``bool("False")`` is True, and a flag
    given as text (a YAML, command-line or environment value) did the opposite of what was asked."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    return bool(value)


_NV_KEYS = ("quantizer", "tau", "grad_state", "normalize", "norm_floor", "layers", "stop_early")


def _with_neuroview(std: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register the CNN builder ``std`` and ``nv_<its name>``, the NeuroViewCNN around what it builds.

    The variant takes ``std``'s arguments (its signature is ``std``'s, which the data's shape is
    routed by) and NeuroViewCNN's (``quantizer``, ``tau`` ...). Both take ``members``: an
    :class:`~neuroview.core.ensemble.Ensemble` of that many networks (1, the default: one network).
    """
    default_classes = inspect.signature(std).parameters["num_classes"].default

    @functools.wraps(std)
    def standard(*, members: int = 1, batched: bool | str = False, **kwargs) -> nn.Module:
        return _members(members, lambda: std(**kwargs), batched)

    @functools.wraps(std)
    def nv(*, members: int = 1, batched: bool | str = False, **kwargs) -> nn.Module:
        nv_kw = {k: kwargs.pop(k) for k in _NV_KEYS if k in kwargs}
        return _members(members, lambda: NeuroViewCNN(std(**kwargs), kwargs.get("num_classes", default_classes), **nv_kw),
                        batched)

    nv.__name__ = nv.__qualname__ = f"nv_{std.__name__}"
    register_model(standard)
    register_model(nv)
    return std


def _members(members: int, build: Callable[[], nn.Module], batched: bool | str = False) -> nn.Module:
    """One network, or (``members`` > 1) an :class:`~neuroview.core.ensemble.Ensemble` of that many,
    each initialized apart (``lite`` with ``members=5`` is LITETime, ``inception_time`` InceptionTime as
    published); ``batched``: the members computed in one batched pass (LITE's, see the Ensemble; ``"auto"``
    on an accelerator only), where
    there are several (one network has nothing to batch: a recipe's ``members 1`` keeps its ``batched``)."""
    members, batched = check_members(members, batched)
    return build() if members == 1 else Ensemble([build() for _ in range(members)], batched=batched)


# --------------------------------------------------------------------- 2-D and 1-D CNNs
@_with_neuroview
def small_cnn(*, num_classes: int = 10, in_channels: int = 1, **kwargs) -> nn.Module:
    return SmallCNN(num_classes=num_classes, in_channels=in_channels, **kwargs)


@_with_neuroview
def vgg_cnn(*, num_classes: int = 10, in_channels: int = 3, **kwargs) -> nn.Module:
    return VGG(num_classes=num_classes, in_channels=in_channels, **kwargs)


@_with_neuroview
def resnet18_cifar(*, num_classes: int = 10, in_channels: int = 3, **kwargs) -> nn.Module:
    if "depths" in kwargs:  # ResNet's argument, so create_model lets it through: a bare "multiple values" before
        raise ValueError(f"depths: resnet18_cifar is ResNet-18, depths (2, 2, 2, 2) (others: build "
                         f"neuroview.zoo.architectures.ResNet(depths=...) and nv.wrap it), got {kwargs['depths']!r}")
    return ResNet(num_classes=num_classes, in_channels=in_channels, depths=(2, 2, 2, 2), **kwargs)


@_with_neuroview
def fcn1d(*, num_classes: int = 2, in_channels: int = 1, **kwargs) -> nn.Module:
    return FCN(num_classes=num_classes, in_channels=in_channels, **kwargs)


@_with_neuroview
def resnet1d(*, num_classes: int = 2, in_channels: int = 1, **kwargs) -> nn.Module:
    # Wang et al.'s time-series ResNet: 3 blocks of 64-128-128 filters, kernels 8-5-3
    return ResNet1D(num_classes=num_classes, in_channels=in_channels, **kwargs)


@_with_neuroview
def inception_time(*, num_classes: int = 2, in_channels: int = 1, **kwargs) -> nn.Module:
    # one network of Ismail Fawaz et al.'s ensemble: 6 inception modules of 128 channels (0.4M parameters)
    return InceptionTime(num_classes=num_classes, in_channels=in_channels, **kwargs)


@_with_neuroview
def lite(*, num_classes: int = 2, in_channels: int = 1, **kwargs) -> nn.Module:
    # Ismail-Fawaz et al.'s LITE: fixed hand-crafted filters + 3 light layers (10k parameters)
    return LITE(num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model
def minirocket(*, num_classes: int = 2, in_channels: int = 1, max_len: int, **kwargs) -> nn.Module:
    # Dempster et al.'s MiniRocket: 84 fixed kernels at dilations up to the length, ~10,000 PPV
    # features (NeuroView codes already); fitted in closed form by neuroview.training.ridge.fit_minirocket
    return MiniRocket(num_classes=num_classes, in_channels=in_channels, input_length=max_len, **kwargs)


@register_model
def nv_minirocket(*, num_classes: int = 2, in_channels: int = 1, max_len: int, **kwargs) -> nn.Module:
    # its sites' inputs come from a functional convolution (no layer to read the unit axis from):
    # the units (kernel, dilation, bias) lie on dim 1 of [B, F, T]
    nv_kw = {k: kwargs.pop(k) for k in _NV_KEYS if k in kwargs}
    return NeuroViewCNN(minirocket(num_classes=num_classes, in_channels=in_channels, max_len=max_len, **kwargs),
                        num_classes, unit_axis={"act": 1}, **nv_kw)


# ------------------------------------------------------------------------ transformers
@_with_neuroview
def vit_tiny(*, num_classes: int = 10, in_channels: int = 1, **kwargs) -> nn.Module:
    # dim 64, depth 4, 4 heads, MLP x2 (0.14M parameters): seconds a CPU epoch on 8x8 digits;
    # NeuroView's sites are the 4 MLP GELUs on tokens (units on the last dim, 128 each)
    kw = dict(img_size=8, patch_size=2, dim=64, depth=4, heads=4, mlp_ratio=2.0) | kwargs
    return ViT(num_classes=num_classes, in_channels=in_channels, **kw)


# ------------------------------------------------------------------------------ RNNs
_RNN = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


#: what nn.RNN / nn.LSTM / nn.GRU take besides what the builders set themselves (input_size, batch_first ...)
_RNN_PASSED = {"rnn": ("bias", "dropout", "nonlinearity"), "lstm": ("bias", "dropout", "proj_size"), "gru": ("bias", "dropout")}


def _rnn(kind: str, in_features: int, hidden_size: int, num_layers: int, bidirectional: bool, kw: dict) -> nn.RNNBase:
    # batch_first: the Lightning module and the data modules hand RNNs [B, T, F]
    kw = {k: v for k, v in kw.items() if not (k == "batch_first" and v is True)}  # what it is anyway
    for k, v in kw.items():  # else Python's "multiple values for keyword argument", naming neither the zoo nor the fix
        if k == "input_size":
            raise TypeError(f"input_size: the zoo's {kind} builders call it in_features (input features per sample; "
                            f"the nn.{_RNN[kind].__name__} reads window x in_features a step); pass in_features={v!r}")
        if k == "batch_first":
            raise TypeError(f"batch_first: the zoo's {kind} builders make batch-first RNNs (x [B, T, F], as the "
                            f"data modules and the Lightning module hand them); drop it, got batch_first={v!r}")
        if k not in _RNN_PASSED[kind] + ("device", "dtype"):
            raise TypeError(f"{k}: not an argument of the zoo's {kind} builders, nor one of nn.{_RNN[kind].__name__}'s "
                            f"they pass on ({', '.join(_RNN_PASSED[kind])}, device, dtype); got {k}={v!r}")
    bidirectional = check_flag(bidirectional, "bidirectional")  # "False" built a bidirectional RNN
    return _RNN[kind](in_features, hidden_size, num_layers=num_layers, bidirectional=bidirectional, batch_first=True, **kw)


def rnn_window(max_len: int | None, window: int | None, max_steps: int | None) -> int:
    """Samples per RNN step: ``window`` if given, else the fewest that fit ``max_len`` samples into
    ``max_steps`` steps (1 without ``max_steps``): the recurrence's length is derived from the data.
    A ``window`` that makes more steps than ``max_steps`` wins, with a warning.

    >>> rnn_window(150, None, 50), rnn_window(24, None, 50), rnn_window(1460, None, 50), rnn_window(150, 2, None)
    (3, 1, 30, 2)
    """
    if window is not None:  # else nn.RNN's own error names its input_size, an argument never passed
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window: expected an int >= 1 (samples per step), got {window!r}")
        if max_steps is not None and max_len is not None and isinstance(max_steps, int) and max_steps >= 1 \
                and -(-max_len // window) > max_steps:
            # a command line's window over a recipe's max_steps is allowed, but not without a word
            warnings.warn(f"window: {window} samples a step reads {max_len} samples in {-(-max_len // window)} steps, more "
                          f"than max_steps={max_steps}; window wins (drop one of the two to silence this)", UserWarning,
                          stacklevel=2)
        return window
    if max_steps is None:
        return 1
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps: expected a positive int, got {max_steps!r}")
    if max_len is None:
        raise ValueError("max_steps: needs max_len, the longest sequence (use a sequence data module)")
    return -(-max_len // max_steps)


def _register_rnns(kind: str) -> None:
    """Register ``kind`` (an RNNClassifier: the last step decides) and ``nv_<kind>`` (every step does).

    Both take ``window`` (samples per step) or ``max_steps`` (the window that fits the data's
    ``max_len`` into that many steps).
    """

    def std(*, num_classes: int = 2, in_features: int = 1, max_len: int | None = None, hidden_size: int = 64,
            num_layers: int = 1, bidirectional: bool = False, window: int | None = None, max_steps: int | None = None,
            head_dropout: float = 0.0, **kwargs) -> nn.Module:
        w = rnn_window(max_len, window, max_steps)
        rnn = _rnn(kind, in_features * w, hidden_size, num_layers, bidirectional, kwargs)
        return RNNClassifier(rnn, num_classes, window=w, dropout=head_dropout)

    def nv(*, num_classes: int = 2, in_features: int = 1, max_len: int, hidden_size: int = 64, num_layers: int = 1,
           bidirectional: bool = False, normalize: bool = True, window: int | None = None, max_steps: int | None = None,
           head_dropout: float = 0.0, shared_steps: bool = False, **kwargs) -> nn.Module:
        w = rnn_window(max_len, window, max_steps)
        normalize, shared_steps = check_flag(normalize, "normalize"), check_flag(shared_steps, "shared_steps")
        rnn = _rnn(kind, in_features * w, hidden_size, num_layers, bidirectional, kwargs)
        return NeuroViewRNN(rnn, num_classes, max_len=max_len, normalize=normalize, window=w, dropout=head_dropout,
                            shared_steps=shared_steps)

    for fn, name in ((std, kind), (nv, f"nv_{kind}")):
        fn.__name__ = fn.__qualname__ = name
        fn.passed_on = _RNN_PASSED[kind] + ("device", "dtype")  # the nn.RNN's arguments, taken through **kwargs
        register_model(fn)


for _kind in _RNN:
    _register_rnns(_kind)


__all__ = ["check_flag", "SmallCNN", "VGG", "ResNet", "FCN", "ResNet1D", "InceptionTime", "LITE", "ViT"]
