"""Convolutions with fixed weights, computed exactly: LITE's hand-crafted filters (and MiniRocket's kernels).

A hard code reads the sign of a pre-activation, and a fixed filter meets pre-activations within a float32
rounding of 0 (an alternating filter on ItalyPowerDemand's z-normalized series, a training series at a MiniRocket
bias drawn from its own convolution). In float32 their sign follows the summation order, which the convolution
backend picks by batch size: a series' codes, and its logits, moved with the other series of its batch
(nv_lite.italypowerdemand: 0.083 between a series alone and in a batch of 64). In float64 the products of float32
inputs and these weights are exact and so are their sums (unless the values in one window span more than about
2^20), so the result, rounded once to the working precision, is the same in any batch.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...core._devices import autocast_enabled, autocast_off


def exact_conv1d(x: Tensor, weight: Tensor, *, dtype: torch.dtype | None = None, **kw) -> Tensor:
    """``F.conv1d(x, weight, **kw)`` computed in float64 with autocast off, then rounded once to ``dtype``
    (default: autocast's precision where it is on, else ``x``'s), so that it does not depend on the batch. MPS
    has no float64: there it runs in float32, as before."""
    dev = x.device.type
    if dtype is None:
        dtype = torch.get_autocast_dtype(dev) if autocast_enabled(dev) else x.dtype
    wide = torch.float32 if dev == "mps" else torch.float64
    with autocast_off(dev):
        return F.conv1d(x.to(wide), weight.to(wide), **kw).to(dtype)


def _fixed_filters(max_len: int = 64) -> list[Tensor]:
    """The hand-crafted filters of Ismail-Fawaz et al. (2022) as LITE's reference code builds them:
    increasing and decreasing detection filters (alternating -1/+1) of lengths 2, 4, ... ``max_len``,
    and peak filters (three parabola-shaped lobes, -1, +2, -1) of lengths 1.5 x 4, 8, ... ``max_len``."""
    lengths = [2 ** i for i in range(1, max_len.bit_length()) if 2 ** i <= max_len]
    alternating = [torch.tensor([(-1.0) ** (i + 1) for i in range(k)]) for k in lengths]
    out = alternating + [-f for f in alternating]
    for k in lengths[1:]:
        q = k // 4
        left = torch.linspace(0, 1, q + 1)[1:] ** 2
        lobe = torch.cat([left, left.flip(0)])
        out.append(torch.cat([-lobe, 2 * lobe, -lobe]))
    return out


class FixedConv1d(nn.Conv1d):
    """A Conv1d whose weight is a buffer: saved in the state dict, moved with the module, never
    trained (``requires_grad_(True)`` on the network cannot reach it).

    Each filter is zero-padded into one kernel so that it sits where its own "same" convolution
    would put it; the same filter is applied to every input channel and summed over them, as the
    reference's ``Conv1D(filters=1)`` with an all-channel kernel does.
    """

    def __init__(self, in_channels: int, filters: Sequence[Tensor]):
        k = max(len(f) for f in filters) | 1  # odd: PyTorch pads an even "same" kernel through a copy of the input
        super().__init__(in_channels, len(filters), k, padding="same", bias=False)
        weight = torch.zeros(len(filters), in_channels, k)
        for i, f in enumerate(filters):
            at = (k - 1) // 2 - (len(f) - 1) // 2  # PyTorch's (and keras') "same" pads (len - 1) // 2 on the left
            weight[i, :, at:at + len(f)] = f
        del self.weight
        self.register_buffer("weight", weight)

    @classmethod
    def grouped(cls, like: "FixedConv1d", k: int) -> "FixedConv1d":
        """``like`` for ``k`` members side by side (:class:`~neuroview.zoo.architectures.timeseries.GroupedLITE`):
        ``k`` times the channels, grouped so that no member reads another's, the filters repeated."""
        out = cls.__new__(cls)
        nn.Conv1d.__init__(out, like.in_channels * k, like.out_channels * k, like.kernel_size, padding=like.padding,
                           groups=k, bias=False)
        del out.weight
        out.register_buffer("weight", like.weight.repeat(k, 1, 1))
        return out

    def forward(self, x: Tensor) -> Tensor:
        return exact_conv1d(x, self.weight, padding=self.padding, groups=self.groups)
