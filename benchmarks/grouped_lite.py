"""Five LITE members in one batched pass: grouped convolutions built from the members' own weights.

A measuring device for ``ensemble_cost.py``, not part of the package: ``GroupedLITE(members)``
computes exactly what ``k`` standard :class:`~neuroview.zoo.architectures.timeseries.LITE`
networks compute (each member's logits, ``[k, B, C]``), with every layer one call over all members:
their channels side by side (member ``m`` owns channels ``m * c ... (m + 1) * c - 1`` of each
layer), each convolution grouped so that no member reads another's channels, each BatchNorm one
over ``k * c`` channels (per channel, so per member), the heads one batched matrix product. The
layers' count of kernel launches is one network's; the arithmetic is ``k`` networks'.
:func:`check` proves it equal to the members (train and eval mode) before anything is timed.

Only the standard backbone: a NeuroView member's code (quantize, mean over positions) is one more
elementwise op and one reduction per site, which batch over ``k * c`` channels the same way.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from neuroview.zoo.architectures.timeseries import LITE


def _cat(ws: Sequence[Tensor]) -> nn.Parameter:
    return nn.Parameter(torch.cat([w.detach() for w in ws]).clone())


def _grouped_conv(convs: Sequence[nn.Conv1d], k: int) -> nn.Conv1d:
    c = convs[0]
    g = nn.Conv1d(c.in_channels * k, c.out_channels * k, c.kernel_size, padding=c.padding, dilation=c.dilation,
                  groups=c.groups * k, bias=False)
    g.weight = _cat([m.weight for m in convs])
    return g


def _grouped_bn(bns: Sequence[nn.BatchNorm1d]) -> nn.BatchNorm1d:
    b = nn.BatchNorm1d(sum(m.num_features for m in bns), eps=bns[0].eps, momentum=bns[0].momentum)
    b.weight, b.bias = _cat([m.weight for m in bns]), _cat([m.bias for m in bns])
    b.running_mean.copy_(torch.cat([m.running_mean for m in bns]))
    b.running_var.copy_(torch.cat([m.running_var for m in bns]))
    return b


class GroupedLITE(nn.Module):
    """``k`` LITEs (default layout: fixed filters, three kernels, two separable layers) in one pass."""

    def __init__(self, members: Sequence[LITE]):
        super().__init__()
        k, m0 = len(members), members[0]
        if m0.fixed is None:
            raise ValueError("members: GroupedLITE needs LITEs with their fixed filters")
        self.k = k
        self.fixed = _grouped_conv([m.fixed for m in members], k)
        self.fixed.weight.requires_grad_(False)  # a buffer in LITE: never trained
        self.convs = nn.ModuleList(_grouped_conv([m.convs[i] for m in members], k) for i in range(len(m0.convs)))
        self.bn = _grouped_bn([m.bn for m in members])
        layers: list[nn.Module] = []
        for i, layer in enumerate(m0.separable):
            same = [m.separable[i] for m in members]
            layers.append(_grouped_conv(same, k) if isinstance(layer, nn.Conv1d) else
                          _grouped_bn(same) if isinstance(layer, nn.BatchNorm1d) else nn.ReLU())
        self.separable = nn.Sequential(*layers)
        self.fc_weight = nn.Parameter(torch.stack([m.fc.weight.detach() for m in members]).clone())  # [k, C, f]
        self.fc_bias = nn.Parameter(torch.stack([m.fc.bias.detach() for m in members]).clone())  # [k, C]

    def forward(self, x: Tensor) -> Tensor:
        """``[k, B, C]``: each member's logits."""
        b, t, k = x.shape[0], x.shape[-1], self.k
        xs = x.repeat(1, k, 1)  # every member reads the same input
        parts = [conv(xs) for conv in self.convs] + [torch.relu(self.fixed(xs))]
        z = torch.cat([p.view(b, k, -1, t) for p in parts], dim=2).flatten(1, 2)  # member-major channels
        h = self.separable(torch.relu(self.bn(z))).mean(-1).view(b, k, -1)  # [B, k, f]
        return torch.einsum("bkf,kcf->kbc", h, self.fc_weight) + self.fc_bias[:, None]


def check(members: Sequence[LITE], x: Tensor, atol: float = 1e-4) -> None:
    """Raise unless a GroupedLITE built from ``members`` gives each member's logits, in train and eval mode."""
    for train in (True, False):
        grouped = GroupedLITE(members).train(train)
        want = torch.stack([m.train(train)(x) for m in members])
        got = grouped(x)
        err = (got - want).abs().max().item()
        if err > atol:
            raise AssertionError(f"GroupedLITE differs from its members by {err:.2e} (train={train})")
