"""Zoo architectures: each standard network and its NeuroView variant, two lines a builder.

``create_model("small_cnn")`` is the standard network (its own head decides);
``create_model("nv_small_cnn")`` wraps the same network so that the global linear classifier
over all unit codes decides.
"""

from __future__ import annotations

from torch import nn

from ...core.cnn import NeuroViewCNN
from ...core.rnn import NeuroViewRNN, RNNClassifier
from .cnn import FCN, VGG, ResNet, SmallCNN
from ..registry import register_model

_NV_KEYS = ("quantizer", "tau", "normalize", "layers", "stop_early")


def _nv_cnn(backbone: nn.Module, num_classes: int, kw: dict) -> NeuroViewCNN:
    return NeuroViewCNN(backbone, num_classes, **kw)


def _split(kwargs: dict) -> tuple[dict, dict]:
    nv_kw = {k: kwargs.pop(k) for k in _NV_KEYS if k in kwargs}
    return kwargs, nv_kw


# --------------------------------------------------------------------- 2-D and 1-D CNNs
@register_model
def small_cnn(*, num_classes: int = 10, in_channels: int = 1, **kwargs) -> nn.Module:
    return SmallCNN(num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model
def nv_small_cnn(*, num_classes: int = 10, in_channels: int = 1, **kwargs) -> nn.Module:
    arch_kw, nv_kw = _split(kwargs)
    return _nv_cnn(small_cnn(num_classes=num_classes, in_channels=in_channels, **arch_kw), num_classes, nv_kw)


@register_model
def vgg_cnn(*, num_classes: int = 10, in_channels: int = 3, **kwargs) -> nn.Module:
    return VGG(num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model
def nv_vgg_cnn(*, num_classes: int = 10, in_channels: int = 3, **kwargs) -> nn.Module:
    arch_kw, nv_kw = _split(kwargs)
    return _nv_cnn(vgg_cnn(num_classes=num_classes, in_channels=in_channels, **arch_kw), num_classes, nv_kw)


@register_model
def resnet18_cifar(*, num_classes: int = 10, in_channels: int = 3, **kwargs) -> nn.Module:
    return ResNet(num_classes=num_classes, in_channels=in_channels, depths=(2, 2, 2, 2), **kwargs)


@register_model
def nv_resnet18_cifar(*, num_classes: int = 10, in_channels: int = 3, **kwargs) -> nn.Module:
    arch_kw, nv_kw = _split(kwargs)
    return _nv_cnn(resnet18_cifar(num_classes=num_classes, in_channels=in_channels, **arch_kw), num_classes, nv_kw)


@register_model
def fcn1d(*, num_classes: int = 2, in_channels: int = 1, **kwargs) -> nn.Module:
    return FCN(num_classes=num_classes, in_channels=in_channels, **kwargs)


@register_model
def nv_fcn1d(*, num_classes: int = 2, in_channels: int = 1, **kwargs) -> nn.Module:
    arch_kw, nv_kw = _split(kwargs)
    return _nv_cnn(fcn1d(num_classes=num_classes, in_channels=in_channels, **arch_kw), num_classes, nv_kw)


@register_model
def resnet1d(*, num_classes: int = 2, in_channels: int = 1, **kwargs) -> nn.Module:
    # Wang et al.'s time-series ResNet: 3 blocks of 64-128-128 filters with kernels 8-5-3 in spirit,
    # here basic blocks with kernel 7 so one definition serves 1-D and 2-D.
    kw = dict(depths=(1, 1, 1), widths=(64, 128, 128), dims=1, stem_kernel=7, kernel_size=7) | kwargs
    return ResNet(num_classes=num_classes, in_channels=in_channels, **kw)


@register_model
def nv_resnet1d(*, num_classes: int = 2, in_channels: int = 1, **kwargs) -> nn.Module:
    arch_kw, nv_kw = _split(kwargs)
    return _nv_cnn(resnet1d(num_classes=num_classes, in_channels=in_channels, **arch_kw), num_classes, nv_kw)


# ------------------------------------------------------------------------------ RNNs
_RNN = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _rnn(kind: str, in_features: int, hidden_size: int, num_layers: int, bidirectional: bool, kw: dict) -> nn.RNNBase:
    # batch_first: the Lightning module and the data modules hand RNNs [B, T, F]
    return _RNN[kind](in_features, hidden_size, num_layers=num_layers, bidirectional=bidirectional, batch_first=True, **kw)


@register_model
def rnn(*, num_classes: int = 2, in_features: int = 1, hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = False, **kwargs) -> nn.Module:
    return RNNClassifier(_rnn("rnn", in_features, hidden_size, num_layers, bidirectional, kwargs), num_classes)


@register_model
def nv_rnn(*, num_classes: int = 2, in_features: int = 1, max_len: int, hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = False, normalize: bool = True, **kwargs) -> nn.Module:
    return NeuroViewRNN(_rnn("rnn", in_features, hidden_size, num_layers, bidirectional, kwargs), num_classes, max_len=max_len, normalize=normalize)


@register_model
def lstm(*, num_classes: int = 2, in_features: int = 1, hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = False, **kwargs) -> nn.Module:
    return RNNClassifier(_rnn("lstm", in_features, hidden_size, num_layers, bidirectional, kwargs), num_classes)


@register_model
def nv_lstm(*, num_classes: int = 2, in_features: int = 1, max_len: int, hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = False, normalize: bool = True, **kwargs) -> nn.Module:
    return NeuroViewRNN(_rnn("lstm", in_features, hidden_size, num_layers, bidirectional, kwargs), num_classes, max_len=max_len, normalize=normalize)


@register_model
def gru(*, num_classes: int = 2, in_features: int = 1, hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = False, **kwargs) -> nn.Module:
    return RNNClassifier(_rnn("gru", in_features, hidden_size, num_layers, bidirectional, kwargs), num_classes)


@register_model
def nv_gru(*, num_classes: int = 2, in_features: int = 1, max_len: int, hidden_size: int = 64, num_layers: int = 1, bidirectional: bool = False, normalize: bool = True, **kwargs) -> nn.Module:
    return NeuroViewRNN(_rnn("gru", in_features, hidden_size, num_layers, bidirectional, kwargs), num_classes, max_len=max_len, normalize=normalize)


__all__ = ["SmallCNN", "VGG", "ResNet", "FCN"]
