"""Deep time-series classifiers of the zoo: plain ``nn.Module``s over ``[B, C, T]`` with their own head.

``ResNet1D`` (Wang et al. 2017), ``InceptionTime`` (Ismail Fawaz et al. 2020, one network of the
ensemble) and ``LITE`` (Ismail-Fawaz et al. 2023). Every activation is its own ``nn.ReLU``
instance, called once, so each call is one NeuroView site whose units are its channels; every
convolution pads "same", so any length ``T`` works and the head averages over time.
May import torch only.
"""

from __future__ import annotations

import operator
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .cnn import _count, _counts
from .fixed import FixedConv1d, _fixed_filters  # noqa: F401 - LITE's fixed filters, computed exactly


def _conv_bn(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    # no conv bias: the BatchNorm after it has one
    return [nn.Conv1d(c_in, c_out, k, padding="same", bias=False), nn.BatchNorm1d(c_out)]


class _Pooled(nn.Module):
    """Global average pooling over time, then the linear ``fc``: the head all three share."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.pool = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten())
        self.fc = nn.Linear(c, num_classes)

    def head(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(x))


# ------------------------------------------------------------------------------ ResNet
class ResBlock1D(nn.Module):
    """Wang et al.'s residual block: three conv-BN (kernels 8-5-3), ReLU after the first two, and
    after the sum with the shortcut (1x1 conv + BN where the width changes, BN alone where not)."""

    def __init__(self, c_in: int, c_out: int, kernels: Sequence[int] = (8, 5, 3)):
        super().__init__()
        layers, c = [], c_in
        for i, k in enumerate(kernels):
            layers += _conv_bn(c, c_out, k) + ([nn.ReLU(inplace=True)] if i < len(kernels) - 1 else [])
            c = c_out
        self.body = nn.Sequential(*layers)
        # the reference (dl-4-tsc) normalizes an unchanged-width shortcut without a conv
        self.shortcut = nn.Sequential(*_conv_bn(c_in, c_out, 1)) if c_in != c_out else nn.BatchNorm1d(c_out)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet1D(_Pooled):
    """Time-series ResNet (Wang et al. 2017): 3 residual blocks of 64-128-128 filters, kernels 8-5-3.

    Sites: 3 ReLUs a block (64-64-64, 128 x 6 units). Unlike the reference (keras), no conv has a
    bias: the BatchNorm after each has one (0.50M parameters, 1,152 fewer).

    >>> import torch
    >>> ResNet1D(in_channels=1, num_classes=2)(torch.randn(2, 1, 150)).shape
    torch.Size([2, 2])
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 2, widths: Sequence[int] = (64, 128, 128),
                 kernels: Sequence[int] = (8, 5, 3)):
        widths, kernels = _counts(widths, "widths"), _counts(kernels, "kernels")
        super().__init__(widths[-1], num_classes)
        blocks, c = [], in_channels
        for w in widths:
            blocks.append(ResBlock1D(c, w, kernels))
            c = w
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(x))


