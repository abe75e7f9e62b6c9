"""Standard CNN backbones of the zoo: plain ``nn.Module``s with their own head.

Each network calls its activations as modules (never ``F.relu``), so NeuroViewCNN finds every
unit; ResNet blocks call one ``relu`` twice, like torchvision's, which gives two sites.
May import torch only.
"""

from __future__ import annotations

import operator
from typing import Sequence

from torch import Tensor, nn

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_GAP = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}


def _check_dims(dims: int) -> None:
    if dims not in _CONV:
        raise ValueError(f"dims: expected 1, 2 or 3 spatial dims, got {dims!r}")


def _count(v, name: str) -> int:
    """``v`` as a plain int >= 1 (numpy's too), or an error naming ``name``: a float, a string or 0 failed deep in
    torch (or at the first forward), naming neither the argument nor what it takes."""
    try:
        ok = not isinstance(v, bool) and operator.index(v) >= 1
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
    return operator.index(v)


def _counts(vs, name: str, items: str = "ints >= 1") -> list[int]:
    """``vs`` a non-empty sequence of ints >= 1 (layer widths, kernel sizes) as plain ints, or an error naming
    ``name``."""
    if isinstance(vs, (str, bytes, dict)) or not hasattr(vs, "__iter__") or not hasattr(vs, "__len__") or not len(vs):
        raise ValueError(f"{name}: expected a non-empty sequence of {items} (e.g. [32, 64]), got {vs!r}")
    try:
        return [_count(v, name) for v in vs]
    except ValueError:
        raise ValueError(f"{name}: expected a non-empty sequence of {items} (e.g. [32, 64]), got {vs!r}") from None


def conv_bn_relu(c_in: int, c_out: int, k: int, dims: int = 2) -> nn.Sequential:
    return nn.Sequential(_CONV[dims](c_in, c_out, k, padding=k // 2, bias=False), _BN[dims](c_out), nn.ReLU(inplace=True))


class _PooledCNN(nn.Module):
    """``features``, then global average pooling and a linear ``fc``: the layout SmallCNN, VGG and FCN share.

    Subclasses build their layers first and hand them here, so parameters are created (and the
    random generator drawn) in the order the layers run.
    """

    def __init__(self, layers: list[nn.Module], c: int, num_classes: int, dims: int):
        super().__init__()
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(_GAP[dims](1), nn.Flatten())
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.features(x)))


