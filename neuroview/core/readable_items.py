"""What readability counts in an explanation (its items, :func:`fold_padding`) and the top share of them
(:func:`top_share`); the steps of an RNN explanation past each series' end (padding), as readability and tables
treat them.

A padded step holds no input: its hidden states are 0, so against zero codes it adds exactly 0, but against a baseline
(the training mean, the honest one) each adds the constant ``-W baseline``: what the average series does there, not
what this one did. Readability counts the series' real steps (their features) apart and all its padding together as
one item, their sum, so that ``bias`` plus the items is still the logit, exactly; the waterfall draws the same steps
as bars labelled "(padding)". Tables flag the padding rows (:func:`padded`).

Imports only torch and core helpers.

>>> import torch
>>> fold_padding(torch.tensor([[2.0, 0.0, -1.0, -1.0, -1.0]]), torch.tensor([2]), 1)
tensor([[ 2.,  0.,  0.,  0.,  0., -3.]])
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._utils import positive_int
from .readable import require_finite_rows

__all__ = ["padded", "fold_padding", "top_share"]


def padded(lengths: Tensor | None, b: int, t: int, device: torch.device | str | None = None) -> Tensor | None:
    """``[b, t]`` bool, True at the steps past each series' end (``lengths [b]``, counted in steps, as an explanation's
    ``lengths`` are); None without lengths."""
    if lengths is None:
        return None
    n = torch.as_tensor(lengths).reshape(-1)
    n, device = (n, n.device) if device is None else (n.to(device), device)
    if n.shape[0] != b:
        raise ValueError(f"lengths: expected {b} lengths (one per sample of the explanation), got {n.shape[0]}")
    return torch.arange(t, device=device) >= n[:, None]


def fold_padding(values: Tensor, lengths: Tensor | None, dim: int) -> Tensor:
    """``[B, N]`` items of ``values [B, ...]`` (steps along ``dim``): flattened, those at padded steps set to 0 and
    their sum appended as one last item (none where no step is padding). The items sum to what ``values`` sums to."""
    flat = values.flatten(1)
    pad = padded(lengths, values.shape[0], values.shape[dim], values.device)
    if pad is None or not bool(pad.any()):
        return flat
    shape = [len(pad)] + [1] * (values.dim() - 1)
    shape[dim] = pad.shape[1]
    pad = pad.reshape(shape).expand_as(values).flatten(1)
    zero = flat.new_zeros(())
    return torch.cat([torch.where(pad, zero, flat), torch.where(pad, flat, zero).sum(1, keepdim=True)], 1)


def top_share(items: Tensor, k: int) -> Tensor:
    """``[B]`` share of the sum of ``|items|`` (``[B, N]``) carried by the ``k`` largest; 1.0 for a row of zeros;
    rows holding NaN or Inf refused (a NaN decision is no perfectly concentrated one: it read 1.0)."""
    require_finite_rows(items, "contributions")
    a = items.abs().double()
    total = a.sum(-1)
    top = a.topk(min(positive_int(k, "k"), a.shape[-1]), dim=-1).values.sum(-1)
    return torch.where(total > 0, top / total.clamp_min(1e-300), torch.ones_like(total))