# ------------------------------------------------------------------------ InceptionTime
class InceptionModule(nn.Module):
    """A 1x1 bottleneck (when the input has more than one channel), three parallel convolutions
    over it and a max-pool -> 1x1 conv branch over the input, concatenated, BN, ReLU."""

    def __init__(self, c_in: int, filters: int = 32, kernels: Sequence[int] = (39, 19, 9), bottleneck: int = 32):
        super().__init__()
        use_bottleneck = bool(bottleneck) and c_in > 1
        self.bottleneck = nn.Conv1d(c_in, bottleneck, 1, bias=False) if use_bottleneck else nn.Identity()
        c_mid = bottleneck if use_bottleneck else c_in
        self.convs = nn.ModuleList(nn.Conv1d(c_mid, filters, k, padding="same", bias=False) for k in kernels)
        self.pool_branch = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1), nn.Conv1d(c_in, filters, 1, bias=False))
        self.out_channels = filters * (len(kernels) + 1)
        self.bn = nn.BatchNorm1d(self.out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        z = self.bottleneck(x)
        z = torch.cat([conv(z) for conv in self.convs] + [self.pool_branch(x)], dim=1)
        return self.relu(self.bn(z))


def _bottleneck(b) -> int:
    # 0, False or None: no bottleneck (as bool(bottleneck) read them); else an int >= 1 (a float was taken as one)
    if b is None or b is False:
        return 0
    try:
        n = None if isinstance(b, bool) else operator.index(b)  # numpy's ints too
    except TypeError:
        n = None
    if n is None or n < 0:
        raise ValueError(f"bottleneck: expected an int >= 1, or 0 (or None) for none, got {b!r}")
    return n


class InceptionTime(_Pooled):
    """One InceptionTime network (Ismail Fawaz et al. 2020; the paper ensembles five of these).

    ``depth`` inception modules of ``4 * filters`` channels; every third one adds a shortcut of the
    block's input (1x1 conv + BN) and applies its own ReLU. Sites: ``depth + depth // 3`` ReLUs of
    ``4 * filters`` units each (with the defaults 8 x 128).

    Deviations from the reference (keras): kernels (39, 19, 9) instead of (40, 20, 10), so "same"
    padding is symmetric; no conv biases (every conv is followed by BN, as in the reference,
    which also has none).

    >>> import torch
    >>> InceptionTime(in_channels=3, num_classes=5)(torch.randn(2, 3, 64)).shape
    torch.Size([2, 5])
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 2, depth: int = 6, filters: int = 32,
                 kernels: Sequence[int] = (39, 19, 9), bottleneck: int = 32, residual: bool = True):
        depth, filters, kernels = _count(depth, "depth"), _count(filters, "filters"), _counts(kernels, "kernels")
        bottleneck = _bottleneck(bottleneck)
        c_out = filters * (len(kernels) + 1)
        super().__init__(c_out, num_classes)
        modules, shortcuts, c, c_res = [], [], in_channels, in_channels
        for d in range(depth):
            modules.append(InceptionModule(c, filters, kernels, bottleneck))
            c = c_out
            if residual and d % 3 == 2:
                shortcuts.append(nn.ModuleDict({"proj": nn.Sequential(*_conv_bn(c_res, c_out, 1)), "relu": nn.ReLU(inplace=True)}))
                c_res = c_out
        self.inception = nn.ModuleList(modules)
        self.shortcuts = nn.ModuleList(shortcuts)
        self.residual = residual

    def forward(self, x: Tensor) -> Tensor:
        res = x
        for d, module in enumerate(self.inception):
            x = module(x)
            if self.residual and d % 3 == 2:
                s = self.shortcuts[d // 3]
                x = res = s["relu"](x + s["proj"](res))
        return self.head(x)


# --------------------------------------------------------------------------------- LITE
#: How :class:`DepthwiseConv1d` computes on the CPU, where oneDNN's depthwise convolution on
#: ``[B, C, T]`` is slow (torch 2.13): ``"phases"`` (float32, odd kernels: a plain convolution over
#: the dilation's phases in channels-last memory, see :func:`_phases`; otherwise ``"flipped"``),
#: ``"flipped"`` (``nn.Conv1d``'s forward, the input gradient taken as a forward convolution with the
#: flipped kernel) or ``"native"`` (``nn.Conv1d`` as it is). ``benchmarks/depthwise_cost.py`` times
#: the three against each other.
CPU_DEPTHWISE = "phases"


def _phases(x: Tensor, d: int) -> Tensor:
    """``[B, C, T]`` as ``[B, C, ceil(T / d), d]`` in channels-last memory, zero-padded at the end:
    ``[b, c, q, r]`` is ``x[b, c, q * d + r]``. A "same" convolution dilated by ``d`` with an odd
    kernel is then a plain "same" convolution along dim 2 of each phase ``r`` apart, which oneDNN runs
    channels-last several times faster than the dilated one on ``[B, C, T]`` (the same sums)."""
    b, c, t = x.shape
    tp = -(-t // d) * d
    buf = x.new_empty(b, tp, c)
    buf[:, :t].copy_(x.transpose(1, 2))
    buf[:, t:].zero_()
    return buf.view(b, tp // d, d, c).permute(0, 3, 1, 2)


def _unphase(y: Tensor, t: int) -> Tensor:
    """:func:`_phases` undone: ``[B, C, T]``, contiguous."""
    b, c, h, w = y.shape
    return y.permute(0, 2, 3, 1).reshape(b, h * w, c)[:, :t].transpose(1, 2).contiguous()


def _phase_conv(x4: Tensor, w: Tensor) -> Tensor:
    c, _, k = w.shape
    return F.conv2d(x4, w.reshape(c, 1, k, 1), padding=((k - 1) // 2, 0), groups=c)


class _DepthwisePhases(torch.autograd.Function):
    """A depthwise "same" convolution over the dilation's phases (:func:`_phases`): the forward, the
    input gradient (the flipped kernel) and the weight gradient, each one channels-last convolution."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, dilation: int) -> Tensor:
        x4 = _phases(x, dilation)
        ctx.save_for_backward(x4, w)
        ctx.t, ctx.dilation = x.shape[-1], dilation
        return _unphase(_phase_conv(x4, w), ctx.t)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        x4, w = ctx.saved_tensors
        g4, (c, _, k) = _phases(g, ctx.dilation), w.shape
        gx = _unphase(_phase_conv(g4, w.flip(-1)), ctx.t) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            gw = torch.ops.aten.convolution_backward(g4, x4, w.reshape(c, 1, k, 1), None, [1, 1], [(k - 1) // 2, 0], [1, 1],
                                                     False, [0, 0], c, [False, True, False])[1].reshape(w.shape)
        return gx, gw, None


class _DepthwiseSame(torch.autograd.Function):
    """A depthwise "same" convolution whose input gradient is the forward convolution of the output
    gradient with the flipped kernel (the same numbers, to float rounding, as ``convolution_backward``)."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, pad: int, dilation: int) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.pad, ctx.dilation = pad, dilation
        return F.conv1d(x, w, padding=pad, dilation=dilation, groups=w.shape[0])

    @staticmethod
    @once_differentiable
    def backward(ctx, g: Tensor):
        x, w = ctx.saved_tensors
        c, gx, gw = w.shape[0], None, None
        if ctx.needs_input_grad[0]:
            gx = F.conv1d(g, w.flip(-1), padding=ctx.pad, dilation=ctx.dilation, groups=c)
        if ctx.needs_input_grad[1]:
            gw = torch.ops.aten.convolution_backward(g, x, w, None, [1], [ctx.pad], [ctx.dilation], False, [0], c,
                                                     [False, True, False])[1]
        return gx, gw, None, None


class DepthwiseConv1d(nn.Conv1d):
    """A depthwise convolution with "same" padding, no bias: an ``nn.Conv1d`` (its weights, state dict
    and outputs, to float rounding), faster on the CPU.

    oneDNN (torch 2.13, CPU) runs a depthwise convolution on ``[B, C, T]`` several times slower than
    the same sums channels-last without dilation, and takes 1.5 to 2.5 times as long for its input
    gradient as for the forward convolution that computes the same numbers; LITE spends most of a
    step there. On the CPU without autocast, :data:`CPU_DEPTHWISE` says the route: in float32 with
    an odd kernel the convolution runs over the dilation's phases channels-last (forward, input and
    weight gradient; ``"phases"``), in training otherwise (float64, an even kernel) the input gradient is
    the flipped kernel's forward convolution (``"flipped"``); anywhere else it is ``nn.Conv1d``.
    ``tests/zoo/test_depthwise.py`` holds outputs and gradients to ``nn.Conv1d``'s. No double backward
    on those routes.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int = 1):
        if (dilation * (kernel_size - 1)) % 2:
            raise ValueError(f"kernel_size: a symmetric 'same' depthwise convolution needs an odd span, dilation * "
                             f"(kernel_size - 1) + 1; got kernel {kernel_size} at dilation {dilation}")
        super().__init__(channels, channels, kernel_size, padding="same", dilation=dilation, groups=channels, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        w, d, k = self.weight, self.dilation[0], self.kernel_size[0]
        if CPU_DEPTHWISE not in ("phases", "flipped", "native"):  # on any device: a typo is an error wherever it runs
            raise ValueError(f"CPU_DEPTHWISE: expected 'phases', 'flipped' or 'native', got {CPU_DEPTHWISE!r}")
        if (CPU_DEPTHWISE == "native" or x.device.type != "cpu" or x.dtype != w.dtype or x.dim() != 3
                or torch.is_autocast_enabled("cpu") or torch.compiler.is_compiling()):
            return super().forward(x)
        grad = torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)
        if CPU_DEPTHWISE == "phases" and w.dtype == torch.float32 and k % 2:
            return _DepthwisePhases.apply(x, w, d) if grad else _unphase(_phase_conv(_phases(x, d), w), x.shape[-1])
        if grad and w.dtype in (torch.float32, torch.float64):
            return _DepthwiseSame.apply(x, w, d * (k - 1) // 2, d)
        return super().forward(x)


class LITE(_Pooled):
    """LITE (Ismail-Fawaz et al. 2023): InceptionTime's accuracy at about 2% of its parameters.

    First layer: a multiplexing convolution (``filters`` filters for each of ``kernels``) beside
    the fixed hand-crafted filters (17 of them: increasing and decreasing detection of lengths
    2 ... 64, peaks of lengths 6 ... 96, each followed by a ReLU), concatenated, BN, ReLU. Then two
    depthwise-separable convolutions (kernels ``sep_kernels``, dilations 2 and 4) of ``filters``
    channels, each BN and ReLU; global average pooling and ``fc``. Sites: the hand-crafted
    filters' ReLU (17 units), the first layer's (``3 * filters + 17``) and the two separable
    layers' (``filters`` each): with the defaults 194 units, and 9.6k parameters (1 channel, 2
    classes; the fixed filters are buffers, not parameters).

    Deviations from the reference (keras): kernels (39, 19, 9) and separable kernels (19, 9)
    instead of (40, 20, 10) and (20, 10), so "same" padding is symmetric; a multivariate input
    sums the hand-crafted filters over its channels (as the reference's single-filter Conv1D
    does) rather than filtering each channel apart.

    >>> import torch
    >>> LITE(in_channels=1, num_classes=2)(torch.randn(2, 1, 64)).shape
    torch.Size([2, 2])
    """

    def __init__(self, *, in_channels: int = 1, num_classes: int = 2, filters: int = 32,
                 kernels: Sequence[int] = (39, 19, 9), sep_kernels: Sequence[int] = (19, 9), fixed: bool = True):
        filters, sep_kernels = _count(filters, "filters"), _counts(sep_kernels, "sep_kernels")
        alone = fixed and isinstance(kernels, (list, tuple)) and not kernels  # the fixed filters alone: allowed
        kernels = [] if alone else _counts(kernels, "kernels")
        super().__init__(filters, num_classes)
        self.fixed = FixedConv1d(in_channels, _fixed_filters()) if fixed else None
        self.fixed_relu = nn.ReLU(inplace=True) if fixed else None
        self.convs = nn.ModuleList(nn.Conv1d(in_channels, filters, k, padding="same", bias=False) for k in kernels)
        c = filters * len(kernels) + (self.fixed.out_channels if fixed else 0)
        self.bn = nn.BatchNorm1d(c)
        self.relu = nn.ReLU(inplace=True)
        layers = []
        for i, k in enumerate(sep_kernels):
            layers += [DepthwiseConv1d(c, k, dilation=2 ** (i + 1)),
                       *_conv_bn(c, filters, 1), nn.ReLU(inplace=True)]  # pointwise
            c = filters
        self.separable = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        maps = [self.fixed_relu(self.fixed(x))] if self.fixed is not None else []
        z = torch.cat([conv(x) for conv in self.convs] + maps, dim=1)
        return self.head(self.separable(self.relu(self.bn(z))))

    def grouped(self, k: int) -> "GroupedLITE":
        """``k`` LITEs of this one's shape as one network (an ensemble's batched pass)."""
        return GroupedLITE(self, k)


def _wider(conv: nn.Conv1d, k: int) -> nn.Conv1d:
    """``conv`` for ``k`` members side by side: ``k`` times the channels, grouped so no member reads another's."""
    if isinstance(conv, DepthwiseConv1d):
        return DepthwiseConv1d(conv.in_channels * k, conv.kernel_size[0], conv.dilation[0])
    return nn.Conv1d(conv.in_channels * k, conv.out_channels * k, conv.kernel_size, padding=conv.padding,
                     dilation=conv.dilation, groups=conv.groups * k, bias=False)


class GroupedLITE(nn.Module):
    """``k`` LITEs of one shape computed as one network: each layer one call over every member.

    Its parameters and buffers have a LITE's names (``fc`` aside) and each is the ``k`` members'
    tensors concatenated along dim 0: convolutions grouped by member, BatchNorms over ``k`` times
    the channels (per channel, so per member). Every layer lays its channels out member-major:
    member ``m`` owns channels ``m * c ... (m + 1) * c - 1``, at each ReLU too, so NeuroView's sites
    and units fall where each member's do. The input is read once by every member. Returns the
    pooled features ``[B, k * filters]``, member-major. :class:`~neuroview.core.ensemble.Ensemble`
    (``batched=True``) fills it with its members' own tensors at each call (``functional_call``);
    its own tensors are placeholders.
    """

    def __init__(self, like: LITE, k: int):
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k: expected an int >= 1, got {k!r}")
        self.k = k
        if like.fixed is not None:
            self.fixed = FixedConv1d.grouped(like.fixed, k)  # a buffer, as in LITE: never trained
            self.fixed_relu = nn.ReLU(inplace=True)
        else:
            self.fixed = self.fixed_relu = None
        self.convs = nn.ModuleList(_wider(c, k) for c in like.convs)
        self.bn = nn.BatchNorm1d(like.bn.num_features * k, eps=like.bn.eps, momentum=like.bn.momentum)
        self.relu = nn.ReLU(inplace=True)
        self.separable = nn.Sequential(*(
            _wider(m, k) if isinstance(m, nn.Conv1d) else
            nn.BatchNorm1d(m.num_features * k, eps=m.eps, momentum=m.momentum) if isinstance(m, nn.BatchNorm1d) else
            nn.ReLU(inplace=True) for m in like.separable))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool1d(1), nn.Flatten())

    def forward(self, x: Tensor) -> Tensor:
        b, t, k = x.shape[0], x.shape[-1], self.k
        xs = x.repeat(1, k, 1)  # [B, k * C, T]: each member's copy of the input, member-major
        maps = [self.fixed_relu(self.fixed(xs))] if self.fixed is not None else []
        parts = [conv(xs) for conv in self.convs] + maps
        # member-major, as each member concatenates; sizes, not -1: an empty batch has none to infer
        z = torch.cat([p.view(b, k, p.shape[1] // k, t) for p in parts], dim=2).flatten(1, 2)
        return self.pool(self.separable(self.relu(self.bn(z))))