class SmallCNN(_PooledCNN):
    """Conv-BN-ReLU blocks with max-pooling, global average pooling and a linear head.

    >>> import torch
    >>> SmallCNN(in_channels=1, num_classes=10)(torch.randn(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 10, widths: Sequence[int] = (32, 64, 128),
                 kernel_size: int = 3, dims: int = 2, pool_every: int = 1):
        _check_dims(dims)
        widths, kernel_size = _counts(widths, "widths"), _count(kernel_size, "kernel_size")
        layers, c = [], in_channels
        for i, w in enumerate(widths):
            layers.append(conv_bn_relu(c, w, kernel_size, dims))
            if pool_every and (i + 1) % pool_every == 0 and i < len(widths) - 1:
                layers.append(_POOL[dims](2, ceil_mode=True))
            c = w
        super().__init__(layers, c, num_classes, dims)


class VGG(_PooledCNN):
    """VGG-style CNN: ``cfg`` lists widths, ``"M"`` a 2x max-pool.

    >>> import torch
    >>> VGG(cfg=(8, "M", 16), in_channels=3, num_classes=10)(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, *, in_channels: int = 3, num_classes: int = 10,
                 cfg: Sequence[int | str] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"), dims: int = 2):
        _check_dims(dims)
        _counts([v for v in cfg if not isinstance(v, str) or v != "M"] if isinstance(cfg, (list, tuple)) else cfg,
                "cfg", "widths (ints >= 1) and 'M' (a max-pool)")
        layers, c = [], in_channels
        for v in cfg:
            if v == "M":
                layers.append(_POOL[dims](2, ceil_mode=True))
            else:
                layers.append(conv_bn_relu(c, int(v), 3, dims))
                c = int(v)
        super().__init__(layers, c, num_classes, dims)


class BasicBlock(nn.Module):
    """ResNet basic block; ``relu`` is called twice, as in torchvision."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dims: int = 2, kernel_size: int = 3):
        super().__init__()
        conv, bn, k = _CONV[dims], _BN[dims], kernel_size
        self.conv1 = conv(c_in, c_out, k, stride=stride, padding=k // 2, bias=False)
        self.bn1 = bn(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv(c_out, c_out, k, padding=k // 2, bias=False)
        self.bn2 = bn(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(conv(c_in, c_out, 1, stride=stride, bias=False), bn(c_out))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """CIFAR-style ResNet (3x3 stem, no max-pool); ``depths=(2, 2, 2, 2)`` is ResNet-18.

    >>> import torch
    >>> ResNet(depths=(1, 1), widths=(8, 16), num_classes=10)(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, *, in_channels: int = 3, num_classes: int = 10, depths: Sequence[int] = (2, 2, 2, 2),
                 widths: Sequence[int] = (64, 128, 256, 512), dims: int = 2, stem_kernel: int = 3, kernel_size: int = 3):
        super().__init__()
        _check_dims(dims)
        widths, depths = _counts(widths, "widths"), _counts(depths, "depths")
        stem_kernel, kernel_size = _count(stem_kernel, "stem_kernel"), _count(kernel_size, "kernel_size")
        if not kernel_size % 2:  # k // 2 padding lengthens an even kernel's output by one: the residual sum fails
            raise ValueError(f"kernel_size: expected an odd int (a block adds its input to its output), got {kernel_size}")
        if len(depths) != len(widths):
            raise ValueError(f"depths, widths: expected the same length, got {len(depths)} and {len(widths)}")
        self.conv1 = _CONV[dims](in_channels, widths[0], stem_kernel, padding=stem_kernel // 2, bias=False)
        self.bn1 = _BN[dims](widths[0])
        self.relu = nn.ReLU(inplace=True)
        stages, c = [], widths[0]
        for i, (d, w) in enumerate(zip(depths, widths)):
            blocks = [BasicBlock(c, w, stride=1 if i == 0 else 2, dims=dims, kernel_size=kernel_size)]
            blocks += [BasicBlock(w, w, dims=dims, kernel_size=kernel_size) for _ in range(d - 1)]
            stages.append(nn.Sequential(*blocks))
            c = w
        self.layers = nn.Sequential(*stages)
        self.pool = nn.Sequential(_GAP[dims](1), nn.Flatten())
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.layers(self.relu(self.bn1(self.conv1(x))))))


class FCN(_PooledCNN):
    """Fully convolutional network for time series (Wang et al. 2017): 128-256-128 filters, kernels 8-5-3.

    >>> import torch
    >>> FCN(in_channels=1, num_classes=2)(torch.randn(2, 1, 150)).shape
    torch.Size([2, 2])
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 2, widths: Sequence[int] = (128, 256, 128),
                 kernels: Sequence[int] = (8, 5, 3)):
        widths, kernels = _counts(widths, "widths"), _counts(kernels, "kernels")
        if len(widths) != len(kernels):
            raise ValueError(f"widths, kernels: expected the same length, got {len(widths)} and {len(kernels)}")
        layers, c = [], in_channels
        for w, k in zip(widths, kernels):
            # 'same' padding keeps every position, also for even kernels (PyTorch pads asymmetrically)
            layers += [nn.Conv1d(c, w, k, padding="same", bias=False), nn.BatchNorm1d(w), nn.ReLU(inplace=True)]
            c = w
        super().__init__(layers, c, num_classes, dims=1)
