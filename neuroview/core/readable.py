"""Readable explanations: how many contributions a decision leans on (:func:`k_share`, behind
``Explanation.k90``), and the reference the contributions are taken against (:func:`resolve_baseline`,
behind ``explain(x, baseline=...)``).

Against zero codes (the default), a decision reads ``bias + sum of W c``: large constants that
cancel (a bias of -10.9 and "186 other units +11" on nv_lite.gunpoint). Against the training
split's mean code ``m`` it reads ``(b + W m) + sum of W (c - m)``: the logit of the average sample,
then what this sample does differently; the sum is the same logit, exactly.

Imports only torch.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["k_share", "require_finite_rows", "resolve_baseline"]


def k_share(values: Tensor, share: float = 0.9, what: str = "values") -> Tensor:
    """``[B]`` the fewest of each row's ``[B, N]`` values, largest ``|value|`` first, whose ``|values|``
    sum to at least ``share`` of the row's total (0 for a row of zeros). A row holding NaN or Inf has no such
    count: refused (:func:`require_finite_rows`), not counted 0 as a row of zeros is.

    >>> k_share(torch.tensor([[5.0, -4.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    tensor([2, 3, 0])
    """
    if not 0 < share <= 1:
        raise ValueError(f"share: expected a number in (0, 1], got {share!r}")
    require_finite_rows(values, what)
    a = values.detach().abs().double().sort(dim=-1, descending=True).values
    cum = a.cumsum(-1)
    total = cum[..., -1:] if a.shape[-1] else a.new_zeros(*a.shape[:-1], 1)
    # rounding: a row's own total must count as reaching 100%, whatever order the sum took
    reached = cum >= share * total * (1 - 1e-12)
    k = (~reached).sum(-1) + 1
    return torch.where(total[..., 0] > 0, k, torch.zeros_like(k))


def require_finite_rows(values: Tensor, what: str = "values") -> None:
    """A clear error where rows of ``[B, N]`` ``values`` hold NaN or Inf: a non-finite decision (a float16 overflow
    under autocast) has no readability, and counting it 0 (k90) or 1.0 (top share) scored it the most readable."""
    bad = ~torch.isfinite(values.detach()).flatten(1).all(1) if values.dim() > 1 else ~torch.isfinite(values).all()[None]
    if bool(bad.any()):
        rows = bad.nonzero().flatten().tolist()
        kind = "samples" if what == "contributions" else "rows"
        raise ValueError(f"{what}: {kind} {rows[:10]}{f' (of {len(rows)})' if len(rows) > 10 else ''} hold NaN or Inf, "
                         "which no share of the total can be read from (a non-finite decision: its logit is NaN or "
                         "Inf); readability is measured on finite decisions only")


def resolve_baseline(baseline, mean: Tensor | None, shape: tuple[int, ...], weight: Tensor, bias: Tensor) -> tuple[Tensor | None, Tensor]:
    """``(baseline [*shape] or None, bias)`` for ``explain(x, baseline=...)``: ``None`` or ``"zero"``
    (contributions against zero codes: the bias is the classifier's own), ``"mean"`` (against
    ``mean``, the training split's mean features), or a tensor of the features' shape. The bias
    returned is the logit of the baseline, ``b + W baseline``, so contributions still sum to the logit."""
    if baseline is None or (isinstance(baseline, str) and baseline == "zero"):
        return None, bias
    if isinstance(baseline, str) and baseline == "mean":
        if mean is None:
            raise ValueError("baseline: 'mean' needs the training split's mean features, and this network has no "
                             "normalization statistics to take them from; pass baseline=nv.mean_codes(net, train_loader)")
        baseline = mean
    elif not isinstance(baseline, Tensor):
        raise ValueError(f"baseline: expected None, 'zero', 'mean' or a tensor of shape {list(shape)}, got {baseline!r}")
    # the features' own shape (or with a batch dim of 1), or flat: another shape of as many values is another layout
    if tuple(baseline.shape) not in (tuple(shape), (1, *shape), (weight.shape[1],)):
        flat = f" or flat [{weight.shape[1]}]" if len(shape) > 1 else ""
        raise ValueError(f"baseline: expected a tensor of shape {list(shape)}{flat} (one value per feature), got shape {list(baseline.shape)}")
    # a copy: the network's live running mean (or the caller's tensor) may change after explain returns
    base = baseline.detach().to(device=weight.device, dtype=weight.dtype).reshape(shape).clone()
    if not torch.isfinite(base).all():
        raise ValueError("baseline: contains NaN or Inf")
    with torch.autocast(weight.device.type, enabled=False):
        return base, bias + weight @ base.reshape(-1)
